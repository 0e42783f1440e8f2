"""Benchmark of the keyword path: normalize -> automaton -> patterns -> policy (no classifier).

    .venv/bin/python bench/bench_keywords.py [--messages 20000] [--terms 50000] [--passes 3]
                                             [--corpus ../shared/data/train/zh_fbs.jsonl]

Prints, on one core (this process, one thread):
- messages/s of Moderator.check on ~70-char SMS generated here, with the shipped rules and with
  the shipped rules plus a generated 50k-term external list (``file:`` key);
- the 50k rule set's load + validate + build time and memory (tracemalloc peak of the build and
  RSS growth);
- a bare pyahocorasick ``iter`` scan of the same messages with the same 50k terms, and the
  ratio of the whole keyword path to it.
Throughput is the median over --passes passes, measured in process CPU time (the machine is
shared; wall-clock figures are printed too). --corpus adds a pass over real messages read at
bench time (nothing is copied into the repository).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ahocorasick  # noqa: E402

from app.engine.moderator import Moderator  # noqa: E402
from app.engine.normalize import normalize  # noqa: E402
from app.engine.ruleset import load_ruleset  # noqa: E402

# ~500 frequent Chinese characters: the alphabet of generated names, terms and fillers
COMMON = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后"
    "小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长"
    "知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最"
    "间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山五太水万市"
    "眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更反合放做系计"
    "或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度统色字请交爱让"
    "认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近留红治决周保达办"
    "运武半候七必城父强步完革深区即求品士转量空甚众技轻程告江语英基派满式李息写呢识极令黄德收脸钱党倒未持"
    "取设始版双历越史商千片容研像找友孩站广改议形委早房音火际则首单据导影失拿网香似斯专石若兵弟谁校读志飞"
    "观争究包组造落视济喜离虽坏兴切米增功待尼医演府银货价余额尾号储蓄卡消费支出快递件码验证登录效泄露退订"
    "回复拒收优惠活动会员积分兑换礼品领取预约门诊就诊携带身份证到达准时欢迎光临店铺全场折扣满减限时抢购"
)
BANKS = ["工商银行", "建设银行", "农业银行", "招商银行", "中国银行", "交通银行", "浦发银行"]
COURIERS = ["顺丰速运", "中通快递", "圆通速递", "韵达快递", "京东物流", "菜鸟驿站"]
APPS = ["美团", "支付宝", "滴滴出行", "饿了么", "12306", "京东", "淘宝"]
SHOPS = ["优衣库", "屈臣氏", "星巴克", "肯德基", "万达影城", "苏宁易购"]

NORMAL = [
    "【{bank}】您尾号{d4}的储蓄卡于{m}月{d}日{h}:{mi}在{shop}消费支出人民币{amt}元，当前余额{amt2}元。如有疑问请致电客服。",
    "【{courier}】您的快递已到{city}{courier}{d2}号柜，取件码{d6}，请于今日{h}点前凭码取件，逾期将退回，详询{phone}。",
    "【{app}】验证码{d6}，用于登录验证，5分钟内有效，请勿泄露给他人。如非本人操作，请忽略本短信并及时修改密码。",
    "【{shop}】会员专享：全场{n}折起，满300减50，积分可抵现金，活动截止{m}月{d}日，详情 https://m.{dom}.com/a{d4} 拒收请回复R",
    "【{app}】您预约的{m}月{d}日{h}:00{city}人民医院门诊已成功，请携带身份证和医保卡提前15分钟到达，取消请回复1。",
    "【{bank}】尊敬的客户，您的信用卡本期账单金额{amt}元，最低还款额{d2}0元，最后还款日{m}月{d}日，请按时还款。",
    "【平安城市】{city}气象台发布暴雨黄色预警，未来3小时有强降雨，请注意防范，减少外出，路口交通管制请绕行。",
    "【{shop}】亲爱的会员，您有{n}张满减优惠券将于{m}月{d}日到期，点击 t.cn/A{d4}x 查看使用规则，回T退订。",
    "Your {app} verification code is {d6}. It expires in 10 minutes. Do not share this code with anyone, including staff.",
    "Hi, are we still on for lunch tomorrow at {h}? Let me know soon so I can book a table at the classic place downtown.",
    "【{app}】您的订单{d6}{d4}已由{courier}发货，预计{m}月{d}日送达{city}，物流详情请在APP内我的订单页面查看。",
    "【{city}税务局】提醒您：{m}月纳税申报征期截止日为{d}日，请按时申报缴纳税款，谨防代开发票等违法行为。",
    "【{bank}】警惕电信诈骗：公安机关、银行不会通过电话要求您转账到安全账户，请勿向陌生人泄露短信验证码。",
    "【{city}六合区政府】提醒您：近期有强降雨，请注意防汛安全，平台独家发布的天气信息请以气象部门官方为准。",
]
SPAM = [
    "澳门百家乐上线，首充送88，真人荷官在线发牌，官网 www.{dom}.vip 注册即送彩金，每日提款无上限，速来！",
    "菠菜平台稳赚不赔，加威信{wx}带你上岸，日赚{amt}元，名额有限，先到先得，错过再等一年",
    "美女luo聊一对一，加vx：{wx} 私密服务，包你满意，同城约见，安全可靠，随时联系",
    "代 开 发 票，各行业增值税专用发票，点数低，可验证后付款，联系{phone}，微信同号",
    "WINNER!! You have won a £{amt} prize. Call 0906{d6} now to claim your reward. Txt STOP to end.",
    "【{bank}】您的账户存在异常登录，请立即点击 http://{dom}.top/b{d4} 更新身份信息，否则将于今日冻结。",
    "du场赢钱秘籍，稳赚不赔，fa轮大法好，想了解的加扣扣{d6}{d4}，每天带你赚{amt}元",
]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_messages(n: int, seed: int = 7, spam_rate: float = 0.1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        tpl = rng.choice(SPAM if rng.random() < spam_rate else NORMAL)
        out.append(tpl.format(
            bank=rng.choice(BANKS), courier=rng.choice(COURIERS), app=rng.choice(APPS),
            shop=rng.choice(SHOPS), city=rng.choice(["南京市", "杭州市", "成都市", "武汉市"]),
            d2=_digits(rng, 2), d4=_digits(rng, 4), d6=_digits(rng, 6), m=rng.randint(1, 12),
            d=rng.randint(1, 28), h=rng.randint(8, 21), mi=f"{rng.randint(0, 59):02d}",
            amt=f"{rng.randint(10, 99999)}.{_digits(rng, 2)}", amt2=f"{rng.randint(10, 99999)}.{_digits(rng, 2)}",
            n=rng.randint(2, 9), dom="".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)),
            phone="1" + rng.choice("3589") + _digits(rng, 9), wx="wx" + _digits(rng, 7),
        ))
    return out


def make_terms(n: int, seed: int = 11) -> list[str]:
    """n distinct terms: 3-6 frequent Chinese characters (some hit ordinary messages, like a
    real operator list would) and ~5% English words."""
    rng = random.Random(seed)
    terms: set[str] = set()
    letters = "abcdefghijklmnopqrstuvwxyz"
    while len(terms) < n:
        if rng.random() < 0.05:
            terms.add("".join(rng.choice(letters) for _ in range(rng.randint(5, 9))))
        else:
            terms.add("".join(rng.choice(COMMON) for _ in range(rng.randint(3, 6))))
    return sorted(terms)


def big_rules_dir(base: Path, terms: list[str]) -> Path:
    d = Path(tempfile.mkdtemp(prefix="smsguard-bench-rules-"))
    shutil.copytree(base, d, dirs_exist_ok=True)
    (d / "external").mkdir(exist_ok=True)
    zh = [t for t in terms if not t.isascii()]
    en = [t for t in terms if t.isascii()]
    (d / "external" / "bench_zh.txt").write_text("# generated\n" + "\n".join(zh) + "\n", encoding="utf-8")
    (d / "external" / "bench_en.txt").write_text("\n".join(en) + "\n", encoding="utf-8")
    (d / "keywords" / "zz_bench_external.yaml").write_text(
        "category: fraud\nrules:\n"
        "  - id: KW_BENCH_EXTERNAL_ZH\n    description: generated external list\n    action: score\n"
        "    score: 1\n    lang: zh\n    file: external/bench_zh.txt\n"
        "  - id: KW_BENCH_EXTERNAL_EN\n    description: generated external list\n    action: score\n"
        "    score: 1\n    lang: en\n    file: external/bench_en.txt\n",
        encoding="utf-8",
    )
    return d


def rss_kb() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except OSError:
        return 0


def measure(fn, items, passes: int) -> tuple[float, float]:
    """(median messages/s in CPU time, median messages/s in wall time)."""
    cpu, wall = [], []
    for _ in range(passes):
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for x in items:
            fn(x)
        c1, t1 = time.process_time(), time.perf_counter()
        cpu.append(len(items) / max(c1 - c0, 1e-9))
        wall.append(len(items) / max(t1 - t0, 1e-9))
    return statistics.median(cpu), statistics.median(wall)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default=str(ROOT / "rules"))
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--terms", type=int, default=50000)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--corpus", action="append", default=[], help="JSONL with a text field (read only)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args(argv)

    msgs = make_messages(args.messages)
    avg = sum(map(len, msgs)) / len(msgs)
    print(f"messages: {len(msgs)} generated SMS, {avg:.1f} chars on average; passes: {args.passes} (median)")
    results: dict = {"messages": len(msgs), "avg_chars": round(avg, 1)}

    normalize("warm up 澳門")  # OpenCC, fold tables
    m = Moderator.from_paths(args.rules, watch=False)
    rs = m.ruleset
    print(f"shipped rules: version {rs.version}, {rs.summary()['keyword_rules']} rules, "
          f"{rs.summary()['automaton_keys']} automaton keys, {rs.summary()['pinyin_keys']} pinyin keys, "
          f"built in {rs.build_seconds:.2f}s")
    for x in msgs[:2000]:
        m.check(x)
    cpu, wall = measure(m.check, msgs, args.passes)
    print(f"  keyword path, shipped rules:        {cpu:10,.0f} msg/s (CPU)   {wall:10,.0f} msg/s (wall)")
    results["shipped_msgs_per_s"] = round(cpu)
    verdicts = [m.check(x).verdict for x in msgs]
    print(f"  verdicts: " + ", ".join(f"{v} {verdicts.count(v)}" for v in ("allow", "review", "reject")))
    m.close()

    terms = make_terms(args.terms)
    big = big_rules_dir(Path(args.rules), terms)
    try:
        gc.collect()
        rss0 = rss_kb()
        tracemalloc.start()
        t0 = time.perf_counter()
        rs_big = load_ruleset(big)
        build = time.perf_counter() - t0
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss1 = rss_kb()
        # the build without tracemalloc's overhead
        t0 = time.perf_counter()
        rs_big = load_ruleset(big)
        build_plain = time.perf_counter() - t0
        print(f"{args.terms:,}-term rule set: {rs_big.summary()['automaton_keys']:,} automaton keys; "
              f"load+validate+build {build_plain:.2f}s ({build:.2f}s under tracemalloc), "
              f"tracemalloc peak {peak / 2**20:.1f} MiB, RSS +{(rss1 - rss0) / 1024:.1f} MiB")
        results.update(build_s=round(build_plain, 3), build_peak_mib=round(peak / 2**20, 1),
                       build_rss_mib=round((rss1 - rss0) / 1024, 1))
        mb = Moderator.from_paths(big, watch=False)
        for x in msgs[:2000]:
            mb.check(x)
        cpu_big, wall_big = measure(mb.check, msgs, args.passes)
        print(f"  keyword path, {args.terms // 1000}k terms:             {cpu_big:10,.0f} msg/s (CPU)   {wall_big:10,.0f} msg/s (wall)")
        verdicts = [mb.check(x) for x in msgs]
        hit_rate = sum(1 for v in verdicts if any(h.rule.startswith("KW_BENCH") for h in v.reasons)) / len(msgs)
        print(f"  messages with a hit of the generated list: {hit_rate:.1%}")
        mb.close()

        bare = ahocorasick.Automaton()
        for t in terms:
            bare.add_word(t, t)
        bare.make_automaton()

        def scan(x, _it=bare.iter):
            for _ in _it(x):
                pass

        for x in msgs[:2000]:
            scan(x)
        cpu_bare, wall_bare = measure(scan, msgs, args.passes)
        print(f"  bare pyahocorasick iter, same terms: {cpu_bare:10,.0f} msg/s (CPU)   {wall_bare:10,.0f} msg/s (wall)")
        print(f"  whole keyword path / bare scan: {cpu_big / cpu_bare:.2f} of the bare speed "
              f"({cpu_bare / cpu_big:.1f}x slower)")
        results.update(big_msgs_per_s=round(cpu_big), bare_msgs_per_s=round(cpu_bare),
                       ratio=round(cpu_big / cpu_bare, 3))
        target = "MET" if cpu_big >= 15000 and build_plain <= 5 else "NOT MET"
        print(f"  target (>= 15,000 msg/s with {args.terms // 1000}k terms, build <= 5 s): {target}")

        for path in args.corpus:
            texts = []
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    texts.append(json.loads(line)["text"])
                    if len(texts) >= args.messages:
                        break
            mc = Moderator.from_paths(big, watch=False)
            cpu_c, wall_c = measure(mc.check, texts, args.passes)
            mc.close()
            avg_c = sum(map(len, texts)) / max(1, len(texts))
            print(f"  corpus {Path(path).name} ({len(texts)} msgs, {avg_c:.0f} chars): "
                  f"{cpu_c:,.0f} msg/s (CPU) {wall_c:,.0f} msg/s (wall), {args.terms // 1000}k terms")
    finally:
        shutil.rmtree(big, ignore_errors=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
