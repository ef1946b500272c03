from __future__ import annotations

import numpy as np
import pytest

from simulators.population import cut_by_rank


def _cut_by_argsort(values: np.ndarray, shares: dict[str, float]) -> np.ndarray:
    """The definition: rank every value, cut the ranks at the shares' edges."""
    rank = np.empty(values.size)
    rank[np.argsort(values)] = (np.arange(values.size) + 0.5) / values.size
    edges = np.cumsum(np.asarray(list(shares.values())) / sum(shares.values()))[:-1]
    return np.searchsorted(edges, rank, side="right")


@pytest.mark.parametrize("n", [1, 2, 3, 10, 999, 20_001])
@pytest.mark.parametrize(
    "shares",
    [
        {"a": 1.0},
        {"a": 0.5, "b": 0.5},
        {"free": 0.6, "pro": 0.3, "enterprise": 0.1},
        {"a": 0.2, "b": 0.0, "c": 0.3, "d": 0.5},  # an empty category
        {"a": 0.0, "b": 1.0},
        {"a": 1.0, "b": 0.0},
    ],
)
def test_cut_by_rank_gives_the_categories_of_the_full_ranking(n: int, shares: dict[str, float]):
    values = np.random.default_rng(n).standard_normal(n)
    np.testing.assert_array_equal(cut_by_rank(values, shares), _cut_by_argsort(values, shares))
