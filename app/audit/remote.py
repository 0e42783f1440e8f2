"""Outputs at an fsspec URL (``--out s3://bucket/audits/f.jsonl``): the audit writes to a local
staging folder under the instance directory (the checkpoint stays there too, so an interrupted run
resumes on the same machine) and uploads at the end: summary, what-if changes and report first,
the findings last, each a whole file, so a reader that sees the findings sees the rest. A failed
upload loses nothing: the message names the local copies."""
from __future__ import annotations

import hashlib
from pathlib import Path

import fsspec

__all__ = ["is_url", "staging_path", "sibling", "check_writable", "upload"]


def is_url(p) -> bool:
    return p is not None and "://" in str(p)


def staging_path(url: str, instance_dir: Path) -> Path:
    """The local file that stands for ``url`` until the upload (stable per URL: resumable)."""
    d = Path(instance_dir) / "audit-staging" / hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    d.mkdir(parents=True, exist_ok=True)
    return d / url.rstrip("/").rsplit("/", 1)[-1]


def sibling(url: str, name: str) -> str:
    """The URL of file ``name`` in the same folder as ``url``."""
    return url.rstrip("/").rsplit("/", 1)[0] + "/" + name


def check_writable(url: str) -> None:
    """A clear error before any work for an unknown protocol or a missing folder."""
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except Exception as exc:  # unknown protocol, missing optional driver
        raise ValueError(f"cannot write {url}: {type(exc).__name__}: {exc}") from None
    if url.endswith("/"):
        raise ValueError(f"cannot write {url}: it names a folder, not a file")
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent and getattr(fs, "auto_mkdir", None) is False and not fs.isdir(parent):
        raise ValueError(f"cannot write {url}: folder {parent} does not exist")


def upload(pairs: list[tuple[Path, str]]) -> None:
    """Upload (local file, URL) pairs in order, removing each local file once it is up."""
    for local, url in pairs:
        if not Path(local).exists():
            continue
        try:
            fs, path = fsspec.core.url_to_fs(url)
            fs.put_file(str(local), path)
        except Exception as exc:
            raise OSError(f"upload of {local.name} to {url} failed ({type(exc).__name__}: {exc}); "
                          f"the outputs not yet uploaded are in {Path(local).parent}") from None
        Path(local).unlink()
