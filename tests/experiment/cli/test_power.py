"""End-to-end tests of `exp power` (typer's CliRunner, real DuckDB) against pandas/statsmodels."""

import json
import math
import shutil

import pandas as pd
import pytest
from statsmodels.stats.power import NormalIndPower
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.dataset import per_user_reference

runner = CliRunner()


def _power(*args):
    result = runner.invoke(app, ["power", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _row(doc, segment, metric):
    return next(r for r in doc["rows"] if r["segment"] == segment and r["metric"] == metric)


def test_power_baselines_sizes_and_days_match_references(dataset_dir):
    doc = _power(str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"), "--lift", "0.1")
    df = per_user_reference(dataset_dir)
    asg = pd.read_parquet(dataset_dir / "assignments.parquet")
    asg = asg[asg.experiment == "exp1"]
    span = (asg.assigned_at.max() - asg.assigned_at.min()).total_seconds() / 86_400
    assert doc["baseline"] == "control arm"
    assert doc["traffic"] == "daily"  # assignments over several days
    assert doc["users_per_day"] == pytest.approx(len(df) / span, rel=1e-12)
    solver = NormalIndPower()
    for segment in ("all", "buyers", "mobile", "lapsed_desktop"):
        d = df[df[f"seg_{segment}"]]
        c = d[d.arm == "control"]
        n_c, n_t = len(c), int((d.arm == "treatment").sum())
        for metric, col in (("conversion", "conversion"), ("revenue_per_user", "revenue")):
            row = _row(doc, segment, metric)
            assert row["users"] == len(d)
            assert row["mean"] == pytest.approx(c[col].mean(), rel=1e-12)
            assert row["sd"] == pytest.approx(c[col].std(ddof=1), rel=1e-9)
            effect = 0.1 * c[col].mean() / c[col].std(ddof=1)  # z test on the control sd
            need = solver.solve_power(effect_size=effect, alpha=0.05, power=0.8, ratio=1.0)
            assert row["n_control_needed"] == math.ceil(need)
            assert row["users_needed"] == math.ceil(2 * need)
            seg_rate = doc["users_per_day"] * len(d) / len(df)
            assert row["days_needed"] == pytest.approx(2 * need / seg_rate, rel=1e-9)
            # MDE at the current split, statsmodels' solver
            d_mde = solver.solve_power(nobs1=n_c, ratio=n_t / n_c, alpha=0.05, power=0.8)
            assert row["mde_abs"] == pytest.approx(d_mde * c[col].std(ddof=1), rel=1e-4)


def test_power_ctr_sd_is_the_delta_method_linearisation(dataset_dir):
    doc = _power(str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"))
    c = per_user_reference(dataset_dir).query("arm == 'control'")
    r = c.click.mean() / c.impression.mean()
    lin = (c.click - r * c.impression) / c.impression.mean()
    row = _row(doc, "all", "ctr")
    assert row["mean"] == pytest.approx(r, rel=1e-12)
    assert row["sd"] == pytest.approx(lin.std(ddof=1), rel=1e-9)


def test_power_without_assignments_uses_all_customers(dataset_dir, tmp_path):
    folder = tmp_path / "pre"
    folder.mkdir()
    for name in ("customers", "events"):
        shutil.copy(dataset_dir / f"{name}.parquet", folder / f"{name}.parquet")
    (folder / "e.yaml").write_text(
        "name: exp1\nwindow: {start: 2026-01-06T00:00:00Z, days: 7}\n"
        "metrics:\n  - {name: conversion, kind: proportion, event: purchase}\n"
    )
    doc = _power(str(folder), "-e", str(folder / "e.yaml"), "--users-per-day", "500")
    assert doc["baseline"] == "all customers"
    assert doc["users_per_day"] == 500
    cust = pd.read_parquet(folder / "customers.parquet")
    ev = pd.read_parquet(folder / "events.parquet")
    start = pd.Timestamp("2026-01-06", tz="UTC")
    ev = ev[(ev.ts >= start) & (ev.ts < start + pd.Timedelta(days=7)) & (ev.event == "purchase")]
    conv = cust.user_id.isin(ev.user_id).astype(float)
    row = _row(doc, "all", "conversion")
    assert row["users"] == len(cust)
    assert row["mean"] == pytest.approx(conv.mean(), rel=1e-12)
    need = NormalIndPower().solve_power(
        effect_size=0.05 * conv.mean() / conv.std(ddof=1), alpha=0.05, power=0.8
    )
    assert doc["traffic"] == "daily"  # --users-per-day implies arrivals
    assert row["days_needed"] == pytest.approx(2 * need / 500, rel=1e-9)


def test_power_days_option_sets_the_window(dataset_dir):
    week = _power(str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"), "--days", "3")
    full = _power(str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"))
    assert (week["window_days"], full["window_days"]) == (3, 14)
    assert _row(week, "all", "conversion")["mean"] < _row(full, "all", "conversion")["mean"]


def test_power_table_output_and_segments_option(dataset_dir, tmp_path):
    (tmp_path / "s.yaml").write_text(
        "segments:\n  - {name: phones, where: \"device == 'mobile'\"}\n"
    )
    result = runner.invoke(
        app,
        ["power", str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"), "-s",
         str(tmp_path / "s.yaml")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "phones" in result.stdout
    assert "users/day" in result.stdout
    assert "buyers" not in result.stdout


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["{data}", "-e", "{tmp}/missing.yaml"], "experiment file not found"),
        (["{tmp}/nope", "-e", "{data}/experiment.yaml"], "dataset folder not found"),
        (["{data}", "-e", "{tmp}/bad.yaml"], "field 'cuped'"),
    ],
)
def test_power_bad_input_is_one_line_exit_2(dataset_dir, tmp_path, args, phrase):
    (tmp_path / "bad.yaml").write_text(
        "name: exp1\nmetrics:\n  - {name: c, kind: proportion, event: purchase, cuped: device}\n"
    )
    argv = [a.format(data=dataset_dir, tmp=tmp_path) for a in args]
    result = runner.invoke(app, ["power", *argv])
    assert_one_line_error(result, phrase)


def test_power_rejects_non_positive_lift(dataset_dir):
    result = runner.invoke(
        app, ["power", str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"), "--lift", "0"]
    )
    assert result.exit_code == 2
    assert "Traceback" not in result.output
