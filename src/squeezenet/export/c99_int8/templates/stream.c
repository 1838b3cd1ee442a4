/* ---- Entropy-coded symbol streams, decoded one symbol at a time (squeezenet.export.c99_int8.stream) ----
 * Canonical Huffman (the .sqz coder's bits, MSB first, codes of at most 15 bits): codes of one length
 * are consecutive numbers, so a code of length L is symbols[index + code - first] when code - first
 * is below that length's count (first: the length's first code, index: how many shorter codes there
 * are); the code is read from a 16-bit window, one length at a time. No lookup table in flash or RAM.
 * Static rANS (squeezenet.export.c99_int8.rans): 14-bit frequencies, a 32-bit state in [2^16, 2^32)
 * refilled by 16-bit words; the symbol is found by bisecting the cumulative frequencies. */

typedef struct {
    const uint8_t *bits;        /* the payload */
    const uint16_t *counts;     /* Huffman: [15] codes of length 1, 2, ..., 15; NULL for rANS */
    const uint8_t *symbols8;    /* Huffman: the present symbols in canonical order (by length, then */
    const uint16_t *symbols16;  /* value), 8-bit for an alphabet of at most 256, else 16-bit */
    const uint16_t *cumulative; /* rANS: [alphabet + 1] cumulative frequencies out of 2^14; NULL for Huffman */
    int32_t alphabet;           /* rANS only */
} sq_stream;

/* Where a decoder stands in its stream: a bit position (Huffman) or a byte position and the state (rANS). */
typedef struct {
    uint32_t position;
    uint32_t state;
} sq_stream_cursor;

static inline uint32_t sq_read16(const uint8_t *bytes, uint32_t position)
{
    return (uint32_t)bytes[position] | (uint32_t)bytes[position + 1] << 8;
}

static void sq_stream_start(const sq_stream *stream, sq_stream_cursor *cursor)
{
    cursor->position = 0;
    cursor->state = 0;
    if (stream->cumulative != NULL) {
        cursor->state = sq_read16(stream->bits, 0) | sq_read16(stream->bits, 2) << 16;
        cursor->position = 4;
    }
}

static int32_t sq_huffman_decode(const sq_stream *stream, sq_stream_cursor *cursor)
{
    /* The next 16 bits, MSB first (the payload carries two bytes of padding for the last code). */
    const uint8_t *bytes = stream->bits + (cursor->position >> 3);
    const uint32_t window = (((uint32_t)bytes[0] << 16 | (uint32_t)bytes[1] << 8 | bytes[2]) >>
                             (8 - (cursor->position & 7))) & 0xFFFFu;
    int32_t first = 0, index = 0, length, code, count;
    for (length = 1; length <= 15; length++) {
        count = stream->counts[length - 1];
        code = (int32_t)(window >> (16 - length));
        if (code - first < count) {
            cursor->position += (uint32_t)length;
            return stream->symbols8 != NULL ? stream->symbols8[index + code - first]
                                            : stream->symbols16[index + code - first];
        }
        index += count;
        first = (first + count) << 1;
    }
    return 0; /* no code is longer: the export writes only complete streams */
}

static int32_t sq_rans_decode(const sq_stream *stream, sq_stream_cursor *cursor)
{
    const uint32_t slot = cursor->state & 0x3FFFu;
    int32_t low = 0, high = stream->alphabet;
    /* The last symbol whose cumulative frequency is <= slot: an absent symbol (no frequency) never is. */
    while (high - low > 1) {
        const int32_t middle = (low + high) >> 1;
        if (stream->cumulative[middle] <= slot)
            low = middle;
        else
            high = middle;
    }
    cursor->state = (uint32_t)(stream->cumulative[low + 1] - stream->cumulative[low]) * (cursor->state >> 14) + slot -
                    stream->cumulative[low];
    while (cursor->state < 0x10000u) {
        cursor->state = cursor->state << 16 | sq_read16(stream->bits, cursor->position);
        cursor->position += 2;
    }
    return low;
}

static inline int32_t sq_stream_decode(const sq_stream *stream, sq_stream_cursor *cursor)
{
    return stream->cumulative != NULL ? sq_rans_decode(stream, cursor) : sq_huffman_decode(stream, cursor);
}
