import re
from dataclasses import replace

from reports.html import render_html, write_html
from tests.experiment.test_results import make_results

EVIL = "<script>alert(1)</script>"


def test_render_html_escapes_segment_names():
    results = make_results(segment=EVIL)
    results = replace(
        results, experiment=f"exp {EVIL}", segments=(replace(results.segments[0], where=EVIL),)
    )
    page = render_html(results)
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page


def test_render_html_is_self_contained():
    page = render_html(make_results())
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page
    assert "@import" not in page


def test_render_html_has_a_ci_bar_per_finite_row_and_srm_state():
    results = make_results()
    page = render_html(results)
    assert page.count('<svg class="ci"') == 1  # the nan row has no bar, it shows its reason
    assert "too_few_units" in page
    assert 'id="srm-banner"' not in page
    flagged = replace(results, srm=replace(results.srm, flag=True, p_value=1e-9))
    assert 'id="srm-banner"' in render_html(flagged)


def test_write_html_is_atomic(tmp_path):
    target = tmp_path / "r" / "report.html"
    write_html(make_results(), target)
    assert target.read_text().startswith("<!doctype html>")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]
