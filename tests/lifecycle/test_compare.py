"""`smsguard model compare OLD NEW`: the full engine on the frozen validation split and blind sets,
refusing a regression beyond the tolerances (two tiny models, one deliberately worse)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from app.cli import cli
from app.training.compare import Tolerances, gate

from .corpus import WORD, write


def _compare(tiny, old, new, *extra):
    return CliRunner().invoke(cli, ["model", "compare", str(old), str(new), *tiny.corpus_args, *extra])


def test_a_regression_is_refused(tiny, tmp_path):
    r = _compare(tiny, tiny.good, tiny.bad, "--json", str(tmp_path / "cmp.json"))
    assert r.exit_code == 3, r.output
    assert "regression: validation: contraband recall 1.000 -> 0.000" in r.stdout
    assert r.stdout.rstrip().endswith("refused: 1 regression(s)")
    # both models' figures are printed: per-category recall, normal false-reject and review rates
    assert "contraband" in r.stdout and "normal false-reject rate" in r.stdout and "normal review rate" in r.stdout
    assert tiny.good_meta["version"] in r.stdout and tiny.bad_meta["version"] in r.stdout
    result = json.loads((tmp_path / "cmp.json").read_text(encoding="utf-8"))
    assert result["ok"] is False and result["sets"]["validation"]["old"]["per_category"]["contraband"]["recall"] == 1.0


def test_no_regression_is_accepted(tiny):
    r = _compare(tiny, tiny.bad, tiny.good)  # better: accepted
    assert r.exit_code == 0, r.output
    assert "accepted" in r.stdout.splitlines()[-1]
    r = _compare(tiny, tiny.good, tiny.good)  # the same model: accepted
    assert r.exit_code == 0, r.output


def test_the_tolerance_is_an_option(tiny):
    r = _compare(tiny, tiny.good, tiny.bad, "--recall-tolerance", "1")
    assert r.exit_code == 0, r.output
    r = _compare(tiny, tiny.good, tiny.bad, "--min-rows", "1000")
    assert r.exit_code == 0, r.output


def test_blind_sets_are_gated_too(tiny, tmp_path):
    blind = tmp_path / "blind.jsonl"
    write(blind, [{"text": f"新到一批{WORD}，{p}同城可送，手慢无", "labels": ["contraband"], "lang": "zh",
                   "kind": "trade"} for p in ("东城", "西城", "南岸", "北湖", "江北", "河西")] +
          [{"text": "明天下午三点在东城开家长会，请准时参加", "labels": [], "lang": "zh", "kind": "personal"}])
    r = CliRunner().invoke(cli, ["model", "compare", str(tiny.good), str(tiny.bad), "--no-validation",
                                 "--blind", str(blind)])
    assert r.exit_code == 3, r.output
    assert "regression: blind: contraband recall 1.000 -> 0.000 (6 of 6" in r.stdout
    assert "blind sets (1 files, 7 rows" in r.stdout


def test_bad_input_is_one_line(tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _compare(tiny, tiny.good, empty)
    assert r.exit_code == 1 and "no metadata.json" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["model", "compare", str(tiny.good), str(tiny.bad), "--no-validation", "--no-blind"])
    assert r.exit_code == 2 and "nothing to compare on" in r.output


def _m(normals, rejected, review=0, cats=None):
    return {"rows": normals, "normals": normals, "normal_rejected": rejected, "normal_review": review,
            "normal_false_reject_rate": rejected / normals, "normal_review_rate": review / normals,
            "per_category": cats or {}}


def _c(support, rejected):
    return {"support": support, "rejected": rejected, "flagged": rejected, "recall": rejected / support,
            "recall_at_review": rejected / support}


def test_gate_rules():
    tol = Tolerances()
    # the false-reject rate: beyond the tolerance AND by at least min_rows rows
    assert gate("v", _m(10000, 20), _m(10000, 30), tol) == [
        "v: normal false-reject rate 0.200% -> 0.300% (10 more of 10000 normals rejected; tolerance 0.050%)"]
    assert gate("v", _m(10000, 20), _m(10000, 24), tol) == []          # +0.04 points: within
    assert gate("v", _m(1000, 0), _m(1000, 1), tol) == []              # one row: noise
    assert len(gate("v", _m(1000, 0), _m(1000, 2), tol)) == 1
    # recall per category, same two conditions
    assert gate("v", _m(10, 0, cats={"fraud": _c(30, 30)}), _m(10, 0, cats={"fraud": _c(30, 29)}), tol) == []
    assert len(gate("v", _m(10, 0, cats={"fraud": _c(30, 30)}), _m(10, 0, cats={"fraud": _c(30, 28)}), tol)) == 1
    assert gate("v", _m(10, 0, cats={"fraud": _c(1000, 900)}), _m(10, 0, cats={"fraud": _c(1000, 895)}), tol) == []
    # the review rate only when asked
    assert gate("v", _m(1000, 0, 10), _m(1000, 0, 50), tol) == []
    assert len(gate("v", _m(1000, 0, 10), _m(1000, 0, 50), Tolerances(review=0.01))) == 1
