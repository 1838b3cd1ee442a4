/* ---- Max pooling, output size rounded up as in Caffe (squeezenet.export.c99.max_pool) ----
 * One kernel for the float and the int8 exporter: each fills in its element type and the model.h
 * macro that sizes sq_pool_row (squeezenet.export.c99.templates.ExporterTemplates). */
static $element sq_pool_row[$pool_row_capacity];

/* On square size x size planes, per output row: the maximum down each column of the window's rows
 * first (contiguous, so it vectorises), then along each window of that row. May run in place
 * (output == input): output row r is written only after its input rows are in sq_pool_row, and it
 * lands before any input that a later row still needs, because the output is no larger than the input. */
static void sq_max_pool(const $element *input, int32_t channels, int32_t size, int32_t kernel, int32_t stride,
                        int32_t out_size, $element *output)
{
    int32_t c, oy, ox, y, x;
    for (c = 0; c < channels; c++) {
        const $element *plane = input + c * size * size;
        for (oy = 0; oy < out_size; oy++) {
            const int32_t y_end = oy * stride + kernel < size ? oy * stride + kernel : size;
            $element *row = output + (c * out_size + oy) * out_size;
            for (x = 0; x < size; x++)
                sq_pool_row[x] = plane[oy * stride * size + x];
            for (y = oy * stride + 1; y < y_end; y++)
                for (x = 0; x < size; x++)
                    sq_pool_row[x] = plane[y * size + x] > sq_pool_row[x] ? plane[y * size + x] : sq_pool_row[x];
            for (ox = 0; ox < out_size; ox++) {
                const int32_t x_end = ox * stride + kernel < size ? ox * stride + kernel : size;
                $element best = sq_pool_row[ox * stride];
                for (x = ox * stride + 1; x < x_end; x++)
                    best = sq_pool_row[x] > best ? sq_pool_row[x] : best;
                row[ox] = best;
            }
        }
    }
}
