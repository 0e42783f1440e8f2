"""The trained classifier: load models/<name>/ and score NORMALIZED text.

One calibrated probability per category (one-vs-rest logistic regression over TF-IDF of
character 1-3-grams + jieba words, Platt scaling fitted on out-of-fold scores and folded into
the weights, so p = sigmoid(x . w + b)).

Two scoring paths that give the same probabilities (tests/training prove it to 1e-9):

- ``predict_batch(texts)``: the batch as one CSR matrix (TF-IDF and L2 norms vectorized
  with numpy; the same numbers as the trained scikit-learn vectorizer's ``transform``, which
  ``decision_batch_sklearn`` keeps as the reference) + one sparse x dense product.
- ``predict_one(text)``: the lean path for the pre-send call: the same features, TF-IDF and
  L2 norm by hand, and a dot with the rows of a dense (n_features, n_labels) weight matrix
  (no scikit-learn call overhead, no weight-matrix copy).

Both find a text's character n-grams with a ``gram_index.GramIndex`` (each gram an integer key,
the whole batch looked up with numpy) and only its words and word pairs in the vocabulary dict:
half a million strings miss the CPU caches on nearly every lookup, which was most of the time.
The words a reviewer is shown (``explain``) come from the features the text was scored with.

English heads (model format 2, optional): a model may carry a second set of the same heads,
trained on English texts only (``features.Content.lang == "en"``: Latin words outnumber CJK
characters) with their own vocabulary (pairs of neighbouring Latin words besides character
n-grams and words). Every scoring path routes an English text to them and any other text to the
main heads, so the Chinese scores are those of the main heads alone. Held out whole, a model fit
on English alone separated English insults and threats from English personal chat better than the
joint heads, and adding Latin word pairs to the joint heads cost Chinese normals (docs/evaluation.md).

``load_classifier`` refuses (``ModelMismatchError``) a model whose metadata does not match the
code: label set, feature-code version, model format, scikit-learn major.minor.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from functools import partial
from itertools import chain, repeat
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from app.engine.features import (FEATURES_VERSION, WORD_PREFIX, Content, char_ngrams_wb, content_units,
                                 display_token, prepare)
from app.engine.gram_index import GramIndex, gram_key, word_keys

log = logging.getLogger(__name__)

#: the built-in taxonomy ids (../shared/TAXONOMY.md), in the model's column order
LABELS: tuple[str, ...] = (
    "politics", "hate", "cult_superstition", "rumor", "pornography", "gambling",
    "violence_terror", "abuse", "fraud", "contraband", "marketing",
)
INFORMATIONAL: frozenset[str] = frozenset({"marketing"})
PROHIBITED: tuple[str, ...] = tuple(c for c in LABELS if c not in INFORMATIONAL)
#: the aggregate head a model may carry after LABELS: any prohibited category against none,
#: trained on every category's positives pooled (policy.yaml ``classifier.prohibited_head``).
#: Not a category: no hit carries it.
AGGREGATE_LABEL = "prohibited"
#: the label sets a model may have (models before the aggregate head have LABELS alone)
MODEL_LABELS: tuple[tuple[str, ...], ...] = (LABELS, LABELS + (AGGREGATE_LABEL,))

MODEL_FORMAT = 2
#: formats this code reads: 1 = main heads only, 2 = main heads and optional English heads
READABLE_FORMATS = (1, 2)
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"


class ModelMismatchError(RuntimeError):
    """The model on disk does not match this code (labels, feature version, library versions)."""


def _major_minor(version: str) -> str:
    return ".".join(str(version).split(".")[:2])


def sklearn_version() -> str:
    import sklearn
    return sklearn.__version__


def word_grams(w: str) -> set[str]:
    """The character features (1-3 grams, and the word-boundary grams ``char_ngrams_wb`` pads
    with a space) that lie inside the word ``w``: what ``explain`` credits the word with."""
    if " " in w:
        return {w[i:i + n] for n in (1, 2, 3) for i in range(len(w) - n + 1)} | set(char_ngrams_wb(w))
    if len(w) == 1:
        return {w, " " + w, w + " ", " " + w + " "}
    n = len(w)
    out = {w[i:i + 3] for i in range(n - 2)}
    out.update(w[i:i + 2] for i in range(n - 1))
    out.update(w)
    out.update((" " + w[0], w[-1] + " ", " " + w[:2], w[-2:] + " "))
    return out


def _no_words(label: str, k: int = 5) -> list[str]:
    return []


def _lazy(make):
    """``explain(label) -> list[str]`` (k=5) that calls ``make()`` for the explainer on its first
    call only: what the policy is handed, since most messages never reach a review threshold."""
    made = []

    def explain(label: str) -> list[str]:
        if not made:
            made.append(make())
        return made[0](label, 5)

    return explain


def _row_explainer(a: "Analysis", X, k: int, word_columns: np.ndarray):
    """The explainer of the text analysed as ``a``, scored as row ``k`` of the CSR ``X``."""
    lo, hi = X.indptr[k], X.indptr[k + 1]
    return a.heads._explainer(a, X.indices[lo:hi], X.data[lo:hi], word_columns)


def routes_to_english(content: Content) -> bool:
    """Whether a text with this Content is scored by a model's English heads (Latin words
    outnumber CJK characters: the rule policy.yaml's English lines use too). Training fits the
    English heads on the rows this holds for."""
    return content.lang == "en"


class Analysis(NamedTuple):
    """One normalized text as the classifier sees it."""

    heads: "Classifier"  # the heads that score it (``Classifier.heads_for``)
    prepared: str  # features.prepare of it
    #: its feature tokens for those heads, its words first; with a GramIndex
    #: (``Classifier._grams``) only the tokens that are not character grams (words, word
    #: pairs): the index finds the grams
    tokens: list[str]
    words: list[str]  # the jieba words among them (WORD_PREFIX-ed)
    content: Content


class Classifier:
    """Scores normalized text. Thread-safe for readers (after construction only caches are
    filled, each with a value any thread would compute alike)."""

    def __init__(self, vectorizer, coef: np.ndarray, intercept: np.ndarray, labels: Sequence[str],
                 version: str = "unsaved", metadata: dict | None = None, english: "Classifier | None" = None):
        self.labels: tuple[str, ...] = tuple(labels)
        if english is not None and (english.labels != self.labels or english.english is not None):
            raise ModelMismatchError("the English heads must have the main heads' labels and no heads of their own")
        #: the heads English texts are scored with (None: every text by the main heads)
        self.english = english
        self.version = version
        self.metadata = metadata or {}
        self._vec = vectorizer
        an = vectorizer.analyzer
        self._analyzer = an if callable(an) else vectorizer.build_analyzer()
        # our Analyzer with 1-3-grams: its character grams are found by a GramIndex (built on
        # first use); any other analyzer's tokens are looked up one by one
        self._gram_path = hasattr(an, "word_tokens") and tuple(getattr(an, "ngram_range", ())) == (1, 3)
        self._gram_index: GramIndex | None = None
        # dense per-feature rows: W[j] is the weight vector of feature j over all labels
        self._W = np.ascontiguousarray(coef, dtype=np.float64)
        self._b = np.asarray(intercept, dtype=np.float64).reshape(-1)
        self._idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        # plain-int values: scikit-learn stores numpy int64s, whose hashing and comparison cost
        # ~10x more than Python ints
        self._vocab: dict[str, int] = {t: int(i) for t, i in vectorizer.vocabulary_.items()}
        self._col = {lab: i for i, lab in enumerate(self.labels)}
        if self._W.shape != (len(self._idf), len(self.labels)):
            raise ModelMismatchError(f"model weights have shape {self._W.shape}, expected "
                                     f"({len(self._idf)}, {len(self.labels)})")

    # -- thresholds chosen at training time (policy.yaml is the source of truth in production)
    @property
    def thresholds(self) -> dict:
        return dict(self.metadata.get("thresholds", {}))

    def _grams(self) -> GramIndex:
        g = self._gram_index
        if g is None:
            g = self._gram_index = GramIndex(self._vocab)
        return g

    def heads_for(self, content: Content) -> "Classifier":
        """The heads that score a text with this Content: the English heads for a text that
        ``routes_to_english`` (when the model has them), else these."""
        return self.english if self.english is not None and routes_to_english(content) else self

    def _analyse(self, text: str, prepared: str, content: Content) -> Analysis:
        """The Analysis of a normalized text by THESE heads."""
        an = self._analyzer
        if not hasattr(an, "word_tokens"):
            return Analysis(self, prepared, an(text), [], content)
        tokens, words = an.word_tokens(prepared)
        if not self._gram_path:  # another n-gram range: its grams as strings, after the words
            tokens = tokens + char_ngrams_wb(prepared, *an.ngram_range)
        return Analysis(self, prepared, tokens, words, content)

    def _routed(self, text: str) -> Analysis:
        """The Analysis of one normalized text by the heads it is routed to."""
        prepared = prepare(text)
        content = content_units(prepared)
        return self.heads_for(content)._analyse(text, prepared, content)

    def _cells(self, analyses: Sequence[Analysis]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, column) of every feature-token occurrence of texts analysed by THESE heads, and
        the column (-1: none) of each of their ``tokens``, text after text."""
        lens = [len(a.tokens) for a in analyses]
        tokens = np.fromiter(map(self._vocab.get, chain.from_iterable(a.tokens for a in analyses), repeat(-1)),
                             dtype=np.int64, count=sum(lens))
        r = np.repeat(np.arange(len(analyses), dtype=np.int64), lens)
        known = tokens >= 0
        r, c = r[known], tokens[known]
        if self._gram_path:
            gr, gc = self._grams().columns([a.prepared for a in analyses])
            r, c = np.concatenate((gr, r)), np.concatenate((gc, c))
        return r, c, tokens

    def _matrix(self, analyses: Sequence[Analysis]):
        """(CSR (n, n_features) of L2-normalized sublinear TF-IDF of texts analysed by THESE
        heads, the column of each of their tokens: ``_cells``)."""
        from scipy.sparse import csr_matrix

        n, n_features = len(analyses), len(self._idf)
        r, c, tokens = self._cells(analyses)
        keys, counts = np.unique(r * n_features + c, return_counts=True)
        row = keys // n_features
        idx = (keys - row * n_features).astype(np.intp)
        v = (np.log(counts.astype(np.float64)) + 1.0) * self._idf[idx]
        norms = np.sqrt(np.bincount(row, weights=v * v, minlength=n))
        if len(v):
            v /= norms[row]
        ptr = np.zeros(n + 1, dtype=np.intp)
        np.cumsum(np.bincount(row, minlength=n), out=ptr[1:])
        return csr_matrix((v, idx, ptr), shape=(n, n_features)), tokens

    def _features(self, a: Analysis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(feature indices, L2-normalized sublinear TF-IDF values, the column of each of its
        ``tokens``) of one text analysed by THESE heads: ``_matrix``'s row without building a
        sparse matrix."""
        _r, c, tokens = self._cells((a,))
        idx, counts = np.unique(c, return_counts=True)
        if not len(idx):
            return idx.astype(np.intp), np.empty(0, dtype=np.float64), tokens
        v = (np.log(counts.astype(np.float64)) + 1.0) * self._idf[idx]
        v /= math.sqrt(float(v @ v))
        return idx.astype(np.intp), v, tokens

    def _decision(self, a: Analysis) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(raw scores, feature indices, their values, its words' columns) of one analysed text."""
        sub = a.heads
        idx, v, tokens = sub._features(a)
        s = sub._b.copy() if len(idx) == 0 else v @ sub._W[idx] + sub._b
        return s, idx, v, tokens[:len(a.words)]  # its tokens begin with its words

    def decision_one(self, normalized_text: str) -> np.ndarray:
        """Raw scores of one normalized text by the heads it is routed to."""
        return self._decision(self._routed(normalized_text))[0]

    def predict_one(self, normalized_text: str) -> np.ndarray:
        """Probabilities (len(labels),) of one normalized text: the lean path."""
        s = self.decision_one(normalized_text)
        return 1.0 / (1.0 + np.exp(-s))

    def score_one(self, normalized_text: str) -> tuple[np.ndarray, Content]:
        """(probabilities, features.Content) of one normalized text: what the policy decides on."""
        probs, content, _explain = self.score_one_explained(normalized_text)
        return probs, content

    def score_one_explained(self, normalized_text: str):
        """(probabilities, features.Content, ``explain(label) -> list[str]``) of one normalized
        text: ``score_one`` and a lazy explainer (k=5) of the features it scored."""
        a = self._routed(normalized_text)
        s, idx, v, word_columns = self._decision(a)
        return 1.0 / (1.0 + np.exp(-s)), a.content, _lazy(lambda: a.heads._explainer(a, idx, v, word_columns))

    def transform(self, normalized_texts: Iterable[str]):
        """CSR (n, n_features) of L2-normalized sublinear TF-IDF by THESE heads' vocabulary (no
        routing), the same numbers as the vectorizer's ``transform`` (tests prove it) without its
        per-token Python overhead."""
        texts = list(normalized_texts)
        preps = [prepare(t) for t in texts]
        return self._matrix([self._analyse(t, p, content_units(p)) for t, p in zip(texts, preps)])[0]

    def _decision_routed(self, texts: list[str]):
        """(raw scores (n, len(labels)), Analysis per text, per text where it was scored: (CSR
        matrix, its row, the columns of its words)), each text by the heads it is routed to."""
        routed = [self._routed(t) for t in texts]
        rows: dict[int, tuple["Classifier", list[int]]] = {}  # id(heads) -> (heads, its rows)
        for i, a in enumerate(routed):
            rows.setdefault(id(a.heads), (a.heads, []))[1].append(i)
        s = np.empty((len(texts), len(self.labels)))
        where: list = [None] * len(texts)
        for sub, idx in rows.values():
            X, tokens = sub._matrix([routed[i] for i in idx])
            s[idx] = np.asarray(X @ sub._W) + sub._b
            at = 0  # the matrix's texts' tokens, text after text, each beginning with its words
            for k, i in enumerate(idx):
                a = routed[i]
                where[i] = (X, k, tokens[at:at + len(a.words)])
                at += len(a.tokens)
        return s, routed, where

    def decision_batch(self, normalized_texts: Iterable[str]) -> np.ndarray:
        texts = list(normalized_texts)
        if self.english is None:
            return np.asarray(self.transform(texts) @ self._W) + self._b
        return self._decision_routed(texts)[0]

    def decision_batch_sklearn(self, normalized_texts: Iterable[str]) -> np.ndarray:
        """The same scores through scikit-learn's vectorizers (reference for tests)."""
        texts = list(normalized_texts)
        s = np.asarray(self._vec.transform(texts) @ self._W) + self._b
        if self.english is not None:
            en = [i for i, t in enumerate(texts) if self.heads_for(content_units(prepare(t))) is self.english]
            if en:
                e = self.english
                s[en] = np.asarray(e._vec.transform([texts[i] for i in en]) @ e._W) + e._b
        return s

    def predict_batch(self, normalized_texts: Iterable[str]) -> np.ndarray:
        """Probabilities (n, len(labels)) of normalized texts: the batch path."""
        texts = list(normalized_texts)
        if not texts:
            return np.empty((0, len(self.labels)))
        s = self.decision_batch(texts)
        return 1.0 / (1.0 + np.exp(-s))

    def score_batch(self, normalized_texts: Iterable[str]) -> tuple[np.ndarray, list[Content]]:
        """(probabilities (n, len(labels)), features.Content per text): the batch path of score_one."""
        texts = list(normalized_texts)
        if not texts:
            return np.empty((0, len(self.labels))), []
        s, routed, _where = self._decision_routed(texts)
        return 1.0 / (1.0 + np.exp(-s)), [a.content for a in routed]

    def score_batch_explained(self, normalized_texts: Iterable[str]):
        """``score_batch`` and, per text, a lazy ``explain(label) -> list[str]`` (k=5) of the
        features the batch scored it by."""
        texts = list(normalized_texts)
        if not texts:
            return np.empty((0, len(self.labels))), [], []
        s, routed, where = self._decision_routed(texts)
        explain = [_lazy(partial(_row_explainer, a, *w)) for a, w in zip(routed, where)]
        return 1.0 / (1.0 + np.exp(-s)), [a.content for a in routed], explain

    def explain(self, normalized_text: str, label: str, k: int = 5) -> list[str]:
        """The words of the message that pushed ``label``'s probability most (see ``explainer``)."""
        return self.explainer(normalized_text)(label, k)

    def lazy_explainer(self, normalized_text: str):
        """``explain(label) -> list[str]`` (k=5) that analyses the message on its first call only:
        what the policy is handed, since most messages never reach a review threshold."""
        return _lazy(partial(self.explainer, normalized_text))

    def explainer(self, normalized_text: str):
        """``explain(label, k=5) -> list[str]`` for one message: the words of the message that
        pushed ``label``'s probability most.

        Each jieba word of the feature text (and each of its characters) is scored by the summed
        contributions x_j * w_j of its own features (the word itself and the character n-grams
        inside it); the k words with the largest positive scores are returned, spelled for a
        reviewer (digit runs, phone numbers and links as <NUM>, <PHONE>, <URL>). The message is
        analysed once, whatever number of labels is explained (a message that reaches review in
        two categories explains both). The words are those of the heads the text is routed to."""
        a = self._routed(normalized_text)
        _s, idx, v, word_columns = self._decision(a)
        return a.heads._explainer(a, idx, v, word_columns)

    def _explainer(self, a: Analysis, idx: np.ndarray, v: np.ndarray, word_columns: np.ndarray):
        """``explainer`` of a text analysed by THESE heads whose features (``idx``), their values
        (``v``) and the columns of its ``words`` (``word_columns``, -1 for none) are known.
        Features are matched to candidates by their gram keys (gram_index.py), never by reading
        strings back from the vocabulary."""
        if not a.prepared or not len(idx):
            return _no_words
        g = self._grams()
        # which features each candidate (a character of the text, or a word) is made of: a
        # character is credited with itself and itself at a piece's edge (" x", "x ", " x ")
        members: dict[str, list[int]] = {}
        keys, chars = g.describe(idx)
        at_char = np.flatnonzero(chars)
        for i, ch in zip(at_char.tolist(), chars[at_char].tolist()):
            members.setdefault(chr(ch), []).append(i)
        if a.words:
            # a word: the grams inside it (its edges padded with a space too) and the word itself
            at = dict(zip(keys.tolist(), range(len(keys))))  # gram key -> its place in idx
            rest = np.flatnonzero(keys < 0)
            at_word = dict(zip(idx[rest].tolist(), rest.tolist()))  # column of a word -> its place
            for x, col in zip(a.words, word_columns.tolist()):
                w = x[len(WORD_PREFIX):]
                if w in members:  # a repeated word
                    continue
                grams = word_keys(w) if len(w) > 1 and " " not in w else map(gram_key, word_grams(w))
                hit = [at[k] for k in grams if k in at]
                j = at_word.get(col)
                if j is not None:
                    hit.append(j)
                if hit:
                    members[w] = hit
        if not members:
            return _no_words
        cands = list(members)
        r = np.repeat(np.arange(len(cands), dtype=np.intp), [len(m) for m in members.values()])
        c = np.fromiter(chain.from_iterable(members.values()), dtype=np.intp, count=len(r))
        W, col = self._W, self._col

        def explain(label: str, k: int = 5) -> list[str]:
            contrib = v * W[idx, col[label]]
            score = np.bincount(r, weights=contrib[c], minlength=len(cands)).tolist()
            out: list[str] = []
            for _neg, w in sorted((-sc, w) for sc, w in zip(score, cands) if sc > 0):  # ties: by word
                if len(out) >= k:
                    break
                if any(w in o for o in out):
                    continue
                out.append(display_token(w))
            return out

        return explain

    def __repr__(self) -> str:
        en = f" english_features={len(self.english._idf)}" if self.english is not None else ""
        return f"<Classifier {self.version} labels={len(self.labels)} features={len(self._idf)}{en}>"


# ---------------------------------------------------------------------------- persistence

def check_metadata(meta: dict, categories: Iterable[str] | None = None) -> None:
    """Raise ModelMismatchError (one line) when the metadata does not match this code."""
    labels = tuple(meta.get("labels", ()))
    if meta.get("format") not in READABLE_FORMATS:
        raise ModelMismatchError(f"model format {meta.get('format')!r} is not one this code reads "
                                 f"({', '.join(map(str, READABLE_FORMATS))})")
    if labels not in MODEL_LABELS:
        raise ModelMismatchError(f"model label set {list(labels)} != code label set {list(LABELS)} "
                                 f"(optionally followed by {AGGREGATE_LABEL!r})")
    if categories is not None:
        missing = [lab for lab in labels if lab not in set(categories) and lab != AGGREGATE_LABEL]
        if missing:
            raise ModelMismatchError(f"model labels {missing} are not categories of the rules in force")
    fv = str(meta.get("features_version"))
    if fv != FEATURES_VERSION:
        raise ModelMismatchError(f"model feature-code version {fv!r} != code version {FEATURES_VERSION!r}; retrain")
    trained = str(meta.get("versions", {}).get("scikit-learn", "?"))
    if _major_minor(trained) != _major_minor(sklearn_version()):
        raise ModelMismatchError(f"model trained with scikit-learn {trained}, installed {sklearn_version()} "
                                 f"(major.minor must match); retrain or install {_major_minor(trained)}")


def read_metadata(model_dir: str | Path) -> dict:
    path = Path(model_dir) / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelMismatchError(f"no {METADATA_FILE} in {model_dir}") from None
    except json.JSONDecodeError as exc:
        raise ModelMismatchError(f"unreadable {path}: {exc}") from None


def load_classifier(model_dir: str | Path, categories: Iterable[str] | None = None) -> Classifier:
    """Load models/<name>/ (metadata.json checked BEFORE anything is unpickled)."""
    import joblib

    model_dir = Path(model_dir)
    meta = read_metadata(model_dir)
    check_metadata(meta, categories)
    path = model_dir / MODEL_FILE
    if not path.exists():
        raise ModelMismatchError(f"no {MODEL_FILE} in {model_dir}")
    # unpickling runs code: load only the exact file the metadata describes
    want = meta.get("model_sha256")
    if want and hashlib.sha256(path.read_bytes()).hexdigest() != want:
        raise ModelMismatchError(f"{path} does not match the model_sha256 of {METADATA_FILE} "
                                 "(a corrupt or replaced model file)")
    blob = joblib.load(path)
    labels = tuple(blob.get("labels", ()))
    if labels != tuple(meta.get("labels", ())):
        raise ModelMismatchError(f"{MODEL_FILE} label set does not match {METADATA_FILE}")
    if meta.get("normalizer", "").startswith("standin"):
        try:
            import app.engine.normalize  # noqa: F401
            log.warning("model %s was trained on the stand-in normalizer; retrain on app.engine.normalize",
                        meta.get("version"))
        except ImportError:
            pass
    version = str(meta.get("version", "unknown"))
    en = blob.get("english")
    if (en is not None) != bool(meta.get("english")):
        raise ModelMismatchError(f"{MODEL_FILE} and {METADATA_FILE} disagree on the English heads")
    english = (Classifier(en["vectorizer"], en["coef"], en["intercept"], labels, version=version,
                          metadata=meta["english"]) if en is not None else None)
    clf = Classifier(blob["vectorizer"], blob["coef"], blob["intercept"], labels,
                     version=version, metadata=meta, english=english)
    for heads in (clf, english):  # the gram indexes now, not in the first check's time
        if heads is not None and heads._gram_path:
            heads._grams()
    return clf


def save_model(model_dir: str | Path, clf: Classifier, metadata: dict) -> dict:
    """Write model.joblib (float32 weights) + metadata.json; returns the final metadata."""
    import hashlib

    import joblib

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    for part in (clf, clf.english):
        if part is not None and hasattr(part._vec, "stop_words_"):
            part._vec.stop_words_ = None  # the pruned-term set: large and not needed
    blob = {"format": MODEL_FORMAT, "labels": list(clf.labels), "vectorizer": clf._vec,
            "coef": clf._W.astype(np.float32), "intercept": clf._b}
    if clf.english is not None:
        blob["english"] = {"vectorizer": clf.english._vec, "coef": clf.english._W.astype(np.float32),
                           "intercept": clf.english._b}
    path = model_dir / MODEL_FILE
    joblib.dump(blob, path, compress=("zlib", 3))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = dict(metadata)
    meta["format"] = MODEL_FORMAT
    meta["labels"] = list(clf.labels)
    meta["features_version"] = FEATURES_VERSION
    if clf.english is None:
        meta.pop("english", None)
    else:
        meta["english"] = {**meta.get("english", {}), "n_features": int(len(clf.english._idf))}
    meta["model_sha256"] = digest
    meta["model_bytes"] = path.stat().st_size
    meta["version"] = f"{meta.get('name', model_dir.name)}-{meta.get('trained_at', '')[:10]}-{digest[:8]}"
    (model_dir / METADATA_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return meta
