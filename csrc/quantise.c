/* 9/7 quantisation: the bands' steps, values to integers and back, and the
 * reconstruction of values a layered stream holds only in part. */
#include "codestream.h"
#include <float.h>
#include <math.h>
#include <string.h>

/* pj2k_band_norms for the chunk a header describes. */
int pj2k_header_band_norms(const pj2k_header *h, double *norms)
{
    uint64_t lengths[PJ2K_MAX_AXES];
    for (int i = 0; i < h->naxes; i++) lengths[i] = h->shape[h->axes[i]];
    return pj2k_band_norms(lengths, h->naxes, h->levels, norms);
}

/* Each band's step is the base step over its synthesis norm (norms: from
 * pj2k_header_band_norms), so that every band adds the same error per
 * coefficient. */
void pj2k_compute_steps(pj2k_header *h, const double *norms, double base_step)
{
    for (int b = 0; b < h->nbands; b++) h->steps[b] = (float)(base_step / norms[b]);
}

/* Quantised values go into the prepared kind (int16 for 8-bit samples,
 * else int32) unless one needs more: PJ2K_NARROW_OVERFLOW asks the caller
 * to widen the buffer (widen). */
pj2k_status pj2k_quantise(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                          const void *in, int in_f32, void *out, coef_kind kind)
{
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        const uint8_t *src = (const uint8_t *)in + c * L->box * pj2k_real_size(in_f32);
        uint8_t *dst = (uint8_t *)out + c * L->box * COEF_BYTES[kind];
        FOR_EACH_BAND_ROW(L->dims, h->levels, h->naxes, {
            const double step = (double)h->steps[sb->step_index];
            int fit;
            if (kind == COEF_I16)   /* float32 coefficients only (8-bit samples) */
                fit = in_f32 ? K->quantise_f32_i16((const float *)src + at, (int16_t *)dst + at, nx, step)
                             : PJ2K_QUANTISE_HUGE;
            else if (kind == COEF_I64)
                fit = in_f32 ? K->quantise_f32_i64((const float *)src + at, (int64_t *)dst + at, nx, step)
                             : K->quantise_i64((const double *)src + at, (int64_t *)dst + at, nx, step);
            else
                fit = in_f32 ? K->quantise_f32_i32((const float *)src + at, (int32_t *)dst + at, nx, step)
                             : K->quantise_i32((const double *)src + at, (int32_t *)dst + at, nx, step);
            if (fit == PJ2K_QUANTISE_HUGE) return PJ2K_ERR_PARAM;   /* step too small, or NaN/inf */
            if (fit) return PJ2K_NARROW_OVERFLOW;
        })
    }
    return PJ2K_OK;
}


/* Reconstruction of a value known to shift s (segment r decoded through
 * layer last[r], |v| >> s = |q|): the middle of its interval,
 * [|q|, |q| + 1) * 2**s quantisation steps.  Per band: step * 2**shift (a
 * power-of-two factor: exact, so single-layer streams get (|q| + 0.5) *
 * step bit for bit). */
static void dequantise_factors(const pj2k_header *h, int levels, const int *last, double *factor)
{
    const int per_level = (1 << h->naxes) - 1;
    for (int b = 0; b < 1 + levels * per_level; b++) {
        const int r = b ? 1 + (b - 1) / per_level : 0;
        factor[b] = ldexp((double)h->steps[b], h->layer_shift[last[r]][b]);
    }
}

/* The factors of dequantise, clamped for float32 work */
static void dequantise_factors_for(const pj2k_header *h, int levels, const int *last, int f32,
                                   double *factor)
{
    dequantise_factors(h, levels, last, factor);
    if (f32)   /* (a float32 step times 2**shift: exact in float32 unless beyond it) */
        for (int b = 0; b < 1 + levels * ((1 << h->naxes) - 1); b++)
            factor[b] = factor[b] < FLT_MAX ? factor[b] : FLT_MAX;
}

/* into float64, or with f32 into float32 (float32_reconstruction) */
void pj2k_dequantise(const pj2k_kernels *K, const pj2k_header *h, const layout *L, int levels,
                     const void *in, coef_kind kind, void *out, int f32, const int *last)
{
    double factor[PJ2K_MAX_BANDS];
    dequantise_factors_for(h, levels, last, f32, factor);
    const size_t real_size = f32 ? sizeof(float) : sizeof(double);
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        const uint8_t *src = (const uint8_t *)in + c * L->box * COEF_BYTES[kind];
        uint8_t *dst = (uint8_t *)out + c * L->box * real_size;
#define ROWS(FN, CT, RT) \
        FOR_EACH_BAND_ROW(L->dims, levels, h->naxes, \
                          K->FN((const CT *)src + at, (RT *)dst + at, nx, factor[sb->step_index]);)
        if (f32) {
            if (kind == COEF_I16) ROWS(dequantise_f32_i16, int16_t, float)
            else if (kind == COEF_I32) ROWS(dequantise_f32_i32, int32_t, float)
            else ROWS(dequantise_f32_i64, int64_t, float)
        } else {
            if (kind == COEF_I16) ROWS(dequantise_i16, int16_t, double)
            else if (kind == COEF_I32) ROWS(dequantise_i32, int32_t, double)
            else ROWS(dequantise_i64, int64_t, double)
        }
#undef ROWS
    }
}

/* The level, 1..levels, at which index i of an axis of length n lies in
 * a high half (Mallat layout), or levels + 1 in the low band. */
static int octave(size_t i, size_t n, int levels)
{
    if (i < pj2k_ceil_shift(n, levels)) return levels + 1;
    int l = levels;
    while (l > 1 && i >= pj2k_ceil_shift(n, l - 1)) l--;
    return l;
}

/* dequantise for values half as wide as the working type that lie in the
 * upper half of `real` itself (int32 in bytes [4n, 8n) of float64 work,
 * int16 in [2n, 4n) of float32 work): values are taken in memory order, so
 * the working value of element i, which covers the values of elements
 * 2i - n and 2i - n + 1, only ever overwrites values already taken; each
 * kernel call gets a piece whose input and output do not overlap.  The
 * decoder then needs no separate buffer of values (docs/DESIGN.md 35). */
#define DEQUANTISE_UPPER_HALF(NAME, CT, RT, KERNEL)                                         \
static void NAME(const pj2k_kernels *K, const pj2k_header *h, const layout *L, int levels,  \
                 RT *real, const double *factor)                                            \
{                                                                                           \
    const size_t n = L->elements, *d = L->dims;                                             \
    const CT *values = (const CT *)(const void *)((uint8_t *)real + sizeof(CT) * n);        \
    const int first = 3 - h->naxes;   /* box axes first..2 are transformed, bit a - first */ \
    for (size_t c = 0; c < L->planes * L->ncomp; c++)                                       \
        for (size_t z = 0; z < d[0]; z++)                                                   \
            for (size_t y = 0; y < d[1]; y++) {                                             \
                const int oz = octave(z, d[0], levels), oy = octave(y, d[1], levels);       \
                const size_t row = c * L->box + (z * d[1] + y) * d[2];                      \
                /* along x in memory order: the low part, then the high halves,             \
                 * coarsest first */                                                        \
                for (int ox = levels + 1; ox >= 1; ox--) {                                  \
                    const size_t from = ox > levels ? 0 : pj2k_ceil_shift(d[2], ox);        \
                    const size_t to = pj2k_ceil_shift(d[2], ox > levels ? levels : ox - 1); \
                    if (from >= to) continue;                                               \
                    int level = ox < oy ? ox : oy;                                          \
                    level = level < oz ? level : oz;                                        \
                    int b = 0;   /* the band's step index (pj2k_segment_bands' numbering) */     \
                    if (level <= levels) {                                                  \
                        int o = 0;                                                          \
                        if (ox == level) o |= 1 << (2 - first);                             \
                        if (oy == level && first <= 1) o |= 1 << (1 - first);              \
                        if (oz == level && first == 0) o |= 1;                              \
                        b = 1 + (levels - level) * ((1 << h->naxes) - 1) + (o - 1);         \
                    }                                                                       \
                    /* in pieces whose input lies above their output */                     \
                    for (size_t a = row + from, e = row + to; a < e;) {                     \
                        const size_t room = (n + a) / 2, stop = e < room ? e : room;        \
                        if (stop == a) {   /* the last element covers its own value: read first */ \
                            const CT q = values[a];                                         \
                            RT v;                                                           \
                            K->KERNEL(&q, &v, 1, factor[b]);                                \
                            real[a++] = v;                                                  \
                            continue;                                                       \
                        }                                                                   \
                        K->KERNEL(values + a, real + a, stop - a, factor[b]);               \
                        a = stop;                                                           \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
}
DEQUANTISE_UPPER_HALF(dequantise_upper_half_f64, int32_t, double, dequantise_i32)
DEQUANTISE_UPPER_HALF(dequantise_upper_half_f32, int16_t, float, dequantise_f32_i16)
#undef DEQUANTISE_UPPER_HALF

/* dequantise for int32 values where their float32 results go (float32 work
 * of values that needed int32): each row's values through a small copy,
 * so that the kernel's input and output never overlap. */
static void dequantise_same_place(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                                  int levels, float *real, const double *factor)
{
    enum { PIECE = 256 };
    int32_t piece[PIECE];
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        float *plane = real + c * L->box;
        FOR_EACH_BAND_ROW(L->dims, levels, h->naxes, {
            for (size_t i = 0; i < nx; i += PIECE) {
                const size_t k = nx - i < PIECE ? nx - i : PIECE;
                memcpy(piece, (const void *)(plane + at + i), k * sizeof *piece);
                K->dequantise_f32_i32(piece, plane + at + i, k, factor[sb->step_index]);
            }
        })
    }
}

/* Dequantise values of `kind` that lie within `real` itself (where
 * pj2k_in_place_offset puts them) into it: float32 or float64 work. */
void pj2k_dequantise_in_place(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                              int levels, void *real, int f32, coef_kind kind, const int *last)
{
    double factor[PJ2K_MAX_BANDS];
    dequantise_factors_for(h, levels, last, f32, factor);
    if (!f32) dequantise_upper_half_f64(K, h, L, levels, real, factor);
    else if (kind == COEF_I16) dequantise_upper_half_f32(K, h, L, levels, real, factor);
    else dequantise_same_place(K, h, L, levels, real, factor);
}

/* Where values of `kind` go within a working buffer of float32 (f32) or
 * float64 values that pj2k_dequantise_in_place fills from them, in bytes from
 * its start: int16 and int32 in the upper half of float32 and float64
 * work, int32 where its float32 results go; -1 for the rest (int64
 * values, and int16 in float64 work, which no stream takes). */
ptrdiff_t pj2k_in_place_offset(const layout *L, int f32, coef_kind kind)
{
    if (f32 && kind == COEF_I32) return 0;
    if (f32 ? kind == COEF_I16 : kind == COEF_I32)
        return (ptrdiff_t)(COEF_BYTES[kind] * L->elements);
    return -1;
}

/* Integer coefficients known only to shift s > 0 (segment r decoded through
 * layer last[r]): scaled back, plus the integer part of the interval's middle. */
#define RECONSTRUCT_PARTIAL(COEF, name)                                                  \
void name(const pj2k_header *h, const layout *L, int levels, COEF *coef, const int *last)        \
{                                                                                         \
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {                                   \
        COEF *v = coef + c * L->box;                                                      \
        FOR_EACH_BAND(L->dims, levels, h->naxes, {                                        \
            const int s = h->layer_shift[last[r_]][sb->step_index];                      \
            if (s && v[at]) {                                                             \
                const COEF m = (COEF)(((v[at] < 0 ? -v[at] : v[at]) << s) + ((((COEF)1 << s) - 1) >> 1)); \
                v[at] = v[at] < 0 ? -m : m;                                               \
            }                                                                             \
        })                                                                                \
    }                                                                                     \
}
RECONSTRUCT_PARTIAL(int32_t, pj2k_reconstruct_partial_i32)
RECONSTRUCT_PARTIAL(int64_t, pj2k_reconstruct_partial_i64)
