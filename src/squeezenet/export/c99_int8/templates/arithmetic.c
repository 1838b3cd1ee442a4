/* ---- Fixed-point rescaling, TFLite's MultiplyByQuantizedMultiplier (squeezenet.int8.arithmetic) ----
 * Bit for bit the reference's integer arithmetic: a real multiplier M is an int32 multiplier in
 * [2^30, 2^31) and a shift with M = multiplier * 2^(shift - 31). Every shift of a negative number
 * goes through sq_floor_shift, because C99 leaves the right shift of a negative value to the
 * implementation. */
static inline int64_t sq_floor_shift(int64_t value, int32_t exponent)
{
    if (value >= 0)
        return value >> exponent;
    return -((-value + (((int64_t)1 << exponent) - 1)) >> exponent);
}

/* gemmlowp SaturatingRoundingDoublingHighMul: floor((a * b + 2^30) / 2^31), saturated (only
 * a == b == INT32_MIN overflows). */
static inline int32_t sq_high_multiply(int32_t a, int32_t b)
{
    const int64_t product = sq_floor_shift((int64_t)a * (int64_t)b + ((int64_t)1 << 30), 31);
    return product > INT32_MAX ? INT32_MAX : (int32_t)product;
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded half away from zero. */
static inline int32_t sq_rounding_divide(int32_t x, int32_t exponent)
{
    const int64_t half = ((int64_t)1 << exponent) >> 1;
    return (int32_t)sq_floor_shift((int64_t)x + half - (x < 0 && exponent > 0 ? 1 : 0), exponent);
}

/* x * multiplier * 2^(shift - 31), rounded; a positive shift lifts x first, saturated to int32
 * (the reference's deviation from TFLite, where that product is undefined on overflow). */
static inline int32_t sq_rescale(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 0) {
        int64_t lifted = (int64_t)x * ((int64_t)1 << shift);
        lifted = lifted > INT32_MAX ? INT32_MAX : (lifted < INT32_MIN ? INT32_MIN : lifted);
        return sq_high_multiply((int32_t)lifted, multiplier);
    }
    return sq_rounding_divide(sq_high_multiply(x, multiplier), -shift);
}

static inline int8_t sq_saturate_int8(int32_t value, int32_t low)
{
    return (int8_t)(value < low ? low : (value > 127 ? 127 : value));
}
