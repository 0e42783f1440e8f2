"""A small client that signs every request (docs/signing.md). Standard library only.

    from app.client import Client
    c = Client("http://127.0.0.1:8000", "pk_...", "sk_...")
    c.post("/v1/moderate", {"text": "澳门百家乐"})
"""
from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from app.services.keys import sign


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ApiError(Exception):
    def __init__(self, response: Response):
        body = {}
        try:
            body = response.json() or {}
        except ValueError:
            pass
        super().__init__(f"{response.status} {body.get('title', '')}: {body.get('detail', response.body[:200])}")
        self.response = response
        self.problem = body


class Client:
    def __init__(self, base_url: str, public_key: str, private_key: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.public_key = public_key
        self.private_key = private_key
        self.timeout = timeout

    def signed_headers(self, method: str, path: str, query: list[tuple[str, str]], body: bytes) -> dict:
        ts = str(int(time.time()))
        nonce = secrets.token_hex(16)
        return {"X-Api-Key": self.public_key, "X-Timestamp": ts, "X-Nonce": nonce,
                "X-Signature": sign(self.private_key, method, path, query, ts, nonce, body)}

    def request(self, method: str, path: str, body=None, params: dict | None = None,
                raise_for_status: bool = True) -> Response:
        method = method.upper()
        parts = urlsplit(path)
        # a query written in the path ("/v1/signatures?status=pending") is signed like params
        query = parse_qsl(parts.query, keep_blank_values=True) + [(k, str(v)) for k, v in (params or {}).items()]
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = self.signed_headers(method, parts.path, query, raw)
        if raw:
            headers["Content-Type"] = "application/json"
        url = self.base_url + parts.path + ("?" + urlencode(query) if query else "")
        req = urllib.request.Request(url, data=raw or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                resp = Response(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            resp = Response(e.code, dict(e.headers), e.read())
        if raise_for_status and not resp.ok:
            raise ApiError(resp)
        return resp

    def get(self, path: str, params: dict | None = None, **kw):
        return self.request("GET", path, params=params, **kw).json()

    def post(self, path: str, body=None, **kw):
        return self.request("POST", path, body=body, **kw).json()

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw).json()
