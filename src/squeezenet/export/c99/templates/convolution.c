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
 * stride-1 sum over shifted planes. */
static void sq_expand(const sq_compressed_layer *layer, int32_t out_channels, int32_t in_channels,
                      int32_t kernel, int32_t stride, int32_t plane_height, int32_t plane_width)
{
    const int32_t taps = in_channels * kernel * kernel;
    int32_t i, ky, kx, entry, count = 0, channel = 0, position = -1;
    for (i = 0; i < in_channels; i++)
        for (ky = 0; ky < kernel; ky++)
            for (kx = 0; kx < kernel; kx++) {
                const int32_t plane = (i * stride + ky % stride) * stride + kx % stride;
                sq_taps[(i * kernel + ky) * kernel + kx] =
                    plane * plane_height * plane_width + (ky / stride) * plane_width + kx / stride;
            }
    sq_rows[0] = 0;
    for (entry = 0; entry < layer->entries; entry++) {
        float value;
        position += sq_gap(layer, entry) + 1;
        while (position >= taps) { /* relative indices run on across output channels */
            position -= taps;
            sq_rows[++channel] = count;
        }
        value = layer->codebook[sq_code(layer, entry)];
        if (value != 0.0f) {
            sq_values[count] = value;
            sq_offsets[count] = sq_taps[position];
            count++;
        }
    }
    while (channel < out_channels)
        sq_rows[++channel] = count;
}

/* Zero-pad the input and split it into stride x stride phase planes (see sq_expand). */
static void sq_prepare(const float *input, int32_t channels, int32_t height, int32_t width, int32_t padding,
                       int32_t stride, int32_t plane_height, int32_t plane_width, float *prepared)
{
    int32_t c, a, b, u, v;
    for (c = 0; c < channels; c++)
        for (a = 0; a < stride; a++)
            for (b = 0; b < stride; b++) {
                float *plane = prepared + ((c * stride + a) * stride + b) * plane_height * plane_width;
                for (u = 0; u < plane_height; u++) {
                    const int32_t y = u * stride + a - padding;
                    for (v = 0; v < plane_width; v++) {
                        const int32_t x = v * stride + b - padding;
                        const int inside = y >= 0 && y < height && x >= 0 && x < width;
                        plane[u * plane_width + v] = inside ? input[(c * height + y) * width + x] : 0.0f;
                    }
                }
            }
}

/* Adds value * source[0..SQ_TILE) into sums for every weight of one output channel. With GCC or
 * Clang the sums are kept in eight vector registers (their portable vector extension: 4 floats
 * wide with the default SSE2, 8 with AVX, 16 with AVX-512 when -march allows); any other C99
 * compiler gets the plain loop. Tiles may read up to SQ_TILE floats past a plane's last pixel:
 * every input buffer has SQUEEZENET_TILE_SLACK floats of slack, and those sums are dropped. */
#if defined(__GNUC__) && defined(__AVX512F__)
#define SQ_LANES 16
#elif defined(__GNUC__) && defined(__AVX__)
#define SQ_LANES 8
#else
#define SQ_LANES 4
#endif
#define SQ_TILE (8 * SQ_LANES)

#if defined(__GNUC__)
typedef float sq_vector __attribute__((vector_size(4 * SQ_LANES)));
typedef int32_t sq_mask __attribute__((vector_size(4 * SQ_LANES)));

/* max(x, 0) without a branch: the comparison gives all-ones lanes where x > 0. */
#define SQ_RELU(x) ((x) = (sq_vector)((sq_mask)((x) > zero) & (sq_mask)(x)))

#define SQ_LOAD(target, source) memcpy(&(target), (source), sizeof(sq_vector)) /* unaligned load */
#define SQ_STORE(target, source) memcpy((target), &(source), sizeof(sq_vector))
/* sum += value * the SQ_LANES floats at source. */
#define SQ_MULTIPLY_ADD(sum, value, source) \
    do {                                    \
        sq_vector loaded;                   \
        SQ_LOAD(loaded, (source));          \
        (sum) += (value) * loaded;          \
    } while (0)

static inline void sq_accumulate_tile(const float *input, int32_t first, int32_t last, int32_t start, int32_t relu,
                                      float *sums)
{
    /* Eight named accumulators rather than an array, so that -O2 keeps them in registers. */
    const sq_vector zero = {0.0f};
    sq_vector s0, s1, s2, s3, s4, s5, s6, s7;
    int32_t j;
    SQ_LOAD(s0, sums);
    SQ_LOAD(s1, sums + SQ_LANES);
    SQ_LOAD(s2, sums + 2 * SQ_LANES);
    SQ_LOAD(s3, sums + 3 * SQ_LANES);
    SQ_LOAD(s4, sums + 4 * SQ_LANES);
    SQ_LOAD(s5, sums + 5 * SQ_LANES);
    SQ_LOAD(s6, sums + 6 * SQ_LANES);
    SQ_LOAD(s7, sums + 7 * SQ_LANES);
    for (j = first; j < last; j++) {
        const float value = sq_values[j];
        const float *source = input + sq_offsets[j] + start;
        SQ_MULTIPLY_ADD(s0, value, source);
        SQ_MULTIPLY_ADD(s1, value, source + SQ_LANES);
        SQ_MULTIPLY_ADD(s2, value, source + 2 * SQ_LANES);
        SQ_MULTIPLY_ADD(s3, value, source + 3 * SQ_LANES);
        SQ_MULTIPLY_ADD(s4, value, source + 4 * SQ_LANES);
        SQ_MULTIPLY_ADD(s5, value, source + 5 * SQ_LANES);
        SQ_MULTIPLY_ADD(s6, value, source + 6 * SQ_LANES);
        SQ_MULTIPLY_ADD(s7, value, source + 7 * SQ_LANES);
    }
    if (relu) {
        SQ_RELU(s0);
        SQ_RELU(s1);
        SQ_RELU(s2);
        SQ_RELU(s3);
        SQ_RELU(s4);
        SQ_RELU(s5);
        SQ_RELU(s6);
        SQ_RELU(s7);
    }
    SQ_STORE(sums, s0);
    SQ_STORE(sums + SQ_LANES, s1);
    SQ_STORE(sums + 2 * SQ_LANES, s2);
    SQ_STORE(sums + 3 * SQ_LANES, s3);
    SQ_STORE(sums + 4 * SQ_LANES, s4);
    SQ_STORE(sums + 5 * SQ_LANES, s5);
    SQ_STORE(sums + 6 * SQ_LANES, s6);
    SQ_STORE(sums + 7 * SQ_LANES, s7);
}
#else
static inline void sq_accumulate_tile(const float *input, int32_t first, int32_t last, int32_t start, int32_t relu,
                                      float *sums)
{
    int32_t j, t;
    for (j = first; j < last; j++) {
        const float value = sq_values[j];
        const float *source = input + sq_offsets[j] + start;
        for (t = 0; t < SQ_TILE; t++)
            sums[t] += value * source[t];
    }
    for (t = 0; relu && t < SQ_TILE; t++)
        sums[t] = sums[t] > 0.0f ? sums[t] : 0.0f;
}
#endif

/* Output pixel (y, x) is the sum over the channel's weights of value * plane[offset + y * plane_width + x].
 * Walking y * plane_width + x as one flat range (the columns past out_width are computed and
 * dropped) gives long contiguous runs; a tile of SQ_TILE sums stays in registers. Tiles are the
 * outer loop and output channels the inner one, so the few input rows a tile reads stay in cache
 * while every channel uses them. */
static void sq_convolve(const float *input, const float *bias, int32_t out_channels, int32_t out_height,
                        int32_t out_width, int32_t plane_width, int32_t mode, float *output)
{
    const int32_t span = (out_height - 1) * plane_width + out_width;
    const int32_t plane = out_height * out_width;
    int32_t start, channel;
    for (start = 0; start < span; start += SQ_TILE) {
        const int32_t length = span - start < SQ_TILE ? span - start : SQ_TILE;
        for (channel = 0; channel < out_channels; channel++) {
            float sums[SQ_TILE];
            float *out = output + channel * plane;
            int32_t t = 0, i, y = start / plane_width, x = start % plane_width;
            for (i = 0; i < SQ_TILE; i++)
                sums[i] = bias[channel];
            sq_accumulate_tile(input, sq_rows[channel], sq_rows[channel + 1], start, mode == SQ_STORE_RELU, sums);
            while (t < length) { /* one row segment at a time; columns past out_width are dropped */
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
    }
}
