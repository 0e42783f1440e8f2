"""Limits: per-key rate limits (429 + Retry-After), body and text size limits, constant-time
signature comparison, and secrets that never reach logs or API responses."""
from __future__ import annotations

import contextlib
import hmac
import inspect
import logging
import multiprocessing
import re
from dataclasses import replace

import pytest

from app.api import auth, ratelimit
from app.api.ratelimit import RateLimiter
from app.config import Settings

PASSWORD = "correct horse battery staple 42!"


def set_limits(app, **kw) -> None:
    """New rate-limit settings for this app (the limiter re-reads them on its next use)."""
    app.config["SMSGUARD"] = replace(app.config["SMSGUARD"], **kw)
    app.extensions.pop("smsguard.ratelimit", None)


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def fake_clock(app) -> FakeClock:
    with app.app_context():
        lim = ratelimit.limiter()
    lim.clock = FakeClock()
    return lim.clock


def moderate(client, text="您好，您的快递已到驿站"):
    return client.post("/v1/moderate", {"text": text})


# ---------------------------------------------------------------------------------- rate limits

def test_over_the_limit_is_429_with_retry_after(app, make_client):
    set_limits(app, rate_limit_per_key=0.5, rate_limit_burst=3)
    clock = fake_clock(app)
    c = make_client("tenant", "ACME")
    assert [moderate(c).status_code for _ in range(3)] == [200, 200, 200]
    r = moderate(c)
    assert r.status_code == 429
    assert r.mimetype == "application/problem+json"
    assert r.headers["Retry-After"] == "2"  # one token at 0.5/s
    body = r.get_json()
    assert body["status"] == 429 and body["limit"] == 0.5 and body["retry_after"] == 2
    assert "rate limit" in body["detail"]
    # the bucket refills with time
    clock.t += 2.0
    assert moderate(c).status_code == 200
    assert moderate(c).status_code == 429


def test_another_key_is_unaffected(app, make_client):
    set_limits(app, rate_limit_per_key=1, rate_limit_burst=2)
    fake_clock(app)
    a = make_client("tenant", "ACME")
    b = make_client("tenant", "ACME")  # the same account, another key: its own bucket
    assert [moderate(a).status_code for _ in range(3)] == [200, 200, 429]
    assert [moderate(b).status_code for _ in range(2)] == [200, 200]
    assert moderate(a).status_code == 429


def test_limits_per_role_and_off(app, make_client):
    set_limits(app, rate_limit_per_key=1, rate_limit_burst=1, rate_limit_roles="admin=0,reviewer=1/2")
    fake_clock(app)
    admin = make_client("admin")
    reviewer = make_client("reviewer")
    tenant = make_client("tenant", "ACME")
    assert all(admin.get("/v1/accounts").status_code == 200 for _ in range(5))  # 0 = no limit
    assert [reviewer.get("/v1/accounts").status_code for _ in range(3)] == [200, 200, 429]
    assert [moderate(tenant).status_code for _ in range(2)] == [200, 429]


def test_rejected_signatures_spend_no_tokens(app, make_client):
    """The limit runs after signature verification: forged requests cannot drain a key."""
    set_limits(app, rate_limit_per_key=1, rate_limit_burst=1)
    fake_clock(app)
    c = make_client("tenant", "ACME")
    for _ in range(5):
        h = c.headers("POST", "/v1/moderate", [], b'{"text":"x"}')
        h["X-Signature"] = "0" * 64
        r = c.client.post("/v1/moderate", data=b'{"text":"x"}', headers=h, content_type="application/json")
        assert r.status_code == 401
    assert moderate(c).status_code == 200


def test_settings_rate_limit_parsing(tmp_path):
    s = Settings(instance_dir=tmp_path, secret_key="x", rate_limit_per_key=100, rate_limit_burst=0,
                 rate_limit_roles="reviewer=5, admin=50/200")
    assert s.rate_limit("tenant") == (100, 100)  # burst 0: one second's worth
    assert s.rate_limit("reviewer") == (5, 5)
    assert s.rate_limit("admin") == (50, 200)
    assert Settings().rate_limit("tenant")[0] >= 1000  # the default does not hurt the pre-send load
    with pytest.raises(ValueError, match="RATE_LIMIT_ROLES"):
        Settings(instance_dir=tmp_path, secret_key="x", rate_limit_roles="admin:5").resolved()
    with pytest.raises(ValueError, match="RATE_LIMIT_ROLES"):
        Settings(instance_dir=tmp_path, secret_key="x", rate_limit_roles="admin=-1").resolved()


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(tmp_path))
    monkeypatch.setenv("SMSGUARD_RATE_LIMIT_PER_KEY", "7")
    monkeypatch.setenv("SMSGUARD_RATE_LIMIT_BURST", "9")
    monkeypatch.setenv("SMSGUARD_RATE_LIMIT_ROLES", "admin=1")
    s = Settings.from_env()
    assert (s.rate_limit("tenant"), s.rate_limit("admin")) == ((7, 9), (1, 1))


def _take_many(path: str, n: int, q) -> None:
    lim = RateLimiter(path)
    q.put(sum(lim.take(42, 1e-6, 50) == 0.0 for _ in range(n)))


def test_buckets_are_shared_across_processes(tmp_path):
    """Two processes (gunicorn workers) spend the same bucket: 50 tokens in all, not 50 each."""
    path = str(tmp_path / ratelimit.FILE_NAME)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_take_many, args=(path, 40, q)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sum(got) == 50, got


def test_slot_reuse_when_the_table_is_full(tmp_path):
    lim = RateLimiter(tmp_path / "rl.bin", slots=8, clock=FakeClock())
    for key in range(100):  # far more keys than slots: the idlest slot is reused
        assert lim.take(key, 1, 1) == 0.0
    assert lim.take(99, 1, 1) > 0  # the most recent key still has its (empty) bucket


def test_unwritable_instance_lets_requests_through(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    lim = RateLimiter(blocker / "rl.bin")
    with caplog.at_level(logging.ERROR, logger="smsguard.api"):
        assert lim.take(1, 1, 1) == 0.0
        assert lim.take(1, 1, 1) == 0.0
    assert "rate limiter disabled" in caplog.text


# ------------------------------------------------------------------------------- size limits

def test_request_body_over_the_limit_is_413(app, tenant):
    limit = app.config["SMSGUARD"].max_body_bytes
    r = tenant.post("/v1/moderate", {"text": "x" * (limit + 10)})
    assert r.status_code == 413
    assert r.mimetype == "application/problem+json"
    assert str(limit) in r.get_json()["detail"]


def test_sms_text_over_the_limit_is_422_naming_it(app, tenant):
    limit = app.config["SMSGUARD"].max_sms_chars
    assert moderate(tenant, "好" * limit).status_code == 200
    r = moderate(tenant, "好" * (limit + 1))
    assert r.status_code == 422
    body = r.get_json()
    assert body["limit"] == limit
    assert str(limit) in body["detail"] and "text" in body["errors"]


def test_presend_filled_text_over_the_limit_is_refused(app, tenant, db):
    """The pre-send check: a param that makes the message longer than the limit never reaches
    the engine as a 100k-character text; the answer is a 422 or a reject, never a 5xx."""
    from tests.presend.conftest import make_template

    tid = make_template(db, "ACME", "notification", "您的订单${order}已发货。", {"order": "code"})
    limit = app.config["SMSGUARD"].max_sms_chars
    r = tenant.post("/v1/messages/check", {"template_id": tid, "params": {"order": "8" * (limit + 50)},
                                           "phone": "+8613800138000"})
    assert r.status_code in (200, 422), r.get_data(as_text=True)
    if r.status_code == 200:
        assert r.get_json()["verdict"] == "reject"
    else:
        assert str(limit) in r.get_json()["detail"] or "long" in r.get_json()["detail"]


# ------------------------------------------------------------------- constant-time comparison

def test_signature_is_compared_in_constant_time(app, tenant, monkeypatch):
    src = inspect.getsource(auth)
    assert "hmac.compare_digest(expected, signature)" in src
    # no plain equality on a signature anywhere in the verification code
    assert not re.search(r"(expected|signature)\s*[!=]=\s*(expected|signature)", src)
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert moderate(tenant).status_code == 200
    assert len(calls) == 1 and calls[0][0] == calls[0][1]


# ------------------------------------------------------------------------ secrets stay secret

@contextlib.contextmanager
def all_logs():
    """Every log record of every logger, rendered by the service's JSON formatter (so extra
    fields count too)."""
    from app.logs import JsonFormatter

    lines: list[str] = []
    fmt = JsonFormatter()

    class H(logging.Handler):
        def emit(self, record):
            lines.append(fmt.format(record))

    root = logging.getLogger()
    h = H(level=logging.DEBUG)
    old = root.level
    root.addHandler(h)
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(h)
        root.setLevel(old)


def test_secrets_never_logged_nor_returned(app, db, runner, admin):
    from app.cli import cli
    from app.services import users

    with all_logs() as lines:
        # a key created on the command line: printed this once, never logged
        out = runner.invoke(cli, ["keys", "create", "--account", "ACME", "--role", "tenant", "--json"])
        if out.exit_code != 0:  # older CLI without --json
            out = runner.invoke(cli, ["keys", "create", "--account", "ACME", "--role", "tenant"])
        assert out.exit_code == 0, out.output
        sk = re.search(r"sk_[A-Za-z0-9_\-]+", out.output).group(0)
        pk = re.search(r"pk_[0-9a-f]+", out.output).group(0)
        # a user created on the command line, and a failed then a good sign-in
        r = runner.invoke(cli, ["users", "create", "alice", "--role", "reviewer", "--password-stdin"],
                          input=PASSWORD + "\n")
        assert r.exit_code == 0, r.output
        with db.session() as s:
            users.create(s, "bob", PASSWORD, "admin", actor="test")
        web = app.test_client()
        page = web.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        bad = web.post("/login", data={"username": "alice", "password": PASSWORD + "x", "csrf_token": token})
        assert bad.status_code == 401
        assert PASSWORD not in bad.get_data(as_text=True)
        good = web.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
        assert good.status_code in (302, 303)
        # signed requests with the new key, good and bad
        from tests.conftest import SignedClient

        c = SignedClient(app.test_client(), pk, sk, "ACME", "tenant")
        assert moderate(c).status_code == 200
        h = c.headers("POST", "/v1/moderate", [], b"{}")
        h["X-Signature"] = "f" * 64
        assert c.client.post("/v1/moderate", data=b"{}", headers=h,
                             content_type="application/json").status_code == 401
        # every API response after creation: no private key, no password, no hash
        answers = [admin.get("/v1/accounts"), admin.get("/v1/accounts/ACME"), c.get("/v1/accounts/ACME"),
                   admin.get("/openapi.json")]
    text = "\n".join(lines)
    assert lines, "no log records were captured"
    assert sk not in text and sk[3:] not in text
    assert PASSWORD not in text
    assert c.private_key not in text and admin.private_key not in text
    for r in answers:
        body = r.get_data(as_text=True)
        assert sk not in body and admin.private_key not in body and PASSWORD not in body
        assert "private_key" not in body and "password_hash" not in body, r.request.path


def test_key_listing_hides_private_keys(runner, app, admin):
    from app.cli import cli

    out = runner.invoke(cli, ["keys", "list"])
    assert out.exit_code == 0, out.output
    assert admin.public_key in out.output
    assert admin.private_key not in out.output
