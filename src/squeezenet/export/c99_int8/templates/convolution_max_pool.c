/* ---- int8 convolution written through the max pool after it (squeezenet.export.c99_int8.memory) ----
 * Per output channel, the convolution's rows are computed in order, one at a time, and stored as
 * int8 (rescaled and clamped exactly as sq_convolve stores them) in a band of pool_kernel rows; a
 * pooled row is written as soon as the band holds its window, whose rows are the last pool_kernel
 * computed. The unpooled tensor never exists and no row is computed twice. */
static int8_t sq_band[SQUEEZENET_BAND_BYTES];

static void sq_convolve_max_pool(const sq_int8_layer *layer, const int8_t *input, int32_t in_channels,
                                 int32_t in_size, int32_t input_zero_point, int32_t out_channels, int32_t kernel,
                                 int32_t stride, int32_t padding, int32_t out_size, int32_t output_zero_point,
                                 int32_t low, int32_t pool_kernel, int32_t pool_stride, int32_t pooled_size,
                                 int8_t *output)
{
    const int32_t taps = in_channels * kernel * kernel;
    sq_cursor cursor;
    int32_t channel, y, x, oy, ox, r;
    sq_start_layer(layer, &cursor);
    for (channel = 0; channel < out_channels; channel++) {
        int32_t multiplier, shift;
        const int32_t count = sq_decode_filter(layer, channel, taps, &cursor, &multiplier, &shift);
        int8_t *target = output + channel * pooled_size * pooled_size;
        /* Rows past the last window (a pool rounded down) are never read: not computed. */
        for (y = 0, oy = 0; y < out_size && oy < pooled_size; y++) {
            int8_t *row = sq_band + (y % pool_kernel) * out_size;
            for (x = 0; x < out_size; x++)
                sq_accumulators[x] = layer->bias[channel];
            sq_accumulate(input, count, in_size, input_zero_point, kernel, stride, padding, out_size, y, y + 1,
                          sq_accumulators);
            for (x = 0; x < out_size; x++)
                row[x] = sq_saturate_int8(sq_rescale(sq_accumulators[x], multiplier, shift) + output_zero_point, low);
            /* Windows past the edge see only real rows and columns (Caffe's rounded-up pool). */
            while (oy < pooled_size) {
                const int32_t first = oy * pool_stride;
                const int32_t end = first + pool_kernel < out_size ? first + pool_kernel : out_size;
                if (end - 1 != y)
                    break;
                for (ox = 0; ox < pooled_size; ox++) {
                    const int32_t x_first = ox * pool_stride;
                    const int32_t x_end = x_first + pool_kernel < out_size ? x_first + pool_kernel : out_size;
                    int8_t best = sq_band[(first % pool_kernel) * out_size + x_first];
                    for (r = first; r < end; r++)
                        for (x = x_first; x < x_end; x++) {
                            const int8_t value = sq_band[(r % pool_kernel) * out_size + x];
                            best = value > best ? value : best;
                        }
                    target[oy * pooled_size + ox] = best;
                }
                oy++;
            }
        }
    }
}
