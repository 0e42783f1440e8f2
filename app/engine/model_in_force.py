"""The model in force and the checks a model folder passes before a running service switches
to it (``smsguard model promote``; docs/operations.md): one immutable ``ModelInForce`` per
switch, the promotion pointer file, and the normalizer fingerprints a switch accepts. Used by
app.engine.moderator (which swaps the reference) and the lifecycle commands."""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ModelInForce", "ModelSwitchError", "NO_MODEL", "accepted_fingerprints", "load_checked",
           "normalizer_fingerprint", "read_pointer", "stamp"]


def _fingerprint_of_code() -> str:
    """sha256 of the normalize module this process imported (what the classifier's input is
    made by); app.training.dataset.normalizer_fingerprint records the same hash in a model."""
    import app.engine.normalize as _n

    try:
        return hashlib.sha256(Path(_n.__file__).read_bytes()).hexdigest()
    except OSError:  # pragma: no cover - a module without a readable file
        return ""


_NORMALIZER_SHA256 = _fingerprint_of_code()


def normalizer_fingerprint() -> str:
    """The normalizer fingerprint this process runs with (taken when the engine was imported)."""
    return _NORMALIZER_SHA256


class ModelSwitchError(RuntimeError):
    """A model that cannot be switched to (unreadable, mismatched, not the promoted version)."""


@dataclass(frozen=True)
class ModelInForce:
    """The classifier a check uses, with what describes it: replaced as one reference."""

    classifier: Any = None
    dir: Path | None = None
    loaded_at: float = 0.0
    # derived once (read on every check)
    version: str | None = field(init=False, default=None)
    labels: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        c = self.classifier
        object.__setattr__(self, "version", None if c is None else str(getattr(c, "version", None) or "unknown"))
        object.__setattr__(self, "labels", tuple(getattr(c, "labels", ()) or ()))

    @property
    def metadata(self) -> dict:
        return dict(getattr(self.classifier, "metadata", None) or {})


NO_MODEL = ModelInForce()


def read_pointer(path: str | os.PathLike) -> dict | None:
    """The promoted model named by a pointer file: {"model_dir": ..., "version": ..., ...}
    (``smsguard model promote`` writes JSON; a file holding just a folder path is accepted too).
    None when the file does not exist; ValueError when it cannot be read as either."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"cannot read {p}: {exc.strerror}") from None
    raw = raw.strip()
    if not raw:
        raise ValueError(f"{p} is empty")
    if raw.startswith("{"):
        try:
            d = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p}: not JSON ({exc.msg})") from None
        if not isinstance(d, dict) or not isinstance(d.get("model_dir"), str) or not d["model_dir"]:
            raise ValueError(f"{p}: no model_dir")
        return d
    if "\n" in raw:
        raise ValueError(f"{p}: expected one folder path or a JSON object")
    return {"model_dir": raw}


def accepted_fingerprints(configured_model_dir: str | os.PathLike | None = None) -> set[str]:
    """The normalizer fingerprints a switch accepts: this code's, and that of the model the
    service is configured with (it already runs here)."""
    out = {_NORMALIZER_SHA256} if _NORMALIZER_SHA256 else set()
    if configured_model_dir is not None:
        try:
            meta = json.loads((Path(configured_model_dir) / "metadata.json").read_text(encoding="utf-8"))
            if meta.get("normalizer_sha256"):
                out.add(str(meta["normalizer_sha256"]))
        except (OSError, ValueError):
            pass
    return out


def load_checked(model_dir: str | os.PathLike, categories: Iterable[str] | None = None,
                 accepted: Iterable[str] | None = None, expect: dict | None = None) -> ModelInForce:
    """Load a model folder for switching: ModelSwitchError (one line) when it cannot be read,
    does not match this code (``load_classifier``: format, label set, feature code,
    scikit-learn, model file hash; ``categories``: the rules' categories), was trained on a
    normalizer whose fingerprint is not in ``accepted`` (default: this code's), or is not the
    version / model file ``expect`` names (the promotion)."""
    from app.engine.classifier import load_classifier

    d = Path(model_dir)
    try:
        clf = load_classifier(d, categories=categories)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the model is refused
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelSwitchError(f"{d}: {type(exc).__name__}: {first}".rstrip(": ")) from None
    meta = getattr(clf, "metadata", None) or {}
    if str(meta.get("normalizer", "")).startswith("standin"):
        raise ModelSwitchError(f"{d}: trained on the stand-in normalizer ({meta.get('normalizer')}); retrain")
    fp = meta.get("normalizer_sha256")
    ok = set(accepted) if accepted is not None else {_NORMALIZER_SHA256}
    if not fp or fp not in ok:
        raise ModelSwitchError(f"{d}: normalizer fingerprint {str(fp or '(none)')[:12]} does not match the "
                               f"normalizer this service runs ({_NORMALIZER_SHA256[:12]}); retrain with this code")
    if expect:
        want_v, want_sha = expect.get("version"), expect.get("model_sha256")
        if want_v and want_v != clf.version:
            raise ModelSwitchError(f"{d} holds {clf.version}, not the promoted {want_v} (the folder changed after "
                                   "promotion; promote it again)")
        if want_sha and want_sha != meta.get("model_sha256"):
            raise ModelSwitchError(f"{d}: model file differs from the promoted one; promote it again")
    return ModelInForce(clf, d, time.time())


def stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
