"""The audit HTML report reads well (issue 15, item 8): a time axis whose labels never overlap
and whose bars stand where their time is, samples of the messages sent to review beside the
rejected ones, each text once, and scores printed alike."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from app.audit import run_audit
from app.audit.report import CHAR_W, render_report, score_text
from app.audit.summary import SAMPLES_PER_CATEGORY, Summary

from .conftest import REJECT_TEXT, write_jsonl

WIDTH = 1000


def _chart(times: dict[str, dict]) -> str:
    doc = render_report(Summary({"messages": 1, "times": times}))
    return re.search(r'<h2>Verdicts over time</h2>.*?(<svg.*?</svg>)', doc, re.S).group(1)


def _ticks(svg: str) -> list[tuple[float, str]]:
    return [(float(x), lab) for x, lab in re.findall(r'<text class="tick" x="([\d.]+)"[^>]*>([^<]*)</text>', svg)]


def _hours(start: datetime, n: int, every: int = 1) -> dict[str, dict]:
    return {(start + timedelta(hours=h)).strftime("%Y-%m-%dT%H"): {"allow": 3 + h % 5, "reject": h % 3}
            for h in range(0, n, every)}


SPANS = {
    "one hour": _hours(datetime(2026, 11, 21, 9), 1),
    "one day": _hours(datetime(2026, 11, 21), 24),
    "four days of hours": _hours(datetime(2026, 11, 20), 96),          # where the old labels overlapped
    "five days": _hours(datetime(2026, 11, 20), 120),
    "two months, sparse": _hours(datetime(2026, 10, 1), 24 * 61, every=7),
    "a year and a half": _hours(datetime(2025, 6, 1), 24 * 540, every=13),
    "decades (a stray timestamp)": {**_hours(datetime(2026, 11, 21), 3), "1996-01-01T00": {"allow": 1}},
}


@pytest.mark.parametrize("span", SPANS)
def test_time_axis_labels_never_overlap(span):
    ticks = _ticks(_chart(SPANS[span]))
    assert ticks, "no label at all"
    if len(SPANS[span]) > 3:
        assert len(ticks) >= 2, ticks
    for (x1, a), (x2, b) in zip(ticks, ticks[1:]):
        half = (len(a) + len(b)) / 2 * CHAR_W
        assert x2 - x1 >= half, f"{a!r} at {x1} and {b!r} at {x2} overlap"
    for x, lab in ticks:
        assert 0 <= x - len(lab) * CHAR_W / 2 and x + len(lab) * CHAR_W / 2 <= WIDTH, (x, lab)
    assert len({lab for _, lab in ticks}) == len(ticks), "the same label twice"


def test_hour_labels_fall_on_round_hours():
    ticks = _ticks(_chart(SPANS["four days of hours"]))
    hours = [int(lab[-5:-3]) for _, lab in ticks]
    assert hours and all(h % 6 == 0 for h in hours), ticks
    assert "11-20 00:00" in {lab for _, lab in ticks}


def test_bars_stand_where_their_time_is():
    """Two busy days nine days apart are nine days apart on the axis, not neighbours."""
    times = {"2026-11-01T10": {"reject": 5}, "2026-11-10T10": {"allow": 5}}
    svg = _chart(times)
    bars = [(float(x), float(w)) for x, w in re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)]
    assert len(bars) == 2 and "day (UTC)" in svg  # empty days draw nothing, but take their place
    (x1, w), (x2, _) = bars
    slot = w / 0.8  # a bar fills 80% of its day
    assert x2 - x1 == pytest.approx(9 * slot, rel=0.01)


@pytest.mark.parametrize("peak, labels", [(1, ["0", "1"]), (3, ["0", "3"]), (4, ["0", "2", "4"]),
                                          (2000, ["0", "1,000", "2,000"])])
def test_the_count_axis_never_repeats_or_rounds_a_label(peak, labels):
    """Bottom to top. A busiest bucket of one message used to read "0, 0, 1"."""
    svg = _chart({"2026-11-01T10": {"allow": peak}, "2026-11-01T11": {"allow": 1}})
    assert re.findall(r'<text class="ylab"[^>]*>([^<]*)</text>', svg) == labels


@pytest.mark.parametrize("value, shown", [(12.6215, "12.6"), (10, "10.0"), (10.0, "10.0"), (9.96, "9.9"),
                                          (4.85, "4.8"), (0.3, "0.3"), (0, "0.0"), (-0.04, "0.0"),
                                          (-2.5, "-2.5"), (None, "–"), ("x", "–"), (float("nan"), "–")])
def test_scores_print_with_one_decimal_never_rounded_up(value, shown):
    assert score_text(value) == shown


# ------------------------------------------------------------------------------- samples

THREAT = "你等着，我弄死你"                              # KW_ABUSE_THREAT: review, abuse only
GAMBLING = [REJECT_TEXT.replace("88", str(n)) for n in (66, 77, 99, 55, 44)]
NORMAL = "明天下午三点开会，请准时参加。"


def _log(tmp_path):
    texts = ([REJECT_TEXT] * 8 + [THREAT] * 6 + [NORMAL] * 3
             + [g for g in GAMBLING] + ["出门小心点，不然我弄死你", "小心你的家人，你死定了"])
    rows = [{"id": f"m{i:03d}", "account": f"A{i % 3}", "sent_at": f"2026-11-21T{i % 24:02d}:00:00", "text": t}
            for i, t in enumerate(texts)]
    return write_jsonl(tmp_path / "log.jsonl", rows), rows


@pytest.mark.parametrize("batch_size", [3, 50])
def test_samples_show_review_beside_reject_each_text_once(tmp_path, config, batch_size):
    path, rows = _log(tmp_path)
    report = tmp_path / "report.html"
    # rules only (no model): the verdicts of these texts do not move with a retrained model
    s = run_audit(config([path], report=report, model_dir="none", batch_size=batch_size))
    rejected = [x["text"] for x in s.samples["gambling"]]
    assert len(rejected) == len(set(rejected)) == SAMPLES_PER_CATEGORY
    assert rejected == [REJECT_TEXT] + GAMBLING[:SAMPLES_PER_CATEGORY - 1]  # the first distinct, in order
    reviewed = [x["text"] for x in s.review_samples["abuse"]]
    assert reviewed[0] == THREAT and len(reviewed) == len(set(reviewed)) == 3
    doc = report.read_text(encoding="utf-8")
    section = doc[doc.index("<h2>Samples per category"):]
    abuse = section[section.index("<h3>abuse</h3>"):]
    abuse = abuse[:abuse.index("</div>")]
    assert "Sent to review (3 of 8 shown)" in abuse and "None rejected in this category." in abuse
    first_threat = next(r["id"] for r in rows if r["text"] == THREAT)
    later_threats = [r["id"] for r in rows if r["text"] == THREAT][1:]
    assert f"<td>{first_threat}</td>" in abuse and not any(f"<td>{i}</td>" in abuse for i in later_threats)
    # every score of the samples printed alike: one decimal
    scores = re.findall(r'<td class="n" title="[^"]*">([^<]*)</td>', section)
    assert scores and all(re.fullmatch(r"-?\d+\.\d", x) for x in scores), scores


def test_old_checkpoints_without_review_samples_still_merge():
    s = Summary({"samples": {"gambling": [{"id": 1, "text": "a"}]}})
    assert s.review_samples == {}
    s.merge({"messages": 1, "verdicts": {"reject": 1}, "categories": {}, "accounts": {}, "rules": {},
             "times": {}, "samples": {"gambling": [{"id": 2, "text": "a"}, {"id": 3, "text": "b"}]},
             "malformed": []})
    assert [x["id"] for x in s.samples["gambling"]] == [1, 3]
    assert Summary(s.state()).state() == s.state()
