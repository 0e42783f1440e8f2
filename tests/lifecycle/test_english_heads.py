"""`smsguard train` fits English heads on the English rows alone when every head has English
positives to learn from, the model routes English texts to them, and Chinese texts keep the main
heads' probabilities."""
from __future__ import annotations

import random

import numpy as np

from app.engine.classifier import Classifier, load_classifier
from app.training.train import train_model

from .conftest import RULES
from .corpus import SMALL, WORD, make, write

EN_WORD = "glorbix"
_EN_BAD = ["fresh batch of {w} in", "{w} in stock now", "need {w}? hit me up", "selling {w}, top quality",
           "{w} arrived today", "steady supply of {w}", "pure {w} available", "{w} straight from the source"]
_EN_BAD_B = ["dm for prices", "meet in {p}", "same day drop in {p}", "bulk discount", "you know who to ask",
             "discreet shipping", "test before you pay", "cash only"]
_EN_OK = ["water off in {p} on saturday", "dinner in {p} this weekend?", "{p} library closed tomorrow",
          "parcel left at the {p} locker", "rain expected in {p} tomorrow", "{p} school sports day next week",
          "roadworks near {p} station tonight", "{p} clinic reopens monday"]
_EN_OK_B = ["please plan ahead", "my treat", "open as usual after", "pick it up when you can",
            "bring an umbrella", "bring your id", "parents welcome", "please use another route"]
_EN_PLACES = ["Eastgate", "Westfield", "Riverside", "Northlake", "Hillview", "Oakridge", "Millbrook", "Seaview"]


def _english(n_bad: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)

    def compose(a, b, n, labels):
        seen, out = set(), []
        while len(out) < n:
            t = (rng.choice(a) + ", " + rng.choice(b)).format(w=EN_WORD, p=rng.choice(_EN_PLACES))
            if t not in seen:
                seen.add(t)
                out.append({"text": t, "labels": labels, "source": "en_tiny"})
        return out

    return compose(_EN_BAD, _EN_BAD_B, n_bad, ["contraband"]) + compose(_EN_OK, _EN_OK_B, 60, [])


def test_training_fits_english_heads_and_routes_english_texts_to_them(tmp_path):
    train, data = make(tmp_path / "corpus")
    write(train / "en_tiny.jsonl", _english(50))
    meta, _ = train_model(tmp_path / "m", train_dir=train, data_dir=data, rules_dir=RULES, log=lambda m: None,
                          **SMALL)
    assert meta["format"] == 2 and meta["english"]["latin_bigrams"] is True
    assert meta["english"]["heads"]["contraband"]["trained"] and meta["english"]["n_features"] > 0
    # the English heads learnt from the English rows only (the synthetic English notices included)
    assert meta["english"]["rows"] < meta["split"]["train_rows"] / 2
    clf = load_classifier(tmp_path / "m")
    assert clf.english is not None
    col = clf.labels.index("contraband")
    bad_en, ok_en = clf.predict_batch([f"{EN_WORD} in stock, discreet shipping", "rain expected tomorrow, bring an umbrella"])
    assert bad_en[col] > 0.8 > 0.2 > ok_en[col]
    main_only = Classifier(clf._vec, clf._W, clf._b, clf.labels)
    zh = [f"新到一批{WORD}，懂的来问", "明天城南有雨，出门记得带伞"]
    np.testing.assert_allclose(clf.predict_batch(zh), main_only.predict_batch(zh), rtol=0, atol=1e-12)
    assert "English heads" in (tmp_path / "m" / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_no_english_heads_when_a_head_has_too_few_english_positives(tmp_path):
    """An English head with under 10 positives would score every English text ~0 in its category:
    the model then keeps the main heads for every text."""
    train, data = make(tmp_path / "corpus")
    write(train / "en_tiny.jsonl", _english(6))
    meta, _ = train_model(tmp_path / "m", train_dir=train, data_dir=data, rules_dir=RULES, log=lambda m: None,
                          **SMALL)
    assert "english" not in meta
    clf = load_classifier(tmp_path / "m")
    assert clf.english is None and clf.predict_batch([f"{EN_WORD} in stock"]).shape == (1, len(clf.labels))
