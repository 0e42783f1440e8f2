"""Training data: the shared corpora (../shared/data/train/*.jsonl) + the project's data/*.jsonl.

Every row becomes a ``Row`` with its NORMALIZED text (``app.engine.normalize``; a stand-in of
NFKC + casefold + OpenCC t2s is used only while that module does not exist, and the metadata
says which one trained the model).

Corpus quirk handled here: the fake-base-station corpus (zh_fbs) had NAME / PLACE / CELLPHONE /
WeChat placeholders that were filled with the same ten names and nine cities (张敏, 王伟 ...
杭州, 南京 ...: one of them is in ~80% of its rows) or left as the literal PHONE / WECHAT. A
model would learn "张敏" or "杭州" as spam. Those fills are redrawn per row from large pools with
a generator seeded by the row's text, so the rows stay realistic and training is reproducible.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from app.config import PROJECT_ROOT

SHARED_TRAIN_DIR = PROJECT_ROOT.parent / "shared" / "data" / "train"
PROJECT_DATA_DIR = PROJECT_ROOT / "data"

# corpora that are social-media posts, not SMS (kept, but they never make up an SMS-only metric)
SOCIAL_SOURCES = frozenset({"cold", "swsr", "ced"})


# the optional "writer" field of a project row: who wrote it (one writer's files are held out
# together by ``evaluate --by-source``, so a writer's style cannot leak from one file to another)
WRITER_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")

# data/blind/: the blind sets, each scored once by a fresh writer's measure and committed only
# then (data/blind/README.md), so every file there has been read: training takes them too (their
# writers' phrasing is what a model trained without them missed). The rows of one set (its
# prohibited, fraud-script and legitimate files) are one writer, "blind-<date><letter>".
BLIND_DIR = "blind"
BLIND_SET_RE = re.compile(r"(\d{4}-\d{2}-\d{2}[a-z]*)_")  # a day's sets run a ... z, aa ...


@dataclass
class Row:
    text: str                    # original text
    labels: tuple[str, ...]      # taxonomy ids; () = normal
    lang: str
    source: str
    orig: str
    file: str
    norm: str = ""               # normalized text (what the classifier scores)
    weight: float = 1.0
    meta: dict = field(default_factory=dict)


def train_dir_default() -> Path:
    env = os.environ.get("SMSGUARD_TRAIN_DIR")
    return Path(env) if env else SHARED_TRAIN_DIR


def data_dir_default() -> Path:
    env = os.environ.get("SMSGUARD_DATA_DIR")
    return Path(env) if env else PROJECT_DATA_DIR


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------- normalizer

def _standin_normalizer() -> Callable[[str], str]:
    import opencc
    cc = opencc.OpenCC("t2s")
    invisible = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)

    def norm(text: str) -> str:
        return cc.convert(unicodedata.normalize("NFKC", text).translate(invisible).casefold())

    return norm


def get_normalizer() -> tuple[Callable[[str], str], str]:
    """(normalize function returning the normalized TEXT, its name for the metadata)."""
    try:
        from app.engine.normalize import normalize
    except ImportError:
        return _standin_normalizer(), "standin:nfkc+casefold+opencc-t2s"
    return (lambda text: normalize(text).text), "app.engine.normalize"


def normalizer_fingerprint() -> str:
    """sha256 of app/engine/normalize.py (empty when absent): the model card records it."""
    p = PROJECT_ROOT / "app" / "engine" / "normalize.py"
    return sha256_file(p) if p.exists() else ""


# ---------------------------------------------------------------------------- fbs fills

_FBS_NAMES = ("张敏", "王伟", "黄丽", "吴昊", "刘洋", "赵磊", "杨帆", "陈静", "周杰", "李娜")
_FBS_CITIES = ("杭州", "南京", "成都", "北京", "重庆", "武汉", "深圳", "广州", "上海")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史黎贺顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍申尤毕聂柴焦向柳邢岳齐梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋植甘景薄单包司柏宁柯阮桂闵欧阳解强丛华车冉房边辜吉饶刁瞿戚丘古米池滕晋苑邬臧畅宫来嵺苟全褚廉简娄盖符奚木穆党燕郎邸冀谈姬屠连郜晏栾郁商蒙计喻揭窦迟宇敖糜鄢冷卓花艾蓝都巩稽井练仲乐虞卞封竺冼原官衣楚佟栗匡宗应台巫鞠僧桑荆谌银扬明沙薄伏岑习胥保和蔺"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆晨婷雪琳欣怡梓涵子轩雨泽佳慧建国志强海燕丹宁博文欢亮飞鑫波龙林云峰成坤悦瑶倩颖晶莉璐阳琪嘉蕾雯楠思源"
_CITIES = ("杭州 南京 成都 北京 重庆 武汉 深圳 广州 上海 天津 西安 苏州 郑州 长沙 沈阳 青岛 宁波 东莞 无锡 "
           "佛山 合肥 大连 福州 厦门 哈尔滨 济南 温州 南宁 长春 泉州 石家庄 贵阳 南昌 金华 常州 南通 "
           "嘉兴 太原 徐州 惠州 珠海 中山 台州 烟台 兰州 绍兴 海口 扬州 昆明 乌鲁木齐 呼和浩特 银川 "
           "西宁 拉萨 洛阳 襄阳 宜昌 芜湖 唐山 保定 潍坊 临沂 镇江 盐城 湖州 株洲 柳州 桂林 三亚 遵义 绵阳").split()
_ALNUM = "abcdefghijkmnpqrstuvwxyz"


def _rand_name(rng: random.Random) -> str:
    return rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 1, 2))))


def _rand_phone(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def _rand_wechat(rng: random.Random) -> str:
    head = "".join(rng.choice(_ALNUM) for _ in range(rng.randint(2, 6)))
    return head + "".join(rng.choice("0123456789") for _ in range(rng.randint(3, 8)))


def refill_fbs(text: str) -> str:
    """Redraw the fbs placeholder fills (see module doc). Deterministic per text."""
    rng = random.Random(hashlib.sha1(text.encode("utf-8")).digest())
    for name in _FBS_NAMES:
        while name in text:
            text = text.replace(name, _rand_name(rng), 1)
    for city in _FBS_CITIES:
        while city in text:
            text = text.replace(city, rng.choice(_CITIES), 1)
    while "PHONE" in text:
        text = text.replace("PHONE", _rand_phone(rng), 1)
    while "WECHAT" in text:
        text = text.replace("WECHAT", _rand_wechat(rng), 1)
    return text


_MASK_RE = re.compile(r"(?<![A-Za-z])x+(?![A-Za-z])")


def unmask_digits(text: str) -> str:
    """spam800k masks every digit as ``x``; normalize() folds runs of 3+ equal Latin letters to
    one, which would erase the run length (11 masked digits = a phone number). Masked runs that
    are not part of a Latin word become runs of 8 of the same length, which the feature code then
    maps to the same number classes as real digits."""
    return _MASK_RE.sub(lambda m: "8" * len(m.group(0)), text)


def engine_text(row) -> str:
    """The text the engine sees for a corpus row: fbs fills redrawn, spam800k digits restored
    (as training does), so that evaluation scores what training learnt from."""
    if row.source == "fbs":
        return refill_fbs(row.text)
    if row.source == "spam800k":
        return unmask_digits(row.text)
    return row.text


# The UCI SMS corpus labels all of its spam ``marketing``, but much of it is the premium-rate
# prize scam of the 2000s ("you have won a £900 prize, to claim call 09061701461, claim code
# KL341"): fake prizes are fraud in TAXONOMY.md. A marketing-only uci row that names a prize
# or win AND asks to claim it (a UK premium-rate number 09.../087..., "to claim", "claim code")
# is relabelled fraud + marketing at load time. Rule, not hand edits: tests/training cover it.
_PRIZE_RE = re.compile(r"\b(?:won|winner|wins?|prizes?|awarded|award|cash|guaranteed|selected|reward|holiday|"
                       r"vouchers?|jackpot)\b", re.I)
_CLAIM_RE = re.compile(r"\b0(?:9\d{8,9}|87\d{7,8})\b|\bto claim\b|\bclaim (?:code|no|number|your|ur|yr)\b|"
                       r"\bclaim\b.{0,20}\bcall\b", re.I)


def relabel_prize_scam(row: Row) -> bool:
    """Add ``fraud`` to a marketing-only uci row that is a premium-rate prize scam (see above)."""
    if row.source != "uci" or row.labels != ("marketing",):
        return False
    if _PRIZE_RE.search(row.text) and _CLAIM_RE.search(row.text):
        row.labels = ("fraud", "marketing")
        row.meta["relabelled"] = "prize_scam"
        return True
    return False


# ---------------------------------------------------------------------------- loading

def _parse_labels(d: dict) -> tuple[str, ...] | None:
    if "labels" in d:
        labs = d["labels"]
        if isinstance(labs, str):
            labs = [labs]
    elif "label" in d:
        labs = [d["label"]]
    elif "category" in d:
        labs = [d["category"]]
    else:
        return None
    out = []
    for lab in labs or ():
        if lab in (None, "", "normal", "none", "ham"):
            continue
        out.append(str(lab))
    return tuple(sorted(set(out)))


def _guess_lang(text: str) -> str:
    cjk = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    return "zh" if cjk >= 2 else "en"


def read_jsonl(path: Path, default_source: str) -> tuple[list[Row], int]:
    """Rows of one file (rows without labels are skipped: sample logs, not training data)."""
    rows: list[Row] = []
    skipped = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("//"):
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            text = d.get("text")
            labels = _parse_labels(d)
            if not isinstance(text, str) or not text.strip() or labels is None:
                skipped += 1
                continue
            row = Row(text=text, labels=labels, lang=d.get("lang") or _guess_lang(text),
                      source=str(d.get("source") or default_source), orig=str(d.get("orig", "")),
                      file=path.name)
            writer = d.get("writer")
            if isinstance(writer, str) and WRITER_RE.fullmatch(writer):
                row.meta["writer"] = writer
            rows.append(row)
    return rows, skipped


def discover_files(train_dir: Path | None = None, data_dir: Path | None = None) -> list[tuple[Path, str]]:
    """[(path, kind)] with kind 'shared' or 'project', in a stable order."""
    train_dir = Path(train_dir) if train_dir else train_dir_default()
    data_dir = Path(data_dir) if data_dir else data_dir_default()
    files = [(p, "shared") for p in sorted(train_dir.glob("*.jsonl"))]
    if data_dir.exists():
        files += [(p, "project") for p in sorted(data_dir.glob("*.jsonl"))]
        files += [(p, "project") for p in sorted((data_dir / BLIND_DIR).glob("*.jsonl"))]
    return files


def load_dataset(train_dir: Path | None = None, data_dir: Path | None = None,
                 normalizer: Callable[[str], str] | None = None,
                 progress: Callable[[Iterable], Iterable] | None = None,
                 known_labels: Iterable[str] | None = None) -> tuple[list[Row], list[dict]]:
    """Load, refill fbs placeholders and normalize every row.

    Returns (rows, files) where files lists {file, kind, sha256, rows, skipped, labels}. Rows
    whose labels are not in ``known_labels`` keep only the known ones (and the file entry counts
    the unknown ones)."""
    if normalizer is None:
        normalizer, _ = get_normalizer()
    known = set(known_labels) if known_labels is not None else None
    rows: list[Row] = []
    files: list[dict] = []
    for path, kind in discover_files(train_dir, data_dir):
        default_source = path.stem if kind == "project" else path.stem.split("_", 1)[-1]
        file_rows, skipped = read_jsonl(path, default_source)
        in_blind = kind == "project" and path.parent.name == BLIND_DIR
        blind_set = BLIND_SET_RE.match(path.name) if in_blind else None
        if kind == "project":
            for r in file_rows:
                r.meta["project"] = True
                if r.source in ("", default_source):
                    r.source = "project"
                if blind_set and "writer" not in r.meta:
                    r.meta["writer"] = f"blind-{blind_set.group(1)}"
        unknown = 0
        relabelled = sum(relabel_prize_scam(r) for r in file_rows)
        label_counts: dict[str, int] = {}
        for r in file_rows:
            if known is not None and any(lab not in known for lab in r.labels):
                unknown += 1
                r.labels = tuple(lab for lab in r.labels if lab in known)
            for lab in r.labels or ("normal",):
                label_counts[lab] = label_counts.get(lab, 0) + 1
        folder = "../shared/data/train" if kind == "shared" else f"data/{BLIND_DIR}" if in_blind else "data"
        files.append({"file": f"{folder}/{path.name}",
                      "kind": kind, "sha256": sha256_file(path), "rows": len(file_rows),
                      "skipped": skipped, "unknown_labels": unknown, "relabelled": relabelled,
                      "labels": dict(sorted(label_counts.items()))})
        rows.extend(file_rows)
    it = progress(rows) if progress else rows
    for r in it:
        text = r.text
        if r.source == "fbs":
            text = refill_fbs(text)
        elif r.source == "spam800k":
            text = unmask_digits(text)
        r.norm = normalizer(text)
    return rows, files
