"""Small bar charts for the admin, drawn as inline SVG on the server: no JavaScript, no CDN.

Python computes only the geometry (pixel coordinates: floats are fine here, they are never money); the
template `admin/kbilling/bar_chart.html` draws it and formats the numbers and dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Series:
    name: str
    values: list[int]
    css_class: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: Any
    series: Series


@dataclass(frozen=True)
class Tick:
    y: float
    value: int


@dataclass(frozen=True)
class XLabel:
    x: float
    label: Any


@dataclass(frozen=True)
class Row:
    """One category with its value in each series, for the chart's data table."""

    label: Any
    values: list[int]


@dataclass(frozen=True)
class BarChart:
    title: str
    width: int
    height: int
    left: float
    top: float
    right: float
    bottom: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_labels: list[XLabel]
    series: list[Series]
    rows: list[Row]
    label_format: str  # a Django `date` filter format for the category labels


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k that is >= value (at least 1), for a round y-axis maximum."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def bar_chart(
    *,
    title: str,
    labels: list[Any],
    series: list[Series],
    label_format: str = "n/j",
    width: int = 720,
    height: int = 220,
    max_x_labels: int = 10,
) -> BarChart:
    """Bars side by side per category (one per series), with a y axis from 0 to a round maximum."""
    left, right, top, bottom = 64.0, width - 8.0, 10.0, height - 24.0
    plot_width, plot_height = right - left, bottom - top
    count = max(len(labels), 1)
    y_max = nice_ceiling(max((v for s in series for v in s.values), default=0))
    slot = plot_width / count
    bar_width = slot * 0.8 / max(len(series), 1)

    bars = []
    for index, label in enumerate(labels):
        for position, one in enumerate(series):
            value = one.values[index]
            bar_height = plot_height * value / y_max
            if value and bar_height < 1:
                bar_height = 1.0  # a non-zero value never disappears
            bars.append(
                Bar(
                    x=round(left + slot * index + slot * 0.1 + bar_width * position, 1),
                    y=round(bottom - bar_height, 1),
                    width=round(bar_width, 1),
                    height=round(bar_height, 1),
                    value=value,
                    label=label,
                    series=one,
                )
            )
    step = -(-count // max_x_labels)  # ceil: at most max_x_labels labels under the axis
    x_labels = [
        XLabel(x=round(left + slot * (index + 0.5), 1), label=label)
        for index, label in enumerate(labels)
        if (len(labels) - 1 - index) % step == 0  # always label the latest category
    ]
    tick_values = [0, y_max // 2, y_max] if y_max % 2 == 0 else [0, y_max]
    y_ticks = [Tick(y=round(bottom - plot_height * value / y_max, 1), value=value) for value in tick_values]
    rows = [Row(label=label, values=[one.values[index] for one in series]) for index, label in enumerate(labels)]
    return BarChart(
        title=title,
        width=width,
        height=height,
        left=left,
        top=top,
        right=right,
        bottom=bottom,
        bars=bars,
        y_ticks=y_ticks,
        x_labels=x_labels,
        series=series,
        rows=rows,
        label_format=label_format,
    )
