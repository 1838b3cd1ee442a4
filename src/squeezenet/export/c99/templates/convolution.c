/* ---- Convolution over Deep Compression weights (squeezenet.export.c99.convolution) ----
 * A layer stays compressed in flash: codebook, one code per stored entry and the relative index
 * (zeros skipped) before it. Just before it runs, sq_expand() decodes it into the scratch buffers
 * as, per output channel, its non-zero weights and the input offset each one multiplies; zeros and
 * filler entries are dropped, so the convolution does only the multiplications that matter. */

typedef struct {
    const float *codebook;
    const uint8_t *codes8;   /* codes of a codebook of at most 256 entries, else NULL */
    const uint16_t *codes16; /* codes of a larger codebook, else NULL */
    const uint8_t *gaps8;    /* 4-bit (two per byte, low nibble first) or 8-bit relative indices */
    const uint16_t *gaps16;  /* 16-bit relative indices, else NULL */
    int32_t gap_bits;
    int32_t entries;         /* stored entries, fillers included */
    const float *bias;
} sq_compressed_layer;

enum { SQ_STORE_RELU = 0, SQ_ACCUMULATE = 1 };

static float sq_values[SQUEEZENET_SCRATCH_WEIGHTS];
static int32_t sq_offsets[SQUEEZENET_SCRATCH_WEIGHTS];
static int32_t sq_rows[SQUEEZENET_SCRATCH_ROWS];
static int32_t sq_taps[SQUEEZENET_SCRATCH_TAPS];
static float sq_prepared[SQUEEZENET_PREPARED_FLOATS + SQUEEZENET_TILE_SLACK];

static inline int32_t sq_gap(const sq_compressed_layer *layer, int32_t entry)
{
    if (layer->gap_bits == 4)
        return (layer->gaps8[entry >> 1] >> ((entry & 1) * 4)) & 0x0F;
    return layer->gap_bits == 8 ? layer->gaps8[entry] : layer->gaps16[entry];
}

static inline int32_t sq_code(const sq_compressed_layer *layer, int32_t entry)
{
    return layer->codes8 != NULL ? layer->codes8[entry] : layer->codes16[entry];
}

/* Decode one layer into sq_values/sq_offsets/sq_rows. The input is read from planes of
 * plane_height x plane_width floats: tap (i, ky, kx) of a stride-s kernel lives in phase plane
 * (ky % s, kx % s) of channel i, shifted by (ky / s, kx / s), so every convolution becomes a
 * stride-1 sum over shifted planes. Each channel's weights are split into blocks of block_taps
 * consecutive taps (see sq_convolve): sq_rows[channel * blocks + b] is the first weight of block b. */
static void sq_expand(const sq_compressed_layer *layer, int32_t out_channels, int32_t in_channels,
                      int32_t kernel, int32_t stride, int32_t plane_height, int32_t plane_width, int32_t blocks,
                      int32_t block_taps)
{
    /* A copy: the int32 stores below could otherwise alias the layer's fields, reloaded every entry. */
    const sq_compressed_layer copy = *layer;
    const int32_t taps = in_channels * kernel * kernel, slots = out_channels * blocks;
    int32_t i, ky, kx, entry, count = 0, position = -1, slot = 0, block_end = block_taps;
    for (i = 0; i < in_channels; i++)
        for (ky = 0; ky < kernel; ky++)
            for (kx = 0; kx < kernel; kx++) {
                const int32_t plane = (i * stride + ky % stride) * stride + kx % stride;
                sq_taps[(i * kernel + ky) * kernel + kx] =
                    plane * plane_height * plane_width + (ky / stride) * plane_width + kx / stride;
            }
    sq_rows[0] = 0;
    for (entry = 0; entry < copy.entries; entry++) {
        float value;
        position += sq_gap(&copy, entry) + 1;
        /* Past the end of a block: the next slot starts here. Relative indices run on across output
         * channels, so the end of a channel's last block wraps to the next channel's first. */
        while (position >= block_end) {
            sq_rows[++slot] = count;
            if (block_end == taps) {
                position -= taps;
                block_end = block_taps;
            } else {
                block_end = block_end + block_taps < taps ? block_end + block_taps : taps;
            }
        }
        value = copy.codebook[sq_code(&copy, entry)];
        if (value != 0.0f) {
            sq_values[count] = value;
            sq_offsets[count] = sq_taps[position];
            count++;
        }
    }
    while (slot < slots)
        sq_rows[++slot] = count;
}

/* Zero-pad the input and split it into stride x stride phase planes (see sq_expand). Per plane row,
 * the columns that fall in the padding are zeroed and the others copied, without a test per pixel. */
static void sq_prepare(const float *input, int32_t channels, int32_t height, int32_t width, int32_t padding,
                       int32_t stride, int32_t plane_height, int32_t plane_width, float *prepared)
{
    int32_t c, a, b, u, v;
    for (c = 0; c < channels; c++)
        for (a = 0; a < stride; a++)
            for (b = 0; b < stride; b++) {
                float *plane = prepared + ((c * stride + a) * stride + b) * plane_height * plane_width;
                /* Plane column v reads input column v * stride + b - padding: inside for v in [left, right). */
                int32_t left = 0, right;
                while (left < plane_width && left * stride + b < padding)
                    left++;
                right = left;
                while (right < plane_width && right * stride + b - padding < width)
                    right++;
                for (u = 0; u < plane_height; u++) {
                    const int32_t y = u * stride + a - padding;
                    float *row = plane + u * plane_width;
                    const float *source;
                    if (y < 0 || y >= height) {
                        for (v = 0; v < plane_width; v++)
                            row[v] = 0.0f;
                        continue;
                    }
                    source = input + (c * height + y) * width + left * stride + b - padding;
                    for (v = 0; v < left; v++)
                        row[v] = 0.0f;
                    for (; v < right; v++)
                        row[v] = source[(v - left) * stride];
                    for (; v < plane_width; v++)
                        row[v] = 0.0f;
                }
            }
}

/* A tile is a run of consecutive output pixels of one channel, summed in named accumulators (so that
 * -O2 keeps them in registers) and stored once. With GCC or Clang on a SIMD target each accumulator
 * is a vector of their portable vector extension (4 floats with the default SSE2 or NEON, 8 with
 * AVX, 16 with AVX-512 when -march allows); elsewhere (a Cortex-M7, any other C99 compiler) it is
 * one float. Per weight the inner loop is one broadcast, then a load, multiply and add per
 * accumulator, the least SSE2's two-operand instructions allow: with twelve accumulators and two
 * weights a turn, the broadcast, the offset load and the loop test are about 5 instructions of 41
 * per weight (8 of 32 with eight and one), and the 16 SSE2 registers still hold both weights and a
 * product. Tiles may read up to SQ_NARROW floats past a plane's last pixel: every input buffer has
 * SQUEEZENET_TILE_SLACK floats of slack, and those sums are dropped. */
#if defined(__GNUC__) && defined(__AVX512F__)
#define SQ_LANES 16
#elif defined(__GNUC__) && defined(__AVX__)
#define SQ_LANES 8
#elif defined(__GNUC__) && (defined(__SSE2__) || defined(__ARM_NEON))
#define SQ_LANES 4
#else
#define SQ_LANES 1
#endif
#define SQ_WIDE (12 * SQ_LANES)  /* sq_tile_wide */
#define SQ_NARROW (4 * SQ_LANES) /* sq_tile_narrow, for the end of a plane */

#if SQ_LANES > 1
typedef float sq_vector __attribute__((vector_size(4 * SQ_LANES)));
typedef int32_t sq_mask __attribute__((vector_size(4 * SQ_LANES)));
/* max(x, 0) without a branch: the comparison gives all-ones lanes where x > 0. */
#define SQ_RELU(x) ((x) = (sq_vector)((sq_mask)((x) > (sq_vector){0.0f}) & (sq_mask)(x)))
/* Unaligned vector load and store (memcpy of a constant size compiles to one instruction). */
#define SQ_LOAD(target, source) memcpy(&(target), (source), sizeof(sq_vector))
#define SQ_STORE(target, source) memcpy((target), &(source), sizeof(sq_vector))
#else
typedef float sq_vector;
#define SQ_RELU(x) ((x) = (x) > 0.0f ? (x) : 0.0f)
/* Plain assignments: a freestanding build (the firmware) may not expand memcpy inline. */
#define SQ_LOAD(target, source) ((target) = *(source))
#define SQ_STORE(target, source) (*(target) = (source))
#endif

/* Per accumulator k: start at the bias; add value * the SQ_LANES floats at source; store, after
 * ReLU when asked. */
#define SQ_START(k) sq_vector s##k = start;
#define SQ_RESUME(k) SQ_LOAD(s##k, target + (k) * SQ_LANES);
#define SQ_MULTIPLY_ADD(k)                             \
    {                                                  \
        sq_vector loaded;                              \
        SQ_LOAD(loaded, source + (k) * SQ_LANES);      \
        s##k += value * loaded;                        \
    }
#define SQ_FINISH(k)                                   \
    {                                                  \
        if (relu)                                      \
            SQ_RELU(s##k);                             \
        SQ_STORE(target + (k) * SQ_LANES, s##k);       \
    }
#define SQ_EACH_4(STEP) STEP(0) STEP(1) STEP(2) STEP(3)
#define SQ_EACH_12(STEP) SQ_EACH_4(STEP) STEP(4) STEP(5) STEP(6) STEP(7) STEP(8) STEP(9) STEP(10) STEP(11)

/* target[0..SQ_WIDE) = bias + sum over j < count of values[j] * input[offsets[j] + 0..SQ_WIDE); with
 * resume, target's own values replace the bias (the sums of the blocks before). */
static inline void sq_tile_wide(const float *restrict input, const float *restrict values,
                                const int32_t *restrict offsets, int32_t count, float bias, int32_t resume,
                                int32_t relu, float *restrict target)
{
    const sq_vector start = (sq_vector){0.0f} + bias;
    int32_t j;
    SQ_EACH_12(SQ_START)
    if (resume) {
        SQ_EACH_12(SQ_RESUME)
    }
    for (j = 0; j + 1 < count; j += 2) { /* two weights a turn: the loop test costs half as much */
        {
            const float value = values[j];
            const float *source = input + offsets[j];
            SQ_EACH_12(SQ_MULTIPLY_ADD)
        }
        {
            const float value = values[j + 1];
            const float *source = input + offsets[j + 1];
            SQ_EACH_12(SQ_MULTIPLY_ADD)
        }
    }
    if (j < count) {
        const float value = values[j];
        const float *source = input + offsets[j];
        SQ_EACH_12(SQ_MULTIPLY_ADD)
    }
    SQ_EACH_12(SQ_FINISH)
}

/* The same over SQ_NARROW pixels: the last ones of a plane, where a wide tile would mostly be dropped. */
static inline void sq_tile_narrow(const float *restrict input, const float *restrict values,
                                  const int32_t *restrict offsets, int32_t count, float bias, int32_t resume,
                                  int32_t relu, float *restrict target)
{
    const sq_vector start = (sq_vector){0.0f} + bias;
    int32_t j;
    SQ_EACH_4(SQ_START)
    if (resume) {
        SQ_EACH_4(SQ_RESUME)
    }
    for (j = 0; j < count; j++) {
        const float value = values[j];
        const float *source = input + offsets[j];
        SQ_EACH_4(SQ_MULTIPLY_ADD)
    }
    SQ_EACH_4(SQ_FINISH)
}

/* Copies (or, for a bypass, adds) the length sums of a tile that starts at flat position start into
 * the output, one row segment at a time; columns past out_width are dropped. */
static void sq_scatter(const float *sums, int32_t length, int32_t start, int32_t plane_width, int32_t out_width,
                       int32_t mode, float *out)
{
    int32_t t = 0, i, y = start / plane_width, x = start % plane_width;
    while (t < length) {
        const int32_t run = length - t < plane_width - x ? length - t : plane_width - x;
        const int32_t keep = x >= out_width ? 0 : (run < out_width - x ? run : out_width - x);
        float *target = out + y * out_width + x;
        if (mode == SQ_ACCUMULATE)
            for (i = 0; i < keep; i++)
                target[i] += sums[t + i];
        else
            memcpy(target, sums + t, (size_t)keep * sizeof(float));
        t += run;
        x = 0;
        y++;
    }
}

/* Output pixel (y, x) is the sum over the channel's weights of value * plane[offset + y * plane_width + x].
 * Walking y * plane_width + x as one flat range (the columns past out_width are computed and
 * dropped) gives long contiguous runs. Tiles are the outer loop and output channels the inner one,
 * so the input a tile reads stays in cache while every channel uses it. When the output rows are as
 * wide as the planes (1x1 layers) a whole tile is a run of the output and is stored there directly;
 * otherwise it goes through sums. A direct tile also runs block by block (blocks > 1: the weights
 * of a few input channels at a time, for every output channel, resuming from the sums stored by
 * the block before), so the slice of input it reads fits the L1 cache however many input channels
 * there are; each sum still adds its products in the same order. */
static void sq_convolve(const float *input, const float *bias, int32_t out_channels, int32_t out_height,
                        int32_t out_width, int32_t plane_width, int32_t mode, int32_t blocks, float *output)
{
    const int32_t span = (out_height - 1) * plane_width + out_width;
    const int32_t plane = out_height * out_width;
    const int32_t relu = mode == SQ_STORE_RELU;
    const int32_t in_place = relu && plane_width == out_width;
    int32_t start, width, block, channel;
    float sums[SQ_WIDE];
    for (start = 0; start < span; start += width) {
        width = span - start >= SQ_WIDE ? SQ_WIDE : SQ_NARROW;
        const int32_t direct = in_place && span - start >= width;
        const int32_t passes = direct ? blocks : 1; /* through sums: all blocks in one pass */
        for (block = 0; block < passes; block++) {
            const int32_t last = block == passes - 1;
            for (channel = 0; channel < out_channels; channel++) {
                const int32_t first = sq_rows[channel * blocks + block];
                const int32_t count = sq_rows[channel * blocks + (direct ? block + 1 : blocks)] - first;
                float *out = output + channel * plane;
                float *target = direct ? out + start : sums;
                if (width == SQ_WIDE)
                    sq_tile_wide(input + start, sq_values + first, sq_offsets + first, count, bias[channel], block > 0,
                                 relu && last, target);
                else
                    sq_tile_narrow(input + start, sq_values + first, sq_offsets + first, count, bias[channel],
                                   block > 0, relu && last, target);
                if (!direct)
                    sq_scatter(sums, span - start < width ? span - start : width, start, plane_width, out_width, mode,
                               out);
            }
        }
    }
}
