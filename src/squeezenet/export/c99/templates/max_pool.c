/* ---- Max pooling, output size rounded up as in Caffe (squeezenet.export.c99.max_pool) ---- */
static float sq_pool_row[SQUEEZENET_POOL_ROW_FLOATS];

/* Per output row: the maximum down each column of the window's rows first (contiguous, so it
 * vectorises), then along each window of that row. May run in place (output == input): output row
 * r is written only after its input rows are in sq_pool_row, and it lands before any input that a
 * later row still needs, because the output is no larger than the input in either dimension. */
static void sq_max_pool(const float *input, int32_t channels, int32_t height, int32_t width, int32_t kernel,
                        int32_t stride, int32_t out_height, int32_t out_width, float *output)
{
    int32_t c, oy, ox, y, x;
    for (c = 0; c < channels; c++) {
        const float *plane = input + c * height * width;
        for (oy = 0; oy < out_height; oy++) {
            const int32_t y_end = oy * stride + kernel < height ? oy * stride + kernel : height;
            float *row = output + (c * out_height + oy) * out_width;
            for (x = 0; x < width; x++)
                sq_pool_row[x] = plane[oy * stride * width + x];
            for (y = oy * stride + 1; y < y_end; y++)
                for (x = 0; x < width; x++)
                    sq_pool_row[x] = plane[y * width + x] > sq_pool_row[x] ? plane[y * width + x] : sq_pool_row[x];
            for (ox = 0; ox < out_width; ox++) {
                const int32_t x_end = ox * stride + kernel < width ? ox * stride + kernel : width;
                float best = sq_pool_row[ox * stride];
                for (x = ox * stride + 1; x < x_end; x++)
                    best = sq_pool_row[x] > best ? sq_pool_row[x] : best;
                row[ox] = best;
            }
        }
    }
}
