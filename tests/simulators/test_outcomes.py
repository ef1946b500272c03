from __future__ import annotations

import numpy as np
import pytest

from simulators.outcomes import PotentialOutcomes
from simulators.schema import EVENTS


@pytest.mark.parametrize("rows", [0, 3, 40, 700, 5_000])  # sparse and dense paths
def test_counts_and_revenue_match_a_plain_loop(rows: int):
    n = 1_000
    rng = np.random.default_rng(rows)
    out = PotentialOutcomes.zeros(2, n)
    counts = np.zeros((2, len(EVENTS), n), dtype=np.int64)
    revenue = [[0.0] * n, [0.0] * n]
    for day in range(3):  # accumulate over days, as a run does
        users = rng.integers(0, n, rows + day)
        amounts = np.round(rng.lognormal(3.0, 1.0, users.size), 2)
        out.add_events("purchase", users)
        out.add_events("click", users, arm=1)
        out.add_revenue(0, users, amounts)
        sums: dict[int, float] = {}
        for u, a in zip(users.tolist(), amounts.tolist(), strict=True):
            counts[:, EVENTS.index("purchase"), u] += 1
            counts[1, EVENTS.index("click"), u] += 1
            sums[u] = sums.get(u, 0.0) + a  # each buyer's amounts in order, then added
        for u, s in sums.items():
            revenue[0][u] += s
    np.testing.assert_array_equal(out.counts, counts)
    assert out.revenue.tolist() == revenue  # bit for bit
