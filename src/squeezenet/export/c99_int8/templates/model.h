/* $banner
 */

#ifndef $guard
#define $guard

#include <stdint.h>

/* model.c refuses to compile against a model.h from another export (a hash of both files). */
#define SQUEEZENET_EXPORT_ID $export_id
/* The int8 engine: squeezenet_predict_int8 and the in-place entry below exist (the float engine has neither). */
#define SQUEEZENET_INT8 1

/* Input: float32 [channels][height][width], already preprocessed ($preprocess). The engine
 * quantizes it as q = clamp(round(x / SQUEEZENET_INPUT_SCALE) + SQUEEZENET_INPUT_ZERO_POINT, -128, 127). */
#define SQUEEZENET_INPUT_CHANNELS $input_channels
#define SQUEEZENET_INPUT_HEIGHT $input_size
#define SQUEEZENET_INPUT_WIDTH $input_size
#define SQUEEZENET_INPUT_FLOATS $input_floats
#define SQUEEZENET_NUM_CLASSES $num_classes
#define SQUEEZENET_INPUT_SCALE ($input_scale)
#define SQUEEZENET_INPUT_ZERO_POINT ($input_zero_point)
/* logit = int32 sum * SQUEEZENET_LOGITS_SCALE (the global average pool is not requantized). */
#define SQUEEZENET_LOGITS_SCALE ($logits_scale)

/* Static memory plan: every buffer is static in model.c; these are their sizes in bytes. Layers that
 * write through the max pool after them (the unpooled tensor never exists): $pooled_layers. */
#define SQUEEZENET_ARENA_BYTES $arena_bytes            /* int8 activations and squeeze outputs, both ends of one arena: $arena_peak */
#define SQUEEZENET_ACCUMULATOR_WORDS $accumulator_words  /* int32, sized by $accumulator_layer ($accumulator_bytes bytes) */
#define SQUEEZENET_FILTER_TAPS $filter_taps              /* one decoded filter: int16 code, then weight, + uint16 tap ($filter_bytes bytes) */
#define SQUEEZENET_POOL_ROW_BYTES $pool_row_bytes        /* int8, one row of a max pool's input */
#define SQUEEZENET_BAND_BYTES $band_bytes                /* int8, the rows of one pool window for a written-through pool */
#define SQUEEZENET_SUMS_BYTES $sums_bytes                /* int32 sums of squeezenet_predict */
#define SQUEEZENET_STACK_BYTES $stack_bytes              /* call stack, an estimate (gcc -fstack-usage stays well under) */
/* Flash: the weights stay as the model file keeps them, a codebook and two entropy-coded streams per
 * layer (codes and relative indices, canonical Huffman or static rANS). Each convolution reads its
 * streams once per inference, filter by filter in output-channel order (a layer written through its
 * max pool too: a filter is decoded once for all its rows), into the one-filter scratch above; the
 * decoders' state is a few words on the stack, so no RAM holds an expanded layer. The int8 weights
 * and the rescaling of each channel are computed from the codebook and the scales as the filter is
 * decoded.
 * Peak RAM: all static buffers together plus the stack estimate (before alignment padding, at most a
 * few bytes), and flash held by the weights (streams, codebooks, int32 biases, any fallback tables). */
#define SQUEEZENET_RAM_BYTES $ram_bytes
#define SQUEEZENET_WEIGHT_BYTES $weight_bytes

/* Runs the network on one float image; returns 0, or -1 for a NULL pointer. Not re-entrant: the
 * buffers are static, so run one inference at a time. */
int squeezenet_predict(const float *input, float *logits);

/* Runs the network on an already quantized int8 image [channels][height][width]; writes the int32
 * sums (logit = sum * SQUEEZENET_LOGITS_SCALE) and returns the top-1 class (the first of equal
 * sums), or -1 for a NULL pointer. */
int32_t squeezenet_predict_int8(const int8_t *input, int32_t *sums);

/* In place, for an image that a camera or DMA writes straight into the engine's memory (no second
 * copy of 3*H*W bytes): squeezenet_input_buffer() is where the int8 image [channels][height][width]
 * goes (SQUEEZENET_INPUT_FLOATS bytes inside the arena, the same address every call), and
 * squeezenet_predict_in_place runs the network on it, like squeezenet_predict_int8. The inference
 * overwrites that slot, so write a new image before every call. Returns the top-1 class, or -1 for a
 * NULL pointer. */
int8_t *squeezenet_input_buffer(void);
int32_t squeezenet_predict_in_place(int32_t *sums);

#endif
