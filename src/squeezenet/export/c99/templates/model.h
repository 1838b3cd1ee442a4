/* $banner
 */

#ifndef $guard
#define $guard

/* model.c refuses to compile against a model.h from another export (a hash of both files). */
#define SQUEEZENET_EXPORT_ID $export_id

/* Input: float32 [channels][height][width], already preprocessed ($preprocess). */
#define SQUEEZENET_INPUT_CHANNELS $input_channels
#define SQUEEZENET_INPUT_HEIGHT $input_size
#define SQUEEZENET_INPUT_WIDTH $input_size
#define SQUEEZENET_INPUT_FLOATS $input_floats
#define SQUEEZENET_NUM_CLASSES $num_classes

/* Every buffer is static in the .c file; these are their sizes (in elements). Activation buffers
 * get SQUEEZENET_TILE_SLACK floats more, read (never used) by the last tile of a plane. */
#define SQUEEZENET_TILE_SLACK $tile_slack
#define SQUEEZENET_ARENA_FLOATS $arena_floats          /* activations, both ends of one arena */
#define SQUEEZENET_SQUEEZED_FLOATS $squeezed_floats    /* a Fire module's squeeze output */
#define SQUEEZENET_PREPARED_FLOATS $prepared_floats    /* a padded / phase-split layer input */
#define SQUEEZENET_SCRATCH_WEIGHTS $scratch_weights    /* one expanded layer: float value + int32 offset each */
#define SQUEEZENET_SCRATCH_ROWS $scratch_rows          /* int32 row starts of that layer */
#define SQUEEZENET_SCRATCH_TAPS $scratch_taps          /* int32 input offset per kernel tap */
#define SQUEEZENET_POOL_ROW_FLOATS $pool_row_floats    /* one row of a max pool's input */
/* Peak RAM of all static buffers together, and flash held by the compressed weights. */
#define SQUEEZENET_RAM_BYTES $ram_bytes
#define SQUEEZENET_WEIGHT_BYTES $weight_bytes

/* Runs the network on one image; returns 0, or -1 for a NULL pointer. Not re-entrant: the
 * buffers are static, so run one inference at a time. */
int squeezenet_predict(const float *input, float *logits);

#endif
