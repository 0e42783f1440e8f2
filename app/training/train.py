"""Train the classifier: `smsguard train` calls ``train_model``.

Recipe (see MODEL_CARD.md for the why):

- rows: ../shared/data/train/*.jsonl + data/*.jsonl, normalized with app.engine.normalize,
  fbs placeholder fills redrawn, spam800k masked digits restored as digit runs (dataset.py);
- split: held out per source, stratified, near-duplicate-free (split.py);
- features: sublinear TF-IDF over character 1-3-grams + jieba words of the feature text
  (features.py; the rule lexicons' Chinese terms are the jieba user dictionary, frozen into the
  model);
- one-vs-rest L2 logistic regression (liblinear, fixed seed) per category, plus one aggregate head
  (any prohibited category against none, for policy.yaml `classifier.prohibited_head`), with sample weights:
  positives weighted up by sqrt(negatives/positives) (capped), the project's own hand-written
  SMS (data/) weighted up, social-media corpora (COLD, SWSR, CED) weighted down as negatives of
  the SMS categories;
- English heads (``english_heads``, on by default): the same heads fitted once more on the
  training rows that are English (``features.Content.lang``), with pairs of neighbouring Latin
  words as features (``english_latin_bigrams``); the model routes English texts to them
  (classifier.py);
- calibration: Platt scaling fitted on out-of-fold decision scores (k folds on train), folded
  into the final weights: p = sigmoid(a * (x.w + b0) + c) = sigmoid(x.(a w) + (a b0 + c));
- thresholds per category chosen on validation (evaluate.choose_thresholds).
"""
from __future__ import annotations

import datetime as _dt
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from app.config import PROJECT_ROOT
from app.engine.classifier import AGGREGATE_LABEL, LABELS, PROHIBITED, Classifier, routes_to_english, save_model
from app.engine.features import FEATURES_VERSION, Analyzer
from app.training import dataset as ds
from app.training.augment import synthetic_notifications
from app.training.evaluate import REJECT_FLOOR, REVIEW_BUDGET, REVIEW_FLOOR, TARGET_FRR
from app.training.split import split_rows

DEFAULTS = dict(
    seed=13,
    val_frac=0.15,
    dedup_threshold=0.6,
    min_df=2,
    max_features=500_000,
    C=8.0,
    folds=3,
    pos_weight_cap=25.0,
    project_weight=6.0,
    project_neg_weight=5.0,
    synthetic_weight=2.0,
    synthetic_zh=2000,
    synthetic_en=400,
    social_neg_weight=0.5,
    fbs_weight=2.0,
    max_val_group=5,
    jobs=2,
    # fit the aggregate head (any prohibited category; policy.yaml classifier.prohibited_head)
    aggregate_head=True,
    # features: pairs of neighbouring Latin words besides character n-grams and words
    latin_bigrams=False,
    # a second set of heads for English texts, fitted on the English training rows alone
    # (classifier.py routes English texts to them), with Latin word pairs as features
    english_heads=True,
    english_latin_bigrams=True,
    threshold_target_frr=TARGET_FRR,
    reject_floor=REJECT_FLOOR,
    review_budget=REVIEW_BUDGET,
    review_floor=REVIEW_FLOOR,
)


#: sample weight of the reviewers' decisions (``train --with-decisions``), positives and negatives
DECISIONS_WEIGHT = 3.0


def lexicon_user_words(rules_dir: Path | None = None) -> list[str]:
    """Chinese terms of rules/keywords/*.yaml (strings under any ``terms`` list)."""
    from app.engine.ruleset import parse_yaml

    rules_dir = Path(rules_dir) if rules_dir else PROJECT_ROOT / "rules"
    words: set[str] = set()

    def walk(node, in_terms=False):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, in_terms or k in ("terms", "term", "allow", "allow_terms"))
        elif isinstance(node, list):
            for v in node:
                walk(v, in_terms)
        elif isinstance(node, str) and in_terms:
            w = node.strip()
            if 2 <= len(w) <= 12 and " " not in w and any("\u4e00" <= c <= "\u9fff" for c in w):
                words.add(w)

    for path in sorted((rules_dir / "keywords").glob("*.y*ml")):
        try:
            walk(parse_yaml(path.read_text(encoding="utf-8")))
        except Exception:  # a broken rule file must not break training
            continue
    return sorted(words)


def _fit_binary(X, y, w, C, seed):
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=C, solver="liblinear", max_iter=200, tol=1e-4, random_state=seed)
    lr.fit(X, y, sample_weight=w)
    return lr.coef_.ravel().astype(np.float64), float(lr.intercept_[0])


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling (a, c) so that p = sigmoid(a*s + c), fitted by Newton on the log loss
    with Platt's smoothed targets."""
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    a, c = 1.0, 0.0
    for _ in range(100):
        z = a * scores + c
        p = 1 / (1 + np.exp(-z))
        g = p - t
        wgt = p * (1 - p) + 1e-12
        ga, gc = float(g @ scores), float(g.sum())
        haa, hac, hcc = float(wgt @ (scores * scores)), float(wgt @ scores), float(wgt.sum())
        det = haa * hcc - hac * hac
        if det <= 0:
            break
        da = (hcc * ga - hac * gc) / det
        dc = (haa * gc - hac * ga) / det
        a, c = a - da, c - dc
        if abs(da) < 1e-10 and abs(dc) < 1e-10:
            break
    return a, c


def sample_weights(rows, idx, y: np.ndarray, params: dict) -> np.ndarray:
    base = np.ones(len(idx))
    for k, i in enumerate(idx):
        r = rows[i]
        if r.meta.get("synthetic"):
            base[k] = params["synthetic_weight"]
        elif r.meta.get("decisions"):
            base[k] = params.get("decisions_weight", DECISIONS_WEIGHT)
        elif r.meta.get("project"):
            base[k] = params["project_weight"] if y[k] else params["project_neg_weight"]
        elif r.source in ds.SOCIAL_SOURCES and not y[k]:
            base[k] = params["social_neg_weight"]
        elif r.source == "fbs":
            base[k] = params["fbs_weight"]
    pos = y == 1
    if pos.any():
        ratio = base[~pos].sum() / base[pos].sum()
        base[pos] *= float(np.clip(np.sqrt(ratio), 1.0, params["pos_weight_cap"]))
    return base


def make_analyzer(user_words: list[str], params: dict) -> Analyzer:
    """The feature analyzer of a recipe: the one place its settings (``latin_bigrams``) are read, so
    that tokens made ahead (by_source) and the analyzer saved with the model never disagree."""
    return Analyzer(user_words, latin_bigrams=params["latin_bigrams"])


def english_rows(rows, idx: np.ndarray) -> np.ndarray:
    """The rows of ``idx`` that the model routes to its English heads (``classifier.routes_to_english``)."""
    from app.engine.features import content_units, prepare

    return np.asarray([i for i in idx if routes_to_english(content_units(prepare(rows[i].norm)))], dtype=np.intp)


def _has_label(row, label: str) -> bool:
    if label == AGGREGATE_LABEL:
        return any(lab in PROHIBITED for lab in row.labels)
    return label in row.labels


def fit_classifier(rows, tr: np.ndarray, params: dict, user_words: list[str], progress: Callable | None = None,
                   log: Callable[[str], None] = print, t0: float | None = None,
                   tokens: list | None = None) -> tuple[Classifier, dict]:
    """Fit the vectorizer and the calibrated one-vs-rest heads on ``rows[tr]`` (see the module
    doc), and with ``english_heads`` the English heads on the English rows of ``tr``.
    ``tokens`` (optional): the rows' feature tokens already computed (``Analyzer`` of the same
    user words and recipe), so that leave-one-source-out runs tokenize once (the English heads'
    tokens are made here). Returns (classifier, heads' metadata); the English heads' own (rows,
    recipe, heads) is ``classifier.english.metadata``."""
    t0 = time.time() if t0 is None else t0
    clf, heads = fit_heads(rows, tr, params, user_words, progress=progress, log=log, t0=t0, tokens=tokens)
    if not params.get("english_heads"):
        return clf, heads
    en_tr = english_rows(rows, tr)
    short = [lab for lab in clf.labels if heads.get(lab, {}).get("trained", True)
             and sum(_has_label(rows[i], lab) for i in en_tr) < 10]
    if short:
        # an English head that cannot be fitted would score every English text ~0 in its category
        log(f"English heads: not fitted, too few English positives for {', '.join(short)}")
        return clf, heads
    log(f"English heads: {len(en_tr)} English training rows")
    en_params = dict(params, latin_bigrams=params["english_latin_bigrams"])
    en, en_heads = fit_heads(rows, en_tr, en_params, user_words, progress=progress, log=log, t0=t0)
    en.metadata = {"rows": int(len(en_tr)), "latin_bigrams": bool(params["english_latin_bigrams"]),
                   "heads": en_heads}
    return Classifier(clf._vec, clf._W, clf._b, clf.labels, version="training", english=en), heads


def fit_heads(rows, tr: np.ndarray, params: dict, user_words: list[str], progress: Callable | None = None,
              log: Callable[[str], None] = print, t0: float | None = None,
              tokens: list | None = None) -> tuple[Classifier, dict]:
    """One vectorizer and its calibrated one-vs-rest heads on ``rows[tr]``. The categories are
    fitted on ``params["jobs"]`` threads (liblinear releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import StratifiedKFold

    t0 = time.time() if t0 is None else t0
    prog = progress or (lambda it, **kw: it)
    analyzer = make_analyzer(user_words, params)
    if tokens is None:
        vec = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=params["min_df"],
                              max_features=params["max_features"], dtype=np.float64)
        X_tr = vec.fit_transform(prog([rows[i].norm for i in tr], desc="features", unit="msg"))
    else:
        vec = TfidfVectorizer(analyzer=_identity, sublinear_tf=True, min_df=params["min_df"],
                              max_features=params["max_features"], dtype=np.float64)
        X_tr = vec.fit_transform([tokens[i] for i in tr])
        vec.analyzer = analyzer
    log(f"features: {X_tr.shape[1]} (user words {len(user_words)}) in {time.time() - t0:.0f}s")
    # the category heads are fitted in threads on this one matrix: put it in canonical form
    # (sorted indices, no duplicates) now, so that no fit sorts or prunes it in place while
    # another thread reads it (seen once as "indices array has fewer than nnz elements")
    X_tr.sum_duplicates()
    X_tr.sort_indices()
    Y_tr = np.array([[lab in rows[i].labels for lab in LABELS] for i in tr], dtype=np.int8)
    # the aggregate head (policy.yaml classifier.prohibited_head): any prohibited category
    heads_labels = LABELS + ((AGGREGATE_LABEL,) if params.get("aggregate_head", True) else ())
    if len(heads_labels) > len(LABELS):
        prohibited = [j for j, lab in enumerate(LABELS) if lab in PROHIBITED]
        Y_tr = np.hstack([Y_tr, Y_tr[:, prohibited].max(axis=1, keepdims=True)])
    n_feat = X_tr.shape[1]
    W = np.zeros((n_feat, len(heads_labels)))
    B = np.full(len(heads_labels), -12.0)
    heads: dict[str, dict] = {}
    seed = params["seed"]

    def fit_head(j: int) -> None:
        lab = heads_labels[j]
        y = Y_tr[:, j]
        n_pos = int(y.sum())
        if n_pos < 10:
            heads[lab] = {"trained": False, "train_positives": n_pos}
            log(f"  {lab}: {n_pos} positives, head not trained (p ~ 0)")
            return
        w = sample_weights(rows, tr, y, params)
        oof = np.zeros(len(y))
        skf = StratifiedKFold(n_splits=params["folds"], shuffle=True, random_state=seed)
        for f_tr, f_te in skf.split(np.zeros(len(y)), y):
            coef, b0 = _fit_binary(X_tr[f_tr], y[f_tr], w[f_tr], params["C"], seed)
            oof[f_te] = X_tr[f_te] @ coef + b0
        a, c = _platt(oof, y)
        coef, b0 = _fit_binary(X_tr, y, w, params["C"], seed)
        W[:, j] = a * coef
        B[j] = a * b0 + c
        heads[lab] = {"trained": True, "train_positives": n_pos, "platt_a": round(a, 6), "platt_c": round(c, 6),
                      "pos_weight": round(float(w[y == 1][0] / max(w[y == 0].min(), 1e-9)), 3)}
        log(f"  {lab}: {n_pos} positives, platt a={a:.3f} c={c:.3f} ({time.time() - t0:.0f}s)")

    with ThreadPoolExecutor(max_workers=max(1, int(params.get("jobs", 2)))) as pool:
        # the aggregate head (the most positives, the longest fit) first
        order = sorted(range(len(heads_labels)), key=lambda j: -int(Y_tr[:, j].sum()))
        list(prog(pool.map(fit_head, order), desc="heads", unit="head", total=len(heads_labels)))
    heads = {lab: heads[lab] for lab in heads_labels}
    # store and score with the float32 weights that ship
    W = W.astype(np.float32).astype(np.float64)
    return Classifier(vec, W, B, heads_labels, version="training"), heads


def synthetic_rows(params: dict, normalizer: Callable[[str], str]) -> list:
    """The generated ordinary notifications of augment.py, normalized (training side only)."""
    synth = synthetic_notifications(params["synthetic_zh"], params["synthetic_en"], seed=params["seed"])
    for r in synth:
        r.norm = normalizer(r.text)
    return synth


def _identity(tokens):
    return tokens


def load_rows(train_dir: Path | None, data_dir: Path | None, prog: Callable) -> tuple[list, list[dict], Callable, str]:
    """(rows, files, normalizer, its name): every labelled row, normalized, as training reads them."""
    normalizer, name = ds.get_normalizer()
    rows, files = ds.load_dataset(train_dir, data_dir, normalizer=normalizer, known_labels=LABELS,
                                  progress=lambda it: prog(it, desc="normalize", unit="msg"))
    return rows, files, normalizer, name


def decision_rows(decisions: list[dict], val_rows: list, normalizer: Callable[[str], str], params: dict,
                  log: Callable[[str], None] = print) -> tuple[list, dict]:
    """The reviewers' decisions (exported lines, app/training/decisions.py) as training rows of
    source ``decisions``, TRAINING SIDE ONLY: the validation split stays the one the same recipe
    makes without them (the frozen split ``smsguard model compare`` scores), and a decision
    that is a near-duplicate of a validation row is left out, so that the split stays unseen.
    Returns (rows, the metadata entry of the ``data`` list)."""
    from app.engine.features import prepare
    from app.training import decisions as dec

    rows = dec.to_rows(decisions, normalizer)
    near = dec.near_duplicates_of([prepare(r.norm) for r in rows], [prepare(r.norm) for r in val_rows],
                                  threshold=params["dedup_threshold"], seed=params["seed"])
    kept = [r for r, bad in zip(rows, near) if not bad]
    labels: dict[str, int] = {}
    for r in kept:
        for lab in r.labels or ("normal",):
            labels[lab] = labels.get(lab, 0) + 1
    log(f"decisions: {len(kept)} rows for training ({int(near.sum())} near-duplicates of validation rows left out)")
    entry = {"file": "(database) reviewer decisions", "kind": "decisions", "sha256": dec.lines_sha256(decisions),
             "rows": len(kept), "skipped": int(near.sum()), "unknown_labels": 0, "relabelled": 0,
             "labels": dict(sorted(labels.items()))}
    return kept, entry


def train_model(out_dir: Path, seed: int = 13, train_dir: Path | None = None, data_dir: Path | None = None,
                rules_dir: Path | None = None, progress: Callable | None = None,
                log: Callable[[str], None] = print, decisions: list[dict] | None = None,
                decisions_info: dict | None = None, **overrides) -> tuple[dict, dict]:
    """Train, choose thresholds, evaluate on validation, write the artifact. Returns (metadata, report).

    ``decisions`` (``smsguard train --with-decisions``): exported reviewer decisions (lines of
    app/training/decisions.py) added as one more source, training side only (``decision_rows``);
    ``decisions_info`` (since, counts) is recorded with them in the metadata and the card."""
    from app.training import evaluate as ev
    from app.training.card import write_model_card

    params = dict(DEFAULTS, **overrides, seed=seed)
    if decisions is not None:
        params.setdefault("decisions_weight", DECISIONS_WEIGHT)
    t0 = time.time()
    prog = progress or (lambda it, **kw: it)
    rows, files, normalizer, normalizer_name = load_rows(train_dir, data_dir, prog)
    log(f"loaded {len(rows)} rows from {len(files)} files ({normalizer_name}) in {time.time() - t0:.0f}s")
    sp = split_rows(rows, val_frac=params["val_frac"], seed=seed, threshold=params["dedup_threshold"],
                    max_val_group=params["max_val_group"])
    log(f"split: {sp.summary()}")
    tr, va = sp.train_idx, sp.val_idx
    # synthetic ordinary notifications (augment.py): training side only
    synth = synthetic_rows(params, normalizer)
    tr = np.concatenate([tr, np.arange(len(rows), len(rows) + len(synth))])
    rows = rows + synth
    files = files + [{"file": "(generated) app/training/augment.py", "kind": "generated",
                      "sha256": ds.sha256_file(Path(__file__).with_name("augment.py")), "rows": len(synth),
                      "skipped": 0, "unknown_labels": 0, "labels": {"normal": len(synth)}}]
    decisions_meta = None
    if decisions is not None:
        drows, entry = decision_rows(decisions, [rows[i] for i in va], normalizer, params, log=log)
        tr = np.concatenate([tr, np.arange(len(rows), len(rows) + len(drows))])
        rows = rows + drows
        files = files + [entry]
        decisions_meta = {**(decisions_info or {}), "exported": len(decisions), "trained": len(drows),
                          "near_duplicates_of_validation": entry["skipped"], "sha256": entry["sha256"],
                          "weight": params["decisions_weight"], "split": "training side only"}
    user_words = lexicon_user_words(rules_dir)
    clf, heads = fit_classifier(rows, tr, params, user_words, progress=prog, log=log, t0=t0)
    n_feat = len(clf._vec.vocabulary_)
    Y = np.array([[lab in r.labels for lab in LABELS] for r in rows], dtype=np.int8)
    Y_va = Y[va]
    # the category heads (the aggregate head, if any, is the last column), each validation text
    # scored by the heads it is routed to
    P_va = clf.predict_batch([rows[i].norm for i in va])[:, :len(LABELS)]
    val_rows = [rows[i] for i in va]
    trained = [heads[lab].get("trained", False) for lab in LABELS]
    choose_kw = ev.choose_kwargs(params, trained)
    thresholds = ev.choose_thresholds(P_va, Y_va, val_rows, **choose_kw)
    report = ev.evaluate_predictions(P_va, Y_va, val_rows, thresholds, groups=sp.groups[va], seed=seed,
                                     choose_kw=choose_kw)
    import joblib
    import scipy
    import sklearn

    meta = {
        "name": Path(out_dir).name,
        "trained_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "params": params,
        "normalizer": normalizer_name,
        "normalizer_sha256": ds.normalizer_fingerprint(),
        "features_version": FEATURES_VERSION,
        "features": {"vectorizer": "TfidfVectorizer(sublinear_tf, l2)", "analyzer": "char 1-3 within words (padded) + jieba words",
                     "n_features": int(n_feat), "user_words": len(user_words)},
        "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__, "scipy": scipy.__version__, "joblib": joblib.__version__,
                     "jieba_binding": _jieba_binding()},
        "data": files,
        "split": sp.summary(),
        "heads": heads,
        "thresholds": thresholds,
        **({"english": clf.english.metadata} if clf.english is not None else {}),
        "metrics": report["summary"],
        "train_seconds": round(time.time() - t0, 1),
    }
    if decisions_meta is not None:
        meta["decisions"] = decisions_meta
    meta = save_model(out_dir, clf, meta)
    ev.write_report(Path(out_dir) / "EVALUATION.md", report, meta)
    write_model_card(Path(out_dir), meta, report)
    log(f"wrote {out_dir} ({meta['model_bytes'] / 1e6:.1f} MB) in {time.time() - t0:.0f}s")
    return meta, report


def _jieba_binding() -> str:
    try:
        import importlib.metadata as im
        return f"rjieba {im.version('rjieba')}"
    except Exception:
        import jieba
        return f"jieba {jieba.__version__}"
