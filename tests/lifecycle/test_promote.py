"""`smsguard model promote NEW`: the comparison gate, then the running service switches to NEW
without a restart (instance/model-current, watched like the rules); no request fails meanwhile;
a model that cannot be used is refused and the model in force stays."""
from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time

import pytest
from click.testing import CliRunner

from app import metrics
from app.cli import cli
from app.engine.moderator import Moderator, ModelSwitchError

from .conftest import RULES
from .corpus import WORD

TRADE = f"新到一批{WORD}，东城同城可送，手慢无"
NORMAL = ["明天下午三点开家长会，请准时参加", "快递放在驿站了，记得去取", "周末一起去吃饭吧，我请客"]


def _ready(app) -> dict:
    r = app.test_client().get("/readyz")
    return r.get_json()


def _wait_for(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _metric(name: str) -> float:
    text = metrics.render()[0].decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_promote_switches_the_running_service_under_load(service, signed, cli_env, tiny):
    app, moderator, settings = service
    bad_v, good_v = tiny.bad_meta["version"], tiny.good_meta["version"]
    body = _ready(app)
    assert body["status"] == "ready" and body["model_version"] == bad_v and "model_promoted" not in body
    clients = [signed() for _ in range(4)]
    assert clients[0].post("/v1/moderate", {"text": TRADE}).get_json()["verdict"] == "allow"  # bad model
    stop = threading.Event()
    seen: list[list[tuple[int, str | None, str | None]]] = [[] for _ in clients]
    switches0 = _metric("smsguard_model_switches_total")

    def hammer(k: int) -> None:
        rng = random.Random(k)
        c = clients[k]
        while not stop.is_set():
            text = TRADE if rng.random() < 0.5 else rng.choice(NORMAL)
            try:
                r = c.post("/v1/moderate", {"text": text})
                j = r.get_json() or {}
                seen[k].append((r.status_code, j.get("model_version"), j.get("verdict") if text == TRADE else None))
            except Exception as exc:  # noqa: BLE001 - a failed request is what this test counts
                seen[k].append((599, repr(exc), None))

    threads = [threading.Thread(target=hammer, args=(k,), daemon=True) for k in range(len(clients))]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        r = CliRunner().invoke(cli, ["model", "promote", str(tiny.good), *tiny.corpus_args, "--note", "test"])
        assert r.exit_code == 0, r.output
        assert "accepted" in r.stdout and f"promoted {good_v}" in r.stdout
        assert _wait_for(lambda: _ready(app).get("model_version") == good_v)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    results = [x for s in seen for x in s]
    assert len(results) > 50
    failed = [x for x in results if x[0] != 200]
    assert failed == []  # not one request failed during the switch
    assert {v for _s, v, _ in results} == {bad_v, good_v}
    for per in seen:  # each client saw the old model, then the new one, never back
        versions = [v for _s, v, _ in per]
        first_new = versions.index(good_v) if good_v in versions else len(versions)
        assert all(v == bad_v for v in versions[:first_new]) and all(v == good_v for v in versions[first_new:])
    # a verdict and its model version always agree: the trade is rejected only by the new model
    assert all((verdict == "reject") == (v == good_v) for _s, v, verdict in results if verdict is not None)
    body = _ready(app)
    assert body["model_version"] == good_v and "model_promoted" not in body and "warnings" not in body
    m = body["checks"]["model"]
    assert m["promoted"] == {"dir": str(tiny.good.resolve()), "version": good_v, "promoted_at": m["promoted"]["promoted_at"],
                             "forced": False, "in_force": True}
    assert m["switches"] == 1 and m["last_error"] is None and m["normalizer_match"] is True
    pointer = json.loads((settings.instance_dir / "model-current").read_text(encoding="utf-8"))
    assert pointer["version"] == good_v and pointer["forced"] is False and pointer["comparison"]["ok"] is True
    assert pointer["previous"]["version"] == bad_v and pointer["note"] == "test"
    hist = [json.loads(x) for x in (settings.instance_dir / "model-history.jsonl").read_text().splitlines()]
    assert hist[-1]["event"] == "promoted" and hist[-1]["version"] == good_v
    assert _metric("smsguard_model_switches_total") == switches0 + 1
    assert f'smsguard_model_info{{version="{good_v}"}} 1.0' in metrics.render()[0].decode()
    r = CliRunner().invoke(cli, ["model", "current"])
    assert r.exit_code == 0 and good_v in r.output


def test_a_regression_is_not_promoted(service, cli_env, tiny):
    app, _m, settings = service
    r = CliRunner().invoke(cli, ["model", "promote", str(tiny.bad), "--against", str(tiny.good), *tiny.corpus_args])
    assert r.exit_code == 3 and "refused" in r.stdout
    assert not (settings.instance_dir / "model-current").exists()
    hist = [json.loads(x) for x in (settings.instance_dir / "model-history.jsonl").read_text().splitlines()]
    assert hist[-1]["event"] == "refused" and hist[-1]["comparison"]["regressions"]


def test_force_skips_the_gate_and_is_recorded(service, cli_env, tiny):
    app, _m, settings = service
    r = CliRunner().invoke(cli, ["model", "promote", str(tiny.good), "--force"])
    assert r.exit_code == 0 and "with --force: no comparison" in r.stdout
    pointer = json.loads((settings.instance_dir / "model-current").read_text(encoding="utf-8"))
    assert pointer["forced"] is True and pointer["comparison"] is None
    assert _wait_for(lambda: _ready(app).get("model_version") == tiny.good_meta["version"])
    assert _ready(app)["checks"]["model"]["promoted"]["forced"] is True


def test_a_corrupt_model_is_refused_and_the_old_one_kept(service, signed, cli_env, tiny, tmp_path):
    app, moderator, settings = service
    bad_v = tiny.bad_meta["version"]
    corrupt = _copy(tiny.good, tmp_path / "corrupt")
    with open(corrupt / "model.joblib", "r+b") as fh:  # one flipped byte in the middle
        fh.seek(2000)
        b = fh.read(1)
        fh.seek(2000)
        fh.write(bytes([b[0] ^ 0xFF]))
    # the command refuses it before writing anything, --force or not
    r = CliRunner().invoke(cli, ["model", "promote", str(corrupt), "--force"])
    assert r.exit_code == 1 and "not promoted" in r.output and "model_sha256" in r.output
    assert not (settings.instance_dir / "model-current").exists()
    # written by hand, the service refuses it too: the model in force stays and says why
    errors0 = _metric("smsguard_model_switch_errors_total")
    # (whole, as `promote` writes it: a reader must not catch the file half written)
    tmp = settings.instance_dir / ".model-current.tmp"
    tmp.write_text(str(corrupt), encoding="utf-8")
    os.replace(tmp, settings.instance_dir / "model-current")
    assert _wait_for(lambda: _ready(app).get("model_promoted") == str(corrupt))
    # while the worker is still loading it the warning says "switching"; then the error
    assert _wait_for(lambda: _ready(app)["checks"]["model"].get("last_error"))
    body = _ready(app)
    assert body["status"] == "ready" and body["model_version"] == bad_v
    assert body["model_promoted"] == str(corrupt)
    assert "stays in force" in body["warnings"][0] and "model_sha256" in body["warnings"][0]
    assert body["checks"]["model"]["switch_pending"] is True and body["checks"]["model"]["last_error"]
    assert _metric("smsguard_model_switch_errors_total") == errors0 + 1
    assert _metric("smsguard_model_switch_failing") == 1
    assert signed().post("/v1/moderate", {"text": NORMAL[0]}).status_code == 200
    # not retried every second: only when the pointer changes again
    time.sleep(0.3)
    assert _metric("smsguard_model_switch_errors_total") == errors0 + 1
    # a good promotion afterwards clears it
    r = CliRunner().invoke(cli, ["model", "promote", str(tiny.good), "--force"])
    assert r.exit_code == 0
    assert _wait_for(lambda: _ready(app).get("model_version") == tiny.good_meta["version"])
    assert "warnings" not in _ready(app) and _metric("smsguard_model_switch_failing") == 0


@pytest.mark.parametrize("change", ["labels", "normalizer", "features"])
def test_a_mismatched_model_is_never_switched_to(service, cli_env, tiny, tmp_path, change):
    app, moderator, settings = service
    d = _copy(tiny.good, tmp_path / change)
    meta = json.loads((d / "metadata.json").read_text(encoding="utf-8"))
    if change == "labels":
        meta["labels"] = list(reversed(meta["labels"]))
    elif change == "normalizer":
        meta["normalizer_sha256"] = "0" * 64
    else:
        meta["features_version"] = "0"
    (d / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    r = CliRunner().invoke(cli, ["model", "promote", str(d), "--force"])
    assert r.exit_code == 1 and "not promoted" in r.output
    with pytest.raises(ModelSwitchError, match={"labels": "label set", "normalizer": "normalizer fingerprint",
                                                "features": "feature-code version"}[change]):
        moderator.switch_model(d)
    assert moderator.model_version == tiny.bad_meta["version"]
    assert _ready(app)["checks"]["model"]["last_error"]


def test_the_promoted_model_outlives_a_restart(tiny, tmp_path):
    pointer = tmp_path / "model-current"
    pointer.write_text(json.dumps({"model_dir": str(tiny.good), "version": tiny.good_meta["version"]}))
    with Moderator.from_paths(RULES, model_dir=tiny.bad, watch=False, model_pointer=pointer) as m:
        assert m.model_version == tiny.good_meta["version"]
        assert m.status()["model"]["promoted"]["in_force"] is True
    # a promotion whose folder changed since (another version there now) is refused at start
    pointer.write_text(json.dumps({"model_dir": str(tiny.good), "version": "someone-else-1"}))
    with Moderator.from_paths(RULES, model_dir=tiny.bad, watch=False, model_pointer=pointer) as m:
        assert m.model_version == tiny.bad_meta["version"]
        assert "not the promoted someone-else-1" in m.status()["model"]["last_error"]
    pointer.write_text("{not json")
    with Moderator.from_paths(RULES, model_dir=tiny.bad, watch=False, model_pointer=pointer) as m:
        assert m.model_version == tiny.bad_meta["version"] and "not JSON" in m.status()["model"]["last_error"]


def test_a_check_in_flight_keeps_its_classifier(tiny):
    """The switch replaces one reference: a check that started with the old model finishes with it."""
    with Moderator.from_paths(RULES, model_dir=tiny.bad, watch=False) as m:
        old = m.model
        gate = threading.Event()
        resume = threading.Event()
        real = old.classifier.score_one_explained  # what a check scores with

        def slow(text):
            gate.set()
            resume.wait(10)
            return real(text)

        object.__setattr__(old.classifier, "score_one_explained", slow)
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("v", m.check(TRADE)))
        t.start()
        assert gate.wait(10)
        m.switch_model(tiny.good)  # while the check is in flight
        resume.set()
        t.join(10)
        assert out["v"].model_version == tiny.bad_meta["version"] and out["v"].verdict == "allow"
        assert m.check(TRADE).model_version == tiny.good_meta["version"]
