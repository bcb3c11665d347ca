/* Template: one instruction set's build of every per-sample loop of the
 * core: the wavelet lifting (5/3, 9/7-M, 9/7), the colour transforms and the dtype
 * conversions, gathered in one table named KERNELS.  Included by kernels.c
 * (portable) and kernels_avx2.c (the same C compiled for AVX2).
 *
 * The loops are plain C; an instruction set only changes how the compiler
 * vectorises them, never a result: integer arithmetic is exact, and the
 * floating-point operations stay the same IEEE operations in the same order
 * (no reassociation; no FMA, which neither build enables and -ffp-contract=off
 * forbids).  tests/test_kernels.py checks the two builds bit for bit. */

/* ---- reversible colour transform: int16 planes (computed in int32), int32, int64 ---- */
#define T int32_t
#define TB int16_t
#define NARROW 1
#define SFX(name) name##_i16
#include "rct_impl.h"
#undef TB
#undef NARROW
#undef SFX
#define TB int32_t
#define NARROW 0
#define SFX(name) name##_i32
#include "rct_impl.h"
#undef T
#undef TB
#undef NARROW
#undef SFX
#define T int64_t
#define TB int64_t
#define NARROW 0
#define SFX(name) name##_i64
#include "rct_impl.h"
#undef T
#undef TB
#undef NARROW
#undef SFX

/* ---- reversible 5/3 and 9/7-M: int32, int16 buffers (lifted in int32), int64 ---- */
#define KERNEL(op) lift53_##op##_i32
#define KERNEL_ALT(op) liftm97_##op##_i32
#define KERNEL_ROUND(op) lift53r_##op##_i32
#define T int32_t
#define UT uint32_t
#define SFX(name) name##_i32
#include "liftint_impl.h"
#define TB int32_t
#define NARROW 0
#include "transform_impl.h"
#undef TB
#undef NARROW
#undef SFX
#define SFX(name) name##_i16
#define TB int16_t
#define NARROW 1
#include "transform_impl.h"
#undef T
#undef UT
#undef SFX
#undef TB
#undef NARROW
#undef KERNEL
#undef KERNEL_ALT
#undef KERNEL_ROUND

#define KERNEL(op) lift53_##op##_i64
#define KERNEL_ALT(op) liftm97_##op##_i64
#define KERNEL_ROUND(op) lift53r_##op##_i64
#define T int64_t
#define UT uint64_t
#define TB int64_t
#define NARROW 0
#define SFX(name) name##_i64
#include "liftint_impl.h"
#include "transform_impl.h"
#undef T
#undef UT
#undef TB
#undef NARROW
#undef SFX
#undef KERNEL
#undef KERNEL_ALT
#undef KERNEL_ROUND

/* ---- irreversible 9/7 on double ---- */
#define LT double
#define LSFX(name) name
#include "lift97_impl.h"
#undef LT
#undef LSFX
#define KERNEL(op) lift97_##op
#define KERNEL_LINES(op) lift97_##op##_lines
#define KERNEL_ALT(op) lift97_##op   /* 9/7 has no alternative: alt_levels is 0 */
#define KERNEL_ROUND(op) lift97_##op
#define T double
#define TB double
#define NARROW 0
#define SFX(name) name##_f64
#include "transform_impl.h"
#undef T
#undef TB
#undef SFX
#undef KERNEL
#undef KERNEL_ALT
#undef KERNEL_ROUND
#undef KERNEL_LINES
/* ---- 8- and 16-bit samples' float32 coefficients, lifted in float32: the
 * encoder's (twice the lanes of double, and no conversions between the
 * buffer and tmp; the rounding this adds, about 2**-24 of a value per step,
 * is far below any quantisation step these samples take: docs/DESIGN.md
 * 39), and from format version 8 the decoder's, whose arithmetic this is
 * (docs/FORMAT.md 4) ---- */
#define LT float
#define LSFX(name) name##_f
#include "lift97_impl.h"
#undef LT
#undef LSFX
#define KERNEL(op) lift97_##op##_f
#define KERNEL_LINES(op) lift97_##op##_lines_f
#define KERNEL_ALT(op) lift97_##op##_f
#define KERNEL_ROUND(op) lift97_##op##_f
#define T float
#define TB float
#define SFX(name) name##_f32
#include "transform_impl.h"
#undef T
#undef TB
#undef NARROW
#undef SFX
#undef KERNEL
#undef KERNEL_ALT
#undef KERNEL_ROUND
#undef KERNEL_LINES

/* The inverses clamp to a bound the lifting's type can add four of (the
 * 9/7-M predict's sum of twenty wraps harmlessly, liftint_impl.h). */
static inline int32_t bound_for_int32(int64_t bound) { return (int32_t)(bound > INT32_MAX / 4 ? INT32_MAX / 4 : bound); }
static int fwd_rev_i16(int16_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp)
{ return forward_i16(buf, dims, levels, alt, tmp); }
static void fwd_rev_i32(int32_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp)
{ forward_i32(buf, dims, levels, alt, tmp); }
static void fwd_rev_i64(int64_t *buf, const size_t dims[3], int levels, unsigned alt, int64_t *tmp)
{ forward_i64(buf, dims, levels, alt, tmp); }
static int inv_rev_i16(int16_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp,
                       int64_t bound)
{ return inverse_i16(buf, dims, levels, alt, tmp, bound_for_int32(bound)); }
static void inv_rev_i32(int32_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp,
                        int64_t bound)
{ inverse_i32(buf, dims, levels, alt, tmp, bound_for_int32(bound)); }
static void inv_rev_i64(int64_t *buf, const size_t dims[3], int levels, unsigned alt, int64_t *tmp,
                        int64_t bound)
{ inverse_i64(buf, dims, levels, alt, tmp, bound > INT64_MAX / 4 ? INT64_MAX / 4 : bound); }
static void fwd97_f64(double *buf, const size_t dims[3], int levels, double *tmp)
{ forward_f64(buf, dims, levels, 0, tmp); }
static void fwd97_f32(float *buf, const size_t dims[3], int levels, float *tmp)
{ forward_f32(buf, dims, levels, 0, tmp); }
static void inv97_f64(double *buf, const size_t dims[3], int levels, double *tmp, double bound)
{ inverse_f64(buf, dims, levels, 0, tmp, bound); }
static void inv97_f32(float *buf, const size_t dims[3], int levels, float *tmp, float bound)
{ inverse_f32(buf, dims, levels, 0, tmp, bound); }

/* ---- irreversible colour transform (JPEG 2000 ICT, YCbCr) ---- */
/* the forward matrix: the exact inverse of the decoder's (ict_inv,
 * docs/FORMAT.md 3), rounded to double.  JPEG
 * 2000's forward constants (0.299, 0.587, ..., -0.08131) are within 1.3e-5
 * of it, and their product with the inverse is 2.5e-5 off the identity:
 * 16-bit colour came back up to 2 units off at any step. */
#define ICT_Y(R, G, B) (0.29900171263634356 * (R) + 0.5870003096257788 * (G) + 0.11399797773787768 * (B))
#define ICT_CB(R, G, B) (-0.16873685814692074 * (R) - 0.33126428308452527 * (G) + 0.500001141231446 * (B))
#define ICT_CR(R, G, B) (0.49999877843342116 * (R) - 0.4186878100041218 * (G) - 0.08131096842929934 * (B))
/* the decoder's matrix (docs/FORMAT.md 3) */
#define ICT_R(Y, CB, CR) ((Y) + 1.402 * (CR))
#define ICT_G(Y, CB, CR) ((Y) - 0.34413 * (CB) - 0.71414 * (CR))
#define ICT_B(Y, CB, CR) ((Y) + 1.772 * (CB))
/* Either direction on three planes of REAL, computed in double (float32:
 * the lossy encoder's coefficients, and version 8's reconstruction of 8-
 * and 16-bit samples, where a result beyond float32's range, which only
 * forged steps make, becomes an infinity as IEEE 754 converts it). */
#define ICT_PLANES(NAME, REAL, F0, F1, F2)                                      \
    static void NAME(REAL *c0, REAL *c1, REAL *c2, size_t count)                \
    {                                                                           \
        for (size_t i = 0; i < count; i++) {                                    \
            const double a = c0[i], b = c1[i], c = c2[i];                       \
            c0[i] = (REAL)F0(a, b, c);                                          \
            c1[i] = (REAL)F1(a, b, c);                                          \
            c2[i] = (REAL)F2(a, b, c);                                          \
        }                                                                       \
    }
ICT_PLANES(ict_fwd, double, ICT_Y, ICT_CB, ICT_CR)
ICT_PLANES(ict_fwd_f32, float, ICT_Y, ICT_CB, ICT_CR)
ICT_PLANES(ict_inv, double, ICT_R, ICT_G, ICT_B)
ICT_PLANES(ict_inv_f32, float, ICT_R, ICT_G, ICT_B)
#undef ICT_PLANES

/* ---- lossy reconstruction: q -> sign(q) (|q| + 0.5) f, 0 -> 0, branch-free ---- */
/* (into float32, version 8's lossy reconstruction of 8- and 16-bit
 * samples: |q| to float32 rounded to nearest, then float32 arithmetic; f
 * at most FLT_MAX there, so that the conversion is defined) */
#define DEQUANTISE(NAME, COEF, REAL)                                            \
    static void NAME(const COEF *q, REAL *o, size_t n, double f)                \
    {                                                                           \
        const REAL step = (REAL)f;                                              \
        for (size_t i = 0; i < n; i++) {                                        \
            const REAL m = ((REAL)(q[i] < 0 ? -q[i] : q[i]) + (REAL)0.5) * step; \
            o[i] = q[i] == 0 ? (REAL)0.0 : (q[i] < 0 ? -m : m);                 \
        }                                                                       \
    }
DEQUANTISE(dequantise_i16, int16_t, double)
DEQUANTISE(dequantise_i32, int32_t, double)
DEQUANTISE(dequantise_i64, int64_t, double)
DEQUANTISE(dequantise_f32_i16, int16_t, float)
DEQUANTISE(dequantise_f32_i32, int32_t, float)
DEQUANTISE(dequantise_f32_i64, int64_t, float)
#undef DEQUANTISE

/* ---- lossy quantisation: q = sign(c) floor(|c| * inv), inv =
 * pj2k_reciprocal(step) (a division per value bounded this loop): never
 * below floor(|c| / step), so a value of exactly k steps quantises to k
 * (at most one more where |c| / step is within an ulp of the next
 * integer); 0 if every product is below LIMIT, else
 * PJ2K_QUANTISE_WIDER if all are below 2**60 (the int64 kernel's limit),
 * else PJ2K_QUANTISE_HUGE (also for NaN and inf) ---- */
/* (the limits are checked after the loop, on the largest product's bits:
 * non-negative doubles order like their bits as int64, and NaN's lie above
 * every number's, so one max covers both; two flags per value, and-ed in
 * the loop, cost half the loop) */
#define QUANTISE(NAME, REAL, COEF, LIMIT)                                       \
    static int NAME(const REAL *x, COEF *q, size_t n, double step)              \
    {                                                                           \
        const double limit = (LIMIT), wide = (double)((int64_t)1 << 60);        \
        const double inv = pj2k_reciprocal(step);                               \
        int64_t largest = 0;                                                    \
        for (size_t i = 0; i < n; i++) {                                        \
            const double a = fabs(x[i]) * inv;                                  \
            int64_t bits;                                                       \
            memcpy(&bits, &a, sizeof bits);                                     \
            largest = bits > largest ? bits : largest;                          \
            const COEF m = (COEF)(a < limit ? a : 0.0);                         \
            q[i] = x[i] < 0 ? -m : m;                                           \
        }                                                                       \
        int64_t limit_bits, wide_bits;                                          \
        memcpy(&limit_bits, &limit, sizeof limit_bits);                         \
        memcpy(&wide_bits, &wide, sizeof wide_bits);                            \
        return largest >= wide_bits ? PJ2K_QUANTISE_HUGE                        \
               : largest >= limit_bits ? PJ2K_QUANTISE_WIDER : 0;               \
    }
QUANTISE(quantise_i32, double, int32_t, (double)INT32_MAX)
QUANTISE(quantise_i64, double, int64_t, (double)((int64_t)1 << 60))
QUANTISE(quantise_f32_i16, float, int16_t, (double)INT16_MAX)
QUANTISE(quantise_f32_i32, float, int32_t, (double)INT32_MAX)
QUANTISE(quantise_f32_i64, float, int64_t, (double)((int64_t)1 << 60))
#undef QUANTISE

/* ---- the rate model's histogram: each value's bin (pj2k_prepared_histogram) ----
 * v = |x| * norm; its key is the top 15 bits of its double, bits >> 49
 * (sign 0: exponent and three mantissa bits, ordered like the values), for
 * 0 < v <= DBL_MAX; zero, inf and NaN get no key.  bins[i] = top_bin - key,
 * at most last_bin (no key: last_bin) and at least 0.  Returns the largest
 * key, or -1 for none.  In 32-bit lanes, without stores to the counts
 * (the caller counts), so that the loop vectorises. */
#define HISTOGRAM_BINS(NAME, T)                                                         \
    static int32_t NAME(const T *x, size_t n, double norm, int32_t top_bin,              \
                        int32_t last_bin, int32_t *bins)                                 \
    {                                                                                    \
        int32_t largest = -1;                                                            \
        for (size_t i = 0; i < n; i++) {                                                 \
            const double v = fabs((double)x[i]) * norm;                                  \
            uint64_t bits;                                                               \
            memcpy(&bits, &v, sizeof bits);                                              \
            /* no key: far below any bin's, so that its bin is the last */               \
            const int32_t key = v > 0.0 && v <= DBL_MAX ? (int32_t)(bits >> 49) : -(1 << 30); \
            largest = key > largest ? key : largest;                                     \
            const int32_t bin = top_bin - key < last_bin ? top_bin - key : last_bin;     \
            bins[i] = bin > 0 ? bin : 0;                                                 \
        }                                                                                \
        return largest;                                                                  \
    }
HISTOGRAM_BINS(histogram_bins_f64, double)
#undef HISTOGRAM_BINS

/* The same for float32 coefficients (8- and 16-bit samples' 9/7), scaled
 * in float32 and keyed from the float's own bits, eight lanes to a vector
 * where doubles took four and a repacking: bits >> 20 is its exponent and
 * three mantissa bits, the double's key less the exponents' bias
 * difference, for normal floats.  (The product may round differently from
 * the double's, so a value within a float32 step of a bin's edge can fall
 * on the other side; integers times norm 1 key exactly alike.)  Below
 * FLT_MIN or above FLT_MAX: no key, as these coefficients never come near
 * either. */
#define F32_KEY_BIAS ((DBL_MAX_EXP - FLT_MAX_EXP) << 3)
static int32_t histogram_bins_f32(const float *x, size_t n, double norm, int32_t top_bin,
                                  int32_t last_bin, int32_t *bins)
{
    const float norm_f32 = (float)norm;
    int32_t largest = -1;
    for (size_t i = 0; i < n; i++) {
        const float v = fabsf(x[i]) * norm_f32;
        uint32_t bits;
        memcpy(&bits, &v, sizeof bits);
        const int32_t key = v >= FLT_MIN && v <= FLT_MAX ? (int32_t)(bits >> 20) + F32_KEY_BIAS
                                                         : -(1 << 30);
        largest = key > largest ? key : largest;
        const int32_t bin = top_bin - key < last_bin ? top_bin - key : last_bin;
        bins[i] = bin > 0 ? bin : 0;
    }
    return largest;
}
#undef F32_KEY_BIAS

/* ---- dtype conversions ---- */
#define DT uint8_t
#define DSFX(name) u8_##name
#define DT_LO 0
#define DT_HI 255
#define DT_IS_FLOAT 0
#define DT_FMAX 0.0
#include "convert_impl.h"
#define DT int8_t
#define DSFX(name) i8_##name
#define DT_LO (-128)
#define DT_HI 127
#define DT_IS_FLOAT 0
#define DT_FMAX 0.0
#include "convert_impl.h"
#define DT uint16_t
#define DSFX(name) u16_##name
#define DT_LO 0
#define DT_HI 65535
#define DT_IS_FLOAT 0
#define DT_FMAX 0.0
#include "convert_impl.h"
#define DT int16_t
#define DSFX(name) i16_##name
#define DT_LO (-32768)
#define DT_HI 32767
#define DT_IS_FLOAT 0
#define DT_FMAX 0.0
#include "convert_impl.h"
#define DT uint32_t
#define DSFX(name) u32_##name
#define DT_LO INT64_C(0)
#define DT_HI INT64_C(4294967295)
#define DT_IS_FLOAT 0
#define DT_FMAX 0.0
#include "convert_impl.h"
#define DT int32_t
#define DSFX(name) i32_##name
#define DT_LO INT64_C(-2147483648)
#define DT_HI INT64_C(2147483647)
#define DT_IS_FLOAT 0
#define DT_FMAX 0.0
#include "convert_impl.h"
#define DT float
#define DSFX(name) f32_##name
#define DT_LO INT64_MIN
#define DT_HI INT64_MAX
#define DT_IS_FLOAT 1
#define DT_FMAX ((double)FLT_MAX)
#include "convert_impl.h"
#define DT double
#define DSFX(name) f64_##name
#define DT_LO INT64_MIN
#define DT_HI INT64_MAX
#define DT_IS_FLOAT 1
#define DT_FMAX DBL_MAX
#include "convert_impl.h"

/* Each context read as a 32-bit word: the shift field's bits are found from
 * a context with only them set (whatever the byte order), and since shifts
 * stay below 2**15 those bits compare as a non-negative int32 -- a loop of
 * whole words that vectorises (field by field it stored each shift alone:
 * a tenth of a 128^2 chunk's encode). */
static void cap_rates(pj2k_prob *probs, size_t count, uint16_t cap)
{
    uint32_t shift_bits, cap_bits;
    const pj2k_prob shift_only = {0, 0xFFFF}, capped = {0, cap};
    memcpy(&shift_bits, &shift_only, sizeof shift_bits);
    memcpy(&cap_bits, &capped, sizeof cap_bits);
    for (size_t i = 0; i < count; i++) {
        uint32_t w;
        memcpy(&w, &probs[i], sizeof w);
        const int32_t shift = (int32_t)(w & shift_bits);
        w = (w & ~shift_bits) | (uint32_t)(shift < (int32_t)cap_bits ? shift : (int32_t)cap_bits);
        memcpy(&probs[i], &w, sizeof w);
    }
}

/* one template function per dtype (pj2k_dtype order) */
#define DTYPE_FNS(fn) {u8_##fn, i8_##fn, u16_##fn, i16_##fn, u32_##fn, i32_##fn, f32_##fn, f64_##fn}
/* rows by working type (PJ2K_WORK_*) and dtype */
#define ROW_FNS(kind) \
    {DTYPE_FNS(kind##_i32), DTYPE_FNS(kind##_i64), DTYPE_FNS(kind##_f64), DTYPE_FNS(kind##_i16)}

const pj2k_kernels KERNELS = {
    .name = KERNELS_NAME,
    .fwd_rev_i16 = fwd_rev_i16, .fwd_rev_i32 = fwd_rev_i32, .fwd_rev_i64 = fwd_rev_i64,
    .fwd97_f64 = fwd97_f64, .fwd97_f32 = fwd97_f32,
    .inv_rev_i16 = inv_rev_i16, .inv_rev_i32 = inv_rev_i32, .inv_rev_i64 = inv_rev_i64,
    .inv97_f64 = inv97_f64, .inv97_f32 = inv97_f32,
    .rct_fwd_i16 = rct_fwd_i16, .rct_fwd_i32 = rct_fwd_i32, .rct_fwd_i64 = rct_fwd_i64,
    .rct_inv_i16 = rct_inv_i16, .rct_inv_i32 = rct_inv_i32, .rct_inv_i64 = rct_inv_i64,
    .ict_fwd = ict_fwd, .ict_fwd_f32 = ict_fwd_f32, .ict_inv = ict_inv, .ict_inv_f32 = ict_inv_f32,
    .dequantise_i16 = dequantise_i16, .dequantise_i32 = dequantise_i32, .dequantise_i64 = dequantise_i64,
    .dequantise_f32_i16 = dequantise_f32_i16, .dequantise_f32_i32 = dequantise_f32_i32,
    .dequantise_f32_i64 = dequantise_f32_i64,
    .quantise_i32 = quantise_i32, .quantise_i64 = quantise_i64,
    .quantise_f32_i16 = quantise_f32_i16, .quantise_f32_i32 = quantise_f32_i32,
    .quantise_f32_i64 = quantise_f32_i64,
    .load = ROW_FNS(load),
    .load_f32 = DTYPE_FNS(load_f32),
    .load_ict_triples_f32 = DTYPE_FNS(load_ict_triples_f32),
    .store_ict_triples_f64 = DTYPE_FNS(store_ict_triples_f64),
    .store_f32 = DTYPE_FNS(store_f32),
    .store_ict_triples_f32 = DTYPE_FNS(store_ict_triples_f32),
    .store = ROW_FNS(store),
    .trial_error_f32 = DTYPE_FNS(trial_error_f32),
    .squared_error = DTYPE_FNS(squared_error),
    .histogram_bins_f32 = histogram_bins_f32, .histogram_bins_f64 = histogram_bins_f64,
    .prequantise = DTYPE_FNS(prequantise),
    .cap_rates = cap_rates,
};
#undef ROW_FNS
#undef DTYPE_FNS
