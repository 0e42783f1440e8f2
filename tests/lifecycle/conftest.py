"""Fixtures of the model life-cycle tests (issue 16, item 3): two tiny models trained once per
run on the corpus of corpus.py (a good one, and one taught that the made-up trade is normal),
and a service of its own whose engine watches the promotion pointer (the shared session engine
of tests/conftest.py is never switched)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

from .corpus import SMALL, make

RULES = PROJECT_ROOT / "rules"


class Tiny:
    def __init__(self, root: Path):
        from app.training.train import train_model

        self.train, self.data = make(root / "good")
        bad_train, bad_data = make(root / "bad", bad_label=())
        quiet = dict(rules_dir=RULES, log=lambda m: None, **SMALL)
        self.good = root / "models" / "good"
        self.bad = root / "models" / "bad"
        self.good_meta, _ = train_model(self.good, train_dir=self.train, data_dir=self.data, **quiet)
        self.bad_meta, _ = train_model(self.bad, train_dir=bad_train, data_dir=bad_data, **quiet)

    @property
    def corpus_args(self) -> list[str]:
        """CLI options pointing a comparison at the tiny corpus (no blind sets)."""
        return ["--train-dir", str(self.train), "--data-dir", str(self.data), "--no-blind"]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    return Tiny(tmp_path_factory.mktemp("lifecycle"))


@pytest.fixture
def service(settings, tiny):
    """(app, moderator, settings): the service running the BAD tiny model, watching
    instance/model-current every 50 ms like `smsguard serve` does every second."""
    from app import create_app, model_pointer
    from app.engine.moderator import Moderator

    s = replace(settings, model_dir=tiny.bad)
    s.instance_dir.mkdir(parents=True, exist_ok=True)
    m = Moderator.from_paths(RULES, model_dir=tiny.bad, watch=False, model_pointer=model_pointer(s))
    m.watch_model(model_pointer(s), poll_interval=0.05)
    application = create_app(s, moderator=m)
    application.config["TESTING"] = True
    yield application, m, s
    m.close()
    application.extensions["smsguard.db"].dispose()


@pytest.fixture
def signed(service):
    """signed(role, account=None) -> a SignedClient of the lifecycle service (a fresh key)."""
    from app.services import keys

    from tests.conftest import SignedClient

    application, _m, _s = service
    db = application.extensions["smsguard.db"]

    def make(role: str = "tenant", account: str | None = "ACME"):
        with db.session() as sess:
            k = keys.create(sess, account if role == "tenant" else None, role, actor="test")
        return SignedClient(application.test_client(), k.public_key, k.private_key, account, role)

    return make


@pytest.fixture
def cli_env(monkeypatch, service):
    """The CLI pointed at the lifecycle service's instance folder, database and model."""
    _app, _m, s = service
    monkeypatch.setenv("SMSGUARD_DATABASE_URL", s.database_url)
    monkeypatch.setenv("SMSGUARD_INSTANCE_DIR", str(s.instance_dir))
    monkeypatch.setenv("SMSGUARD_MODEL_DIR", str(s.model_dir))
    return s
