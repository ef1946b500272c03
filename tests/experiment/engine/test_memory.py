import os

import pytest

from experiment.engine.connection import default_memory_limit
from experiment.engine.dataset import open_dataset


def _ram():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_open_dataset_bounds_duckdb_memory_from_the_machine(dataset_dir):
    dataset = open_dataset(dataset_dir)
    shown = dataset.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    number, unit = str(shown).split()
    got = float(number) * {"MiB": 2**20, "GiB": 2**30}[unit]
    want = min(1.5 * 2**30, 0.4 * _ram())
    assert got == pytest.approx(want, rel=0.01)  # not DuckDB's own 80% of RAM


def test_default_memory_limit_is_a_share_of_a_small_machine(monkeypatch):
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**30 // 4096}  # 1 GiB of RAM
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert default_memory_limit() == "409MiB"


def test_default_memory_limit_unknown_machine_keeps_duckdb_default(monkeypatch):
    def unknown(name):
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", unknown)
    assert default_memory_limit() is None


def test_open_dataset_keeps_an_explicit_memory_limit(dataset_dir):
    dataset = open_dataset(dataset_dir, memory_limit="3GiB")
    shown = dataset.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert str(shown) == "3.0 GiB"
