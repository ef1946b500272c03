"""Predictive segments with event targets, on a simulated e-commerce dataset."""

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from experiment.engine.dataset import open_dataset
from experiment.errors import ConfigError, RuleError
from segments import fit_models, load_segments, membership
from segments.definitions import EventTarget, SegmentSet
from segments.models import EventTables
from segments.targets import event_labels
from simulators import simulate

AS_OF = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
FEATURES = "[sessions_30d, logins_7d, orders_90d, revenue_90d, cart_abandons_30d, clicks_30d]"
SEGMENTS = f"""\
segments:
  - name: buyers
    predict:
      target: {{event: purchase, days: 14}}
      features: {FEATURES}
      bands: {{top_decile: [0.9, 1.0], bottom_half: [0.0, 0.5]}}
  - name: churn
    predict:
      target: {{event: session, days: 14, absent: true}}
      features: [sessions_30d, logins_7d, days_since_last_login]
  - name: lapsed
    predict:
      target: "days_since_last_login >= 30"
      features: [orders_90d, revenue_90d]
"""


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ecom") / "data"
    simulate("ecommerce", users=8000, days=14, seed=1, out=out)
    return out


def _segments(folder: Path, text: str = SEGMENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.yaml"
    path.write_text(text)
    return path


def _fit(data: Path, plan: Path) -> dict[str, Any]:
    ds = open_dataset(data)
    fit_models(
        load_segments(plan),
        ds.customers,
        as_of=AS_OF,
        events=EventTables(ds.events, ds.assignments),
    )
    doc: dict[str, Any] = json.loads(plan.with_name("plan.models.json").read_text())
    return doc


def _target(plan: SegmentSet) -> EventTarget:
    spec = plan.segments[0].predict
    assert spec is not None
    assert isinstance(spec.target, EventTarget)
    return spec.target


def _pandas_labels(data: Path, event: str, days: int, absent: bool) -> pd.Series:
    """The same definition, independently: control arm, [assigned_at, +days), full windows."""
    ev = pd.read_parquet(data / "events.parquet")
    asg = pd.read_parquet(data / "assignments.parquet")
    ref = asg[asg.arm == "control"].groupby("user_id").assigned_at.min()
    horizon = ev.ts.max().normalize() + pd.Timedelta(days=1)
    ref = ref[ref + pd.Timedelta(days=days) <= horizon]
    hits = ev[ev.event == event].merge(ref.rename("ref"), left_on="user_id", right_index=True)
    inside = hits[(hits.ts >= hits.ref) & (hits.ts < hits.ref + pd.Timedelta(days=days))]
    has = ref.index.isin(inside.user_id.unique())
    return pd.Series(~has if absent else has, index=ref.index, name="y").sort_index()


@pytest.mark.parametrize(("event", "absent"), [("purchase", False), ("session", True)])
def test_event_labels_equal_a_pandas_reference(sim, event, absent):
    load = load_segments(
        _segments(
            Path(sim).parent / f"lab_{event}",
            f"segments:\n  - name: t\n    predict:\n      target: {{event: {event}, days: 9, "
            f"absent: {str(absent).lower()}}}\n      features: [orders_90d]\n",
        )
    )
    target = _target(load)
    ds = open_dataset(sim)
    got = event_labels(target, ds.customers, ds.events, ds.assignments).to_pyarrow().to_pandas()
    got = got.set_index("user_id").y.astype(bool).sort_index()
    want = _pandas_labels(sim, event, 9, absent)
    assert len(want) > 3000  # the control arm, about half of 8,000
    pd.testing.assert_series_equal(got, want, check_names=False, check_index_type=False)


@pytest.mark.slow
def test_event_target_auc_and_bands_reproduce_on_rerun_and_fresh_copy(sim, tmp_path):
    plan = _segments(tmp_path / "a")
    doc1 = _fit(sim, plan)
    buyers, churn = doc1["models"]["buyers"]["params"], doc1["models"]["churn"]["params"]
    assert buyers["auc"] > 0.7  # engaged users buy more (0.90 here)
    assert churn["auc"] > 0.7  # and come back (0.88 here)
    assert 3000 < buyers["n_train"] + buyers["n_test"] < 5000  # control arm only
    assert doc1["models"]["lapsed"]["spec"]["target"] == "days_since_last_login >= 30"
    customers = pq.read_table(sim / "customers.parquet")
    run1 = membership(customers, load_segments(plan), as_of=AS_OF)  # no events needed
    # a second run refits to the very same sidecar models and the same members
    doc2 = _fit(sim, plan)
    assert doc2["models"] == doc1["models"]
    # a fresh copy of the data, fitted from scratch
    fresh = tmp_path / "copy"
    shutil.copytree(sim, fresh)
    plan3 = _segments(tmp_path / "b")
    doc3 = _fit(fresh, plan3)
    assert doc3["models"] == doc1["models"]
    run3 = membership(pq.read_table(fresh / "customers.parquet"), load_segments(plan3), as_of=AS_OF)
    assert list(run1) == list(run3)
    for name in run1:
        np.testing.assert_array_equal(run1[name], run3[name], err_msg=name)
    assert abs(run1["buyers_top_decile"].mean() - 0.1) < 0.03
    assert abs(run1["buyers_bottom_half"].mean() - 0.5) < 0.05


def test_event_target_without_a_fitted_model_asks_for_exp_segments_fit(sim, tmp_path):
    plan = _segments(tmp_path)
    customers = pq.read_table(sim / "customers.parquet")
    with pytest.raises(RuleError, match=r"segment 'buyers'.*exp segments fit"):
        membership(customers, load_segments(plan), as_of=AS_OF)


def test_event_target_unknown_event_is_a_one_line_config_error_with_suggestion(sim, tmp_path):
    text = SEGMENTS.replace("event: purchase", "event: purchse")
    with pytest.raises(ConfigError) as err:
        _fit(sim, _segments(tmp_path, text))
    msg = str(err.value)
    assert "\n" not in msg
    assert "segment 'buyers'" in msg
    assert "did you mean 'purchase'?" in msg
    assert "add_to_cart" in msg  # the existing events are listed


@pytest.mark.parametrize("days", [0, -3])
def test_event_target_days_must_be_positive(tmp_path, days):
    text = SEGMENTS.replace("days: 14}", f"days: {days}}}", 1)
    with pytest.raises(ConfigError) as err:
        load_segments(_segments(tmp_path, text))
    msg = str(err.value)
    assert "\n" not in msg
    assert "segment 'buyers'" in msg
    assert f"days must be a positive whole number of days, not {days}" in msg


def test_event_target_experiment_and_as_of_are_exclusive(tmp_path):
    text = SEGMENTS.replace("days: 14}", "days: 14, experiment: x, as_of: 2026-01-05}", 1)
    with pytest.raises(ConfigError, match=r"segment 'buyers'.*not both"):
        load_segments(_segments(tmp_path, text))


def test_event_target_as_of_labels_every_customer_without_assignments(sim, tmp_path):
    text = SEGMENTS.replace("days: 14}", "days: 7, as_of: 2026-01-08}", 1)
    plan = load_segments(_segments(tmp_path, text))
    target = _target(plan)
    assert target.as_of == dt.datetime(2026, 1, 8, tzinfo=dt.UTC)
    ds = open_dataset(sim)
    got = event_labels(target, ds.customers, ds.events, None).to_pyarrow().to_pandas()
    assert len(got) == 8000
    ev = pd.read_parquet(sim / "events.parquet")
    start = pd.Timestamp("2026-01-08", tz="UTC")
    buyers = ev[
        (ev.event == "purchase") & (ev.ts >= start) & (ev.ts < start + pd.Timedelta(7, "D"))
    ]
    assert set(got.user_id[got.y]) == set(buyers.user_id)
    # without assignments and without as_of there is no reference time
    with pytest.raises(ConfigError) as err:
        fit_models(
            load_segments(_segments(tmp_path / "b")),
            ds.customers,
            as_of=AS_OF,
            events=EventTables(ds.events, None),
        )
    assert "segment 'buyers'" in str(err.value)
    assert "as_of" in str(err.value)


def test_segments_fit_cli_labels_event_targets_and_reports_auc(sim, tmp_path):
    plan = _segments(tmp_path)
    result = CliRunner().invoke(app, ["segments", "fit", str(plan), "--data", str(sim)])
    assert result.exit_code == 0, result.output
    assert "buyers: logistic propensity, held-out AUC 0." in result.output
    assert (tmp_path / "plan.models.json").is_file()
