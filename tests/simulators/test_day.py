from __future__ import annotations

import numpy as np
import pytest

from simulators.day import time_order


@pytest.mark.parametrize("size", [0, 1, 2, 7, 5_000, 200_000])
@pytest.mark.parametrize("span", [1, 3, 1 << 20, 86_400_000_000, 1 << 40])
def testtime_order_is_the_stable_argsort(size: int, span: int):
    rng = np.random.default_rng(size + span)
    ts = 1_700_000_000_000_000 + rng.integers(0, span, size)  # ties when span is small
    order, ordered = time_order(ts)
    expected = np.argsort(ts, kind="stable")
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(ordered, ts[expected])


def testtime_order_keeps_ties_in_row_order_for_nearly_sorted_runs():
    # a day's parts: each nearly sorted, many equal timestamps across parts
    base = np.repeat(np.arange(0, 86_400_000_000, 3_600_000_000), 50)
    ts = np.concatenate([base, base[::-1], base + 1, base])
    order, _ = time_order(ts)
    np.testing.assert_array_equal(order, np.argsort(ts, kind="stable"))
