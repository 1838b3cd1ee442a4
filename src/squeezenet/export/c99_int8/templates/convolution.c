/* ---- int8 convolution over compressed weights (squeezenet.export.c99_int8.convolution) ----
 * A layer stays compressed in flash: per stored entry its relative index (zeros skipped before it)
 * and either its int8 weight or a code into a per-channel table of int8 levels. One output channel
 * at a time, sq_decode_filter() walks that channel's entries into a small scratch (weight, tap),
 * dropping zeros and fillers; then the whole output plane (or, for a pooled write, one row) is summed in
 * int32 and rescaled. */

typedef struct {
    const uint8_t *gaps8;    /* 4-bit (two per byte, low nibble first) or 8-bit relative indices, else NULL */
    const uint16_t *gaps16;  /* 16-bit relative indices, else NULL */
    int32_t gap_bits;
    const int8_t *weights;   /* the int8 weight of each stored entry, or NULL when codes + levels are used */
    const uint8_t *codes;    /* 4-bit (two per byte) or 8-bit codes, else NULL */
    int32_t code_bits;
    const int8_t *levels;    /* [out_channels][codebook_size]: the int8 weight of each code per channel */
    int32_t codebook_size;
    int32_t entries;         /* stored entries, fillers included */
    const int32_t *bias;     /* int32, at the accumulator's scale */
    const int32_t *multiplier;
    const int8_t *shift;
} sq_int8_layer;

/* Where the decoder stands in a layer's entry stream: the relative indices run on across output
 * channels, so the channels are decoded in order, each from where the last one stopped. */
typedef struct {
    int32_t entry;
    int32_t position; /* flat index of the last consumed entry, -1 before the first */
} sq_cursor;

static int32_t sq_accumulators[SQUEEZENET_ACCUMULATOR_WORDS];
static int16_t sq_filter_weights[SQUEEZENET_FILTER_TAPS];
static uint16_t sq_filter_taps[SQUEEZENET_FILTER_TAPS];

static inline int32_t sq_gap(const sq_int8_layer *layer, int32_t entry)
{
    if (layer->gap_bits == 4)
        return (layer->gaps8[entry >> 1] >> ((entry & 1) * 4)) & 0x0F;
    return layer->gap_bits == 8 ? layer->gaps8[entry] : layer->gaps16[entry];
}

static inline int32_t sq_weight(const sq_int8_layer *layer, int32_t channel, int32_t entry)
{
    int32_t code;
    if (layer->weights != NULL)
        return layer->weights[entry];
    code = layer->code_bits == 4 ? (layer->codes[entry >> 1] >> ((entry & 1) * 4)) & 0x0F : layer->codes[entry];
    return layer->levels[channel * layer->codebook_size + code];
}

/* Decode output channel `channel` (taps = in_channels * kernel * kernel weights) into
 * sq_filter_weights / sq_filter_taps; returns how many non-zero weights it has. */
static int32_t sq_decode_filter(const sq_int8_layer *layer, int32_t channel, int32_t taps, sq_cursor *cursor)
{
    const int32_t first = channel * taps, end = first + taps;
    int32_t count = 0;
    while (cursor->entry < layer->entries) {
        const int32_t position = cursor->position + sq_gap(layer, cursor->entry) + 1;
        int32_t weight;
        if (position >= end)
            break;
        weight = sq_weight(layer, channel, cursor->entry);
        cursor->position = position;
        cursor->entry++;
        if (weight != 0) {
            sq_filter_weights[count] = (int16_t)weight;
            sq_filter_taps[count] = (uint16_t)(position - first);
            count++;
        }
    }
    return count;
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
    sq_cursor cursor = {0, -1};
    int32_t channel, p;
    for (channel = 0; channel < out_channels; channel++) {
        const int32_t count = sq_decode_filter(layer, channel, taps, &cursor);
        int8_t *target = output + channel * plane;
        for (p = 0; p < plane; p++)
            sq_accumulators[p] = layer->bias[channel];
        sq_accumulate(input, count, in_size, input_zero_point, kernel, stride, padding, out_size, 0, out_size,
                      sq_accumulators);
        for (p = 0; p < plane; p++) {
            const int32_t value = sq_rescale(sq_accumulators[p], layer->multiplier[channel], layer->shift[channel]) +
                                  output_zero_point;
            if (bypass == NULL)
                target[p] = sq_saturate_int8(value, low);
            else
                target[p] = sq_add_one(target[p], sq_saturate_int8(value, -128), bypass);
        }
    }
}
