/* The codestream stage's shared parts (not public): coefficient kinds, the
 * dtypes' traits, the array <-> component layout, a segment's subbands and
 * the prepared encoder's state, for header.c (the header's bytes), layout.c,
 * quantise.c, statistics.c (the rate model's counts) and codestream.c (the
 * encode and decode drivers).  Byte layout: docs/FORMAT.md. */
#ifndef PJ2K_CODESTREAM_H
#define PJ2K_CODESTREAM_H

#include "internal.h"

/* ---- dtypes ---------------------------------------------------------------- */
static const size_t WORK_SIZE[4] = {4, 8, 8, 2};   /* bytes, by PJ2K_WORK_* */

/* Coefficient buffers: int16 for lossless 8-bit data (half the memory; any
 * value that does not fit sends the work back to int32, which gives the same
 * values), int32 for 16-bit and for lossy values (int64 when one needs it),
 * int64 for 32-bit and error-bounded. */
typedef enum { COEF_I16 = 0, COEF_I32 = 1, COEF_I64 = 2 } coef_kind;
static const size_t COEF_BYTES[3] = {2, 4, 8};
static const int COEF_WORK[3] = {PJ2K_WORK_I16, PJ2K_WORK_I32, PJ2K_WORK_I64};
#define BY_KIND(kind, CALL)                                                   \
    do {                                                                      \
        switch (kind) {                                                       \
        case COEF_I16: CALL(i16, int16_t); break;                            \
        case COEF_I32: CALL(i32, int32_t); break;                            \
        default: CALL(i64, int64_t); break;                                   \
        }                                                                     \
    } while (0)

static const struct { unsigned size, bits, is_float, is_signed; } DTYPE_INFO[PJ2K_NUM_DTYPES] = {
    {1, 8, 0, 0}, {1, 8, 0, 1}, {2, 16, 0, 0}, {2, 16, 0, 1}, {4, 32, 0, 0}, {4, 32, 0, 1},
    {4, 32, 1, 1}, {8, 64, 1, 1}};

/* An integer dtype's values: [*lo, *hi] (for a float dtype, named in a
 * forged header, those of an integer of its width: no shift by 64) */
static inline void dtype_range(pj2k_dtype dtype, int64_t *lo, int64_t *hi)
{
    const unsigned bits = DTYPE_INFO[dtype].bits;
    const uint64_t top = (uint64_t)1 << (bits - 1);   /* (bits <= 64) */
    *hi = DTYPE_INFO[dtype].is_signed ? (int64_t)(top - 1) : (int64_t)(2 * top - 1);
    *lo = DTYPE_INFO[dtype].is_signed ? -*hi - 1 : 0;
}

/* Lossless streams of version 7 state their value gaps (possibly none). */
static inline int has_gap_field(int version, pj2k_wavelet wavelet)
{
    return version >= 7 && pj2k_lossless(wavelet);
}

/* Version 9 states the data's extent and the fill sample of the padding
 * beyond it (docs/FORMAT.md 1). */
static inline int has_fill_field(int version) { return version >= 9; }
/* Version 10 adds the length of the nodata mask that opens the first piece. */
static inline int has_mask_field(int version) { return version >= 10; }
/* Where the first piece's coefficients start: after the header and the mask. */
static inline uint64_t coded_start(const pj2k_header *h) { return h->header_length + h->mask_length; }

static inline int band_count(int levels, int naxes) { return 1 + levels * ((1 << naxes) - 1); }

/* Coefficient limits per mode: the decoder rejects larger exponents, and the
 * inverse transform clamps to `bound`, which legitimate data never reaches. */
static inline void coefficient_limits(const pj2k_header *h, int *max_exp, int64_t *bound)
{
    *max_exp = pj2k_max_exponent(h->dtype, h->wavelet);   /* (h is checked: never -1) */
    *bound = (int64_t)1 << *max_exp;
}

/* Lossy chunks of 8- and 16-bit integer samples work in float32: the
 * encoder's coefficients, and from version 8 the decoder's reconstruction
 * (docs/FORMAT.md 4), so that a PSNR trial's float32 reconstruction is the
 * decode's. */
static inline int float32_work(const pj2k_header *h)
{
    return h->wavelet == PJ2K_WAVELET_97 && DTYPE_INFO[h->dtype].size <= 2 &&
           !DTYPE_INFO[h->dtype].is_float;
}
static inline int float32_reconstruction(const pj2k_header *h)
{
    return h->version >= 8 && float32_work(h);
}

/* ---- header.c ---------------------------------------------------------------- */
/* Version 1 has no layer fields and one piece per resolution; version 2 has
 * a layer count (2..16) and shift table; version 3 a layer count (1..16) and,
 * with more than one layer, the shift table; version 6 adds the 9/7-M
 * levels; version 7 the value gaps of lossless streams (a count, and 4
 * bytes per gap). */
uint32_t pj2k_header_length_of(int version, int ndim, int naxes, int levels,
                               pj2k_wavelet wavelet, int layers, int ngaps);
/* Structural checks shared by the encoder's parameters and parsed headers. */
pj2k_status pj2k_check_structure(const pj2k_header *h);
/* Per band, layer shifts never increase and end at 0; the first leaves room
 * for the coefficients' largest exponent. */
int pj2k_valid_layers(const pj2k_header *h);
/* The header's bytes (h->header_length of them, its checksum last) */
void pj2k_write_header(const pj2k_header *h, uint8_t *buf);

/* ---- array <-> components ------------------------------------------------- *
 * The working buffer holds planes x components x box, where the planes run over
 * the axes neither transformed nor colour (in order), the components over the
 * colour axis, and the box over the transformed axes (padded to 3 with 1s). */
typedef struct {
    int ndim;
    uint64_t shape[PJ2K_MAX_NDIM];  /* array shape at this level */
    int perm[PJ2K_MAX_NDIM];        /* array axes in working-buffer order */
    size_t planes, ncomp, dims[3], box, elements;
} layout;
void pj2k_make_layout(const pj2k_header *h, int level, layout *L);
/* Version 9: the padding beyond the data's extent, at `level`, set to the
 * fill sample in the array of L's shape (pj2k_params.fill); version 10 also
 * the nodata samples of the mask that `buf` (the stream) holds
 * (pj2k_params.nodata_mask). */
/* Version 10: the nodata mask of the data's extent (h's fill_extent; one
 * byte per sample in C order, non-zero: nodata), coded into `out`. */
pj2k_status pj2k_mask_write(const pj2k_header *h, const uint8_t *mask, pj2k_bytes *out);
pj2k_status pj2k_restore_fill(const pj2k_header *h, const layout *L, int level, const uint8_t *buf,
                              void *array);
/* Visit the C-contiguous array and the working buffer together, one run
 * along the last working axis at a time: visit(ctx, work run, array run,
 * run length, the run's stride in the array). */
typedef void (*run_visit)(void *ctx, uint8_t *work, uint8_t *array, size_t run, ptrdiff_t stride);
void pj2k_for_each_run(const layout *L, void *work, size_t work_size, void *array,
                       size_t item_size, run_visit visit, void *ctx);
/* Copy between the C-contiguous array and the working buffer. */
void pj2k_permuted_copy(const layout *L, void *work, size_t work_size, void *array,
                        size_t item_size, pj2k_row_fn fn, int to_work);
/* Whether the array's last axis is the colour axis and its second to last
 * the last working axis: each run of the array is then a run of triples. */
static inline int interleaved_colour(const pj2k_header *h, const layout *L)
{
    return h->colour_axis == h->ndim - 1 && L->perm[h->ndim - 1] == h->ndim - 2;
}
/* pj2k_permuted_copy for interleaved colour: each run of triples to or from its
 * three components at once (fn: the ICT's kernels, either way). */
void pj2k_copy_interleaved_colour(const layout *L, void *work, size_t work_size, void *array,
                                  size_t item_size, pj2k_triples_fn fn);

/* ---- subbands of one segment --------------------------------------------- *
 * Segment 0 is the low band after `levels` levels; segment r >= 1 holds the
 * high bands of level levels - r + 1 (coarsest first).  Box axis 3-naxes+i is
 * transformed axis i; orientation bit i set means high-pass along it. */
typedef struct {
    pj2k_band band;
    size_t offset;      /* element offset of the band in its component */
    int step_index;
} segment_band;
/* The non-empty bands of segment r; with `parents` (version 3) each high band
 * of a segment r >= 2 knows its parent in segment r - 1. */
int pj2k_segment_bands(const size_t dims[3], int levels, int r, int naxes, int parents,
                       segment_band *out);
/* Every row of every band of a component (segments 0..levels): BODY sees
 * `sb` (the band), `r_` (its segment), `at` (the row's first element) and
 * `nx` (its length). */
#define FOR_EACH_BAND_ROW(dims, levels, naxes, BODY)                            \
    for (int r_ = 0; r_ <= (levels); r_++) {                                    \
        segment_band sbs_[7];                                                   \
        const int nb_ = pj2k_segment_bands((dims), (levels), r_, (naxes), 0, sbs_);  \
        for (int b_ = 0; b_ < nb_; b_++) {                                      \
            const segment_band *sb = &sbs_[b_];                                 \
            const size_t nx = sb->band.n[2];                                    \
            for (size_t z = 0; z < sb->band.n[0]; z++)                          \
                for (size_t y = 0; y < sb->band.n[1]; y++) {                    \
                    const size_t at = sb->offset + z * sb->band.stride[0] +     \
                                      y * sb->band.stride[1];                   \
                    BODY                                                        \
                }                                                               \
        }                                                                       \
    }
/* The same, element by element: `at` is the element */
#define FOR_EACH_BAND(dims, levels, naxes, BODY)                                \
    FOR_EACH_BAND_ROW(dims, levels, naxes, {                                    \
        const size_t row_at_ = at;                                              \
        for (size_t x = 0; x < nx; x++) {                                       \
            const size_t at = row_at_ + x;                                      \
            BODY                                                                \
        }                                                                       \
    })

/* ---- quantise.c ------------------------------------------------------------- */
/* pj2k_band_norms for the chunk a header describes. */
int pj2k_header_band_norms(const pj2k_header *h, double *norms);
/* Each band's step is the base step over its synthesis norm (norms: from
 * pj2k_header_band_norms), so that every band adds the same error per
 * coefficient. */
void pj2k_compute_steps(pj2k_header *h, const double *norms, double base_step);
/* Quantised values go into the prepared kind (int16 for 8-bit samples,
 * else int32) unless one needs more: PJ2K_NARROW_OVERFLOW asks the caller
 * to widen the buffer (widen). */
pj2k_status pj2k_quantise(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                          const void *in, int in_f32, void *out, coef_kind kind);
/* 9/7 values (through layer last[r] of segment r) into float64, or with f32
 * into float32 (float32_reconstruction) */
void pj2k_dequantise(const pj2k_kernels *K, const pj2k_header *h, const layout *L, int levels,
                     const void *in, coef_kind kind, void *out, int f32, const int *last);
/* Dequantise values of `kind` that lie within `real` itself (where
 * pj2k_in_place_offset puts them) into it: float32 or float64 work. */
void pj2k_dequantise_in_place(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                              int levels, void *real, int f32, coef_kind kind, const int *last);
/* Where values of `kind` go within a working buffer of float32 (f32) or
 * float64 values that pj2k_dequantise_in_place fills from them, in bytes from
 * its start: int16 and int32 in the upper half of float32 and float64
 * work, int32 where its float32 results go; -1 for the rest (int64
 * values, and int16 in float64 work, which no stream takes). */
ptrdiff_t pj2k_in_place_offset(const layout *L, int f32, coef_kind kind);
/* Integer coefficients known only to shift s > 0 (segment r decoded through
 * layer last[r]): scaled back, plus the integer part of the interval's middle. */
void pj2k_reconstruct_partial_i32(const pj2k_header *h, const layout *L, int levels, int32_t *coef,
                                  const int *last);
void pj2k_reconstruct_partial_i64(const pj2k_header *h, const layout *L, int levels, int64_t *coef,
                                  const int *last);

/* ---- the prepared encoder (codestream.c; statistics.c reads it) ------------- */
/* The encoder in two stages: pj2k_prepare loads and transforms the samples
 * once; pj2k_encode_prepared quantises (9/7) and entropy-codes them, as often
 * as a rate search or a layer probe needs. */
struct pj2k_prepared {
    pj2k_header h;      /* from the parameters; steps, layers and pieces per encode */
    layout L;
    int lossy;
    int choose_m97;     /* m97_levels is the encoder's choice (choose_m97_levels) */
    int close_gaps;     /* pj2k_params.close_gaps, for a lossless wavelet */
    coef_kind kind;
    void *coef;         /* lossless and error-bounded: the coefficients; 9/7: quantised ones */
    void *real;         /* 9/7: the coefficients, */
    int real_f32;       /* in float32 (8- and 16-bit samples: ample precision) or float64 */
    int coef_in_real;   /* coef lies in real's allocation, after the coefficients */
    const float *bit_cost;  /* RD-optimised quantisation's cost table: the caller's, */
    float *own_bit_cost;    /* or this one, made at its first use */
    int coded;          /* coef holds the values of the last encode, whose header is */
    pj2k_header coded_h;
    double coded_rdo;   /* and whose RD-optimised quantisation had this strength (0: none) */
    pj2k_bytes mask;    /* version 10: the coded nodata mask that opens every stream */
    /* 9/7: each band's synthesis norm (pj2k_header_band_norms), made once: every
     * trial's steps, the histogram and the context counts read them (each
     * is naxes * levels * 2 impulse responses: 5% of a 128^2 ratio search
     * when made per call) */
    double norms[PJ2K_MAX_BANDS];
    /* pj2k_prepared_reconstruct's working buffers, kept for the next call:
     * a search reconstructs every trial, and a fresh chunk-sized buffer
     * costs its first touch (the kernel zeroes every page: about a quarter
     * of a 9/7 reconstruction) */
    void *scratch_coef;   /* a copy of coef, in the kind scratch_kind */
    coef_kind scratch_kind;
    double *scratch_real; /* dequantised or scaled values */
    size_t scratch_real_bytes;
};

#endif
