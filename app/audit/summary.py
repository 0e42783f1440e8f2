"""Audit statistics: built per chunk by the worker that moderated it, merged in input order by
the runner, kept in the checkpoint (JSON), printed at the end and drawn by the report.

Everything here is mergeable and order-deterministic (samples are the first ones in input
order), so the local and the Dask runners produce the same summary for the same input.

Samples: per category, the first ``SAMPLES_PER_CATEGORY`` rejected messages (``samples``) and the
first sent to review (``review_samples``: the ones a person must look at), each text once: a
chunk keeps its first distinct texts and the merge skips a text it already holds, which gives the
first distinct texts of the whole input however it was cut into chunks.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from typing import Any, Iterable

__all__ = ["Summary", "chunk_stats", "time_bucket", "SAMPLES_PER_CATEGORY", "MALFORMED_LISTED"]

SAMPLES_PER_CATEGORY = 5
MALFORMED_LISTED = 10_000
SAMPLE_TEXT_CHARS = 500
NO_ACCOUNT = "(none)"
NO_CATEGORY = "(no category)"  # samples of messages rejected or reviewed without a category


def time_bucket(value: Any) -> str | None:
    """The hour a message was sent, "YYYY-MM-DDTHH" (UTC when the time carries an offset or is
    a Unix timestamp; as written otherwise). None when the value is missing or unreadable."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ts = float(value)
        elif isinstance(value, str) and value.replace(".", "", 1).isdigit():
            ts = float(value)
        else:
            ts = None
        if ts is not None:
            if ts > 1e11:  # milliseconds
                ts /= 1000.0
            return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H")
        s = str(value).strip()
        if len(s) >= 13 and s[4] == "-" and s[7] == "-" and s[10] in "T " and len(s) <= 19 and s[11:13].isdigit():
            return f"{s[:10]}T{s[11:13]}"  # naive ISO: the common case, no parsing
        if s.endswith("Z"):
            s = s[:-1] + "+00:00"
        dt = datetime.fromisoformat(s)
        if dt.tzinfo is not None:
            dt = dt.astimezone(timezone.utc)
        return dt.strftime("%Y-%m-%dT%H")
    except (ValueError, OverflowError, OSError):
        return None


def _sample(rec, v) -> dict:
    text = rec.text
    cut = len(text) > SAMPLE_TEXT_CHARS
    spans = []
    for h in v.reasons:
        if h.span is not None and h.span[1] <= SAMPLE_TEXT_CHARS:
            spans.append([int(h.span[0]), int(h.span[1]), h.rule])
    return {
        "id": rec.id,
        "account": rec.account,
        "text": text[:SAMPLE_TEXT_CHARS] + ("…" if cut else ""),
        "categories": list(v.categories),
        "score": round(float(v.score), 4),
        "rules": [h.rule for h in v.reasons],
        "spans": spans,
    }


def chunk_stats(pairs: Iterable[tuple[Any, Any]], malformed: list, changes: list | None = None) -> dict:
    """Statistics of one chunk: ``pairs`` are (Record, Verdict) in input order, ``malformed``
    the chunk's Malformed items, ``changes`` the what-if transitions ("allow->reject")."""
    verdicts: Counter = Counter()
    categories: dict[str, Counter] = {}
    accounts: dict[str, list[int]] = {}
    rules: Counter = Counter()
    times: dict[str, Counter] = {}
    samples: dict[str, list] = {}
    review_samples: dict[str, list] = {}
    n = 0
    for rec, v in pairs:
        n += 1
        verdict = v.verdict
        verdicts[verdict] += 1
        for c in v.categories:
            categories.setdefault(c, Counter())[verdict] += 1
        acct = NO_ACCOUNT if rec.account is None else str(rec.account)
        a = accounts.get(acct)
        if a is None:
            a = accounts[acct] = [0, 0, 0]
        a[0] += 1
        if verdict == "review":
            a[1] += 1
        elif verdict == "reject":
            a[2] += 1
        for h in v.reasons:
            rules[h.rule] += 1
        b = time_bucket(rec.time)
        if b is not None:
            times.setdefault(b, Counter())[verdict] += 1
        if verdict == "reject" or verdict == "review":
            into = samples if verdict == "reject" else review_samples
            sample = None
            for c in v.categories or (NO_CATEGORY,):
                lst = into.setdefault(c, [])
                if len(lst) < SAMPLES_PER_CATEGORY:
                    if sample is None:
                        sample = _sample(rec, v)
                    _add_distinct(lst, [sample])
    return {
        "messages": n,
        "verdicts": dict(verdicts),
        "categories": {c: dict(cnt) for c, cnt in categories.items()},
        "accounts": accounts,
        "rules": dict(rules),
        "times": {b: dict(cnt) for b, cnt in times.items()},
        "samples": samples,
        "review_samples": review_samples,
        "malformed": [m.to_dict() for m in malformed],
        "changes": dict(Counter(changes or ())),
    }


def _add_distinct(lst: list, new: Iterable[dict]) -> None:
    """Append the samples of ``new`` whose text ``lst`` does not hold yet, up to the limit."""
    seen = {x.get("text") for x in lst}
    for x in new:
        if len(lst) >= SAMPLES_PER_CATEGORY:
            return
        if x.get("text") not in seen:
            seen.add(x.get("text"))
            lst.append(x)


class Summary:
    """The merged statistics of a run (JSON-serialisable state for the checkpoint)."""

    def __init__(self, state: dict | None = None):
        s = state or {}
        self.messages: int = s.get("messages", 0)
        self.verdicts: Counter = Counter(s.get("verdicts", {}))
        self.categories: dict[str, Counter] = {c: Counter(v) for c, v in s.get("categories", {}).items()}
        self.accounts: dict[str, list[int]] = {a: list(v) for a, v in s.get("accounts", {}).items()}
        self.rules: Counter = Counter(s.get("rules", {}))
        self.times: dict[str, Counter] = {b: Counter(v) for b, v in s.get("times", {}).items()}
        self.samples: dict[str, list] = {c: list(v) for c, v in s.get("samples", {}).items()}
        self.review_samples: dict[str, list] = {c: list(v) for c, v in s.get("review_samples", {}).items()}
        self.malformed_count: int = s.get("malformed_count", 0)
        self.malformed: list[dict] = list(s.get("malformed", []))
        self.changes: Counter = Counter(s.get("changes", {}))
        self.meta: dict = dict(s.get("meta", {}))

    def merge(self, st: dict) -> None:
        self.messages += st["messages"]
        self.verdicts.update(st["verdicts"])
        for c, cnt in st["categories"].items():
            self.categories.setdefault(c, Counter()).update(cnt)
        for a, v in st["accounts"].items():
            cur = self.accounts.get(a)
            if cur is None:
                self.accounts[a] = list(v)
            else:
                cur[0] += v[0]
                cur[1] += v[1]
                cur[2] += v[2]
        self.rules.update(st["rules"])
        for b, cnt in st["times"].items():
            self.times.setdefault(b, Counter()).update(cnt)
        for held, new in ((self.samples, st["samples"]), (self.review_samples, st.get("review_samples", {}))):
            for c, lst in new.items():
                cur = held.setdefault(c, [])
                if len(cur) < SAMPLES_PER_CATEGORY:
                    _add_distinct(cur, lst)
        self.malformed_count += len(st["malformed"])
        room = MALFORMED_LISTED - len(self.malformed)
        if room > 0:
            self.malformed.extend(st["malformed"][:room])
        self.changes.update(st.get("changes", {}))

    def state(self) -> dict:
        return {
            "messages": self.messages,
            "verdicts": dict(self.verdicts),
            "categories": {c: dict(v) for c, v in self.categories.items()},
            "accounts": self.accounts,
            "rules": dict(self.rules),
            "times": {b: dict(v) for b, v in self.times.items()},
            "samples": self.samples,
            "review_samples": self.review_samples,
            "malformed_count": self.malformed_count,
            "malformed": self.malformed,
            "changes": dict(self.changes),
            "meta": self.meta,
        }

    # ------------------------------------------------------------------------------ views
    def category_totals(self) -> list[tuple[str, int, int]]:
        """(category, messages, rejected), most messages first."""
        rows = [(c, sum(v.values()), v.get("reject", 0)) for c, v in self.categories.items()]
        return sorted(rows, key=lambda r: (-r[1], r[0]))

    def top_accounts(self, n: int = 10, min_messages: int = 1) -> list[tuple[str, int, int, int]]:
        """(account, total, review, reject) by rejected messages."""
        rows = [(a, v[0], v[1], v[2]) for a, v in self.accounts.items() if v[0] >= min_messages]
        return sorted(rows, key=lambda r: (-r[3], -r[2], r[0]))[:n]

    def top_rejected_share(self, n: int = 10, min_messages: int | None = None) -> list[tuple[str, int, int, float]]:
        """(account, total, rejected, share) by rejected share; accounts with fewer than
        ``min_messages`` messages are left out so one bad message does not make a 100%."""
        if min_messages is None:
            min_messages = 20 if self.messages >= 2000 else 1
        rows = [(a, v[0], v[2], v[2] / v[0]) for a, v in self.accounts.items() if v[0] >= min_messages and v[2]]
        return sorted(rows, key=lambda r: (-r[3], -r[2], r[0]))[:n]

    def top_rules(self, n: int = 10) -> list[tuple[str, int]]:
        return sorted(self.rules.items(), key=lambda r: (-r[1], r[0]))[:n]

    def to_json(self) -> dict:
        """The machine-readable summary written next to the findings."""
        return {
            **self.meta,
            "messages": self.messages,
            "verdicts": {k: self.verdicts.get(k, 0) for k in ("allow", "review", "reject")},
            "categories": {c: dict(v) for c, v in sorted(self.categories.items())},
            "accounts": len(self.accounts),
            "top_accounts_by_rejected": [
                {"account": a, "messages": t, "review": r, "reject": j} for a, t, r, j in self.top_accounts(20)],
            "top_accounts_by_rejected_share": [
                {"account": a, "messages": t, "reject": j, "share": round(s, 4)}
                for a, t, j, s in self.top_rejected_share(20)],
            "top_rules": [{"rule": r, "count": c} for r, c in self.top_rules(30)],
            "malformed_count": self.malformed_count,
            "malformed": self.malformed,
            "changes": dict(self.changes),
        }

    def lines(self) -> list[str]:
        """The human summary printed at the end of a run."""
        out: list[str] = []
        total = self.messages or 1
        m = self.meta
        out.append(f"audited {self.messages:,} messages from {m.get('inputs_count', '?')} input(s)"
                   f" in {m.get('seconds', 0):.1f}s"
                   + (f" ({m.get('messages_this_run', self.messages) / m['seconds']:,.0f} msg/s)" if m.get("seconds") else "")
                   + (f", resumed after {m['resumed_units']} unit(s)" if m.get("resumed_units") else ""))
        out.append(f"rules {m.get('ruleset_version')}  model {m.get('model_version') or 'none'}")
        out.append("verdicts: " + "  ".join(
            f"{k} {self.verdicts.get(k, 0):,} ({100 * self.verdicts.get(k, 0) / total:.2f}%)"
            for k in ("allow", "review", "reject")))
        if self.categories:
            out.append("categories (messages / rejected):")
            for c, n, j in self.category_totals():
                out.append(f"  {c:<22} {n:>10,} {j:>10,}")
        if self.accounts:
            out.append(f"accounts: {len(self.accounts):,}; most rejected messages (total / review / reject):")
            for a, t, r, j in self.top_accounts(10):
                out.append(f"  {a:<22} {t:>10,} {r:>10,} {j:>10,}")
            share = self.top_rejected_share(10)
            if share:
                out.append("largest rejected share (total / rejected / share):")
                for a, t, j, s in share:
                    out.append(f"  {a:<22} {t:>10,} {j:>10,} {100 * s:>9.2f}%")
        if self.rules:
            out.append("rules that fired most:")
            for r, c in self.top_rules(10):
                out.append(f"  {r:<34} {c:>10,}")
        out.append(f"malformed lines: {self.malformed_count:,}")
        for mm in self.malformed[:20]:
            out.append(f"  {mm['file']}:{mm['line']}: {mm['reason']}")
        if self.malformed_count > 20:
            out.append(f"  ... {self.malformed_count - 20:,} more in the summary file")
        if m.get("compare"):
            changed = sum(self.changes.values())
            out.append(f"what-if ({m['compare']}): {changed:,} verdicts would change"
                       + (": " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.changes.items())) if changed else ""))
        return out
