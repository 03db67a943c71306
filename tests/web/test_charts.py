"""The SVG chart builders (``node.web.charts``) and their templates (``templates/charts/``): scales, empty data,
one value, right-to-left order, no ``style`` in the output, and labels escaped."""

from __future__ import annotations

import re

import pytest
from flask import Flask, render_template_string

from node.web import charts

ITEMS = [("a", "Alpha", 4), ("b", "Beta", 2), ("c", "Gamma", 0)]


@pytest.mark.parametrize("largest, top, step", [(0, 1, 1), (1, 1, 1), (3, 3, 1), (5, 5, 1), (7, 8, 2), (10, 10, 2),
                                                (13, 15, 5), (48, 50, 10), (99, 100, 20), (1234, 1500, 500)])
def test_nice_scale(largest: int, top: int, step: int) -> None:
    assert charts.nice_scale(largest) == (top, step)
    assert top >= largest and top % step == 0 and top // step <= 5


def test_bars_scale_to_the_largest_value() -> None:
    chart = charts.bar_chart("c", "Title", ITEMS)
    a, b, c = chart.bars
    assert a.width == charts.WIDTH - charts.VALUE_ROOM and b.width == pytest.approx(a.width / 2, abs=0.1)
    assert c.width == 0 and a.x == b.x == 0 and a.label_x == 0
    assert a.value_x == a.width + 4 and a.y < b.y < c.y and chart.total == 6 and not chart.empty
    assert chart.height == pytest.approx(3 * charts.ROW + 4)


def test_right_to_left_bars_grow_from_the_right() -> None:
    chart = charts.bar_chart("c", "Title", ITEMS, rtl=True)
    a, b, _c = chart.bars
    assert a.x + a.width == b.x + b.width == pytest.approx(charts.WIDTH) and a.x == charts.VALUE_ROOM
    assert a.label_x == charts.WIDTH and a.value_x == a.x - 4
    assert [bar.key for bar in chart.bars] == ["a", "b", "c"]  # rows keep their order top to bottom


def test_a_tiny_value_still_shows_and_one_value_fills_the_row() -> None:
    chart = charts.bar_chart("c", "T", [("big", "Big", 10_000), ("one", "One", 1)])
    assert chart.bars[1].width == 2.0
    [only] = charts.bar_chart("c", "T", [("x", "X", 1)]).bars
    assert only.width == charts.WIDTH - charts.VALUE_ROOM


def test_empty_data_is_empty() -> None:
    assert charts.bar_chart("c", "T", []).empty and charts.bar_chart("c", "T", [("a", "A", 0)]).empty
    assert charts.column_chart("c", "T", [("a", "A", 0)]).empty
    line = charts.line_chart("c", "T", ["Jan", "Feb"], [("s", "S", [0, 0])])
    assert line.empty and [t.value for t in line.ticks] == [0, 1]


def test_columns_mirror_in_right_to_left() -> None:
    items = [("short", "Less than a day", 3), ("mid", "1–3 days", 1), ("long", "More than 2 weeks", 0)]
    ltr, rtl = charts.column_chart("h", "T", items), charts.column_chart("h", "T", items, rtl=True)
    assert [c.center for c in ltr.columns] == sorted(c.center for c in ltr.columns)  # first at the left
    assert [c.center for c in rtl.columns] == sorted((c.center for c in rtl.columns), reverse=True)
    assert rtl.columns[0].center == ltr.columns[-1].center and rtl.columns[0].label == "Less than a day"
    assert ltr.columns[0].height == charts.PLOT_HEIGHT and ltr.columns[2].height == 0
    assert charts.column_chart("h", "T", items[:2]).columns[0].lines == ("Less than a day",)  # wide: one line
    five = charts.column_chart("h", "T", [*items, ("x", "X", 0), ("y", "Y", 0)])
    assert five.columns[0].lines == ("Less than", "a day") and five.columns[2].lines == ("More than", "2 weeks")


def test_wrap() -> None:
    assert charts.wrap("one two three four", 8) == ("one two", "three f…")
    assert charts.wrap("one two three", 8) == ("one two", "three")
    assert charts.wrap("Supercalifragilistic", 8) == ("Superca…",)
    assert charts.wrap("a b c d e f g h i j k l m n", 4, lines=2)[1].endswith("…")


def test_line_chart_points_scale_and_mirror() -> None:
    months = [f"M{i}" for i in range(12)]
    series = [("sent", "Sent", [0] * 11 + [7]), ("accepted", "Accepted", [1] * 12), ("declined", "Declined", [0] * 12)]
    ltr = charts.line_chart("l", "T", months, series)
    assert [t.value for t in ltr.ticks] == [0, 2, 4, 6, 8]
    sent = ltr.series[0].points
    assert sent[0].x == ltr.plot_start and sent[-1].x == ltr.plot_end and sent[-1].value == 7
    assert sent[0].y == ltr.baseline and sent[-1].y == pytest.approx(ltr.baseline - charts.LINE_PLOT * 7 / 8, abs=0.1)
    assert [s.marker for s in ltr.series] == list(charts.MARKERS)  # a different marker per series
    assert ltr.x_labels[-1].label == "M11" and len(ltr.x_labels) <= charts.MAX_X_LABELS  # the newest is labelled
    rtl = charts.line_chart("l", "T", months, series, rtl=True)
    assert rtl.series[0].points[0].x == rtl.plot_end and rtl.series[0].points[-1].x == rtl.plot_start
    assert rtl.tick_x > rtl.plot_end  # the value axis on the right
    [point] = charts.line_chart("l", "T", ["Now"], [("s", "S", [3])]).series[0].points
    assert point.x == pytest.approx((ltr.plot_start + ltr.plot_end) / 2, abs=0.1)  # one point: in the middle


def test_mini_bar() -> None:
    assert charts.mini_bar(0, 10).width == 0 and charts.mini_bar(5, 0).width == 0
    assert charts.mini_bar(10, 10).width == 100 and charts.mini_bar(1, 1000).width == 3
    assert charts.mini_bar(5, 10, rtl=True).x == 50


def test_long_labels_are_cut() -> None:
    label = "A very long stage title that goes on and on beyond what fits on one line"
    [bar] = charts.bar_chart("c", "T", [("k", label, 1)]).bars
    assert len(bar.label) == charts.MAX_LABEL and bar.label.endswith("…")


TEMPLATE = """{% from "charts/bar.html" import bar_chart %}{% from "charts/line.html" import line_chart %}
{% from "charts/histogram.html" import histogram %}{% from "charts/minibar.html" import mini_bar %}
{{ bar_chart(bar, "desc") }}{{ line_chart(line) }}{{ histogram(columns) }}{{ mini_bar(mini) }}"""


def render(app: Flask, rtl: bool = False, label: str = "Alpha") -> str:
    with app.test_request_context("/"):
        return render_template_string(
            TEMPLATE, bar=charts.bar_chart("c-bar", "Bars <b>", [("a", label, 3)], rtl=rtl),
            line=charts.line_chart("c-line", "Lines", ["Jan", label], [("s", label, [1, 2]), ("t", "T", [0, 1]),
                                                                        ("u", "U", [2, 0])], rtl=rtl),
            columns=charts.column_chart("c-col", "Columns", [("a", label, 1), ("b", "B", 2)], rtl=rtl),
            mini=charts.mini_bar(1, 2))


def test_rendered_charts_have_no_style_and_are_labelled_images(app: Flask) -> None:
    html = render(app)
    assert "style=" not in html and "<style" not in html and "<script" not in html
    assert html.count('role="img"') == 3
    for chart_id in ("c-bar", "c-line", "c-col"):
        assert f'aria-labelledby="{chart_id}-title' in html and f'<title id="{chart_id}-title">' in html
    assert 'aria-labelledby="c-bar-title c-bar-desc"' in html and '<desc id="c-bar-desc">desc</desc>' in html
    assert "<circle" in html and 'class="chart__marker" x=' in html and "<path" in html  # three marker shapes
    assert html.count('class="chart-series chart-series--') == 6  # three lines, three legend keys
    assert 'class="minibar"' in html and 'aria-hidden="true"' in html
    assert 'direction="ltr"' in html and 'direction="rtl"' in render(app, rtl=True)


def test_labels_and_titles_are_escaped(app: Flask) -> None:
    html = render(app, label='<script>alert("x")</script>')
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Bars &lt;b&gt;" in html


def test_numbers_are_formatted_in_the_page_language(app: Flask) -> None:
    with app.test_request_context("/", headers={"Accept-Language": "sv"}):
        html = render_template_string('{% from "charts/bar.html" import bar_chart %}{{ bar_chart(c) }}',
                                      c=charts.bar_chart("c", "T", [("a", "A", 12345)]))
    assert re.search(r">12\s345<", html)  # Swedish groups thousands with a (non-breaking) space
