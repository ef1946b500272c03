"""``cuped: [a, b]`` in the experiment file: parsed as covariates, refused where unsupported."""

from __future__ import annotations

import pytest

from experiment.config import load_experiment
from experiment.errors import ConfigError

RATIO = "{name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}"
MEAN = "{name: rev, kind: mean, event: purchase, value: revenue"


def _load(tmp_path, metric, extra=""):
    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\nsalt: s\n{extra}metrics:\n  - {metric}\n")
    return load_experiment(path)


def test_cuped_list_becomes_covariates_and_string_stays_cuped(tmp_path):
    listed = _load(tmp_path, MEAN + ", cuped: [revenue_90d, channel]}").metrics[0]
    assert listed.covariates == ("revenue_90d", "channel")
    assert listed.cuped is None
    single = _load(tmp_path, MEAN + ", cuped: revenue_90d}").metrics[0]
    assert (single.cuped, single.covariates) == ("revenue_90d", None)


def test_ratio_cuped_is_a_list_of_one_or_more_covariates(tmp_path):
    listed = _load(tmp_path, RATIO + ", cuped: [a, b]}").metrics[0]
    assert (listed.cuped, listed.covariates) == (None, ("a", "b"))
    single = _load(tmp_path, RATIO + ", cuped: a}").metrics[0]
    assert (single.cuped, single.covariates) == (None, ("a",))


@pytest.mark.parametrize(
    ("metric", "extra", "phrase"),
    [
        (MEAN + ", cuped: []}", "", "lists no column"),
        (MEAN + ", cuped: [a, a]}", "", "lists a column twice"),
    ],
)
def test_cuped_list_refused_with_one_line(tmp_path, metric, extra, phrase):
    with pytest.raises(ConfigError, match=phrase) as info:
        _load(tmp_path, metric, extra)
    assert "\n" not in str(info.value)


def test_cuped_list_with_sequential_is_accepted(tmp_path):
    # the timeline carries the regression sums (tests/experiment/engine/test_timeline_regression.py)
    for metric in (MEAN + ", cuped: [a, b]}", RATIO + ", cuped: a}"):
        config = _load(tmp_path, metric, "sequential: true\n")
        assert config.sequential
        assert config.metrics[0].covariates
