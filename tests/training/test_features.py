"""Feature code: deterministic, picklable, masked corpora and real traffic look alike."""
from __future__ import annotations

import pickle

from app.engine import features as F
from app.training.dataset import refill_fbs, unmask_digits


def test_analyzer_is_deterministic_and_picklable():
    an = F.Analyzer(["菠菜网", "代开发票"])
    text = "上菠菜网，送彩金！代开发票 http://t.cn/abc 13812345678"
    a = an(text)
    assert a == an(text)
    clone = pickle.loads(pickle.dumps(an))
    assert clone(text) == a
    assert clone.user_words == an.user_words
    assert F.WORD_PREFIX + "菠菜网" in a
    assert pickle.loads(pickle.dumps(F.analyze))("你好") == F.analyze("你好")


def test_classes_make_masked_and_real_digits_alike():
    real = F.prepare("请拨打13812345678，学费888元，详见 http://t.cn/abc12 或 www.a.com")
    masked = F.prepare(unmask_digits("请拨打xxxxxxxxxxx，学费xxx元，详见 http://t.cn/xyz 或 www.b.com"))
    assert real == masked
    assert F.PHONE_TOK in real and F.NUM_M_TOK in real and F.URL_TOK in real
    assert "8" not in real and "http" not in real


def test_punctuation_and_spaces_dropped_english_words_kept_apart():
    assert F.prepare("赌 博，网站！") == "赌博网站"
    assert F.prepare("free entry, win now") == "free entry win now"
    assert F.prepare("taxi xmas") == "taxi xmas"  # x inside words is not a masked digit


def test_display_token_spells_classes():
    assert F.display_token(F.WORD_PREFIX + "电话") == "电话"
    assert F.display_token("拨" + F.PHONE_TOK) == "拨<PHONE>"


def test_fbs_refill_is_deterministic_and_removes_fixed_fills():
    t = "张敏 王伟当红顔热线PHONE，杭州上门WECHAT"
    a, b = refill_fbs(t), refill_fbs(t)
    assert a == b
    for s in ("张敏", "王伟", "PHONE", "WECHAT"):
        assert s not in a


def test_char_ngrams_never_cross_english_word_boundaries():
    toks = F.analyze("this ex is ok")
    assert "sex" not in toks and "s e" not in toks and "is ex" not in toks
    # a word's edges are marked, so a word-initial "sex" differs from the "sex" inside Essex
    assert " ex" in toks and "ex " in toks
    essex = F.analyze("essex")
    assert " se" not in essex and " es" in essex
    assert " se" in F.analyze("sex")


def test_chinese_text_keeps_its_ngrams():
    toks = F.analyze("澳门赌场")
    for gram in ("澳", "澳门", "门赌", "赌场", "澳门赌", "门赌场"):
        assert gram in toks


def test_content_units_count_words_not_links_or_numbers():
    assert F.content_units(F.prepare("https://m.taobao.com/item/12345")).units == 0
    assert F.content_units(F.prepare("13812345678")).units == 0
    assert F.content_units(F.prepare("+44 7700 900123")).units == 0
    assert F.content_units(F.prepare("到了")) == (2, 0)
    assert F.content_units(F.prepare("see u at 7")) == (0, 2)
    c = F.content_units(F.prepare("【招商银行】您尾号1234的卡消费100元"))
    assert c.units == 12 and c.lang == "zh"
    assert F.content_units(F.prepare("Your 招行 card ending 1234 was used")).lang == "en"


def test_latin_bigrams_pair_neighbouring_english_words_only_when_asked():
    """``latin_bigrams``: "kill urself" as one feature; pairs never span Chinese text or a removed
    link, the option survives pickling (a saved model keeps it), and without it the tokens are
    what they were (models trained before the option load and score unchanged)."""
    text = "go kill urself 哈哈 nobody wants u http://t.cn/abc here"
    plain = F.Analyzer(["菠菜网"])
    paired = F.Analyzer(["菠菜网"], latin_bigrams=True)
    bigrams = [t[1:] for t in paired(text) if t.startswith(F.BIGRAM_PREFIX)]
    assert bigrams == ["go kill", "kill urself", "nobody wants", "wants u"]
    assert not any(t.startswith(F.BIGRAM_PREFIX) for t in plain(text))
    assert [t for t in paired(text) if not t.startswith(F.BIGRAM_PREFIX)] == plain(text)
    clone = pickle.loads(pickle.dumps(paired))
    assert clone.latin_bigrams and clone(text) == paired(text)
    assert F.Analyzer([], latin_bigrams=True)("上菠菜网送彩金") == F.Analyzer([])("上菠菜网送彩金")
    assert F.display_token(F.BIGRAM_PREFIX + "kill urself") == "kill urself"  # as a reviewer reads it
