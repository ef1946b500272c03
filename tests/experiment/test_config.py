import pytest

from experiment.config import load_experiment
from experiment.errors import ConfigError

BASE = """\
name: e
metrics:
  - {name: conversion, kind: proportion, event: purchase}
"""


def _load(tmp_path, text):
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return load_experiment(path)


def test_load_experiment_defaults_and_relative_segments(tmp_path):
    cfg = _load(tmp_path, BASE + "segments: segs.yaml\n")
    assert cfg.arms == {"control": 0.5, "treatment": 0.5}
    assert cfg.treatments == ["treatment"]
    assert cfg.assignment_salt == "e"
    assert cfg.segments == tmp_path / "segs.yaml"
    assert cfg.window.days == 14
    assert cfg.correction == "holm"


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        ("alpha: 1.5\n", "field 'alpha': Input should be less than or equal to 0.5"),
        ("arms: {control: 1}\n", "needs at least two arms"),
        ("arms: {a: 0.5, b: 0.5}\n", "control arm 'control' is not one of arms"),
        ("arms: {control: 0.5, treatment: 0}\n", "arm weights must be > 0"),
        ("correction: bonferroni\n", "field 'correction'"),
        ("colour: red\n", "field 'colour': Extra inputs are not permitted"),
        ("window: {days: 0}\n", "field 'window.days'"),
    ],
)
def test_load_experiment_invalid_fields_are_one_line(tmp_path, extra, phrase):
    with pytest.raises(ConfigError, match=phrase) as info:
        _load(tmp_path, BASE + extra)
    assert str(info.value).startswith(str(tmp_path / "experiment.yaml"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("metrics", "phrase"),
    [
        (
            "[{name: ctr, kind: ratio, numerator: {event: click}}]",
            "needs 'numerator' and 'denominator'",
        ),
        ("[{name: m, kind: mean}]", "needs 'event'"),
        ("[{name: p, kind: proportion, event: x, value: revenue}]", "takes no 'value'"),
        ("[{name: 'bad name', kind: mean, event: x}]", "must be a letter"),
        (
            "[{name: a, kind: mean, event: x}, {name: a, kind: mean, event: y}]",
            "repeated: \\['a'\\]",
        ),
        ("[]", "field 'metrics'"),
    ],
)
def test_load_experiment_metric_rules(tmp_path, metrics, phrase):
    with pytest.raises(ConfigError, match=phrase):
        _load(tmp_path, f"name: e\nmetrics: {metrics}\n")


def test_load_experiment_file_problems(tmp_path):
    with pytest.raises(ConfigError, match="experiment file not found"):
        load_experiment(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        _load(tmp_path, "name: e\n  bad: [\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        _load(tmp_path, "- a\n- b\n")


def test_load_experiment_assignment_fields(tmp_path):
    cfg = _load(tmp_path, BASE)
    assert (cfg.holdout, cfg.traffic, cfg.allocation) == (0.0, 1.0, {})
    cfg = _load(
        tmp_path,
        BASE
        + "holdout: 0.05\ntraffic: 0.2\nallocation:\n"
        + "  vip: {arms: {control: 0.1, treatment: 0.9}}\n  at_risk: {traffic: 0.5}\n",
    )
    assert cfg.holdout == 0.05
    assert cfg.traffic == 0.2
    assert list(cfg.allocation) == ["vip", "at_risk"]
    assert cfg.allocation["vip"].arms == {"control": 0.1, "treatment": 0.9}
    assert cfg.allocation["at_risk"].traffic == 0.5


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        ("holdout: 1\n", "field 'holdout'"),
        ("traffic: 0\n", "field 'traffic'"),
        ("allocation: {vip: {arms: {control: 1, b: 1}}}\n", "must weight exactly the arms"),
        ("allocation: {vip: {arms: {control: 0, treatment: 0}}}\n", "not all 0"),
        ("allocation: {vip: {traffic: 2}}\n", "field 'allocation.vip.traffic'"),
        ("arms: {control: 1, holdout: 1}\n", "'holdout' is reserved"),
    ],
)
def test_load_experiment_invalid_assignment_fields(tmp_path, extra, phrase):
    with pytest.raises(ConfigError, match=phrase):
        _load(tmp_path, BASE + extra)


def test_check_allocation_names_unknown_segments(tmp_path):
    from experiment.config import check_allocation

    cfg = _load(tmp_path, BASE + "allocation: {vip: {traffic: 0.5}}\n")
    with pytest.raises(ConfigError, match="needs a 'segments' file"):
        check_allocation(cfg, [])
    cfg = _load(tmp_path, BASE + "segments: s.yaml\nallocation: {vipp: {traffic: 0.5}}\n")
    with pytest.raises(ConfigError, match="unknown segment 'vipp'; segments are: vip") as err:
        check_allocation(cfg, ["vip"])
    # the field is in the experiment file, not in the segments file
    assert str(err.value).startswith("experiment 'e': field 'allocation'")
    check_allocation(cfg, ["vip", "vipp"])


def test_load_experiment_metric_direction(tmp_path):
    cfg = _load(
        tmp_path,
        "name: e\nmetrics:\n  - {name: conversion, kind: proportion, event: purchase}\n"
        "  - {name: unsubscribes, kind: proportion, event: unsub, higher_is_better: false}\n",
    )
    assert [m.higher_is_better for m in cfg.metrics] == [True, False]


def test_load_experiment_metric_direction_must_be_a_bool(tmp_path):
    metrics = "[{name: u, kind: proportion, event: x, higher_is_better: sometimes}]"
    with pytest.raises(ConfigError, match="higher_is_better") as info:
        _load(tmp_path, f"name: e\nmetrics: {metrics}\n")
    assert "\n" not in str(info.value)
