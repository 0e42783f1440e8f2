"""The jieba user dictionary frozen into a model comes from the shipped rule lexicons, read the way
the engine reads them: a file the engine accepts must not be dropped from it."""
from pathlib import Path

from app.engine.ruleset import parse_yaml
from app.training.train import lexicon_user_words

RULES = Path(__file__).resolve().parents[2] / "rules"


def _chinese_terms(node, in_terms=False):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _chinese_terms(v, in_terms or k == "terms")
    elif isinstance(node, list):
        for v in node:
            yield from _chinese_terms(v, in_terms)
    elif isinstance(node, str) and in_terms and " " not in node and 2 <= len(node) <= 12 \
            and any("\u4e00" <= c <= "\u9fff" for c in node):
        yield node


def test_every_keyword_file_the_engine_accepts_feeds_the_user_dictionary():
    words = set(lexicon_user_words(RULES))
    for path in sorted((RULES / "keywords").glob("*.yaml")):
        terms = set(_chinese_terms(parse_yaml(path.read_text(encoding="utf-8"))))
        if terms:
            assert terms <= words, f"{path.name}: {len(terms - words)} Chinese terms missing"


def test_a_term_with_a_question_mark_in_a_flow_list_is_read_like_the_engine_reads_it(tmp_path):
    (tmp_path / "keywords").mkdir()
    (tmp_path / "keywords" / "x.yaml").write_text(
        "rules:\n  - id: KW_X\n    groups:\n      a: [不是你吗? 请回电, 退款]\n    terms: [冒充客服, not you? call]\n",
        encoding="utf-8")
    assert "冒充客服" in lexicon_user_words(tmp_path)
