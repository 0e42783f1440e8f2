"""Classifier: lean path == batch path, save/load round trip, metadata mismatch refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from app.engine import classifier as C
from app.engine.features import Analyzer

TEXTS = [
    ("澳门新葡京娱乐城注册送888元彩金，官网 http://am8.com", "gambling"),
    ("百家乐真人荷官在线发牌，首存送100%，客服13812345678", "gambling"),
    ("六合彩特码资料免费看，加微信 abc123", "gambling"),
    ("您的银行卡已被冻结，请点击 http://icbc-safe.cn 解冻", "fraud"),
    ("恭喜您中奖10万元，请先缴纳手续费到账户6222021234567890", "fraud"),
    ("公检法通知：您涉嫌洗钱，请将资金转入安全账户", "fraud"),
    ("代开各类发票，点数优惠，可验证后付款", "contraband"),
    ("办理各类证件，毕业证驾驶证，联系13912345678", "contraband"),
    ("本店周年庆全场五折，回T退订", "marketing"),
    ("新品上市，会员专享8折优惠，拒收请回复R", "marketing"),
    ("明天下午三点开会，记得带材料", None),
    ("妈，我到家了，晚饭不用等我", None),
    ("【工商银行】提醒：银行不会要求您转账到安全账户，谨防诈骗", None),
    ("Your parcel will arrive tomorrow between 9 and 12", None),
    ("free entry win cash prize now, call 09061234567", "marketing"),
    ("see you at lunch?", None),
]


def tiny_classifier(ngram_range=(1, 3)) -> C.Classifier:
    docs = [t for t, _ in TEXTS]
    vec = TfidfVectorizer(analyzer=Analyzer(["百家乐"], ngram_range=ngram_range), sublinear_tf=True,
                          dtype=np.float64)
    X = vec.fit_transform(docs)
    W = np.zeros((X.shape[1], len(C.LABELS)))
    B = np.full(len(C.LABELS), -5.0)
    for j, lab in enumerate(C.LABELS):
        y = np.array([lab == l for _, l in TEXTS], dtype=int)
        if y.sum() == 0:
            continue
        lr = LogisticRegression(C=10.0, solver="liblinear", random_state=0).fit(X, y)
        W[:, j], B[j] = lr.coef_.ravel(), lr.intercept_[0]
    return C.Classifier(vec, W, B, C.LABELS, version="tiny")


@pytest.fixture(scope="module")
def clf():
    return tiny_classifier()


def test_lean_path_equals_batch_path(clf):
    probes = [t for t, _ in TEXTS] + ["完全没见过的句子", "", "   ", "13800000000", "call me 123"]
    batch = clf.predict_batch(probes)
    lean = np.vstack([clf.predict_one(t) for t in probes])
    assert batch.shape == (len(probes), len(C.LABELS))
    np.testing.assert_allclose(lean, batch, rtol=0, atol=1e-9)
    ref = 1 / (1 + np.exp(-clf.decision_batch_sklearn(probes)))
    np.testing.assert_allclose(batch, ref, rtol=0, atol=1e-9)


def test_other_ngram_ranges_score_and_explain_alike_on_every_path():
    """Only 1-3-grams have the integer gram index; an analyzer with another range is looked up
    token by token, with the same numbers as scikit-learn and the same explanations."""
    two = tiny_classifier(ngram_range=(1, 2))
    assert not two._gram_path
    probes = [t for t, _ in TEXTS] + ["完全没见过的句子", "", "call me 123"]
    batch = two.predict_batch(probes)
    np.testing.assert_allclose(np.vstack([two.predict_one(t) for t in probes]), batch, rtol=0, atol=1e-9)
    np.testing.assert_allclose(batch, 1 / (1 + np.exp(-two.decision_batch_sklearn(probes))), rtol=0, atol=1e-9)
    text = "百家乐真人荷官在线发牌"
    _p, _u, explained = two.score_batch_explained([text, "明天开会"])
    assert explained[0]("gambling") == two.explain(text, "gambling", k=5)
    assert any("百家乐" in w or "荷官" in w or "发牌" in w for w in two.explain(text, "gambling", k=3))


def test_the_batch_and_single_paths_explain_with_the_same_words(clf):
    """check_batch explains from the batch's matrix, check from the one message's features,
    ``explain`` from scratch: the same words for the same text."""
    texts = [t for t, _ in TEXTS] + ["百家乐百家乐 荷官", "Your parcel is held, pay at http://x.top"]
    _p, _u, batch = clf.score_batch_explained(texts)
    for text, ex in zip(texts, batch):
        single = clf.score_one_explained(text)[2]
        for label in ("gambling", "fraud", "marketing"):
            assert ex(label) == single(label) == clf.explain(text, label, k=5), (text, label)


def reference_scores(clf: C.Classifier, text: str, label: str) -> dict[str, float]:
    """Every word of the text and every character, scored by the summed contributions x_j * w_j
    of the features inside it (``word_grams`` and the word itself), spelled out with strings and
    scikit-learn's own TF-IDF."""
    from app.engine.features import WORD_PREFIX, prepare
    heads = clf.heads_for(C.content_units(prepare(text)))
    x = heads._vec.transform([text]).tocoo()
    inv = {j: t for t, j in heads._vec.vocabulary_.items()}
    contrib = {inv[j]: v * heads._W[j, heads._col[label]] for j, v in zip(x.col, x.data)}
    prepared = prepare(text)
    words = [w for w in heads._analyzer._cut(prepared) if len(w) > 1]
    scores = {}
    for w in dict.fromkeys(words + [ch for ch in prepared if ch != " "]):
        feats = C.word_grams(w) | {WORD_PREFIX + w}
        if any(f in contrib for f in feats):
            scores[w] = sum(contrib.get(f, 0.0) for f in feats)
    return scores


def reference_explain(scores: dict[str, float], k: int = 5) -> list[str]:
    """What ``explain`` means: of ``reference_scores``, the k best positive ones, a candidate
    inside an earlier one skipped."""
    from app.engine.features import display_token
    out: list[str] = []
    for w in sorted((w for w in scores if scores[w] > 0), key=lambda w: (-scores[w], w)):
        if len(out) >= k:
            break
        if not any(w in o for o in out):
            out.append(display_token(w))
    return out


def test_explain_is_the_sum_of_each_words_features(clf):
    """The same words as the definition, ranked alike; two words whose scores differ only by the
    order floating-point sums are added in (two words that share every weight) may come in
    either order, so ranks are compared by score within 1e-9."""
    from app.engine.features import display_token
    texts = [t for t, _ in TEXTS] + ["百家乐百家乐 荷官 13812345678", "Your parcel is held, pay at http://x.top"]
    for text in texts:
        for label in ("gambling", "fraud", "contraband", "marketing"):
            scores = reference_scores(clf, text, label)
            got, want = clf.explain(text, label, k=5), reference_explain(scores)
            if got == want:
                continue
            by_display = {display_token(w): v for w, v in scores.items()}
            assert sorted(got) == sorted(want), (text, label, got, want)
            assert all(abs(by_display[a] - by_display[b]) < 1e-9 for a, b in zip(got, want)), (text, label, got, want)


def test_explain_names_the_words(clf):
    words = clf.explain("百家乐真人荷官在线发牌", "gambling", k=3)
    assert 1 <= len(words) <= 3
    assert any("百家乐" in w or "荷官" in w or "发牌" in w for w in words)


def test_explainer_explains_each_label_from_one_analysis(clf):
    """A message that reaches review in two categories is analysed once and explained for both;
    each label's words are what ``explain`` says for it alone, and a lazy explainer analyses
    nothing until asked."""
    text = "百家乐真人荷官在线发牌，您的银行卡已被冻结，请点击 http://icbc-safe.cn 解冻"
    ex = clf.explainer(text)
    for label in ("gambling", "fraud"):
        assert ex(label, 3) == clf.explain(text, label, k=3)
    assert any("百家乐" in w or "荷官" in w for w in ex("gambling", 3))
    assert ex("fraud", 3) != ex("gambling", 3)
    assert clf.lazy_explainer(text)("fraud") == clf.explain(text, "fraud", k=5)
    assert clf.explainer("，。！")("fraud") == []


@pytest.mark.parametrize("word", ["a", "中", "ab", "百家乐", "hello", "a b", " ab", "x y z", "荷官 发牌"])
def test_word_grams_are_the_features_inside_the_word(word):
    """What explain credits a word with: its 1-3 character grams and the space-padded
    word-boundary grams the analyzer makes of it, no more (a shortcut for the common case of a
    word without spaces must agree with the analyzer's own n-grams)."""
    from app.engine.features import char_ngrams_wb
    ref = {word[i:i + n] for n in (1, 2, 3) for i in range(len(word) - n + 1)} | set(char_ngrams_wb(word))
    assert C.word_grams(word) == ref


def _save(tmp_path, clf, **meta_over):
    import sklearn
    meta = {"name": "tiny", "trained_at": "2026-01-01T00:00:00", "versions": {"scikit-learn": sklearn.__version__},
            "thresholds": {}}
    saved = C.save_model(tmp_path, clf, meta)
    if meta_over:
        path = tmp_path / C.METADATA_FILE
        d = json.loads(path.read_text())
        for k, v in meta_over.items():
            if k == "sklearn":
                d["versions"]["scikit-learn"] = v
            else:
                d[k] = v
        path.write_text(json.dumps(d))
    return saved


def test_save_load_round_trip_same_probabilities(tmp_path, clf):
    _save(tmp_path, clf)
    loaded = C.load_classifier(tmp_path)
    assert loaded.labels == C.LABELS and loaded.version.startswith("tiny-")
    probes = [t for t, _ in TEXTS]
    # shipped weights are float32: same to ~1e-6, and lean == batch exactly on the loaded model
    np.testing.assert_allclose(loaded.predict_batch(probes), clf.predict_batch(probes), atol=1e-5)
    np.testing.assert_allclose(np.vstack([loaded.predict_one(t) for t in probes]),
                               loaded.predict_batch(probes), rtol=0, atol=1e-9)


@pytest.mark.parametrize("override, message", [
    ({"labels": list(C.LABELS[:-1])}, "label set"),
    ({"features_version": "0"}, "feature-code version"),
    ({"sklearn": "0.24.2"}, "scikit-learn"),
    ({"format": 99}, "format"),
])
def test_metadata_mismatch_is_refused(tmp_path, clf, override, message):
    _save(tmp_path, clf, **override)
    with pytest.raises(C.ModelMismatchError, match=message) as exc:
        C.load_classifier(tmp_path)
    assert "\n" not in str(exc.value)


def test_unknown_category_in_rules_refused(tmp_path, clf):
    _save(tmp_path, clf)
    with pytest.raises(C.ModelMismatchError, match="not categories"):
        C.load_classifier(tmp_path, categories=["gambling", "fraud"])
    C.load_classifier(tmp_path, categories=list(C.LABELS) + ["custom"])


def test_missing_model_dir_refused(tmp_path):
    with pytest.raises(C.ModelMismatchError, match="metadata"):
        C.load_classifier(tmp_path / "nope")


def with_aggregate_head(clf: C.Classifier) -> C.Classifier:
    """``clf`` plus an aggregate head (any prohibited category) fitted on TEXTS."""
    X = clf._vec.transform([t for t, _ in TEXTS])
    y = np.array([lab is not None and lab in C.PROHIBITED for _, lab in TEXTS], dtype=int)
    lr = LogisticRegression(C=10.0, solver="liblinear", random_state=0).fit(X, y)
    W = np.hstack([clf._W, lr.coef_.reshape(-1, 1)])
    B = np.append(clf._b, lr.intercept_[0])
    return C.Classifier(clf._vec, W, B, C.LABELS + (C.AGGREGATE_LABEL,), version="tiny-aggregate")


def test_a_model_with_the_aggregate_head_round_trips(tmp_path, clf):
    agg = with_aggregate_head(clf)
    _save(tmp_path, agg)
    loaded = C.load_classifier(tmp_path, categories=list(C.LABELS))
    assert loaded.labels == C.LABELS + (C.AGGREGATE_LABEL,)
    probes = [t for t, _ in TEXTS]
    P = loaded.predict_batch(probes)
    assert P.shape == (len(probes), len(C.LABELS) + 1)
    # the category heads are the same as without the aggregate head
    np.testing.assert_allclose(P[:, :len(C.LABELS)], clf.predict_batch(probes), atol=1e-5)
    np.testing.assert_allclose(np.vstack([loaded.predict_one(t) for t in probes]), P, rtol=0, atol=1e-9)
    # gambling and fraud rows score higher on "any prohibited" than the personal ones
    gambling = P[[i for i, (_, lab) in enumerate(TEXTS) if lab == "gambling"], -1]
    personal = P[[i for i, (_, lab) in enumerate(TEXTS) if lab is None], -1]
    assert gambling.min() > personal.max()


def test_the_aggregate_label_is_not_a_category_anywhere_else(tmp_path, clf):
    # a label set with the aggregate head in another place, or another extra head, is refused
    _save(tmp_path, with_aggregate_head(clf), labels=[C.AGGREGATE_LABEL] + list(C.LABELS))
    with pytest.raises(C.ModelMismatchError, match="label set"):
        C.load_classifier(tmp_path)


EN_TEXTS = [
    ("you stupid idiot I will find you", "abuse"),
    ("shut up you worthless loser", "abuse"),
    ("win cash now text WIN to 80888", "marketing"),
    ("your parcel will arrive tomorrow", None),
    ("see you at lunch, idiot proof recipe inside", None),
    ("running late, save me a seat", None),
]


def with_english_heads(main: C.Classifier) -> C.Classifier:
    """``main`` with tiny English heads fitted on EN_TEXTS (Latin word pairs as features)."""
    docs = [t for t, _ in EN_TEXTS]
    vec = TfidfVectorizer(analyzer=Analyzer([], latin_bigrams=True), sublinear_tf=True, dtype=np.float64)
    X = vec.fit_transform(docs)
    W = np.zeros((X.shape[1], len(C.LABELS)))
    B = np.full(len(C.LABELS), -4.0)
    for j, lab in enumerate(C.LABELS):
        y = np.array([lab == l for _, l in EN_TEXTS], dtype=int)
        if y.sum():
            lr = LogisticRegression(C=10.0, solver="liblinear", random_state=0).fit(X, y)
            W[:, j], B[j] = lr.coef_.ravel(), lr.intercept_[0]
    en = C.Classifier(vec, W, B, C.LABELS, version="tiny")
    return C.Classifier(main._vec, main._W, main._b, C.LABELS, version="tiny", english=en)


MIXED = ["you stupid idiot", "see you at lunch?", "百家乐真人荷官在线发牌", "妈，我到家了",
         "百家乐 idiot", "idiot idiot 百", "", "13800000000", "call me 123 you loser"]


def test_english_texts_are_scored_by_the_english_heads_and_others_by_the_main_heads(clf):
    """With English heads, a text whose Latin words outnumber its CJK characters gets the English
    heads' probabilities, any other text the main heads' (unchanged), on every path."""
    from app.engine.features import content_units, prepare
    both = with_english_heads(clf)
    batch = both.predict_batch(MIXED)
    lean = np.vstack([both.predict_one(t) for t in MIXED])
    scored = np.vstack([both.score_one(t)[0] for t in MIXED])
    probs, units = both.score_batch(MIXED)
    np.testing.assert_allclose(lean, batch, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scored, batch, rtol=0, atol=1e-9)
    np.testing.assert_allclose(probs, batch, rtol=0, atol=1e-9)
    np.testing.assert_allclose(batch, 1 / (1 + np.exp(-both.decision_batch_sklearn(MIXED))), rtol=0, atol=1e-9)
    assert units == [content_units(prepare(t)) for t in MIXED]
    english = [content_units(prepare(t)).lang == "en" for t in MIXED]
    assert english[:4] == [True, True, False, False] and any(english[4:]) and not all(english[4:])
    for t, p, en in zip(MIXED, batch, english):
        own = (both.english if en else clf).predict_batch([t])[0]
        np.testing.assert_allclose(p, own, rtol=0, atol=1e-12)
    ab = C.LABELS.index("abuse")
    assert batch[0, ab] > 0.5 > clf.predict_one("you stupid idiot")[ab]
    assert batch[1, ab] < 0.5
    assert "idiot" in " ".join(both.explain("you stupid idiot", "abuse", k=3))


def test_a_model_with_english_heads_round_trips(tmp_path, clf):
    both = with_english_heads(clf)
    meta = _save(tmp_path, both)
    assert meta["format"] == 2 and meta["english"]["n_features"] == len(both.english._idf)
    loaded = C.load_classifier(tmp_path)
    assert loaded.english is not None and loaded.english.labels == loaded.labels
    np.testing.assert_allclose(loaded.predict_batch(MIXED), both.predict_batch(MIXED), atol=1e-5)
    # a model saved before the English heads (format 1, no "english") still loads, without them
    old = tmp_path / "old"
    _save(old, clf, format=1)
    assert C.load_classifier(old).english is None


def test_metadata_that_disagrees_on_the_english_heads_is_refused(tmp_path, clf):
    _save(tmp_path, with_english_heads(clf))
    path = tmp_path / C.METADATA_FILE
    d = json.loads(path.read_text())
    d.pop("english")
    path.write_text(json.dumps(d))
    with pytest.raises(C.ModelMismatchError, match="English heads"):
        C.load_classifier(tmp_path)


def test_english_heads_must_share_the_labels(clf):
    en = C.Classifier(clf._vec, clf._W[:, :-1], clf._b[:-1], C.LABELS[:-1])
    with pytest.raises(C.ModelMismatchError, match="English heads"):
        C.Classifier(clf._vec, clf._W, clf._b, C.LABELS, english=en)
