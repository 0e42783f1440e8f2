"""Leave one source out: ``smsguard evaluate --by-source``.

The random validation split holds out rows of corpora the model also trained on, so it
flatters the model: a source's style, its masking and its templates are learnt. What predicts
traffic the model never saw is to train without a whole source and score that source.

For every chosen source (a corpus of ../shared/data/train, named by its ``source`` field; a
file of data/, named ``data/<file>``; or, for rows of data/ that carry a ``writer`` field, all
of that writer's rows, named ``writer:<id>``, so one writer's style is judged by a model that
never read a line of theirs):

1. the training rows are every other source's rows, less every row in a near-duplicate group
   (``split.near_duplicate_groups``, the grouping the split uses) that holds a row of the
   held-out source, so no template crosses over; the generated notifications of
   ``augment.py`` are added as in ``smsguard train``;
2. the classifier is fitted with the training recipe (``train.fit_classifier``, the same
   parameters as ``smsguard train``);
3. the held-out rows go through the full engine (keywords, patterns, this classifier and the
   policy of the rules folder, thresholds as they stand in rules/policy.yaml);
4. per source: normal rows rejected and sent to review, prohibited rows rejected and flagged,
   marketing-only rows rejected.

Tokens are computed once for all rows (each fold refits only the vocabulary and the heads).
By default the SMS sources are held out (the social-media corpora COLD, SWSR and CED are not SMS;
name them with ``sources`` to include them). A name joined with ``+`` (``uci+writer:w5``) is one
fold: those sources held out together.

``dump`` (a list): every held-out row's first-level signals are appended to it (source, labels,
language, content units, the model's probabilities, the keyword and pattern hits): what
``smsguard fit-decision`` fits the second-level decision on (app/training/decision_fit.py).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from app.engine.classifier import LABELS, PROHIBITED
from app.engine.features import prepare

__all__ = ["source_of", "evaluate_by_source", "table_lines", "write_report"]


def source_of(row) -> str:
    """The held-out unit of a row: ``writer:<id>`` for the project's rows that name their writer
    (all of that writer's files together), ``data/<file>`` for the project's other files, else
    its corpus."""
    if row.meta.get("project"):
        writer = row.meta.get("writer")
        return f"writer:{writer}" if writer else f"data/{row.file}"
    return row.source


def signal_rows(labels, rows, texts: list[str], evidence, sources) -> list[dict]:
    """Per row, what the policy decides on (for ``smsguard fit-decision``): the model's
    probabilities by label, language, content units, keyword and pattern hits (``evidence``:
    ``Moderator.evidence_batch`` of the rows)."""
    return [{"source": str(s), "labels": list(r.labels), "lang": getattr(content, "lang", None),
             "units": getattr(content, "units", None), "text": text,
             "probs": {lab: round(float(p), 5) for lab, p in zip(labels, probs)},
             "evidence": [[h.rule, h.category, h.action, h.score] for h in hits]}
            for r, text, s, (_norm, hits, probs, content) in zip(rows, texts, sources, evidence)]


def _counts(rows, verdicts: list[str]) -> dict:
    prohibited = set(PROHIBITED)
    out = {"rows": len(rows), "normals": 0, "normal_rejected": 0, "normal_review": 0,
           "prohibited": 0, "prohibited_rejected": 0, "prohibited_flagged": 0,
           "marketing_only": 0, "marketing_rejected": 0}
    by_cat: dict[str, dict] = {}
    for r, v in zip(rows, verdicts):
        labs = set(r.labels)
        if not labs:
            out["normals"] += 1
            out["normal_rejected"] += v == "reject"
            out["normal_review"] += v == "review"
        elif labs & prohibited:
            out["prohibited"] += 1
            out["prohibited_rejected"] += v == "reject"
            out["prohibited_flagged"] += v != "allow"
            for lab in sorted(labs & prohibited):
                cat = by_cat.setdefault(lab, {"rows": 0, "rejected": 0, "flagged": 0})
                cat["rows"] += 1
                cat["rejected"] += v == "reject"
                cat["flagged"] += v != "allow"
        else:
            out["marketing_only"] += 1
            out["marketing_rejected"] += v == "reject"

    def rate(a, b):
        return round(out[a] / out[b], 5) if out[b] else None

    out["normal_reject_rate"] = rate("normal_rejected", "normals")
    out["normal_review_rate"] = rate("normal_review", "normals")
    out["normal_flag_rate"] = (round((out["normal_rejected"] + out["normal_review"]) / out["normals"], 5)
                               if out["normals"] else None)
    out["prohibited_reject_rate"] = rate("prohibited_rejected", "prohibited")
    out["prohibited_flag_rate"] = rate("prohibited_flagged", "prohibited")
    out["marketing_reject_rate"] = rate("marketing_rejected", "marketing_only")
    # per prohibited category (a row with two categories counts in both)
    out["categories"] = {lab: dict(c, reject_rate=round(c["rejected"] / c["rows"], 5),
                                   flag_rate=round(c["flagged"] / c["rows"], 5))
                         for lab, c in sorted(by_cat.items())}
    return out


def evaluate_by_source(rules_dir: Path, train_dir: Path | None = None, data_dir: Path | None = None,
                       sources: Iterable[str] | None = None, seed: int = 13, progress: Callable | None = None,
                       log: Callable[[str], None] = print, misses: list | None = None, dump: list | None = None,
                       **overrides) -> dict:
    """{"sources": {name: counts}, "params": ..., "seconds": ...}; raises ValueError for an
    unknown source name. ``misses`` (a list): normal and marketing-only rows that were not
    allowed are appended to it with their verdict and rules (for development: a held-out source
    whose misses someone read is no longer unseen)."""
    from app.engine.moderator import Moderator
    from app.engine.ruleset import RuleSetManager
    from app.training import dataset as ds
    from app.training.split import near_duplicate_groups
    from app.training.train import (DEFAULTS, fit_classifier, lexicon_user_words, load_rows, make_analyzer,
                                    synthetic_rows)

    params = dict(DEFAULTS, **overrides, seed=seed)
    t0 = time.time()
    prog = progress or (lambda it, **kw: it)
    rows, _files, normalizer, _name = load_rows(train_dir, data_dir, prog)
    src = np.array([source_of(r) for r in rows])
    known = list(dict.fromkeys(src.tolist()))
    if sources is None:
        chosen = [s for s in known if s not in ds.SOCIAL_SOURCES]
    else:
        chosen = list(dict.fromkeys(sources))
        unknown = [p for s in chosen for p in s.split("+") if p not in known]
        if unknown:
            raise ValueError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(known)}")
    n_real = len(rows)
    groups, _sig, _bands = near_duplicate_groups([prepare(r.norm) for r in rows],
                                                 threshold=params["dedup_threshold"], seed=seed)
    all_rows = rows + synthetic_rows(params, normalizer)
    user_words = lexicon_user_words(rules_dir)
    analyzer = make_analyzer(user_words, params)
    tokens = [analyzer(r.norm) for r in prog(all_rows, desc="tokens", unit="msg")]
    log(f"{n_real} rows from {len(known)} sources, tokens in {time.time() - t0:.0f}s; holding out {len(chosen)}")
    manager = RuleSetManager(rules_dir, watch=False)
    out: dict[str, dict] = {}
    try:
        for s in chosen:
            t1 = time.time()
            held = np.isin(src, s.split("+"))
            crossing = np.isin(groups, np.unique(groups[held])) & ~held
            train_idx = np.concatenate([np.flatnonzero(~held & ~crossing), np.arange(n_real, len(all_rows))])
            clf, _heads = fit_classifier(all_rows, train_idx, params, user_words, tokens=tokens,
                                         log=lambda _m: None, t0=t1)
            moderator = Moderator(manager, clf)
            held_rows = [rows[i] for i in np.flatnonzero(held)]
            texts = [ds.engine_text(r) for r in held_rows]
            # the evidence once: decided here, and dumped as it is (the same as check_batch's verdicts)
            evidence = [e for i in range(0, len(texts), 1000) for e in moderator.evidence_batch(texts[i:i + 1000])]
            policy, labels = manager.current.policy, moderator.labels
            verdicts = [policy.replay(labels, probs, content, hits) for _t, hits, probs, content in evidence]
            if dump is not None:
                dump.extend(signal_rows(labels, held_rows, texts, evidence, src[held]))
            c = _counts(held_rows, [v.verdict for v in verdicts])
            if misses is not None:
                for r, t, v in zip(held_rows, texts, verdicts):
                    if v.verdict != "allow" and (not r.labels or set(r.labels) <= {"marketing"}):
                        misses.append({"source": s, "text": t, "labels": list(r.labels), "verdict": v.verdict,
                                       "rules": [(h.rule, h.score, h.evidence) for h in v.reasons]})
            c["near_duplicates_left_out"] = int(crossing.sum())
            c["seconds"] = round(time.time() - t1, 1)
            out[s] = c
            log(f"  {s}: {_line(c)} ({c['seconds']:.0f}s)")
    finally:
        manager.close()
    return {"sources": out, "seed": seed, "overrides": dict(overrides), "rules_dir": str(rules_dir),
            "seconds": round(time.time() - t0, 1)}


def _pct(x) -> str:
    return "-" if x is None else f"{x:.2%}"


def _line(c: dict) -> str:
    return (f"normals {c['normals']}: rejected {_pct(c['normal_reject_rate'])}, review {_pct(c['normal_review_rate'])}; "
            f"prohibited {c['prohibited']}: rejected {_pct(c['prohibited_reject_rate'])}, "
            f"flagged {_pct(c['prohibited_flag_rate'])}")


def table_lines(result: dict) -> list[str]:
    head = (f"{'held-out source':<36}{'normals':>8}{'reject':>8}{'review':>8}{'flagged':>8}"
            f"{'prohib':>8}{'reject':>8}{'flagged':>8}{'mkt rej':>8}")
    lines = [head]
    for s, c in result["sources"].items():
        lines.append(f"{s:<36}{c['normals']:>8}{_pct(c['normal_reject_rate']):>8}{_pct(c['normal_review_rate']):>8}"
                     f"{_pct(c['normal_flag_rate']):>8}{c['prohibited']:>8}{_pct(c['prohibited_reject_rate']):>8}"
                     f"{_pct(c['prohibited_flag_rate']):>8}{_pct(c['marketing_reject_rate']):>8}")
    cats = _category_rows(result)
    if cats:
        lines += ["", f"{'held-out source':<36}{'category':<20}{'rows':>8}{'reject':>8}{'flagged':>8}"]
        lines += [f"{s:<36}{lab:<20}{c['rows']:>8}{_pct(c['reject_rate']):>8}{_pct(c['flag_rate']):>8}"
                  for s, lab, c in cats]
    return lines


def _category_rows(result: dict) -> list[tuple[str, str, dict]]:
    """(source, category, counts) for the sources whose prohibited rows span several categories
    (a corpus of one category already has its line in the main table)."""
    return [(s, lab, c) for s, src in result["sources"].items() if len(src.get("categories") or {}) > 1
            for lab, c in src["categories"].items()]


def write_report(path: Path, result: dict, command: str) -> None:
    out = ["# Leave one source out", "",
           "Each source was held out whole: the classifier was trained without it (and without every row "
           "near-duplicate of one of its rows), and its rows went through the full engine (keywords, patterns, "
           "classifier, rules/policy.yaml). Method: app/training/by_source.py; docs/evaluation.md.", "",
           f"Command: `{command}` (seed {result['seed']}, {result['seconds']:.0f} s).", "",
           *([f"Recipe: app/training/train.py DEFAULTS with "
              f"{', '.join(f'{k}={v}' for k, v in result['overrides'].items())}.", ""]
             if result.get("overrides") else []),
           "\"review\" counts messages sent to review only; \"flagged\" is review or reject.", "",
           "| held-out source | normals | rejected | review | flagged | prohibited | rejected | flagged | marketing rejected |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s, c in result["sources"].items():
        out.append(f"| {s} | {c['normals']} | {_pct(c['normal_reject_rate'])} | {_pct(c['normal_review_rate'])} | "
                   f"{_pct(c['normal_flag_rate'])} | {c['prohibited']} | {_pct(c['prohibited_reject_rate'])} | "
                   f"{_pct(c['prohibited_flag_rate'])} | {_pct(c['marketing_reject_rate'])} |")
    cats = _category_rows(result)
    if cats:
        out += ["", "Prohibited rows by category (sources with several categories):", "",
                "| held-out source | category | rows | rejected | flagged |", "|---|---|---:|---:|---:|"]
        out += [f"| {s} | {lab} | {c['rows']} | {_pct(c['reject_rate'])} | {_pct(c['flag_rate'])} |"
                for s, lab, c in cats]
    out.append("")
    Path(path).write_text("\n".join(out), encoding="utf-8")
