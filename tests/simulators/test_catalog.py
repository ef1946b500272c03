from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from experiment.errors import ConfigError
from simulators import builtin_scenarios, load_scenario
from simulators.catalog import BUILTIN_DIR


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    shutil.copytree(BUILTIN_DIR / "ecommerce", folder)
    return folder


BUILTIN = ["aa", "ecommerce", "lifecycle", "media", "saas", "split", "uniform"]


def test_builtin_scenarios_lists_every_shipped_scenario():
    assert builtin_scenarios() == [
        "aa",
        "ecommerce",
        "lifecycle",
        "media",
        "mosaic",
        "saas",
        "split",
        "uniform",
    ]


@pytest.mark.parametrize(
    "name", ["aa", "ecommerce", "lifecycle", "media", "mosaic", "saas", "split", "uniform"]
)
def test_load_scenario_loads_every_builtin(name: str):
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.segment_set.names
    assert scenario.experiment.metrics


def test_load_scenario_by_name_and_by_path(tmp_path: Path):
    by_name = load_scenario("ecommerce")
    by_path = load_scenario(_copy(tmp_path))
    assert by_name.config == by_path.config
    assert by_path.name == "shop"
    assert by_name.experiment.name == "personalised-campaign"
    assert len(by_name.segment_set.names) == 5


def test_load_scenario_plants_at_least_two_zero_effects():
    config = load_scenario("ecommerce").config
    zero = [
        e.segment for e in config.effects if e.ctr == e.cart == e.purchase == e.order_value == 0.0
    ]
    assert len(zero) >= 2


def test_load_scenario_rejects_a_folder_without_scenario(tmp_path: Path):
    with pytest.raises(ConfigError, match="not a scenario folder"):
        load_scenario(tmp_path)


def test_load_scenario_rejects_an_effect_on_an_unknown_segment(tmp_path: Path):
    folder = _copy(tmp_path)
    path = folder / "scenario.yaml"
    path.write_text(path.read_text().replace("segment: vip,", "segment: vips,"))
    with pytest.raises(ConfigError, match=r"effects\.1\.segment.*'vips'.*valid: all, "):
        load_scenario(folder)


def test_load_scenario_rejects_bad_shares(tmp_path: Path):
    folder = _copy(tmp_path)
    path = folder / "scenario.yaml"
    path.write_text(path.read_text().replace("mobile: 0.55", "mobile: 0.65"))
    with pytest.raises(ConfigError, match=r"scenario\.yaml: field 'population\.devices'.*sum to 1"):
        load_scenario(folder)


def test_load_scenario_rejects_a_metric_on_an_unknown_event(tmp_path: Path):
    folder = _copy(tmp_path)
    path = folder / "experiment.yaml"
    path.write_text(path.read_text().replace("event: purchase}", "event: signup}"))
    with pytest.raises(ConfigError, match="does not produce event 'signup'"):
        load_scenario(folder)


def test_load_scenario_rejects_a_ctr_factor_for_an_unknown_channel(tmp_path: Path):
    folder = _copy(tmp_path)
    path = folder / "scenario.yaml"
    path.write_text(path.read_text().replace("    ads: 0.1 ", "    sms: 0.1 "))
    with pytest.raises(ConfigError, match=r"unknown channel 'sms'; valid: web, app, email, ads"):
        load_scenario(folder)


def test_load_scenario_rejects_a_novelty_without_decay(tmp_path: Path):
    folder = _copy(tmp_path)
    path = folder / "scenario.yaml"
    text = path.read_text().replace(
        "{segment: vip, purchase: 0.10,", "{segment: vip, novelty: {boost: 1}, purchase: 0.10,"
    )
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"effects\[1\]\.novelty\.days"):
        load_scenario(folder)
