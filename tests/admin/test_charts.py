"""The dashboard's server-side bar charts: bar heights proportional to values on a round axis."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.admin_charts import Series, bar_chart, nice_ceiling


@pytest.mark.parametrize(("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (39_800, 50_000), (50_001, 100_000)])
def test_axis_maximum_is_the_next_round_number_when_values_vary(value, ceiling):
    assert nice_ceiling(value) == ceiling


def test_bars_are_proportional_and_sit_on_the_axis_when_values_differ():
    days = [dt.date(2027, 3, d) for d in (13, 14, 15)]

    chart = bar_chart(title="t", labels=days, series=[Series(name="paid", values=[0, 25_000, 39_800], css_class="p")])

    zero, quarter, top = chart.bars
    plot_height = chart.bottom - chart.top
    assert zero.height == 0
    assert quarter.height == pytest.approx(plot_height / 2, abs=0.1)  # 25,000 of 50,000
    assert top.height == pytest.approx(plot_height * 39_800 / 50_000, abs=0.1)
    assert {round(b.y + b.height, 1) for b in chart.bars} == {chart.bottom}
    assert [t.value for t in chart.y_ticks] == [0, 25_000, 50_000]


def test_series_sit_side_by_side_and_labels_are_thinned_when_there_are_many_categories():
    labels = list(range(30))

    chart = bar_chart(
        title="t",
        labels=labels,
        series=[Series("new", [1] * 30, "n"), Series("canceled", [2] * 30, "c")],
        max_x_labels=10,
    )

    first_new, first_canceled = chart.bars[0], chart.bars[1]
    assert first_canceled.x == pytest.approx(first_new.x + first_new.width, abs=0.1)
    assert len(chart.x_labels) == 10 and chart.x_labels[-1].label == 29
