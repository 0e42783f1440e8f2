"""The split: per source, stratified, and no near-duplicate of a training row in validation."""
from __future__ import annotations

import random
from dataclasses import dataclass

from app.engine.features import prepare
from app.training.split import split_rows


@dataclass
class R:
    norm: str
    source: str
    labels: tuple


def _rows():
    rng = random.Random(5)
    rows = []
    templates = [
        ("fbs", ("gambling",), "娱乐城注册即送{m}元彩金，官网 http://t.cn/{u} 客服{p}"),
        ("fbs", ("fraud",), "尊敬的客户您的积分{m}即将清零，请登录 www.{u}.com 兑换现金，{n}银行"),
        ("spam800k", (), "{n}说明天{m}点在{u}门口等你，记得带伞"),
        ("spam800k", ("marketing",), "商场周年庆全场{m}折起，回t退订，详询{p}"),
    ]
    names = ["张三", "李四", "王五", "赵六", "孙七", "周八", "吴九", "郑十"]
    for src, labs, tpl in templates:
        for i in range(40):
            rows.append(R(tpl.format(n=rng.choice(names), m=rng.randint(100, 999),
                                     u="".join(rng.choice("abcdefg") for _ in range(5)),
                                     p="1" + "".join(rng.choice("3456789") for _ in range(10))), src, labs))
    # many distinct messages
    chars = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质"
    for i in range(300):
        rows.append(R("".join(rng.choice(chars) for _ in range(rng.randint(8, 30))), "cold", rng.choice([(), ("hate",)])))
    return rows


def _jaccard(a: str, b: str) -> float:
    sa = {a[i:i + 3] for i in range(max(len(a) - 2, 1))}
    sb = {b[i:i + 3] for i in range(max(len(b) - 2, 1))}
    return len(sa & sb) / len(sa | sb)


def test_split_is_deterministic_and_near_duplicate_free():
    rows = _rows()
    a = split_rows(rows, val_frac=0.2, seed=13, max_val_group=1000)
    b = split_rows(rows, val_frac=0.2, seed=13, max_val_group=1000)
    assert (a.train_idx == b.train_idx).all() and (a.val_idx == b.val_idx).all()
    assert len(a.val_idx) > 20
    keys = [prepare(r.norm) for r in rows]
    train_keys = [keys[i] for i in a.train_idx]
    for i in a.val_idx:
        # exact check with a margin for the MinHash estimate (split threshold: estimated 0.6)
        assert max(_jaccard(keys[i], t) for t in train_keys) < 0.75, rows[i].norm


def test_template_variants_are_grouped_per_source_and_stratified():
    rows = _rows()
    sp = split_rows(rows, val_frac=0.2, seed=13, max_val_group=1000)
    val_sources = {rows[i].source for i in sp.val_idx}
    assert "cold" in val_sources
    # variants differing only in digits, phone numbers and links share a key: one side
    for start in (0, 120):
        sides = {int(i) in set(sp.val_idx.tolist()) for i in range(start, start + 40)}
        assert len(sides) == 1
