/* ---- Bypass addition, TFLite's int8 ADD (squeezenet.int8.quantize.AddQuantization) ----
 * Both inputs are centred, lifted by 2^SQ_ADD_LEFT_SHIFT and rescaled to a common scale, summed,
 * then rescaled to the output scale. */
#define SQ_ADD_LEFT_SHIFT 20

typedef struct {
    int32_t first_zero_point, second_zero_point, output_zero_point;
    int32_t first_multiplier, first_shift;
    int32_t second_multiplier, second_shift;
    int32_t output_multiplier, output_shift;
} sq_addition;

static inline int8_t sq_add_one(int32_t first, int32_t second, const sq_addition *plan)
{
    const int32_t a = sq_rescale((first - plan->first_zero_point) * (1 << SQ_ADD_LEFT_SHIFT),
                                 plan->first_multiplier, plan->first_shift);
    const int32_t b = sq_rescale((second - plan->second_zero_point) * (1 << SQ_ADD_LEFT_SHIFT),
                                 plan->second_multiplier, plan->second_shift);
    return sq_saturate_int8(sq_rescale(a + b, plan->output_multiplier, plan->output_shift) + plan->output_zero_point,
                            -128);
}
