"""The lifecycle sections of the report and the terminal: shown with the block, escaped."""

import re
from dataclasses import replace
from typing import Any

from experiment.results.lifecycle import (
    Lifecycle,
    MigrationRow,
    MigrationSegmentRow,
    SegmentMigrationRow,
    SurvivalCurveRow,
    SurvivalRow,
    ValueRow,
)
from reports.html import render_html
from reports.lifecycle_text import lifecycle_lines
from tests.fixtures.results import make_results

EVIL = '<script>alert("x")</script>'


def _block(arm: str = "treatment", segment: str = "all") -> Lifecycle:
    common: dict[str, Any] = {
        "arm": arm,
        "n_control": 100,
        "n_treatment": 100,
        "family": "f",
        "family_size": 2,
    }
    move = MigrationRow(
        day=14,
        segment="at_risk",
        to="active",
        share_control=0.5,
        share_treatment=0.6,
        effect=0.1,
        ci_low=0.02,
        ci_high=0.18,
        p_value=0.01,
        p_adjusted=0.02,
        significant=True,
        **common,
    )
    stay = replace(
        move,
        to="at_risk",
        share_control=0.5,
        share_treatment=0.4,
        effect=-0.1,
        ci_low=-0.18,
        ci_high=-0.02,
    )
    surv = SurvivalRow(
        curve="retained",
        segment=segment,
        day=7,
        at_risk_control=90,
        at_risk_treatment=92,
        survival_control=0.9,
        survival_treatment=0.92,
        effect=0.02,
        ci_low=-0.01,
        ci_high=0.05,
        p_value=0.2,
        p_adjusted=0.4,
        significant=False,
        **common,
    )
    curve = [
        SurvivalCurveRow(
            curve="retained",
            segment=segment,
            arm=a,
            survival=(1.0, 0.95, 0.9),
            ci_low=(1.0, 0.9, 0.85),
            ci_high=(1.0, 1.0, 0.95),
        )
        for a in ("control", arm)
    ]
    value = ValueRow(
        segment=segment,
        arm=arm,
        horizon=90,
        n_control=100,
        n_treatment=100,
        value_control=10.0,
        value_treatment=12.0,
        decay_control=0.99,
        decay_treatment=1.0,
        effect=2.0,
        ci_low=-1.0,
        ci_high=5.0,
        p_value=0.2,
    )
    return Lifecycle(
        days=(14,),
        window_days=14,
        correction="holm",
        migration_family="per stage",
        survival_family="per curve",
        value_model="projection: a stated model",
        migration=(move, stay),
        survival=(surv,),
        curves=tuple(curve),
        value=(value,),
    )


def test_report_shows_the_lifecycle_section_only_with_the_block():
    plain = make_results()
    assert 'id="lifecycle"' not in render_html(plain)
    page = render_html(replace(plain, lifecycle=_block()))
    assert 'id="lifecycle"' in page
    assert "+10.0 pp" in page  # the planted move, in the heatmap
    assert "projection: a stated model" in page
    assert page.count("<polyline") == 2  # control and treatment curves


def test_report_escapes_names_inside_the_lifecycle_svgs():
    page = render_html(replace(make_results(), lifecycle=_block(arm=EVIL, segment=EVIL)))
    assert EVIL not in page
    assert "&lt;script&gt;" in page
    section = page[page.index('id="lifecycle"') :]
    assert not re.search(r"<script[^>]*>alert", section)


def test_terminal_lines_name_the_significant_move_and_the_projection():
    lines = lifecycle_lines(replace(make_results(), lifecycle=_block()))
    text = "\n".join(lines)
    assert "at_risk → active" in text
    assert "+10.0 pp" in text
    assert "projection" in text
    assert lifecycle_lines(make_results()) == []


def test_terminal_escapes_rich_markup_in_names():
    lines = lifecycle_lines(replace(make_results(), lifecycle=_block(arm="[bold]x[/]")))
    assert any("\\[bold]x\\[/]" in line for line in lines)


def _with_segments(name: str) -> Lifecycle:
    move = _block().migration[0]
    fields = {k: v for k, v in vars(move).items() if k != "segment"}
    rows = (
        SegmentMigrationRow(**{**fields, "to": "member"}, segment=name, start="not_member"),
        SegmentMigrationRow(
            **{**fields, "to": "not_member", "effect": -0.1, "significant": False},
            segment=name,
            start="not_member",
        ),
    )
    info = MigrationSegmentRow(segment=name, recomputed=("days_since_last_login",), frozen=())
    return replace(
        _block(),
        segment_migration=rows,
        migration_segments=(info,),
        segment_migration_family="per rule family",
    )


def test_report_and_terminal_show_rule_segment_migration_escaped():
    page = render_html(replace(make_results(), lifecycle=_with_segments("recent")))
    section = page[page.index("Segment migration") :]
    assert 'class="lifecycle-segment-heatmap" data-segment="recent"' in section
    assert "not_member" in section
    assert "days_since_last_login" in section
    assert "per rule family" in section
    text = "\n".join(lifecycle_lines(replace(make_results(), lifecycle=_with_segments("recent"))))
    assert "recent: not_member → member" in text
    evil = render_html(replace(make_results(), lifecycle=_with_segments(EVIL)))
    assert EVIL not in evil
    assert "<svg" in evil[evil.index("Segment migration") :]
    assert replace(_block(), segment_migration=()).segment_migration == ()
    assert "Segment migration" not in render_html(replace(make_results(), lifecycle=_block()))
