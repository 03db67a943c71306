"""Small chart builders for the dashboards: figures in, geometry out, drawn by the templates in
``templates/charts/`` as inline SVG (no plotting library: they emit inline styles and scripts our CSP forbids).

Each builder returns a frozen structure whose coordinates are in the chart's ``viewBox`` (``WIDTH`` units
wide, about a phone's width, so that text of ``FONT`` units reads at its natural size on a phone; the SVG
scales with ``width: 100%``). Colours, dashes and fonts are classes of ``static/charts.css``; nothing here
makes a ``style`` attribute. Labels are plain strings the template escapes; numbers are formatted by the
template (``|number``), in the page's language.

Right to left (``rtl``): horizontal bars grow from the right edge, their labels start at the right; columns
and time axes are mirrored, so the first item (the oldest month, the shortest time) is at the right and the
reading order is the time order in both directions. The value axis of a line chart moves to the right side.
Text is never mirrored: the templates put ``direction`` on the SVG, and every text anchor is "start" or
"middle", which the browser resolves for that direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

WIDTH = 320.0
FONT = 13.0
#: labels longer than this are cut with an ellipsis in the picture (the table beside it has them whole)
MAX_LABEL = 48
#: the marker drawn on each series of a line chart, in order (colour is never the only difference)
MARKERS = ("circle", "square", "triangle")


def _r(value: float) -> float:
    return round(value, 1)


def short_label(label: str, limit: int = MAX_LABEL) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def nice_scale(largest: int, max_ticks: int = 5) -> tuple[int, int]:
    """The axis top and tick step for whole counts up to ``largest``: a step of 1, 2 or 5 times a power of
    ten, at most ``max_ticks`` steps. An empty axis (largest 0) runs to 1."""
    if largest <= 0:
        return 1, 1
    magnitude = 10 ** max(0, math.floor(math.log10(largest)) - 1)
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if math.ceil(largest / step) <= max_ticks:
                return step * math.ceil(largest / step), step
        magnitude *= 10


# -- horizontal bars ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    label_x: float
    label_y: float
    value_x: float
    value_y: float
    css: str


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    width: float
    height: float
    rtl: bool
    bars: tuple[Bar, ...]
    total: int

    @property
    def empty(self) -> bool:
        return self.total == 0


ROW = 40.0
BAR_HEIGHT = 14.0
#: room kept after the longest bar for its value
VALUE_ROOM = 44.0


def bar_chart(chart_id: str, title: str, items: Sequence[tuple[str, str, int]], *, rtl: bool = False,
              css: dict[str, str] | None = None) -> BarChart:
    """Horizontal bars, one row each: the label on a line, the bar under it with its value at its end.

    Args:
        items: ``(key, label, value)`` in the order shown, top to bottom.
        css: an extra class per key (e.g. ``chart__bar--bad``); the default is ``chart__bar--1``.
    """
    largest = max((value for _, _, value in items), default=0)
    room = WIDTH - VALUE_ROOM
    bars = []
    for i, (key, label, value) in enumerate(items):
        length = 0.0 if largest == 0 else max(2.0 if value else 0.0, room * value / largest)
        label_y = i * ROW + FONT + 2
        y = label_y + 5
        x = WIDTH - length if rtl else 0.0
        value_x = (x - 4) if rtl else (length + 4)
        bars.append(Bar(key, short_label(label), value, _r(x), _r(y), _r(length), BAR_HEIGHT,
                        WIDTH if rtl else 0.0, _r(label_y), _r(value_x), _r(y + BAR_HEIGHT - 3),
                        (css or {}).get(key, "chart__bar--1")))
    return BarChart(chart_id, title, WIDTH, _r(max(1, len(items)) * ROW + 4), rtl, tuple(bars),
                    sum(value for _, _, value in items))


# -- columns (a histogram) ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str
    label: str
    lines: tuple[str, ...]
    value: int
    x: float
    y: float
    width: float
    height: float
    center: float
    value_y: float


@dataclass(frozen=True)
class ColumnChart:
    id: str
    title: str
    width: float
    height: float
    rtl: bool
    columns: tuple[Column, ...]
    baseline: float
    label_y: float
    total: int

    @property
    def empty(self) -> bool:
        return self.total == 0


PLOT_HEIGHT = 120.0
TOP_ROOM = 18.0


def wrap(label: str, chars: int, lines: int = 2) -> tuple[str, ...]:
    """``label`` in at most ``lines`` lines of about ``chars`` characters, cut at spaces (the last line takes
    the rest, shortened with an ellipsis if it is still too long)."""
    out: list[str] = []
    line = ""
    for word in label.split():
        if line and len(line) + 1 + len(word) > chars and len(out) < lines - 1:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    out.append(short_label(line, max(chars, 2)))
    return tuple(out)


def column_chart(chart_id: str, title: str, items: Sequence[tuple[str, str, int]], *,
                 rtl: bool = False) -> ColumnChart:
    """Vertical columns (a histogram of buckets), the first item at the inline start (left, or right in
    right-to-left), the value above each column and its label under it in up to two lines."""
    count = max(1, len(items))
    slot = WIDTH / count
    largest = max((value for _, _, value in items), default=0)
    baseline = TOP_ROOM + PLOT_HEIGHT
    columns = []
    for i, (key, label, value) in enumerate(items):
        place = count - 1 - i if rtl else i
        height = 0.0 if largest == 0 else max(2.0 if value else 0.0, PLOT_HEIGHT * value / largest)
        center = slot * place + slot / 2
        width = slot * 0.6
        columns.append(Column(key, label, wrap(label, max(4, int(slot / (FONT * 0.5)))), value,
                              _r(center - width / 2), _r(baseline - height), _r(width), _r(height), _r(center),
                              _r(baseline - height - 4)))
    return ColumnChart(chart_id, title, WIDTH, _r(baseline + 2 * FONT + 14), rtl, tuple(columns), baseline,
                       _r(baseline + FONT + 4), sum(value for _, _, value in items))


# -- lines over time ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: int


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    index: int
    marker: str
    points: tuple[Point, ...]

    @property
    def path(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class AxisLabel:
    label: str
    x: float


@dataclass(frozen=True)
class LineChart:
    id: str
    title: str
    width: float
    height: float
    rtl: bool
    series: tuple[Series, ...]
    ticks: tuple[Tick, ...]
    x_labels: tuple[AxisLabel, ...]
    plot_start: float
    plot_end: float
    tick_x: float
    baseline: float
    label_y: float
    total: int

    @property
    def empty(self) -> bool:
        return self.total == 0


AXIS_ROOM = 34.0
LINE_PLOT = 140.0
#: at most this many labels under a time axis (the newest point is always labelled)
MAX_X_LABELS = 4


def line_chart(chart_id: str, title: str, x_labels: Sequence[str],
               series: Sequence[tuple[str, str, Sequence[int]]], *, rtl: bool = False) -> LineChart:
    """Lines over time, one per series, each with its own dash pattern and marker (``MARKERS``).

    Args:
        x_labels: one label per point in time, oldest first.
        series: ``(key, label, values)``, one value per label.
    """
    count = len(x_labels)
    largest = max((v for _, _, values in series for v in values), default=0)
    top, step = nice_scale(largest, 4)
    margin = 20.0
    plot_start, plot_end = (margin, WIDTH - AXIS_ROOM) if rtl else (AXIS_ROOM, WIDTH - margin)
    baseline = 10.0 + LINE_PLOT

    def x_of(i: int) -> float:
        fraction = 0.5 if count <= 1 else i / (count - 1)
        if rtl:
            fraction = 1 - fraction
        return _r(plot_start + (plot_end - plot_start) * fraction)

    def y_of(value: int) -> float:
        return _r(baseline - LINE_PLOT * value / top)

    drawn = tuple(Series(key, label, n, MARKERS[n % len(MARKERS)],
                         tuple(Point(x_of(i), y_of(v), v) for i, v in enumerate(values)))
                  for n, (key, label, values) in enumerate(series))
    ticks = tuple(Tick(v, y_of(v)) for v in range(0, top + 1, step))
    every = max(1, math.ceil(count / MAX_X_LABELS))
    labels = tuple(AxisLabel(label, x_of(i)) for i, label in enumerate(x_labels) if (count - 1 - i) % every == 0)
    return LineChart(chart_id, title, WIDTH, _r(baseline + FONT + 12), rtl, drawn, ticks, labels,
                     _r(plot_start), _r(plot_end), _r(WIDTH - AXIS_ROOM + 6 if rtl else AXIS_ROOM - 6), baseline,
                     _r(baseline + FONT + 6), sum(v for _, _, values in series for v in values))


# -- a bar in a table cell ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MiniBar:
    value: int
    x: float
    width: float


def mini_bar(value: int, largest: int, *, rtl: bool = False) -> MiniBar:
    """A small bar (``viewBox 0 0 100 10``) beside a number in a table: ``value`` out of ``largest``."""
    width = 0.0 if largest <= 0 or value <= 0 else max(3.0, 100.0 * value / largest)
    return MiniBar(value, _r(100 - width if rtl else 0.0), _r(width))
