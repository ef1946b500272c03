"""The heterogeneity and arm-pair sections: arms named, names escaped, terminal summaries."""

from __future__ import annotations

import math
from dataclasses import replace

from experiment.results import HeterogeneityTests, SegmentInteraction
from reports.html import render_html
from reports.terminal import heterogeneity_lines
from tests.fixtures.results import make_results


def _test(segment: str, p_adj: float) -> SegmentInteraction:
    return SegmentInteraction(
        segment=segment,
        lift_segment=0.2,
        lift_rest=0.05,
        difference=0.15,
        se=0.05,
        z=3.0,
        p_value=p_adj / 2,
        p_adjusted=p_adj,
        significant=p_adj < 0.05,
        users_segment=1000,
        users_rest=9000,
    )


def _entry(arm: str, tests: tuple[SegmentInteraction, ...], q: float = math.nan):
    return HeterogeneityTests(
        metric="conversion",
        arm=arm,
        scale="relative",
        q=q,
        q_p_value=0.01 if not math.isnan(q) else math.nan,
        i2=0.5 if not math.isnan(q) else math.nan,
        q_segments=3 if not math.isnan(q) else 0,
        family=f"interaction:conversion:{arm}:relative",
        family_size=len(tests),
        correction="holm",
        tests=tests,
    )


def test_report_names_the_arm_and_escapes_segment_names():
    tests = (_test("<b>vip</b>", 0.01), _test("casual", 0.6))
    results = replace(
        make_results(), heterogeneity_tests=(_entry("a", tests, q=9.0), _entry("b", tests))
    )
    page = render_html(results)
    section = page[page.index("<h2>Heterogeneity") : page.index("<h2>Segments")]
    assert 'id="segment-vs-rest"' in section
    assert '<td class="l">a</td>' in section
    assert '<td class="l">b</td>' in section
    assert "<b>vip</b>" not in section
    assert "&lt;b&gt;vip&lt;/b&gt;" in section
    assert "Cochran&#39;s Q" in section or "Cochran's Q" in section


def test_terminal_lists_only_what_differs_or_one_summary_line():
    results = replace(
        make_results(),
        heterogeneity_tests=(_entry("b", (_test("[red]vip", 0.01), _test("casual", 0.6))),),
    )
    lines = heterogeneity_lines(results)
    assert len(lines) == 2
    assert "vip vs rest" in lines[1]
    assert "casual" not in "".join(lines)
    assert "[red]" not in lines[1].replace("\\[red]", "")  # user text is not markup
    calm = replace(make_results(), heterogeneity_tests=(_entry("b", (_test("casual", 0.6),)),))
    assert heterogeneity_lines(calm) == [
        "[green]heterogeneity: no segment's lift differs from the rest's[/] "
        "(1 segment-vs-rest tests, holm per metric × arm × scale)"
    ]
    assert heterogeneity_lines(make_results()) == []


def test_arm_pairs_show_in_report_and_terminal():
    from reports.terminal import pair_lines

    base = make_results()
    row = replace(base.results[0], arm="b<i>", baseline_arm="a", family="pairs:primary")
    results = replace(base, arm_comparisons=(row,))
    page = render_html(results)
    section = page[page.index('id="arm-pairs"') : page.index("<h2>Heterogeneity")]
    assert "b&lt;i&gt; vs a" in section
    lines = pair_lines(results)
    assert "vs a" in lines[1]
    assert pair_lines(base) == []
