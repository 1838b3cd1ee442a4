/* ---- The simple bypass (squeezenet.export.c99_int8.fire) ---- */
/* output = output + input (the simple bypass), in place over the Fire module's output. */
static inline void sq_add(const int8_t *input, int32_t count, const sq_addition *plan, int8_t *output)
{
    int32_t i;
    for (i = 0; i < count; i++)
        output[i] = sq_add_one(output[i], input[i], plan);
}
