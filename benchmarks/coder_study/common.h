/* Shared prototype scaffolding: image loading, band extraction, bit I/O. */
#ifndef PROTO_COMMON_H
#define PROTO_COMMON_H
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#define NOINLINE __attribute__((noinline))
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef struct { int h, w, cls; int32_t *v; } band_t;
typedef struct { int nb; band_t b[3]; } piece_t;
typedef struct { int npieces; piece_t p[16]; size_t ncoef; int maxw; } image_t;

typedef struct { uint8_t *data; size_t len, cap; } buf_t;
static inline void buf_reserve(buf_t *b, size_t extra)
{
    if (b->len + extra + 16 <= b->cap) return;
    size_t c = b->cap ? b->cap : 4096;
    while (b->len + extra + 16 > c) c *= 2;
    b->data = realloc(b->data, c);
    b->cap = c;
}

/* ---- raw bit writer / reader, LSB-first, 64-bit ---- */
typedef struct { buf_t *out; uint64_t acc; int n; } bw_t;
static inline void bw_init(bw_t *w, buf_t *out) { w->out = out; w->acc = 0; w->n = 0; }
static inline void bw_put(bw_t *w, uint64_t v, int nb)   /* nb <= 32 */
{
    if (!nb) return;
    w->acc |= (v & (((uint64_t)1 << nb) - 1)) << w->n;
    w->n += nb;
    if (w->n >= 32) {
        buf_reserve(w->out, 4);
        uint32_t lo = (uint32_t)w->acc;
        memcpy(w->out->data + w->out->len, &lo, 4);
        w->out->len += 4;
        w->acc >>= 32;
        w->n -= 32;
    }
}
static inline void bw_flush(bw_t *w)
{
    while (w->n > 0) {
        buf_reserve(w->out, 1);
        w->out->data[w->out->len++] = (uint8_t)w->acc;
        w->acc >>= 8;
        w->n -= 8;
    }
    w->n = 0; w->acc = 0;
}

typedef struct { const uint8_t *p; uint64_t buf; unsigned cnt; } br_t;
static inline void br_init(br_t *r, const uint8_t *p) { r->p = p; r->buf = 0; r->cnt = 0; }
/* branchless refill: afterwards at least 56 bits are available (input padded by 8 bytes) */
static inline void br_refill(br_t *r)
{
    uint64_t w; memcpy(&w, r->p, 8);
    r->buf |= w << r->cnt;
    r->p += (63 - r->cnt) >> 3;
    r->cnt |= 56;
}
static inline uint64_t br_get(br_t *r, unsigned nb)   /* nb <= 56, after refill */
{
    uint64_t v = r->buf & ((((uint64_t)1) << nb) - 1);
    r->buf >>= nb;
    r->cnt -= nb;
    return v;
}

static inline unsigned bitlen(uint64_t v) { return v ? 64u - (unsigned)__builtin_clzll(v) : 0u; }
static inline unsigned magctx(uint32_t s)
{
    if (s == 0) return 0;
    const unsigned b = 31u - (unsigned)__builtin_clz(s);
    const unsigned half = b ? (s >> (b - 1)) & 1u : 0u;
    const unsigned c = 2 * b + half + 1;
    return c < 32 ? c : 31;
}
static inline uint32_t iabs32(int32_t v) { return v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v; }

#endif
