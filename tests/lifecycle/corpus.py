"""A tiny corpus for the life-cycle tests: ordinary messages and a made-up contraband trade
("格罗布拉", which no keyword rule knows: only the classifier can learn it), varied enough that
the split holds rows of both out."""
from __future__ import annotations

import json
import random
from pathlib import Path

WORD = "格罗布拉"
SMALL = dict(synthetic_zh=20, synthetic_en=5, folds=2, min_df=1, jobs=1)

_PLACES = ["东城", "西城", "南岸", "北湖", "江北", "河西", "新区", "老城", "高新", "滨江", "临港", "城南",
           "城北", "湖滨", "望京", "黄埔", "静安", "徐汇", "天河", "福田"]
_BAD_A = ["新到一批{w}", "{w}现货充足", "需要{w}的朋友看过来", "出{w}，成色好", "{w}到货了", "长期供应{w}",
          "高纯{w}有货", "{w}一手货源"]
_BAD_B = ["老客户私聊拿货", "{p}当面交易", "{p}同城可送", "量大从优", "懂的来问", "价格美丽速来",
          "隐秘发货不留痕", "先验货再付款"]
_BAD_C = ["货真价实", "数量有限", "手慢无", "欢迎回购", "诚信经营多年", "质量保证", "今晚就能到", "包你满意"]
_OK_A = ["{p}小区本周六停水检修", "周末一起去{p}吃饭吧", "{p}图书馆明天闭馆一天", "快递放在{p}驿站了",
         "明天{p}有雨", "{p}社区下周体检", "孩子在{p}学校参加比赛", "{p}地铁站今晚施工"]
_OK_B = ["请提前做好准备", "我请客", "后天照常开放", "记得去取", "出门记得带伞", "请带好身份证",
         "家长可以来看", "请绕行"]
_OK_C = ["谢谢配合", "不见不散", "给您带来不便敬请谅解", "有问题随时联系", "祝您生活愉快", "辛苦了",
         "早点休息", "注意安全"]


def _compose(rng, a, b, c, n, label):
    rows, seen = [], set()
    while len(rows) < n:
        p = rng.choice(_PLACES)
        t = "，".join([rng.choice(a), rng.choice(b), rng.choice(c)]).format(w=WORD, p=p)
        if t in seen:
            continue
        seen.add(t)
        rows.append({"text": t, "labels": label})
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def make(root: Path, bad_label=("contraband",), seed: int = 5) -> tuple[Path, Path]:
    """(train dir, data dir) of the tiny corpus; ``bad_label=()`` teaches the trade as normal
    (a deliberately worse model)."""
    rng = random.Random(seed)
    train, data = root / "train", root / "data"
    train.mkdir(parents=True)
    data.mkdir(parents=True)
    ok = _compose(rng, _OK_A, _OK_B, _OK_C, 160, [])
    bad = _compose(rng, _BAD_A, _BAD_B, _BAD_C, 120, list(bad_label))
    write(train / "zh_ordinary.jsonl", [dict(r, source="ordinary") for r in ok])
    write(train / "zh_trade.jsonl", [dict(r, source="trade") for r in bad])
    write(data / "zh_written.jsonl", [{"text": f"{p}社区提醒：近期天气干燥，注意用火安全", "labels": []} for p in _PLACES])
    return train, data
