/* classify_ppm: an exported SqueezeNet on one photo, end to end, in C99 with the standard library.
 *
 *   gcc -std=c99 -O2 -Wall -Werror model.c classify_ppm.c -lm -o classify && ./classify photo.ppm
 *
 * Reads a binary PPM (P6, 8-bit) of any size, preprocesses it as the model was trained
 * (classify_ppm_config.h, written by the export, names the preset: resize, centre crop, channel
 * order, mean and std, the same steps as squeezenet.data.preprocess), runs squeezenet_predict and
 * prints the five best class indices with their scores (logits), best first.
 *
 * The resize is Pillow's bilinear filter, which torchvision applies to photos: a triangle filter
 * widened by the scale factor when shrinking (antialiasing), the horizontal pass first, each pass
 * rounded to 8 bits. Pillow computes in fixed point and this file in float, so a pixel may differ
 * by one level of 255.
 *
 * Unlike model.c this host-side example allocates (the photo's size is only known at run time)
 * and prints. Exit status: 0, 1 for an unreadable photo, 2 for a usage error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "classify_ppm_config.h"
#include "model.h"

#define TOP_COUNT 5
/* A photo larger than this is refused rather than allocated (64 megapixels). */
#define MAX_PIXELS (1L << 26)

typedef struct {
    int width, height;
    unsigned char *pixels; /* RGB, row by row */
} Photo;

static float input[SQUEEZENET_INPUT_FLOATS];
static float logits[SQUEEZENET_NUM_CLASSES];

/* The next header number of a PPM, skipping white space and '#' comments; -1 when there is none. */
static long read_header_number(FILE *file)
{
    long value = 0;
    int c = fgetc(file), digits = 0;
    while (c == '#' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        if (c == '#')
            while (c != '\n' && c != EOF)
                c = fgetc(file);
        c = fgetc(file);
    }
    while (c >= '0' && c <= '9' && value < 100000000L) {
        value = value * 10 + (c - '0');
        digits++;
        c = fgetc(file);
    }
    /* One white-space character ends the number; after maxval it is the last header byte. */
    return digits > 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r') ? value : -1;
}

static int read_ppm(const char *path, Photo *photo)
{
    FILE *file = fopen(path, "rb");
    long width, height, maxval;
    size_t bytes;
    if (file == NULL) {
        fprintf(stderr, "%s: cannot open\n", path);
        return -1;
    }
    if (fgetc(file) != 'P' || fgetc(file) != '6') {
        fprintf(stderr, "%s: not a binary PPM (P6) file\n", path);
        fclose(file);
        return -1;
    }
    width = read_header_number(file);
    height = read_header_number(file);
    maxval = read_header_number(file);
    if (width < 1 || height < 1 || width * height > MAX_PIXELS || maxval != 255) {
        fprintf(stderr, "%s: needs an 8-bit P6 header with a size of 1 to %ld pixels\n", path, MAX_PIXELS);
        fclose(file);
        return -1;
    }
    bytes = (size_t)width * (size_t)height * 3;
    photo->width = (int)width;
    photo->height = (int)height;
    photo->pixels = malloc(bytes);
    if (photo->pixels == NULL || fread(photo->pixels, 1, bytes, file) != bytes) {
        fprintf(stderr, "%s: truncated or too large\n", path);
        free(photo->pixels);
        fclose(file);
        return -1;
    }
    fclose(file);
    return 0;
}

static double triangle(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static unsigned char to_byte(double value)
{
    value = floor(value + 0.5);
    return (unsigned char)(value < 0.0 ? 0.0 : value > 255.0 ? 255.0 : value);
}

/* One pass of Pillow's bilinear resample along one axis: `count` lines of `in_size` samples (3
 * channels each); consecutive samples are `in_stride` bytes apart, consecutive lines `in_line`. */
static int resample_axis(const unsigned char *in, unsigned char *out, int in_size, int out_size, int count,
                         long in_stride, long in_line, long out_stride, long out_line)
{
    double scale = (double)in_size / out_size;
    double filter_scale = scale < 1.0 ? 1.0 : scale;
    double support = filter_scale; /* the triangle's support is 1, widened when shrinking */
    double *weights = malloc(sizeof(double) * (2 * (size_t)ceil(support) + 2));
    int o, line, channel, k;
    if (weights == NULL)
        return -1;
    for (o = 0; o < out_size; o++) {
        double centre = (o + 0.5) * scale, total = 0.0;
        int first = (int)(centre - support + 0.5), last = (int)(centre + support + 0.5);
        if (first < 0)
            first = 0;
        if (last > in_size)
            last = in_size;
        for (k = first; k < last; k++)
            total += weights[k - first] = triangle((k - centre + 0.5) / filter_scale);
        for (line = 0; line < count; line++)
            for (channel = 0; channel < 3; channel++) {
                double sum = 0.0;
                for (k = first; k < last; k++)
                    sum += weights[k - first] * in[line * in_line + k * in_stride + channel];
                out[line * out_line + o * out_stride + channel] = to_byte(total > 0.0 ? sum / total : 0.0);
            }
    }
    free(weights);
    return 0;
}

/* Pillow's Image.resize(BILINEAR): horizontal pass, then vertical; an unchanged axis is copied. */
static unsigned char *resize(const Photo *photo, int width, int height)
{
    unsigned char *wide = malloc((size_t)width * photo->height * 3);
    unsigned char *out = malloc((size_t)width * height * 3);
    if (wide == NULL || out == NULL) {
        free(wide);
        free(out);
        return NULL;
    }
    if (resample_axis(photo->pixels, wide, photo->width, width, photo->height, 3, 3L * photo->width, 3, 3L * width) != 0 ||
        resample_axis(wide, out, photo->height, height, width, 3L * width, 3, 3L * width, 3) != 0) {
        free(out);
        out = NULL;
    }
    free(wide);
    return out;
}

/* Resize and centre crop as the preset says, then scale, reorder and normalise into `input`. */
static int preprocess(const Photo *photo)
{
    static const float mean[3] = CLASSIFY_MEAN, std[3] = CLASSIFY_STD;
    const int size = SQUEEZENET_INPUT_HEIGHT, side = CLASSIFY_RESIZE_SIDE;
    int width = side, height = side, top, left, row, column, channel;
    unsigned char *resized;
    if (!CLASSIFY_WARP) {
        /* torchvision's Resize(int): the short side becomes `side`, the long side is truncated. */
        if (photo->width <= photo->height)
            height = (int)((double)side * photo->height / photo->width);
        else
            width = (int)((double)side * photo->width / photo->height);
    }
    resized = resize(photo, width, height);
    if (resized == NULL)
        return -1;
    /* torchvision's CenterCrop rounds the offset half to even; rint does under the default rounding mode. */
    top = (int)rint((height - size) / 2.0);
    left = (int)rint((width - size) / 2.0);
    for (channel = 0; channel < 3; channel++) {
        int source = CLASSIFY_BGR ? 2 - channel : channel;
        for (row = 0; row < size; row++)
            for (column = 0; column < size; column++) {
                float value = resized[((long)(top + row) * width + left + column) * 3 + source] / 255.0f;
                input[((long)channel * size + row) * size + column] = (value * CLASSIFY_SCALE - mean[channel]) / std[channel];
            }
    }
    free(resized);
    return 0;
}

int main(int argc, char **argv)
{
    Photo photo = {0, 0, NULL};
    int best[TOP_COUNT], rank, k, found = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: %s photo.ppm   (binary P6, 8-bit; model preset: %s)\n", argv[0], CLASSIFY_PRESET);
        return 2;
    }
    if (read_ppm(argv[1], &photo) != 0)
        return 1;
    if (preprocess(&photo) != 0) {
        fprintf(stderr, "%s: out of memory while resizing\n", argv[1]);
        free(photo.pixels);
        return 1;
    }
    free(photo.pixels);
    if (squeezenet_predict(input, logits) != 0)
        return 1;
    for (rank = 0; rank < TOP_COUNT && rank < SQUEEZENET_NUM_CLASSES; rank++, found++) {
        int chosen = -1;
        for (k = 0; k < SQUEEZENET_NUM_CLASSES; k++) {
            int taken = 0, earlier;
            for (earlier = 0; earlier < rank; earlier++)
                taken |= best[earlier] == k;
            if (!taken && (chosen < 0 || logits[k] > logits[chosen]))
                chosen = k;
        }
        best[rank] = chosen;
    }
    for (rank = 0; rank < found; rank++)
        printf("%d %.6f\n", best[rank], logits[best[rank]]);
    return 0;
}
