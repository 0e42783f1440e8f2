"""Bidi controls hide links (issue 14, item 2): a link stored backwards between U+202E and
U+202C is displayed forwards by a phone. The engine matches what is displayed and reports the
controls themselves (PAT_BIDI_CONTROL)."""
from __future__ import annotations

import pytest

from app.engine.bidi import visual

RLO, PDF, RLI, PDI = "\u202e", "\u202c", "\u2067", "\u2069"
LINK = "https://fake-bank.com/login"
HIDDEN = f"【工商银行】您的账户异常，请登录 {RLO}{LINK[::-1]}{PDF} 验证身份"


def test_visual_order_reverses_overridden_runs_and_maps_back():
    shown, src = visual(HIDDEN)
    assert LINK in shown and RLO not in shown
    i = shown.index(LINK)
    # the displayed link's first character is the stored run's last one
    assert HIDDEN[src[i]] == "h" and src[i] == HIDDEN.index(PDF) - 1
    assert visual("no controls here") is None
    assert visual(f"a{RLI}cba{PDI}d")[0] == "aabcd"


def test_a_reversed_link_is_found_as_displayed_and_the_controls_are_reported(shipped):
    v = shipped.check(HIDDEN)
    rules = {h.rule: h for h in v.reasons}
    assert "PAT_BIDI_CONTROL" in rules
    link = rules.get("PAT_URL")
    assert link is not None and "as displayed" in link.description
    a, b = link.span
    assert HIDDEN[a:b] == LINK[::-1]  # the span points at the stored characters
    assert v.verdict != "allow"


@pytest.mark.parametrize("ch", ["\u202a", "\u202b", "\u202d", "\u2066", "\u2068", "\u2069"])
def test_any_bidi_control_is_a_finding(shipped, ch):
    v = shipped.check(f"您的验证码是{ch}123456{ch}，5分钟内有效")
    h = next(h for h in v.reasons if h.rule == "PAT_BIDI_CONTROL")
    assert h.action == "review" and v.verdict == "review"


def test_plain_messages_have_no_bidi_finding(shipped):
    assert not [h for h in shipped.check("您的验证码是123456，5分钟内有效").reasons if h.rule == "PAT_BIDI_CONTROL"]
