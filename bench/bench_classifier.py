"""Classifier benchmark: the naive pipeline vs smsguard's, in one run, on one core.

    .venv/bin/python bench/bench_classifier.py [--model models/smsguard-zh-en] [--n 2000] [--runs 3]

- naive: jieba.lcut TF-IDF + LogisticRegression, trained here on a sample of the corpora;
  single = ``pipe.predict_proba([text])`` per message, batch = ``predict_proba`` on 1,000 texts.
- smsguard classifier: ``normalize(text).text`` then ``Classifier.predict_one`` (lean path)
  per message, or ``predict_batch`` on 1,000 normalized texts (normalization included).
- smsguard engine (when app/engine/moderator.py exists): ``Moderator.check`` per message and
  ``check_batch`` on 1,000 messages (keywords + patterns + classifier + policy).

Each figure is the median of ``--runs`` passes (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from app.config import DEFAULT_MODEL_NAME  # noqa: E402
from app.training.dataset import train_dir_default  # noqa: E402


def jieba_tokenize(text: str) -> list[str]:
    import jieba
    return jieba.lcut(text)


def sample_messages(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    pool: list[str] = []
    tdir = train_dir_default()
    for name, k in (("zh_fbs.jsonl", 0.35), ("zh_sms_spam800k.jsonl", 0.45), ("en_uci_sms.jsonl", 0.2)):
        lines = (tdir / name).read_text(encoding="utf-8").split("\n")
        lines = [x for x in lines if x.strip()]
        pool += [json.loads(x)["text"] for x in rng.sample(lines, int(n * k) + 1)]
    rng.shuffle(pool)
    return pool[:n]


def train_naive(seed: int = 7, n: int = 20000):
    import jieba
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    jieba.setLogLevel(60)
    jieba.initialize()
    rng = random.Random(seed)
    rows = []
    for path in sorted(train_dir_default().glob("*.jsonl")):
        rows += [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x.strip()]
    rows = rng.sample(rows, n)
    y = [(r["labels"] or ["normal"])[0] for r in rows]
    pipe = make_pipeline(TfidfVectorizer(tokenizer=jieba_tokenize, token_pattern=None, lowercase=True),
                         LogisticRegression(max_iter=300))
    pipe.fit([r["text"] for r in rows], y)
    return pipe


def _single(fn, texts) -> tuple[float, float, float]:
    lat = []
    for t in texts:
        t0 = time.perf_counter_ns()
        fn(t)
        lat.append(time.perf_counter_ns() - t0)
    lat_ms = np.array(lat) / 1e6
    return float(np.percentile(lat_ms, 50)), float(np.percentile(lat_ms, 99)), len(texts) / (lat_ms.sum() / 1e3)


def _batch(fn, texts, size=1000) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), size):
        fn(texts[i:i + size])
    return len(texts) / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models" / DEFAULT_MODEL_NAME))
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--single", type=int, default=1000, help="messages timed one by one")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-engine", action="store_true")
    args = ap.parse_args(argv)
    try:  # one core, as the target says
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass

    from app.engine.classifier import load_classifier
    from app.engine.normalize import normalize

    texts = sample_messages(args.n)
    single_texts = texts[: args.single]
    print(f"{len(texts)} messages (fbs / spam800k / uci sample), mean {sum(map(len, texts)) / len(texts):.0f} chars; "
          f"medians of {args.runs} runs", flush=True)
    t0 = time.perf_counter()
    naive = train_naive()
    print(f"naive pipeline trained in {time.perf_counter() - t0:.0f}s", flush=True)
    clf = load_classifier(args.model)

    def ours_one(t):
        return clf.predict_one(normalize(t).text)

    def ours_batch(ts):
        return clf.predict_batch([normalize(t).text for t in ts])

    normed = [normalize(t).text for t in single_texts]
    engine = None
    if not args.no_engine and (ROOT / "app" / "engine" / "moderator.py").exists():
        try:
            from app.engine.moderator import Moderator
            engine = Moderator.from_paths(args.rules, args.model, watch=False)
        except Exception as exc:  # the engine is someone else's work in progress
            print(f"engine not benchmarked: {type(exc).__name__}: {exc}")
    # warm up
    for t in texts[:50]:
        naive.predict_proba([t])
        ours_one(t)
        if engine:
            engine.check(t)

    res: dict[str, list] = {}
    for _ in range(args.runs):
        for name, val in (
            ("naive single", _single(lambda t: naive.predict_proba([t]), single_texts)),
            ("naive batch", _batch(naive.predict_proba, texts)),
            ("clf-only single (normalized in)", _single(clf.predict_one, normed)),
            ("smsguard classifier single", _single(ours_one, single_texts)),
            ("smsguard classifier batch", _batch(ours_batch, texts)),
        ):
            res.setdefault(name, []).append(val)
        if engine:
            res.setdefault("smsguard engine single", []).append(_single(engine.check, single_texts))
            res.setdefault("smsguard engine batch", []).append(_batch(engine.check_batch, texts))

    def med(name, i=None):
        vals = res[name]
        return statistics.median(v[i] if i is not None else v for v in vals)

    print()
    print(f"{'pipeline':<34}{'batch msg/s':>13}{'single msg/s':>14}{'p50 ms':>9}{'p99 ms':>9}")
    nb, ns, np50 = med("naive batch"), med("naive single", 2), med("naive single", 0)
    print(f"{'naive (jieba tfidf + LR)':<34}{nb:>13,.0f}{ns:>14,.0f}{np50:>9.3f}{med('naive single', 1):>9.3f}")
    print(f"{'classifier only, normalized input':<34}{'':>13}{med('clf-only single (normalized in)', 2):>14,.0f}"
          f"{med('clf-only single (normalized in)', 0):>9.3f}{med('clf-only single (normalized in)', 1):>9.3f}")
    ob, os_, op50 = med("smsguard classifier batch"), med("smsguard classifier single", 2), med("smsguard classifier single", 0)
    print(f"{'smsguard classifier (+normalize)':<34}{ob:>13,.0f}{os_:>14,.0f}{op50:>9.3f}"
          f"{med('smsguard classifier single', 1):>9.3f}")
    if engine:
        eb, es, ep50 = med("smsguard engine batch"), med("smsguard engine single", 2), med("smsguard engine single", 0)
        print(f"{'smsguard full engine':<34}{eb:>13,.0f}{es:>14,.0f}{ep50:>9.3f}{med('smsguard engine single', 1):>9.3f}")
    print()
    print(f"ratio classifier/naive: batch x{ob / nb:.1f}, single throughput x{os_ / ns:.1f}, p50 x{np50 / op50:.1f} faster")
    if engine:
        print(f"ratio engine/naive:     batch x{eb / nb:.1f}, single throughput x{es / ns:.1f}, p50 x{np50 / ep50:.1f} faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
