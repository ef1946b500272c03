"""Discovery: the best cut of each group on one attribute, from the discovery half only.

A numeric attribute's cuts are its edges (high side ``value >= edge``). A
categorical attribute's levels are first ordered by their discovery relative
lift within the group, then cut anywhere in that order: for the squared
difference of two groups' means this finds the best of all two-way groupings
(the CART ordering trick), and here it keeps the search to ``levels - 1`` cuts.

References:
    Breiman, Friedman, Olshen & Stone (1984), *Classification and Regression
    Trees*, §4.2 (ordering the categories of a predictor):
    https://doi.org/10.1201/9781315139470
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.sums import JointSums
from segments.refine.inference import cut_sides, lift, log_lift

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from segments.refine.search import Attribute, Scan, Sums

__all__ = ["MAX_SIZE_CHANGE", "Best", "Window", "best_cuts"]

_ALPHA = 0.05  # discovery reads only point estimates and standard errors
MAX_SIZE_CHANGE = 2.0
"""A moved threshold keeps its segment between 1/2 and 2 times its size (its meaning)."""


@dataclass(frozen=True)
class Window:
    """Where a rule threshold may move: its value, the side it keeps, its fence.

    A cut-off is allowed when it lies strictly inside ``fence`` (other bounds on
    the column in the same rule) and the kept side holds between
    ``1 / MAX_SIZE_CHANGE`` and ``MAX_SIZE_CHANGE`` times the users the current
    cut-off keeps (user counts of both halves: they carry no outcome).
    """

    value: float
    keeps_high: bool
    fence: tuple[float, float]


@dataclass(frozen=True, eq=False)
class Best:
    """One group's best cut on one attribute.

    ``control``/``treatment`` are the group's per-bin sums, shape ``(2 halves,
    bins)``; ``order`` the bin order and ``cut`` the position (``1 … bins-1``)
    that puts ordered bins ``0 … cut-1`` low. ``high_first``: the high side had
    the larger discovery lift. ``z`` is the discovery interaction z (high − low).
    """

    attribute: Attribute
    bins: tuple[Any, ...]
    order: NDArray[np.int64]
    cut: int
    z: float
    high_first: bool
    candidates: int
    control: Sums
    treatment: Sums


def _order(scan: Scan, control: Sums, treatment: Sums) -> NDArray[np.int64]:
    """Bin order per group, shape ``(bins, groups)``: as is, or levels by discovery lift."""
    bins, groups = scan.control.n.shape[1:]
    if scan.attribute is not None and scan.attribute.kind == "categorical":
        per_level = lift(control[0], treatment[0], _ALPHA).lift_rel
        return np.argsort(per_level, axis=0, kind="stable")  # nan last
    return np.asarray(np.broadcast_to(np.arange(bins)[:, None], (bins, groups)), dtype=np.int64)


def _events(sums: Sums) -> NDArray[np.float64]:
    """Events per cell: ``n × mean`` (conversions; a ratio metric's numerator total)."""
    mean = sums.mean_y if isinstance(sums, JointSums) else sums.mean
    return np.asarray(np.nan_to_num(sums.n * mean), dtype=np.float64)


def best_cuts(
    scan: Scan,
    groups: Sequence[int],
    min_size: int,
    *,
    skip: Mapping[int, set[float]] | None = None,
    min_events: float = 0.0,
    windows: Mapping[int, Window] | None = None,
    cuped: bool = False,
) -> dict[int, Best]:
    """Per group (keyed by ``groups``), the cut with the largest discovery ``|z|``.

    Only cuts with both sides at least ``min_size`` users (both arms) in each
    half, at least ``min_events`` events (``n × mean``: conversions, or a ratio's
    numerator) in each arm of each side on the discovery half, and a defined ``z``
    count as candidates; groups without one are left out. The event floor keeps
    the search away from sides whose lift rests on a handful of conversions, where
    the normal approximation of the relative lift is anti-conservative. ``skip``
    maps a group to numeric cut-offs it may not take; ``windows`` a rule
    threshold's group to where its cut-off may move (:class:`Window`). ``cuped``:
    the sums are joint with a CUPED covariate; discovery ranks on the metric alone
    (its ``y`` margin) and the chosen cut keeps the joint sums for the held-out test.
    """
    if scan.attribute is None or len(scan.bins) < 2:
        return {}
    ctrl, treat = scan.control, scan.treatment
    if cuped and isinstance(ctrl, JointSums) and isinstance(treat, JointSums):
        ctrl, treat = ctrl.y, treat.y
    order = _order(scan, ctrl, treat)
    low_c, high_c = cut_sides(ctrl[0], order)
    low_t, high_t = cut_sides(treat[0], order)
    (log_low, var_low), (log_high, var_high) = log_lift(low_c, low_t), log_lift(high_c, high_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (log_high - log_low) / np.sqrt(var_low + var_high)
    z = np.where(np.isfinite(z), z, np.nan)
    # sizes of both halves (counts carry no outcome, so the held-out half stays unseen)
    cols = np.arange(order.shape[1])[None, :]
    held = (scan.control.n[1] + scan.treatment.n[1])[order, cols]
    held_low = np.cumsum(held, axis=0)[:-1]
    held_high = held.sum(axis=0) - held_low
    ok = (low_c.n + low_t.n >= min_size) & (high_c.n + high_t.n >= min_size) & np.isfinite(z)
    ok &= (held_low >= min_size) & (held_high >= min_size)
    if min_events > 0:
        for side in (low_c, high_c, low_t, high_t):
            ok &= _events(side) >= min_events
    if skip and scan.attribute.kind == "numeric":
        edges = np.asarray(scan.attribute.edges)
        for k, g in enumerate(groups):
            if g in skip:
                ok[:, k] &= ~np.isin(edges, sorted(skip[g]))
    if windows and scan.attribute.kind == "numeric":
        for k, g in enumerate(groups):
            if g in windows:
                ok[:, k] &= _in_window(scan, k, windows[g])
    score = np.where(ok, np.abs(np.nan_to_num(z)), -1.0)
    out = {}
    for k, g in enumerate(groups):
        if not ok[:, k].any():
            continue
        j = int(np.argmax(score[:, k]))
        col = (slice(None), slice(None), k)
        out[g] = Best(
            attribute=scan.attribute,
            bins=scan.bins,
            order=order[:, k].copy(),
            cut=j + 1,
            z=float(z[j, k]),
            high_first=bool(z[j, k] >= 0),
            candidates=int(ok[:, k].sum()),
            control=scan.control[col],
            treatment=scan.treatment[col],
        )
    return out


def _in_window(scan: Scan, k: int, window: Window) -> NDArray[np.bool_]:
    """Per cut ``j`` (row ``j - 1``) of group ``k``: is the moved cut-off in ``window``?"""
    if scan.attribute is None:
        raise RuntimeError("Attribute is None.")
    edges = np.asarray(scan.attribute.edges, dtype=np.float64)
    users = (scan.control.n[:, :, k] + scan.treatment.n[:, :, k]).sum(axis=0)  # per bin
    low = np.cumsum(users)[:-1]  # users below edge j
    kept = users.sum() - low if window.keeps_high else low
    current = kept[int(np.argmin(np.abs(edges - window.value)))]
    fence_low, fence_high = window.fence
    inside = (edges > fence_low) & (edges < fence_high)
    sized = (kept * MAX_SIZE_CHANGE >= current) & (kept <= MAX_SIZE_CHANGE * current)
    return np.asarray(inside & sized & (current > 0), dtype=np.bool_)
