"""Range rules: from a tensor's calibration histogram to the real interval [low, high] int8 covers.

Four rules, compared in ``benchmarks/bench_int8.py``:

- ``minmax``: the observed minimum and maximum (TFLite's converter, onnxruntime's MinMax).
- ``percentile``: drop a tail of ``1 - PERCENTILE`` of the values (both tails, halved, for signed
  tensors; the top tail for ReLU outputs).
- ``mse``: shrink [min, max] by the factor, among ``MSE_STEPS`` candidates, that minimises the
  squared error of quantize-then-dequantize over the histogram (Banner et al. 2019 pose the same
  objective; we search it instead of solving it for a Laplace prior).
- ``entropy``: TensorRT's KL-divergence calibration (Migacz 2017): over the histogram of |x|,
  the clipping threshold whose 128-level quantized distribution is closest in KL divergence to
  the clipped reference. Deviation: ReLU outputs are quantized with all 256 levels, so their
  candidate distributions have 256 levels, not 128.

``mse`` is the default (`squeezenet.int8.quantize.DEFAULT_RANGE_RULE`): on the published model it
kept the most top-1 agreement with fp32 (BENCHMARKS.md, section int8). No rule applies to the
last convolution's output, whose largest values are the winning class scores: it keeps its full
range (`squeezenet.int8.quantize.LOGITS_RANGE_RULE`).

Every rule returns an interval that contains 0, so that real zero (ReLU's floor, the padding) is
exact in int8; a ReLU output's interval starts at 0.
"""

from __future__ import annotations

import numpy as np

from squeezenet.int8.calibration import BINS_PER_SIDE, TensorStatistics

__all__ = ["PERCENTILE", "RANGE_RULES", "MSE_STEPS", "activation_range"]

PERCENTILE = 99.99
MSE_STEPS = 400
RANGE_RULES = ("minmax", "percentile", "mse", "entropy")


def activation_range(statistics: TensorStatistics, rule: str) -> tuple[float, float]:
    """[low, high] of one tensor under ``rule`` (one of `RANGE_RULES`)."""
    if rule not in RANGE_RULES:
        raise ValueError(f"unknown range rule {rule!r}; choose from {', '.join(RANGE_RULES)}")
    if statistics.count == 0:
        raise ValueError("no calibration values were recorded for this tensor")
    low, high = (0.0 if statistics.nonnegative else statistics.minimum), statistics.maximum
    if rule == "percentile":
        low, high = _percentile_range(statistics, low, high)
    elif rule == "mse":
        low, high = _mse_range(statistics, low, high)
    elif rule == "entropy":
        low, high = _entropy_range(statistics, low, high)
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if high - low <= 0.0:
        high = low + 1e-8  # an all-zero tensor: any scale represents it
    return low, high


def _quantile(statistics: TensorStatistics, fraction: float) -> float:
    """The value below which ``fraction`` of the recorded values lie (upper edge of its bin)."""
    cumulative = np.cumsum(statistics.histogram)
    index = int(np.searchsorted(cumulative, fraction * cumulative[-1], side="left"))
    return (index + 1 - BINS_PER_SIDE) * statistics.bin_width


def _percentile_range(statistics: TensorStatistics, low: float, high: float) -> tuple[float, float]:
    tail = 1.0 - PERCENTILE / 100.0
    if statistics.nonnegative:
        return low, min(high, _quantile(statistics, 1.0 - tail))
    # The lower quantile is the lower edge of its bin: one bin below the upper edge.
    return (max(low, _quantile(statistics, tail / 2) - statistics.bin_width),
            min(high, _quantile(statistics, 1.0 - tail / 2)))


def _dequantization_error(values: np.ndarray, counts: np.ndarray, low: float, high: float) -> float:
    scale = (high - low) / 255.0
    zero_point = np.clip(np.round(-128.0 - low / scale), -128, 127)
    levels = np.clip(np.round(values / scale) + zero_point, -128, 127)
    return float(np.sum(counts * (values - (levels - zero_point) * scale) ** 2))


def _mse_range(statistics: TensorStatistics, low: float, high: float) -> tuple[float, float]:
    # Exact zeros (most of a ReLU output) are exact at every candidate: leave them out of the sum.
    counts = statistics.histogram.astype(np.float64)
    centers = statistics.bin_centers()
    counts[BINS_PER_SIDE] -= statistics.zeros
    kept = counts > 0
    values, counts = centers[kept], counts[kept]
    values = np.clip(values, low, high)  # a bin centre may lie past the observed extreme
    factors = np.linspace(1.0 / MSE_STEPS, 1.0, MSE_STEPS)
    errors = [_dequantization_error(values, counts, low * factor, high * factor) for factor in factors]
    best = factors[int(np.argmin(errors))]
    return low * best, high * best


def _kl_divergence(reference: np.ndarray, candidate: np.ndarray) -> float:
    present = reference > 0
    p = reference[present] / reference.sum()
    q = candidate[present] / candidate.sum()
    return float(np.sum(p * np.log(p / np.maximum(q, 1e-12))))


def _entropy_range(statistics: TensorStatistics, low: float, high: float) -> tuple[float, float]:
    """TensorRT's entropy calibration over |x| (its ``_compute_amax_entropy``, step by step)."""
    absolute = statistics.histogram[BINS_PER_SIDE:] + statistics.histogram[:BINS_PER_SIDE][::-1]
    absolute = absolute.astype(np.float64)
    levels = 256 if statistics.nonnegative else 128
    last = int(np.nonzero(absolute)[0].max()) + 1 if absolute.any() else levels
    if last <= levels:
        return low, high
    best_divergence, best_bins = np.inf, last
    for bins in range(levels, last + 1):
        # 1. Reference P: the first `bins` bins, everything beyond folded into the last one.
        reference = absolute[:bins].copy()
        reference[-1] += absolute[bins:].sum()
        # 2. Candidate Q: the same bins merged into `levels` groups, each group's count spread
        #    evenly over its non-empty bins (empty bins stay empty, as in TensorRT).
        edges = (np.arange(levels) * bins) // levels
        group_counts = np.add.reduceat(absolute[:bins], edges)
        nonempty = (absolute[:bins] > 0).astype(np.float64)
        group_sizes = np.add.reduceat(nonempty, edges)
        group_of_bin = np.repeat(np.arange(levels), np.diff(np.append(edges, bins)))
        candidate = nonempty * (group_counts / np.maximum(group_sizes, 1.0))[group_of_bin]
        # 3. Keep the threshold whose KL(P || Q) is smallest.
        divergence = _kl_divergence(reference, candidate)
        if divergence < best_divergence:
            best_divergence, best_bins = divergence, bins
    threshold = best_bins * statistics.bin_width
    return max(low, -threshold), min(high, threshold)
