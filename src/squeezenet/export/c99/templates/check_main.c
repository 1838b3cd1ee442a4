/* Parity harness for an exported model (squeezenet.export.c99.check), not part of the export: main
 * reads the raw images of argv[1] into image, one after the other, and predict_and_write() writes
 * each one's outputs to argv[2]. Exit status 2: a file does not open; 1: an inference or a write failed. */
#include <stdio.h>

#include "model.h"

$image_step
int main(int argc, char **argv)
{
    FILE *in, *out;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == NULL)
        return 2;
    if ((out = fopen(argv[2], "wb")) == NULL) {
        fclose(in);
        return 2;
    }
    while (fread(image, sizeof(image[0]), SQUEEZENET_INPUT_FLOATS, in) == SQUEEZENET_INPUT_FLOATS) {
        if (!predict_and_write(out))
            return 1;
    }
    fclose(in);
    return fclose(out) != 0;
}
