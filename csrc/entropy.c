/* Stage 2: entropy coding.  An LZMA-style binary range coder with adaptive
 * probabilities codes each coefficient as (exponent in unary, first mantissa
 * bit, remaining mantissa bits raw, sign), every modelled bit conditioned on
 * the magnitudes and signs of already coded neighbours. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

#define PROB_BITS 12
#define PROB_ONE (1u << PROB_BITS)
#define ADAPT_SHIFT 5
#define RANGE_TOP (1u << 24)

int pj2k_bytes_reserve(pj2k_bytes *b, size_t extra)
{
    if (b->failed) return 0;
    if (b->capacity - b->length >= extra) return 1;
    size_t cap = b->capacity ? b->capacity : 4096;
    while (cap - b->length < extra) {
        if (cap > SIZE_MAX / 2) { b->failed = 1; return 0; }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) { b->failed = 1; return 0; }
    b->data = p;
    b->capacity = cap;
    return 1;
}

static inline void put_byte(pj2k_bytes *b, uint8_t v)
{
    if (b->length < b->capacity || pj2k_bytes_reserve(b, 1)) b->data[b->length++] = v;
}

void pj2k_model_reset(pj2k_model *m)
{
    uint16_t *p = &m->prob.exponent[0][0][0];
    const size_t count = sizeof m->prob / sizeof *p;   /* the probabilities are all uint16_t */
    for (size_t i = 0; i < count; i++) p[i] = PROB_ONE / 2;
}

/* ---- range encoder ---- */
void pj2k_rc_encoder_init(pj2k_rc_encoder *e, pj2k_bytes *out)
{
    e->out = out;
    e->low = 0;
    e->range = 0xFFFFFFFFu;
    e->cache = 0;
    e->cache_size = 1;
}

static void shift_low(pj2k_rc_encoder *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        const uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t byte = e->cache;
        do {
            put_byte(e->out, (uint8_t)(byte + carry));
            byte = 0xFF;
        } while (--e->cache_size != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->cache_size++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

void pj2k_rc_encoder_finish(pj2k_rc_encoder *e)
{
    for (int i = 0; i < 5; i++) shift_low(e);
}

static inline void encode_bit(pj2k_rc_encoder *e, uint16_t *p, unsigned bit)
{
    const uint32_t bound = (e->range >> PROB_BITS) * *p;
    if (!bit) {
        e->range = bound;
        *p += (PROB_ONE - *p) >> ADAPT_SHIFT;
    } else {
        e->low += bound;
        e->range -= bound;
        *p -= *p >> ADAPT_SHIFT;
    }
    if (e->range < RANGE_TOP) { e->range <<= 8; shift_low(e); }
}

static inline void encode_direct(pj2k_rc_encoder *e, uint64_t value, int nbits)
{
    for (int k = nbits - 1; k >= 0; k--) {
        e->range >>= 1;
        if ((value >> k) & 1) e->low += e->range;
        if (e->range < RANGE_TOP) { e->range <<= 8; shift_low(e); }
    }
}

/* ---- range decoder: never reads past `length`, flags an overrun instead ---- */
static inline uint8_t next_byte(pj2k_rc_decoder *d)
{
    if (d->pos < d->length) return d->data[d->pos++];
    d->overrun = 1;
    return 0;
}

void pj2k_rc_decoder_init(pj2k_rc_decoder *d, const uint8_t *data, size_t length)
{
    d->data = data;
    d->length = length;
    d->pos = 0;
    d->overrun = 0;
    d->range = 0xFFFFFFFFu;
    d->code = 0;
    if (next_byte(d) != 0) d->overrun = 1;  /* the encoder's first byte is always 0 */
    for (int i = 0; i < 4; i++) d->code = (d->code << 8) | next_byte(d);
}

static inline unsigned decode_bit(pj2k_rc_decoder *d, uint16_t *p)
{
    const uint32_t bound = (d->range >> PROB_BITS) * *p;
    unsigned bit;
    if (d->code < bound) {
        d->range = bound;
        *p += (PROB_ONE - *p) >> ADAPT_SHIFT;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        *p -= *p >> ADAPT_SHIFT;
        bit = 1;
    }
    if (d->range < RANGE_TOP) { d->range <<= 8; d->code = (d->code << 8) | next_byte(d); }
    return bit;
}

static inline uint64_t decode_direct(pj2k_rc_decoder *d, int nbits)
{
    uint64_t value = 0;
    for (int k = 0; k < nbits; k++) {
        d->range >>= 1;
        unsigned bit = d->code >= d->range;
        if (bit) d->code -= d->range;
        value = (value << 1) | bit;
        if (d->range < RANGE_TOP) { d->range <<= 8; d->code = (d->code << 8) | next_byte(d); }
    }
    return value;
}

/* Neighbourhood magnitude sum -> context: two steps per octave. */
static inline unsigned magnitude_context(uint64_t s)
{
    if (s == 0) return 0;
    const unsigned b = 63u - (unsigned)__builtin_clzll(s);
    const unsigned half = b ? (unsigned)(s >> (b - 1)) & 1u : 0u;
    const unsigned c = 2 * b + half + 1;
    return c < PJ2K_MAG_CTX ? c : PJ2K_MAG_CTX - 1;
}

static inline unsigned bit_length(uint64_t v) { return v ? 64u - (unsigned)__builtin_clzll(v) : 0u; }

/* ---- per coefficient type (int16: 8-bit data, see pj2k_fwd53_i16) ---- */
#define COEF int16_t
#define COEF_MAX INT16_MAX
#define SFX(name) name##_i16
#include "entropy_impl.h"
#undef COEF
#undef COEF_MAX
#undef SFX

#define COEF int32_t
#define COEF_MAX INT32_MAX
#define SFX(name) name##_i32
#include "entropy_impl.h"
#undef COEF
#undef COEF_MAX
#undef SFX

#define COEF int64_t
#define COEF_MAX INT64_MAX
#define SFX(name) name##_i64
#include "entropy_impl.h"
#undef COEF
#undef COEF_MAX
#undef SFX
