/* $banner
 *
 * Bare-metal harness for one exported engine (squeezenet.export.mcu): a vector table, a reset
 * handler that prepares the C environment, one inference, then a breakpoint.
 *
 * Float engine: squeezenet_predict on fixed input and logits buffers in RAM; the host finds them in
 * the ELF symbol table, writes the image before reset and reads the logits after the breakpoint.
 *
 * int8 engine (model.h defines SQUEEZENET_INT8): no input buffer of its own, because a float copy of
 * an ImageNet image (619 KB) is more than a 512 KiB part has. The image goes straight into the slot
 * the engine reads (squeezenet_input_buffer, inside its arena) as a camera's DMA would put it there;
 * the reset handler publishes that address in squeezenet_mcu_input_slot, and the host writes the int8
 * image there when run_inference starts (after startup, which zeroes the arena with the rest of
 * .bss), then reads the int32 sums of squeezenet_predict_in_place. */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model.h"

/* The linker script defines these: section bounds in RAM and flash. */
extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_limit[], __stack_top[];

/* Unused stack is painted with this word so the host can find the deepest stack use. */
#define STACK_PAINT ${stack_paint}u

/* Architectural address of the Coprocessor Access Control Register (ARMv7-M B3.2.20). */
#define CPACR (*(volatile uint32_t *)0xE000ED88u)

#ifdef SQUEEZENET_INT8
__attribute__((section(".noinit"), aligned(8))) int32_t squeezenet_mcu_sums[SQUEEZENET_NUM_CLASSES];
int8_t *volatile squeezenet_mcu_input_slot;
#else
__attribute__((section(".noinit"), aligned(8))) float squeezenet_mcu_input[SQUEEZENET_INPUT_FLOATS];
__attribute__((section(".noinit"), aligned(8))) float squeezenet_mcu_logits[SQUEEZENET_NUM_CLASSES];
#endif
/* The inference's return value (0, or the top-1 class for the int8 engine), then 1 when the reset
 * handler finished. */
volatile int32_t squeezenet_mcu_status = -2;
volatile int32_t squeezenet_mcu_done;

/* harness.c is compiled with -fno-builtin, so these loops stay loops instead of becoming calls to
 * themselves. The engine copies rows of floats: whole aligned words are the common case. */
void *memcpy(void *restrict destination, const void *restrict source, size_t count)
{
    unsigned char *to = destination;
    const unsigned char *from = source;
    if ((((uintptr_t)to | (uintptr_t)from) & 3u) == 0)
        for (; count >= 4; count -= 4, to += 4, from += 4)
            *(uint32_t *)to = *(const uint32_t *)from;
    while (count--)
        *to++ = *from++;
    return destination;
}

void *memset(void *destination, int value, size_t count)
{
    unsigned char *to = destination;
    while (count--)
        *to++ = (unsigned char)value;
    return destination;
}

void squeezenet_mcu_reset(void);

/* Runs after the C environment exists; kept out of line so that its float code cannot be moved
 * before the FPU is switched on. */
__attribute__((noinline)) static void run_inference(void)
{
#ifdef SQUEEZENET_INT8
    squeezenet_mcu_status = squeezenet_predict_in_place(squeezenet_mcu_sums);
#else
    squeezenet_mcu_status = squeezenet_predict(squeezenet_mcu_input, squeezenet_mcu_logits);
#endif
}

/* Paint from the stack limit up to just below the current frame: the words above are in use. */
__attribute__((noinline)) static void paint_stack(void)
{
    uint32_t *word = __stack_limit;
    uint32_t *frame = (uint32_t *)__builtin_frame_address(0) - 64;
    while (word < frame)
        *(volatile uint32_t *)word++ = STACK_PAINT;
}

__attribute__((noreturn)) void squeezenet_mcu_reset(void)
{
    /* CP10 and CP11 full access: any float instruction before this faults (NOCP usage fault). */
    CPACR |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");

    for (uint32_t *to = __data_start, *from = __data_load; to < __data_end;)
        *(volatile uint32_t *)to++ = *from++;
    for (uint32_t *to = __bss_start; to < __bss_end;)
        *(volatile uint32_t *)to++ = 0;
    paint_stack();

#ifdef SQUEEZENET_INT8
    squeezenet_mcu_input_slot = squeezenet_input_buffer();
#endif
    run_inference();
    squeezenet_mcu_done = 1;
    for (;;)
        __asm__ volatile("bkpt #0");
}

/* Only the two entries a reset needs: the initial stack pointer and the reset handler. */
__attribute__((section(".vectors"), used)) static const void *const vector_table[2] = {
    __stack_top,
    (const void *)squeezenet_mcu_reset,
};
