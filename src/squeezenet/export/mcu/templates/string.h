/* The two functions of <string.h> the generated engine calls; harness.c defines them, because a
 * freestanding build has no C library. */
#ifndef SQUEEZENET_MCU_STRING_H
#define SQUEEZENET_MCU_STRING_H

#include <stddef.h>

void *memcpy(void *restrict destination, const void *restrict source, size_t count);
void *memset(void *destination, int value, size_t count);

#endif
