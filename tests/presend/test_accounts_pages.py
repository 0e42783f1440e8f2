"""The accounts pages as a compliance team uses them (issue 15, item 5): states told apart,
numbers written for people, phone numbers masked for reviewers and revealed to admins only on an
explicit, recorded request, suspend and reinstate confirmed before anything changes, and the
thresholds a page shows agreeing with the notes of the changes they cause."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.store.models import Account, AccountStateChange, Complaint, Event
from app.web.accounts import human_count, human_rate, mask_phone

from .test_enforcement import LADDER, complain
from .test_web_accounts import _csrf, _login

CN_PHONE, UK_PHONE = "+8613812345678", "+447700900789"
CSS = Path(__file__).resolve().parents[2] / "app" / "web" / "static" / "web.css"


@pytest.fixture(autouse=True)
def _english_pages(monkeypatch):
    """These tests assert the pages' English wording: their clients ask for English (the
    language cookie; the default is Chinese, tests/review/test_i18n.py)."""
    from tests.review.english import english_test_clients

    english_test_clients(monkeypatch)


@pytest.fixture
def acme(db):
    with db.session() as s:
        s.add(Account(id="ACME", name="Acme Ltd"))
        s.flush()
        s.add(Complaint(account_id="ACME", phone=CN_PHONE, source="carrier", reason="spam"))
        s.add(Complaint(account_id="ACME", phone=UK_PHONE, source="user", reason="unwanted"))
    with db.session() as s:
        return {c.phone: c.id for c in s.scalars(sa.select(Complaint))}


def _status(db, account="ACME") -> str:
    with db.session() as s:
        return s.get(Account, account).status


def _changes(db, account="ACME") -> list[AccountStateChange]:
    with db.session() as s:
        return list(s.scalars(sa.select(AccountStateChange).where(AccountStateChange.account_id == account)
                              .order_by(AccountStateChange.id)))


# ------------------------------------------------------------------------- human numbers


@pytest.mark.parametrize("per_million, shown", [
    (None, "–"),
    (0, "0 per million"),
    (0.25, "0.25 per million"),
    (3 / 1_000_000 * 1e6, "3 per million"),       # float noise is not 2.99
    (0.2496, "0.249 per million"),                # cut, never rounded up onto a threshold of 0.25
    (99.9, "99.9 per million"),
    (250, "2.5 per 10k"),
    (15_000, "1.5 per 100"),
    (2e6, "2 per message"),                       # two complaints per message: the old '2e+06 per million'
    (1e15, "1,000,000,000 per message"),
    (1e-9, "< 0.001 per million"),
    (float("nan"), "–"), (float("inf"), "–"), (-1, "–"), ("x", "–"),
])
def test_complaint_rates_read_as_people_write_them(per_million, shown):
    assert human_rate(per_million) == shown


def test_every_rate_is_short_and_free_of_exponents():
    for exp in range(-3, 16):
        for mant in (1, 1.5, 2.5, 9.99):
            text = human_rate(mant * 10 ** exp)
            assert "e+" not in text and "e-" not in text, text
            figure = text.split(" per ")[0].replace(",", "")
            assert float(figure) < 100 or text.endswith("per message"), text


@pytest.mark.parametrize("n, shown", [(None, "–"), (0, "0"), (7, "7"), (1000, "1,000"), (1_000_000, "1,000,000"),
                                      (10 ** 15, "1,000,000,000,000,000"), ("12", "12"), ("x", "–"),
                                      (math.inf, "–")])
def test_counts_have_thousands_separators(n, shown):
    assert human_count(n) == shown


@pytest.mark.parametrize("phone, region, shown", [
    (CN_PHONE, "CN", "138****5678"),
    ("13812345678", "CN", "138****5678"),
    (UK_PHONE, "CN", "+44 ****789"),
    ("+861088886666", "CN", "****666"),          # a Beijing landline
    (CN_PHONE, "GB", "+86 138****5678"),
    (UK_PHONE, "GB", "****789"),
    ("12", "CN", "****"), ("not a phone", "CN", "****"), ("", "CN", "–"), (None, "CN", "–"),
])
def test_phone_masking(phone, region, shown):
    masked = mask_phone(phone, region)
    assert masked == shown
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    if len(digits) >= 7:  # never enough of the number to call it
        assert digits[-8:] not in masked.replace(" ", "")


# ------------------------------------------------------------------------------ the pages


def test_states_are_distinct_badges_with_text_not_only_colour(app, db, acme):
    with db.session() as s:
        for st in ("warned", "suspended", "terminated"):
            s.add(Account(id=f"X-{st}", name=st, status=st))
    c = _login(app, db, "rita", "reviewer")
    page = c.get("/accounts/").text
    for st in ("active", "warned", "suspended", "terminated"):
        assert f'<span class="status status-{st}">{st}</span>' in page
    css = CSS.read_text(encoding="utf-8")
    backgrounds, marks = {}, {}
    for st in ("active", "warned", "suspended", "terminated"):
        m = re.search(rf"\.status-{st}\s*{{([^}}]*)}}", css)
        assert m, f"no style for the {st} badge"
        backgrounds[st] = re.search(r"background:\s*([^;]+);", m.group(1)).group(1).strip()
        mark = re.search(rf"\.status-{st}::before\s*{{\s*content:\s*\"([^\"]+)\"", css)
        assert mark, f"the {st} badge has no mark besides its colour"
        marks[st] = mark.group(1)
    assert len(set(backgrounds.values())) == 4 and len(set(marks.values())) == 4


def test_pages_print_human_numbers(app, db, acme):
    from datetime import UTC, datetime

    from app.store.models import DailyVolume

    with db.session() as s:
        s.add(DailyVolume(account_id="ACME", day=datetime.now(UTC).date(), allowed=8_000, rejected=0))
    c = _login(app, db, "rita", "reviewer")
    detail = c.get("/accounts/ACME").text
    # 2 complaints in 8,000 allowed messages: 250 per million, i.e. 2.5 per 10k
    assert re.search(r'id="allowed-count">8,000<', detail)
    assert "2.5 per 10k" in detail and "e+" not in detail
    listing = c.get("/accounts/").text
    assert "8,000" in listing and "2.5 per 10k" in listing and "e+" not in listing


def test_the_accounts_link_is_in_every_page_nav(app, db, acme):
    for name, role in (("rita", "reviewer"), ("ann", "admin")):
        c = _login(app, db, name, role)
        for path in ("/review/", "/accounts/", "/accounts/ACME"):
            page = c.get(path)
            assert page.status_code == 200, (path, page.status_code)
            nav = re.search(r'<nav class="nav">(.*?)</nav>', page.text, re.S).group(1)
            assert re.search(r'<a href="/accounts/" id="nav-accounts"[^>]*>Accounts</a>', nav), (role, path)


def test_reviewers_see_phone_numbers_masked_and_cannot_reveal(app, db, acme):
    c = _login(app, db, "rita", "reviewer")
    page = c.get("/accounts/ACME").text
    assert "138****5678" in page and "+44 ****789" in page
    assert "13812345678" not in page and "7700900789" not in page
    assert "/reveal" not in page
    r = c.post(f"/accounts/ACME/complaints/{acme[CN_PHONE]}/reveal", data={"csrf_token": _csrf(page)})
    assert r.status_code == 403 and "13812345678" not in r.text
    with db.session() as s:
        reveals = sa.select(sa.func.count()).select_from(Event).where(Event.kind == "account.phone_revealed")
        assert s.scalar(reveals) == 0


def test_an_admin_reveals_one_number_and_the_reveal_is_recorded(app, db, acme):
    c = _login(app, db, "ann", "admin")
    page = c.get("/accounts/ACME").text
    assert "13812345678" not in page and "138****5678" in page  # admins too see masks until they ask
    cid = acme[CN_PHONE]
    assert f"/accounts/ACME/complaints/{cid}/reveal" in page
    # a reveal is a POST with the page's CSRF token, nothing a link or a crawler could do
    assert c.post(f"/accounts/ACME/complaints/{cid}/reveal").status_code == 400
    assert c.get(f"/accounts/ACME/complaints/{cid}/reveal").status_code == 405
    r = c.post(f"/accounts/ACME/complaints/{cid}/reveal", data={"csrf_token": _csrf(page)})
    assert r.status_code == 200
    assert f'id="phone-{cid}">{CN_PHONE}<' in r.text       # this one, in full
    assert "7700900789" not in r.text and "+44 ****789" in r.text  # the other stays masked
    assert r.headers["Cache-Control"] == "no-store"
    with db.session() as s:
        ev = s.scalars(sa.select(Event).where(Event.kind == "account.phone_revealed")).all()
    assert len(ev) == 1
    e = ev[0]
    assert (e.actor, e.account_id, e.subject) == ("user:ann", "ACME", f"complaint:{cid}") and e.at is not None
    assert e.data == {"complaint_id": cid, "phone_masked": "138****5678"}
    # the page shown afterwards masks it again
    assert "13812345678" not in c.get("/accounts/ACME").text
    # another account's complaint is not reachable through this one
    with db.session() as s:
        s.add(Account(id="OTHER", name="o"))
    assert c.post(f"/accounts/OTHER/complaints/{cid}/reveal", data={"csrf_token": _csrf(page)}).status_code == 404


def _confirm_form(html: str) -> dict[str, str]:
    """The fields of the confirmation form as the page renders them (what 'Yes' submits)."""
    form = re.search(r'<form[^>]*id="confirm-form"[^>]*>(.*?)</form>', html, re.S).group(1)
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form))


def test_suspend_and_reinstate_are_confirmed_on_the_server(app, db, acme):
    c = _login(app, db, "ann", "admin")
    token = _csrf(c.get("/accounts/ACME").text)
    # the form's POST (a script, a double click) changes nothing: it asks
    r = c.post("/accounts/ACME/suspend", data={"note": "spam wave", "csrf_token": token})
    assert r.status_code == 200 and 'id="confirm-suspend"' in r.text and "spam wave" in r.text
    assert 'name="confirm" value="ACME"' in r.text and "ACCT_SUSPENDED" in r.text
    assert _status(db) == "active" and _changes(db) == []
    # a confirmation for something else is refused
    r = c.post("/accounts/ACME/suspend", data={"note": "spam wave", "csrf_token": token, "confirm": "OTHER"})
    assert r.status_code == 400 and _status(db) == "active"
    # confirmed from a state the account has left meanwhile: nothing done
    r = c.post("/accounts/ACME/suspend", data={"note": "spam wave", "csrf_token": token, "confirm": "ACME",
                                               "expect": "warned"}, follow_redirects=True)
    assert "meanwhile" in r.text and _status(db) == "active"
    asked = c.post("/accounts/ACME/suspend", data={"note": "spam wave", "csrf_token": token})
    fields = _confirm_form(asked.text)
    assert fields["confirm"] == "ACME" and fields["expect"] == "active" and fields["note"] == "spam wave"
    r = c.post("/accounts/ACME/suspend", data=fields, follow_redirects=True)  # 'Yes, suspend ACME'
    assert r.status_code == 200 and _status(db) == "suspended"
    # suspending again is not offered, and refused
    assert 'id="suspend-form"' not in r.text
    r = c.post("/accounts/ACME/suspend", data={"note": "again", "csrf_token": token}, follow_redirects=True)
    assert "cannot be suspended" in r.text and len(_changes(db)) == 1
    # reinstating asks too
    r = c.post("/accounts/ACME/reinstate", data={"note": "list cleaned", "csrf_token": token})
    assert 'id="confirm-reinstate"' in r.text and _status(db) == "suspended"
    fields = _confirm_form(r.text)
    assert fields["expect"] == "suspended"
    c.post("/accounts/ACME/reinstate", data=fields, follow_redirects=True)
    assert _status(db) == "active"
    assert [(ch.to_status, ch.note) for ch in _changes(db)] == [("suspended", "spam wave"), ("active", "list cleaned")]


def _next_steps(html: str) -> dict[str, str]:
    block = re.search(r'id="next-step">(.*?)</dd>', html, re.S).group(1)
    return dict(re.findall(r'data-step="(\w+)" data-threshold="([^"]+)"', block))


@pytest.mark.parametrize("policy", ["shipped", "ladder"])
def test_the_threshold_shown_is_the_one_the_note_names(app, db, admin, sending_rules, policy):
    """The page showed 'suspend 6' while the suspension's note said '3 complaints' (issue 15):
    after a warning, the warn threshold already suspends. The page now shows this account's next
    step from the same ladder the enforcement applies, and the note names the threshold reached."""
    if policy == "ladder":
        sending_rules(LADDER)  # count: warn 2, suspend 5, terminate 9
    with db.session() as s:
        s.add(Account(id="ACME", name="Acme Ltd"))
    c = _login(app, db, "rita", "reviewer")

    steps = _next_steps(c.get("/accounts/ACME").text)
    assert list(steps) == ["warn", "suspend", "terminate"]
    warn_at = int(steps["warn"])
    complain(admin, warn_at, account="ACME")
    assert _status(db) == "warned"
    warned = _changes(db)[-1]
    assert warned.evidence["threshold"] == warn_at
    assert f"reached {warn_at} complaints, the warn threshold" in warned.note

    page = c.get("/accounts/ACME").text
    steps = _next_steps(page)
    assert list(steps) == ["suspend", "terminate"]           # a breach after a warning suspends
    suspend_at = int(steps["suspend"])
    assert suspend_at == warn_at                             # not the policy's first-breach 'suspend'
    assert warned.note in page                               # the note is on the page, beside it

    complain(admin, suspend_at, account="ACME")
    assert _status(db) == "suspended"
    suspended = _changes(db)[-1]
    assert suspended.evidence["threshold"] == suspend_at and suspended.evidence["complaint_count"] == suspend_at
    assert suspended.note.startswith(f"{suspend_at} complaints since the last change")
    assert f"reached {suspend_at} complaints, the suspend threshold after a warning" in suspended.note
    page = c.get("/accounts/ACME").text
    assert suspended.note in page and "waits for an admin" in page
