import io
from dataclasses import replace

from rich.console import Console  # noqa: TID251 - rendering the terminal view under test

from reports.terminal import decision_table, lift_table
from tests.fixtures.results import make_cuped_row, make_results, make_row


def _text(renderable) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_decision_table_lists_each_segment_with_decision():
    rows = (
        make_row("all", "conversion", 0.1, 0.05),
        make_row("[red]x[/]", "conversion", 0.0, 0.05),
    )
    text = _text(decision_table(replace(make_results(), results=rows)))
    assert "✔ ship" in text
    assert "… keep testing" in text
    assert "[red]x[/]" in text  # user text is never rich markup
    assert "primary metric: conversion" in text


def test_lift_table_hides_suppressed_numbers():
    row = replace(
        make_row("tiny", "conversion", 0.4321, 0.01), n_control=17, n_treatment=19, suppressed=True
    )
    text = _text(lift_table(replace(make_results(), results=(row,))))
    assert "below minimum size" in text
    assert "17" not in text
    assert "43.2" not in text


def test_lift_table_marks_lower_is_better_metrics_and_their_wins():
    fewer = replace(make_row("all", "unsubscribes", -0.2, 0.05), higher_is_better=False)
    text = _text(lift_table(replace(make_results(), results=(fewer,))))
    assert "unsubscribes ↓" in text
    assert "lower is better" in text
    assert "win" in text
    assert "loss" not in text
    plain = _text(lift_table(replace(make_results(), results=(make_row("all", "c", 0.2, 0.05),))))
    assert "↓" not in plain


def test_lift_table_marks_cuped_rows_and_shows_adjusted_means():
    hidden = replace(make_cuped_row("tiny"), suppressed=True, mean_control_adj=9.8765)
    results = replace(
        make_results(),
        results=(make_cuped_row("all"), hidden),
        cuped_covariates={"revenue": "[b]x"},
    )
    text = _text(lift_table(results))
    assert "revenue (CUPED)" in text
    assert "1.623*" in text
    assert "1.554*" in text
    assert "1.691" not in text  # no raw mean beside the adjusted lift
    assert "* CUPED-adjusted means" in text
    assert "revenue: CUPED, covariate [b]x; variance of the difference reduced by 40.0%" in text
    assert "9.877" not in text


def test_lift_table_plain_rows_unmarked():
    text = _text(lift_table(make_results()))
    assert "CUPED" not in text
    assert "0.0312 " in text


def test_decision_table_shows_impact_of_a_ship_and_time_of_an_underpowered_row():
    ship = replace(
        make_row("all", "conversion", 0.1, 0.05),
        impact_30d=1234.0, impact_30d_low=210.0, impact_30d_high=2258.0, impact_window=600.0,
    )  # fmt: skip
    slow = replace(
        make_row("small", "conversion", 0.0, 0.05),
        underpowered=True, extra_users_needed=18000.0, extra_days_needed=8.4,
    )  # fmt: skip
    fixed = replace(
        make_row("fixed", "conversion", 0.1, 0.05),
        impact_window=-12.5, impact_window_low=-30.0, impact_window_high=5.0,
    )  # fmt: skip
    results = replace(make_results(), results=(ship, slow, fixed), target_lift=0.1)
    text = _text(decision_table(results))
    assert "+1,234 users with conversion per 30 days [+210, +2,258]" in text
    assert "~9 more days (18,000 users) to detect 10%" in text
    assert "-12.5 users with conversion per window [-30, +5]" in text


def _rendered(renderable, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


LONG = ("frequent_shoppers_on_mobile", "first_time_buyers", "cart_abandoners", "all")


def _named_rows(**extra):
    return tuple(make_row(s, "conversion", 0.1 * k, 0.05, **extra) for k, s in enumerate(LONG))


def test_lift_table_at_80_columns_keeps_every_name_whole_and_cuts_nothing():
    results = replace(make_results(), results=_named_rows())
    text = _rendered(lift_table(results, width=80), 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    for name in LONG:
        assert name in text, name  # never wrapped nor cut
    assert "…" not in text  # nothing ends in an ellipsis
    assert "inconclusive" in text or "win" in text  # the verdict column stays
    assert "users C/T" not in text  # the least important columns go first


def test_lift_table_without_a_width_keeps_every_column_and_shows_arm_only_when_several():
    results = replace(make_results(), results=_named_rows())
    text = _rendered(lift_table(results), 400)
    for header in ("users C/T", "control", "treatment", "p adj.", "verdict"):
        assert header in text, header
    assert " arm " not in text  # one treatment arm: the column would say "treatment" only
    second = tuple(replace(r, arm="treatment_b") for r in _named_rows())
    both = _rendered(lift_table(replace(results, results=_named_rows() + second)), 400)
    assert " arm " in both
    assert "treatment_b" in both


def test_decision_table_at_80_columns_keeps_segment_names_whole():
    results = replace(make_results(), results=_named_rows())
    text = _rendered(decision_table(results, width=80), 80)
    assert all(len(line) <= 80 for line in text.splitlines())
    for name in LONG:
        assert name in text, name
    assert "…" not in text.replace("… keep testing", "")
