"""Two models side by side through the full engine: ``smsguard model compare OLD NEW`` and the gate
of ``smsguard model promote`` (docs/evaluation.md, "Learning from decisions").

Both models are scored with the same rules (rules/policy.yaml as it stands: what the service
would run after the switch) on

- **the frozen validation split**: OLD's validation rows, re-made from its metadata (seed,
  val_frac, dedup_threshold, max_val_group) on the current ../shared/data/train and data/ exactly
  as ``smsguard evaluate`` does; when NEW's split parameters differ, only the rows BOTH splits
  hold out are scored (neither model trained on them). Rows the engine sees as training did
  (fbs fills redrawn, spam800k digits restored: ``dataset.engine_text``);
- **the blind sets** (data/blind/*.jsonl, ``blind.read_set``), pooled: legitimate rows (no
  prohibited label) and prohibited rows.

Per set and model: each prohibited category's recall (rows labelled with it that are REJECTED,
whatever category rejected them; and flagged: review or reject), the normal false-reject rate
(normal / legitimate rows rejected) and the normal review rate (sent to review).

The gate refuses NEW when, on any set, a category's recall drops by more than
``recall`` (absolute) or the normal false-reject rate rises by more than ``frr`` (absolute),
and (both cases) by at least ``min_rows`` rows: one row of a small category is noise, not a
regression. ``review`` (off by default) gates the normal review rate the same way.

Keyword and pattern evidence does not depend on the model: it is computed once per row and each
model's classifier hits are added to it, then the policy decides (``Moderator.check_batch`` does
the same per message).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from app.engine.classifier import LABELS, PROHIBITED

#: the split parameters that must agree for two models to share a validation split
SPLIT_KEYS = ("val_frac", "dedup_threshold", "max_val_group")


@dataclass(frozen=True)
class Tolerances:
    recall: float = 0.01      # a category's recall may drop by at most this (absolute)
    frr: float = 0.0005       # the normal false-reject rate may rise by at most this (absolute)
    review: float | None = None  # the normal review rate (None: reported, not gated)
    min_rows: int = 2         # a change of fewer rows than this is never a regression


def _split_params(meta: dict) -> dict:
    p = meta.get("params", {})
    return {"seed": meta.get("seed", 13), "val_frac": p.get("val_frac", 0.15),
            "dedup_threshold": p.get("dedup_threshold", 0.6), "max_val_group": p.get("max_val_group", 5)}


def validation_rows(old_meta: dict, new_meta: dict, train_dir=None, data_dir=None, progress=None,
                    log: Callable[[str], None] = print) -> tuple[list, dict]:
    """(the frozen validation rows, what was done): OLD's split, intersected with NEW's when
    their split parameters differ."""
    from app.training import dataset as ds
    from app.training.split import split_rows

    prog = progress or (lambda it, **kw: it)
    normalizer, name = ds.get_normalizer()
    rows, files = ds.load_dataset(train_dir, data_dir, normalizer=normalizer, known_labels=LABELS,
                                  progress=lambda it: prog(it, desc="normalize", unit="msg"))
    notes = []
    now = {f["file"]: f["sha256"] for f in files}
    for which, meta in (("OLD", old_meta), ("NEW", new_meta)):
        trained = {f["file"]: f["sha256"] for f in meta.get("data", []) if f.get("kind") in ("shared", "project")}
        changed = sorted(k for k in set(trained) | set(now) if trained.get(k) != now.get(k))
        if changed:
            notes.append(f"{which} was trained on other data than the current files ({', '.join(changed[:6])}"
                         f"{' ...' if len(changed) > 6 else ''}): its split is re-made on current data, so some "
                         "validation rows may be rows it trained on")
    po, pn = _split_params(old_meta), _split_params(new_meta)
    sp = split_rows(rows, val_frac=po["val_frac"], seed=po["seed"], threshold=po["dedup_threshold"],
                    max_val_group=po["max_val_group"])
    val = sp.val_idx
    info = {"split": po, "old_val_rows": int(len(val))}
    if pn != po:
        sp2 = split_rows(rows, val_frac=pn["val_frac"], seed=pn["seed"], threshold=pn["dedup_threshold"],
                         max_val_group=pn["max_val_group"])
        val = np.intersect1d(val, sp2.val_idx)
        info["new_split"] = pn
        notes.append(f"the models were split differently (OLD {po}, NEW {pn}): scored on the {len(val)} rows both "
                     "held out")
    info["rows"] = int(len(val))
    info["notes"] = notes  # printed with the table (table_lines)
    return [rows[i] for i in val], info


def _engine_evidence(rules_dir: Path, texts: list[str], progress=None):
    """Keyword + pattern evidence per text (no model), and the rule set it was made with."""
    from app.engine.moderator import ModelInForce, Moderator

    prog = progress or (lambda it, **kw: it)
    m = Moderator.from_paths(rules_dir, model_dir=None, watch=False)
    try:
        rs = m.ruleset
        ev = []
        for i in prog(range(0, len(texts), 1000), desc="rules", unit="batch"):
            ev += m.evidence_batch(texts[i:i + 1000], rs=rs, model=ModelInForce())
    finally:
        m.close()
    return rs, ev


def _verdicts(rs, evidence, clf, progress=None) -> np.ndarray:
    """The engine's verdict per row: the rows' evidence + this classifier's hits, decided."""
    prog = progress or (lambda it, **kw: it)
    policy = rs.policy
    norms = [e[0] for e in evidence]
    out = np.empty(len(evidence), dtype=object)
    labels = tuple(clf.labels)
    for s in prog(range(0, len(norms), 2000), desc="score", unit="batch"):
        probs, units = clf.score_batch(norms[s:s + 2000])
        for k in range(len(units)):
            _t, hits, _p, _c = evidence[s + k]
            out[s + k] = policy.replay(labels, probs[k], units[k], hits).verdict
    return out


def measure(verdicts: np.ndarray, label_sets: list[set], normal: np.ndarray) -> dict:
    """The figures of one model on one set (see the module doc)."""
    rejected = verdicts == "reject"
    review = verdicts == "review"
    n_norm = int(normal.sum())
    out = {"rows": int(len(verdicts)), "normals": n_norm,
           "normal_rejected": int((rejected & normal).sum()), "normal_review": int((review & normal).sum()),
           "per_category": {}}
    out["normal_false_reject_rate"] = out["normal_rejected"] / n_norm if n_norm else 0.0
    out["normal_review_rate"] = out["normal_review"] / n_norm if n_norm else 0.0
    for cat in PROHIBITED:
        mask = np.array([cat in s for s in label_sets], dtype=bool)
        n = int(mask.sum())
        if not n:
            continue
        rej = int((rejected & mask).sum())
        flag = int(((rejected | review) & mask).sum())
        out["per_category"][cat] = {"support": n, "rejected": rej, "flagged": flag,
                                    "recall": rej / n, "recall_at_review": flag / n}
    return out


def gate(name: str, old: dict, new: dict, tol: Tolerances) -> list[str]:
    """The regressions of NEW against OLD on one set (empty: none beyond the tolerances)."""
    out = []
    for cat, o in old["per_category"].items():
        nw = new["per_category"].get(cat)
        if nw is None:
            continue
        drop, lost = o["recall"] - nw["recall"], o["rejected"] - nw["rejected"]
        if drop > tol.recall + 1e-12 and lost >= tol.min_rows:
            out.append(f"{name}: {cat} recall {o['recall']:.3f} -> {nw['recall']:.3f} ({lost} of {o['support']} "
                       f"rows no longer rejected; tolerance {tol.recall})")
    rise = new["normal_false_reject_rate"] - old["normal_false_reject_rate"]
    extra = new["normal_rejected"] - old["normal_rejected"]
    if rise > tol.frr + 1e-12 and extra >= tol.min_rows:
        out.append(f"{name}: normal false-reject rate {old['normal_false_reject_rate']:.3%} -> "
                   f"{new['normal_false_reject_rate']:.3%} ({extra} more of {old['normals']} normals rejected; "
                   f"tolerance {tol.frr:.3%})")
    if tol.review is not None:
        rise = new["normal_review_rate"] - old["normal_review_rate"]
        extra = new["normal_review"] - old["normal_review"]
        if rise > tol.review + 1e-12 and extra >= tol.min_rows:
            out.append(f"{name}: normal review rate {old['normal_review_rate']:.2%} -> {new['normal_review_rate']:.2%} "
                       f"({extra} more normals sent to review; tolerance {tol.review:.2%})")
    return out


def default_blind_sets(root: Path | None = None) -> list[Path]:
    from app.config import PROJECT_ROOT

    return sorted(((root or PROJECT_ROOT) / "data" / "blind").glob("*.jsonl"))


def compare_models(old_dir: Path, new_dir: Path, rules_dir: Path, train_dir=None, data_dir=None,
                   blind: list[Path] | None = None, validation: bool = True, tol: Tolerances | None = None,
                   progress=None, log: Callable[[str], None] = print) -> dict:
    """Score OLD and NEW (model folders) on the frozen validation split and the blind sets;
    the result holds both models' figures per set, the regressions and ``ok`` (no regression)."""
    from app.engine.classifier import load_classifier
    from app.training import blind as bl
    from app.training.dataset import engine_text

    tol = tol or Tolerances()
    t0 = time.time()
    old_clf, new_clf = load_classifier(old_dir), load_classifier(new_dir)
    old_meta, new_meta = old_clf.metadata, new_clf.metadata
    sets: dict[str, dict] = {}
    notes: list[str] = []
    if validation:
        rows, info = validation_rows(old_meta, new_meta, train_dir, data_dir, progress=progress, log=log)
        notes += info["notes"]
        sets["validation"] = {"texts": [engine_text(r) for r in rows], "labels": [set(r.labels) for r in rows],
                              "normal": np.array([not r.labels for r in rows], dtype=bool),
                              "what": f"validation split (seed {info['split']['seed']}, {info['rows']} rows)"}
    if blind:
        texts, labels = [], []
        for p in blind:
            for r in bl.read_set(Path(p)):
                texts.append(r["text"])
                labels.append(set(r.get("labels") or ()))
        prohibited = set(PROHIBITED)
        sets["blind"] = {"texts": texts, "labels": labels,
                         "normal": np.array([not (s & prohibited) for s in labels], dtype=bool),
                         "what": f"blind sets ({len(blind)} files, {len(texts)} rows; normal = legitimate rows)",
                         "files": [str(p) for p in blind]}
    if not sets:
        raise ValueError("nothing to compare on: no validation split and no blind set")
    result = {"old": {"dir": str(old_dir), "version": old_clf.version},
              "new": {"dir": str(new_dir), "version": new_clf.version},
              "rules_dir": str(rules_dir), "tolerances": asdict(tol), "sets": {}, "regressions": [], "notes": notes}
    for name, s in sets.items():
        log(f"{name}: {len(s['texts'])} rows")
        rs, ev = _engine_evidence(rules_dir, s["texts"], progress)
        result["ruleset_version"] = rs.version
        o = measure(_verdicts(rs, ev, old_clf, progress), s["labels"], s["normal"])
        n = measure(_verdicts(rs, ev, new_clf, progress), s["labels"], s["normal"])
        result["sets"][name] = {"what": s["what"], "old": o, "new": n, **({"files": s["files"]} if "files" in s else {})}
        result["regressions"] += gate(name, o, n, tol)
    result["ok"] = not result["regressions"]
    result["seconds"] = round(time.time() - t0, 1)
    return result


def table_lines(result: dict) -> list[str]:
    """The comparison for a terminal: both models' figures per set, the regressions, the outcome."""
    lines = [f"OLD {result['old']['version']} ({result['old']['dir']})",
             f"NEW {result['new']['version']} ({result['new']['dir']})",
             f"rules {result.get('ruleset_version', '?')} ({result['rules_dir']})"]
    for n in result.get("notes", []):
        lines.append(f"note: {n}")
    for name, s in result["sets"].items():
        o, nw = s["old"], s["new"]
        lines += ["", f"{s['what']}",
                  f"{'category':<18}{'rows':>7}{'OLD recall':>12}{'NEW recall':>12}{'change':>9}"
                  f"{'OLD flagged':>13}{'NEW flagged':>13}"]
        for cat, m in o["per_category"].items():
            k = nw["per_category"][cat]
            lines.append(f"{cat:<18}{m['support']:>7}{m['recall']:>12.3f}{k['recall']:>12.3f}"
                         f"{k['recall'] - m['recall']:>+9.3f}{m['recall_at_review']:>13.3f}{k['recall_at_review']:>13.3f}")
        lines.append(f"{'normal false-reject rate':<37}{o['normal_false_reject_rate']:>12.3%}"
                     f"{nw['normal_false_reject_rate']:>12.3%}   ({o['normal_rejected']} -> {nw['normal_rejected']} "
                     f"of {o['normals']})")
        lines.append(f"{'normal review rate':<37}{o['normal_review_rate']:>12.3%}{nw['normal_review_rate']:>12.3%}"
                     f"   ({o['normal_review']} -> {nw['normal_review']})")
    t = result["tolerances"]
    lines.append("")
    lines.append(f"tolerances: recall -{t['recall']}, normal false-reject +{t['frr']}, "
                 f"review {'+' + str(t['review']) if t['review'] is not None else 'not gated'}, "
                 f"min rows {t['min_rows']}")
    if result["ok"]:
        lines.append("accepted: no category's recall and no normal false-reject rate got worse beyond the tolerances")
    else:
        lines += [f"regression: {r}" for r in result["regressions"]]
        lines.append(f"refused: {len(result['regressions'])} regression(s)")
    return lines
