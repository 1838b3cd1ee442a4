/* ---- Global average pooling without requantization (squeezenet.int8.reference) ----
 * The int32 sum over positions of q - zero_point; the caller scales it into a logit. */
static void sq_global_sum(const int8_t *input, int32_t channels, int32_t pixels, int32_t zero_point, int32_t *sums)
{
    int32_t c, p;
    for (c = 0; c < channels; c++) {
        int32_t sum = 0;
        for (p = 0; p < pixels; p++)
            sum += input[c * pixels + p] - zero_point;
        sums[c] = sum;
    }
}
