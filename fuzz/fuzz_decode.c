/* libFuzzer harness: read_header and decode at every level (and, for layered
 * streams, at every layer of every level), on the input as given and again after
 * recomputing its CRCs (so that mutations reach the checks behind the
 * checksums).  Build and run: fuzz/run.sh. */
#include "progressive_j2k.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FUZZ_ELEMENTS ((uint64_t)1 << 22)

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }

static void reseal(uint8_t *buf, size_t len)
{
    if (len < 16 || memcmp(buf, "PJ2K", 4) != 0) return;
    const uint32_t hl = rd32(buf + 8);
    const int levels = buf[14], ndim = buf[12], naxes = buf[13];
    /* versions 2 and 3 state their layer count right after the axes */
    const size_t layers_at = 16 + 8 * (size_t)ndim + (size_t)naxes;
    const int layers = buf[4] >= 2 && layers_at < len ? buf[layers_at] : 1;
    const uint32_t pieces = (uint32_t)(levels + 1) * (uint32_t)(layers ? layers : 1);
    if (levels > PJ2K_MAX_LEVELS || hl > len || hl < 16 + 4 + 12 * pieces) return;
    const size_t table = hl - 4 - 12 * (size_t)pieces;
    uint64_t start = hl;
    for (uint32_t r = 0; r < pieces; r++) {
        const uint64_t end = rd64(buf + table + 12 * r);
        if (end < start || end > len) break;
        wr32(buf + table + 12 * r + 8, pj2k_crc32c(buf + start, (size_t)(end - start)));
        start = end;
    }
    wr32(buf + hl - 4, pj2k_crc32c(buf, hl - 4));
}

static const size_t ITEM[PJ2K_NUM_DTYPES] = {1, 1, 2, 2, 4, 4, 4, 8};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    for (int pass = 0; pass < 2; pass++) {
        pj2k_header h;
        if (pass) reseal(buf, size);
        if (pj2k_read_header(buf, size, &h) != PJ2K_OK) continue;
        for (int level = 0; level <= h.levels; level++) {
            uint64_t shape[PJ2K_MAX_NDIM], n = 1;
            pj2k_level_shape(&h, level, shape);
            for (int i = 0; i < h.ndim; i++) n *= shape[i];   /* <= 2**48 by validation */
            if (n > MAX_FUZZ_ELEMENTS) continue;
            const size_t bytes = (size_t)n * ITEM[h.dtype];
            void *out = malloc(bytes ? bytes : 1);
            if (out) pj2k_decode(buf, size, level, out, bytes, MAX_FUZZ_ELEMENTS);
            for (int layer = 0; out && h.layers > 1 && layer < h.layers; layer++)
                pj2k_decode_layer(buf, size, level, layer, out, bytes, MAX_FUZZ_ELEMENTS);
            free(out);
        }
    }
    free(buf);
    return 0;
}
