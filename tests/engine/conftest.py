"""Fixtures of the engine tests: small rule directories built in tmp_path, the shipped rules."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from app.engine.features import content_units, prepare
from app.engine.moderator import Moderator

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ROOT / "rules"

POLICY = """\
thresholds: {review: 5, reject: 10}
informational: [marketing]
overrides: {}
disabled: []
classifier:
  weight: 5
  default: {report: 0.5, review: 0.8, reject: 0.95}
  categories:
    marketing: {review: 0.7, reject: null}
"""

VARIANTS = """\
variants:
  微信: [威信, 薇信, V信, vx, 微x]
  博彩: [菠菜]
standalone: []
"""

ALLOW = """\
phrases:
  - 平台独家
  - 六合区
  - 路口交通
  - {phrase: 赌博危害, categories: [gambling]}
"""

KEYWORDS = {
    "gambling": """\
category: gambling
rules:
  - id: KW_GAMBLING_CASINO
    description: casino game names
    action: reject
    score: 10
    lang: zh
    pinyin: true
    terms: [百家乐, 龙虎斗, 博彩平台, 赌场, 赌博]
  - id: KW_GAMBLING_LOTTERY
    description: private lottery
    action: score
    score: 6
    lang: zh
    terms: [六合, 六合彩]
  - id: KW_GAMBLING_WARNING
    description: warning context
    action: score
    score: -8
    lang: zh
    terms: [远离赌博]
""",
    "politics": """\
category: politics
rules:
  - id: KW_POLITICS_SEPARATISM
    description: separatism
    action: reject
    score: 10
    lang: zh
    terms: [台独]
""",
    "cult_superstition": """\
category: cult_superstition
rules:
  - id: KW_CULT_FALUN
    description: cult names
    action: review
    score: 8
    lang: zh
    pinyin: true
    terms: [法轮功]
""",
    "pornography": """\
category: pornography
rules:
  - id: KW_PORN_SERVICES
    description: sexual services
    action: reject
    score: 10
    lang: zh
    pinyin: true
    terms: [裸聊, 口交]
  - id: KW_PORN_EN
    description: English porn words
    action: reject
    score: 10
    lang: en
    terms: [porn, sex, viagra, ass]
""",
    "abuse": """\
category: abuse
rules:
  - id: KW_ABUSE_EN
    description: English insults
    action: score
    score: 6
    lang: en
    terms: [fuck, asshole, apple pie]
""",
    "fraud": """\
category: fraud
rules:
  - id: KW_FRAUD_CONTACT
    description: moving the chat to WeChat
    action: score
    score: 4
    lang: zh
    terms: [加微信领取]
  - id: KW_FRAUD_EXTERNAL
    description: operator's external list
    action: score
    score: 3
    lang: zh
    file: external/fraud.txt
""",
    "marketing": """\
category: marketing
rules:
  - id: KW_MARKETING_PROMO
    description: promotional wording
    action: reject
    score: 3
    lang: zh
    terms: [限时优惠, 全场五折]
""",
}

EXTERNAL = "# operator list\n安全账户\n\n冻结资金\n"


def write_rules(root: Path, keywords: dict[str, str] | None = None) -> Path:
    """A small, complete rule directory (shipped categories and patterns, test lexicons)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHIPPED_RULES / "categories.yaml", root / "categories.yaml")
    shutil.copy(SHIPPED_RULES / "patterns.yaml", root / "patterns.yaml")
    (root / "policy.yaml").write_text(POLICY, encoding="utf-8")
    (root / "variants.yaml").write_text(VARIANTS, encoding="utf-8")
    (root / "allow.yaml").write_text(ALLOW, encoding="utf-8")
    (root / "keywords").mkdir(exist_ok=True)
    for name, text in (KEYWORDS if keywords is None else keywords).items():
        (root / "keywords" / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    (root / "external").mkdir(exist_ok=True)
    (root / "external" / "fraud.txt").write_text(EXTERNAL, encoding="utf-8")
    return root


@pytest.fixture
def rules_dir(tmp_path) -> Path:
    return write_rules(tmp_path / "rules")


@pytest.fixture
def moderator(rules_dir):
    m = Moderator.from_paths(rules_dir, watch=False)
    yield m
    m.close()


@pytest.fixture(scope="session")
def shipped():
    m = Moderator.from_paths(SHIPPED_RULES, watch=False)
    yield m
    m.close()


class FakeClassifier:
    """The classifier protocol of app.engine.classifier, with fixed probabilities."""

    version = "fake-1"
    labels = ("gambling", "fraud", "marketing")

    def __init__(self, probs: dict[str, float] | None = None):
        self.probs = probs or {}
        self.calls: list[str] = []

    def _row(self) -> np.ndarray:
        return np.array([self.probs.get(label, 0.0) for label in self.labels])

    def predict_one(self, normalized_text: str) -> np.ndarray:
        self.calls.append(normalized_text)
        return self._row()

    def predict_batch(self, texts: list[str]) -> np.ndarray:
        self.calls.extend(texts)
        return np.vstack([self._row() for _ in texts]) if texts else np.zeros((0, len(self.labels)))

    def score_one(self, normalized_text: str):
        return self.predict_one(normalized_text), content_units(prepare(normalized_text))

    def score_batch(self, texts: list[str]):
        return self.predict_batch(texts), [content_units(prepare(t)) for t in texts]

    def explain(self, normalized_text: str, label: str, k: int = 5) -> list[str]:
        return [f"{label}-word"][:k]


@pytest.fixture
def fake_classifier():
    return FakeClassifier
