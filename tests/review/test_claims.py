"""Review claims (issue 15, item 2): opening an item claims it; others see who holds it and
cannot decide it; claims end on decision or after SMSGUARD_CLAIM_MINUTES; j/k skip held items;
two reviewers opening at once: exactly one wins."""
from __future__ import annotations

import html
import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.services import claims
from app.store.models import Event, ReviewClaim

from .conftest import csrf_of
from .workbench_helpers import seed, sign_in


@pytest.fixture
def rita(app, db):
    return sign_in(app, db, "rita")


@pytest.fixture
def bob(app, db):
    return sign_in(app, db, "bob")


@pytest.fixture
def ada(app, db):
    return sign_in(app, db, "ada", role="admin")


def _flashes(page: str) -> str:
    return html.unescape(" ".join(re.findall(r'<li class="flash [a-z]+" role="status">(.*?)</li>', page, re.S)))


def _claims(db) -> list[tuple]:
    with db.session() as s:
        return [tuple(r) for r in s.execute(sa.select(ReviewClaim.subject_type, ReviewClaim.subject_id,
                                                      ReviewClaim.actor).order_by(ReviewClaim.subject_id))]


def test_opening_an_item_claims_it_and_others_see_who_until_when(rita, bob, db):
    tid = seed(db)
    page = rita.get(f"/review/template/{tid}").text
    assert "You hold this template until" in page
    assert _claims(db) == [("template", tid, "user:rita")]
    other = bob.get(f"/review/template/{tid}").text
    m = re.search(r"Claimed by rita until (\d\d:\d\d) UTC", other)
    assert m, other[:2000]
    assert re.search(r'<button type="submit" class="approve" disabled>', other)
    assert _claims(db) == [("template", tid, "user:rita")]  # bob's visit did not take it
    queue = bob.get("/review/").text
    assert f"claimed by rita until {m.group(1)} UTC" in queue and 'data-claimed="other"' in queue
    assert "yours until" in rita.get("/review/").text


def test_a_claimed_item_cannot_be_decided_by_another_reviewer(rita, bob, db, reviewer):
    tid = seed(db)
    rita.get(f"/review/template/{tid}")
    page = bob.get(f"/review/template/{tid}").text
    r = bob.post(f"/review/template/{tid}/decision", data={"decision": "reject", "reason": "no",
                                                            "csrf_token": csrf_of(page)})
    assert r.status_code == 302
    assert "is claimed by rita until" in _flashes(bob.get(r.headers["Location"]).text)
    # the API too: 409 with who holds it
    r = reviewer.post(f"/v1/templates/{tid}/decision", {"decision": "approve"})
    assert r.status_code == 409 and r.get_json()["claimed_by"] == "rita"
    assert r.mimetype == "application/problem+json"
    # the holder decides; the claim is released with the decision
    page = rita.get(f"/review/template/{tid}").text
    r = rita.post(f"/review/template/{tid}/decision", data={"decision": "approve", "csrf_token": csrf_of(page)})
    assert r.status_code == 302 and _claims(db) == []


def test_a_claim_ends_after_its_minutes(app, rita, bob, db, monkeypatch):
    tid = seed(db)
    rita.get(f"/review/template/{tid}")
    with db.session() as s:
        at = claims.now(s)
        held = claims.holder(s, "template", tid)
    minutes = app.config["SMSGUARD"].claim_minutes
    assert minutes == 10 and held.expires_at - at <= timedelta(minutes=10)
    assert held.expires_at - at > timedelta(minutes=9)
    later = at + timedelta(minutes=minutes, seconds=1)
    monkeypatch.setattr(claims, "now", lambda session: later)
    page = bob.get(f"/review/template/{tid}").text
    assert "You hold this template" in page and "Claimed by rita" not in page
    r = bob.post(f"/review/template/{tid}/decision", data={"decision": "reject", "reason": "超时后接手",
                                                            "csrf_token": csrf_of(page)})
    assert r.status_code == 302
    with db.session() as s:
        assert s.scalar(sa.text(f"SELECT status FROM templates WHERE id = {tid}")) == "rejected"


def test_the_claim_minutes_come_from_the_setting(tmp_path, migrated_url, moderator, monkeypatch):
    from app.config import Settings

    monkeypatch.setenv("SMSGUARD_CLAIM_MINUTES", "3")
    assert Settings.from_env(instance_dir=tmp_path).claim_minutes == 3
    monkeypatch.setenv("SMSGUARD_CLAIM_MINUTES", "0")
    with pytest.raises(ValueError, match="CLAIM_MINUTES"):
        Settings.from_env(instance_dir=tmp_path)


def test_two_reviewers_opening_at_once_exactly_one_wins(db):
    ids = [seed(db, content=f"并发{i}") for i in range(12)]
    for tid in ids:
        barrier = threading.Barrier(2)
        results: dict[str, bool] = {}
        errors: list[BaseException] = []

        def open_it(actor: str, tid=tid, barrier=barrier, results=results, errors=errors):
            try:
                barrier.wait(5)
                with db.session(immediate=True) as s:
                    results[actor] = claims.claim(s, "template", tid, actor, 10).held
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=open_it, args=(a,)) for a in ("user:rita", "user:bob")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors, errors
        assert sorted(results.values()) == [False, True], results
        winner = next(a for a, held in results.items() if held)
        assert _claims(db)[-1] == ("template", tid, winner)


def test_a_reviewer_holds_one_claim_at_a_time(rita, bob, db):
    a, b, c = seed(db, content="甲"), seed(db, content="乙"), seed(db, content="丙")
    rita.get(f"/review/template/{a}")
    rita.get(f"/review/template/{b}")
    assert _claims(db) == [("template", b, "user:rita")]
    # looking at an item bob holds does not cost rita hers
    bob.get(f"/review/template/{c}")
    rita.get(f"/review/template/{c}")
    assert _claims(db) == [("template", b, "user:rita"), ("template", c, "user:bob")]


def test_j_and_k_skip_items_claimed_by_others(rita, bob, db):
    # risk order: first, held, last (scores 9, 8, 7)
    first = seed(db, content="第一", score=9)
    held = seed(db, content="第二", score=8)
    last = seed(db, content="第三", score=7)
    bob.get(f"/review/template/{held}")
    page = rita.get(f"/review/template/{first}").text
    assert re.search(rf'id="next-link" href="/review/template/{last}"', page)
    page = rita.get(f"/review/template/{last}").text
    assert re.search(rf'id="prev-link" href="/review/template/{first}"', page)
    # bob's own claim does not hide the item from bob; rita now holds `last` (one claim at a
    # time: opening it let go of `first`), so bob's next skips it and there is none
    page = bob.get(f"/review/template/{held}").text
    assert "You hold this template" in page
    assert re.search(rf'id="prev-link" href="/review/template/{first}"', page) and 'id="next-link"' not in page
    # after a decision rita moves on past the held item too
    page = rita.get(f"/review/template/{first}").text
    r = rita.post(f"/review/template/{first}/decision", data={"decision": "reject", "reason": "x",
                                                               "csrf_token": csrf_of(page)})
    assert r.headers["Location"].endswith(f"/review/template/{last}")
    # the queue marks the held row so its j/k skip it as well
    assert re.search(rf'data-claimed="other"[^>]*>\s*<td class="sel-col"><input type="checkbox" name="sel" '
                     rf'value="template:{held}:', rita.get("/review/").text)


def test_an_admin_may_take_over_explicitly_a_reviewer_may_not(rita, bob, ada, db):
    tid = seed(db)
    rita.get(f"/review/template/{tid}")
    page = bob.get(f"/review/template/{tid}").text
    assert "Take over" not in page
    r = bob.post(f"/review/template/{tid}/claim", data={"action": "takeover", "csrf_token": csrf_of(page)})
    assert r.status_code == 403
    page = ada.get(f"/review/template/{tid}").text
    assert "Claimed by rita" in page and 'id="takeover-form"' in page
    r = ada.post(f"/review/template/{tid}/claim", data={"action": "takeover", "csrf_token": csrf_of(page)})
    assert r.status_code == 302
    assert "taken over from rita" in _flashes(ada.get(r.headers["Location"]).text)
    assert _claims(db) == [("template", tid, "user:ada")]
    with db.session() as s:
        ev = s.scalar(sa.select(Event).where(Event.kind == "review.claim_taken_over"))
        assert ev.actor == "user:ada" and ev.data["from_actor"] == "user:rita"
    # now rita is the one who cannot decide
    page = rita.get(f"/review/template/{tid}").text
    assert "Claimed by ada" in page
    r = rita.post(f"/review/template/{tid}/decision", data={"decision": "reject", "reason": "x",
                                                             "csrf_token": csrf_of(page)})
    assert "claimed by ada" in _flashes(rita.get(r.headers["Location"]).text)


def test_release_lets_another_reviewer_take_it(rita, bob, db):
    tid = seed(db)
    page = rita.get(f"/review/template/{tid}").text
    r = rita.post(f"/review/template/{tid}/claim", data={"action": "release", "csrf_token": csrf_of(page)})
    assert r.status_code == 302 and _claims(db) == []
    assert "You hold this template" in bob.get(f"/review/template/{tid}").text


def test_decided_items_are_not_claimed(rita, db):
    tid = seed(db, status="approved")
    page = rita.get(f"/review/template/{tid}").text
    assert "You hold" not in page and _claims(db) == []
    assert rita.get("/review/template/999999").status_code == 404
