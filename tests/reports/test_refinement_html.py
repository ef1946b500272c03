import io
from dataclasses import replace

from rich.console import Console  # noqa: TID251 - rendering the terminal view under test

from experiment.results.refinement import NewSegment
from reports.html import render_html, write_html
from reports.refinement import describe_cut, proposal_views
from reports.terminal import refinement_table
from tests.fixtures.refinement import (
    group_proposal,
    make_refinement,
    merge_proposal,
    split_proposal,
    with_nan,
)
from tests.fixtures.results import make_many

SMALL = make_many(n_segments=1, n_metrics=1, timeline=False)
EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _section(page: str) -> str:
    start = page.index('<h2 id="refinements">')
    return page[start : page.index("<h2", start + 1)]


def test_render_html_without_refinement_has_no_section_and_is_unchanged():
    results = SMALL
    page = render_html(results)
    assert page == render_html(results, None)
    assert "Refinements" not in page
    assert 'id="refinements"' in render_html(results, make_refinement())


def test_render_html_refinement_shows_each_sides_held_out_evidence():
    section = _section(render_html(SMALL, make_refinement()))
    split = section[section.index("split of &#39;buyers&#39;") :]
    split = split[: split.index("</section>")]
    for text in (
        "proposed",
        "+18.0%",
        "[+9.0%, +27.0%]",
        "+1.0%",
        "[-6.0%, +8.0%]",
        "800",  # users
        "200 / 200",  # held out control / treatment
        "21.0%",  # follow-up MDE
        "p = 0.002, holm-adjusted 0.020",
        "best of 240 candidates",
        "<code>segment(&#34;buyers&#34;) and days_since_last_login &lt; 30</code>",
        "New segments (added to the proposals file)",
    ):
        assert text in split, text
    assert "95% CI (rel.)" in section
    assert "which the search never saw" in section  # the plain-language method note
    assert "2 of 3 proposals reached significance" in section
    merge = section[section.index("merge of &#39;buyers&#39;") :]
    assert "Equivalence test on the estimation half" in merge
    assert "p = 0.004, holm-adjusted 0.010; test of a difference: p = 0.600" in merge


def test_render_html_refinement_lists_significant_first_and_marks_the_rest():
    section = _section(render_html(SMALL, make_refinement()))
    flags = [
        part.split('data-significant="')[1][:4]
        for part in section.split("<section")[1:]  # one per proposal
    ]
    assert flags == ["true", "true", "fals"]
    rejected = section[section.index('data-significant="false"') :]
    assert "not proposed" in rejected
    assert "Segments it would add (not added)" in rejected


def test_render_html_refinement_escapes_every_text_field():
    split = split_proposal()
    evil = replace(
        split,
        segment=EVIL,
        attribute=EVIL,
        summary=EVIL,
        sides=(replace(split.sides[0], name=EVIL, rule=EVIL), split.sides[1]),
        new_segments=(NewSegment(name=EVIL, where=EVIL, description=EVIL),),
    )
    refinement = replace(
        make_refinement(evil, group_proposal()), metric=EVIL, attributes=(EVIL,), arm=EVIL
    )
    page = render_html(SMALL, refinement)
    assert page.count("<script") == 1  # the report's own table script, nothing injected
    assert EVIL not in page
    assert ESCAPED in _section(page)


def test_render_html_refinement_missing_estimate_is_a_dash():
    section = _section(render_html(SMALL, with_nan(make_refinement())))
    assert "<td>–</td>" in section


def test_render_html_refinement_with_no_proposals_says_so():
    section = _section(render_html(SMALL, make_refinement(split_proposal())))
    assert "No segment had a candidate" not in section
    empty = replace(make_refinement(), proposals=())
    assert "No segment had a candidate" in _section(render_html(SMALL, empty))


def test_write_html_passes_the_refinement(tmp_path):
    out = write_html(SMALL, tmp_path / "r.html", make_refinement())
    assert 'id="refinements"' in out.read_text()


def test_describe_cut_names_the_attribute_and_cut():
    assert describe_cut(split_proposal()) == "split of 'buyers' on days_since_last_login at 30"
    assert (
        describe_cut(group_proposal()) == "split of 'lapsed_desktop' on device (desktop | tablet)"
    )
    assert describe_cut(merge_proposal()) == "merge of 'buyers' and 'mobile'"
    moved = replace(split_proposal(), kind="threshold", threshold=0.5234567)
    assert describe_cut(moved) == "new threshold of 'buyers' on days_since_last_login at 0.5235"


def test_proposal_views_order_significant_first_by_adjusted_p():
    views = proposal_views(make_refinement(group_proposal(), split_proposal(), merge_proposal()))
    assert [v.p_adjusted for v in views] == ["0.010", "0.020", "0.620"]
    assert [v.verdict for v in views] == [
        "proposed (equivalent lifts)",
        "proposed",
        "not proposed",
    ]


def test_refinement_table_prints_sides_tests_and_verdicts_literally():
    split = split_proposal()
    marked = replace(
        split, sides=(replace(split.sides[0], rule="[bold]x[/bold] < 30"), split.sides[1])
    )
    console = Console(record=True, width=200, file=io.StringIO())
    console.print(refinement_table(make_refinement(marked, group_proposal())))
    text = console.export_text()
    assert "[bold]x[/bold] < 30" in text  # user text is not rich markup
    for value in ("+18.0%", "[+9.0%, +27.0%]", "0.002", "0.020", "21.0%", "not proposed"):
        assert value in text, value
    assert "p adj.: holm-adjusted" in text
