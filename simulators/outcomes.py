"""Potential outcomes: per-user event counts and revenue in every arm's world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from simulators.schema import EVENTS

if TYPE_CHECKING:
    from experiment.config import Measure

__all__ = ["PotentialOutcomes"]

_VALUE_EVENT = {"revenue": "purchase"}  # value column -> the event that carries it
_SPARSE = 16  # fewer rows than n_users / 16: summed per distinct user, not by a full bincount


@dataclass(frozen=True)
class PotentialOutcomes:
    """Accumulates, for every customer and every arm, what would happen in that arm.

    ``counts[a, e, u]`` is how many events ``EVENTS[e]`` user ``u`` has in the
    world where everyone is in arm ``a``; ``revenue[a, u]`` is the user's
    purchase revenue there. The arrays are filled in place, day by day.
    Only the events in ``tracked`` are counted (those some metric measures):
    counting the others would cost time and change no truth.
    """

    counts: NDArray[np.int32]
    revenue: NDArray[np.float64]
    tracked: frozenset[str] = frozenset(EVENTS)

    @classmethod
    def zeros(
        cls, n_arms: int, n_users: int, *, tracked: frozenset[str] | None = None
    ) -> PotentialOutcomes:
        """Empty outcomes for ``n_arms`` worlds and ``n_users`` customers."""
        return cls(
            counts=np.zeros((n_arms, len(EVENTS), n_users), dtype=np.int32),
            revenue=np.zeros((n_arms, n_users), dtype=np.float64),
            tracked=frozenset(EVENTS) if tracked is None else tracked,
        )

    def merge(self, other: PotentialOutcomes) -> None:
        """Add another accumulator's counts and revenue to this one, in place."""
        np.add(self.counts, other.counts, out=self.counts)
        np.add(self.revenue, other.revenue, out=self.revenue)

    @property
    def n_users(self) -> int:
        """Number of customers."""
        return int(self.revenue.shape[1])

    def add_events(self, event: str, users: NDArray[np.intp], *, arm: int | None = None) -> None:
        """Count one event per element of ``users`` in arm ``arm``'s world (every world if None)."""
        if event not in self.tracked:
            return
        code = EVENTS.index(event)
        target = self.counts[:, code] if arm is None else self.counts[arm, code]
        if users.size * _SPARSE < self.n_users:  # a few events (purchases): no n_users pass
            seen, count = np.unique(users, return_counts=True)
            target[..., seen] += count.astype(target.dtype)
            return
        target += np.bincount(users, minlength=self.n_users)

    def add_revenue(self, arm: int, users: NDArray[np.intp], amounts: NDArray[np.float64]) -> None:
        """Add purchase amounts to the users' revenue in one arm's world.

        Each buyer's amounts are summed in their given order, then added: the same
        floating-point sums as a full ``bincount``, without a pass over every customer.
        """
        if users.size * _SPARSE >= self.n_users:
            self.revenue[arm] += np.bincount(users, weights=amounts, minlength=self.n_users)
            return
        seen, where = np.unique(users, return_inverse=True)
        self.revenue[arm, seen] += np.bincount(where, weights=amounts, minlength=seen.size)

    def measure(self, measure: Measure, arm: int) -> NDArray[np.float64]:
        """The per-user value of a metric measure in one arm's world.

        A count of ``measure.event`` rows, or the sum of ``measure.value`` over them
        (zero for an event that never carries the value, as in the events table).

        Raises:
            KeyError: the event or value is not one the simulator produces, or the
                event is not tracked.
        """
        if measure.event not in EVENTS or measure.event not in self.tracked:
            raise KeyError(measure.event)
        if measure.value is None:
            counts: NDArray[np.int32] = self.counts[arm, EVENTS.index(measure.event)]
            return counts.astype(np.float64)
        if _VALUE_EVENT[measure.value] == measure.event:
            revenue: NDArray[np.float64] = self.revenue[arm]
            return revenue
        return np.zeros(self.n_users)
