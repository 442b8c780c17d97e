"""The server-drawn charts: each bar against its own target, figures in words, and an empty
chart that says so."""

from __future__ import annotations

import re

from caretrack.http.charts import NO_DATA, Bar, bar_chart, column_chart


def fills(svg: str) -> list[int]:
    """The width of each bar's fill (0 where nothing is drawn), row by row."""
    rows = svg.split("<g>")[1:]
    widths = []
    for row in rows:
        rects = re.findall(r'<rect x="0" y="\d+" width="(\d+)"', row)
        widths.append(int(rects[1]) if len(rects) > 1 else 0)
    return widths


def test_each_bar_is_drawn_against_its_own_target():
    svg = bar_chart([Bar("Medication prompt", 20, 28, "20 of 28 (71%)"), Bar("Shopping", 0, 1, "0 of 1 (0%)"),
                     Bar("Fluid chart", 2, 4, "2 of 4 (50%)"), Bar("Walk", 5, 4, "5 of 4 (125%)")],
                     title="Completions against targets")
    track = int(re.search(r'<rect x="0" y="\d+" width="(\d+)" height="\d+" fill="#eef1f4"', svg)[1])
    assert fills(svg) == [round(track * 20 / 28), 0, track // 2, track]  # past the target: a full bar
    # the target is each track's end, not a tick on one shared scale
    ticks = {int(x) for x in re.findall(r'<line x1="(\d+)"', svg)}
    assert ticks == {track}
    assert "<title>Shopping: 0 of 1 (0%)</title>" in svg and ">2 of 4 (50%)</text>" in svg
    assert "<title>Completions against targets</title>" in svg
    assert "<desc>Medication prompt: 20 of 28 (71%); Shopping: 0 of 1 (0%);" in svg


def test_nothing_to_show_is_said_in_words():
    assert NO_DATA == "No data for this period."
    for empty in (bar_chart([], title="Completions"), column_chart([("01 Dec", 0), ("02 Dec", 0)], title="Per day"),
                  column_chart([], title="Per day")):
        assert NO_DATA in empty and "<svg" not in empty
    assert "<svg" in column_chart([("01 Dec", 0), ("02 Dec", 3)], title="Per day")


def test_bars_without_targets_share_one_scale():
    svg = bar_chart([Bar("Cara", 10), Bar("Carl", 5)], title="Visits")
    track = int(re.search(r'width="(\d+)" height="\d+" fill="#eef1f4"', svg)[1])
    assert fills(svg) == [track, track // 2]
    assert "<title>Carl: 5</title>" in svg
