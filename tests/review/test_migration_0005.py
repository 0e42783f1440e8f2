"""Migration 0005 (issue 15) on a database at 0004 holding data: the queue's columns are filled
from the stored verdicts (identical texts share a key with rows written later), the status
constraint admits `withdrawn` and nothing unknown, review_claims exists, and down/up round-trips."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.store import migrate
from app.store.db import Database
from app.store.models import RISK_FLAGGED, Signature, Template, dup_key

T0 = datetime(2026, 11, 1, 8, 0)


def _verdict(outcome, cats=(), score=0.0):
    return json.dumps({"verdict": outcome, "categories": list(cats), "score": score,
                       "reasons": [{"rule": "KW_X", "category": (list(cats) or [None])[0], "detector": "keyword",
                                    "score": score}]}, ensure_ascii=False)


def _seed_0004(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO accounts (id, name, status, created_at, updated_at) "
                          "VALUES ('ACME', 'Acme', 'active', :t, :t), ('BETA', 'Beta', 'warned', :t, :t)"),
                  {"t": T0})
        c.execute(sa.text("INSERT INTO signatures (id, account_id, name, note, status, verdict, created_at, updated_at) "
                          "VALUES (1, 'ACME', '阿克米', '', 'approved', :v, :t, :t), "
                          "(2, 'BETA', '贝塔', '', 'pending', NULL, :t, :t)"), {"v": _verdict("allow"), "t": T0})
        rows = [
            (1, "ACME", 1, "promotional", "澳门百家乐，首充送88", "pending", _verdict("review", ["gambling", "marketing"], 6.0)),
            (2, "ACME", 1, "notification", "您的订单${order}已发货", "approved", _verdict("allow")),
            (3, "BETA", 1, "promotional", "澳门百家乐，首充送88", "pending", _verdict("review", ["gambling", "marketing"], 6.0)),
            (4, "ACME", 1, "verification", "您的验证码为${code}", "rejected", _verdict("reject", ["fraud"], 12.0)),
        ]
        for tid, acct, sig, typ, content, status, verdict in rows:
            variables = json.dumps({"order": "code"} if "order" in content else {"code": "code"} if "code" in content else {})
            c.execute(sa.text("INSERT INTO templates (id, account_id, signature_id, type, content, variables, region, "
                              "status, verdict, created_at, updated_at) VALUES (:id, :a, :s, :ty, :c, :vars, 'cn', "
                              ":st, :v, :t, :t)"),
                      {"id": tid, "a": acct, "s": sig, "ty": typ, "c": content, "vars": variables, "st": status,
                       "v": verdict, "t": T0 + timedelta(minutes=tid)})
        if c.dialect.name == "postgresql":  # ids were given: move the sequences past them
            for table in ("signatures", "templates"):
                c.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))
    engine.dispose()


def test_upgrade_from_0004_with_existing_data(db_url):
    migrate.upgrade(db_url, "0004")
    _seed_0004(db_url)
    migrate.upgrade(db_url)
    assert migrate.current_revision(db_url) == migrate.head_revision()
    db = Database(db_url)
    try:
        with db.session() as s:
            t1, t2, t3, t4 = (s.get(Template, i) for i in (1, 2, 3, 4))
            assert (t1.engine_verdict, t1.engine_score, t1.risk) == ("review", 6.0, RISK_FLAGGED)
            assert t1.engine_categories == ",gambling,marketing,"
            assert (t2.engine_verdict, t2.risk, t2.engine_categories) == ("allow", 0, "")
            assert t4.risk == 3
            assert t1.dup_key == t3.dup_key != t2.dup_key  # the same text from two accounts: one group
            assert t1.dup_key == dup_key("template", t1.content, t1.type, t1.variables, t1.region)
            s2 = s.get(Signature, 2)
            assert s2.engine_verdict is None and s2.dup_key == dup_key("signature", "贝塔", "signature")
            assert t1.created_at.tzinfo is not None and t1.status == "pending"
            # a row written by the application later joins the migrated group
            t5 = Template(account_id="ACME", signature_id=1, type="promotional", content="澳门百家乐，首充送88",
                          variables={}, region="cn", status="pending", verdict=json.loads(
                              _verdict("review", ["gambling", "marketing"], 6.0)))
            s.add(t5)
            s.flush()
            assert t5.dup_key == t1.dup_key
            # withdrawn is a status now
            t2.status = "withdrawn"
        with db.session() as s:
            assert s.get(Template, 2).status == "withdrawn"
            assert s.scalar(sa.select(sa.func.count()).select_from(sa.table("review_claims"))) == 0
        # and nothing the code does not know
        with pytest.raises((IntegrityError, DBAPIError)), db.session() as s:
            s.execute(sa.text("UPDATE templates SET status = 'bogus' WHERE id = 1"))
        with pytest.raises((IntegrityError, DBAPIError)), db.session() as s:
            s.execute(sa.text("UPDATE signatures SET status = 'maybe' WHERE id = 1"))
    finally:
        db.dispose()
    # down to 0004 (the columns and claims go; the data stays) and up again
    migrate.downgrade(db_url, "0004")
    cols = {c["name"] for c in sa.inspect(sa.create_engine(db_url)).get_columns("templates")}
    assert "dup_key" not in cols and "risk" not in cols
    assert "review_claims" not in sa.inspect(sa.create_engine(db_url)).get_table_names()
    migrate.upgrade(db_url)
    db = Database(db_url)
    try:
        with db.session() as s:
            assert s.get(Template, 1).risk == RISK_FLAGGED and s.get(Template, 2).status == "withdrawn"
    finally:
        db.dispose()


def test_the_queue_works_on_a_migrated_database(db_url, moderator, tmp_path):
    """The pages over data that was there before 0005: grouped, sorted, decidable."""
    from app import create_app
    from app.config import Settings
    from app.services import users

    from .conftest import PASSWORD, csrf_of

    migrate.upgrade(db_url, "0004")
    _seed_0004(db_url)
    migrate.upgrade(db_url)
    app = create_app(Settings(instance_dir=tmp_path / "i", database_url=db_url, model_dir=None, watch_rules=False,
                              secret_key="t").resolved(), moderator=moderator)
    app.config["TESTING"] = True
    db = app.extensions["smsguard.db"]
    try:
        with db.session() as s:
            users.create(s, "rita", PASSWORD, "reviewer", actor="test")
        c = app.test_client()
        c.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": csrf_of(c.get("/login").text)})
        page = c.get("/review/").text
        assert "template #1</a>" in page and "×2" in page and "template #3</a>" not in page
        assert "signature #2</a>" in page
        value = next(v for v in re.findall(r'name="sel" value="([^"]+)"', page) if v.startswith("template:1:"))
        r = c.post("/review/bulk", data={"csrf_token": csrf_of(page), "decision": "reject", "reason": "赌博",
                                         "sel": [value]})
        assert r.status_code == 302
        with db.session() as s:
            assert s.get(Template, 1).status == s.get(Template, 3).status == "rejected"
    finally:
        db.dispose()

