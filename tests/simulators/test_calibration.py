"""Realism checks against REALISM.md part A, on a 20k-user, 14-day run."""

from __future__ import annotations

import numpy as np

from tests.simulators.conftest import DAYS, Simulated


def _column(simulated: Simulated, name: str) -> np.ndarray:
    values: np.ndarray = simulated.customers.column(name).to_numpy()
    return values


def test_calibration_conversion_is_a_few_percent(simulated: Simulated):
    conversion = np.mean(simulated.counts["purchase"] > 0)
    assert 0.005 <= conversion <= 0.10


def test_calibration_ctr_is_a_few_percent(simulated: Simulated):
    ctr = simulated.counts["click"].sum() / simulated.counts["impression"].sum()
    assert 0.01 <= ctr <= 0.06


def test_calibration_revenue_is_zero_inflated_and_lognormal_sized(simulated: Simulated):
    revenue = simulated.revenue
    assert np.mean(revenue == 0) > 0.85
    assert 20 <= np.median(revenue[revenue > 0]) <= 80


def test_calibration_funnel_rates(simulated: Simulated):
    counts = simulated.counts
    impressions_per_session = counts["impression"].sum() / counts["session"].sum()
    assert 3.5 <= impressions_per_session <= 4.5
    purchase_per_cart = counts["purchase"].sum() / counts["add_to_cart"].sum()
    assert 0.25 <= purchase_per_cart <= 0.35


def test_calibration_inactive_users_have_fewer_sessions(simulated: Simulated):
    inactive = _column(simulated, "days_since_last_login") >= 14
    sessions_per_day = simulated.counts["session"] / DAYS
    assert 0.2 < inactive.mean() < 0.6
    assert sessions_per_day[inactive].mean() < 0.5 * sessions_per_day[~inactive].mean()


def test_calibration_pre_period_predicts_the_experiment(simulated: Simulated):
    buyers = _column(simulated, "orders_90d") > 0
    converted = simulated.counts["purchase"] > 0
    assert converted[buyers].mean() > 2 * converted[~buyers].mean()
    recent = _column(simulated, "logins_7d") > 0
    assert np.all(_column(simulated, "days_since_last_login")[recent] < 7)


def test_calibration_pre_period_counts_are_consistent(simulated: Simulated):
    dormant = _column(simulated, "days_since_last_login") > 90
    assert np.all(_column(simulated, "orders_90d")[dormant] == 0)
    assert np.all(_column(simulated, "cart_abandons_30d")[dormant] == 0)
    orders = _column(simulated, "orders_90d")
    revenue = _column(simulated, "revenue_90d")
    assert np.array_equal(orders > 0, revenue > 0)
