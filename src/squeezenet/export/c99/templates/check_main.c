/* Parity harness for an exported model (squeezenet.export.c99.check), not part of the export:
 * reads raw float32 images from argv[1], writes raw float32 logits to argv[2]. */
#include <stdio.h>

#include "model.h"

static float image[SQUEEZENET_INPUT_FLOATS];
static float logits[SQUEEZENET_NUM_CLASSES];

int main(int argc, char **argv)
{
    FILE *in, *out;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == NULL)
        return 2;
    if ((out = fopen(argv[2], "wb")) == NULL) {
        fclose(in);
        return 2;
    }
    while (fread(image, sizeof(float), SQUEEZENET_INPUT_FLOATS, in) == SQUEEZENET_INPUT_FLOATS) {
        if (squeezenet_predict(image, logits) != 0 ||
            fwrite(logits, sizeof(float), SQUEEZENET_NUM_CLASSES, out) != SQUEEZENET_NUM_CLASSES)
            return 1;
    }
    fclose(in);
    return fclose(out) != 0;
}
