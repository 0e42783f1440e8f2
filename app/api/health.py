"""Liveness, readiness, metrics and the local assets of the interactive API docs."""
from __future__ import annotations

import functools

from flask import Blueprint, Response, current_app, jsonify, send_from_directory

from app import metrics

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@functools.cache
def _head_revision() -> str:
    from app.store import migrate

    return migrate.head_revision()


@bp.get("/readyz")
def readyz():
    checks: dict = {}
    warnings: list[str] = []
    ok = True
    db = current_app.extensions["smsguard.db"]
    try:
        # the database takes writes (on a read-only disk every pre-send check fails closed) ...
        read_only = db.unwritable()
        if read_only:
            ok = False
            checks["database"] = {"ok": False, "error": f"read-only: {read_only}"}
        else:
            # ... AND holds the migrated schema (a file lost under the service, or an empty one,
            # is not ready)
            revision = db.schema_revision()
            head = _head_revision()
            checks["database"] = {"ok": revision == head, "schema": revision, "expected": head}
            ok = revision == head
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        ok = False
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    moderator = current_app.extensions.get("smsguard.moderator")
    if moderator is None:
        ok = False
        checks["rules"] = {"ok": False, "error": "engine not loaded"}
    else:
        st = moderator.status()
        rules_ok = bool(st["rules"].get("loaded"))
        checks["rules"] = {"ok": rules_ok, **st["rules"]}
        if st["rules"].get("last_error"):
            # the files on disk are broken or fail their self-tests: the last good rules still
            # answer (so the instance stays ready), and the failure is named here and in metrics
            checks["rules"]["reload_failed"] = True
            warnings.append(f"rules on disk not loaded, version {st['rules']['version']} stays in force: "
                            f"{st['rules']['last_error']}")
        model = st.get("model") or {}
        model_needed = current_app.config["SMSGUARD"].model_dir is not None
        model_ok = bool(model.get("loaded")) or not model_needed
        checks["model"] = {"ok": model_ok, **model}
        promoted = model.get("promoted")
        if promoted and not promoted.get("in_force"):
            # `smsguard model promote` named another model and this worker has not switched to
            # it: still loading, or refused (the model in force keeps answering, so still ready)
            checks["model"]["switch_pending"] = True
            why = model.get("last_error") or "switching"
            warnings.append(f"model {promoted.get('version') or promoted.get('dir')} promoted, "
                            f"{model.get('version')} stays in force in this worker: {why}")
        elif model.get("last_error"):
            warnings.append(f"model switch refused, {model.get('version')} stays in force: {model['last_error']}")
        ok = ok and rules_ok and model_ok
    body = {"status": "ready" if ok else "not ready", "checks": checks}
    if moderator is not None:
        # the model version in force in the worker that answered (and the promoted one while
        # it is not in force here)
        body["model_version"] = checks["model"].get("version")
        promoted = checks["model"].get("promoted")
        if promoted and not promoted.get("in_force"):
            body["model_promoted"] = promoted.get("version") or promoted.get("dir")
    if warnings:
        body["warnings"] = warnings
    return jsonify(body), 200 if ok else 503


@bp.get("/metrics")
def prometheus():
    data, ctype = metrics.render()
    return Response(data, content_type=ctype)


@bp.get("/docs/problems")
def problem_types():
    """The page the problem bodies' `type` URIs point at: every problem type and what it means."""
    from html import escape

    from app.api.problems import MEANINGS, SLUGS, TITLES

    rows = "".join(
        f'<dt id="{SLUGS[st]}"><code>{st}</code> {escape(TITLES[st])} '
        f'<a href="#{SLUGS[st]}"><code>/docs/problems#{SLUGS[st]}</code></a></dt><dd>{escape(MEANINGS[st])}</dd>'
        for st in sorted(SLUGS))
    page = ('<!doctype html><html lang="en"><meta charset="utf-8"><title>smsguard problem types</title>'
            '<h1>Problem types</h1><p>Every error of the API is an RFC 9457 problem '
            '(<code>application/problem+json</code>): <code>type</code>, <code>title</code>, '
            '<code>status</code>, <code>detail</code>, and sometimes <code>reason</code> or <code>errors</code>.</p>'
            f'<dl>{rows}</dl></html>')
    return Response(page, content_type="text/html; charset=utf-8")


@bp.get("/docs/assets/<path:filename>")
def docs_assets(filename: str):
    import swagger_ui_bundle

    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)
