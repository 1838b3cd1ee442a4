/* ---- Element-wise sum, the simple bypass of Section 6 (squeezenet.export.c99.fire) ---- */
static void sq_add(const float *input, int32_t count, float *output)
{
    int32_t i;
    for (i = 0; i < count; i++)
        output[i] += input[i];
}
