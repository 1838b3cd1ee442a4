/* The float engine's step (squeezenet.export.c99.check): raw float32 images in, raw float32 logits out. */
static float image[SQUEEZENET_INPUT_FLOATS];
static float logits[SQUEEZENET_NUM_CLASSES];

static int predict_and_write(FILE *out)
{
    return squeezenet_predict(image, logits) == 0 &&
           fwrite(logits, sizeof(float), SQUEEZENET_NUM_CLASSES, out) == SQUEEZENET_NUM_CLASSES;
}
