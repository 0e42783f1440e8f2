"""Sign-in hardening (issue 14, items 7 and 8): attempts limited per user and per address without
hashing while refusing, password hashing bounded per worker, session cookies that last the
documented 12 hours, and sign-out that ends the session on the server side."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from .conftest import PASSWORD, csrf_of

WRONG = "not the password at all"


class CountingHasher:
    """Stands in for app.services.users._hasher and counts password verifications."""

    def __init__(self, inner, gate: threading.Event | None = None):
        self.inner, self.gate, self.calls = inner, gate, 0
        self.entered = threading.Event()

    def verify(self, *args):
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never released the hasher"
        return self.inner.verify(*args)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def hasher(monkeypatch):
    from app.services import users

    h = CountingHasher(users._hasher)
    monkeypatch.setattr(users, "_hasher", h)
    return h


@pytest.fixture
def clock(monkeypatch):
    """Move the sign-in clock: clock.advance(seconds)."""
    from app.web import auth

    class Clock:
        offset = 0.0

        def advance(self, seconds: float) -> None:
            self.offset += seconds

    c = Clock()
    monkeypatch.setattr(auth, "_now", lambda: time.time() + c.offset, raising=False)
    return c


@pytest.fixture
def make_app(settings, moderator):
    """An app over the same database with some settings changed."""
    from app import create_app

    made = []

    def make(**overrides):
        application = create_app(replace(settings, **overrides), moderator=moderator)
        application.config["TESTING"] = True
        made.append(application)
        return application

    yield make
    for a in made:
        a.extensions["smsguard.db"].dispose()


def _client(app, addr: str = "192.0.2.1", **environ):
    c = app.test_client()
    c.environ_base.update(REMOTE_ADDR=addr, **environ)
    return c


def _login(c, username: str, password: str, **headers):
    token = csrf_of(c.get("/login").text)
    return c.post("/login", data={"username": username, "password": password, "csrf_token": token},
                  headers=headers)


def _signed_in(c) -> bool:
    r = c.get("/review/")
    assert r.status_code in (200, 302)
    return r.status_code == 200


# ---------------------------------------------------------------- item 7: sign-in attempts

def test_forty_wrong_passwords_then_the_right_one_is_refused_during_the_cooldown(app, web_user, hasher, clock):
    c = _client(app)
    codes = [_login(c, web_user, WRONG).status_code for _ in range(40)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}, codes
    r = _login(c, web_user, PASSWORD)
    assert r.status_code == 429 and r.mimetype == "text/html"
    assert "Too many failed sign-in attempts" in r.text
    assert 0 < int(r.headers["Retry-After"]) <= 900
    assert not _signed_in(c)
    assert hasher.calls == 5  # refused attempts never reach the password hash
    # still refused near the end of the cooldown, admitted after it
    clock.advance(800)
    assert _login(c, web_user, PASSWORD).status_code == 429
    clock.advance(101)
    assert _login(c, web_user, PASSWORD).status_code == 302
    assert _signed_in(c)


def test_a_refused_attempt_does_not_hash_the_password(app, web_user, hasher):
    c = _client(app)
    for _ in range(5):
        assert _login(c, web_user, WRONG).status_code == 401
    assert hasher.calls == 5
    for password in (WRONG, PASSWORD, "x" * 1024):
        assert _login(c, web_user, password).status_code == 429
    assert hasher.calls == 5


def test_a_locked_user_is_locked_from_every_address_other_users_are_not(app, db, web_user, hasher):
    from app.services import users

    with db.session() as s:
        users.create(s, "ann", PASSWORD, "reviewer", actor="test")
    attacker = _client(app, "198.51.100.7")
    for _ in range(5):
        assert _login(attacker, web_user, WRONG).status_code == 401
    # rita's lock holds wherever the attempt comes from (the guesser may use many addresses)
    assert _login(_client(app, "192.0.2.50"), web_user, PASSWORD).status_code == 429
    # another user signs in from the attacker's address too: five failures are under its limit
    other = _client(app, "198.51.100.7")
    assert _login(other, "ann", PASSWORD).status_code == 302 and _signed_in(other)


def test_many_usernames_from_one_address_lock_that_address_only(app, web_user, hasher):
    attacker = _client(app, "198.51.100.9")
    for i in range(20):  # one guess each: no user reaches its own limit
        assert _login(attacker, f"guess{i}", WRONG).status_code == 401
    assert hasher.calls == 20  # unknown users cost one (bounded) verification each, like known ones
    r = _login(attacker, web_user, PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert hasher.calls == 20
    elsewhere = _client(app, "192.0.2.60")
    assert _login(elsewhere, web_user, PASSWORD).status_code == 302 and _signed_in(elsewhere)


def test_a_successful_sign_in_resets_the_users_counter(app, web_user):
    for _ in range(2):
        c = _client(app)
        for _ in range(4):
            assert _login(c, web_user, WRONG).status_code == 401
        assert _login(c, web_user, PASSWORD).status_code == 302
    # eight failures in the window but never five in a row: still allowed
    assert _signed_in(c)


def test_a_forged_forwarded_for_header_does_not_escape_the_address_limit(make_app, web_user):
    app = make_app(login_addr_max_failures=4)  # fewer hashes than the default 20, same logic
    c = _client(app, "198.51.100.20")
    for i in range(4):
        assert _login(c, f"guess{i}", WRONG, **{"X-Forwarded-For": f"203.0.113.{i}"}).status_code == 401
    r = _login(c, web_user, PASSWORD, **{"X-Forwarded-For": "203.0.113.99"})
    assert r.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_is_limited(make_app, web_user):
    app = make_app(login_proxy_hops=1, login_addr_max_failures=4)
    proxy = _client(app, "127.0.0.1")
    for i in range(4):
        xff = {"X-Forwarded-For": "10.9.9.9, 203.0.113.5"}  # the client's own claim, then nginx's
        assert _login(proxy, f"guess{i}", WRONG, **xff).status_code == 401
    assert _login(proxy, web_user, PASSWORD, **{"X-Forwarded-For": "203.0.113.5"}).status_code == 429
    other = _client(app, "127.0.0.1")
    assert _login(other, web_user, PASSWORD, **{"X-Forwarded-For": "203.0.113.6"}).status_code == 302


def test_the_limits_are_settings(make_app, web_user, hasher):
    app = make_app(login_max_failures=2, login_lockout_s=60)
    c = _client(app)
    assert [_login(c, web_user, WRONG).status_code for _ in range(3)] == [401, 401, 429]
    r = _login(c, web_user, PASSWORD)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) <= 60


def test_settings_from_the_environment(monkeypatch, tmp_path):
    from app.config import Settings

    s = Settings.from_env(instance_dir=tmp_path)
    assert (s.login_max_failures, s.login_addr_max_failures, s.login_window_s, s.login_lockout_s,
            s.login_hash_concurrency, s.login_proxy_hops) == (5, 20, 900, 900, 1, 0)
    assert s.session_lifetime_s == 12 * 3600 and s.session_cookie_secure is False
    for name, value in {"LOGIN_MAX_FAILURES": "3", "LOGIN_ADDR_MAX_FAILURES": "9", "LOGIN_WINDOW_S": "60",
                        "LOGIN_LOCKOUT_S": "120", "LOGIN_HASH_CONCURRENCY": "2", "LOGIN_PROXY_HOPS": "1",
                        "SESSION_LIFETIME_S": "3600", "SESSION_COOKIE_SECURE": "1"}.items():
        monkeypatch.setenv(f"SMSGUARD_{name}", value)
    s = Settings.from_env(instance_dir=tmp_path)
    assert (s.login_max_failures, s.login_addr_max_failures, s.login_window_s, s.login_lockout_s,
            s.login_hash_concurrency, s.login_proxy_hops) == (3, 9, 60, 120, 2, 1)
    assert s.session_lifetime_s == 3600 and s.session_cookie_secure is True
    monkeypatch.setenv("SMSGUARD_LOGIN_HASH_CONCURRENCY", "0")
    with pytest.raises(ValueError, match="LOGIN_HASH_CONCURRENCY"):
        Settings.from_env(instance_dir=tmp_path)


def test_password_hashing_is_bounded_and_excess_attempts_are_refused_at_once(app, db, web_user, monkeypatch):
    """One verification at a time per worker (the default): a second attempt while one runs is
    a 503 at once, without hashing and without counting as a failure."""
    from app.services import users

    release = threading.Event()
    h = CountingHasher(users._hasher, gate=release)
    monkeypatch.setattr(users, "_hasher", h)
    first = _client(app, "192.0.2.70")
    token = csrf_of(first.get("/login").text)
    result = {}

    def slow_sign_in():
        result["r"] = first.post("/login", data={"username": web_user, "password": PASSWORD, "csrf_token": token})

    t = threading.Thread(target=slow_sign_in)
    t.start()
    try:
        assert h.entered.wait(10)
        for name in (web_user, "nobody"):  # a known and an unknown user alike
            started = time.perf_counter()
            r = _login(_client(app, "192.0.2.71"), name, WRONG)
            assert r.status_code == 503 and r.mimetype == "text/html", r.status_code
            assert r.headers["Retry-After"] == "1"
            assert time.perf_counter() - started < 2  # answered at once, not queued
        assert h.calls == 1
    finally:
        release.set()
        t.join(10)
    assert result["r"].status_code == 302
    # the refused attempts were not failures: four more wrong passwords do not lock rita out
    h.gate = None
    c = _client(app, "192.0.2.72")
    for _ in range(4):
        assert _login(c, web_user, WRONG).status_code == 401
    assert _login(c, web_user, PASSWORD).status_code == 302


# ---------------------------------------------------------------- item 8: sessions

def _session_cookie_header(resp) -> str:
    cookies = [v for v in resp.headers.getlist("Set-Cookie") if v.startswith("session=")]
    assert cookies, resp.headers
    return cookies[-1]


def _attrs(header: str) -> dict[str, str]:
    out = {}
    for part in header.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        out[k.lower()] = v
    return out


def test_the_session_cookie_lasts_twelve_hours(app, web_user):
    assert app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=12)
    r = _login(_client(app), web_user, PASSWORD)
    assert r.status_code == 302
    attrs = _attrs(_session_cookie_header(r))
    expires = parsedate_to_datetime(attrs["expires"])
    expected = datetime.now(UTC) + timedelta(hours=12)
    assert abs((expires - expected).total_seconds()) < 120, attrs["expires"]
    assert "httponly" in attrs and attrs["samesite"].lower() == "lax"
    assert "secure" not in attrs  # plain HTTP unless SMSGUARD_SESSION_COOKIE_SECURE is set


def test_a_session_ends_twelve_hours_after_sign_in_even_when_used(app, web_user, clock):
    c = _client(app)
    assert _login(c, web_user, PASSWORD).status_code == 302
    for _ in range(4):  # in use all along: activity does not extend it
        clock.advance(3 * 3600 - 60)
        assert _signed_in(c)
    clock.advance(300)
    assert not _signed_in(c)


def test_a_cookie_copied_before_sign_out_is_refused_after_it(app, web_user):
    browser = _client(app)
    assert _login(browser, web_user, PASSWORD).status_code == 302
    copied = browser.get_cookie("session").value
    thief = _client(app, "203.0.113.66")
    thief.set_cookie("session", copied)
    assert _signed_in(thief)
    token = csrf_of(browser.get("/review/").text)
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    assert not _signed_in(browser)
    thief.set_cookie("session", copied)  # the copy as it was before sign-out
    r = thief.get("/review/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # signing in again works and makes a new session; the old copy stays dead
    assert _login(browser, web_user, PASSWORD).status_code == 302 and _signed_in(browser)
    thief.set_cookie("session", copied)
    assert not _signed_in(thief)


def test_a_password_change_still_ends_open_sessions(app, db, web_user):
    from app.services import users

    c = _client(app)
    assert _login(c, web_user, PASSWORD).status_code == 302 and _signed_in(c)
    with db.session() as s:
        users.set_password(s, web_user, "another long password", actor="test")
    assert not _signed_in(c)


def test_the_secure_setting_sets_the_secure_flag(make_app, web_user):
    app = make_app(session_cookie_secure=True)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    c = _client(app)
    token = csrf_of(c.get("/login", base_url="https://localhost").text)
    r = c.post("/login", base_url="https://localhost", headers={"Referer": "https://localhost/login"},
               data={"username": web_user, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    attrs = _attrs(_session_cookie_header(r))
    assert "secure" in attrs and "httponly" in attrs and attrs["samesite"].lower() == "lax"
