/* $banner
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "$header_name"

#if !defined(SQUEEZENET_EXPORT_ID) || SQUEEZENET_EXPORT_ID != $export_id
#error "model.h does not come from the export that wrote this model.c: export both files again"
#endif

$kernels
/* ---- Weights as the model file keeps them: per layer the entropy-coded codes and relative indices,
 * the codebook and the int32 bias (and a level or rescaling table where the per-filter rule is not exact) ---- */

$weights
/* ---- Bypass additions ---- */
$additions
/* ---- Activations (int8), the Fire modules' squeeze outputs included: one arena used from both ends ---- */
static int8_t sq_arena[SQUEEZENET_ARENA_BYTES];
static int32_t sq_sums[SQUEEZENET_NUM_CLASSES];

static const float sq_input_scale = $input_scale;
static const float sq_logits_scale = $logits_scale;

/* ---- One function per layer ---- */

$layers
/* The network on an int8 input already in the arena; the int32 sums go to sums. */
static void sq_run(int32_t *sums)
{
$calls}

static int32_t sq_top1(const int32_t *sums)
{
    int32_t c, best = 0;
    for (c = 1; c < SQUEEZENET_NUM_CLASSES; c++)
        if (sums[c] > sums[best])
            best = c;
    return best;
}

int32_t squeezenet_predict_int8(const int8_t *input, int32_t *sums)
{
    if (input == NULL || sums == NULL)
        return -1;
    memcpy(sq_arena + $input_offset, input, SQUEEZENET_INPUT_FLOATS);
    sq_run(sums);
    return sq_top1(sums);
}

int8_t *squeezenet_input_buffer(void)
{
    return sq_arena + $input_offset;
}

int32_t squeezenet_predict_in_place(int32_t *sums)
{
    if (sums == NULL)
        return -1;
    sq_run(sums);
    return sq_top1(sums);
}

int squeezenet_predict(const float *input, float *logits)
{
    int32_t c;
    if (input == NULL || logits == NULL)
        return -1;
    sq_quantize_input(input, SQUEEZENET_INPUT_FLOATS, sq_input_scale, SQUEEZENET_INPUT_ZERO_POINT,
                      sq_arena + $input_offset);
    sq_run(sq_sums);
    for (c = 0; c < SQUEEZENET_NUM_CLASSES; c++)
        logits[c] = (float)sq_sums[c] * sq_logits_scale; /* one float32 rounding, as the reference */
    return 0;
}
