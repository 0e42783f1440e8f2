"""The classifier finds a batch's character n-gram features with integer keys (app/engine/gram_index.py)
instead of one string lookup per gram: the features must be exactly those of the analyzer's
``char_ngrams_wb``, for any text, or the model scores something it was not trained on."""
from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings, strategies as st

from app.engine.features import BIGRAM_PREFIX, WORD_PREFIX, char_ngrams_wb, prepare
from app.engine.classifier import word_grams
from app.engine.gram_index import GramIndex, gram_key, single_chars, word_keys

# what prepare() leaves (CJK, Latin, digits, single spaces, class characters) and what it never
# should (double and edge spaces, astral and surrogate code points): the index must agree anyway
ALPHABET = st.sampled_from(list("ab 中文 微信 x9") + ["\ue001", "😀", "\U00020000", "\ud800"])
TEXTS = st.lists(st.text(alphabet=ALPHABET, max_size=12), min_size=0, max_size=6)


def vocabulary_of(texts) -> dict[str, int]:
    """Every gram of the texts plus tokens the index must leave alone."""
    grams = sorted({g for t in texts for g in char_ngrams_wb(t)})
    vocab = {g: i for i, g in enumerate(grams)}
    for extra in (WORD_PREFIX + "微信", BIGRAM_PREFIX + "go back", "four", "\x00a"):
        vocab.setdefault(extra, len(vocab))
    return vocab


def by_strings(texts, vocab) -> list[Counter]:
    return [Counter(vocab[g] for g in char_ngrams_wb(t) if g in vocab) for t in texts]


def by_index(texts, index) -> list[Counter]:
    rows, cols = index.columns(texts)
    out = [Counter() for _ in texts]
    for r, c in zip(rows.tolist(), cols.tolist()):
        out[r][c] += 1
    return out


@settings(max_examples=300, deadline=None)
@given(TEXTS, TEXTS)
def test_the_index_finds_exactly_the_grams_the_analyzer_makes(texts, others):
    vocab = vocabulary_of(texts + others[:2])  # grams of texts not in the vocabulary are skipped
    index = GramIndex(vocab)
    assert by_index(texts, index) == by_strings(texts, vocab)


def test_real_messages_through_prepare():
    texts = [prepare(t) for t in ("加微信：ｗｘ１２３４５６ 领取彩金！！", "Your parcel is held, pay $1.99 at "
                                  "http://x.co now", "", "   ", "a", "中 文", "kill u b4 2nite")]
    vocab = vocabulary_of(texts[:3])
    assert by_index(texts, GramIndex(vocab)) == by_strings(texts, vocab)


def test_keys_are_one_per_gram_and_longer_tokens_have_none():
    grams = ["a", "ab", "abc", " a", "a ", " a ", "中", "中文", "中文字", "😀", "😀😀😀"]
    keys = [gram_key(g) for g in grams]
    assert len(set(keys)) == len(grams) and all(0 < k < 2 ** 63 for k in keys)
    assert gram_key("") is None and gram_key("abcd") is None and gram_key("a\x00") is None
    index = GramIndex({g: i for i, g in enumerate(grams)} | {WORD_PREFIX + "ab": 99})
    assert len(index) == len(grams)


def test_an_empty_batch_and_an_empty_vocabulary():
    rows, cols = GramIndex({"a": 0}).columns([])
    assert rows.size == cols.size == 0
    rows, cols = GramIndex({}).columns(["abc"])
    assert rows.size == cols.size == 0 and rows.dtype == np.int64


WORDS = st.text(alphabet=st.sampled_from(list("ab中文x9") + ["\ue001", "😀"]), min_size=2, max_size=7)


@settings(max_examples=300, deadline=None)
@given(WORDS)
def test_a_words_keys_are_those_of_the_grams_explain_credits_it_with(word):
    assert word_keys(word) == {gram_key(g) for g in word_grams(word)}


def test_single_characters_are_the_grams_explain_credits_a_character_with():
    grams = ["a", " a", "a ", " a ", "中", " 中 ", "ab", " ab", "ab ", "a b", "  a", "a  ", " "]
    got = single_chars(np.array([gram_key(g) for g in grams] + [-1], dtype=np.int64))
    assert [chr(c) if c else None for c in got.tolist()] == (
        ["a", "a", "a", "a", "中", "中"] + [None] * 7 + [None])
