/* Block hook for unicorn (squeezenet.export.mcu.emulator), built for the host: counts how often each
 * translated block runs, by its start address in flash. It is C because a Python callback per block
 * costs far more than emulating the block; the instructions per block are decoded once, in Python. */
#include <stdint.h>

struct block_counter {
    uint64_t flash_origin;
    uint64_t halfwords;   /* entries of hits and sizes: one per halfword of flash */
    uint64_t *hits;
    uint32_t *sizes;      /* the block's length in bytes, as unicorn reports it */
    uint64_t outside;     /* blocks that started outside flash: none is expected */
};

void squeezenet_count_block(void *engine, uint64_t address, uint32_t size, void *user)
{
    struct block_counter *counter = user;
    const uint64_t index = (address - counter->flash_origin) >> 1;
    (void)engine;
    if (address < counter->flash_origin || index >= counter->halfwords) {
        counter->outside++;
        return;
    }
    counter->hits[index]++;
    counter->sizes[index] = size;
}
