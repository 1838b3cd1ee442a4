"""One-dimensional k-means with linear initialisation, the paper's best choice (Han et al. 2016, Sec. 3.2).

Linear initialisation spaces the centroids evenly over [min, max], which keeps centroids on the few
large weights that matter most; Lloyd iterations on sorted values make each step O(n log k). The
paper's two other initialisations are kept for comparison: "density" (evenly spaced quantiles of
the values' CDF) and "random" (Forgy: k distinct values drawn at random, seeded).
"""

from __future__ import annotations

import numpy as np

__all__ = ["INITIALISATIONS", "kmeans_1d"]


INITIALISATIONS = ("linear", "density", "random")


def kmeans_1d(
    values: np.ndarray, clusters: int, *, iterations: int = 30, init: str = "linear", seed: int = 0
) -> np.ndarray:
    """Sorted float32 centroids (at most ``clusters``; fewer if there are fewer distinct values)."""
    values = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    if clusters < 1:
        raise ValueError(f"clusters must be at least 1, got {clusters}")
    if values.size == 0:
        raise ValueError("k-means of an empty set of values")
    distinct = np.unique(values)
    if len(distinct) <= clusters:
        return distinct.astype(np.float32)
    if init == "linear":
        centroids = np.linspace(values[0], values[-1], clusters)
    elif init == "density":
        centroids = np.quantile(values, (np.arange(clusters) + 0.5) / clusters)
    elif init == "random":
        centroids = np.sort(np.random.default_rng(seed).choice(distinct, clusters, replace=False))
    else:
        raise ValueError(f"unknown k-means initialisation {init!r}; choose from {', '.join(INITIALISATIONS)}")
    prefix = np.concatenate([[0.0], np.cumsum(values)])
    for _ in range(iterations):
        # Each cluster is a contiguous run of the sorted values between midpoints.
        bounds = np.searchsorted(values, (centroids[1:] + centroids[:-1]) / 2)
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(values)]])
        sizes = ends - starts
        filled = sizes > 0
        updated = centroids.copy()
        updated[filled] = (prefix[ends[filled]] - prefix[starts[filled]]) / sizes[filled]
        if np.allclose(updated, centroids, rtol=0, atol=1e-12):
            centroids = updated
            break
        centroids = updated
    # Duplicates (empty clusters of a density or random start) would waste codes.
    return np.unique(centroids.astype(np.float32))
