"""The character n-gram features of many texts at once, as integers, with numpy.

A character 1-3-gram is exactly one integer: its code points (each < 2**21) packed into 63 bits,
``c1 << 42 | c2 << 21 | c3`` (a shorter gram leaves the high places 0; control characters have
no key, so every code point in one is at least 0x20 and no two grams share a key). ``GramIndex`` holds a vocabulary's character grams as a
sorted key array; ``columns`` finds the feature columns of every gram occurrence of a batch of
prepared texts with a handful of array operations, where a Python loop would build and look up
one string per gram (a vocabulary of half a million strings misses the CPU caches on nearly every
lookup: most of the classifier's time before this).

The grams are those of ``features.char_ngrams_wb(text, 1, 3)``: a text is padded with a space at
both ends; every non-space character is a 1-gram, every neighbouring pair but two spaces a 2-gram,
every triple whose middle is not a space a 3-gram (tests/engine/test_gram_index.py holds it to
the string function on any text without control characters, which prepare() never leaves).
"""
from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np

_SHIFT = 21
_SPACE = ord(" ")
_SEP = 0  # between two texts of a batch: a code point prepare() never leaves in a text


def gram_key(gram: str) -> int | None:
    """The integer of a 1-3 character gram; None for any other string, and for a token with a
    control character (features' WORD_PREFIX and BIGRAM_PREFIX tokens: prepare() leaves none)."""
    if not 1 <= len(gram) <= 3:
        return None
    key = 0
    for ch in gram:
        c = ord(ch)
        if c < 0x20:
            return None
        key = (key << _SHIFT) | c
    return key


class GramIndex:
    """The character-gram columns of a vocabulary (token -> column): its tokens of 1-3
    characters; longer tokens (prefixed words, word pairs) are looked up by the caller."""

    def __init__(self, vocabulary: Mapping[str, int]):
        pairs = [(k, j) for k, j in ((gram_key(t), j) for t, j in vocabulary.items()) if k is not None]
        keys = np.fromiter((k for k, _ in pairs), dtype=np.int64, count=len(pairs))
        cols = np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs))
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._cols = cols[order]
        # column -> (its gram's key (-1: not a character gram), the one character the gram stands
        # for (``single_chars``; 0: none)), side by side: one cache line read gives both
        n_cols = max(vocabulary.values(), default=-1) + 1
        self._of = np.zeros((n_cols, 2), dtype=np.int64)
        self._of[:, 0] = -1
        self._of[cols, 0] = keys
        self._of[cols, 1] = single_chars(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def describe(self, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keys, chars) per column: its gram's key (-1: the column is not a character gram) and
        the code point of the one character the gram stands for (a 1-gram, or the character at a
        piece's edge: " x", "x ", " x "; 0 for any other column)."""
        of = self._of[columns]
        return of[:, 0], of[:, 1]

    def columns(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of every occurrence of a vocabulary gram in ``texts`` (row: the index of
        its text), int64 arrays in no particular order."""
        if not texts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        joined = "\x00".join(" " + t + " " for t in texts)
        c = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        row = np.repeat(np.arange(len(texts), dtype=np.int64), [len(t) + 3 for t in texts])[:len(c)]
        live = c != _SEP
        a, b = c[:-1], c[1:]
        one = live & (c != _SPACE)
        two = live[:-1] & live[1:] & ~((a == _SPACE) & (b == _SPACE))
        mid = c[1:-1]
        three = live[:-2] & live[1:-1] & live[2:] & (mid != _SPACE)
        keys = np.concatenate((c[one], ((a << _SHIFT) | b)[two],
                               ((c[:-2] << (2 * _SHIFT)) | (mid << _SHIFT) | c[2:])[three]))
        rows = np.concatenate((row[one], row[:-1][two], row[:-2][three]))
        # searched in ascending order, neighbouring searches share their path through the keys
        # (five times faster than searching them in text order)
        order = np.argsort(keys)
        keys, rows = keys[order], rows[order]
        at = np.searchsorted(self._keys, keys)
        at[at == len(self._keys)] = 0
        found = self._keys[at] == keys if len(self._keys) else np.zeros(len(keys), dtype=bool)
        return rows[found], self._cols[at[found]]


def single_chars(keys: np.ndarray) -> np.ndarray:
    """Per gram key, the code point of the one character the gram stands for: a 1-gram, or a
    character at a piece's edge (" x", "x ", " x "); 0 for any other gram and for -1."""
    mask = (1 << _SHIFT) - 1
    c1, c2, c3 = keys >> (2 * _SHIFT), (keys >> _SHIFT) & mask, keys & mask
    ok = keys > 0
    one = ok & (c1 == 0) & (c2 == 0) & (c3 != _SPACE)
    lead = ok & (c1 == 0) & (c2 == _SPACE) & (c3 != _SPACE)
    trail = ok & (c1 == 0) & (c2 != 0) & (c2 != _SPACE) & (c3 == _SPACE)
    both = ok & (c1 == _SPACE) & (c2 != _SPACE) & (c3 == _SPACE)
    return np.where(one | lead, c3, np.where(trail | both, c2, 0))


@functools.lru_cache(maxsize=1 << 14)
def word_keys(word: str) -> frozenset[int]:
    """The keys of the 1-3-grams inside ``word`` and of its edges padded with a space (" w",
    "w ", " wo", "rd "): ``{gram_key(g) for g in classifier.word_grams(word)}`` for a word of two
    or more characters without spaces, computed without making the strings (cached: words repeat
    from message to message)."""
    c = [ord(ch) for ch in word]
    out = set(c)
    out.update((a << _SHIFT) | b for a, b in zip(c, c[1:]))
    out.update((a << (2 * _SHIFT)) | (b << _SHIFT) | d for a, b, d in zip(c, c[1:], c[2:]))
    out.update(((_SPACE << _SHIFT) | c[0], (c[-1] << _SHIFT) | _SPACE,
                (_SPACE << (2 * _SHIFT)) | (c[0] << _SHIFT) | c[1], (c[-2] << (2 * _SHIFT)) | (c[-1] << _SHIFT) | _SPACE))
    return frozenset(out)
