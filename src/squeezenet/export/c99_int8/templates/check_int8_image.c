/* The int8 engine's step for bit-identity checks (squeezenet.export.c99_int8.check): raw int8 images
 * in; out, per image, its int32 sums then its top-1 class (int32). */
static int8_t image[SQUEEZENET_INPUT_FLOATS];
static int32_t sums[SQUEEZENET_NUM_CLASSES + 1];

static int predict_and_write(FILE *out)
{
    sums[SQUEEZENET_NUM_CLASSES] = squeezenet_predict_int8(image, sums);
    return sums[SQUEEZENET_NUM_CLASSES] >= 0 &&
           fwrite(sums, sizeof(int32_t), SQUEEZENET_NUM_CLASSES + 1, out) == SQUEEZENET_NUM_CLASSES + 1;
}
