"""Cluster segments: seeded k-means on standardised features, k chosen by silhouette.

Fitting is numpy on a sample pulled from the engine; membership compiles to
Ibis (standardise with the saved means and sds, squared distance to each saved
centroid, nearest centroid wins with ties to the lower index), so the same
segments are reproduced exactly at rollout, on any engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "ClusterModel",
    "assign_clusters",
    "cluster_exprs",
    "describe_cluster",
    "fit_clusters",
    "kmeans",
    "silhouette",
]

_N_INIT = 4
_MAX_ITER = 100
_SILHOUETTE_SAMPLE = 2000


@dataclass(frozen=True)
class ClusterModel:
    """A fitted clustering: transform, scaling, centroids (standardised units), labels.

    ``log1p[i]`` says whether feature ``i`` is log-transformed (``ln(1 + x)``) before
    standardising: done for features that are never negative in the fit sample, so
    heavy tails (revenue, counts) do not make singleton clusters.
    """

    features: tuple[str, ...]
    log1p: tuple[bool, ...]
    mean: tuple[float, ...]
    sd: tuple[float, ...]
    centroids: tuple[tuple[float, ...], ...]
    labels: tuple[str, ...]
    k: int
    criterion: str
    scores: dict[str, float]
    n_fit: int


def _sqdist(x: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
    d = (x * x).sum(axis=1)[:, None] - 2.0 * (x @ c.T) + (c * c).sum(axis=1)[None, :]
    return np.asarray(np.maximum(d, 0.0))


def kmeans(
    x: NDArray[np.float64], k: int, *, rng: np.random.Generator
) -> tuple[NDArray[np.float64], float]:
    """Lloyd's k-means with k-means++ seeding, best of a few starts; (centroids, inertia).

    References:
        Arthur & Vassilvitskii (2007), k-means++: https://dl.acm.org/doi/10.5555/1283383.1283494
    """
    best: tuple[NDArray[np.float64], float] | None = None
    n = len(x)
    for _ in range(_N_INIT):
        centres = x[[int(rng.integers(n))]]
        for _ in range(1, k):
            d2 = _sqdist(x, centres).min(axis=1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1 / n)
            centres = np.vstack([centres, x[[int(rng.choice(n, p=p))]]])
        for _ in range(_MAX_ITER):
            label = _sqdist(x, centres).argmin(axis=1)
            counts = np.bincount(label, minlength=k)
            sums = np.zeros_like(centres)
            np.add.at(sums, label, x)
            new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
            if np.allclose(new, centres, rtol=0, atol=1e-10):
                break
            centres = new
        inertia = float(_sqdist(x, centres).min(axis=1).sum())
        if best is None or inertia < best[1]:
            best = (centres, inertia)
    if best is None:  # pragma: no cover - _N_INIT >= 1
        raise RuntimeError("No k-means start ran.")
    return best


def silhouette(x: NDArray[np.float64], label: NDArray[np.intp]) -> float:
    """Mean silhouette coefficient (Euclidean); singleton clusters score 0.

    References:
        Rousseeuw (1987): https://doi.org/10.1016/0377-0427(87)90125-7
    """
    from scipy.spatial.distance import cdist

    k = int(label.max()) + 1
    d = cdist(x, x)
    onehot = np.eye(k)[label]
    sums = d @ onehot
    counts = onehot.sum(axis=0)
    own = counts[label]
    a = np.where(own > 1, sums[np.arange(len(x)), label] / np.maximum(own - 1, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        other = sums / counts
    other[np.arange(len(x)), label] = np.inf
    other[:, counts == 0] = np.inf
    b = other.min(axis=1)
    s = np.where((own > 1) & np.isfinite(b), (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def _names(centroids: NDArray[np.float64], features: tuple[str, ...]) -> tuple[str, ...]:
    """Label each cluster by its most distinctive features (largest |z| of the centroid)."""

    def label(c: NDArray[np.float64], depth: int) -> str:
        order = np.argsort(-np.abs(c), kind="stable")[:depth]
        return "_".join(f"{'high' if c[i] > 0 else 'low'}_{features[i]}" for i in order)

    names = [label(c, 1) for c in centroids]
    if len(set(names)) < len(names):
        names = [label(c, min(2, len(features))) for c in centroids]
    if len(set(names)) < len(names):
        names = [f"{n}_{i + 1}" for i, n in enumerate(names)]
    return tuple(names)


def fit_clusters(
    x: NDArray[np.float64],
    features: tuple[str, ...],
    *,
    k: int | str,
    k_max: int,
    seed: int,
) -> ClusterModel:
    """Fit k-means on raw feature rows ``x`` (standardised here); ``k="auto"`` → silhouette.

    Clusters are ordered by size (largest first), so labels are stable across runs.
    """
    rng = np.random.default_rng(seed)
    log1p = tuple(bool(v) for v in (x.min(axis=0) >= 0))
    x = _transform(x, log1p)
    mean = x.mean(axis=0)
    sd = x.std(axis=0, ddof=0)
    sd = np.where(sd > 0, sd, 1.0)
    z = (x - mean) / sd
    sub = z if len(z) <= _SILHOUETTE_SAMPLE else z[rng.choice(len(z), _SILHOUETTE_SAMPLE, False)]
    candidates = [int(k)] if k != "auto" else list(range(2, min(k_max, len(z) - 1) + 1))
    scores: dict[str, float] = {}
    fits: dict[int, NDArray[np.float64]] = {}
    for kk in candidates:
        centres, _ = kmeans(z, kk, rng=rng)
        fits[kk] = centres
        scores[str(kk)] = silhouette(sub, _sqdist(sub, centres).argmin(axis=1))
    chosen = max(candidates, key=lambda kk: (scores[str(kk)], -kk))
    centres = fits[chosen]
    sizes = np.bincount(_sqdist(z, centres).argmin(axis=1), minlength=chosen)
    order = sorted(range(chosen), key=lambda j: (-sizes[j], tuple(centres[j])))
    centres = centres[order]
    return ClusterModel(
        features=features,
        log1p=log1p,
        mean=tuple(float(v) for v in mean),
        sd=tuple(float(v) for v in sd),
        centroids=tuple(tuple(float(v) for v in c) for c in centres),
        labels=_names(centres, features),
        k=chosen,
        criterion="silhouette" if k == "auto" else "fixed",
        scores=scores,
        n_fit=len(x),
    )


def _transform(x: NDArray[np.float64], log1p: tuple[bool, ...]) -> NDArray[np.float64]:
    out = x.copy()
    for i, flag in enumerate(log1p):
        if flag:
            out[:, i] = np.log(x[:, i] + 1.0)
    return out


def assign_clusters(model: ClusterModel, x: NDArray[np.float64]) -> NDArray[np.intp]:
    """Nearest saved centroid of each raw row (numpy reference of :func:`cluster_exprs`)."""
    z = (_transform(x, model.log1p) - np.array(model.mean)) / np.array(model.sd)
    return np.asarray(_sqdist(z, np.array(model.centroids)).argmin(axis=1))


def cluster_exprs(model: ClusterModel, columns: list[Any]) -> list[ir.BooleanValue]:
    """One membership expression per cluster; ``columns`` are the feature columns."""
    values = [
        (c.cast("float64") + 1.0).ln() if flag else c.cast("float64")
        for c, flag in zip(columns, model.log1p, strict=True)
    ]
    z = [(v - m) / s for v, m, s in zip(values, model.mean, model.sd, strict=True)]
    dist = []
    for centre in model.centroids:
        terms = [(zf - cf) * (zf - cf) for zf, cf in zip(z, centre, strict=True)]
        total = terms[0]
        for t in terms[1:]:
            total = total + t
        dist.append(total)
    out = []
    for i, di in enumerate(dist):
        cond: Any = None
        for j, dj in enumerate(dist):
            if j != i:
                c = (di < dj) if j < i else (di <= dj)
                cond = c if cond is None else cond & c
        out.append(cond if cond is not None else di == di)  # noqa: PLR0124 - k >= 2 normally
    return out


def describe_cluster(model: ClusterModel, index: int, *, top: int = 2) -> str:
    """A cluster in words: its centroid's most distinctive features (largest ``|z|``).

    Each feature is given with its direction, the centroid's distance from the
    mean in standard deviations (of the transformed feature) and its typical
    value in the feature's own units (``ln(1 + x)`` undone where applied).
    """
    centre = model.centroids[index]
    order = sorted(range(len(centre)), key=lambda i: -abs(centre[i]))
    parts = []
    for i in order[:top]:
        z = centre[i]
        value = model.mean[i] + z * model.sd[i]
        value = float(np.expm1(value)) if model.log1p[i] else value
        side = "high" if z > 0 else "low"
        parts.append(f"{side} {model.features[i]} (centre ≈ {value:.3g}, {z:+.1f} sd)")
    features = ", ".join(model.features)
    return f"k-means cluster {index + 1} of {model.k} on {features}: {', '.join(parts)}"
