"""The moderation engine: a pure library (no Flask, no database).

    from app.engine import Moderator, CustomLists, Hit, Verdict
    m = Moderator.from_paths("rules", model_dir=None, watch=True)
    m.check("澳门百家乐上线").to_dict()

Submodules: types (Hit, Verdict), normalize, ruleset (load/validate/version, hot reload),
keywords (automaton, allow-list, per-account lists), patterns, policy, moderator, classifier.
Names are imported lazily so ``import app.engine.normalize`` stays light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Moderator", "CustomLists", "Hit", "Verdict", "RuleError", "normalize", "load_ruleset"]

_LAZY = {
    "Moderator": "app.engine.moderator",
    "CustomLists": "app.engine.keywords",
    "Hit": "app.engine.types",
    "Verdict": "app.engine.types",
    "RuleError": "app.engine.ruleset",
    "load_ruleset": "app.engine.ruleset",
    "normalize": "app.engine.normalize",
}

if TYPE_CHECKING:  # pragma: no cover
    from app.engine.keywords import CustomLists
    from app.engine.moderator import Moderator
    from app.engine.normalize import normalize
    from app.engine.ruleset import RuleError, load_ruleset
    from app.engine.types import Hit, Verdict


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'app.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(mod), name)
