/* $banner
 *
 * Bare-metal harness for one exported engine (squeezenet.export.mcu): a vector table, a reset
 * handler that prepares the C environment, one call of squeezenet_predict, then a breakpoint. The
 * input image and the logits are fixed buffers in RAM; the host finds them in the ELF symbol table,
 * writes the image before reset and reads the logits after the breakpoint. */

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

__attribute__((section(".noinit"), aligned(8))) float squeezenet_mcu_input[SQUEEZENET_INPUT_FLOATS];
__attribute__((section(".noinit"), aligned(8))) float squeezenet_mcu_logits[SQUEEZENET_NUM_CLASSES];
/* squeezenet_predict's return value, then 1 when the reset handler finished. */
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
    squeezenet_mcu_status = squeezenet_predict(squeezenet_mcu_input, squeezenet_mcu_logits);
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
