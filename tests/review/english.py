"""The pages are in Simplified Chinese by default (issue 15, item 6). Tests that assert the
pages' English wording ask for English the way a reviewer does: the language cookie the
header's switcher sets (app/web/i18n.py). ``english_test_clients(monkeypatch)`` makes every
``app.test_client()`` created during the test carry it; a test of the default language makes
its client with ``chinese_client(app)`` (no cookie)."""
from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from app.web.i18n import COOKIE


class EnglishClient(FlaskClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_cookie(COOKIE, "en")


def english_test_clients(monkeypatch) -> None:
    monkeypatch.setattr(Flask, "test_client_class", EnglishClient)


def chinese_client(app) -> FlaskClient:
    """A test client with no language chosen: the pages' default, Chinese."""
    return FlaskClient(app, app.response_class, use_cookies=True)
