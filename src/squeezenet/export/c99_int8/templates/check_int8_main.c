/* Bit-identity harness for an int8 export (squeezenet.export.c99_int8.check), not part of the export:
 * reads raw int8 images from argv[1], writes each image's int32 sums then its top-1 class (int32)
 * to argv[2]. */
#include <stdio.h>

#include "model.h"

static int8_t image[SQUEEZENET_INPUT_FLOATS];
static int32_t sums[SQUEEZENET_NUM_CLASSES + 1];

int main(int argc, char **argv)
{
    FILE *in, *out;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == NULL)
        return 2;
    if ((out = fopen(argv[2], "wb")) == NULL) {
        fclose(in);
        return 2;
    }
    while (fread(image, 1, SQUEEZENET_INPUT_FLOATS, in) == SQUEEZENET_INPUT_FLOATS) {
        sums[SQUEEZENET_NUM_CLASSES] = squeezenet_predict_int8(image, sums);
        if (sums[SQUEEZENET_NUM_CLASSES] < 0 ||
            fwrite(sums, sizeof(int32_t), SQUEEZENET_NUM_CLASSES + 1, out) != SQUEEZENET_NUM_CLASSES + 1)
            return 1;
    }
    fclose(in);
    return fclose(out) != 0;
}
