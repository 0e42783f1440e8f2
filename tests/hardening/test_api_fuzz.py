"""API fuzzing with schemathesis (v4) against the app's own /openapi.json, in-process (WSGI, no
network). Every generated request is signed with an admin key exactly as docs/signing.md says
(a fresh nonce each time), so the fuzzer reaches the views instead of bouncing off the 401.

Checks: no 5xx on any operation (not_a_server_error) and every documented response matches its
schema (response_schema_conformance). Bounded: a few examples per operation and mode, no shrinking,
so the whole run stays well under a minute per database engine.

(The schemathesis pytest plugin is not used: with pytest 9 its parametrize wrapper fails on
``request.node._nodeid``; the operations' hypothesis strategies are driven directly instead.)"""
from __future__ import annotations

import json
import os
import secrets
import time
from urllib.parse import unquote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.services.keys import sign

# per operation and generation mode (positive, negative); SMSGUARD_FUZZ_EXAMPLES=200 for a long run
EXAMPLES = int(os.environ.get("SMSGUARD_FUZZ_EXAMPLES", "8"))
CONFIG = {"generation": {"allow-x00": True}, "phases": {"coverage": {"enabled": False}}}


@pytest.fixture
def api_schema(app):
    from schemathesis.config import SchemathesisConfig

    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG))


def _pairs(query) -> list[tuple[str, str]]:
    """The query as the (name, value) pairs that go on the wire (lists repeat the name)."""
    if not query:
        return []
    items = query.items() if isinstance(query, dict) else query
    out = []
    for k, v in items:
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            if isinstance(x, bool):
                x = "true" if x else "false"
            out.append((str(k), "" if x is None else str(x)))
    return out


def send_signed(app, case, key):
    """Send ``case`` through the Flask test client, signed with ``key`` (public, private)."""
    kw = case.as_transport_kwargs()
    body = kw.get("data", b"")
    if "json" in kw:
        body = json.dumps(kw["json"]).encode()
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    body = body or b""
    pairs = _pairs(kw.get("query_string"))
    headers = {k: v for k, v in (kw.get("headers") or {}).items()
               if k.lower() not in ("x-api-key", "x-timestamp", "x-nonce", "x-signature")}
    path = kw["path"]
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    headers.update({"X-Api-Key": key[0], "X-Timestamp": ts, "X-Nonce": nonce,
                    "X-Signature": sign(key[1], case.method, unquote(path), pairs, ts, nonce, body)})
    return app.test_client().open(path, method=case.method, data=body or None, query_string=pairs,
                                  headers=headers), body, pairs


def test_no_server_errors_and_responses_match_the_schema(api_schema, app, admin):
    """Every operation of /openapi.json, positive and negative data: no 5xx, documented
    responses match their schemas. Failures are collected (not shrunk, to stay bounded) and
    reported with the request that caused them."""
    key = (admin.public_key, admin.private_key)
    failures: dict[tuple, str] = {}
    operations = 0
    for result in api_schema.get_all_operations():
        op = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy(generation_mode=mode))
            def run(case):
                response, body, pairs = send_signed(app, case, key)
                try:
                    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported below
                    first = str(exc).strip().splitlines()
                    k = (op.label, response.status_code, type(exc).__name__, first[0] if first else "")
                    failures.setdefault(k, (
                        f"{op.label} [{mode.value}] -> {response.status_code}: {' | '.join(first[:6])}\n"
                        f"    request: {case.method} {case.formatted_path} query={pairs!r} body={body[:300]!r}\n"
                        f"    response: {response.get_data(as_text=True)[:300]}"))

            run()
    assert operations >= 10
    assert not failures, f"{len(failures)} distinct failure(s):\n" + "\n".join(failures.values())


# ------------------------------------------------------- regressions of what the fuzzer found

def test_account_lists_can_be_added_and_removed(admin):
    """POST/DELETE /v1/accounts/<id>/lists answered 500: events.record(kind=...) clashed with
    the event's own ``kind`` argument."""
    assert admin.post("/v1/accounts", {"id": "FUZZ"}).status_code == 201
    r = admin.post("/v1/accounts/FUZZ/lists", {"kind": "block", "terms": ["菠菜网"], "category": "gambling"})
    assert r.status_code == 201, r.get_data(as_text=True)
    entry = r.get_json()[0]["id"]
    assert admin.delete(f"/v1/accounts/FUZZ/lists/{entry}").status_code == 204


@pytest.mark.parametrize("path", ["/v1/signatures/3319451738457800", "/v1/templates/105036425874824773632"])
def test_ids_past_the_column_range_are_404(admin, path):
    r = admin.get(path)
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_offsets_past_the_column_range_are_422(admin):
    r = admin.get("/v1/templates", query={"offset": "2136963810863404285952", "account": "ACME"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json", r.get_data(as_text=True)


@pytest.mark.parametrize("path,body", [
    ("/v1/moderate", b'{"text": "\\u8d4c\\ud800\\u535a"}'),
    ("/v1/messages/check", b'{"template_id": 1, "params": {"code": "a\\udfffb"}, "phone": "+8613800138000"}'),
    ("/v1/moderate", b'{"text": "ok", "\\udc00": 1}'),
])
def test_lone_surrogates_are_refused_up_front(tenant, path, body):
    """A lone surrogate escape parsed into the text could not be answered in UTF-8 (the pre-send
    check answered 500 when a param held one)."""
    r = tenant.post(path, raw=body)
    assert r.status_code == 400 and r.mimetype == "application/problem+json"
    assert "surrogate" in r.get_json()["detail"]


def test_surrogate_pairs_are_fine(tenant):
    r = tenant.post("/v1/moderate", raw=b'{"text": "\\ud83d\\ude00 \\u4f60\\u597d"}')
    assert r.status_code == 200


def test_deeply_nested_json_is_a_400_not_a_500(tenant):
    body = b"[" * 30_000 + b"]" * 30_000
    r = tenant.post("/v1/moderate", raw=body)
    assert r.status_code == 400 and r.mimetype == "application/problem+json"


def test_account_block_terms_block_whatever_their_category_and_unknown_categories_are_422(admin):
    """Issue 14, item 12: a block term filed under `marketing` never blocked although its reason
    said reject, and a category `nonsense` was accepted."""
    assert admin.post("/v1/accounts", {"id": "BLK"}).status_code == 201
    r = admin.post("/v1/accounts/BLK/lists", {"kind": "block", "terms": ["周末大促"], "category": "nonsense"})
    assert r.status_code == 422 and "category" in r.get_json()["errors"]
    r = admin.post("/v1/accounts/BLK/lists", {"kind": "block", "terms": ["周末大促"], "category": "marketing"})
    assert r.status_code == 201
    v = admin.post("/v1/moderate", {"text": "周末大促，全场五折", "account": "BLK"}).get_json()
    assert v["verdict"] == "reject" and v["forced_by"] == "KW_ACCOUNT_BLOCK", v
