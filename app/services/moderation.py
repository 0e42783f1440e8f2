"""Content checks for callers that have an account: the engine plus the account's own lists."""
from __future__ import annotations

import hashlib
import threading
import time

from sqlalchemy import select

from app.store.db import Database
from app.store.models import CustomTerm

LIST_CACHE_TTL_S = 5.0


class AccountListCache:
    """Per-process cache of each account's custom lists (changes apply within the TTL)."""

    def __init__(self, db: Database, ttl_s: float = LIST_CACHE_TTL_S):
        self.db = db
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def get(self, account_id: str | None):
        if not account_id:
            return None
        now = time.monotonic()
        hit = self._cache.get(account_id)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        lists = self._load(account_id)
        with self._lock:
            self._cache[account_id] = (now, lists)
        return lists

    def invalidate(self, account_id: str) -> None:
        with self._lock:
            self._cache.pop(account_id, None)

    def _load(self, account_id: str):
        from app.engine.keywords import CustomLists

        with self.db.session() as s:
            rows = s.execute(select(CustomTerm.kind, CustomTerm.term, CustomTerm.category)
                             .where(CustomTerm.account_id == account_id)
                             .order_by(CustomTerm.kind, CustomTerm.term)).all()
        if not rows:
            return None
        digest = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
        return CustomLists(
            account=account_id, version=digest,
            block=[(t, c) for k, t, c in rows if k == "block"],
            review=[(t, c) for k, t, c in rows if k == "review"],
            allow=[t for k, t, _ in rows if k == "allow"],
        )
