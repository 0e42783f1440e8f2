"""Validation metrics, threshold choice and the written report (EVALUATION.md).

Definitions (used in metadata.json, EVALUATION.md and MODEL_CARD.md):

- a message is **rejected** by the classifier when the probability of any prohibited category
  reaches that category's ``reject`` threshold, and **flagged for review** when one reaches its
  ``review`` threshold;
- **normal false-reject rate**: share of validation messages labelled normal (no category) that
  the classifier rejects;
- **fbs target recall**: share of the fake-base-station validation rows of the kinds the
  requirement names (gambling, escort, fake invoices and IDs, phishing, propaganda: the corpus's
  own labels in ``FBS_TARGET``) that are rejected (any prohibited category: a fake-invoice ad
  rejected as fraud still counts as caught);
- **fbs prohibited recall**: the same over every fbs row labelled prohibited, including the
  corpus's FR_Financial (fund and stock ads) and FR_Other (fragments) rows;
- per-category precision / recall / F1 at the reject threshold (marketing, informational, at
  its ``flag`` threshold), one-vs-rest over the whole validation set;
- confusion: validation rows with exactly one label (or none) x the categories the classifier
  reached (reject threshold; marketing at flag).

Thresholds (``choose_thresholds``): for the prohibited categories jointly, maximise the sum of
per-category recalls (gambling, pornography, contraband, fraud and politics weighted x3: the
SMS-spam categories) minus lambda x (normals rejected by that category), with lambda the
smallest value whose union normal false-reject rate is <= the target (``TARGET_FRR``); same for
the review band with a ``REVIEW_BUDGET`` review-rate budget. Floors: reject >= ``REJECT_FLOOR``,
review >= ``REVIEW_FLOOR``.

Thresholds chosen on the validation split flatter the figures measured on it. ``crossfit``
measures what that costs: the validation rows are cut in two halves (near-duplicate groups kept
whole, stratified by source and label set), thresholds are chosen on one half and applied to
the other, both ways: the "cross-fitted" figures are free of that bias (not of any tuning done
by reading the split's misses: docs/evaluation.md, ``--exclude-val-of``).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from app.engine.classifier import INFORMATIONAL, LABELS, PROHIBITED

FBS_PROHIBITED = ("gambling", "pornography", "contraband", "fraud", "politics")
#: fbs corpus labels (``orig``) of the kinds the recall target names -> the kind
FBS_TARGET = {"IL_Gambling": "gambling", "IL_Escort_service": "escort", "IL_Fake_ID_and_invoice": "fake invoices/IDs",
              "FR_Phishing_Bank": "phishing", "FR_Phishing_Other": "phishing", "IL_Political_propaganda": "propaganda"}
#: recall weight of the SMS-spam categories in the threshold objective (they are what SMS
#: traffic carries; hate and rumor are learnt from social-media posts)
FBS_WEIGHT = 3.0
_PJ = [LABELS.index(c) for c in PROHIBITED]


def _ceil3(x: float) -> float:
    return min(1.0, math.ceil(float(x) * 1000 - 1e-9) / 1000)


def _lagrangian(P, Y, normal, trained, target_rate, floor, weights):
    """Per prohibited category threshold: max w_j * recall_j - lam * fp_j/N_normal; union <= target."""
    n_norm = max(int(normal.sum()), 1)
    prep = {}
    for j in _PJ:
        pos = np.sort(P[Y[:, j] == 1, j])
        neg = np.sort(P[normal, j])
        if not trained[j] or len(pos) == 0:
            continue
        cands = np.unique(np.concatenate([pos[pos >= floor], [1.0 + 1e-9]]))
        recall = (len(pos) - np.searchsorted(pos, cands, side="left")) / len(pos)
        fp = (len(neg) - np.searchsorted(neg, cands, side="left")) / n_norm
        prep[j] = (cands, recall, fp)

    def thresholds_for(lam):
        th = {}
        for j, (cands, recall, fp) in prep.items():
            th[j] = float(cands[int(np.argmax(weights.get(LABELS[j], 1.0) * recall - lam * fp))])
        return th

    def union_rate(th):
        hit = np.zeros(len(P), dtype=bool)
        for j, t in th.items():
            hit |= P[:, j] >= t
        return float((hit & normal).sum()) / n_norm

    th = thresholds_for(1e9)
    for lam in np.concatenate([[0.0], np.geomspace(1e-3, 1e9, 241)]):
        t_lam = thresholds_for(float(lam))
        if union_rate(t_lam) <= target_rate:
            th = t_lam
            break
    out = {}
    for j in _PJ:
        if j in th:
            out[LABELS[j]] = th[j]
        else:
            out[LABELS[j]] = None
    return out


TARGET_FRR = 0.002
REJECT_FLOOR = 0.3
REVIEW_BUDGET = 0.01
REVIEW_FLOOR = 0.4


def choose_kwargs(params: dict, trained: list[bool] | None = None) -> dict:
    """choose_thresholds keyword arguments from a model's training parameters."""
    return {"target_frr": params.get("threshold_target_frr", TARGET_FRR),
            "reject_floor": params.get("reject_floor", REJECT_FLOOR),
            "review_budget": params.get("review_budget", REVIEW_BUDGET),
            "review_floor": params.get("review_floor", REVIEW_FLOOR), "trained": trained}


def choose_thresholds(P: np.ndarray, Y: np.ndarray, rows, target_frr: float = TARGET_FRR,
                      review_budget: float = REVIEW_BUDGET, trained: list[bool] | None = None,
                      reject_floor: float = REJECT_FLOOR, review_floor: float = REVIEW_FLOOR) -> dict:
    """{category: {"review": t, "reject": t}} (marketing: {"flag": t}). See the module doc."""
    normal = Y.sum(axis=1) == 0
    if trained is None:
        trained = [bool(Y[:, j].any()) or P[:, j].max() > 1e-4 for j in range(len(LABELS))]
    weights = {c: FBS_WEIGHT for c in FBS_PROHIBITED}
    rej = _lagrangian(P, Y, normal, trained, target_frr, reject_floor, weights)
    rev = _lagrangian(P, Y, normal, trained, review_budget, review_floor, weights)
    out: dict[str, dict] = {}
    for j in _PJ:
        lab = LABELS[j]
        neg = P[normal, j]
        r, v = rej[lab], rev[lab]
        if r is None or r > 1.0:
            # no validation positives (or none reachable): stay above the normals
            r = max(0.9, float(np.quantile(neg, 0.9998)) if len(neg) else 0.9)
        if v is None or v > 1.0:
            v = max(0.5, float(np.quantile(neg, 0.995)) if len(neg) else 0.5)
        r = _ceil3(r)
        v = _ceil3(min(v, r))
        out[lab] = {"review": v, "reject": r}
    for lab in INFORMATIONAL:
        j = LABELS.index(lab)
        y = Y[:, j]
        best_t, best_f = 0.5, -1.0
        for t in np.linspace(0.05, 0.95, 91):
            pred = P[:, j] >= t
            tp = float((pred & (y == 1)).sum())
            f = 2 * tp / max(pred.sum() + y.sum(), 1)
            if f > best_f:
                best_t, best_f = float(t), f
        out[lab] = {"flag": round(best_t, 3)}
    return {lab: out[lab] for lab in LABELS}


def _prf(pred: np.ndarray, y: np.ndarray) -> dict:
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"support": int(y.sum()), "tp": tp, "fp": fp, "fn": fn,
            "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def fbs_by_orig(rows, rejected: np.ndarray, flagged: np.ndarray) -> dict:
    """fbs prohibited rows per corpus label: rows, rejected, flagged, and whether the target counts them."""
    out: dict[str, dict] = {}
    for i, r in enumerate(rows):
        if r.source != "fbs" or not set(r.labels) & set(FBS_PROHIBITED):
            continue
        m = out.setdefault(r.orig, {"kind": FBS_TARGET.get(r.orig, "(not in the target)"), "rows": 0,
                                    "rejected": 0, "flagged": 0})
        m["rows"] += 1
        m["rejected"] += int(rejected[i])
        m["flagged"] += int(flagged[i])
    for m in out.values():
        m["recall"] = round(m["rejected"] / m["rows"], 4)
        m["recall_at_review"] = round(m["flagged"] / m["rows"], 4)
    return dict(sorted(out.items()))


def decisions(P: np.ndarray, thresholds: dict):
    """(reached reject per category (n, L) bool, reached review (n, L) bool)."""
    rej = np.zeros(P.shape, dtype=bool)
    rev = np.zeros(P.shape, dtype=bool)
    for j, lab in enumerate(LABELS):
        th = thresholds.get(lab, {})
        if "flag" in th:
            rej[:, j] = rev[:, j] = P[:, j] >= th["flag"]
        else:
            rej[:, j] = P[:, j] >= th.get("reject", 1.1)
            rev[:, j] = P[:, j] >= th.get("review", 1.1)
    return rej, rev


def row_masks(rows) -> dict[str, np.ndarray]:
    """Boolean masks over validation rows: normal, fbs_target, fbs_prohibited, prohibited."""
    labels = [set(r.labels) for r in rows]
    fbs = np.array([r.source == "fbs" for r in rows])
    return {"normal": np.array([not lab for lab in labels]),
            "fbs_target": fbs & np.array([getattr(r, "orig", None) in FBS_TARGET for r in rows]),
            "fbs_prohibited": fbs & np.array([bool(lab & set(FBS_PROHIBITED)) for lab in labels]),
            "prohibited": np.array([bool(lab & set(PROHIBITED)) for lab in labels])}


def _share(hit: np.ndarray, mask: np.ndarray) -> float:
    return round(float(hit[mask].mean()), 5) if mask.any() else 0.0


def headline(rejected: np.ndarray, flagged: np.ndarray, masks: dict) -> dict:
    """The requirement's figures from per-row rejected / flagged (review or reject) booleans."""
    return {"normal_false_reject_rate": _share(rejected, masks["normal"]),
            "normal_review_rate": _share(flagged & ~rejected, masks["normal"]),
            "fbs_target_rows": int(masks["fbs_target"].sum()),
            "fbs_target_recall": _share(rejected, masks["fbs_target"]),
            "fbs_target_recall_at_review": _share(flagged, masks["fbs_target"]),
            "fbs_prohibited_rows": int(masks["fbs_prohibited"].sum()),
            "fbs_prohibited_recall": _share(rejected, masks["fbs_prohibited"]),
            "fbs_prohibited_recall_at_review": _share(flagged, masks["fbs_prohibited"])}


def fold_of(rows, groups: np.ndarray, seed: int = 13) -> np.ndarray:
    """0/1 per validation row: near-duplicate groups kept whole, stratified by (source, labels)."""
    strata: dict[tuple, dict] = {}  # stratum -> its groups in first-seen order
    for g, r in zip(groups, rows):
        strata.setdefault((r.source, tuple(r.labels)), {})[g] = None
    rng = np.random.RandomState(seed)
    fold: dict = {}
    for key in sorted(strata):
        gs = list(strata[key])
        offset = int(rng.randint(2))  # odd-sized strata do not all favour fold 0
        for rank, gi in enumerate(rng.permutation(len(gs))):
            fold.setdefault(gs[gi], (rank + offset) % 2)
    return np.array([fold[g] for g in groups], dtype=np.int8)


def crossfit(P: np.ndarray, Y: np.ndarray, rows, groups: np.ndarray, seed: int = 13, **choose_kw) -> dict:
    """Thresholds chosen on one half of validation, measured on the other (see the module doc).
    Returns the per-fold thresholds, the fold of every row and the cross-fitted headline."""
    folds = fold_of(rows, groups, seed)
    rejected = np.zeros(len(Y), dtype=bool)
    flagged = np.zeros(len(Y), dtype=bool)
    per_fold = []
    for k in (0, 1):
        fit, test = folds != k, folds == k
        th = choose_thresholds(P[fit], Y[fit], None, **choose_kw)
        per_fold.append(th)
        rej, rev = decisions(P[test], th)
        rejected[test] = rej[:, _PJ].any(axis=1)
        flagged[test] = rev[:, _PJ].any(axis=1)
    return {"folds": folds, "thresholds": per_fold, "summary": headline(rejected, flagged, row_masks(rows))}


def evaluate_predictions(P: np.ndarray, Y: np.ndarray, rows, thresholds: dict, groups: np.ndarray | None = None,
                         seed: int = 13, choose_kw: dict | None = None) -> dict:
    """The report on the validation rows; with ``groups`` (their near-duplicate group ids) also the
    cross-fitted headline (``crossfit`` with ``choose_kw``)."""
    rej, rev = decisions(P, thresholds)
    normal = Y.sum(axis=1) == 0
    any_rej = rej[:, _PJ].any(axis=1)
    any_rev = rev[:, _PJ].any(axis=1)
    sources = np.array([r.source for r in rows])
    per_cat = {}
    for j, lab in enumerate(LABELS):
        m = _prf(rej[:, j], Y[:, j])
        m["recall_at_review"] = round(float(rev[Y[:, j] == 1, j].mean()), 4) if Y[:, j].any() else 0.0
        per_cat[lab] = m
    by_source = {}
    for s in sorted(set(sources)):
        msk = normal & (sources == s)
        if msk.any():
            by_source[s] = {"normals": int(msk.sum()), "false_rejects": int((any_rej & msk).sum()),
                            "rate": round(float(any_rej[msk].mean()), 5),
                            "review_rate": round(float(any_rev[msk].mean()), 5)}
    fbs_by = fbs_by_orig(rows, any_rej, any_rev)
    mk_only = (Y[:, LABELS.index("marketing")] == 1) & (Y[:, _PJ].sum(axis=1) == 0)
    sms_normal = normal & ~np.isin(sources, ["cold", "swsr", "ced"])
    # confusion on single-label rows
    names = ["normal"] + list(LABELS)
    conf = {}
    nlab = Y.sum(axis=1)
    for i, true in enumerate(names):
        msk = normal if true == "normal" else ((Y[:, LABELS.index(true)] == 1) & (nlab == 1))
        if not msk.any():
            continue
        row = {"rows": int(msk.sum()), "none": int((~rej[msk].any(axis=1)).sum())}
        for j, lab in enumerate(LABELS):
            row[lab] = int(rej[msk, j].sum())
        conf[true] = row
    summary = {
        "validation_rows": int(len(Y)),
        "normal_rows": int(normal.sum()),
        "normal_false_reject_rate": _share(any_rej, normal),
        "normal_review_rate": _share(any_rev, normal),  # flagged at all (reject included)
        "sms_normal_false_reject_rate": _share(any_rej, sms_normal),
        "marketing_only_false_reject_rate": _share(any_rej, mk_only),
        **{k: v for k, v in headline(any_rej, any_rev, row_masks(rows)).items() if k.startswith("fbs_")},
        "prohibited_recall": round(float(any_rej[Y[:, _PJ].any(axis=1)].mean()), 4) if Y[:, _PJ].any() else 0.0,
        "per_category": {k: {m: v[m] for m in ("support", "precision", "recall", "f1", "recall_at_review")}
                         for k, v in per_cat.items()},
    }
    report = {"summary": summary, "per_category": per_cat, "normal_by_source": by_source,
              "fbs_by_orig": fbs_by, "confusion": conf, "thresholds": thresholds}
    if groups is not None:
        cf = crossfit(P, Y, rows, groups, seed=seed, **(choose_kw or {}))
        summary["crossfit"] = cf["summary"]
        report["crossfit"] = cf
    return report


# ---------------------------------------------------------------------------- report

def table_lines(report: dict) -> list[str]:
    """A plain-text table for the terminal."""
    th = report["thresholds"]
    lines = [f"{'category':<18}{'support':>8}{'prec':>8}{'recall':>8}{'F1':>8}{'rec@rev':>9}{'review':>8}{'reject':>8}"]
    for lab, m in report["per_category"].items():
        t = th.get(lab, {})
        rv = t.get("review", t.get("flag", ""))
        rj = t.get("reject", "(info)")
        lines.append(f"{lab:<18}{m['support']:>8}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}"
                     f"{m['recall_at_review']:>9.3f}{rv!s:>8}{rj!s:>8}")
    s = report["summary"]
    lines.append("")
    lines.append(f"normal false-reject rate: {s['normal_false_reject_rate']:.4%} of {s['normal_rows']} normals "
                 f"(SMS sources only: {s['sms_normal_false_reject_rate']:.4%}); review rate {s['normal_review_rate']:.3%}")
    lines.append(f"fbs target recall (gambling, escort, fake invoices/IDs, phishing, propaganda): "
                 f"{s['fbs_target_recall']:.4f} of {s['fbs_target_rows']} (at review: {s['fbs_target_recall_at_review']:.4f}); "
                 f"all fbs prohibited {s['fbs_prohibited_recall']:.4f} of {s['fbs_prohibited_rows']}")
    cf = s.get("crossfit")
    if cf:
        lines.append(f"cross-fitted (thresholds from the other half): normals rejected {cf['normal_false_reject_rate']:.4%}, "
                     f"fbs target recall {cf['fbs_target_recall']:.4f}")
    lines.append(f"marketing-only rows rejected: {s['marketing_only_false_reject_rate']:.4%}")
    eng = report.get("engine")
    if eng:
        lines.append(f"full engine: fbs target rejected {eng['fbs_target_recall']:.4f} "
                     f"(flagged {eng['fbs_target_recall_at_review']:.4f}), all fbs prohibited {eng['fbs_prohibited_recall']:.4f}; "
                     f"normals rejected {eng['normal_false_reject_rate']:.4%}, reviewed {eng['normal_review_rate']:.3%}")
        if eng.get("crossfit"):
            c = eng["crossfit"]
            lines.append(f"full engine cross-fitted: fbs target rejected {c['fbs_target_recall']:.4f}, "
                         f"normals rejected {c['normal_false_reject_rate']:.4%}")
    return lines


def _orig_table(by_orig: dict) -> list[str]:
    out = ["| corpus label | counted as | rows | rejected | flagged |", "|---|---|---:|---:|---:|"]
    for orig, m in by_orig.items():
        out.append(f"| {orig} | {m['kind']} | {m['rows']} | {m['recall']:.3f} | {m['recall_at_review']:.3f} |")
    return out


def write_report(path: Path, report: dict, meta: dict) -> None:
    s = report["summary"]
    th = report["thresholds"]
    out = [f"# Evaluation: {meta.get('version', '')}", "",
           f"Validation split: {meta.get('split', {}).get('val_rows', s['validation_rows'])} rows held out per source, "
           f"stratified, near-duplicate-free ({meta.get('split', {}).get('method', '')}).", "",
           "Decisions are the classifier's alone (no keyword rules) unless the section says \"full engine\": reject = "
           "any prohibited category at or above its reject threshold. Thresholds were chosen on this validation split; "
           "the cross-fitted figures choose them on one half (near-duplicate groups whole) and measure the other.", "",
           *([f"Left out: {report['excluded']['rows']} validation rows that the seed-{report['excluded']['seed']} split "
              "also holds out (rows inspected while tuning on that split).", ""] if report.get("excluded") else []),
           "## Headline", "",
           f"- normal false-reject rate: **{s['normal_false_reject_rate']:.3%}** of {s['normal_rows']} normal messages "
           f"(SMS corpora only: {s['sms_normal_false_reject_rate']:.3%}; target <= 0.5%)",
           f"- fake-base-station target recall (gambling, escort, fake invoices/IDs, phishing, propaganda): "
           f"**{s['fbs_target_recall']:.3f}** of {s['fbs_target_rows']} (at review: {s['fbs_target_recall_at_review']:.3f}; "
           "target >= 0.95)",
           f"- all fake-base-station prohibited rows (FR_Financial fund ads and FR_Other fragments too): "
           f"{s['fbs_prohibited_recall']:.3f} of {s['fbs_prohibited_rows']}",
           f"- normal messages sent to review: {s['normal_review_rate']:.2%}",
           f"- marketing-only messages rejected: {s['marketing_only_false_reject_rate']:.3%}", "",
           "## Per category (at the reject threshold; marketing at its flag threshold)", "",
           "| category | support | precision | recall | F1 | recall at review | review | reject |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for lab, m in report["per_category"].items():
        t = th.get(lab, {})
        out.append(f"| {lab} | {m['support']} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | "
                   f"{m['recall_at_review']:.3f} | {t.get('review', t.get('flag', ''))} | {t.get('reject', 'informational')} |")
    cf = s.get("crossfit")
    if cf:
        out += ["", f"Cross-fitted: normals rejected {cf['normal_false_reject_rate']:.3%}, fbs target recall "
                f"{cf['fbs_target_recall']:.3f} (at review {cf['fbs_target_recall_at_review']:.3f}), all fbs prohibited "
                f"{cf['fbs_prohibited_recall']:.3f}."]
    out += ["", "## Fake-base-station prohibited rows by corpus label", ""] + _orig_table(report["fbs_by_orig"])
    out += ["", "## Normal messages by source", "", "| source | normals | false rejects | rate | review rate |",
            "|---|---:|---:|---:|---:|"]
    for src, m in report["normal_by_source"].items():
        out.append(f"| {src} | {m['normals']} | {m['false_rejects']} | {m['rate']:.3%} | {m['review_rate']:.2%} |")
    out += ["", "## Confusion (single-label rows x categories reached)", "",
            "| true \\ reached | rows | none | " + " | ".join(LABELS) + " |",
            "|---|---:|---:|" + "---:|" * len(LABELS)]
    for true, row in report["confusion"].items():
        out.append(f"| {true} | {row['rows']} | {row['none']} | " + " | ".join(str(row[lab]) for lab in LABELS) + " |")
    eng = report.get("engine")
    if eng:
        out += ["", "## Full engine (keywords + patterns + classifier + rules/policy.yaml)", "",
                f"- fbs target rows rejected: **{eng['fbs_target_recall']:.3f}** of {eng['fbs_target_rows']}; "
                f"flagged (review or reject): {eng['fbs_target_recall_at_review']:.3f}",
                f"- all fbs prohibited rows rejected: {eng['fbs_prohibited_recall']:.3f} of {eng['fbs_prohibited_rows']}; "
                f"all prohibited rows: {eng['prohibited_reject_recall']:.3f}",
                f"- normal messages rejected: **{eng['normal_false_reject_rate']:.3%}**; sent to review: "
                f"{eng['normal_review_rate']:.2%}"]
        if eng.get("crossfit"):
            c = eng["crossfit"]
            out.append(f"- cross-fitted (classifier thresholds from the other half): fbs target rejected "
                       f"**{c['fbs_target_recall']:.3f}**, normals rejected **{c['normal_false_reject_rate']:.3%}**")
        out += ["", "| source | normals | reject | review |", "|---|---:|---:|---:|"]
        for s_, m in eng["normal_by_source"].items():
            out.append(f"| {s_} | {m['normals']} | {m['reject']:.3%} | {m['review']:.2%} |")
        out += [""] + _orig_table(eng["fbs_by_orig"])
    out.append("")
    Path(path).write_text("\n".join(out), encoding="utf-8")


def policy_with_thresholds(policy, thresholds: dict):
    """``policy`` with the classifier's review / reject thresholds replaced by ``thresholds``
    (categories whose reject is null in the policy stay null: they never reject on the classifier)."""
    from dataclasses import replace

    per = dict(policy.classifier_categories)
    for lab, t in thresholds.items():
        if "reject" not in t:
            continue
        cur = policy.thresholds_for(lab)
        per[lab] = replace(cur, report=min(cur.report, t["review"]), review=t["review"],
                           reject=None if cur.reject is None else t["reject"])
    return replace(policy, classifier_categories=per)


def engine_metrics(val_rows, rules_dir: Path, model_dir: Path, progress=None, crossfit_result: dict | None = None) -> dict:
    """The full Moderator (keywords + patterns + classifier + rules/policy.yaml) on the validation
    rows: reject / review rates on normals, recall on fbs rows. With ``crossfit_result`` the same
    evidence is also decided under the thresholds chosen on the other half of validation."""
    from app.engine.moderator import Moderator
    from app.training.dataset import engine_text

    prog = progress or (lambda it, **kw: it)
    m = Moderator.from_paths(rules_dir, model_dir, watch=False)
    try:
        rs = m.ruleset
        texts = [engine_text(r) for r in val_rows]
        evidence = []
        for i in prog(range(0, len(texts), 1000), desc="engine", unit="batch"):
            evidence += m.evidence_batch(texts[i:i + 1000], rs=rs)
        labels = m.labels
    finally:
        m.close()

    def verdicts(policy, which=None):
        out = []
        for i, (_text, hits, probs, content) in enumerate(evidence):
            if which is not None and not which[i]:
                out.append(None)
                continue
            out.append(policy.replay(labels, probs, content, hits).verdict)
        return np.array(out, dtype=object)

    v = verdicts(rs.policy)
    masks = row_masks(val_rows)
    rejected, flagged = v == "reject", v != "allow"
    out = headline(rejected, flagged, masks)
    out["prohibited_reject_recall"] = _share(rejected, masks["prohibited"])
    out["fbs_by_orig"] = fbs_by_orig(val_rows, rejected, flagged)
    src = np.array([r.source for r in val_rows])
    out["normal_by_source"] = {}
    for s_ in sorted(set(src[masks["normal"]])):
        msk = masks["normal"] & (src == s_)
        out["normal_by_source"][s_] = {"normals": int(msk.sum()), "reject": _share(rejected, msk),
                                      "review": _share(flagged & ~rejected, msk)}
    if crossfit_result is not None:
        cv = np.empty(len(val_rows), dtype=object)
        for k, th in enumerate(crossfit_result["thresholds"]):
            test = crossfit_result["folds"] == k
            cv[test] = verdicts(policy_with_thresholds(rs.policy, th), test)[test]
        out["crossfit"] = headline(cv == "reject", cv != "allow", masks)
    return out


def evaluate_model(model_dir: Path, train_dir: Path | None = None, data_dir: Path | None = None,
                   progress=None, log=print, engine_rules: Path | None = None,
                   choose: bool = False, exclude_val_of: int | None = None) -> dict:
    """Re-create the validation split of a trained model and evaluate it (batch path).
    ``exclude_val_of``: leave out the rows that the split made with that seed also holds out
    (rows someone inspected while tuning on that split); the model card is then left alone."""
    from app.engine.classifier import load_classifier
    from app.training import dataset as ds
    from app.training.split import split_rows

    clf = load_classifier(model_dir)
    meta = clf.metadata
    params = meta.get("params", {})
    prog = progress or (lambda it, **kw: it)
    normalizer, name = ds.get_normalizer()
    if name != meta.get("normalizer"):
        log(f"warning: model trained with normalizer {meta.get('normalizer')}, evaluating with {name}")
    rows, files = ds.load_dataset(train_dir, data_dir, normalizer=normalizer, known_labels=LABELS,
                                  progress=lambda it: prog(it, desc="normalize", unit="msg"))
    trained_hashes = {f["file"]: f["sha256"] for f in meta.get("data", []) if f.get("kind") not in ("generated", "decisions")}
    now_hashes = {f["file"]: f["sha256"] for f in files}
    added = sorted(set(now_hashes) - set(trained_hashes))
    changed = sorted(k for k in trained_hashes if now_hashes.get(k) != trained_hashes[k])
    if trained_hashes and added and not changed:
        # files added since (a blind set committed after it was scored): leave their rows out, so
        # the split is the model's own; with them the split moves and rows the model trained on
        # land in validation
        row_files = [f["file"] for f in files for _ in range(f["rows"])]
        left = set(added)
        rows = [r for r, f in zip(rows, row_files) if f not in left]
        log(f"left out {len(added)} data file(s) added since the model was trained ({', '.join(added)}): "
            f"the split is the model's own")
    elif trained_hashes != now_hashes:
        log(f"warning: data differ from the training data ({', '.join(changed + added)}); the split is re-made "
            f"on current data and may hold rows the model trained on")
    sp = split_rows(rows, val_frac=params.get("val_frac", 0.15), seed=meta.get("seed", 13),
                    threshold=params.get("dedup_threshold", 0.6), max_val_group=params.get("max_val_group", 5))
    val_idx = sp.val_idx
    excluded = 0
    if exclude_val_of is not None:
        if choose:
            raise ValueError("--choose-thresholds cannot be combined with --exclude-val-of")
        other = split_rows(rows, val_frac=params.get("val_frac", 0.15), seed=exclude_val_of,
                           threshold=params.get("dedup_threshold", 0.6), max_val_group=params.get("max_val_group", 5))
        keep = ~np.isin(val_idx, other.val_idx)
        excluded = int((~keep).sum())
        val_idx = val_idx[keep]
        log(f"left out {excluded} validation rows that the seed-{exclude_val_of} split also holds out")
    val_rows = [rows[i] for i in val_idx]
    texts = [r.norm for r in val_rows]
    P = np.vstack([clf.predict_batch(texts[i:i + 2000]) for i in prog(range(0, len(texts), 2000), desc="score", unit="batch")])
    P = P[:, :len(LABELS)]  # the category heads (a model's aggregate head, if any, comes last)
    Y = np.array([[lab in r.labels for lab in LABELS] for r in val_rows], dtype=np.int8)
    trained = [bool(meta.get("heads", {}).get(lab, {}).get("trained", True)) for lab in LABELS]
    if choose:
        # re-choose the thresholds on validation with the current defaults (the same as a retrain:
        # training is deterministic) and rewrite metadata.json and MODEL_CARD.md
        meta.setdefault("params", {}).update(threshold_target_frr=TARGET_FRR, reject_floor=REJECT_FLOOR,
                                             review_budget=REVIEW_BUDGET, review_floor=REVIEW_FLOOR)
    choose_kw = choose_kwargs(meta.get("params", {}), trained)
    if choose:
        meta["thresholds"] = choose_thresholds(P, Y, val_rows, **choose_kw)
    report = evaluate_predictions(P, Y, val_rows, meta["thresholds"], groups=sp.groups[val_idx],
                                  seed=meta.get("seed", 13), choose_kw=choose_kw)
    if exclude_val_of is not None:
        report["excluded"] = {"seed": exclude_val_of, "rows": excluded}
    if engine_rules is not None:
        report["engine"] = engine_metrics(val_rows, engine_rules, model_dir, progress=progress,
                                          crossfit_result=report["crossfit"])
    if choose:
        import json

        from app.engine.classifier import METADATA_FILE

        meta["metrics"] = report["summary"]
        (Path(model_dir) / METADATA_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n",
                                                     encoding="utf-8")
    if choose or (engine_rules is not None and exclude_val_of is None):
        from app.training.card import write_model_card

        write_model_card(Path(model_dir), meta, report)
    write_report(Path(model_dir) / "EVALUATION.md", report, meta)
    return report
