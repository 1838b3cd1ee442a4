/* ---- int8 convolution over entropy-coded weights (squeezenet.export.c99_int8.convolution) ----
 * A layer stays as the model file keeps it: a codebook and two entropy-coded streams, the codes and
 * the relative indices (zeros skipped before each entry). One output channel at a time,
 * sq_decode_filter() reads that channel's entries into a small scratch (weight, tap), dropping zeros
 * and fillers, and turns their codes into int8 weights at the channel's scale (or looks them up in a
 * level table); then the whole output plane (or, for a pooled write, one row at a time) is summed in
 * int32 and rescaled. */

typedef struct {
    sq_stream codes;         /* one code into the codebook per stored entry */
    sq_stream gaps;          /* one relative index per stored entry */
    int32_t entries;         /* stored entries, fillers included */
    const float *codebook;   /* float32 values, or NULL when every value is a float16 (.sqz does the same): */
    const uint16_t *codebook16; /* the values as IEEE binary16 bits */
    const int8_t *levels;    /* [out_channels][codebook_size] int8 weights, or NULL: computed per filter */
    int32_t codebook_size;
    const int32_t *bias;     /* int32, at the accumulator's scale */
    const int32_t *multiplier; /* per channel, or NULL: computed per filter from the three scales */
    const int8_t *shift;
    float input_scale, output_scale;
} sq_int8_layer;

/* Where the decoder stands in a layer: both streams run on across output channels, so the channels
 * are decoded in order, each from where the last one stopped, in one pass over the layer. */
typedef struct {
    sq_stream_cursor codes, gaps;
    int32_t entry;    /* entries whose code has been read */
    int32_t position; /* flat index of entry `entry` (its relative index already read) */
} sq_cursor;

static int32_t sq_accumulators[SQUEEZENET_ACCUMULATOR_WORDS];
static int16_t sq_filter_weights[SQUEEZENET_FILTER_TAPS];
static uint16_t sq_filter_taps[SQUEEZENET_FILTER_TAPS];

static void sq_start_layer(const sq_int8_layer *layer, sq_cursor *cursor)
{
    sq_stream_start(&layer->codes, &cursor->codes);
    sq_stream_start(&layer->gaps, &cursor->gaps);
    cursor->entry = 0;
    cursor->position = layer->entries > 0 ? sq_stream_decode(&layer->gaps, &cursor->gaps) : 0;
}

/* An IEEE binary16 value as float32, exactly (no infinity or NaN in a codebook). */
static float sq_half(uint16_t half)
{
    const int32_t exponent = (half >> 10) & 0x1F;
    uint32_t bits;
    float value;
    if (exponent == 0) { /* subnormal: fraction * 2^-24, exact in float32 */
        value = (float)(half & 0x3FFu) * (1.0f / 16777216.0f);
        return half & 0x8000u ? -value : value;
    }
    bits = (uint32_t)(half & 0x8000u) << 16 | (uint32_t)(exponent + 112) << 23 | (uint32_t)(half & 0x3FFu) << 13;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline float sq_codebook_value(const sq_int8_layer *layer, int32_t code)
{
    return layer->codebook != NULL ? layer->codebook[code] : sq_half(layer->codebook16[code]);
}

/* (significand, exponent) of a positive float32, value = significand * 2^exponent, with the
 * significand in [2^23, 2^24) (a subnormal's is shifted up). */
static void sq_float_parts(float value, uint32_t *significand, int32_t *exponent)
{
    uint32_t bits;
    int32_t biased;
    memcpy(&bits, &value, sizeof bits);
    biased = (int32_t)((bits >> 23) & 0xFF);
    *significand = (bits & 0x7FFFFFu) | (biased > 0 ? 0x800000u : 0u);
    *exponent = biased > 0 ? biased - 150 : -149;
    while (*significand < 0x800000u) {
        *significand <<= 1;
        (*exponent)--;
    }
}

/* The int8 weight of a non-zero codebook value at a channel's scale (given as sq_float_parts):
 * round(value / scale), ties away from zero, clamped to 127, as squeezenet.int8.quantize; exact in
 * integers on the two significands, which the reference's float64 quotient also rounds to
 * (squeezenet.export.c99_int8.weights). */
static int32_t sq_weight_level(float value, uint32_t scale_significand, int32_t scale_exponent)
{
    uint32_t value_significand;
    int32_t value_exponent, difference, level;
    sq_float_parts(value < 0.0f ? -value : value, &value_significand, &value_exponent);
    difference = value_exponent - scale_exponent; /* the significands' ratio lies in (1/2, 2) */
    if (difference < -1)
        return 0; /* |value| / scale < 1/2 */
    if (difference > 7)
        level = 127; /* |value| / scale > 128 */
    else {
        /* floor(x + 1/2) = (floor(2x) + 1) / 2 (floor), with 2x = significand ratio * 2^(difference + 1):
         * one 32-bit division, the numerator below 2^32 */
        level = (int32_t)(((value_significand << (difference + 1)) / scale_significand + 1) >> 1);
        level = level > 127 ? 127 : level;
    }
    return value < 0.0f ? -level : level;
}

/* TFLite QuantizeMultiplier (squeezenet.int8.arithmetic.quantize_multiplier) of the float64
 * input_scale * weight_scale / output_scale of squeezenet.int8.quantize, with no double on the chip:
 * the product of two float32 is exact in float64 (a 48-bit significand); the quotient is rounded to
 * 53 bits (to nearest, ties to even) from an exact long division; then frexp's fraction is rounded
 * to the 31-bit multiplier, half away from zero. */
static void sq_quantize_multiplier(float input_scale, float weight_scale, float output_scale, int32_t *multiplier,
                                   int32_t *shift)
{
    uint32_t input_significand, weight_significand, output_significand, remainder = 0;
    int32_t input_exponent, weight_exponent, output_exponent, exponent, dropped, bit;
    uint64_t product, quotient = 0, rest, half;
    sq_float_parts(input_scale, &input_significand, &input_exponent);
    sq_float_parts(weight_scale, &weight_significand, &weight_exponent);
    sq_float_parts(output_scale, &output_significand, &output_exponent);
    product = (uint64_t)input_significand * weight_significand; /* in [2^46, 2^48) */
    /* quotient = floor(product * 2^34 / output significand), in [2^56, 2^59): bit by bit, since the
     * chip's library may have no 64-bit division; the remainder stays below 2^25. */
    for (bit = 47 + 34; bit >= 0; bit--) {
        remainder = remainder << 1 | (bit >= 34 ? (uint32_t)(product >> (bit - 34)) & 1u : 0u);
        quotient <<= 1;
        if (remainder >= output_significand) {
            remainder -= output_significand;
            quotient |= 1u;
        }
    }
    for (dropped = 0; quotient >> dropped >= (uint64_t)1 << 53; dropped++)
        ;
    rest = quotient & (((uint64_t)1 << dropped) - 1);
    half = (uint64_t)1 << (dropped - 1);
    quotient >>= dropped;
    if (rest > half || (rest == half && (remainder != 0 || (quotient & 1u))))
        quotient++;
    /* The float64 quotient is quotient * 2^exponent; frexp's fraction is quotient / 2^53. */
    exponent = input_exponent + weight_exponent - output_exponent - 34 + dropped + 53;
    if (quotient == (uint64_t)1 << 53) {
        quotient >>= 1;
        exponent++;
    }
    quotient = (quotient + ((uint64_t)1 << 21)) >> 22;
    if (quotient == (uint64_t)1 << 31) {
        quotient >>= 1;
        exponent++;
    }
    *multiplier = exponent < -31 ? 0 : (int32_t)quotient;
    *shift = exponent < -31 ? 0 : exponent;
}

/* Decode output channel `channel` (taps = in_channels * kernel * kernel weights) into
 * sq_filter_weights / sq_filter_taps and its rescaling; returns how many non-zero weights it has. */
static int32_t sq_decode_filter(const sq_int8_layer *layer, int32_t channel, int32_t taps, sq_cursor *cursor,
                                int32_t *multiplier, int32_t *shift)
{
    const int32_t first = channel * taps, end = first + taps;
    int32_t count = 0, kept = 0, j, scale_exponent;
    uint32_t scale_significand;
    float largest = 0.0f, scale;
    /* The channel's entries with a non-zero value, codes first: the scale needs all of them. */
    while (cursor->entry < layer->entries && cursor->position < end) {
        const int32_t code = sq_stream_decode(&layer->codes, &cursor->codes);
        const float value = sq_codebook_value(layer, code);
        if (value != 0.0f) {
            const float magnitude = value < 0.0f ? -value : value;
            largest = magnitude > largest ? magnitude : largest;
            sq_filter_weights[count] = (int16_t)code;
            sq_filter_taps[count] = (uint16_t)(cursor->position - first);
            count++;
        }
        if (++cursor->entry < layer->entries)
            cursor->position += sq_stream_decode(&layer->gaps, &cursor->gaps) + 1;
    }
    /* float32(largest / 127), or 1 for an all-zero channel (squeezenet.int8.quantize). */
    scale = largest > 0.0f ? largest / 127.0f : 1.0f;
    sq_float_parts(scale, &scale_significand, &scale_exponent);
    for (j = 0; j < count; j++) {
        const int32_t code = sq_filter_weights[j];
        const int32_t weight = layer->levels != NULL ? layer->levels[channel * layer->codebook_size + code]
                                                     : sq_weight_level(sq_codebook_value(layer, code), scale_significand,
                                                                       scale_exponent);
        if (weight != 0) {
            sq_filter_weights[kept] = (int16_t)weight;
            sq_filter_taps[kept] = sq_filter_taps[j];
            kept++;
        }
    }
    if (layer->multiplier != NULL) {
        *multiplier = layer->multiplier[channel];
        *shift = layer->shift[channel];
    } else
        sq_quantize_multiplier(layer->input_scale, scale, layer->output_scale, multiplier, shift);
    return kept;
}

/* The output rows (or columns) [*first, *last) whose input row offset * stride + offset - padding
 * falls inside the image: padding holds the input zero point, i.e. contributes nothing. */
static inline void sq_valid_range(int32_t offset, int32_t stride, int32_t padding, int32_t in_size,
                                  int32_t out_size, int32_t *first, int32_t *last)
{
    const int32_t reach = in_size - 1 + padding - offset;
    *first = padding > offset ? (padding - offset + stride - 1) / stride : 0;
    *last = reach < 0 ? 0 : reach / stride + 1;
    if (*last > out_size)
        *last = out_size;
}

/* Adds the `count` decoded weights of one filter into sums, over output rows [row_first, row_last)
 * (sums[0] is the first column of row_first): sq_convolve passes every row, a pooled write one. */
static void sq_accumulate(const int8_t *input, int32_t count, int32_t in_size, int32_t input_zero_point,
                          int32_t kernel, int32_t stride, int32_t padding, int32_t out_size, int32_t row_first,
                          int32_t row_last, int32_t *sums)
{
    int32_t j, y, x;
    for (j = 0; j < count; j++) {
        const int32_t tap = sq_filter_taps[j], weight = sq_filter_weights[j];
        const int32_t i = tap / (kernel * kernel), ky = tap / kernel % kernel, kx = tap % kernel;
        int32_t y_first, y_last, x_first, x_last;
        sq_valid_range(ky, stride, padding, in_size, out_size, &y_first, &y_last);
        sq_valid_range(kx, stride, padding, in_size, out_size, &x_first, &x_last);
        y_first = y_first > row_first ? y_first : row_first;
        y_last = y_last < row_last ? y_last : row_last;
        for (y = y_first; y < y_last; y++) {
            /* An index rather than a row pointer: the row's start may lie before the buffer. */
            const int32_t base = (i * in_size + y * stride + ky - padding) * in_size + kx - padding;
            int32_t *row = sums + (y - row_first) * out_size;
            if (stride == 1)
                for (x = x_first; x < x_last; x++)
                    row[x] += weight * (input[base + x] - input_zero_point);
            else
                for (x = x_first; x < x_last; x++)
                    row[x] += weight * (input[base + x * stride] - input_zero_point);
        }
    }
}

/* One convolution. bypass == NULL: output = clamp(rescale(acc) + zero point, low, 127); otherwise
 * the result (no ReLU) is added into output with TFLite ADD (a Fire module's complex bypass). */
static void sq_convolve(const sq_int8_layer *layer, const int8_t *input, int32_t in_channels, int32_t in_size,
                        int32_t input_zero_point, int32_t out_channels, int32_t kernel, int32_t stride,
                        int32_t padding, int32_t out_size, int32_t output_zero_point, int32_t low,
                        const sq_addition *bypass, int8_t *output)
{
    const int32_t taps = in_channels * kernel * kernel, plane = out_size * out_size;
    sq_cursor cursor;
    int32_t channel, p;
    sq_start_layer(layer, &cursor);
    for (channel = 0; channel < out_channels; channel++) {
        int32_t multiplier, shift;
        const int32_t count = sq_decode_filter(layer, channel, taps, &cursor, &multiplier, &shift);
        int8_t *target = output + channel * plane;
        for (p = 0; p < plane; p++)
            sq_accumulators[p] = layer->bias[channel];
        sq_accumulate(input, count, in_size, input_zero_point, kernel, stride, padding, out_size, 0, out_size,
                      sq_accumulators);
        for (p = 0; p < plane; p++) {
            const int32_t value = sq_rescale(sq_accumulators[p], multiplier, shift) +
                                  output_zero_point;
            if (bypass == NULL)
                target[p] = sq_saturate_int8(value, low);
            else
                target[p] = sq_add_one(target[p], sq_saturate_int8(value, -128), bypass);
        }
    }
}
