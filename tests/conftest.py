"""Shared fixtures: a fresh database per test (SQLite always, PostgreSQL when
SMSGUARD_TEST_POSTGRES_URL is set), the app over it, and clients that sign like a real caller."""
from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.config import PROJECT_ROOT, Settings
from app.services.keys import sign
from app.store import migrate

PG_URL = os.environ.get("SMSGUARD_TEST_POSTGRES_URL")
ENGINES = ["sqlite"] + (["postgres"] if PG_URL else [])
MODEL_DIR = PROJECT_ROOT / "models" / "smsguard-zh-en"


def _pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=ENGINES)
def db_url(request, tmp_path):
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def migrated_url(db_url):
    migrate.upgrade(db_url)
    return db_url


@pytest.fixture(scope="session")
def moderator():
    """One engine for the whole run (building it is the slow part): shipped rules and model."""
    from app.engine.moderator import Moderator

    model = MODEL_DIR if (MODEL_DIR / "metadata.json").exists() else None
    m = Moderator.from_paths(PROJECT_ROOT / "rules", model_dir=model, watch=False)
    yield m
    m.close()


@pytest.fixture
def settings(tmp_path, migrated_url) -> Settings:
    model = MODEL_DIR if (MODEL_DIR / "metadata.json").exists() else None
    return Settings(instance_dir=tmp_path / "instance", database_url=migrated_url,
                    model_dir=model, watch_rules=False, secret_key="test-secret").resolved()


@pytest.fixture
def app(settings, moderator):
    from app import create_app

    application = create_app(settings, moderator=moderator)
    application.config["TESTING"] = True
    yield application
    application.extensions["smsguard.db"].dispose()


@pytest.fixture
def db(app):
    return app.extensions["smsguard.db"]


class SignedClient:
    """Wraps Flask's test client and signs each request exactly as docs/signing.md says."""

    def __init__(self, client, public_key: str, private_key: str, account: str | None, role: str):
        self.client = client
        self.public_key = public_key
        self.private_key = private_key
        self.account = account
        self.role = role

    def headers(self, method: str, path: str, query: list[tuple[str, str]], body: bytes,
                ts: str | None = None, nonce: str | None = None) -> dict:
        ts = ts or str(int(time.time()))
        nonce = nonce or secrets.token_hex(16)
        return {"X-Api-Key": self.public_key, "X-Timestamp": ts, "X-Nonce": nonce,
                "X-Signature": sign(self.private_key, method, path, query, ts, nonce, body)}

    def open(self, method: str, path: str, json_body=None, query: dict | None = None,
             raw: bytes | None = None, content_type: str = "application/json", **hdr):
        body = raw if raw is not None else (b"" if json_body is None else
                                            json.dumps(json_body, ensure_ascii=False).encode())
        q = [(k, str(v)) for k, v in (query or {}).items()]
        headers = self.headers(method, path, q, body)
        headers.update(hdr)
        return self.client.open(path, method=method, data=body or None, query_string=q,
                                headers=headers, content_type=content_type if body else None)

    def get(self, path, **kw):
        return self.open("GET", path, **kw)

    def post(self, path, json_body=None, **kw):
        return self.open("POST", path, json_body=json_body, **kw)

    def delete(self, path, **kw):
        return self.open("DELETE", path, **kw)


@pytest.fixture
def make_client(app, db):
    """make_client(role, account=None) -> a SignedClient holding a fresh key pair."""
    from app.services import keys

    def make(role: str, account: str | None = None) -> SignedClient:
        with db.session() as s:
            k = keys.create(s, account, role, actor="test")
        return SignedClient(app.test_client(), k.public_key, k.private_key, account, role)

    return make


@pytest.fixture
def admin(make_client):
    return make_client("admin")


@pytest.fixture
def tenant(make_client):
    return make_client("tenant", "ACME")


@pytest.fixture
def runner(settings, monkeypatch):
    """click runner with the CLI pointed at the test database."""
    from click.testing import CliRunner

    monkeypatch.setenv("SMSGUARD_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(settings.instance_dir))
    return CliRunner()


def pytest_report_header(config):
    return [f"database engines: {', '.join(ENGINES)}",
            f"shipped model: {'present' if (MODEL_DIR / 'metadata.json').exists() else 'absent'}"]


# --------------------------------------------------------------------------- browser tests
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


@pytest.fixture
def serve():
    """``serve(app) -> base URL``: the app served by a real server in a thread until the test ends."""
    import threading

    from werkzeug.serving import make_server

    running = []

    def start(app) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in running:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def browser():
    """``browser() -> page``: new Chromium pages (Debian's /usr/bin/chromium, Playwright's sync
    API), each in its own context (its own cookies: one per person); the test fails on any script
    error or CSP violation in any of them."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS)
        errors: list[str] = []

        def new_page(width: int = 1440, height: int = 900):
            context = b.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
            pg = context.new_page()
            pg.set_default_timeout(15000)
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            return pg

        yield new_page
        b.close()
        assert not errors, errors  # no script errors, no CSP violations


@pytest.fixture
def page(browser):
    """One Chromium page (see ``browser``)."""
    return browser(1366, 900)


def sign_in(page, base: str, username: str, password: str, at: str = "/review/") -> None:
    """In a browser page: open ``at`` signed out, land on the sign-in form (``next=at``), sign in,
    and be back at ``at`` (the browser tests' one way in)."""
    from playwright.sync_api import expect

    page.goto(f"{base}{at}")
    expect(page).to_have_url(f"{base}/login?next={at}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}{at}")


def browser_app(tmp_path: Path, moderator, name: str = "browser"):
    """The app of a browser test: a migrated SQLite file in ``tmp_path``, no model folder, no
    rule watcher, a fixed secret key, the session's ``moderator``; serve it with ``serve``."""
    from app import create_app
    from app.store import migrate

    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    migrate.upgrade(url)
    settings = Settings(instance_dir=tmp_path / "instance", database_url=url, model_dir=None,
                        watch_rules=False, secret_key="browser-test-secret").resolved()
    return create_app(settings, moderator=moderator)
