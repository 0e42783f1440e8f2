"""The figures (GET /v1/stats) match the records; retention (`smsguard prune`); a complaint
links to its check."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.services import checks
from app.store.records import CheckLabel, CheckRecord, CheckStat, Feedback

from .conftest import item, presend

SECRET = "test-secret"
NOW = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)


@pytest.fixture
def traffic(db, tenant, beta):
    """120 records over 3 days, two accounts, every verdict, a few categories and rules."""
    items = []
    for i in range(120):
        acct = "ACME" if i % 3 else "BETA"
        verdict = ("allow", "allow", "review", "reject")[i % 4]
        cats = {"review": ["fraud"], "reject": ["gambling"] if i % 8 == 3 else ["gambling", "fraud"]}.get(verdict, [])
        rules = {"review": ["CLF_FRAUD"], "reject": ["KW_GAMBLING_CASINO"]}.get(verdict, [])
        items.append(item(NOW - timedelta(hours=i * 0.6), acct, verdict, cats, rules,
                          source="presend" if i % 5 else "moderate", message_id=f"t-{i}"))
    checks.store(db, items, "full", SECRET)
    return items


def _count(db, where) -> int:
    with db.session() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(CheckRecord).where(*where))


def test_stats_match_the_records(reviewer, tenant, db, traffic):
    start, end = NOW - timedelta(days=2), NOW + timedelta(hours=1)
    q = {"from": start.isoformat(), "to": end.isoformat(), "bucket": "hour"}
    st = reviewer.get("/v1/stats", query=q).json
    s, e = checks.stats_range(start, end)
    rng = [CheckRecord.at >= s, CheckRecord.at < e]
    total = _count(db, rng)
    assert st["totals"]["checks"] == total > 0
    for v in ("allow", "review", "reject"):
        assert st["totals"][v] == _count(db, rng + [CheckRecord.verdict == v])
    assert st["totals"]["reject_rate"] == pytest.approx(st["totals"]["reject"] / total, abs=1e-6)
    assert len(st["series"]) == int((e - s).total_seconds() // 3600)  # every hour, zeros included
    assert sum(p["checks"] for p in st["series"]) == total
    for p in st["series"]:
        at = datetime.fromisoformat(p["at"])
        assert p["checks"] == _count(db, [CheckRecord.at >= at, CheckRecord.at < at + timedelta(hours=1)])
    cats = {c["name"]: c for c in st["categories"]}
    with db.session() as ses:
        for name in ("gambling", "fraud"):
            n = ses.scalar(sa.select(sa.func.count()).select_from(CheckLabel).where(
                CheckLabel.kind == "category", CheckLabel.value == name, CheckLabel.at >= s, CheckLabel.at < e))
            assert cats[name]["checks"] == n
    rules = {r["name"]: r for r in st["rules"]}
    assert rules["KW_GAMBLING_CASINO"]["reject"] == st["totals"]["reject"]
    accts = {a["name"]: a["checks"] for a in st["accounts"]}
    assert accts == {a: _count(db, rng + [CheckRecord.account_id == a]) for a in ("ACME", "BETA")}
    # day buckets: the same totals
    st_day = reviewer.get("/v1/stats", query={**q, "bucket": "day"}).json
    assert st_day["totals"] == st["totals"] and sum(p["checks"] for p in st_day["series"]) == total
    # one source
    st_mod = reviewer.get("/v1/stats", query={**q, "source": "moderate"}).json
    assert st_mod["totals"]["checks"] == _count(db, rng + [CheckRecord.source == "moderate"])


def test_tenant_stats_are_its_own(tenant, beta, reviewer, traffic, db):
    q = {"from": (NOW - timedelta(days=3)).isoformat(), "to": (NOW + timedelta(hours=1)).isoformat()}
    mine = tenant.get("/v1/stats", query=q).json
    assert mine["account"] == "ACME" and mine["accounts"] is None and mine["bucket"] == "day"
    s, e = checks.stats_range(NOW - timedelta(days=3), NOW + timedelta(hours=1))
    assert mine["totals"]["checks"] == _count(db, [CheckRecord.account_id == "ACME", CheckRecord.at >= s,
                                                   CheckRecord.at < e])
    assert reviewer.get("/v1/stats", query={**q, "account": "ACME"}).json["totals"] == mine["totals"]
    assert tenant.get("/v1/stats", query={**q, "account": "BETA"}).status_code == 404
    assert beta.get("/v1/stats", query=q).json["totals"]["checks"] == \
        _count(db, [CheckRecord.account_id == "BETA", CheckRecord.at >= s, CheckRecord.at < e])


@pytest.mark.parametrize("query,field", [
    ({"from": "2026-01-01", "to": "2026-06-01"}, "from"),           # over 92 days
    ({"from": "2026-01-01", "to": "2026-02-01", "bucket": "hour"}, "bucket"),  # hours over 14 days
    ({"bucket": "week"}, "query.bucket"),
    ({"to": "2026-01-01", "from": "2026-01-02"}, "from"),
    ({"from": "1e9"}, "query.from"),
    ({"account": ""}, "query.account"),
    ({"nope": "1"}, "query.nope"),
])
def test_bad_stats_queries_are_422(reviewer, query, field):
    r = reviewer.get("/v1/stats", query=query)
    assert r.status_code == 422 and r.mimetype == "application/problem+json" and field in r.json["errors"], r.json


def test_prune_deletes_old_records_in_batches(db, reviewer, traffic):
    old = [item(NOW - timedelta(days=40, hours=i), "ACME", "reject", ["gambling"], ["KW_GAMBLING_CASINO"],
                message_id=f"old-{i}") for i in range(45)]
    old_ids = checks.store(db, old, "full", SECRET)
    with db.session() as s:  # feedback about an old check outlives it
        s.add(Feedback(submitted_by="key:x", submitted_role="tenant", account_id="ACME", check_id=old_ids[0],
                       text="kept", text_mode="full", expected="allow", status="pending", note="", decision_note="",
                       actions=[]))
    before = _count(db, [])
    dry = checks.prune(db, 30, dry_run=True)
    assert dry.records == 45 and _count(db, []) == before
    res = checks.prune(db, 30, batch=10, pause_s=0)
    assert res.records == 45 and res.batches == 5 and res.stats_rows > 0
    assert _count(db, []) == before - 45
    cut = checks.retention_cutoff(30)
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(CheckLabel).where(CheckLabel.at < cut)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(CheckStat).where(CheckStat.bucket < cut)) == 0
        fb = s.scalars(sa.select(Feedback)).one()
        assert fb.check_id is None and fb.text == "kept"
    # the figures of the kept range did not move
    assert reviewer.get("/v1/stats", query={"from": (NOW - timedelta(days=3)).isoformat()}).json["totals"][
        "checks"] == len(traffic)
    assert checks.prune(db, 30).records == 0


def test_prune_command(runner, db, traffic, monkeypatch):
    from app.cli import cli

    checks.store(db, [item(NOW - timedelta(days=20), message_id="d20")], "full", SECRET)
    r = runner.invoke(cli, ["prune", "--dry-run"])
    assert r.exit_code == 0 and "would delete 0 check record(s)" in r.output
    monkeypatch.setenv("SMSGUARD_CHECK_RETENTION_DAYS", "10")
    r = runner.invoke(cli, ["prune", "--json"])
    assert r.exit_code == 0, r.output
    assert '"records": 1' in r.output
    r = runner.invoke(cli, ["prune", "--days", "1"])
    assert r.exit_code == 0 and r.output.startswith("deleted ") and "(retention 1 days)" in r.output
    assert _count(db, []) == sum(1 for i in traffic if i.at >= checks.retention_cutoff(1))


def test_prune_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from app.cli import main

    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SMSGUARD_DATABASE_URL", f"sqlite:///{tmp_path / 'missing.db'}")
    assert main(["prune"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("smsguard: error:") and err.count("\n") == 1
    assert main(["prune", "--days", "0"]) == 2
    monkeypatch.setenv("SMSGUARD_CHECK_TEXT", "some")
    assert main(["prune"]) == 1
    assert "SMSGUARD_CHECK_TEXT" in capsys.readouterr().err


def test_a_complaint_links_to_its_check(admin, tenant, acme_template, flush, db):
    presend(tenant, acme_template, message_id="c-1", phone="+8613800138011")
    presend(tenant, acme_template, message_id="c-2", phone="+8613800138012")
    flush()
    first = tenant.get("/v1/checks", query={"message_id": "c-1"}).json["items"][0]
    r = tenant.post("/v1/complaints", {"phone": "+8613800138011", "message_id": "c-1", "source": "user",
                                       "external_id": "x-1", "reason": "spam"})
    assert r.status_code == 201 and r.json["check_id"] == first["id"]
    again = tenant.post("/v1/complaints", {"phone": "+8613800138011", "message_id": "c-1", "source": "user",
                                           "external_id": "x-1"})
    assert again.status_code == 200 and again.json["check_id"] == first["id"]
    d = tenant.get(f"/v1/checks/{first['id']}").json
    assert [c["id"] for c in d["complaints"]] == [r.json["id"]] and d["complaints"][0]["reason"] == "spam"
    # unknown or absent message id: no link
    r = admin.post("/v1/complaints", {"account": "ACME", "phone": "+8613800138013", "message_id": "nope",
                                      "source": "carrier"})
    assert r.status_code == 201 and r.json["check_id"] is None
    r = admin.post("/v1/complaints", {"account": "ACME", "phone": "+8613800138014", "source": "carrier"})
    assert r.json["check_id"] is None
    # another account's message id never links
    r = admin.post("/v1/complaints", {"account": "BETA", "phone": "+8613800138015", "message_id": "c-2",
                                      "source": "carrier"})
    assert r.status_code in (201, 404) and (r.status_code == 404 or r.json["check_id"] is None)


def test_a_batch_split_over_several_statements_is_written_whole(db, tenant, beta, monkeypatch):
    """On SQLite a batch is written as multi-row statements, as many as the parameter limit
    needs: with a limit of 40, two records, eight labels or five counts per statement. Every
    record keeps its id in order, every label its record, and counts that meet an existing
    hour's row are added to it."""
    monkeypatch.setattr(checks, "SQLITE_MAX_PARAMS", 40)
    at = NOW - timedelta(minutes=10)
    first = [item(at, "ACME" if i % 2 else "BETA", "reject", ["gambling", "fraud"], ["KW_GAMBLING_CASINO"],
                  message_id=f"split-{i}") for i in range(51)]
    ids = checks.store(db, first, "full", SECRET)
    assert ids == list(range(ids[0], ids[0] + 51))
    more = [item(at, "ACME", "reject", ["gambling"], [], message_id=f"more-{i}") for i in range(9)]
    checks.store(db, more, "full", SECRET)
    with db.session() as s:
        recs = dict(s.execute(sa.select(CheckRecord.id, CheckRecord.message_id)).all())
        assert [recs[i] for i in ids] == [f"split-{i}" for i in range(51)]
        labels = s.execute(sa.select(CheckLabel.check_id, CheckLabel.kind, CheckLabel.value)).all()
        assert len(labels) == 51 * 3 + 9
        assert {(k, v) for c, k, v in labels if c == ids[7]} == {
            ("category", "gambling"), ("category", "fraud"), ("rule", "KW_GAMBLING_CASINO")}
        n = {(r.account_id, r.dim, r.value): r.n for r in s.scalars(
            sa.select(CheckStat).where(CheckStat.verdict == "reject", CheckStat.source == "presend"))}
    assert n[(checks.ALL_ACCOUNTS, "all", "")] == 60
    assert n[(checks.ALL_ACCOUNTS, "category", "gambling")] == 60
    assert n[(checks.ALL_ACCOUNTS, "category", "fraud")] == 51
    assert n[("ACME", "all", "")] == 25 + 9 and n[("BETA", "all", "")] == 26


def test_multirow_keeps_the_conflict_clause_and_the_parameter_limit():
    sql, params = checks.UPSERT_STAT, [{"b": i, "a": "A", "s": "presend", "v": "allow", "d": "all", "x": "", "n": 1}
                                       for i in range(12)]
    chunks = list(checks.multirow(sql, params, 30))  # 7 parameters a row: 4 rows a statement
    assert [len(v) for _, v in chunks] == [28, 28, 28]
    assert all(q.endswith("DO UPDATE SET n = check_stats.n + excluded.n") and q.count("(?, ?, ?, ?, ?, ?, ?)") == 4
               for q, _ in chunks)
    assert [v[0] for _, v in chunks] == [0, 4, 8]
    assert list(checks.multirow(sql, [], 30)) == []
