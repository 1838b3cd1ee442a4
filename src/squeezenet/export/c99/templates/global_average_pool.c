/* ---- Global average pooling (squeezenet.export.c99.global_average_pool) ---- */
static void sq_global_average_pool(const float *input, int32_t channels, int32_t pixels, float *output)
{
    int32_t c, p;
    for (c = 0; c < channels; c++) {
        float sum = 0.0f;
        for (p = 0; p < pixels; p++)
            sum += input[c * pixels + p];
        output[c] = sum / (float)pixels;
    }
}
