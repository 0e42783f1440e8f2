"""Train/validation split: held out per source, stratified, and deduplicated.

Method
------
1. Every row is keyed by its feature text (``features.prepare`` of the normalized text: digits,
   phone numbers and URLs as class characters, punctuation and spaces removed), so template
   variants that differ only in a number, a link or punctuation share a key.
2. Near-duplicates: MinHash over the set of character 3-shingles of the key (128 hash functions
   ``(a*x+b) mod (2^31-1)`` over crc32 shingle hashes, fixed seed), LSH with 32 bands of 4 rows.
   Rows sharing a band are compared on their signatures; an estimated Jaccard >= ``threshold``
   (default 0.6) makes them near-duplicates. Exact key duplicates are always near-duplicates.
   Near-duplicates are merged into groups (union-find).
3. Groups are assigned whole to train or validation, per source (the source of the group's
   first row) and per label set, taking ``val_frac`` of every (source, label set) stratum in a
   seeded random order. Groups larger than ``max_val_group`` rows stay in train (one template
   must not dominate the validation set).
4. Final guard: every validation row that shares an LSH band with a training row whose
   estimated Jaccard is >= ``threshold`` is dropped from validation (it can happen only when
   union-find compared a different pair of the band). ``SplitResult.dropped`` counts them.

The result is deterministic for the same rows and seed.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from app.engine.features import prepare

N_HASHES = 128
BANDS = 32
ROWS_PER_BAND = N_HASHES // BANDS
_P = (1 << 31) - 1


@dataclass
class SplitResult:
    train_idx: np.ndarray
    val_idx: np.ndarray
    groups: np.ndarray       # group id per row
    dropped: int             # validation rows dropped by the final near-duplicate guard
    method: str

    def summary(self) -> dict:
        return {"train_rows": int(len(self.train_idx)), "val_rows": int(len(self.val_idx)),
                "near_dup_groups": int(len(np.unique(self.groups))), "guard_dropped": int(self.dropped),
                "method": self.method}


def shingles(key: str, k: int = 3) -> list[int]:
    if len(key) <= k:
        return [zlib.crc32(key.encode("utf-8"))]
    return list({zlib.crc32(key[i:i + k].encode("utf-8")) for i in range(len(key) - k + 1)})


def minhash_signatures(keys: list[str], seed: int = 1) -> np.ndarray:
    """(n, N_HASHES) uint32 MinHash signatures of the keys' 3-shingle sets."""
    rng = np.random.RandomState(seed)
    a = rng.randint(1, _P, size=N_HASHES).astype(np.uint64)
    b = rng.randint(0, _P, size=N_HASHES).astype(np.uint64)
    lens = np.empty(len(keys), dtype=np.int64)
    flat: list[int] = []
    for i, key in enumerate(keys):
        sh = shingles(key)
        lens[i] = len(sh)
        flat.extend(sh)
    hv = np.asarray(flat, dtype=np.uint64)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.int64)
    sig = np.empty((len(keys), N_HASHES), dtype=np.uint32)
    for j in range(N_HASHES):
        h = (a[j] * hv + b[j]) % _P
        sig[:, j] = np.minimum.reduceat(h, starts).astype(np.uint32)
    return sig


def _band_hashes(sig: np.ndarray) -> np.ndarray:
    """(n, BANDS) uint64 hash of each band."""
    s = sig.astype(np.uint64).reshape(len(sig), BANDS, ROWS_PER_BAND)
    mult = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5],
                    dtype=np.uint64)[:ROWS_PER_BAND]
    with np.errstate(over="ignore"):
        return (s * mult).sum(axis=2)


def _runs(col: np.ndarray):
    """Index arrays of rows sharing one band value (runs of length >= 2)."""
    order = np.argsort(col, kind="stable")
    v = col[order]
    cut = np.flatnonzero(v[1:] != v[:-1]) + 1
    bounds = np.concatenate(([0], cut, [len(v)]))
    sizes = np.diff(bounds)
    for s, size in zip(bounds[:-1][sizes >= 2], sizes[sizes >= 2]):
        yield order[s:s + size]


class _UnionFind:
    def __init__(self, n: int):
        self.p = np.arange(n)

    def find(self, x: int) -> int:
        p = self.p
        root = x
        while p[root] != root:
            root = p[root]
        while p[x] != root:
            p[x], x = root, p[x]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                self.p[rb] = ra
            else:
                self.p[ra] = rb


def near_duplicate_groups(keys: list[str], threshold: float = 0.6, seed: int = 1):
    """(group id per row, signatures, band hashes)."""
    n = len(keys)
    uf = _UnionFind(n)
    first: dict[str, int] = {}
    for i, k in enumerate(keys):  # exact duplicates
        j = first.setdefault(k, i)
        if j != i:
            uf.union(j, i)
    sig = minhash_signatures(keys, seed=seed)
    bands = _band_hashes(sig)
    for b in range(BANDS):
        for members in _runs(bands[:, b]):
            head = members[0]
            sim_head = (sig[members[1:]] == sig[head]).mean(axis=1)
            sim_prev = (sig[members[1:]] == sig[members[:-1]]).mean(axis=1)
            for m, sh, sp, prev in zip(members[1:], sim_head, sim_prev, members[:-1]):
                if sh >= threshold:
                    uf.union(head, m)
                if sp >= threshold:
                    uf.union(prev, m)
    groups = np.array([uf.find(i) for i in range(n)])
    return groups, sig, bands


def split_rows(rows, val_frac: float = 0.15, seed: int = 13, threshold: float = 0.6,
               max_val_group: int = 5, keys: list[str] | None = None) -> SplitResult:
    """Split ``rows`` (objects with .norm, .source, .labels). See the module doc."""
    if keys is None:
        keys = [prepare(r.norm) for r in rows]
    groups, sig, bands = near_duplicate_groups(keys, threshold=threshold, seed=seed)
    n = len(rows)
    # group -> members (in row order)
    order = np.argsort(groups, kind="stable")
    g_sorted = groups[order]
    cut = np.flatnonzero(g_sorted[1:] != g_sorted[:-1]) + 1
    members_of = np.split(order, cut)
    strata: dict[tuple, list[np.ndarray]] = {}
    for mem in members_of:
        r0 = rows[int(mem[0])]
        strata.setdefault((r0.source, tuple(r0.labels)), []).append(mem)
    rng = np.random.RandomState(seed)
    is_val = np.zeros(n, dtype=bool)
    for key in sorted(strata):
        glist = strata[key]
        total = sum(len(m) for m in glist)
        if total < 4:  # too few to hold any out
            continue
        target = val_frac * total
        perm = rng.permutation(len(glist))
        taken = 0
        for gi in perm:
            mem = glist[gi]
            if taken >= target:
                break
            if len(mem) > max_val_group or taken + len(mem) > target * 1.5 + 1:
                continue
            is_val[mem] = True
            taken += len(mem)
    # final guard (repeated: a row moved back to train may have near-duplicates in validation)
    dropped = 0
    changed = True
    while changed:
        changed = False
        for b in range(BANDS):
            for members in _runs(bands[:, b]):
                v = members[is_val[members]]
                t = members[~is_val[members]]
                if len(v) == 0 or len(t) == 0:
                    continue
                if len(v) * len(t) > 200_000:
                    bad = v
                else:
                    sim = (sig[v][:, None, :] == sig[t][None, :, :]).mean(axis=2)
                    bad = v[(sim >= threshold).any(axis=1)]
                if len(bad):
                    is_val[bad] = False
                    dropped += len(bad)
                    changed = True
    method = (f"feature-text key; exact dedup + MinHash {N_HASHES} x char-3-shingles, LSH {BANDS}x{ROWS_PER_BAND}, "
              f"est. Jaccard >= {threshold}; grouped, per (source, label set) val_frac={val_frac}, seed={seed}")
    return SplitResult(np.flatnonzero(~is_val), np.flatnonzero(is_val), groups, dropped, method)
