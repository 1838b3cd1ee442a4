/* ---- Input quantization, TFLite's AffineQuantize (squeezenet.int8.reference.quantize_input) ----
 * q = clamp(round(x / scale) + zero_point, -128, 127): the division in float32, then rounding half
 * away from zero without libm or double: for a float below 2^24 the fraction magnitude - trunc
 * (magnitude) is exact in float, whereas magnitude + 0.5f can round up (0.49999997f + 0.5f == 1.0f). */
static void sq_quantize_input(const float *input, int32_t count, float scale, int32_t zero_point, int8_t *output)
{
    int32_t i;
    for (i = 0; i < count; i++) {
        const float ratio = input[i] / scale;
        const float magnitude = ratio < 0.0f ? -ratio : ratio;
        /* Anything past 512 levels saturates anyway; the bound keeps the conversion defined. */
        int32_t level = magnitude < 512.0f ? (int32_t)magnitude : 512;
        if (level < 512 && magnitude - (float)level >= 0.5f)
            level++;
        if (ratio < 0.0f)
            level = -level;
        output[i] = sq_saturate_int8(level + zero_point, -128);
    }
}
