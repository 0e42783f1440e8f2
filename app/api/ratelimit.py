"""Per-key request rate limits: a token bucket per API key, 429 + Retry-After when it is empty.

Limits come from Settings (``SMSGUARD_RATE_LIMIT_PER_KEY`` requests per second,
``SMSGUARD_RATE_LIMIT_BURST``, per-role overrides in ``SMSGUARD_RATE_LIMIT_ROLES``); the check
runs in the /v1 guard right after the signature is verified (app/api/__init__.py), so only a
key that proved itself spends tokens and every route is covered.

Where the buckets live: a small memory-mapped file in the instance folder
(``ratelimit.bin``, 4,096 slots of 24 bytes), shared by every worker process of the machine and
guarded by an ``fcntl`` lock. A request costs one lock, one slot read and one slot write in
shared memory (a few microseconds), and no database write, so the pre-send hot path keeps its
single commit. ``fcntl`` locks are released by the kernel when their holder dies, so a worker
killed with SIGKILL while holding the lock cannot wedge the others (a ``multiprocessing``
semaphore would stay taken). A process's threads are serialised by a ``threading.Lock`` first
(``fcntl`` locks belong to the process, not the thread).

The limit holds per machine: behind a load balancer spreading one key over N machines, a key
may send up to N times the limit (set the limit per machine accordingly; docs/operations.md).

Slots are found by open addressing (8 probes); when all 8 are taken by other keys, the one idle
longest is reused: its key starts again with a full bucket, which errs on the side of letting
traffic through. If the file cannot be opened the limiter logs once and lets requests pass:
rate limiting protects the service, it must not take the pre-send check down.
"""
from __future__ import annotations

import fcntl
import logging
import math
import mmap
import os
import struct
import threading
import time
from pathlib import Path

from flask import current_app

from app.api.problems import Problem

__all__ = ["RateLimiter", "enforce", "limiter", "FILE_NAME"]

log = logging.getLogger("smsguard.api")

FILE_NAME = "ratelimit.bin"
SLOT = struct.Struct("<Qdd")  # key tag (0 = empty), tokens left, time of the last update
SLOTS = 4096
PROBES = 8
_MASK = (1 << 64) - 1


def _tag(key: int) -> int:
    """A well-spread non-zero 64-bit tag for a key id (Fibonacci hashing)."""
    return ((int(key) + 1) * 0x9E3779B97F4A7C15) & _MASK or 1


class RateLimiter:
    """Token buckets in a shared memory-mapped file. ``take(key, rate, burst)`` returns 0.0 when
    the request may proceed, else the seconds until the bucket holds a token again."""

    def __init__(self, path: str | os.PathLike, slots: int = SLOTS, clock=time.monotonic):
        self.path = Path(path)
        self.slots = int(slots)
        self.clock = clock  # CLOCK_MONOTONIC is one clock for every process of the machine
        self._pid: int | None = None
        self._fd: int | None = None
        self._mm: mmap.mmap | None = None
        self._lock = threading.Lock()
        self._broken = False
        self.policies: dict[str, tuple[float, float]] = {}  # role -> (rate, burst), filled by enforce

    def _open(self) -> mmap.mmap | None:
        """The mapping of this process (opened again after a fork: locks are per process)."""
        if self._pid == os.getpid():
            return self._mm
        if self._broken:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            size = SLOT.size * self.slots
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)  # zero-filled: every slot empty
            self._mm = mmap.mmap(fd, size)
            self._fd = fd
            self._pid = os.getpid()
        except OSError as exc:
            self._broken = True
            log.error("rate limiter disabled: cannot map %s: %s", self.path, exc)
            return None
        return self._mm

    def take(self, key: int, rate: float, burst: float) -> float:
        if rate <= 0:
            return 0.0
        tag = _tag(key)
        with self._lock:
            mm = self._open()
            if mm is None:
                return 0.0
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                now = self.clock()
                home = tag % self.slots
                off = victim = -1
                oldest = math.inf
                tokens, last = burst, now
                for i in range(PROBES):
                    o = ((home + i) % self.slots) * SLOT.size
                    t, tk, ls = SLOT.unpack_from(mm, o)
                    if t == tag:
                        off, tokens, last = o, tk, ls
                        break
                    if t == 0:  # slots never become empty again: the key is not further on
                        off = o
                        break
                    if ls < oldest:
                        oldest, victim = ls, o
                if off < 0:  # every probe slot holds another key: reuse the one idle longest
                    off = victim
                if last > now:  # the file outlived a reboot (the clock restarted): start afresh
                    tokens, last = burst, now
                tokens = min(burst, tokens + (now - last) * rate)
                if tokens >= 1.0:
                    tokens -= 1.0
                    wait = 0.0
                else:
                    wait = (1.0 - tokens) / rate
                SLOT.pack_into(mm, off, tag, tokens, now)
                return wait
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._mm is not None and self._pid == os.getpid():
                self._mm.close()
                os.close(self._fd)
            self._mm = self._fd = self._pid = None


def limiter() -> RateLimiter:
    """The app's limiter (made on first use), its file in the instance folder."""
    lim = current_app.extensions.get("smsguard.ratelimit")
    if lim is None:
        settings = current_app.config["SMSGUARD"]
        lim = current_app.extensions["smsguard.ratelimit"] = RateLimiter(Path(settings.instance_dir) / FILE_NAME)
    return lim


def enforce(principal) -> None:
    """Spend one token of the caller's key; 429 with Retry-After when there is none."""
    lim = limiter()
    policy = lim.policies.get(principal.role)
    if policy is None:
        policy = lim.policies[principal.role] = current_app.config["SMSGUARD"].rate_limit(principal.role)
    rate, burst = policy
    if rate <= 0:
        return
    wait = lim.take(principal.key_id, rate, burst)
    if wait > 0:
        retry = max(1, math.ceil(wait))
        raise Problem(429, f"this key is over its rate limit of {rate:g} requests per second "
                           f"(burst {burst:g}); retry after {retry} s",
                      headers={"Retry-After": str(retry)}, limit=rate, burst=burst, retry_after=retry)
