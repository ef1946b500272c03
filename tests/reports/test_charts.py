import math
import re

import pytest

from reports.charts import ForestRow, Series, forest_svg, timeline_svg

EVIL = "<script>alert(1)</script> $\\alpha$"


def _rows(n):
    return [
        ForestRow(
            label=f"s{i}",
            lift=0.01 * i,
            low=0.01 * i - 0.05,
            high=0.01 * i + 0.05,
            state="neutral",
            annotation="+1%",
        )
        for i in range(n)
    ]


def test_forest_svg_one_group_per_row_and_text_kept_as_text():
    svg = forest_svg(_rows(7), id_prefix="f", confidence="95%")
    assert svg.startswith("<svg")
    assert len(re.findall(r'<g id="f-row-\d+"', svg)) == 7
    assert "<text" in svg  # svg.fonttype none: labels stay searchable text
    assert "viewBox" in svg
    assert not re.match(r'<svg[^>]* width="', svg)  # CSS sizes it


def test_forest_svg_escapes_labels_and_does_not_parse_math():
    rows = [
        ForestRow(
            label=EVIL,
            lift=0.1,
            low=0.0,
            high=0.2,
            state="better",
            annotation="+10%",
            emphasised=True,
        )
    ]
    svg = forest_svg(rows, id_prefix="f", confidence="95%")
    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $\\alpha$" in svg


def test_forest_svg_hidden_rows_show_their_note():
    rows = [
        *_rows(2),
        ForestRow(
            label="tiny",
            lift=math.nan,
            low=math.nan,
            high=math.nan,
            state="hidden",
            annotation="below minimum size",
        ),
    ]
    svg = forest_svg(rows, id_prefix="f", confidence="95%")
    assert "below minimum size" in svg
    assert len(re.findall(r'<g id="f-row-\d+"', svg)) == 3


def test_forest_svg_states_differ_beyond_colour():
    rows = [
        ForestRow(label="a", lift=0.1, low=0.05, high=0.15, state="better", annotation=""),
        ForestRow(label="b", lift=-0.1, low=-0.15, high=-0.05, state="worse", annotation=""),
        ForestRow(label="c", lift=0.0, low=-0.05, high=0.05, state="underpowered", annotation=""),
    ]
    svg = forest_svg(rows, id_prefix="f", confidence="95%")
    groups = re.split(r'<g id="f-row-', svg)[1:]
    markers = [re.search(r'xlink:href="#([^"]+)"', g) for g in groups]
    assert len({m.group(1) for m in markers if m}) == 3  # circle, square, diamond
    assert "stroke-dasharray" in groups[2]  # underpowered is dashed


def test_timeline_svg_draws_each_series_with_legend():
    series = [
        Series(
            label=name,
            dates=("2026-01-01", "2026-01-02"),
            lift=(0.1, 0.05),
            low=(-0.1, 0.0),
            high=(0.3, 0.1),
        )
        for name in ("all", "vip <b>")
    ]
    svg = timeline_svg(series, confidence="95%")
    assert "vip &lt;b&gt;" in svg
    assert svg.count("<path") >= 3


def _x_labels(svg: str) -> list[str]:
    import re

    return re.findall(r'<g id="xtick_\d+">.*?<text[^>]*>([^<]*)</text>', svg, re.S)


def _days(labels: list[str]) -> list[int]:
    return [int(label[-2:]) for label in labels if label[-2:].isdigit()]


def test_timeline_svg_spans_the_whole_window_and_labels_the_band():
    late = Series(
        label="all",
        dates=("2026-01-12", "2026-01-13", "2026-01-14"),
        lift=(0.1, 0.05, 0.04),
        low=(-0.1, 0.0, 0.0),
        high=(0.3, 0.1, 0.08),
    )
    whole = timeline_svg([late], confidence="95%", window=("2026-01-01", "2026-01-19T00:00:00"))
    data_only = timeline_svg([late], confidence="95%")
    assert "all: 95% always-valid interval" in whole  # the grey band has a legend entry
    assert "end of day (UTC)" in whole
    assert "cumulative relative lift" in whole
    assert min(_days(_x_labels(whole))) < 12  # the window starts on the 1st
    assert max(_days(_x_labels(whole))) >= 17  # and ends on the 18th
    assert min(_days(_x_labels(data_only))) >= 12  # without a window: the days with data
    assert not any(":" in label for label in _x_labels(data_only))  # days, never hours


def test_forest_svg_draws_shrunken_lift_as_second_marker_with_legend():
    rows = [
        ForestRow(label="all", lift=0.05, low=0.01, high=0.09, state="better", annotation="",
                  emphasised=True),
        ForestRow(label="a", lift=0.3, low=0.1, high=0.5, state="better", annotation="",
                  shrunk=0.12, shrunk_low=0.0, shrunk_high=0.24),
    ]  # fmt: skip
    svg = forest_svg(rows, id_prefix="f", confidence="95%")
    assert 'id="f-shrunk-1"' in svg
    assert 'id="f-shrunk-1-ci"' in svg
    assert 'id="f-shrunk-0"' not in svg  # `all` has none
    assert "shrunken (empirical Bayes)" in svg
    plain = forest_svg(rows[:1], id_prefix="f", confidence="95%")
    assert "shrunken" not in plain


def test_forest_svg_strips_control_characters_and_escapes_quotes():
    rows = [ForestRow(label='a"\x1b[31mb', lift=0.1, low=0.0, high=0.2, state="neutral",
                      annotation="+10%")]  # fmt: skip
    svg = forest_svg(rows, id_prefix="f", confidence="95%")
    assert "\x1b" not in svg
    assert "a&quot;[31mb" in svg


def _tick_labels(svg):
    return re.findall(r'text-anchor="middle">([^<]*%)</text>', svg)


def test_forest_svg_ticks_are_round_and_distinct_on_narrow_ranges():
    rows = [ForestRow(label="a", lift=0.001, low=-0.002, high=0.004, state="neutral",
                      annotation="")]  # fmt: skip
    labels = _tick_labels(forest_svg(rows, id_prefix="f", confidence="95%"))
    assert len(labels) >= 4
    assert len(set(labels)) == len(labels)  # sub-percent steps get decimals
    assert "+0.0%" in labels or "+0.00%" in labels


def test_forest_svg_places_points_in_proportion_to_the_lift():
    rows = [
        ForestRow(label=s, lift=v, low=v - 0.1, high=v + 0.1, state="neutral", annotation="")
        for s, v in (("a", 0.0), ("b", 0.2), ("c", 0.4))
    ]
    svg = forest_svg(rows, id_prefix="f", confidence="95%")
    xs = [float(x) for x in re.findall(r'<use xlink:href="#[^"]+" x="([-\d.]+)"', svg)]
    assert xs[2] - xs[1] == pytest.approx(xs[1] - xs[0], abs=0.02)
    assert xs[0] < xs[1] < xs[2]
