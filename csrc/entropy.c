/* Stage 2: entropy coding.  An LZMA-style binary range coder with adaptive
 * probabilities codes each coefficient as (exponent in unary, first mantissa
 * bits modelled, remaining mantissa bits raw, sign), every modelled bit
 * conditioned on the magnitudes and signs of already coded neighbours (and,
 * in version 3, of the parent and the previous colour component); version 5
 * codes a quiet group of four zeros as one decision. */
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Version 3 probabilities: 16 bits, adapted at rate 2**-(count + 1) after
 * `count` updates, until the rate reaches 2**-ADAPT_MAX_SHIFT. */
#define PROB_BITS 16
#define ADAPT_MAX_SHIFT 6
/* Legacy (versions 1 and 2) probabilities: 12 bits, fixed rate 2**-5. */
#define LEGACY_PROB_BITS 12
#define LEGACY_ADAPT_SHIFT 5
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

void pj2k_bit_cost_table(float *table)
{
    for (int i = 1; i < PJ2K_BIT_COST_SIZE; i++) table[i] = (float)-log2(i / 4096.0);
    table[0] = table[1];
}

/* Version 4: the first probability of exponent decision i under magnitude
 * context c, 65536 / (1 + exp(-0.4 d)) for d = 2i - c + 6 (the decision's
 * half-octaves above the exponent the context predicts), rounded and kept
 * within [1024, 64512]; here for d = -11..11, beyond which it is constant. */
#define PRIOR_REACH 11
static const uint16_t EXPONENT_PRIOR[2 * PRIOR_REACH + 1] = {
    1024, 1179, 1743, 2567, 3757, 5451, 7812, 11009, 15170, 20318, 26300, 32768,
    39236, 45218, 50366, 54527, 57724, 60085, 61779, 62969, 63793, 64357, 64512};
#define PRIOR_SHIFT 3         /* the rate of a prior probability starts at 2**-3 */
/* Version 5's first zero-run probabilities (of a 0 decision): a quiet group
 * after a zero run (or at a row's start) is all zero (0.96), after a broken
 * run less often (0.61); a value before a broken run's first non-zero one is
 * zero (0.61); a band codes no runs (0.46).  They halve the cost of the
 * run contexts' learning in small chunks (docs/DESIGN.md 22). */
#define RUN_PRIOR_AFTER_RUN 63000
#define RUN_PRIOR_AFTER_BROKEN 40000
#define RUN_FIRST_PRIOR 40000
#define BAND_RUNS_PRIOR 30000
#define PIECE_SHIFT_CAP 3     /* version 4: rates at most 2**-3 again at a new piece */

void pj2k_model_reset(pj2k_model *m, int version)
{
    pj2k_prob *p = &m->prob.exponent[0][0][0];
    const size_t count = sizeof m->prob / sizeof *p;   /* the probabilities are all pj2k_prob */
    const pj2k_prob start = {version < 3 ? 1u << (LEGACY_PROB_BITS - 1) : 1u << (PROB_BITS - 1), 1};
    for (size_t i = 0; i < count; i++) p[i] = start;
    m->version = version;
    m->cap_rates = pj2k_kernels_select()->cap_rates;
    if (version < 4) return;
    /* the priors depend on the context and position only: one class's,
     * copied to the others */
    for (int c = 0; c < PJ2K_MAG_CTX; c++)
        for (int i = 0; i < PJ2K_EXP_POS; i++) {
            int d = 2 * i - c + 6;
            d = d < -PRIOR_REACH ? -PRIOR_REACH : (d > PRIOR_REACH ? PRIOR_REACH : d);
            m->prob.exponent[0][c][i] = (pj2k_prob){EXPONENT_PRIOR[d + PRIOR_REACH], PRIOR_SHIFT};
        }
    for (int cls = 1; cls < PJ2K_CLASSES; cls++)
        memcpy(m->prob.exponent[cls], m->prob.exponent[0], sizeof m->prob.exponent[0]);
    if (version < 5) return;
    for (int cls = 0; cls < PJ2K_CLASSES; cls++) {
        m->prob.run[cls][0] = (pj2k_prob){RUN_PRIOR_AFTER_BROKEN, PRIOR_SHIFT};
        m->prob.run[cls][1] = (pj2k_prob){RUN_PRIOR_AFTER_RUN, PRIOR_SHIFT};
        for (int k = 0; k < 3; k++) m->prob.run_first[cls][k] = (pj2k_prob){RUN_FIRST_PRIOR, PRIOR_SHIFT};
        m->prob.band_runs[cls] = (pj2k_prob){BAND_RUNS_PRIOR, PRIOR_SHIFT};
    }
}

void pj2k_model_next_piece(pj2k_model *m)
{
    pj2k_prob *p = &m->prob.exponent[0][0][0];
    m->cap_rates(p, sizeof m->prob / sizeof *p, PIECE_SHIFT_CAP);
}

/* Version 3 updates after coding a 0 or a 1: the rate shift grows by one per
 * update up to ADAPT_MAX_SHIFT; the probability stays within [1, 2**16 - 1]. */
static inline void adapt_rate(pj2k_prob *s)
{
    if (s->shift < ADAPT_MAX_SHIFT) s->shift++;
}
static inline uint16_t after_zero(const pj2k_prob *s)
{
    return (uint16_t)(s->p + (((1u << PROB_BITS) - s->p) >> s->shift));
}
static inline uint16_t after_one(const pj2k_prob *s) { return (uint16_t)(s->p - (s->p >> s->shift)); }
static inline void adapt_zero(pj2k_prob *s)
{
    s->p = after_zero(s);
    adapt_rate(s);
}
static inline void adapt_one(pj2k_prob *s)
{
    s->p = after_one(s);
    adapt_rate(s);
}

/* Branch-free steps of a decision whose outcome is a mask (all ones for a
 * 1, zero for a 0): masks, not selects, which GCC made branches of in some
 * of the coder's inlined copies (docs/DESIGN.md 47). */
static inline uint32_t range_after(uint32_t range, uint32_t bound, uint32_t mask)
{
    return (bound & ~mask) | ((range - bound) & mask);
}
static inline void adapt_by_mask(pj2k_prob *s, uint32_t mask)
{
    const uint16_t one = after_one(s), zero = after_zero(s);
    s->p = (uint16_t)((zero & ~mask) | (one & mask));   /* adapt_one or adapt_zero */
    adapt_rate(s);
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

/* The pending byte and any 0xFF run after it, once the carry is known. */
static PJ2K_NOINLINE void flush_pending(pj2k_rc_encoder *e, uint8_t carry)
{
    uint8_t byte = e->cache;
    do {
        put_byte(e->out, (uint8_t)(byte + carry));
        byte = 0xFF;
    } while (--e->cache_size != 0);
}

static inline void shift_low(pj2k_rc_encoder *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        const uint8_t carry = (uint8_t)(e->low >> 32);
        pj2k_bytes *out = e->out;
        if (e->cache_size == 1 && out->length < out->capacity) {   /* the usual case: one byte */
            out->data[out->length++] = (uint8_t)(e->cache + carry);
            e->cache_size = 0;
        } else {   /* through a copy, so that callers can keep *e in registers */
            pj2k_rc_encoder state = *e;
            flush_pending(&state, carry);
            *e = state;
        }
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->cache_size++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

void pj2k_rc_encoder_finish(pj2k_rc_encoder *e)
{
    for (int i = 0; i < 5; i++) shift_low(e);
}

/* Every coder step keeps range >= RANGE_TOP; with 16-bit probabilities a
 * step may need two normalising shifts, hence the loops. */
static inline PJ2K_ALWAYS_INLINE void encode_bit(pj2k_rc_encoder *e, pj2k_prob *p, unsigned bit)
{
    /* branch-free: the bit is known, so nothing waits for it, and
     * unpredictable bits (mantissas, signs) cost no mispredictions (with
     * masks, lossless encodes 4-8% faster than with selects, and 0-7% more
     * with encode_direct's) */
    const uint32_t bound = (e->range >> PROB_BITS) * p->p;
    const uint32_t mask = 0u - (uint32_t)(bit != 0);
    e->low += bound & mask;
    e->range = range_after(e->range, bound, mask);
    adapt_by_mask(p, mask);
    while (e->range < RANGE_TOP) { e->range <<= 8; shift_low(e); }
}

static inline void encode_direct(pj2k_rc_encoder *e, uint64_t value, int nbits)
{
    for (int k = nbits - 1; k >= 0; k--) {
        e->range >>= 1;
        e->low += e->range & (0u - (uint32_t)((value >> k) & 1));   /* (even odds: no branch) */
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

/* Version 3 on: a step may need two shifts (as encode_bit's loop). */
static inline PJ2K_ALWAYS_INLINE void renormalise(pj2k_rc_decoder *d)
{
    while (d->range < RANGE_TOP) { d->range <<= 8; d->code = (d->code << 8) | next_byte(d); }
}

static inline PJ2K_ALWAYS_INLINE unsigned decode_bit(pj2k_rc_decoder *d, pj2k_prob *p)
{
    const uint32_t bound = (d->range >> PROB_BITS) * p->p;
    unsigned bit;
    if (d->code < bound) {
        d->range = bound;
        adapt_zero(p);
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        adapt_one(p);
        bit = 1;
    }
    renormalise(d);
    return bit;
}

/* decode_bit without a branch on the bit, for decisions near even odds
 * (mantissa bits, signs), which a predictor guesses wrong half the time
 * (lossless decodes 3-8% faster; the unary exponent's decisions branch
 * anyway, to end its loop).  The same state as decode_bit's, bit for bit. */
static inline PJ2K_ALWAYS_INLINE unsigned decode_bit_even(pj2k_rc_decoder *d, pj2k_prob *p)
{
#ifdef PJ2K_SELF_CHECK   /* the sanitizer build (scripts/run_sanitizers.sh): against decode_bit */
    pj2k_rc_decoder d_branch = *d;
    pj2k_prob p_branch = *p;
    const unsigned bit_branch = decode_bit(&d_branch, &p_branch);
#endif
    const uint32_t bound = (d->range >> PROB_BITS) * p->p;
    const unsigned bit = d->code >= bound;
    const uint32_t mask = 0u - (uint32_t)bit;
    d->code -= bound & mask;
    d->range = range_after(d->range, bound, mask);
    adapt_by_mask(p, mask);
    renormalise(d);
#ifdef PJ2K_SELF_CHECK
    if (bit != bit_branch || d->range != d_branch.range || d->code != d_branch.code ||
        d->pos != d_branch.pos || d->overrun != d_branch.overrun || p->p != p_branch.p ||
        p->shift != p_branch.shift)
        __builtin_trap();
#endif
    return bit;
}

/* Versions 1 and 2: one shift always suffices (the probability stays within
 * [31, 4065] of 4096, so range >= 2**17 before it). */
static inline unsigned decode_bit_legacy(pj2k_rc_decoder *d, pj2k_prob *p)
{
    const uint32_t bound = (d->range >> LEGACY_PROB_BITS) * p->p;
    unsigned bit;
    if (d->code < bound) {
        d->range = bound;
        p->p += ((1u << LEGACY_PROB_BITS) - p->p) >> LEGACY_ADAPT_SHIFT;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        p->p -= p->p >> LEGACY_ADAPT_SHIFT;
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

/* ---- version 10's nodata mask: a sequence of bits as runs (docs/FORMAT.md 6.5)
 * Alternating runs, of 0s first: the first run's length plus one, every
 * later run's length (at least one), each as Elias gamma: its bit length
 * less one in unary (1s ended by a 0) under a probability per kind of run,
 * position and bit length of the previous run of that kind (a coastline's
 * runs change slowly from row to row), then its first bit below the
 * leading one under a probability per kind and bit length, then the rest
 * at even odds.  The sequence's length is the reader's: it takes as many
 * bits as it needs, and the writer ends with the run in progress. */
#define RUN_LENGTH_BITS 56     /* a run of 2**55: more bits than a chunk's levels hold
                                  (11 levels of at most 2**48 cells) */
#define RUN_HISTORY 16         /* previous bit lengths told apart (capped) */
struct pj2k_runs {
    pj2k_prob unary[2][RUN_HISTORY][RUN_LENGTH_BITS];
    pj2k_prob first[2][RUN_LENGTH_BITS];
    unsigned previous[2];      /* bit length less one of the last run of each kind */
    unsigned kind;             /* of the run in progress */
    uint64_t run;              /* writer: its length so far; reader: what is left of it */
    int started;               /* a run has been coded */
    pj2k_rc_encoder e;
    pj2k_rc_decoder d;
};

static pj2k_runs *runs_new(void)
{
    pj2k_runs *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pj2k_prob *p = &r->unary[0][0][0];
    const size_t count = (sizeof r->unary + sizeof r->first) / sizeof *p;
    for (size_t i = 0; i < count; i++) p[i] = (pj2k_prob){1u << (PROB_BITS - 1), 1};
    return r;
}

static unsigned run_history(const pj2k_runs *r)
{
    return r->previous[r->kind] < RUN_HISTORY ? r->previous[r->kind] : RUN_HISTORY - 1;
}

pj2k_runs *pj2k_runs_writer(pj2k_bytes *out)
{
    pj2k_runs *r = runs_new();
    if (r) pj2k_rc_encoder_init(&r->e, out);
    return r;
}

static void put_run(pj2k_runs *r, uint64_t v)   /* v >= 1 */
{
    const unsigned b = bit_length(v) - 1, history = run_history(r);
    for (unsigned i = 0; i <= b; i++) encode_bit(&r->e, &r->unary[r->kind][history][i], i < b);
    if (b) {
        encode_bit(&r->e, &r->first[r->kind][b], (unsigned)(v >> (b - 1)) & 1u);
        encode_direct(&r->e, v, (int)b - 1);
    }
    r->previous[r->kind] = b;
}

void pj2k_runs_put(pj2k_runs *r, unsigned bit)
{
    if (bit != r->kind) {
        put_run(r, r->run + !r->started);
        r->started = 1;
        r->kind ^= 1u;
        r->run = 0;
    }
    r->run++;
}

pj2k_status pj2k_runs_finish(pj2k_runs *r)
{
    put_run(r, r->run + !r->started);
    pj2k_rc_encoder_finish(&r->e);
    const int failed = r->e.out->failed;
    free(r);
    return failed ? PJ2K_ERR_NOMEM : PJ2K_OK;
}

pj2k_runs *pj2k_runs_reader(const uint8_t *data, size_t length)
{
    pj2k_runs *r = runs_new();
    if (r) pj2k_rc_decoder_init(&r->d, data, length);
    return r;
}

int pj2k_runs_get(pj2k_runs *r)
{
    while (r->run == 0) {
        if (r->started) r->kind ^= 1u;
        const unsigned history = run_history(r);
        unsigned b = 0;
        while (b < RUN_LENGTH_BITS && decode_bit(&r->d, &r->unary[r->kind][history][b])) b++;
        if (b >= RUN_LENGTH_BITS || r->d.overrun) return -1;
        uint64_t v = 1;
        if (b) {
            v = 2u | decode_bit(&r->d, &r->first[r->kind][b]);
            v = (v << (b - 1)) | decode_direct(&r->d, (int)b - 1);
        }
        if (r->d.overrun) return -1;
        r->previous[r->kind] = b;
        r->run = v - !r->started;
        r->started = 1;
    }
    r->run--;
    return (int)r->kind;
}

void pj2k_runs_free(pj2k_runs *r) { free(r); }


/* Context of the first mantissa bit (version 3): is the neighbourhood's
 * magnitude octave below, at or above what exponent eb predicts? */
static inline unsigned mantissa_context(unsigned mctx, unsigned eb)
{
    const int octave = (int)(mctx >> 1) - (int)eb - 2;
    return (unsigned)(octave >= 0) + (unsigned)(octave > 0);   /* 0, 1, 2 without a branch */
}

/* magnitude_context for the sums of the coder's rows (2 W + the rest, each
 * saturated at 0xFFFF, so below 2**18): a table for sums below 2**12, the
 * usual case, whose one load is shorter than the bit scan's chain (the
 * decoder waits for each value's context before its first decision). */
#define CTX_TABLE_SIZE 4096
#define CTX_R1(v) v,
#define CTX_R2(v) CTX_R1(v) CTX_R1(v)
#define CTX_R4(v) CTX_R2(v) CTX_R2(v)
#define CTX_R8(v) CTX_R4(v) CTX_R4(v)
#define CTX_R16(v) CTX_R8(v) CTX_R8(v)
#define CTX_R32(v) CTX_R16(v) CTX_R16(v)
#define CTX_R64(v) CTX_R32(v) CTX_R32(v)
#define CTX_R128(v) CTX_R64(v) CTX_R64(v)
#define CTX_R256(v) CTX_R128(v) CTX_R128(v)
#define CTX_R512(v) CTX_R256(v) CTX_R256(v)
#define CTX_R1024(v) CTX_R512(v) CTX_R512(v)
/* s in [2**b, 1.5 * 2**b): 2b + 1; [1.5 * 2**b, 2**(b + 1)): 2b + 2 */
static const uint8_t CONTEXT_TABLE[CTX_TABLE_SIZE] = {
    0, 1, 3, 4, CTX_R2(5) CTX_R2(6) CTX_R4(7) CTX_R4(8) CTX_R8(9) CTX_R8(10) CTX_R16(11) CTX_R16(12)
    CTX_R32(13) CTX_R32(14) CTX_R64(15) CTX_R64(16) CTX_R128(17) CTX_R128(18) CTX_R256(19) CTX_R256(20)
    CTX_R512(21) CTX_R512(22) CTX_R1024(23) CTX_R1024(24)};
#undef CTX_R1
#undef CTX_R2
#undef CTX_R4
#undef CTX_R8
#undef CTX_R16
#undef CTX_R32
#undef CTX_R64
#undef CTX_R128
#undef CTX_R256
#undef CTX_R512
#undef CTX_R1024
static inline unsigned row_context(uint32_t s)
{
#ifdef PJ2K_SELF_CHECK   /* the sanitizer build (scripts/run_sanitizers.sh): against the bit scan */
    if (s < CTX_TABLE_SIZE && CONTEXT_TABLE[s] != magnitude_context(s)) __builtin_trap();
#endif
    return __builtin_expect(s < CTX_TABLE_SIZE, 1) ? CONTEXT_TABLE[s] : magnitude_context(s);
}

/* ---- per coefficient type and rule set (int16: 8-bit data, see
 * the kernels' fwd_rev_i16); the legacy rules only decode.  UMAG holds any
 * magnitude of COEF: 32 bits where they suffice, so the row loops vectorise
 * four or eight wide ---- */
#define COEF int16_t
#define COEF_MAX INT16_MAX
#define UMAG uint32_t
#define LEGACY 0
#define SFX(name) name##_i16
#include "entropy_impl.h"
#undef SFX
#undef LEGACY
#define LEGACY 1
#define SFX(name) name##_i16_legacy
#include "entropy_impl.h"
#undef SFX
#undef LEGACY
#undef COEF
#undef COEF_MAX

#define COEF int32_t
#define COEF_MAX INT32_MAX
#define LEGACY 0
#define SFX(name) name##_i32
#include "entropy_impl.h"
#undef SFX
#undef LEGACY
#define LEGACY 1
#define SFX(name) name##_i32_legacy
#include "entropy_impl.h"
#undef SFX
#undef LEGACY
#undef COEF
#undef COEF_MAX

#undef UMAG
#define COEF int64_t
#define COEF_MAX INT64_MAX
#define UMAG uint64_t
#define LEGACY 0
#define SFX(name) name##_i64
#include "entropy_impl.h"
#undef SFX
#undef LEGACY
#define LEGACY 1
#define SFX(name) name##_i64_legacy
#include "entropy_impl.h"
#undef SFX
#undef LEGACY
#undef COEF
#undef COEF_MAX
