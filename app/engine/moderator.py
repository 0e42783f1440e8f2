"""Moderator: the content pipeline every caller uses (HTTP pre-send, CLI, audit workers).

    text -> normalize -> keywords + patterns (+ classifier) -> policy -> Verdict

Thread-safe for readers: a check reads the RuleSet in force once (one attribute read) and uses
only immutable compiled objects; a rule change is built by the watcher thread and swapped in.
Build the Moderator before gunicorn forks (``preload_app = True``); the watcher restarts in
each forked child.
"""
from __future__ import annotations

import logging
import os

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from app.engine.bidi import has_rtl, visual
from app.engine.keywords import CustomLists
from app.engine.mention import mark_mentions
from app.engine.normalize import Normalized, normalize
from app.engine.ruleset import RuleSet, RuleSetManager, SelfTestCase, load_selftests
from app.engine.types import Hit, Verdict

__all__ = ["Moderator", "SelfTestResult", "run_selftests", "selftest_gate", "selftest_ruleset"]

log = logging.getLogger("smsguard.engine")


class Moderator:
    def __init__(self, manager: RuleSetManager, classifier: Any = None,
                 model_dir: str | os.PathLike | None = None, model_error: str | None = None):
        self._manager = manager
        self.classifier = classifier
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.model_error = model_error
        self._labels: tuple[str, ...] = tuple(getattr(classifier, "labels", ()) or ())

    # ------------------------------------------------------------------------- creation
    @classmethod
    def from_paths(cls, rules_dir: str | os.PathLike, model_dir: str | os.PathLike | None = None,
                   watch: bool = True, poll_interval: float = 1.0,
                   require_model: bool = True, selftest: bool = True) -> "Moderator":
        """Load the rules (RuleError if they are broken) and, if ``model_dir`` is given, the
        classifier (app.engine.classifier.load_classifier). With ``require_model=False`` a
        missing or broken model is reported in status() and checks run without it. With
        ``selftest`` (the default) rules whose self-test examples fail are refused, at start
        (RuleError) and on every reload (the rules in force stay)."""
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
        return cls(manager, classifier, model_dir=model_dir, model_error=error)

    # ----------------------------------------------------------------------- properties
    @property
    def ruleset(self) -> RuleSet:
        return self._manager.current

    @property
    def ruleset_version(self) -> str:
        return self._manager.current.version

    @property
    def model_version(self) -> str | None:
        c = self.classifier
        return None if c is None else str(getattr(c, "version", None) or "unknown")

    @property
    def manager(self) -> RuleSetManager:
        return self._manager

    def reload(self) -> bool:
        return self._manager.reload()

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

    def _classified(self, rs: RuleSet, clf, text: str, probs, content, evidence: list[Hit]) -> list[Hit]:
        """CLF_ hits from one message's probabilities (bounded and given its language by its
        features.Content; ``evidence``: its keyword and pattern hits), explained on demand."""
        return rs.policy.classifier_hits(self._labels, probs, lambda label: clf.explain(text, label, k=5),
                                         content=content, evidence=evidence)

    def content_hits(self, norm: Normalized, rs: RuleSet, account_lists: CustomLists | None = None) -> list[Hit]:
        """Keyword + pattern hits (no classifier, no policy)."""
        acct = rs.keywords.compile_account(account_lists) if account_lists is not None else None
        return self._matched(rs, norm, acct)

    def check(self, text: str, account_lists: CustomLists | None = None,
              extra_hits: Iterable[Hit] | None = None) -> Verdict:
        """The Verdict for one message. ``extra_hits`` (TPL_, ACCT_ ...) go through the same
        policy; their reject action forces the verdict like any other."""
        rs = self._manager.current
        norm = normalize(text)
        hits = self.content_hits(norm, rs, account_lists)
        clf = self.classifier
        if clf is not None:
            probs, content = clf.score_one(norm.text)
            hits.extend(self._classified(rs, clf, norm.text, probs, content, hits))
        if extra_hits:
            hits.extend(extra_hits)
        return rs.policy.decide(hits, rs.version, self.model_version)

    @property
    def labels(self) -> tuple[str, ...]:
        """The classifier's labels (the order of its probabilities); () without a model."""
        return self._labels

    def evidence_batch(self, texts: Sequence[str], account_lists: CustomLists | None = None,
                       rs: RuleSet | None = None):
        """(normalized text, keyword + pattern hits, class probabilities or None, features.Content
        or None) per message, before the policy: what check_batch decides on (evaluation replays
        it under other thresholds)."""
        rs = rs or self._manager.current
        acct = rs.keywords.compile_account(account_lists) if account_lists is not None else None
        norms = [normalize(t) for t in texts]
        clf = self.classifier
        probs, units = clf.score_batch([n.text for n in norms]) if clf is not None and norms else (None, None)
        out = []
        for i, norm in enumerate(norms):
            out.append((norm.text, self._matched(rs, norm, acct), None if probs is None else probs[i],
                        None if units is None else units[i]))
        return out

    def check_batch(self, texts: Sequence[str], account_lists: CustomLists | None = None) -> list[Verdict]:
        """Verdicts for many messages of one account; the classifier runs once per batch."""
        rs = self._manager.current
        clf = self.classifier
        model_version = self.model_version
        out: list[Verdict] = []
        for text, hits, probs, content in self.evidence_batch(texts, account_lists, rs):
            if probs is not None:
                hits.extend(self._classified(rs, clf, text, probs, content, hits))
            out.append(rs.policy.decide(hits, rs.version, model_version))
        return out

    # --------------------------------------------------------------------------- status
    def status(self) -> dict:
        c = self.classifier
        model = {
            "loaded": c is not None,
            "version": self.model_version,
            "dir": str(self.model_dir) if self.model_dir is not None else None,
            "labels": list(self._labels),
            "error": self.model_error,
        }
        return {"rules": self._manager.status(), "model": model}

    def close(self) -> None:
        """Stop the rule-file watcher thread."""
        self._manager.close()

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



