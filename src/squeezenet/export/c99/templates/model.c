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
/* ---- Compressed weights: per layer the codebook, codes, relative indices and bias ---- */

$weights
/* ---- Activations: one arena used from both ends, plus the Fire modules' squeeze output ---- */
static float sq_arena[SQUEEZENET_ARENA_FLOATS + SQUEEZENET_TILE_SLACK];
static float sq_squeezed[SQUEEZENET_SQUEEZED_FLOATS + SQUEEZENET_TILE_SLACK];

/* ---- One function per layer ---- */

$layers
int squeezenet_predict(const float *input, float *logits)
{
    if (input == NULL || logits == NULL)
        return -1;
$calls    return 0;
}
