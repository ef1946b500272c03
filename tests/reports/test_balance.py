"""A failed balance check: blocks shipping like SRM, red in the terminal, a banner in the report."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from experiment.errors import DataError
from experiment.results import (
    AnalysisResults,
    Balance,
    BalanceTest,
    SegmentBalance,
    load_results,
)
from experiment.results.decision import decisions
from reports.html import render_html
from reports.terminal import balance_line
from tests.fixtures.results import make_results, make_row

REASON = "covariate imbalance before exposure: fix the randomisation or assignment join"


def _test(segment: str, covariate: str, *, flag: bool, p: float) -> BalanceTest:
    return BalanceTest(
        segment=segment, covariate=covariate, arm="treatment", n_control=5000,
        n_treatment=5000, mean_control=3.0, mean_treatment=3.4, smd=0.12,
        p_value=p, p_adjusted=min(1.0, p * 40), flag=flag,
    )  # fmt: skip


def _balanced(*flagged: str) -> AnalysisResults:
    """Two segments (all, vip) that would ship; balance flagged in ``flagged``."""
    rows = (make_row("all", "conversion", 0.1, 0.05), make_row("vip", "conversion", 0.1, 0.05))
    tests = tuple(_test(s, "orders_90d", flag=True, p=1e-9) for s in flagged)
    tests += (_test("all", "sessions_30d", flag=False, p=0.3),)
    balance = Balance(
        flag=bool(flagged),
        threshold=0.001,
        method="welch-t, holm",
        covariates=("orders_90d", "sessions_30d"),
        tests=40,
        segments=tuple(
            SegmentBalance(segment=s, flag=s in flagged, p_adjusted=4e-8 if s in flagged else 1.0)
            for s in ("all", "vip")
        ),
        worst=tests,
    )
    return replace(make_results(), results=rows, balance=balance)


def test_a_clean_check_leaves_decisions_alone():
    assert {d.segment: d.kind for d in decisions(_balanced())} == {"all": "ship", "vip": "ship"}


def test_a_flagged_segment_blocks_that_segment_only():
    made = {d.segment: (d.kind, d.reason) for d in decisions(_balanced("vip"))}
    assert made["all"][0] == "ship"
    assert made["vip"] == ("keep testing", REASON)


def test_a_flagged_all_blocks_every_segment():
    made = {d.segment: (d.kind, d.reason) for d in decisions(_balanced("all"))}
    assert made == {"all": ("keep testing", REASON), "vip": ("keep testing", REASON)}


def test_a_significant_harm_is_still_dont_ship():
    results = _balanced("all")
    harm = replace(results.results[1], lift_abs=-0.01, lift_rel=-0.2)
    made = {
        d.segment: d.kind for d in decisions(replace(results, results=(results.results[0], harm)))
    }
    assert made["vip"] == "don't ship"


def test_balance_round_trips_through_results_json():
    results = _balanced("vip")
    doc = json.loads(results.to_json())
    assert doc["balance"]["flag"] is True
    assert doc["balance"]["worst"][0]["covariate"] == "orders_90d"
    assert AnalysisResults.from_json_dict(doc).balance == results.balance


def test_an_older_results_json_has_no_balance_check():
    doc = json.loads(make_results().to_json())
    del doc["balance"]
    loaded = AnalysisResults.from_json_dict(doc)
    assert not loaded.balance.ran
    assert not loaded.balance.flag


def test_terminal_line_is_red_when_flagged_and_green_when_not():
    assert balance_line(_balanced("vip")).startswith("[bold red]balance check FAILED")
    assert "orders_90d in vip" in balance_line(_balanced("vip"))
    assert balance_line(_balanced()).startswith("[green]balance check passed[/]")
    assert "not run" in balance_line(make_results())


def test_terminal_line_escapes_markup_and_strips_control_characters():
    from rich.console import Console  # noqa: TID251 - rendering the terminal view under test

    results = _balanced("vip")
    evil = replace(results.balance.worst[0], covariate="[/]\x1b]0;pwn\x07x", segment="[bold]v")
    results = replace(results, balance=replace(results.balance, worst=(evil,)))
    line = balance_line(results)
    assert "\x1b" not in line
    assert "\x07" not in line
    console = Console(record=True, width=300)
    console.print(line)  # raises on unbalanced markup
    assert "[/]x in [bold]v" in console.export_text()  # the OSC sequence is dropped whole


def test_report_shows_a_banner_when_flagged_and_a_note_when_not():
    page = render_html(_balanced("vip"))
    assert 'id="balance-banner"' in page
    assert "orders_90d in vip" in page
    clean = render_html(_balanced())
    assert 'id="balance-banner"' not in clean
    assert 'id="balance-note"' in clean
    assert "Covariate balance check passed" in clean


def test_report_escapes_covariate_names():
    results = _balanced("vip")
    evil = replace(results.balance.worst[0], covariate="<script>alert(1)</script>")
    page = render_html(replace(results, balance=replace(results.balance, worst=(evil,))))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "x",
        {"worst": [1]},
        {"segments": {"a": 1}},
        {"tests": "many"},
        {"worst": [{"smd": "big"}]},
    ],
)
def test_a_malformed_balance_block_is_one_data_error(tmp_path, bad):
    doc = json.loads(_balanced("vip").to_json())
    doc["balance"] = bad
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match="field 'balance"):
        load_results(path)
