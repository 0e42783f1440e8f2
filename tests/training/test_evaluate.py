"""Evaluation: the fake-base-station target set, the cross-fitted estimate and its folds."""
from __future__ import annotations

import numpy as np

from app.training import evaluate as ev
from app.training.dataset import Row

LABELS = ev.LABELS


def _row(source: str, labels: tuple, orig: str) -> Row:
    return Row(text="x", labels=labels, lang="zh", source=source, orig=orig, file="f")


def test_target_set_is_the_named_kinds_and_all_prohibited_is_wider():
    rows = [_row("fbs", ("gambling",), "IL_Gambling"), _row("fbs", ("fraud",), "FR_Phishing_Bank"),
            _row("fbs", ("fraud",), "FR_Financial"), _row("fbs", ("marketing",), "AD_Retail"),
            _row("spam800k", ("fraud",), "fraud"), _row("spam800k", (), "normal")]
    m = ev.row_masks(rows)
    assert m["fbs_target"].tolist() == [True, True, False, False, False, False]
    assert m["fbs_prohibited"].tolist() == [True, True, True, False, False, False]
    assert m["normal"].tolist() == [False, False, False, False, False, True]
    rejected = np.array([True, False, True, False, False, True])
    h = ev.headline(rejected, rejected | np.array([False, True, False, False, False, False]), m)
    assert h["fbs_target_recall"] == 0.5 and h["fbs_target_recall_at_review"] == 1.0
    assert h["fbs_prohibited_recall"] == round(2 / 3, 5)
    assert h["normal_false_reject_rate"] == 1.0
    by = ev.fbs_by_orig(rows, rejected, rejected)
    assert by["FR_Financial"]["kind"] == "(not in the target)" and by["IL_Gambling"]["recall"] == 1.0


def test_folds_keep_near_duplicate_groups_whole_and_are_balanced():
    rng = np.random.RandomState(0)
    rows, groups = [], []
    for g in range(400):
        lab = ("gambling",) if g % 4 == 0 else ()
        for _ in range(rng.randint(1, 4)):
            rows.append(_row("fbs" if lab else "spam800k", lab, "IL_Gambling" if lab else "n"))
            groups.append(g)
    groups = np.array(groups)
    f = ev.fold_of(rows, groups, seed=3)
    for g in np.unique(groups):
        assert len(set(f[groups == g])) == 1
    gam = np.array([bool(r.labels) for r in rows])
    for mask in (gam, ~gam):
        share = f[mask].mean()
        assert 0.35 < share < 0.65
    assert (ev.fold_of(rows, groups, seed=3) == f).all()


def test_crossfit_measures_each_half_with_thresholds_chosen_on_the_other():
    # gambling positives score 0.9 in fold-0 groups and 0.45 in fold-1 groups: thresholds chosen
    # on fold 0 alone sit above 0.45, so the cross-fitted recall is lower than the in-sample one
    n_groups = 200
    rows, groups = [], []
    for g in range(n_groups):
        rows.append(_row("fbs", ("gambling",), "IL_Gambling"))
        groups.append(g)
        rows.append(_row("spam800k", (), "n"))
        groups.append(n_groups + g)
    groups = np.array(groups)
    folds = ev.fold_of(rows, groups, seed=13)
    j = LABELS.index("gambling")
    P = np.full((len(rows), len(LABELS)), 0.001)
    Y = np.array([[lab in r.labels for lab in LABELS] for r in rows], dtype=np.int8)
    pos = Y[:, j] == 1
    P[pos & (folds == 0), j] = 0.9
    P[pos & (folds == 1), j] = 0.45
    kw = dict(target_frr=0.002, reject_floor=0.4, review_budget=0.03, review_floor=0.2)
    in_sample = ev.choose_thresholds(P, Y, rows, **kw)
    assert in_sample["gambling"]["reject"] <= 0.45
    cf = ev.crossfit(P, Y, rows, groups, seed=13, **kw)
    assert (cf["folds"] == folds).all()
    assert cf["thresholds"][1]["gambling"]["reject"] > 0.45  # chosen on fold 0 (all at 0.9)
    # fold 1's positives (0.45) are missed under fold 0's thresholds; fold 0's are caught
    expected = float((pos & (folds == 0)).sum()) / pos.sum()
    assert abs(cf["summary"]["fbs_target_recall"] - round(expected, 5)) < 1e-9
    assert cf["summary"]["normal_false_reject_rate"] == 0.0


def test_policy_with_thresholds_replaces_classifier_bands_but_keeps_never_reject():
    from app.engine.policy import ClassifierThresholds, Policy

    pol = Policy(classifier_categories={"hate": ClassifierThresholds(0.5, 0.6, None),
                                        "gambling": ClassifierThresholds(0.3, 0.3, 0.5)})
    new = ev.policy_with_thresholds(pol, {"hate": {"review": 0.7, "reject": 0.9},
                                          "gambling": {"review": 0.2, "reject": 0.35},
                                          "marketing": {"flag": 0.5}})
    assert new.thresholds_for("hate") == ClassifierThresholds(0.5, 0.7, None)
    assert new.thresholds_for("gambling") == ClassifierThresholds(0.2, 0.2, 0.35)
    assert pol.thresholds_for("gambling").reject == 0.5  # the original is untouched


def test_exclude_val_of_cannot_rechoose_thresholds(tmp_path):
    # thresholds re-chosen on a subset would be written into the shipped metadata: refused up front
    from click.testing import CliRunner

    from app.cli import cli

    r = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path), "--choose-thresholds", "--exclude-val-of", "13"])
    assert r.exit_code == 2 and "--choose-thresholds cannot be combined with --exclude-val-of" in r.output
