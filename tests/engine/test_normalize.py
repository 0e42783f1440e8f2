"""normalize(): every fold, and the offset map back to the original text."""
from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.normalize import normalize, normalize_term, pinyin_table, term_pinyins


@pytest.mark.parametrize("raw, expected", [
    ("赌 博", "赌博"),                          # space inside a CJK word
    ("法✨轮功", "法轮功"),                      # emoji inside
    ("赌*博", "赌博"),                           # symbol inside
    ("赌.博", "赌博"),                           # ASCII punctuation inside
    ("赌_博", "赌博"),                           # underscore inside
    ("a\u200dss", "ass"),                       # zero-width joiner
    ("p\u200bo\u00adr\ufeffn", "porn"),         # ZWSP, soft hyphen, BOM
    ("赌\u202e博", "赌博"),                      # bidi control
    ("赌\ufe0f博", "赌博"),                      # variation selector
    ("s\u0301\u0302\u0303\u0304ex", "sex"),     # combining-mark flood
    ("ｆｕｃｋ", "fuck"),                        # full-width letters
    ("ⓟⓞⓡⓝ", "porn"),                          # circled letters
    ("𝐬𝐞𝐱", "sex"),                              # mathematical bold letters
    ("🅿🅾🆁🅽", "porn"),                          # negative squared letters
    ("①②③", "123"),                             # circled digits
    ("澳門賭場", "澳门赌场"),                    # traditional -> simplified
    ("Аpple", "apple"),                         # Cyrillic А
    ("рorn", "porn"),                           # Cyrillic р
    ("ѕех", "sex"),                             # Cyrillic ѕ, е, х
    ("αss", "ass"),                             # Greek alpha
    ("p0rn", "porn"),                           # digits as letters
    ("s3x", "sex"),
    ("v1agra", "viagra"),
    ("@ss", "@ss"),                             # not inside a word: left alone
    ("a$$hole", "asshole"),
    ("fuuuuck", "fuck"),                        # folded repeats
    ("f.u.c.k", "fuck"),                        # letters split by punctuation
    ("f u c k you", "fuck you"),                # single letters split by spaces
    ("FUCK", "fuck"),                           # case
    ("I\u2019ll", "i'll"),                        # typographic apostrophe (phones type it)
    ("you\u02bcre", "you're"),                    # modifier-letter apostrophe
])
def test_evasion_folds(raw, expected):
    assert normalize(raw).text == expected


@pytest.mark.parametrize("raw, expected", [
    ("您好，您的快递", "您好,您的快递"),      # sentence punctuation stays a boundary
    ("后台。独立", "后台。独立"),
    ("hello world", "hello world"),           # ordinary words keep their spaces
    ("i am ok", "i am ok"),                   # two single letters are not a run
    ("iphone15 pro", "iphone15 pro"),         # digits at a word end stay digits
    ("good", "good"),                          # double letters are not folded
    ("第1期 2024年", "第1期 2024年"),
    ("赌\n博", "赌\n博"),                       # a newline is a boundary
])
def test_boundaries_kept(raw, expected):
    assert normalize(raw).text == expected


def test_pattern_view_keeps_separators_and_digits():
    n = normalize("加ＶＸ： ab c123 p0rn")
    assert n.pattern_text == "加vx: ab c123 p0rn"
    assert n.text.endswith("porn")


def test_spans_map_to_original():
    raw = "今天澳 門\u200b賭✨場開業"
    n = normalize(raw)
    assert n.text == "今天澳门赌场开业"
    i = n.text.index("赌场")
    a, b = n.span(i, i + 2)
    assert raw[a:b] == "賭✨場"
    assert n.evidence(i, i + 2) == "賭✨場"


@pytest.mark.parametrize("raw, expected", [
    ("你这🐶东西", "你这🐶东西"),       # an animal standing for a word stays between two characters
    ("非洲🐒越来越多", "非洲🐒越来越多"),
    ("你个🐷脑子", "你个🐷脑子"),
    ("一坨💩一样", "一坨💩一样"),       # pile of poo, clown: words too
    ("赌❤博", "赌博"),                 # decorative emoji and symbols are still separators
    ("法🌸轮功", "法轮功"),
])
def test_word_emoji_are_kept_between_characters(raw, expected):
    n = normalize(raw)
    assert n.text == expected
    i = n.text.find("🐶")
    if i >= 0:
        assert n.evidence(i, i + 3) == "🐶东西"


def test_span_with_expansion_and_deletion():
    raw = "ﬁ\u200bne ①⑩ fuuuuck"
    n = normalize(raw)
    assert n.text == "fine 110 fuck"
    assert n.evidence(0, 4) == "ﬁ\u200bne"
    j = n.text.index("fuck")
    assert n.evidence(j, j + 4) == "fuuuuck"
    k = n.text.index("110")
    assert n.evidence(k, k + 3) == "①⑩"


def test_term_normalization_matches_message_normalization():
    assert normalize_term("百 家 樂") == normalize("百家乐").text
    assert normalize_term("ＶＸ") == "vx"


def test_pinyin_table_and_term_pinyins():
    table = pinyin_table()
    assert table[ord("裸")] == "luo"
    assert table[ord("女")] == "nv"
    assert "duchang" in term_pinyins("赌场")
    assert "liuhecai" in term_pinyins("六合彩")


def test_pinyin_windows_only_around_latin():
    n = normalize("今天我们一起去luo聊吧，好不好")
    windows = n.pinyin_windows(4)
    assert len(windows) == 1
    off, window, view = windows[0]
    assert "luo聊" in window
    assert "luoliao" in view
    assert normalize("今天我们一起去裸聊吧").pinyin_windows(4) == []


SEPARATORS = [" ", "\u200b", "\u200d", "\u00ad", "\ufeff", "\ufe0f", "✨", "*", ".", "-", "_", "\u202e", "\u0301"]
TERMS = ["百家乐", "法轮功", "赌博平台", "porn", "viagra"]


@settings(max_examples=200, deadline=None)
@given(
    term=st.sampled_from(TERMS),
    prefix=st.text(alphabet="您好今天的消息请查收。，abc 123", max_size=12),
    suffix=st.text(alphabet="您好今天的消息请查收。，abc 123", max_size=12),
    inserts=st.lists(st.tuples(st.integers(min_value=1, max_value=5), st.sampled_from(SEPARATORS)), max_size=4),
)
def test_property_span_points_at_original(term, prefix, suffix, inserts):
    """Insert separators / invisibles inside a term: the term is still found, and the span it
    maps to is the original substring that, separators removed, normalizes to the term."""
    chars = list(term)
    for pos, sep in sorted(inserts, reverse=True):
        if pos < len(chars):
            if term.isascii() and sep in ".-*_✨ ":
                continue  # visible separators split only CJK words (or runs of single letters)
            chars.insert(pos, sep)
    word = "".join(chars)
    # keep the term a whole word for the ASCII terms
    raw = f"{prefix} {word} {suffix}" if term.isascii() else f"{prefix}{word}{suffix}"
    n = normalize(raw)
    target = normalize_term(term)
    i = n.text.find(target)
    assert i >= 0, (raw, n.text)
    a, b = n.span(i, i + len(target))
    original = raw[a:b]
    stripped = "".join(c for c in original if c not in SEPARATORS)
    assert normalize(stripped).text == target
    assert normalize(original).text == target
