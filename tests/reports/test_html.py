import html
import json
import re
from dataclasses import replace

from experiment.results import (
    AnalysisResults,
    DataQuality,
    DataQualityCheck,
    SegmentInfo,
    SegmentSrm,
)
from reports.html import render_html, write_html
from tests.fixtures.results import make_cuped_row, make_many, make_results, make_row, with_srm

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_render_html_escapes_segment_names():
    results = make_results(segment=EVIL)
    results = replace(
        results, experiment=f"exp {EVIL}", segments=(replace(results.segments[0], where=EVIL),)
    )
    page = render_html(results)
    assert EVIL not in page
    assert ESCAPED in page
    assert page.count("<script") == 1  # the report's own table script, nothing injected
    assert EVIL not in page


def test_render_html_escapes_names_inside_charts_and_every_text_field():
    base = make_many(n_segments=3, n_metrics=2)
    rows = tuple(replace(r, segment=EVIL, metric=f"m{EVIL}") for r in base.results)
    evil = replace(
        base,
        results=rows,
        notes=(EVIL,),
        cuped_covariates={EVIL: EVIL},
        segments=(replace(base.segments[0], name=EVIL, description=EVIL),),
    )
    page = render_html(evil)
    assert page.count("<script") == 1  # the report's own table script, nothing injected
    assert EVIL not in page
    svg = page[page.index('<figure class="forest"') :]
    assert ESCAPED in svg[: svg.index("</figure>")]  # the forest label is text, not markup


def test_render_html_is_self_contained():
    page = render_html(make_many(n_segments=5))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page
    assert "@import" not in page
    assert "url(" not in page.replace("url(#", "")  # only in-document SVG references


def test_render_html_has_forest_row_per_segment_and_srm_state():
    results = make_results()
    page = render_html(results)
    assert page.count('id="forest-0-row-') == 2  # the nan row is a row too, with its reason
    assert "too_few_units" in page
    assert 'id="srm-banner"' not in page
    assert 'id="srm-banner"' in render_html(with_srm(results))


def test_render_html_sections_in_order():
    page = render_html(make_many(n_segments=4))
    marks = ["<h1>", 'id="decisions"', 'class="forest"', 'class="metric ', 'id="heterogeneity"']
    marks += ['class="timeline"', 'id="segments"', 'id="methods"']
    positions = [page.index(m) for m in marks]
    assert positions == sorted(positions)


def test_render_html_decision_rule_and_counts():
    win = make_row("all", "conversion", 0.1, 0.05)
    flat = make_row("a", "conversion", 0.0, 0.05)
    harm = make_row("b", "conversion", -0.2, 0.05)
    base = make_results()
    page = render_html(replace(base, results=(win, flat, harm), segments=()))
    assert 'data-segment="all" data-decision="ship"' in page
    assert 'data-segment="a" data-decision="keep testing"' in page
    assert 'data-segment="b" data-decision="don&#39;t ship"' in page
    assert 'id="decision-rule"' in page


def test_render_html_suppressed_segment_never_shows_numbers():
    # suppressed: the privacy-floor flag (added by analysis)
    row = replace(
        make_row("tiny", "conversion", 0.4321, 0.01), n_control=17, n_treatment=19, suppressed=True
    )
    base = make_results()
    seg = replace(base.segments[0], name="tiny", users=36)
    page = render_html(replace(base, results=(*base.results, row), segments=(seg,)))
    body = page[page.index("<body>") :]
    for leak in ("+43.2%", "17 / 19", ">36<", ">0.0716<"):
        assert leak not in body
    assert body.count("below minimum size") >= 3  # decision, table, segment size


def test_render_html_shows_data_quality_and_segment_srm_problems():
    base = make_results()
    vip = SegmentSrm(segment="vip", p_value=1e-6, observed={"c": 10}, flag=True)
    quality = DataQuality(
        checks=(
            DataQualityCheck(name="duplicate_users", count=42, action="dropped",
                             message="users in two arms", severity="error"),
            DataQualityCheck(name="late_events", count=0, action="", message="",
                             severity="warning"),
            DataQualityCheck(name="events_outside_window", count=7, action="excluded",
                             message="after the window", severity="info"),
        )
    )  # fmt: skip
    results = replace(base, srm=replace(base.srm, segments=(vip,)), data_quality=quality)
    page = render_html(results)
    assert 'id="data-quality-banner"' in page
    assert "duplicate_users: 42" in page
    assert "late_events" not in page  # nothing found, nothing shown
    # info findings are a note after the banner, not an alarm inside it
    assert page.index("events_outside_window") > page.index('id="data-quality-notes"')
    assert 'id="data-quality-notes"' in page
    assert "events_outside_window: 7" in page
    assert 'id="srm-segments-banner"' in page
    assert "vip: p &lt; 0.001" in page


def test_render_html_from_json_round_trip_keeps_optional_sections():
    results = make_many(n_segments=3)
    back = AnalysisResults.from_json_dict(json.loads(results.to_json()))
    assert back == results
    page = render_html(back)
    assert "Chance to win" in page
    assert "Always-valid p" in page
    assert "CUPED var. cut" in page
    assert "covariate conversion_pre" in page


def test_render_html_50_segments_4_metrics_is_small():
    # Its speed is measured by benchmarks/report.py, not asserted here.
    page = render_html(make_many(n_segments=50, n_metrics=4))
    assert len(page.encode()) < 2_000_000


def test_write_html_is_atomic(tmp_path):
    target = tmp_path / "r" / "report.html"
    write_html(make_results(), target)
    assert target.read_text().startswith("<!doctype html>")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_render_html_tags_underpowered_only_rows_without_a_significant_lift():
    base = make_results()
    win = make_row("winners", "conversion", 0.3, 0.1, underpowered=True)  # significant
    flat = make_row("flat", "conversion", 0.0, 0.1, underpowered=True)  # not significant
    page = render_html(replace(base, results=(*base.results, win, flat)))

    def result_cell(name: str) -> str:  # the metric table's "Result" cell of the segment
        row = rf'data-segment="{name}">\s*<td class="l">{name}</td><td>(?:(?!</tr>).)*?'
        found = re.search(row + r'<td class="l v-[^"]*">(.*?)</td>', page, re.S)
        assert found is not None
        return found.group(1)

    assert result_cell("winners").startswith("win")
    assert "underpowered" not in result_cell("winners")
    assert "underpowered" in result_cell("flat")


def test_render_html_colours_a_lower_is_better_fall_as_a_win():
    fewer = replace(make_row("all", "unsubscribes", -0.2, 0.05), higher_is_better=False)
    more = replace(make_row("vip", "unsubscribes", 0.2, 0.05), higher_is_better=False)
    page = render_html(replace(make_results(), results=(fewer, more)))
    assert "guardrail, lower is better" not in page  # the first metric is the primary
    assert "primary, lower is better" in page

    def forest_row(i: int) -> str:
        start = page.index(f'id="forest-0-row-{i}"')
        return page[start : page.index("</g>", start)].lower()

    assert "#0072b2" in forest_row(0)  # blue: better, although the lift is negative
    assert "#d55e00" in forest_row(1)  # orange: worse, although the lift is positive
    assert re.search(r'class="l v-win">win', page)
    assert re.search(r'class="l v-loss">loss', page)


def test_render_html_cuped_section_shows_marked_adjusted_means_beside_raw():
    base = make_results()
    hidden = replace(make_cuped_row("tiny"), suppressed=True, mean_control_adj=9.8765)
    page = render_html(replace(base, results=(make_cuped_row("all"), hidden),
                               cuped_covariates={"revenue": EVIL}))  # fmt: skip
    section = page[page.index('id="metric-0"') : page.index("<h2>Heterogeneity")]
    assert 'class="tag cuped-tag">CUPED<' in section
    assert "Control (CUPED-adj.)*" in section
    assert ">1.62*<" in section
    assert ">1.55*<" in section
    assert "1.69 / 1.41" in section  # the raw means, beside them
    assert "cuped-legend" in section
    assert "9.88" not in page  # the privacy floor withholds the adjusted means too
    methods = page[page.index("<h2>Methods") :]
    assert f"covariate {ESCAPED}; variance of the difference reduced by 40.0% in all" in methods
    assert page.count("<script") == 1  # the report's own table script, nothing injected
    assert EVIL not in page


def test_render_html_non_cuped_rows_show_raw_means_unmarked():
    page = render_html(make_results())
    section = page[page.index('id="metric-0"') : page.index("<h2>Heterogeneity")]
    assert "CUPED-adj." not in section
    assert ">0.0312<" in section


def test_render_html_decisions_show_impact_and_time_to_decide():
    ship = replace(
        make_row("all", "conversion", 0.1, 0.05),
        impact_30d=1234.0, impact_30d_low=210.0, impact_30d_high=2258.0,
    )  # fmt: skip
    slow = replace(
        make_row("small", "conversion", 0.0, 0.05),
        underpowered=True, extra_users_needed=18000.0, extra_days_needed=8.4,
    )  # fmt: skip
    hidden = replace(make_row("tiny", "conversion", 0.0, 0.05), suppressed=True, impact_30d=777.0)
    results = replace(make_results(), results=(ship, slow, hidden), segments=(), target_lift=0.1)
    page = render_html(results)
    assert "+1,234 users with conversion per 30 days [+210, +2,258]" in page
    assert "~9 more days (18,000 users) to detect 10%" in page
    assert "777" not in page[page.index("<body>") :]  # a suppressed row shows nothing


def test_render_html_warnings_banner_is_yellow_and_on_top():
    base = make_results()
    quality = DataQuality(
        checks=(
            DataQualityCheck(name="empty_segments", count=1, action="counted",
                             message="segment(s) 'bronz' have no assigned users",
                             severity="warning"),
        )
    )  # fmt: skip
    page = render_html(replace(base, data_quality=quality))
    body = page[page.index("<body>") :]
    banner = body.index('id="data-quality-banner"')
    assert 'class="banner warn"' in body[banner - 60 : banner]
    assert banner < body.index("<h2>Decisions</h2>")
    assert banner < body.index("Sample ratio check passed")
    assert "segment(s) &#39;bronz&#39; have no assigned users" in body


def test_render_html_tables_are_plain_html_without_javascript():
    page = render_html(make_many(n_segments=6, n_metrics=2))
    body = re.sub(r"<script>.*?</script>", "", page, flags=re.S)  # JavaScript off
    assert "<input" not in body
    assert " hidden" not in body
    tables = re.findall(r'<table class="metric results sortable"[^>]*>(.*?)</table>', body, re.S)
    assert len(tables) == 2
    for table in tables:  # every row, in the analysis order, with its numbers
        names = re.findall(r'<tr[^>]* data-segment="([^"]*)"', table)
        assert names == ["all", *(f"segment_{i:02d}" for i in range(6))]
    assert 'http-equiv="Content-Security-Policy"' in page
    assert "default-src 'none'" in html.unescape(page)  # no fetch of any kind


def _segments_table(page: str) -> str:
    start = page.index('<table id="segments"')
    return page[start : page.index("</table>", start)]


def test_render_html_shows_each_segment_definition_escaped():
    base = make_results()
    crossed = SegmentInfo(
        name="stage_at_risk_mobile",
        where="",
        definition=f"lifecycle == 'at_risk' and device == {EVIL}",
        description=f"Mine: {EVIL}",
        users=500,
    )
    rule = SegmentInfo(
        name="busy", where="visits >= 10", definition="visits >= 10; and in no earlier segment",
        description="", users=300,
    )  # fmt: skip
    table = _segments_table(render_html(replace(base, segments=(*base.segments, crossed, rule))))
    assert f"lifecycle == &#39;at_risk&#39; and device == {ESCAPED}" in table
    assert f"Mine: {ESCAPED}" in table  # the user's own description is kept
    assert "<code>visits &gt;= 10</code>" in table
    assert "and in no earlier segment" in table
    assert "everyone assigned" in table  # only for all


def test_render_html_does_not_call_an_undescribed_segment_everyone():
    base = make_results()
    old = SegmentInfo(name="taste_high_spend", where="", description="", users=500)  # old file
    table = _segments_table(render_html(replace(base, segments=(*base.segments, old))))
    row = table[table.index('data-segment="taste_high_spend"') :]
    row = row[: row.index("</tr>")]
    assert "everyone" not in row
    assert "not recorded" in row


def test_render_html_timeline_caption_names_a_late_first_day():
    base = make_many(n_segments=2, n_metrics=1)
    late = tuple(p for p in base.timeline if p.date >= "2026-01-09")
    page = render_html(replace(base, timeline=late))
    caption = page[page.index('<figure class="timeline"') :]
    caption = caption[: caption.index("</figcaption>")]
    assert "first estimate is on 2026-01-09" in caption
    assert "grey band" in caption
    on_time = render_html(base)
    assert "first estimate" not in on_time  # data from the window's first day
