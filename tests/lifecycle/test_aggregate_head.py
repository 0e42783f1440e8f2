"""`smsguard train` fits the aggregate head (any prohibited category) after the category heads,
the model carries it, and the engine uses it as rules/policy.yaml says (classifier.prohibited_head)."""
from __future__ import annotations

import numpy as np

from app.engine.classifier import AGGREGATE_LABEL, LABELS, load_classifier
from app.engine.moderator import Moderator
from app.engine.ruleset import RuleSetManager

from .conftest import RULES
from .corpus import WORD


def test_training_fits_the_aggregate_head(tiny):
    meta = tiny.good_meta
    assert tuple(meta["labels"]) == LABELS + (AGGREGATE_LABEL,)
    head = meta["heads"][AGGREGATE_LABEL]
    # the tiny corpus's only prohibited rows are the contraband trade: the pooled head has as many
    assert head["trained"] and head["train_positives"] == meta["heads"]["contraband"]["train_positives"]
    clf = load_classifier(tiny.good, categories=list(LABELS))
    p_trade, p_ok = clf.predict_batch([f"新到一批{WORD}，懂的来问", "明天城南有雨，出门记得带伞"])
    assert p_trade[-1] > 0.8 > 0.2 > p_ok[-1]


def test_the_engine_never_reports_the_aggregate_label(tiny):
    manager = RuleSetManager(RULES, watch=False)
    try:
        m = Moderator(manager, load_classifier(tiny.good))
        for text in (f"新到一批{WORD}，{WORD}现货充足，老客户私聊拿货，质量保证", "周末一起去江北吃饭吧，我请客，不见不散"):
            v = m.check(text)
            assert AGGREGATE_LABEL not in v.categories
            assert all(h.category != AGGREGATE_LABEL and h.rule != "CLF_PROHIBITED" for h in v.reasons)
        assert m.check(f"新到一批{WORD}，{WORD}现货充足，老客户私聊拿货，质量保证").verdict == "reject"
        assert m.check("周末一起去江北吃饭吧，我请客，不见不散").verdict == "allow"
    finally:
        manager.close()


def test_a_model_without_the_aggregate_head_is_trained_on_request(tmp_path):
    """``aggregate_head=False`` (a params override) trains the category heads alone, and that
    model loads and scores as before."""
    from app.training.train import train_model

    from .corpus import SMALL, make

    train, data = make(tmp_path / "corpus")
    meta, _ = train_model(tmp_path / "m", train_dir=train, data_dir=data, rules_dir=RULES, log=lambda m: None,
                          aggregate_head=False, **SMALL)
    assert tuple(meta["labels"]) == LABELS and AGGREGATE_LABEL not in meta["heads"]
    P = load_classifier(tmp_path / "m").predict_batch(["明天城南有雨"])
    assert P.shape == (1, len(LABELS)) and np.isfinite(P).all()
