#!/usr/bin/env python
"""Batch-audit benchmark (issue 7): N messages through the full engine with the local runner.

It writes a synthetic sent log (gzip JSON lines, realistic mixed zh/en SMS from templates in
this file, ~3% prohibited) into a temporary directory, runs `run_audit` with 2 workers (rules +
model), and prints messages/s, wall time and peak memory (RSS of the parent and of the workers,
sampled every 0.2 s with psutil, plus the sum of PSS, which counts shared copy-on-write pages
once). A second run at 1/4 of the size shows whether memory grows with the input size.
With --profile it also measures, in one process, where the time of one message goes.

    .venv/bin/python bench/bench_audit.py                      # 1,000,000 and 250,000 messages
    .venv/bin/python bench/bench_audit.py -n 200000 --workers 2 --repeat 3
    .venv/bin/python bench/bench_audit.py --profile-only       # stage costs only

Target: 1,000,000 messages in <= 120 s on the 2-core machine.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# ------------------------------------------------------------------------ synthetic sent log

BRANDS_ZH = ["京东", "美团", "淘宝", "拼多多", "顺丰速运", "中国移动", "招商银行", "工商银行", "滴滴出行", "携程旅行",
             "饿了么", "支付宝", "12306", "中通快递", "平安保险", "南方电网", "国家电网", "小红书", "唯品会", "盒马"]
BRANDS_EN = ["Amazon", "DHL", "Uber", "Chase", "Netflix", "Vodafone", "FedEx", "Airbnb", "Booking.com", "Tesco"]
CITIES = ["北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆"]
NAMES = ["王先生", "李女士", "张先生", "刘女士", "陈先生", "杨女士", "赵先生", "黄女士"]
ITEMS = ["羽绒服", "蓝牙耳机", "洗衣液", "电饭煲", "运动鞋", "儿童绘本", "保温杯", "充电宝"]

NORMAL_ZH = [
    "【{b}】验证码：{code}，{m}分钟内有效。请勿将验证码告知他人。",
    "您的登录验证码为{code}，该验证码{m}分钟内有效，如非本人操作请忽略本短信。【{b}】",
    "【{b}】您的订单{order}已发货，{item}预计{d}日送达，请保持电话畅通。",
    "【{b}】快递已到{city}市{n}号驿站，取件码{code}，请于今日21:00前取件。",
    "【{b}】尊敬的客户，您尾号{tail}的账户于{d}日{h}:{mm}消费{amt}元，余额{bal}元。",
    "【{b}】{name}您好，您预约的{d}日{h}:00门诊已确认，请携带身份证提前15分钟到达。",
    "【{b}】您本月话费账单{amt}元，已自动扣款成功，感谢您的支持。",
    "【{b}】您的车票：{d}日G{train}次{city}站{h}:{mm}开，{n}车{seat}号，请提前到站检票。",
    "【{b}】会员日福利：全场{item}满{amt}减{off}，详情打开APP查看，回T退订",
    "【{b}】您{d}日的电费账单已出，金额{amt}元，请于月底前缴纳，可通过APP在线缴费。",
    "【{b}】{name}，您的快递因地址不详暂存{city}网点，请回复正确地址或致电客服。",
    "【{b}】您的密码已修改成功，如非本人操作请立即致电客服冻结账户。",
    "【{b}】今晚{h}点直播间{item}限时秒杀，低至{off}元，回T退订",
    "【{b}】温馨提示：明日{city}有大到暴雨，出行请注意安全，合理安排行程。",
    "【{b}】您的积分{n}00分将于本月底过期，可在APP兑换{item}等好礼。",
]
NORMAL_EN = [
    "{be}: Your verification code is {code}. It expires in {m} minutes. Do not share it with anyone.",
    "{be}: Your package {order} is out for delivery today between {h}:00 and {h2}:00.",
    "{be}: Your card ending {tail} was charged ${amt}.{cents} at {shop}. Not you? Call the number on your card.",
    "Hi, this is a reminder of your appointment on {d} Nov at {h}:{mm}. Reply C to confirm.",
    "{be}: Your ride is arriving in {m} minutes. Driver: {driver}, plate {plate}.",
    "{be}: Your monthly statement is ready. Balance due ${amt} by the {d}th.",
    "{be}: Flash sale this weekend, {off}% off selected items. Reply STOP to opt out.",
    "Your table for {n} at {shop} is booked for {h}:{mm} tonight. See you soon!",
]
PROHIBITED = [
    "【{b}】澳门百家乐线上开户，首充送{off}%，日返水无上限，官网 {url}",
    "【{b}】尊敬的用户您的账户存在异常，请立即登录 {url} 验证身份，否则{h}小时内冻结。",
    "恭喜您中奖{amt}元，请添加微信 wx{code} 领取，逾期作废",
    "同城上门服务，美女{n}号在线，加薇：{code}{tail}，私密安全",
    "【{b}】您的ETC已失效，请点击 {url} 重新认证，逾期将影响通行。",
    "WIN BIG at online casino! {off}% deposit bonus, play now at {url}",
    "URGENT: your bank account is locked. Verify now at {url} to avoid suspension.",
    "出售各类证件、发票代开，联系电话 1{code}{tail}",
    "六合彩特码内幕，稳赚不赔，加群{code}",
    "Cheap pills no prescription, discreet shipping, order at {url}",
]


def _fill(tpl: str, rnd: random.Random) -> str:
    return tpl.format(
        b=rnd.choice(BRANDS_ZH), be=rnd.choice(BRANDS_EN), code=rnd.randint(100000, 999999), m=rnd.choice((5, 10, 15)),
        order=f"{rnd.randint(10**11, 10**12 - 1)}", item=rnd.choice(ITEMS), d=rnd.randint(1, 28), h=rnd.randint(8, 20),
        h2=rnd.randint(13, 22), mm=f"{rnd.randint(0, 59):02d}", city=rnd.choice(CITIES), n=rnd.randint(1, 99),
        tail=rnd.randint(1000, 9999), amt=rnd.randint(5, 9999), bal=rnd.randint(100, 99999), off=rnd.randint(5, 90),
        name=rnd.choice(NAMES), train=rnd.randint(1, 999), seat=f"{rnd.randint(1, 20):02d}{rnd.choice('ABCDF')}",
        cents=f"{rnd.randint(0, 99):02d}", shop=rnd.choice(["Tesco", "Starbucks", "Shell", "Uniqlo", "IKEA"]),
        driver=rnd.choice(["Tom", "Ana", "Raj", "Li"]), plate=f"{rnd.choice('ABCK')}{rnd.randint(100, 999)}XY",
        url=rnd.choice(["t.cn/", "bit.ly/", "http://", "www."]) + "".join(rnd.choice("abcdefghjk23456789") for _ in range(7)),
    )


def write_log(path: Path, n: int, seed: int = 7, prohibited_share: float = 0.03) -> float:
    """A gzip JSON-lines sent log of n messages; returns the seconds it took."""
    t0 = time.perf_counter()
    rnd = random.Random(seed)
    accounts = [f"ACCT{i:04d}" for i in range(500)]
    bad_accounts = accounts[:10]
    base = 1_763_942_400  # 2025-11-24T00:00:00Z; one day of traffic
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=3) as fh:
        buf = []
        for i in range(n):
            r = rnd.random()
            if r < prohibited_share:
                text = _fill(rnd.choice(PROHIBITED), rnd)
                acct = rnd.choice(bad_accounts) if rnd.random() < 0.7 else rnd.choice(accounts)
            elif r < 0.70:
                text = _fill(rnd.choice(NORMAL_ZH), rnd)
                acct = rnd.choice(accounts)
            else:
                text = _fill(rnd.choice(NORMAL_EN), rnd)
                acct = rnd.choice(accounts)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + i * 86400 // n))
            buf.append(json.dumps({"id": f"msg-{i:08d}", "account": acct, "sent_at": ts, "text": text},
                                  ensure_ascii=False))
            if len(buf) >= 10000:
                fh.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            fh.write("\n".join(buf) + "\n")
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------- memory


class MemorySampler:
    """Samples RSS of this process and its children (and their PSS sum) every `interval` s."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.psutil = psutil
        self.proc = psutil.Process()
        self.interval = interval
        self.peak_parent = 0
        self.peak_child = 0
        self.peak_total_rss = 0
        self.peak_total_pss = 0
        self.children_seen = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._n = 0

    def _run(self) -> None:
        ps = self.psutil
        while not self._stop.is_set():
            try:
                parent = self.proc.memory_info().rss
                kids = self.proc.children(recursive=True)
                self.children_seen = max(self.children_seen, len(kids))
                rss = []
                for k in kids:
                    try:
                        rss.append(k.memory_info().rss)
                    except ps.Error:
                        pass
                self.peak_parent = max(self.peak_parent, parent)
                if rss:
                    self.peak_child = max(self.peak_child, max(rss))
                self.peak_total_rss = max(self.peak_total_rss, parent + sum(rss))
                self._n += 1
                if self._n % 5 == 0:  # PSS is slower to read: once a second
                    pss = 0
                    for p in [self.proc] + kids:
                        try:
                            pss += p.memory_full_info().pss
                        except (ps.Error, AttributeError):
                            pass
                    self.peak_total_pss = max(self.peak_total_pss, pss)
            except self.psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def mb(x: int) -> str:
    return f"{x / 2**20:,.0f} MB"


# ------------------------------------------------------------------------------------ runs


def run_once(log: Path, out_dir: Path, workers: int, batch: int, model) -> dict:
    from app.audit import AuditConfig, run_audit

    out = out_dir / "findings.jsonl"
    for p in out_dir.glob("findings*"):
        p.unlink()
    import resource

    def cpu(who):
        r = resource.getrusage(who)
        return r.ru_utime + r.ru_stime

    c_self, c_kids = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    with MemorySampler() as mem:
        t0 = time.perf_counter()
        s = run_audit(AuditConfig(inputs=[str(log)], out=out, workers=workers, batch_size=batch,
                                  rules_dir=str(ROOT / "rules"), model_dir=model, progress=False,
                                  resume=False, log=lambda m: None))
        wall = time.perf_counter() - t0
    # CPU seconds (workers are reaped at the end of the run, so RUSAGE_CHILDREN has them);
    # the sampler thread's own cost is in the parent's figure
    cpu_parent = cpu(resource.RUSAGE_SELF) - c_self
    cpu_workers = cpu(resource.RUSAGE_CHILDREN) - c_kids
    return {"cpu_parent": cpu_parent, "cpu_workers": cpu_workers,"messages": s.messages, "wall": wall, "rate": s.messages / wall, "verdicts": dict(s.verdicts),
            "peak_parent": mem.peak_parent, "peak_child": mem.peak_child, "peak_total_rss": mem.peak_total_rss,
            "peak_total_pss": mem.peak_total_pss, "out_bytes": out.stat().st_size, "workers_seen": mem.children_seen}


def profile(log: Path, n: int, model) -> None:
    """Where one message's time goes, in one process (the same code the workers run)."""
    from app.audit.readers import FieldMap, parse_jsonl_lines
    from app.audit.work import finding_line
    from app.engine.moderator import Moderator
    from app.engine.normalize import normalize

    with gzip.open(log, "rb") as fh:
        raw = [(i + 1, next(fh)) for i in range(n)]
    m = Moderator.from_paths(ROOT / "rules", model_dir=model, watch=False)
    rs = m.ruleset
    clf = m.classifier
    t = {}

    def timeit(name, fn):
        t0 = time.perf_counter()
        r = fn()
        t[name] = time.perf_counter() - t0
        return r

    recs = timeit("parse JSON lines", lambda: parse_jsonl_lines(raw, "log", FieldMap()))
    texts = [r.text for r in recs]
    norms = timeit("normalize", lambda: [normalize(x) for x in texts])
    timeit("keywords (automaton)", lambda: [rs.keywords.match(x, None) for x in norms])
    timeit("patterns", lambda: [rs.patterns.match(x) for x in norms])
    if clf is not None:
        probs, units = timeit("classifier score_batch", lambda: clf.score_batch([x.text for x in norms]))
        labels = tuple(clf.labels)

        def clf_hits():
            for x, p, u in zip(norms, probs, units):
                rs.policy.classifier_hits(labels, p, clf.lazy_explainer(x.text), content=u)
        timeit("classifier hits + explain", clf_hits)
    verdicts = timeit("check_batch (whole engine, batches of 1000)",
                      lambda: [v for i in range(0, len(texts), 1000) for v in m.check_batch(texts[i:i + 1000])])
    timeit("finding lines (JSON out)", lambda: [finding_line(r, v) for r, v in zip(recs, verdicts)])
    print(f"\nstage costs in one process over {len(texts):,} messages (us/message; messages/s):")
    for k, v in t.items():
        print(f"  {k:<46} {1e6 * v / len(texts):8.1f} us  {len(texts) / v:>10,.0f}/s")
    parts = sum(v for k, v in t.items() if k not in ("check_batch (whole engine, batches of 1000)",
                                                     "parse JSON lines", "finding lines (JSON out)"))
    print(f"  {'sum of engine stages':<46} {1e6 * parts / len(texts):8.1f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1_000_000, help="messages in the big run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per size (medians printed)")
    ap.add_argument("--no-small", action="store_true", help="skip the 1/4-size run")
    ap.add_argument("--model", default=str(ROOT / "models" / "smsguard-zh-en"), help="model dir or none")
    ap.add_argument("--profile", type=int, default=20000, metavar="N", help="stage profile over N messages (0: off)")
    ap.add_argument("--profile-only", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    model = None if args.model.lower() == "none" else args.model
    if model is not None and not (Path(model) / "metadata.json").exists():
        print(f"no model at {model}; running keywords + patterns only", file=sys.stderr)
        model = None

    tmp = Path(tempfile.mkdtemp(prefix="smsguard-bench-audit-"))
    try:
        sizes = [args.n] + ([] if args.no_small or args.profile_only else [args.n // 4])
        logs = {}
        for n in sizes:
            p = tmp / f"sent-{n}.jsonl.gz"
            secs = write_log(p, n)
            logs[n] = p
            print(f"wrote {n:,} messages to {p.name}: {mb(p.stat().st_size)} gz in {secs:.1f}s", flush=True)
        if args.profile:
            profile(logs[args.n], min(args.profile, args.n), model)
        if args.profile_only:
            return
        print(f"\nlocal runner, {args.workers} workers, batch {args.batch_size}, model {model and Path(model).name}, "
              f"{os.cpu_count()} CPUs", flush=True)
        for n in sizes:
            runs = []
            for k in range(args.repeat):
                r = run_once(logs[n], tmp, args.workers, args.batch_size, model)
                runs.append(r)
                print(f"  n={n:>9,} run {k + 1}: {r['wall']:6.1f}s  {r['rate']:>8,.0f} msg/s  "
                      f"peak RSS parent {mb(r['peak_parent'])}, largest worker {mb(r['peak_child'])}, "
                      f"all {mb(r['peak_total_rss'])} (PSS {mb(r['peak_total_pss'])}); CPU parent {r['cpu_parent']:.0f}s, "
                      f"workers {r['cpu_workers']:.0f}s = {1e6 * (r['cpu_parent'] + r['cpu_workers']) / n:.0f} us/msg "
                      f"-> {(r['cpu_parent'] + r['cpu_workers']) / 2:.0f}s on 2 idle cores; verdicts {r['verdicts']}",
                      flush=True)
            med = lambda key: statistics.median(x[key] for x in runs)  # noqa: E731
            print(f"  n={n:>9,} median: wall {med('wall'):.1f}s, {med('rate'):,.0f} msg/s, peak RSS parent "
                  f"{mb(med('peak_parent'))}, worker {mb(med('peak_child'))}, total {mb(med('peak_total_rss'))}, "
                  f"PSS {mb(med('peak_total_pss'))}; CPU {med('cpu_parent') + med('cpu_workers'):.0f}s "
                  f"(parent {med('cpu_parent'):.0f}s); output {mb(runs[0]['out_bytes'])}", flush=True)
        target = 120.0 * args.n / 1_000_000
        print(f"\ntarget: {args.n:,} messages in <= {target:.0f}s (1M in 2 min)")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            for p in tmp.iterdir():
                p.unlink()
            tmp.rmdir()


if __name__ == "__main__":
    main()
