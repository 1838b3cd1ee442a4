"""Exact integer primitives of int8 inference: the arithmetic a C engine must reproduce bit for bit.

The scheme is TFLite's (the TFLite quantization spec; Jacob et al. 2018, "Quantization and Training
of Neural Networks for Efficient Integer-Arithmetic-Only Inference", Sec. 2.2): a real value is
``scale * (q - zero_point)``; a real multiplier ``M`` is stored as an int32 ``multiplier`` in
[2**30, 2**31) and a power-of-two ``shift`` with ``M = multiplier * 2**(shift - 31)``, and applied
with gemmlowp's ``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT``, TFLite's
``MultiplyByQuantizedMultiplier``. Every function here works element-wise on int64 NumPy arrays
holding int32 values and rounds exactly as the C reference does:

- ``SaturatingRoundingDoublingHighMul(a, b)``: ``(a * b + nudge) / 2**31`` with C's truncating
  division, ``nudge = 2**30`` for a non-negative product and ``1 - 2**30`` otherwise; the one
  overflowing case ``a == b == INT32_MIN`` gives INT32_MAX.
- ``RoundingDivideByPOT(x, e)``: arithmetic shift right by ``e``, rounding half away from zero.

Deviation: where TFLite multiplies ``x * (1 << left_shift)`` in int32 (undefined on overflow), we
saturate the product to int32.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "ADD_LEFT_SHIFT",
    "multiply_by_quantized_multiplier",
    "quantize_multiplier",
    "round_half_away_from_zero",
    "rounding_divide_by_power_of_two",
    "saturate_int32",
    "saturating_rounding_doubling_high_multiply",
]

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
# TFLite's ADD kernel lifts both int8 inputs by 2**20 before rescaling them, so the rescaled
# inputs keep 20 fractional bits (tensorflow/lite/kernels/add.cc, ``data->left_shift = 20``).
ADD_LEFT_SHIFT = 20


def round_half_away_from_zero(values) -> np.ndarray:
    """C's ``round()`` (TFLite's ``TfLiteRound``): ties go away from zero, unlike NumPy's ``round``."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def saturate_int32(values) -> np.ndarray:
    return np.clip(np.asarray(values, dtype=np.int64), INT32_MIN, INT32_MAX)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """(multiplier, shift) with ``real_multiplier ~= multiplier * 2**(shift - 31)`` (TFLite ``QuantizeMultiplier``).

    ``frexp`` splits the value into a fraction in [0.5, 1) and an exponent; the fraction is
    rounded half away from zero to 31 bits; a fraction that rounds up to 2**31 is halved and the
    exponent incremented. Multipliers below 2**-31 become (0, 0), as in TFLite. Raises ValueError
    for a negative, infinite or NaN multiplier, or one of 2**31 and above.
    """
    real_multiplier = float(real_multiplier)
    if not math.isfinite(real_multiplier) or real_multiplier < 0:
        raise ValueError(f"a quantized multiplier must be finite and non-negative, got {real_multiplier}")
    if real_multiplier == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real_multiplier)
    multiplier = int(round_half_away_from_zero(fraction * (1 << 31)))
    if multiplier == 1 << 31:
        multiplier //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 31:
        raise ValueError(f"multiplier {real_multiplier} is too large for int32 fixed point")
    return multiplier, shift


def saturating_rounding_doubling_high_multiply(a, b) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul``: the high 32 bits of ``2 * a * b``, rounded.

    Computed as ``(a * b + 2**30) >> 31`` (floor shift): for a non-negative product that is the
    truncating division of ``a * b + 2**30``; for a negative one, truncating ``a * b + 1 - 2**30``
    toward zero equals flooring ``a * b + 1 - 2**30 + 2**31 - 1``, the same number. Only
    ``a == b == INT32_MIN`` exceeds int32 and saturates to INT32_MAX.
    """
    product = np.multiply(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))  # |a*b| <= 2**62: exact
    product += 1 << 30
    product >>= 31
    return np.minimum(product, INT32_MAX)


def rounding_divide_by_power_of_two(x, exponent) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: ``x / 2**exponent`` rounded half away from zero.

    gemmlowp adds one when the remainder ``x & mask`` exceeds ``(mask >> 1) + (x < 0)``; the same
    result is ``(x + half - (x < 0 and exponent > 0)) >> exponent`` with ``half = 2**exponent >> 1``.
    """
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    if np.any((exponent < 0) | (exponent > 31)):
        raise ValueError("rounding division needs an exponent in [0, 31]")
    half = (np.int64(1) << exponent) >> 1
    nudged = x + half
    nudged -= (x < 0) & (exponent > 0)
    return nudged >> exponent


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """TFLite ``MultiplyByQuantizedMultiplier``: ``x * multiplier * 2**(shift - 31)``, rounded.

    A positive ``shift`` is a left shift of ``x`` before the high multiply (saturated to int32,
    our deviation); a negative one is a rounding right shift after it. ``multiplier`` and
    ``shift`` may be per-channel arrays that broadcast against ``x``.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    lifted = x if not np.any(left) else saturate_int32(x << left)
    return rounding_divide_by_power_of_two(saturating_rounding_doubling_high_multiply(lifted, multiplier), right)
