"""Complaints arriving at the same moment on several workers lose nothing and suspend once.

Two apps over one database (as two gunicorn workers: each its own engine and connection pool),
each served by a real threaded HTTP server on 127.0.0.1; N signed complaints fired from N
threads at once, alternating between the two servers. Runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from app.client import Client
from app.store.models import AccountStateChange, Complaint, Event, OptOut

N = 16
# no warning step: the third complaint reaches the suspend level directly
POLICY = "enforcement:\n  count: {warn: null, suspend: 3, terminate: 1000}\n"


@pytest.fixture
def servers(settings, moderator, sending_rules, app, clock):
    from app import create_app
    from app.api.messages import service

    rules_dir = sending_rules(POLICY)
    apps = [app, create_app(settings, moderator=moderator)]
    with apps[1].app_context():
        service().rules_dir = rules_dir
        service().clock = clock  # both servers check at the same (test) time
    running = []
    for a in apps:
        srv = make_server("127.0.0.1", 0, a, threaded=True)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        running.append((srv, t))
    yield [f"http://127.0.0.1:{srv.server_port}" for srv, _ in running]
    for srv, t in running:
        srv.shutdown()
        t.join(5)
    apps[1].extensions["smsguard.db"].dispose()


def test_concurrent_complaints_are_all_stored_and_suspend_once(servers, admin, tenant, db):
    clients = [Client(url, admin.public_key, admin.private_key, timeout=30) for url in servers]
    barrier = threading.Barrier(N)
    results: list = [None] * N

    def fire(i: int) -> None:
        barrier.wait()
        try:
            results[i] = clients[i % 2].request("POST", "/v1/complaints", {
                "account": "ACME", "phone": f"+86138001380{i:02d}", "source": "carrier",
                "external_id": f"burst-{i}", "reason": "spam"}, raise_for_status=False)
        except Exception as exc:  # noqa: BLE001 - reported below
            results[i] = exc

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    statuses = [getattr(r, "status", r) for r in results]
    assert statuses == [201] * N, statuses
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Complaint)) == N
        assert s.scalar(sa.select(sa.func.count()).select_from(OptOut)) == N
        changes = s.scalars(sa.select(AccountStateChange)).all()
        assert [(c.from_status, c.to_status, c.rule) for c in changes] == \
            [("active", "suspended", "ACCT_COMPLAINT_COUNT")]
        assert len(changes[0].evidence["complaints"]) == 3
        assert s.scalar(sa.select(sa.func.count()).select_from(Event).where(Event.kind == "account.suspended")) == 1
    # the same burst again (same external ids): idempotent, nothing new
    again = [clients[i % 2].request("POST", "/v1/complaints", {
        "account": "ACME", "phone": f"+86138001380{i:02d}", "source": "carrier",
        "external_id": f"burst-{i}"}, raise_for_status=False).status for i in range(N)]
    assert again == [200] * N
    with db.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Complaint)) == N


def test_concurrent_checks_count_every_message_once(servers, tenant, templates, db):
    """Pre-send checks in parallel on both servers: each recipient's minute limit (1) holds
    across the servers, and every allowed check is counted in the daily volume."""
    from app.store.models import DailyVolume

    clients = [Client(url, tenant.public_key, tenant.private_key, timeout=30) for url in servers]
    n, phones = 24, 6
    barrier = threading.Barrier(n)
    verdicts: list = [None] * n

    def fire(i: int) -> None:
        barrier.wait()
        r = clients[i % 2].request("POST", "/v1/messages/check", {
            "template_id": templates["verification"], "params": {"code": "123456"},
            "phone": f"+861380013810{i % phones}", "send_at": "2026-03-02T04:00:30+00:00"},
            raise_for_status=False)
        verdicts[i] = (r.status, (r.json() or {}).get("verdict"), (r.json() or {}).get("forced_by"))

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(v[0] == 200 for v in verdicts), verdicts
    allowed = [v for v in verdicts if v[1] == "allow"]
    assert len(allowed) == phones
    assert {v[2] for v in verdicts if v[1] != "allow"} == {"ACCT_FREQUENCY_MINUTE"}
    with db.session() as s:
        vol = s.scalar(sa.select(DailyVolume).where(DailyVolume.account_id == "ACME"))
        assert (vol.allowed, vol.rejected) == (phones, n - phones)
