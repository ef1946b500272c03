from pathlib import Path

import pytest
from pydantic import ValidationError

from experiment.config import ExperimentConfig, load_experiment
from experiment.errors import ConfigError
from experiment.filemodel import format_validation_error
from segments.definitions import parse_segments

BASE = {"name": "x", "metrics": [{"name": "c", "kind": "proportion", "event": "purchase"}]}


def _error(**fields):
    with pytest.raises(ValidationError) as info:
        ExperimentConfig.model_validate({**BASE, **fields})
    return format_validation_error(Path("e.yaml"), info.value)


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"alpha": float("nan")}, "e.yaml: field 'alpha': Input should be a finite number"),
        (
            {"alpha": "1e999"},
            "e.yaml: field 'alpha': Input should be a finite number (got '1e999')",
        ),
        ({"arms": {"control": True, "treatment": 1}}, "field 'arms.control': true is a boolean"),
        ({"window": {"days": 10**30}}, "field 'window.days': 1e+30 is too large"),
        ({"window": {"days": 0}}, "field 'window.days': Input should be greater than 0 (got 0)"),
        (
            {
                "metrics": [
                    *BASE["metrics"],
                    {"name": "r", "kind": "mean", "event": "p", "cap": {"value": False}},
                ]
            },
            "field 'metrics[1].cap.value': false is a boolean; a number is expected",
        ),
        ({"alpha": [1]}, "field 'alpha': Input should be a valid number"),
        ({"sequential": 2}, "field 'sequential': Input should be a valid boolean"),
    ],
)
def test_format_validation_error_is_one_line_with_a_dotted_path(fields, line):
    message = _error(**fields)
    assert line in message
    assert "\n" not in message


def test_booleans_stay_booleans_and_numbers_numbers():
    config = ExperimentConfig.model_validate({**BASE, "sequential": True, "alpha": 0.1})
    assert config.sequential is True
    assert config.alpha == 0.1


def test_union_field_errors_name_each_alternative():
    data = {"segments": [{"name": "t", "cluster": {"features": ["a"], "k": "many"}}]}
    with pytest.raises(ConfigError) as info:
        parse_segments(data, source="s.yaml")
    message = str(info.value)
    assert message.startswith("s.yaml: field 'segments[0].cluster.k':")
    assert "valid integer" in message
    assert "'auto'" in message


def test_load_experiment_arm_weights_that_overflow(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(
        "name: x\narms: {control: 1.0e+308, treatment: 1.0e+308}\n"
        "metrics: [{name: c, kind: proportion, event: purchase}]\n"
    )
    with pytest.raises(ConfigError, match="field 'arms': arm weights are too large"):
        load_experiment(path)
