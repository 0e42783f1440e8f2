"""Fixtures for the pre-send, complaint and enforcement tests (issue 6)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT
from app.store.models import Account, Signature, Template

VERIFY = "您的验证码是${code}，5分钟内有效，请勿泄露。"
PROMO = "双十一全场五折，会员再享好礼，详见官网。拒收请回复R"
NOTICE = "您的订单${order}已发货，预计${day}送达。"
# 12:00 in Shanghai (04:00 UTC): inside the default 08:00-21:00 window
NOON_CN = datetime(2026, 3, 2, 4, 0, tzinfo=UTC).isoformat()
# 23:00 in Shanghai: outside it
NIGHT_CN = datetime(2026, 3, 2, 15, 0, tzinfo=UTC).isoformat()


class Clock:
    """The pre-send service's clock in tests: ``clock.now`` is what the service calls now."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def clock(request):
    """Every pre-send check in these tests runs at 12:00 Shanghai on 2026-03-02 unless a test
    moves the clock (send_at must lie near the check's own time)."""
    c = Clock(datetime(2026, 3, 2, 4, 0, tzinfo=UTC))
    if "app" in request.fixturenames or "tenant" in request.fixturenames:
        app = request.getfixturevalue("app")
        from app.api.messages import service

        with app.app_context():
            service().clock = c
    return c


def make_template(db, account: str, type: str = "verification", content: str = VERIFY,
                  variables: dict | None = None, status: str = "approved", sig_status: str = "approved",
                  sig_name: str = "阿克米") -> int:
    with db.session() as s:
        if s.get(Account, account) is None:
            s.add(Account(id=account, name=account))
            s.flush()
        sig = Signature(account_id=account, name=sig_name, status=sig_status)
        s.add(sig)
        s.flush()
        tpl = Template(account_id=account, signature_id=sig.id, type=type, content=content,
                       variables=variables if variables is not None else {"code": "code"}, status=status)
        s.add(tpl)
        s.flush()
        return tpl.id


@pytest.fixture
def templates(db, tenant):
    """ACME's approved verification, promotional and notification templates."""
    return {
        "verification": make_template(db, "ACME"),
        "promotional": make_template(db, "ACME", "promotional", PROMO, {}),
        "notification": make_template(db, "ACME", "notification", NOTICE, {"order": "code", "day": "date"}),
    }


@pytest.fixture
def sending_rules(app, tmp_path):
    """write(yaml_text): point the pre-send service at a policy.yaml of the test's own."""
    from app.api.messages import service

    def write(text: str) -> Path:
        d = tmp_path / "rules"
        d.mkdir(exist_ok=True)
        (d / "policy.yaml").write_text(text, encoding="utf-8")
        with app.app_context():
            service().rules_dir = d
        return d

    return write


def check(client, template_id, phone="+8613800138000", params=None, send_at=NOON_CN, **extra):
    body = {"template_id": template_id, "phone": phone, "params": params if params is not None else {"code": "482915"},
            "send_at": send_at}
    body.update(extra)
    return client.post("/v1/messages/check", body)


def rules(resp) -> list[str]:
    return [r["rule"] for r in resp.get_json()["reasons"]]
