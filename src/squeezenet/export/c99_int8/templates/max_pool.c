/* ---- Max pooling on int8, output size rounded up as in Caffe (squeezenet.export.c99_int8.max_pool) ---- */
static int8_t sq_pool_row[SQUEEZENET_POOL_ROW_BYTES];

/* Per output row: the maximum down each column of the window's rows, then along each window.
 * Runs in place (output == input): output row r is written only after its input rows are in
 * sq_pool_row, and lands before any input a later row still needs (the output is smaller). */
static void sq_max_pool(const int8_t *input, int32_t channels, int32_t size, int32_t kernel, int32_t stride,
                        int32_t out_size, int8_t *output)
{
    int32_t c, oy, ox, y, x;
    for (c = 0; c < channels; c++) {
        const int8_t *plane = input + c * size * size;
        for (oy = 0; oy < out_size; oy++) {
            const int32_t y_end = oy * stride + kernel < size ? oy * stride + kernel : size;
            int8_t *row = output + (c * out_size + oy) * out_size;
            for (x = 0; x < size; x++)
                sq_pool_row[x] = plane[oy * stride * size + x];
            for (y = oy * stride + 1; y < y_end; y++)
                for (x = 0; x < size; x++)
                    sq_pool_row[x] = plane[y * size + x] > sq_pool_row[x] ? plane[y * size + x] : sq_pool_row[x];
            for (ox = 0; ox < out_size; ox++) {
                const int32_t x_end = ox * stride + kernel < size ? ox * stride + kernel : size;
                int8_t best = sq_pool_row[ox * stride];
                for (x = ox * stride + 1; x < x_end; x++)
                    best = sq_pool_row[x] > best ? sq_pool_row[x] : best;
                row[ox] = best;
            }
        }
    }
}
