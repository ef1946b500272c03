"""Capping (winsorising) of per-user values, against a numpy reference on the same users."""

import numpy as np
import pytest

from experiment.analysis import analyze_cells
from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.errors import ConfigError
from experiment.sums import MeanSums
from segments import load_segments
from tests.fixtures.dataset import per_user_reference

CAPPED_YAML = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
metrics:
  - {name: revenue_q90, kind: mean, event: purchase, value: revenue, cap: {quantile: 0.9}}
  - {name: revenue_50, kind: mean, event: purchase, value: revenue, cap: {value: 50}}
  - {name: clicks_q75, kind: mean, event: click, cap: {quantile: 0.75}}
  - {name: revenue_per_user, kind: mean, event: purchase, value: revenue}
"""


@pytest.fixture(scope="module")
def capped(dataset_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("capped")
    (folder / "segments.yaml").write_text((dataset_dir / "segments.yaml").read_text())
    (folder / "experiment.yaml").write_text(CAPPED_YAML)
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    segment_set = load_segments(config.segments)
    cells = aggregate(open_dataset(dataset_dir), config, segment_set)
    return config, segment_set, cells


def test_capped_cells_equal_numpy_winsorised_reference(dataset_dir, capped):
    _config, _segments, cells = capped
    df = per_user_reference(dataset_dir)
    # DuckDB's quantile_cont interpolates linearly: numpy's default method="linear"
    caps = {
        "revenue_q90": float(np.quantile(df.revenue, 0.9)),
        "revenue_50": 50.0,
        "clicks_q75": float(np.quantile(df.click, 0.75)),
    }
    assert cells.caps == pytest.approx(caps, rel=1e-12)
    source = {"revenue_q90": "revenue", "revenue_50": "revenue", "clicks_q75": "click"}
    for name, cap in caps.items():
        sums = cells.metrics[name]
        assert isinstance(sums, MeanSums)
        for si, seg in enumerate(cells.segments):
            for j, arm in enumerate(cells.arms):
                y = np.minimum(df[df[f"seg_{seg}"] & (df.arm == arm)][source[name]], cap)
                assert sums.mean[si, j] == pytest.approx(y.mean(), rel=1e-12)
                assert sums.var[si, j] == pytest.approx(y.var(ddof=1), rel=1e-9)


def test_capped_quantile_is_interpolated_not_discrete(dataset_dir, capped):
    _config, _segments, cells = capped
    df = per_user_reference(dataset_dir)
    disc = float(np.quantile(df.revenue, 0.9, method="inverted_cdf"))  # quantile_disc
    assert cells.caps["revenue_q90"] != pytest.approx(disc, rel=1e-9)


def test_capping_lowers_variance_and_uncapped_metric_is_unchanged(dataset_dir, capped):
    config, segment_set, cells = capped
    capped_rev, raw_rev = cells.metrics["revenue_q90"], cells.metrics["revenue_per_user"]
    assert np.all(capped_rev.var < raw_rev.var)
    assert np.all(capped_rev.mean <= raw_rev.mean)
    assert "revenue_per_user" not in cells.caps
    results = analyze_cells(cells, config, segment_set)
    assert {r.metric for r in results.results} == {m.name for m in config.metrics}


@pytest.mark.parametrize(
    ("metric", "phrase"),
    [
        (
            "{name: c, kind: proportion, event: purchase, cap: {value: 1}}",
            "proportion metric 'c' takes no 'cap'",
        ),
        (
            "{name: r, kind: mean, event: purchase, value: revenue, "
            "cap: {value: 1, quantile: 0.9}}",
            "cap needs exactly one of 'value'",
        ),
        (
            "{name: r, kind: mean, event: purchase, value: revenue, cap: {quantile: 1.5}}",
            "metrics[0].cap.quantile",
        ),
        (
            "{name: r, kind: mean, event: purchase, value: revenue, cap: {}}",
            "cap needs exactly one of 'value'",
        ),
    ],
)
def test_cap_invalid_is_one_line_config_error(tmp_path, metric, phrase):
    (tmp_path / "e.yaml").write_text(f"name: e\nmetrics:\n  - {metric}\n")
    with pytest.raises(ConfigError, match=r"e\.yaml: ") as err:
        load_experiment(tmp_path / "e.yaml")
    assert phrase in str(err.value)
    assert "\n" not in str(err.value)


def test_quantile_cap_leaves_no_temporary_table_and_allows_any_metric_name(dataset_dir, tmp_path):
    # A metric named like a per-user column must not clash with the cap column; the
    # per-user table the cap query reads is dropped once the cells are computed.
    (tmp_path / "segments.yaml").write_text((dataset_dir / "segments.yaml").read_text())
    (tmp_path / "experiment.yaml").write_text(
        CAPPED_YAML.replace("revenue_q90", "arm").replace("clicks_q75", "arms_seen")
    )
    config = load_experiment(tmp_path / "experiment.yaml")
    assert config.segments is not None
    dataset = open_dataset(dataset_dir)
    tables = "SELECT database_name, schema_name, table_name FROM duckdb_tables()"
    before = dataset.con.raw_sql(tables).fetchall()
    cells = aggregate(dataset, config, load_segments(config.segments))
    assert dataset.con.raw_sql(tables).fetchall() == before
    df = per_user_reference(dataset_dir)
    assert cells.caps["arm"] == pytest.approx(float(np.quantile(df.revenue, 0.9)), rel=1e-12)
    assert cells.caps["arms_seen"] == pytest.approx(float(np.quantile(df.click, 0.75)), rel=1e-12)
