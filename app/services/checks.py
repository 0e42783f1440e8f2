"""The record of checks (issue 16, item 1): every pre-send check and every /v1/moderate call.

Writing (off the request path)
    ``CheckRecorder.submit(item)`` puts a small tuple on a bounded in-process queue (a few
    microseconds, never blocks); a background thread, started lazily in each process (so in each
    gunicorn worker after the fork), drains it in batches: one write transaction per batch holds
    the records, their labels (categories, rules) and the hourly counts (``check_stats``). The
    Verdict JSON, the masking and the phone hash are computed in that thread, not in the request.
    On SQLite the batch takes the pre-send hot path's ``flock`` (app/store/hotpath.py), so a
    pre-send writer waiting for it wakes the moment the batch commits instead of sleeping in
    SQLite's busy handler.

    Queue full (the database cannot keep up, or is down): the record is dropped at once and
    counted (``smsguard_check_records_dropped_total{reason="queue_full"}``) — the pre-send check
    never waits for its record. A batch that fails because the database is unavailable is kept
    and retried (1 s, 2 s … 10 s) while the queue takes new records up to its bound. A batch that
    fails otherwise is written row by row and the rows that still fail are dropped
    (``reason="error"``, logged). On normal shutdown (atexit: gunicorn's graceful stop, SIGTERM,
    the end of a CLI run) everything queued is written (``close()``, 10 s at most; what is left
    after that is ``reason="shutdown"``).

What is stored (SMSGUARD_CHECK_TEXT)
    full: the text, the phone (E.164) and the Verdict as answered. masked: the text with digits
    and contact ids (e-mail local parts, URL paths, WeChat / QQ ids, runs of Chinese numerals)
    replaced by ``*`` one for one, so every span still indexes it; the evidence and words of the
    Verdict are masked the same way (evidence is cut from the masked text at its span); the
    phone as ``+86*******8000`` (country code and last four). none: no text, no evidence, no
    words, no phone. In every mode ``phone_hash`` (HMAC-SHA256 of the E.164 number under a key
    derived from SMSGUARD_SECRET_KEY) lets /v1/checks filter by phone.

Reading: ``list_checks`` (keyset pagination on (at, id), newest first, opaque signed cursors),
``get_check``, ``complaints_of``, ``check_of_message``; ``stats`` (from ``check_stats``);
``prune`` (retention). docs/checks.md has the tables and the PostgreSQL index plan.
"""
from __future__ import annotations

import atexit
import copy
import base64
import hashlib
import hmac
import json
import logging
import os
import queue
import re
import threading
import time
import weakref
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Iterable, Iterator, NamedTuple

from prometheus_client import Counter, Gauge, Histogram

from app.store.db import unavailable
from app.store.hotpath import HotPath

log = logging.getLogger("smsguard.checks")

TEXT_MODES = ("full", "masked", "none")
ALL_ACCOUNTS = "*"  # check_stats.account_id of the counts over every account (no account id is "*")
SOURCES = ("presend", "moderate")
VERDICTS = ("allow", "review", "reject")
MASK = "*"

BATCH_MAX = 250          # records per write transaction
LINGER_S = 0.1           # after the first record of a batch, wait this long for more
IDLE_EXIT_S = 30.0       # an idle writer thread ends (the next record starts another)
CLOSE_TIMEOUT_S = 10.0   # how long a shutdown waits for the queue to be written
RETRY_MAX_S = 10.0
CHECKPOINT_EVERY_S = 0.5  # SQLite: the writer's passive WAL checkpoints (see CheckRecorder._checkpoint)

MAX_LIST_DAYS = 31       # /v1/checks: the longest time range one query may cover
MAX_STATS_DAYS = 92      # /v1/stats and the dashboard
MAX_HOUR_BUCKETS_DAYS = 14


# --------------------------------------------------------------------------- metrics

RECORDS_WRITTEN = Counter("smsguard_check_records_written_total", "Check records written to the database",
                          ["source"])
RECORDS_DROPPED = Counter("smsguard_check_records_dropped_total",
                          "Check records never written: queue_full (the writer could not keep up, or the database "
                          "was down), error (the row failed to write), shutdown (still queued when the process "
                          "ended and the database could not take them)", ["reason"])
RECORD_QUEUE = Gauge("smsguard_check_record_queue", "Check records waiting to be written",
                     multiprocess_mode="livesum")
RECORD_BATCH_SECONDS = Histogram("smsguard_check_record_batch_seconds",
                                 "Time to write one batch of check records (one transaction)",
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5))


# --------------------------------------------------------------------------- masking

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}(?=@[A-Za-z0-9\-]{1,63}\.)")
# a host name (or www. / scheme) followed by a path, query or fragment: the part after the host
_URL_PATH = re.compile(
    r"(?i)(?:(?:https?|ftp)://)?(?:[a-z0-9\-]{1,63}\.){1,10}[a-z]{2,24}(?::\d{1,5})?"
    r"([/?#][^\s<>\"'，。！？、；：（）【】《》「」“”‘’\u3400-\u9fff\uf900-\ufaff]{0,1000})")
_CONTACT_WORDS = ("微信号", "微信", "威信", "薇信", "徽信", "v信", "vx", "wx", "微x", "加v", "weixin", "wechat",
                  "qq号", "qq", "扣扣", "企鹅号", "q号", "whatsapp", "telegram", "tg", "line")
_CONTACT_ID = re.compile(
    r"(?i)(?<![A-Za-z0-9@._\-])(?:" + "|".join(re.escape(w) for w in sorted(_CONTACT_WORDS, key=len, reverse=True))
    + r")[\s:：=＝\-—_号是为@]{0,4}([A-Za-z0-9_][A-Za-z0-9_\-.@]{2,39})")
_CN_NUMERALS = re.compile(r"[零〇一二三四五六七八九幺两壹贰叁肆伍陆柒捌玖拾]{5,}")
# every decimal digit (ASCII, full width, other scripts) and the usual digit look-alikes
_DIGITS = re.compile(r"[\d\u00b2\u00b3\u00b9\u2070-\u2079\u2080-\u2089\u2460-\u24ff\u2776-\u2793"
                     r"\u3220-\u3229\u3280-\u3289\U0001d7ce-\U0001d7ff]")


def _stars(m: re.Match, group: int = 0, keep_first: bool = False) -> str:
    s, e = m.span(group)
    if keep_first and e > s:
        s += 1  # a URL path keeps its "/" (or "?", "#")
    whole = m.group(0)
    off = m.start(0)
    return whole[:s - off] + MASK * (e - s) + whole[e - off:]


def mask_text(text: str | None) -> str | None:
    """The text with digits and contact ids replaced by ``*``, one for one (same length in code
    points, so spans into the original index the masked text alike). Replaced: e-mail local
    parts, URL paths / queries (the host stays: it says which site), ids after a WeChat / QQ /
    WhatsApp / Telegram introducer, runs of five or more Chinese numerals, and every digit."""
    if not text:
        return text
    out = _EMAIL.sub(lambda m: MASK * len(m.group(0)), text)
    out = _URL_PATH.sub(lambda m: _stars(m, 1, keep_first=True), out)
    out = _CONTACT_ID.sub(lambda m: _stars(m, 1), out)
    out = _CN_NUMERALS.sub(lambda m: MASK * len(m.group(0)), out)
    out = _DIGITS.sub(MASK, out)
    assert len(out) == len(text)
    return out


def mask_phone(e164: str | None) -> str | None:
    """+8613800138000 -> +86*******8000: the country code (1-3 digits after +, as far as the
    number says) and the last four digits."""
    if not e164:
        return None
    digits = e164.lstrip("+")
    if len(digits) <= 6:
        return MASK * len(e164)
    cc = 2 if digits.startswith(("86", "44", "33", "49", "81", "82", "91", "61", "65", "60", "66", "84", "62", "63"))\
        else (1 if digits[0] in "17" else 3)
    return "+" + digits[:cc] + MASK * (len(digits) - cc - 4) + digits[-4:]


def phone_key(secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), b"smsguard check phone v1", hashlib.sha256).digest()


def phone_hash(key: bytes, e164: str | None) -> str | None:
    if not e164:
        return None
    return hmac.new(key, e164.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def _sanitize_reasons(result: dict, mode: str, masked_text: str | None) -> None:
    """Evidence, parts and words of a Verdict JSON as the text mode allows (in place)."""
    if mode == "full":
        return
    n = len(masked_text) if masked_text is not None else -1

    def cut(evidence: str | None, span) -> str | None:
        if evidence is None or mode == "none":
            return None
        if span and masked_text is not None and 0 <= span[0] <= span[1] <= n:
            return masked_text[span[0]:span[1]]
        return mask_text(evidence)

    for r in result.get("reasons") or ():
        if "evidence" in r:
            ev = cut(r["evidence"], r.get("span"))
            if ev is None:
                del r["evidence"]
            else:
                r["evidence"] = ev
        if "parts" in r:
            if mode == "none":
                r["parts"] = [{"group": p.get("group"), "evidence": "", "span": p.get("span")} for p in r["parts"]]
            else:
                r["parts"] = [dict(p, evidence=cut(p.get("evidence"), p.get("span")) or "") for p in r["parts"]]
        if "words" in r:
            if mode == "none":
                del r["words"]
            else:
                r["words"] = [mask_text(w) for w in r["words"]]


# --------------------------------------------------------------------------- rows


class Item(NamedTuple):
    """What the request thread hands the writer (cheap to build: no JSON, no hashing)."""

    source: str
    at: datetime
    account_id: str | None
    message_id: str | None
    template_id: int | None
    phone: str | None          # E.164
    verdict: Any               # app.engine.types.Verdict
    text: str | None


@dataclass
class Row:
    record: dict
    labels: list[tuple[str, str]]   # (kind, value)
    result_json: str | None = None  # record["result"] serialised (shared by equal verdicts)


def hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


#: Verdict -> (result, its JSON, the record's verdict fields, labels). Most checks are alike (the
#: same approved template, the same reasons): their stored verdict is made and serialised once.
#: Only verdicts whose stored form does not depend on the text (text mode full, or no evidence,
#: words or parts) are kept; Verdict equality covers the ruleset and model versions.
_VERDICTS: dict = {}
_VERDICTS_MAX = 1024


def _verdict_part(v, mode: str, text: str | None) -> tuple[dict, str | None, dict, list]:
    cacheable = mode == "full" or not any(h.evidence is not None or h.words or h.parts for h in v.reasons)
    if cacheable:
        try:
            hit = _VERDICTS.get(v)
        except TypeError:  # an unhashable value somewhere in the verdict: no cache
            cacheable, hit = False, None
        if hit is not None:
            return hit
    result = v.to_dict()
    _sanitize_reasons(result, mode, text)
    cats = _unique(str(c)[:64] for c in result.get("categories") or ())
    rules = _unique(str(r.get("rule") or "")[:64] for r in result.get("reasons") or ())
    fields = {"verdict": result.get("verdict") or "allow", "categories": ",".join(cats), "rules": ",".join(rules),
              "score": float(result.get("score") or 0.0), "forced_by": result.get("forced_by") or None,
              "ruleset_version": result.get("ruleset_version"), "model_version": result.get("model_version")}
    labels = [("category", c) for c in cats] + [("rule", r) for r in rules]
    out = (result, json.dumps(result, ensure_ascii=False, separators=(",", ":")) if cacheable else None, fields, labels)
    if cacheable:
        if len(_VERDICTS) >= _VERDICTS_MAX:
            _VERDICTS.clear()
        _VERDICTS[v] = out
    return out


def _no_nul(s: str | None) -> str | None:
    """A NUL character (PostgreSQL stores none) as U+FFFD: same length, so spans still hold."""
    return s.replace("\x00", "\ufffd") if s and "\x00" in s else s


def build_row(item: Item, mode: str, key: bytes) -> Row:
    """The stored form of one check: the text, the phone and the Verdict as ``mode`` allows."""
    v = item.verdict
    text = _no_nul(item.text)
    if mode == "masked":
        text = mask_text(text)
    elif mode == "none":
        text = None
    if hasattr(v, "to_dict"):
        result, result_json, fields, labels = _verdict_part(v, mode, text)
    else:  # a Verdict JSON already (imports, tests)
        result = copy.deepcopy(dict(v))
        _sanitize_reasons(result, mode, text)
        cats = _unique(str(c)[:64] for c in result.get("categories") or ())
        rules = _unique(str(r.get("rule") or "")[:64] for r in result.get("reasons") or ())
        fields = {"verdict": result.get("verdict") or "allow", "categories": ",".join(cats),
                  "rules": ",".join(rules), "score": float(result.get("score") or 0.0),
                  "forced_by": result.get("forced_by") or None, "ruleset_version": result.get("ruleset_version"),
                  "model_version": result.get("model_version")}
        labels, result_json = [("category", c) for c in cats] + [("rule", r) for r in rules], None
    phone = item.phone if mode == "full" else mask_phone(item.phone) if mode == "masked" else None
    at = item.at if item.at.tzinfo is not None else item.at.replace(tzinfo=UTC)
    rec = {"at": at.astimezone(UTC), "source": item.source, "account_id": item.account_id,
           "message_id": _no_nul(item.message_id), "template_id": item.template_id, "phone": phone,
           "phone_hash": phone_hash(key, item.phone), **fields, "text_mode": mode, "text": text, "result": result}
    return Row(rec, labels, result_json)


RECORD_COLUMNS = ("id", "at", "source", "account_id", "message_id", "template_id", "phone", "phone_hash",
                  "verdict", "categories", "rules", "score", "forced_by", "ruleset_version", "model_version",
                  "text_mode", "text", "result")
INSERT_RECORD = (f"INSERT INTO check_records ({', '.join(RECORD_COLUMNS)}) VALUES "
                 f"({', '.join(':' + c for c in RECORD_COLUMNS)})")
INSERT_LABEL = "INSERT INTO check_labels (check_id, kind, value, at, account_id) VALUES (:c, :k, :v, :at, :a)"
UPSERT_STAT = ("INSERT INTO check_stats (bucket, account_id, source, verdict, dim, value, n) "
               "VALUES (:b, :a, :s, :v, :d, :x, :n) "
               "ON CONFLICT (bucket, account_id, source, verdict, dim, value) "
               "DO UPDATE SET n = check_stats.n + excluded.n")


def _prepare(hp: HotPath, rows: list[Row]) -> tuple[list[dict], list[tuple[int, dict]], list[dict]]:
    """The statements' parameters, made before the write lock is taken: records (without id),
    labels (index of their record, parameters), hourly count upserts (in a fixed order, so two
    writers never wait on each other's rows crosswise on PostgreSQL)."""
    recs, labels, stats = [], [], Tally()
    for i, row in enumerate(rows):
        r = row.record
        at = hp.stamp(r["at"])
        js = row.result_json or json.dumps(r["result"], ensure_ascii=False, separators=(",", ":"))
        recs.append(dict(r, at=at, result=js))
        # the hour's start, as stored: SQLite "YYYY-MM-DD HH:00:00.000000"
        bucket = at[:13] + ":00:00.000000" if hp.sqlite else hour_of(r["at"])
        acct = r["account_id"] or ""
        for a in (acct, ALL_ACCOUNTS):  # the account's counts and those over every account
            base = (bucket, a, r["source"], r["verdict"])
            stats[base + ("all", "")] += 1
            for kind, value in row.labels:
                stats[base + (kind, value)] += 1
        for kind, value in row.labels:
            labels.append((i, {"k": kind, "v": value, "at": at, "a": acct}))
    ups = [{"b": k[0], "a": k[1], "s": k[2], "v": k[3], "d": k[4], "x": k[5], "n": c}
           for k, c in sorted(stats.items(), key=lambda kv: tuple(map(str, kv[0])))]
    return recs, labels, ups


def write_rows(hp: HotPath, rows: list[Row]) -> list[int]:
    """Store ``rows`` in one write transaction: records, labels, hourly counts. Returns the ids.
    Everything but the statements themselves is done before the write lock is taken."""
    if not rows:
        return []
    recs, labels, ups = _prepare(hp, rows)
    n = len(recs)
    with hp.transaction() as tx:
        conn = tx.conn
        if hp.sqlite:
            # under BEGIN IMMEDIATE nobody else writes: the next ids are ours
            top = tx.fetchone("SELECT COALESCE(MAX(id), 0) FROM check_records")[0]
            ids = list(range(top + 1, top + 1 + n))
        else:
            cur = conn.execute("SELECT nextval(pg_get_serial_sequence('check_records', 'id')) "
                               "FROM generate_series(1, %(n)s)", {"n": n})
            ids = [r[0] for r in cur.fetchall()]
            cur.close()
        for id_, rec in zip(ids, recs):
            rec["id"] = id_
        label_rows = [dict(p, c=ids[i]) for i, p in labels]
        cur = conn.cursor()
        if hp.sqlite:
            for sql, params in ((INSERT_RECORD, recs), (INSERT_LABEL, label_rows), (UPSERT_STAT, ups)):
                for chunk_sql, values in multirow(sql, params, SQLITE_MAX_PARAMS):
                    cur.execute(chunk_sql, values)
        else:
            cur.executemany(hp.sql(INSERT_RECORD), recs)
            if label_rows:
                cur.executemany(hp.sql(INSERT_LABEL), label_rows)
            cur.executemany(hp.sql(UPSERT_STAT), ups)
        cur.close()
    return ids


# SQLite's limit on the parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER, 32766 since 3.32)
SQLITE_MAX_PARAMS = 32766


def multirow(sql: str, rows: list[dict], max_params: int = SQLITE_MAX_PARAMS) -> Iterator[tuple[str, list]]:
    """SQLite: ``sql`` (one ``VALUES (:a, :b, ...)`` row, maybe an ``ON CONFLICT`` tail) as
    multi-row statements with positional parameters, as few as the parameter limit allows.
    executemany steps once per row and gives up the GIL at every step: a request thread of the
    same process that takes it keeps the batch, and the write lock every writer waits on, for
    up to the interpreter's switch interval each time. One statement per chunk steps once."""
    if not rows:
        return
    head, _, rest = sql.partition(" VALUES ")
    end = rest.index(")") + 1
    keys, tail = re.findall(r":(\w+)", rest[:end]), rest[end:]
    one = "(" + ", ".join("?" * len(keys)) + ")"
    per = max(1, max_params // len(keys))
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        yield (f"{head} VALUES {', '.join([one] * len(chunk))}{tail}",
               [row[k] for row in chunk for k in keys])


def store(db, items: Iterable[Item], mode: str = "full", secret: str = "") -> list[int]:
    """Write items at once, in the caller's thread (imports, tests, tools); one transaction."""
    key = phone_key(secret)
    return write_rows(HotPath(db), [build_row(i, mode, key) for i in items])


# --------------------------------------------------------------------------- the recorder

_LIVE: "weakref.WeakSet[CheckRecorder]" = weakref.WeakSet()
_WAKE = object()  # put on the queue by close(): wakes a writer waiting for records


class CheckRecorder:
    """Per app (so per process): a bounded queue and the thread that writes it in batches."""

    def __init__(self, db, mode: str = "full", secret: str = "", max_queue: int = 20000, enabled: bool = True):
        if mode not in TEXT_MODES:
            raise ValueError(f"text mode must be one of {', '.join(TEXT_MODES)}")
        self.db = db
        self.mode = mode
        self.enabled = enabled
        self.max_queue = max_queue
        self._key = phone_key(secret)
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """Fresh state (at start and in a forked child: the parent's queue and thread stay its own)."""
        self._q: queue.Queue = queue.Queue(self.max_queue)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False
        self._last_drop_log = 0.0
        self._dropped_since_log = 0
        self._last_checkpoint = 0.0
        self._deadline: float | None = None  # set by close(): when a shutdown stops retrying

    # -- the request side
    def submit(self, item: Item) -> bool:
        """Queue one record; False when it was dropped (queue full) or refused (recording off,
        recorder closed). Never blocks."""
        if not self.enabled or self._closed:
            return False
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self._dropped("queue_full", 1)
            return False
        if self._thread is None:
            self._start()
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            t = threading.Thread(target=self._run, name="smsguard-check-recorder", daemon=True)
            self._thread = t
            t.start()

    def _dropped(self, reason: str, n: int) -> None:
        RECORDS_DROPPED.labels(reason).inc(n)
        self._dropped_since_log += n
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0:  # one log line per 10 s at most
            log.warning("check records dropped", extra={"reason": reason, "dropped": self._dropped_since_log,
                                                       "queued": self._q.qsize()})
            self._last_drop_log = now
            self._dropped_since_log = 0

    # -- the writer
    def _take(self, first: Item | None) -> list[Item]:
        batch = [first] if first is not None else []
        while len(batch) < BATCH_MAX:
            try:
                it = self._q.get_nowait()
            except queue.Empty:
                break
            if it is _WAKE:
                self._q.task_done()
                continue
            batch.append(it)
        return batch

    def _run(self) -> None:
        # a HotPath of this thread's own: its flock descriptor is closed with it when the thread ends
        hp = HotPath(self.db)
        q = self._q
        while True:
            try:
                first = q.get(timeout=0.05 if self._stop.is_set() else IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if q.empty():  # idle, or stopping with nothing left: end (submit() starts another)
                        self._thread = None
                        return
                continue
            if first is _WAKE:
                q.task_done()
                continue
            if not self._stop.is_set():
                self._stop.wait(LINGER_S)  # let a batch gather (wakes at once on close())
            batch = self._take(first)
            try:
                self._write(hp, batch)
            finally:
                for _ in batch:
                    q.task_done()
                RECORD_QUEUE.set(q.qsize())

    def _write(self, hp: HotPath, items: list[Item]) -> None:
        rows: list[Row] = []
        for it in items:
            try:
                rows.append(build_row(it, self.mode, self._key))
            except Exception:  # noqa: BLE001 - one bad verdict must not lose the batch
                log.exception("check record could not be built")
                self._dropped("error", 1)
        if not rows:
            return
        delay = 1.0
        while True:
            t0 = time.perf_counter()
            try:
                write_rows(hp, rows)
            except Exception as exc:  # noqa: BLE001
                if not unavailable(exc):
                    if len(rows) > 1:
                        log.warning("check record batch failed (%s: %s); writing its rows one by one",
                                    type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
                        for row in rows:
                            self._write_one(hp, row)
                    else:
                        log.exception("check record could not be written")
                        self._dropped("error", 1)
                    return
                # the database is unavailable: keep the batch and retry (while the queue, bounded,
                # takes new records); on shutdown, retry for CLOSE_TIMEOUT_S at most
                if self._stop.is_set():
                    if time.monotonic() >= (self._deadline or 0.0):
                        self._dropped("shutdown", len(rows))
                        log.error("check records lost at shutdown: the database is unavailable",
                                  extra={"dropped": len(rows)})
                        return
                if not self._stop.is_set() or delay == 1.0:
                    log.error("check records not written, the database is unavailable; retrying: %s",
                              str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                              extra={"records": len(rows), "retry_s": delay})
                if self._stop.is_set():  # shutting down: retry until the deadline, not past it
                    time.sleep(max(0.0, min(delay, 0.25, (self._deadline or 0.0) - time.monotonic())))
                else:
                    self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            RECORD_BATCH_SECONDS.observe(time.perf_counter() - t0)
            for src, n in Tally(r.record["source"] for r in rows).items():
                RECORDS_WRITTEN.labels(src).inc(n)
            self._checkpoint(hp)
            return

    def _checkpoint(self, hp: HotPath) -> None:
        """SQLite: checkpoint the WAL here, outside the write lock (PASSIVE: it never waits for
        and never blocks a writer), at most every CHECKPOINT_EVERY_S. Otherwise the commit that
        takes the WAL past 1000 pages pays for the checkpoint, and that is most often a pre-send
        check's (the records are most of the bytes written)."""
        if not hp.sqlite:
            return
        now = time.monotonic()
        if now - self._last_checkpoint < CHECKPOINT_EVERY_S:
            return
        self._last_checkpoint = now
        try:
            hp.read("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # noqa: BLE001 - SQLite checkpoints by itself anyway
            log.debug("passive checkpoint failed: %s", exc)

    def _write_one(self, hp: HotPath, row: Row) -> None:
        try:
            write_rows(hp, [row])
            RECORDS_WRITTEN.labels(row.record["source"]).inc()
        except Exception:  # noqa: BLE001
            log.exception("check record could not be written")
            self._dropped("error", 1)

    # -- control
    def pending(self) -> int:
        """Records queued and not yet written (or dropped)."""
        return self._q.unfinished_tasks

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped). True when done in time."""
        deadline = time.monotonic() + timeout
        while self._q.unfinished_tasks:
            if self._thread is None and not self._stop.is_set():
                self._start()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._q.all_tasks_done:
                if self._q.unfinished_tasks:
                    self._q.all_tasks_done.wait(min(left, 0.2))
        return True

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> int:
        """Normal shutdown: write what is queued, then stop; records submitted afterwards are
        refused. Returns how many records were lost (0 unless the database was unavailable for
        the whole ``timeout``). Idempotent."""
        if self._closed:
            return 0
        self._closed = True
        deadline = self._deadline = time.monotonic() + timeout
        self._stop.set()
        try:
            self._q.put_nowait(_WAKE)  # a writer waiting for records wakes up (a full queue wakes it anyway)
        except queue.Full:
            pass
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(max(0.0, deadline - time.monotonic()) + 1.0)  # + the writer's last attempt
        lost = 0
        if self._thread is None or not self._thread.is_alive():
            # the writer ended (or never ran): whatever is left is written here
            hp = HotPath(self.db)
            while not self._q.empty() and time.monotonic() < deadline:
                batch = self._take(None)
                try:
                    self._write(hp, batch)
                finally:
                    for _ in batch:
                        self._q.task_done()
            while True:
                try:
                    it = self._q.get_nowait()
                except queue.Empty:
                    break
                self._q.task_done()
                lost += it is not _WAKE
            if lost:
                self._dropped("shutdown", lost)
                log.error("check records lost at shutdown", extra={"dropped": lost})
        RECORD_QUEUE.set(0)
        return lost


def _close_all() -> None:
    """At exit: every recorder of this process writes what it holds, CLOSE_TIMEOUT_S in all."""
    # the streams a log line would go to may already be closed (a test runner's): never a
    # "--- Logging error ---" traceback at exit
    logging.raiseExceptions = False
    deadline = time.monotonic() + CLOSE_TIMEOUT_S
    for rec in list(_LIVE):
        try:
            rec.close(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - at exit: log and go on
            log.exception("closing the check recorder failed")


def _after_fork_in_child() -> None:
    for rec in list(_LIVE):
        rec._reset()


atexit.register(_close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_BY_DB: "weakref.WeakKeyDictionary[Any, CheckRecorder]" = weakref.WeakKeyDictionary()


def install(app) -> CheckRecorder:
    """The app's recorder (``app.extensions["smsguard.checks"]``), made once per app."""
    rec = app.extensions.get("smsguard.checks")
    if rec is None:
        settings = app.config["SMSGUARD"]
        db = app.extensions["smsguard.db"]
        rec = CheckRecorder(db, settings.check_text, settings.secret_key, settings.check_queue_max,
                            enabled=settings.check_record)
        app.extensions["smsguard.checks"] = rec
        _BY_DB[db] = rec
    return rec


def recorder_for(db) -> CheckRecorder | None:
    """The recorder installed for this Database (the pre-send service finds it by its db)."""
    return _BY_DB.get(db)


# --------------------------------------------------------------------------- cursors


class BadCursor(ValueError):
    pass


def _cursor_key(secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), b"smsguard check cursor v1", hashlib.sha256).digest()


def encode_cursor(secret: str, at: datetime, id_: int, scope: str) -> str:
    """An opaque token for the position after (at, id) in one query (``scope``: a digest of
    its filters): signed, so a changed token (or one from another query) is refused."""
    body = json.dumps([at.astimezone(UTC).isoformat(), int(id_), scope], separators=(",", ":")).encode()
    mac = hmac.new(_cursor_key(secret), body, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def decode_cursor(secret: str, token: str, scope: str) -> tuple[datetime, int]:
    if not token or len(token) > 400:
        raise BadCursor("the cursor is not one this service gave")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise BadCursor("the cursor is not one this service gave") from None
    body, mac = raw[:-12], raw[-12:]
    good = hmac.new(_cursor_key(secret), body, hashlib.sha256).digest()[:12]
    if len(raw) <= 12 or not hmac.compare_digest(good, mac):
        raise BadCursor("the cursor is not one this service gave")
    try:
        at_s, id_, sc = json.loads(body)
        at = datetime.fromisoformat(at_s)
    except (ValueError, TypeError):
        raise BadCursor("the cursor is not one this service gave") from None
    if sc != scope:
        raise BadCursor("the cursor belongs to a query with other filters")
    return at, int(id_)


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Filters:
    start: datetime
    end: datetime
    account: str | None = None
    verdict: str | None = None
    category: str | None = None
    rule: str | None = None
    message_id: str | None = None
    phone: str | None = None          # E.164
    source: str | None = None

    def scope(self) -> str:
        doc = [self.start.isoformat(), self.end.isoformat(), self.account, self.verdict, self.category, self.rule,
               self.message_id, self.phone, self.source]
        return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]


def list_checks(session, f: Filters, limit: int, after: tuple[datetime, int] | None, secret: str):
    """(records, next cursor or None): newest first by (at, id), at most ``limit``.

    With a category or rule filter (and no message id or phone, whose own indexes are narrower)
    the query walks that label's index in (at, check_id) order (per account when one is named),
    so a page costs its matches however rare the value; otherwise the records' (account, at, id)
    or (at, id) index, newest first."""
    from sqlalchemy import and_, exists, or_, select

    from app.store.records import CheckLabel as L, CheckRecord as R

    cols = [R.id, R.at, R.source, R.account_id, R.message_id, R.template_id, R.phone, R.verdict, R.categories,
            R.rules, R.score, R.forced_by, R.ruleset_version, R.model_version, R.text_mode, R.text]
    labels = [(k, v) for k, v in (("category", f.category), ("rule", f.rule)) if v]
    by_label = bool(labels) and not f.message_id and not f.phone
    if by_label:
        kind, value = labels.pop(0)
        at_col, id_col = L.at, L.check_id
        q = select(*cols).select_from(L).join(R, R.id == L.check_id).where(
            L.kind == kind, L.value == value, L.at >= f.start, L.at < f.end)
        if f.account is not None:
            q = q.where(L.account_id == f.account)
    else:
        at_col, id_col = R.at, R.id
        q = select(*cols).where(R.at >= f.start, R.at < f.end)
        if f.account is not None:
            q = q.where(R.account_id == f.account)
    if f.verdict:
        q = q.where(R.verdict == f.verdict)
    if f.source:
        q = q.where(R.source == f.source)
    if f.message_id:
        q = q.where(R.message_id == f.message_id)
    if f.phone:
        q = q.where(R.phone_hash == phone_hash(phone_key(secret), f.phone))
    for kind, value in labels:
        other = L.__table__.alias("other_label")
        q = q.where(exists().where(other.c.check_id == R.id, other.c.kind == kind, other.c.value == value))
    if after is not None:
        at, id_ = after
        q = q.where(or_(at_col < at, and_(at_col == at, id_col < id_)))
    rows = session.execute(q.order_by(at_col.desc(), id_col.desc()).limit(limit + 1)).mappings().all()
    more = len(rows) > limit
    rows = [dict(r) for r in rows[:limit]]
    nxt = encode_cursor(secret, rows[-1]["at"], rows[-1]["id"], f.scope()) if more and rows else None
    return rows, nxt


def get_check(session, check_id: int):
    from app.store.records import CheckRecord

    return session.get(CheckRecord, check_id)


def complaints_of(session, account_id: str | None, message_id: str | None) -> list:
    """The complaints filed about this account's message id (oldest first)."""
    if not account_id or not message_id:
        return []
    from sqlalchemy import select

    from app.store.models import Complaint

    return list(session.scalars(select(Complaint).where(Complaint.account_id == account_id,
                                                        Complaint.message_id == message_id)
                                .order_by(Complaint.id).limit(100)))


def check_of_message(session, account_id: str, message_id: str | None) -> int | None:
    """The check a complaint about this message refers to: the latest allowed check of the
    account with that message id (the one that was sent), else the latest one."""
    if not message_id:
        return None
    from sqlalchemy import case, select

    from app.store.records import CheckRecord as R

    return session.scalar(select(R.id).where(R.account_id == account_id, R.message_id == message_id)
                          .order_by(case((R.verdict == "allow", 0), else_=1), R.at.desc(), R.id.desc()).limit(1))


# --------------------------------------------------------------------------- stats


@dataclass
class Stats:
    start: datetime
    end: datetime
    bucket: str
    account: str | None
    source: str | None
    totals: dict = field(default_factory=dict)
    series: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    rules: list = field(default_factory=list)
    accounts: list | None = None

    def to_dict(self) -> dict:
        return {"from": self.start, "to": self.end, "bucket": self.bucket, "account": self.account,
                "source": self.source, "totals": self.totals, "series": self.series,
                "categories": self.categories, "rules": self.rules, "accounts": self.accounts}


def _figures(counts: dict[str, int]) -> dict:
    total = sum(counts.get(v, 0) for v in VERDICTS)
    return {"checks": total, "allow": counts.get("allow", 0), "review": counts.get("review", 0),
            "reject": counts.get("reject", 0),
            "reject_rate": round(counts.get("reject", 0) / total, 6) if total else None,
            "review_rate": round(counts.get("review", 0) / total, 6) if total else None}


def stats_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Whole UTC hours covering [start, end)."""
    s = hour_of(start)
    e = hour_of(end)
    if e < end.astimezone(UTC):
        e += timedelta(hours=1)
    return s, max(e, s + timedelta(hours=1))


def stats(session, start: datetime, end: datetime, bucket: str = "day", account: str | None = None,
          source: str | None = None, by_account: bool = True, top: int = 50) -> Stats:
    """Volume, reject and review rates over [start, end) (whole UTC hours) from check_stats:
    totals, a series per hour or UTC day (every bucket, zeros included), per category, per rule
    (the ``top`` most frequent) and, unless an account is named, per account (``top``)."""
    from sqlalchemy import func, select

    from app.store.records import CheckStat as S

    s, e = stats_range(start, end)
    out = Stats(s, e, bucket, account, source)

    def base(dim: str, per_account: bool = False):
        q = [S.dim == dim, S.bucket >= s, S.bucket < e]
        if per_account:
            q.append(S.account_id != ALL_ACCOUNTS)
        else:
            q.append(S.account_id == (ALL_ACCOUNTS if account is None else account))
        if source:
            q.append(S.source == source)
        return q

    total = func.sum(S.n)
    series: dict[datetime, dict[str, int]] = {}
    for b, verdict, n in session.execute(select(S.bucket, S.verdict, total).where(*base("all"))
                                         .group_by(S.bucket, S.verdict)):
        b = b.astimezone(UTC)
        key = b if bucket == "hour" else b.replace(hour=0)
        series.setdefault(key, {}).setdefault(verdict, 0)
        series[key][verdict] += int(n)
    step = timedelta(hours=1) if bucket == "hour" else timedelta(days=1)
    t = s if bucket == "hour" else s.replace(hour=0)
    agg: dict[str, int] = {}
    while t < e:
        c = series.get(t, {})
        out.series.append(dict(at=t, **_figures(c)))
        for k, v in c.items():
            agg[k] = agg.get(k, 0) + v
        t += step
    out.totals = _figures(agg)

    def grouped(dim: str) -> list[dict]:
        per: dict[str, dict[str, int]] = {}
        for value, verdict, n in session.execute(select(S.value, S.verdict, total).where(*base(dim))
                                                 .group_by(S.value, S.verdict)):
            per.setdefault(value, {})[verdict] = int(n)
        rows = [dict(name=k, **_figures(c)) for k, c in per.items()]
        rows.sort(key=lambda r: (-r["checks"], r["name"]))
        return rows

    out.categories = grouped("category")
    out.rules = grouped("rule")[:top]
    if by_account and account is None:
        per: dict[str, dict[str, int]] = {}
        for acct, verdict, n in session.execute(select(S.account_id, S.verdict, total).where(*base("all", True))
                                                .group_by(S.account_id, S.verdict)):
            per.setdefault(acct, {})[verdict] = int(n)
        rows = [dict(name=k or None, **_figures(c)) for k, c in per.items()]
        rows.sort(key=lambda r: (-r["checks"], r["name"] or ""))
        out.accounts = rows[:top]
    return out


# --------------------------------------------------------------------------- retention


@dataclass
class PruneResult:
    cutoff: datetime
    records: int = 0
    stats_rows: int = 0
    batches: int = 0
    seconds: float = 0.0


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """Records before this are pruned: ``days`` ago, down to the hour (so the hourly counts and
    the records go together)."""
    return hour_of((now or datetime.now(UTC)) - timedelta(days=days))


def prune(db, days: int, now: datetime | None = None, batch: int = 1000, pause_s: float = 0.02,
          dry_run: bool = False, hp: HotPath | None = None) -> PruneResult:
    """Delete check records older than ``days`` (and their labels and hourly counts) in
    transactions of at most ``batch`` records, pausing ``pause_s`` between them so the
    service's writers get their turn (safe while the service runs). Feedback about a deleted
    check keeps its own copy of the text; its check_id becomes NULL."""
    hp = hp or HotPath(db)
    cut = retention_cutoff(days, now)
    res = PruneResult(cut)
    t0 = time.monotonic()
    stamp = hp.stamp(cut)
    if dry_run:
        row = hp.read("SELECT COUNT(*) FROM check_records WHERE at < :cut", {"cut": stamp})
        res.records = int(row[0])
        row = hp.read("SELECT COUNT(*) FROM check_stats WHERE bucket < :cut", {"cut": stamp})
        res.stats_rows = int(row[0])
        res.seconds = time.monotonic() - t0
        return res
    while True:
        with hp.transaction() as tx:
            cur = tx.conn.execute(hp.sql("SELECT id FROM check_records WHERE at < :cut ORDER BY at, id LIMIT :n"),
                                  {"cut": stamp, "n": batch})
            ids = [r[0] for r in cur.fetchall()]
            cur.close()
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ", ".join(f":i{k}" for k in range(len(chunk)))
                params = {f"i{k}": v for k, v in enumerate(chunk)}
                tx.execute(f"UPDATE feedback SET check_id = NULL WHERE check_id IN ({marks})", params)
                tx.execute(f"DELETE FROM check_labels WHERE check_id IN ({marks})", params)
                res.records += tx.execute(f"DELETE FROM check_records WHERE id IN ({marks})", params)
        if not ids:
            break
        res.batches += 1
        if len(ids) < batch:
            break
        if pause_s:
            time.sleep(pause_s)
    # the hourly counts, one hour at a time (each hour's rows are few)
    while True:
        first = hp.read("SELECT MIN(bucket) FROM check_stats WHERE bucket < :cut", {"cut": stamp})
        if first is None or first[0] is None:
            break
        with hp.transaction() as tx:
            res.stats_rows += tx.execute("DELETE FROM check_stats WHERE bucket <= :b AND bucket < :cut",
                                         {"b": first[0], "cut": stamp})
        if pause_s:
            time.sleep(pause_s)
    res.seconds = time.monotonic() - t0
    return res


def record_moderate(app, account_id: str | None, text: str, verdict) -> None:
    """Hand a /v1/moderate verdict to the app's recorder (never fails the call)."""
    rec = app.extensions.get("smsguard.checks")
    if rec is None:
        return
    try:
        rec.submit(Item("moderate", datetime.now(UTC), account_id, None, None, None, verdict, text))
    except Exception:  # noqa: BLE001
        log.exception("moderation call not recorded")
