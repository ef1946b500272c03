from __future__ import annotations

import numpy as np
import pytest

from simulators.population import _ranked


def _ranked_by_argsort(
    rng: np.random.Generator, shares: dict[str, float], score: np.ndarray
) -> np.ndarray:
    """The definition: rank every customer by the noisy score, cut the ranks at the shares."""
    noisy = score + rng.standard_normal(score.size)
    rank = np.empty(score.size)
    rank[np.argsort(noisy)] = (np.arange(score.size) + 0.5) / score.size
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
def test_ranked_categories_are_those_of_the_full_ranking(n: int, shares: dict[str, float]):
    score = np.random.default_rng(n).standard_normal(n)
    names, codes = _ranked(np.random.default_rng(7), shares, score)
    assert names == tuple(shares)
    np.testing.assert_array_equal(
        codes, _ranked_by_argsort(np.random.default_rng(7), shares, score)
    )
