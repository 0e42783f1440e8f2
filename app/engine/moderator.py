"""Moderator: the content pipeline every caller uses (HTTP pre-send, CLI, audit workers).

    text -> normalize -> keywords + patterns (+ classifier) -> policy -> Verdict

Thread-safe for readers: a check reads the RuleSet in force once (one attribute read) and uses
only immutable compiled objects; a rule change is built by the watcher thread and swapped in.
Build the Moderator before gunicorn forks (``preload_app = True``); the watcher restarts in
each forked child.

The classifier is swapped the same way (``smsguard model promote``, docs/operations.md): the
model in force is one immutable ``ModelInForce`` (classifier, labels, version, folder) read once
per check, so a check in flight uses one classifier from start to end; ``switch_model`` loads
and checks a new folder completely off the request path and only then replaces that one
reference. ``watch_model(pointer)`` polls a pointer file (instance/model-current, written by
``smsguard model promote``) and switches when it names another model; a model that fails to
load or to match what this code expects is refused, the model in force stays, and the failure
is kept in ``status()`` (and told to the model listeners: the service's metrics).
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from app.engine.bidi import has_rtl, visual
from app.engine.keywords import CustomLists
from app.engine.mention import mark_mentions
from app.engine.model_in_force import (NO_MODEL, ModelInForce, ModelSwitchError, accepted_fingerprints,
                                       load_checked, normalizer_fingerprint, read_pointer, stamp)
from app.engine.normalize import Normalized, normalize
from app.engine.ruleset import RuleSet, RuleSetManager, SelfTestCase, load_selftests
from app.engine.types import Hit, Verdict

__all__ = ["Moderator", "ModelInForce", "ModelSwitchError", "SelfTestResult", "accepted_fingerprints",
           "load_checked", "normalizer_fingerprint", "read_pointer", "run_selftests", "selftest_gate",
           "selftest_ruleset"]

log = logging.getLogger("smsguard.engine")


_watched: "weakref.WeakSet[Moderator]" = weakref.WeakSet()
_UNSEEN = object()


def _after_fork_in_child() -> None:  # pragma: no cover - exercised under gunicorn
    for m in list(_watched):
        m._model_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Moderator:
    def __init__(self, manager: RuleSetManager, classifier: Any = None,
                 model_dir: str | os.PathLike | None = None, model_error: str | None = None):
        self._manager = manager
        self._model = ModelInForce(classifier, Path(model_dir) if model_dir is not None else None, time.time()) \
            if classifier is not None or model_dir is not None else NO_MODEL
        self.model_error = model_error          # the configured model did not load at start
        # model switching (switch_model / watch_model)
        self._switch_lock = threading.Lock()
        self.model_listeners: list[Callable[[str, dict], None]] = []
        self.model_switches = 0
        self.model_last_error: str | None = None     # the last refused switch (cleared by a good one)
        self.model_last_error_at: float | None = None
        self._pointer: Path | None = None
        self._pointer_poll = 1.0
        self._pointer_sig: Any = _UNSEEN             # the pointer file last acted on
        self._promoted: dict | None = None           # what the pointer file names
        self._model_stop = threading.Event()
        self._model_thread: threading.Thread | None = None
        # normalizer fingerprints a switch accepts: this code's, and that of the model the
        # service was configured with (already running here; see docs/operations.md)
        self._accepted_fingerprints = {fp for fp in (normalizer_fingerprint(), self._model.metadata.get("normalizer_sha256"))
                                       if fp}

    # ------------------------------------------------------------------------- creation
    @classmethod
    def from_paths(cls, rules_dir: str | os.PathLike, model_dir: str | os.PathLike | None = None,
                   watch: bool = True, poll_interval: float = 1.0,
                   require_model: bool = True, selftest: bool = True,
                   model_pointer: str | os.PathLike | None = None) -> "Moderator":
        """Load the rules (RuleError if they are broken) and, if ``model_dir`` is given, the
        classifier (app.engine.classifier.load_classifier). With ``require_model=False`` a
        missing or broken model is reported in status() and checks run without it. With
        ``selftest`` (the default) rules whose self-tests examples fail are refused, at start
        (RuleError) and on every reload (the rules in force stay).

        ``model_pointer`` (with a ``model_dir``): the pointer file of ``smsguard model promote``.
        When it names a model, that model is loaded instead of ``model_dir`` (a promotion
        outlives a restart); when that fails, ``model_dir`` is loaded and the failure is kept in
        status(). With ``watch`` the file is then watched (``watch_model``)."""
        manager = RuleSetManager(rules_dir, watch=watch, poll_interval=poll_interval,
                                 gate=selftest_gate if selftest else None)
        classifier = None
        error = None
        if model_dir is not None:
            try:
                from app.engine.classifier import load_classifier

                classifier = load_classifier(model_dir)
            except Exception as exc:
                if require_model:
                    manager.close()
                    raise
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.warning("model not loaded from %s: %s", model_dir, error)
        m = cls(manager, classifier, model_dir=model_dir, model_error=error)
        if model_pointer is not None and model_dir is not None:
            m._pointer = Path(model_pointer)
            m._pointer_poll = float(poll_interval)
            m.check_pointer()  # at start: the promoted model, if any, replaces the configured one
            if watch:
                m.watch_model(model_pointer, poll_interval)
        return m

    # ----------------------------------------------------------------------- properties
    @property
    def ruleset(self) -> RuleSet:
        return self._manager.current

    @property
    def ruleset_version(self) -> str:
        return self._manager.current.version

    @property
    def model(self) -> ModelInForce:
        """The model in force (one reference: read it once and use what it holds)."""
        return self._model

    @property
    def classifier(self):
        return self._model.classifier

    @classifier.setter
    def classifier(self, value) -> None:
        self._model = ModelInForce(value, self._model.dir, time.time())

    @property
    def model_dir(self) -> Path | None:
        return self._model.dir

    @property
    def model_version(self) -> str | None:
        return self._model.version

    @property
    def manager(self) -> RuleSetManager:
        return self._manager

    def reload(self) -> bool:
        return self._manager.reload()

    # --------------------------------------------------------------------- model switch
    def load_model(self, model_dir: str | os.PathLike, expect: dict | None = None) -> ModelInForce:
        """Load and check a model folder without putting it in force (``load_checked`` with the
        categories of the rules in force and the normalizer fingerprints this service accepts)."""
        return load_checked(model_dir, self._manager.current.categories, self._accepted_fingerprints, expect)

    def switch_model(self, model_dir: str | os.PathLike, expect: dict | None = None) -> ModelInForce:
        """Load ``model_dir`` completely (``load_model``), then put it in force with one reference
        swap: checks already running finish with the classifier they started with. On failure
        the model in force stays, the error is kept (``status()["model"]["last_error"]``) and
        ModelSwitchError is raised."""
        with self._switch_lock:
            return self._switch_locked(Path(model_dir), expect)

    def _switch_locked(self, model_dir: Path, expect: dict | None) -> ModelInForce:
        old = self._model
        try:
            new = self.load_model(model_dir, expect)
        except ModelSwitchError as exc:
            self.model_last_error, self.model_last_error_at = str(exc), time.time()
            log.error("model switch refused, keeping %s: %s", old.version, exc)
            self._notify_model("error", {"error": str(exc), "version": old.version, "dir": str(model_dir)})
            raise
        self._model = new
        self.model_switches += 1
        self.model_last_error = self.model_last_error_at = None
        log.info("model switched: %s -> %s (%s)", old.version, new.version, model_dir)
        self._notify_model("switched", {"version": new.version, "old_version": old.version, "dir": str(model_dir)})
        return new

    def _notify_model(self, event: str, info: dict) -> None:
        for fn in list(self.model_listeners):
            try:
                fn(event, info)
            except Exception:  # noqa: BLE001 - a listener must never break a switch
                log.exception("model %s listener failed", event)

    def check_pointer(self) -> bool:
        """One look at the pointer file: switch when it changed and names a model other than the
        one in force. True when a switch happened. A pointer that cannot be read, or a model
        that is refused, leaves the model in force (the error is kept) and is not tried again
        until the pointer file changes."""
        p = self._pointer
        if p is None:
            return False
        sig = stamp(p)
        if sig == self._pointer_sig:
            return False
        with self._switch_lock:
            sig = stamp(p)
            if sig == self._pointer_sig:
                return False
            try:
                try:
                    promoted = read_pointer(p)
                except ValueError as exc:
                    self.model_last_error, self.model_last_error_at = str(exc), time.time()
                    log.error("model pointer unreadable, keeping %s: %s", self._model.version, exc)
                    self._notify_model("error", {"error": str(exc), "version": self._model.version, "dir": str(p)})
                    return False
                self._promoted = promoted
                if promoted is None:
                    return False
                target = Path(promoted["model_dir"])
                cur = self._model
                if (cur.classifier is not None and cur.dir is not None and _same_dir(cur.dir, target)
                        and promoted.get("version") in (None, cur.version)):
                    if self.model_last_error:  # the pointer is back to the model in force
                        self.model_last_error = self.model_last_error_at = None
                        self._notify_model("recovered", {"version": cur.version})
                    return False
                try:
                    self._switch_locked(target, promoted)
                except ModelSwitchError:
                    return False
                return True
            finally:
                self._pointer_sig = sig

    def watch_model(self, pointer: str | os.PathLike, poll_interval: float = 1.0) -> None:
        """Poll ``pointer`` every ``poll_interval`` seconds in a daemon thread (``check_pointer``);
        restarted in each forked child (gunicorn workers each switch on their own)."""
        self._pointer = Path(pointer)
        self._pointer_poll = float(poll_interval)
        _watched.add(self)
        self._start_model_watcher()

    def _start_model_watcher(self) -> None:
        self._model_stop = threading.Event()
        t = threading.Thread(target=self._watch_model_loop, name="smsguard-model-watcher", daemon=True)
        self._model_thread = t
        t.start()

    def _watch_model_loop(self) -> None:
        stop = self._model_stop
        while not stop.wait(self._pointer_poll):
            try:
                self.check_pointer()
            except Exception:  # pragma: no cover - keep watching whatever happens
                log.exception("model watcher error")

    def _model_after_fork(self) -> None:
        self._switch_lock = threading.Lock()
        if self._model_thread is not None and not self._model_stop.is_set():
            self._start_model_watcher()

    @property
    def watching_model(self) -> bool:
        t = self._model_thread
        return t is not None and t.is_alive()

    def model_status(self) -> dict:
        m = self._model
        meta = m.metadata
        out = {
            "loaded": m.classifier is not None,
            "version": m.version,
            "dir": str(m.dir) if m.dir is not None else None,
            "labels": list(m.labels),
            "error": self.model_error,
            "loaded_at": m.loaded_at or None,
            "normalizer_match": (meta.get("normalizer_sha256") == normalizer_fingerprint()) if meta else None,
            "switches": self.model_switches,
            "last_error": self.model_last_error,
            "last_error_at": self.model_last_error_at,
        }
        if self._pointer is not None:
            promoted = self._promoted
            out["pointer"] = str(self._pointer)
            out["watching"] = self.watching_model
            if promoted:
                pv = promoted.get("version")
                in_force = (m.dir is not None and _same_dir(m.dir, Path(promoted["model_dir"]))
                            and pv in (None, m.version))
                out["promoted"] = {"dir": promoted["model_dir"], "version": pv,
                                   "promoted_at": promoted.get("promoted_at"), "forced": bool(promoted.get("forced")),
                                   "in_force": in_force}
        return out

    # --------------------------------------------------------------------------- checks
    @staticmethod
    def _matched(rs: RuleSet, norm: Normalized, acct) -> list[Hit]:
        """Keyword + pattern hits of one normalized message (``acct``: compiled account lists)."""
        hits = rs.keywords.match(norm, acct)
        pat = rs.patterns.match(norm)
        if pat:
            hits.extend(pat)
        if has_rtl(norm.original):
            hits.extend(Moderator._displayed(rs, norm.original, acct, {h.rule for h in hits}))
        if hits:
            hits = mark_mentions(hits, norm.original)
        return hits

    @staticmethod
    def _displayed(rs: RuleSet, original: str, acct, seen: set[str]) -> list[Hit]:
        """Hits found only in the text as a phone displays it (right-to-left overrides applied,
        app/engine/bidi.py), spans mapped back to the original."""
        vis = visual(original)
        if vis is None:
            return []
        shown, src = vis
        vnorm = normalize(shown)
        out = []
        for h in rs.keywords.match(vnorm, acct) + rs.patterns.match(vnorm):
            if h.rule in seen or h.span is None:
                continue
            idx = [src[i] for i in range(h.span[0], h.span[1])] or [0]
            a, b = min(idx), max(idx) + 1
            out.append(h._replace(evidence=original[a:b], span=(a, b),
                                  description=f"{h.description} (as displayed: {h.evidence!r})"))
        return out

    def _classified(self, rs: RuleSet, model: ModelInForce, text: str, probs, content,
                    evidence: list[Hit], explain=None) -> list[Hit]:
        """CLF_ hits from one message's probabilities (bounded and given its language by its
        features.Content; ``evidence``: its keyword and pattern hits), explained on demand by
        the same classifier that scored them (``explain``: the explainer its scoring made)."""
        if explain is None:
            clf = model.classifier
            lazy = getattr(clf, "lazy_explainer", None)  # the protocol asks only for explain(text, label, k)
            explain = lazy(text) if lazy is not None else (lambda label: clf.explain(text, label, k=5))
        return rs.policy.classifier_hits(model.labels, probs, explain, content=content, evidence=evidence)

    def content_hits(self, norm: Normalized, rs: RuleSet, account_lists: CustomLists | None = None) -> list[Hit]:
        """Keyword + pattern hits (no classifier, no policy)."""
        acct = rs.keywords.compile_account(account_lists) if account_lists is not None else None
        return self._matched(rs, norm, acct)

    def check(self, text: str, account_lists: CustomLists | None = None,
              extra_hits: Iterable[Hit] | None = None) -> Verdict:
        """The Verdict for one message. ``extra_hits`` (TPL_, ACCT_ ...) go through the same
        policy; their reject action forces the verdict like any other."""
        rs = self._manager.current
        model = self._model  # one read: this check uses this classifier from start to end
        norm = normalize(text)
        hits = self.content_hits(norm, rs, account_lists)
        clf = model.classifier
        if clf is not None:
            explained = getattr(clf, "score_one_explained", None)
            explain = None
            if explained is not None:
                probs, content, explain = explained(norm.text)
            else:
                probs, content = clf.score_one(norm.text)
            hits.extend(self._classified(rs, model, norm.text, probs, content, hits, explain))
        if extra_hits:
            hits.extend(extra_hits)
        return rs.policy.decide(hits, rs.version, model.version)

    @property
    def labels(self) -> tuple[str, ...]:
        """The classifier's labels (the order of its probabilities); () without a model."""
        return self._model.labels

    def evidence_batch(self, texts: Sequence[str], account_lists: CustomLists | None = None,
                       rs: RuleSet | None = None, model: ModelInForce | None = None):
        """(normalized text, keyword + pattern hits, class probabilities or None, features.Content
        or None) per message, before the policy: what check_batch decides on (evaluation replays
        it under other thresholds). ``model``: the model to score with (default: in force)."""
        return [e[:4] for e in self._evidence(texts, account_lists, rs or self._manager.current,
                                              model or self._model, explain=False)]

    def _evidence(self, texts: Sequence[str], account_lists: CustomLists | None, rs: RuleSet,
                  model: ModelInForce, explain: bool):
        """``evidence_batch`` rows with a fifth item: the classifier's explainer of the message
        (None: without ``explain``, without a model, or a classifier that makes none)."""
        acct = rs.keywords.compile_account(account_lists) if account_lists is not None else None
        norms = [normalize(t) for t in texts]
        texts_n = [n.text for n in norms]
        clf = model.classifier
        probs = units = explainers = None
        if clf is not None and norms:
            explained = getattr(clf, "score_batch_explained", None) if explain else None
            if explained is not None:
                probs, units, explainers = explained(texts_n)
            else:
                probs, units = clf.score_batch(texts_n)
        return [(norm.text, self._matched(rs, norm, acct), None if probs is None else probs[i],
                 None if units is None else units[i], None if explainers is None else explainers[i])
                for i, norm in enumerate(norms)]

    def check_batch(self, texts: Sequence[str], account_lists: CustomLists | None = None) -> list[Verdict]:
        """Verdicts for many messages of one account; the classifier runs once per batch."""
        rs = self._manager.current
        model = self._model  # one read for the whole batch
        out: list[Verdict] = []
        for text, hits, probs, content, explain in self._evidence(texts, account_lists, rs, model, explain=True):
            if probs is not None:
                hits.extend(self._classified(rs, model, text, probs, content, hits, explain))
            out.append(rs.policy.decide(hits, rs.version, model.version))
        return out

    # --------------------------------------------------------------------------- status
    def status(self) -> dict:
        return {"rules": self._manager.status(), "model": self.model_status()}

    def close(self) -> None:
        """Stop the rule-file and model-pointer watcher threads."""
        self._manager.close()
        self._model_stop.set()
        t = self._model_thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            t.join(timeout=max(1.0, self._pointer_poll * 2))
        self._model_thread = None

    def __enter__(self) -> "Moderator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------- self-tests


@dataclass(frozen=True)
class SelfTestResult:
    case: SelfTestCase
    ok: bool
    verdict: str
    categories: tuple[str, ...]
    rules: tuple[str, ...]

    @property
    def message(self) -> str:
        c = self.case
        want = (f"{c.category} and verdict {c.verdict or 'not allow'}" if c.kind == "must_match"
                else f"no {c.category}")
        return (f"{'PASS' if self.ok else 'FAIL'} {c.file} {c.kind}: {c.text!r} -> "
                f"{self.verdict} {list(self.categories)} {list(self.rules)} (want {want})")


def run_selftests(moderator: Moderator, cases: Iterable[SelfTestCase] | None = None) -> list[SelfTestResult]:
    """Run the rules' must-match / must-not-match examples against the keyword layer (keywords,
    patterns, policy; the classifier is not consulted)."""
    return selftest_ruleset(moderator.ruleset, cases)


def selftest_ruleset(rs: RuleSet, cases: Iterable[SelfTestCase] | None = None) -> list[SelfTestResult]:
    """The self-test results of one RuleSet (the one in force, or a candidate before a reload
    swaps it in)."""
    if cases is None:
        cases = load_selftests(rs.rules_dir, rs.categories)
    out = []
    for c in cases:
        norm = normalize(c.text)
        hits = Moderator._matched(rs, norm, None)
        v = rs.policy.decide(hits, rs.version, None)
        if c.kind == "must_match":
            ok = c.category in v.categories and (v.verdict == c.verdict if c.verdict else v.verdict != "allow")
        else:
            ok = c.category not in v.categories
        out.append(SelfTestResult(c, ok, v.verdict, v.categories, tuple(h.rule for h in v.reasons)))
    return out


def selftest_gate(rs: RuleSet, cases: Iterable[SelfTestCase] | None = None) -> str | None:
    """None when every self-test example of ``rs`` passes, else a one-line account of the
    failures: the RuleSetManager's gate, so that rules which fail their own examples (an emptied
    or deleted keyword file) never come into force. ``cases``: already loaded examples."""
    results = selftest_ruleset(rs, cases)
    failed = [r for r in results if not r.ok]
    if not failed:
        return None
    first = failed[0].case
    return (f"{len(failed)} of {len(results)} self-test examples fail (first: {first.file} "
            f"{first.kind} {first.text[:60]!r} for {first.category})")


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:  # pragma: no cover
        return str(a) == str(b)
