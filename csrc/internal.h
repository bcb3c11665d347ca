/* Declarations shared between the stages of the C core (not public). */
#ifndef PJ2K_INTERNAL_H
#define PJ2K_INTERNAL_H

#include "progressive_j2k.h"
#include <math.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define PJ2K_NOINLINE __attribute__((noinline))
#define PJ2K_ALWAYS_INLINE __attribute__((always_inline))
#define PJ2K_MAYBE_UNUSED __attribute__((unused))
#else
#define PJ2K_NOINLINE
#define PJ2K_ALWAYS_INLINE
#define PJ2K_MAYBE_UNUSED
#endif

/* ---- geometry ------------------------------------------------------------
 * A component is a contiguous box of dims (z, y, x); unused leading dims are 1.
 * Level l of the dyadic decomposition acts on the top corner of extent
 * ceil(dims / 2**(l-1)); its low half is ceil(extent / 2), its high half
 * floor(extent / 2) (Mallat layout, low part first along each axis). */
static inline size_t pj2k_ceil_shift(size_t n, int k) {
    return k >= 64 ? (n > 0) : (n + (((size_t)1 << k) - 1)) >> k;
}

/* The rows (along the last axis) of an array of `shape` in C order, each
 * with the flat index, in the array one level coarser (halved, rounded up,
 * along the axes `halve` marks), of its first sample's cell: the nodata
 * mask's levels (layout.c) and the fill's pyramid (inpaint.c) walk them. */
typedef struct {
    int last;
    const size_t *shape;
    size_t at[PJ2K_MAX_NDIM];       /* the row's index along the other axes */
    size_t stride[PJ2K_MAX_NDIM];   /* of the coarser array */
    unsigned halve[PJ2K_MAX_NDIM];
} pj2k_rows_walk;

static inline void pj2k_walk_start(pj2k_rows_walk *w, int ndim, const size_t *shape,
                                   const unsigned *halve)
{
    w->last = ndim - 1;
    w->shape = shape;
    size_t s = 1;
    for (int a = w->last; a >= 0; a--) {
        w->at[a] = 0;
        w->halve[a] = halve[a];
        w->stride[a] = s;
        s *= halve[a] ? (shape[a] + 1) / 2 : shape[a];
    }
}

static inline size_t pj2k_walk_parent(const pj2k_rows_walk *w)
{
    size_t p = 0;
    for (int a = 0; a < w->last; a++) p += (w->at[a] >> w->halve[a]) * w->stride[a];
    return p;
}

static inline void pj2k_walk_next(pj2k_rows_walk *w)
{
    for (int a = w->last - 1; a >= 0; a--) {
        if (++w->at[a] < w->shape[a]) return;
        w->at[a] = 0;
    }
}

/* Whether n bytes are all zero bits (+0.0 for floats, not -0.0): a line of
 * them lifts to itself in every wavelet, so the transforms skip it.  Stops
 * at the first non-zero 64-byte block (usually the first). */
static inline int pj2k_zero_bits(const void *p, size_t n)
{
    const unsigned char *c = (const unsigned char *)p;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t acc = 0;
        for (int k = 0; k < 8; k++) {
            uint64_t v;
            memcpy(&v, c + i + 8 * k, 8);
            acc |= v;
        }
        if (acc) return 0;
    }
    unsigned char rest = 0;
    for (; i < n; i++) rest |= c[i];
    return rest == 0;
}

/* ---- transform.c ---------------------------------------------------------- */
/* Lines lifted side by side along axes 0 and 1: the more, the more of each
 * cache line and page a strided gather uses (docs/DESIGN.md 24), so
 * PJ2K_LANES_MAX; chunks too small for a line of those lanes to stay
 * within an eighth of the box get PJ2K_LANES_MIN, which keeps their peak
 * memory as it was.  (The lifting buffer, pj2k_transform_tmp_elems, holds
 * that line and the 9/7 sweep's six more rows: a 512^2 chunk, exactly at
 * the rule's edge, keeps its 64 lanes for 3 KB more.) */
#define PJ2K_LANES_MIN 16
#define PJ2K_LANES_MAX 64
static inline size_t pj2k_lanes(const size_t dims[3])
{
    const size_t across = dims[0] > dims[1] ? dims[0] : dims[1];
    const size_t box = dims[0] * dims[1] * dims[2];
    return box / 8 >= across * PJ2K_LANES_MAX ? PJ2K_LANES_MAX : PJ2K_LANES_MIN;
}
size_t pj2k_transform_tmp_elems(const size_t dims[3]);
/* Where sample t of a lifted line lies in Mallat order (its nlow low
 * samples first, then the high ones). */
static inline size_t pj2k_mallat(size_t t, size_t nlow) { return (t & 1) ? nlow + t / 2 : t / 2; }
/* L2 norm of the synthesis basis function of a 1-D 9/7 subband on an axis
 * of `length` samples: level 1..levels, high = 0 (low-pass at that level) or
 * 1 (high-pass); -1 if out of memory. */
double pj2k_synthesis_norm97(size_t length, int level, int high);

/* valuemap.c (lossless streams, version 7): close the longest runs of
 * sample values that none of the n values (of `width` bytes, within [lo, hi],
 * an 8- or 16-bit dtype's range) takes, in place, and record them in h
 * (ngaps, gap_after, gap_length); open them again in decoded values,
 * clamped to [lo, hi]; whether h's gaps are valid for a dtype's [lo, hi]. */
pj2k_status pj2k_close_value_gaps(pj2k_header *h, void *values, int width, size_t n,
                                  int64_t lo, int64_t hi);
void pj2k_open_value_gaps(const pj2k_header *h, void *values, int width, size_t n,
                          int64_t lo, int64_t hi);
int pj2k_value_gaps_valid(const pj2k_header *h, int64_t lo, int64_t hi);

/* transform.c: synthesis norm of every band of a chunk whose transformed
 * axes have these lengths (bands numbered like the 9/7 steps); 0 on OOM. */
int pj2k_band_norms(const uint64_t *lengths, int naxes, int levels, double *norms);

/* ---- kernels.c, kernels_avx2.c: the per-sample loops, one table per
 * instruction set (the same C in each, the same results) ------------------- */
/* working types of the conversions, the first index of load and store */
enum { PJ2K_WORK_I32 = 0, PJ2K_WORK_I64 = 1, PJ2K_WORK_F64 = 2, PJ2K_WORK_I16 = 3 };
enum { PJ2K_QUANTISE_WIDER = 1, PJ2K_QUANTISE_HUGE = 2 };
typedef void (*pj2k_row_fn)(void *dst, const void *src, size_t n, ptrdiff_t stride);
/* n interleaved triples of the array (a colour axis innermost) to or from
 * three work rows (the direction and types are the kernel's) */
typedef void (*pj2k_triples_fn)(void *w0, void *w1, void *w2, void *array, size_t n);
/* A PSNR trial's float32 reconstruction against the original samples
 * (pj2k_prepared_trial_error): adds the squared error of the values as the
 * decoder rounds them to *squared, leaving out those whose byte in `skip`
 * (NULL: none; strided as the array) is non-zero: nodata. */
typedef void (*pj2k_trial_fn)(const float *work, const void *array, const uint8_t *skip, size_t n,
                              ptrdiff_t stride, double *squared);
/* In a reversible transform's `alt` levels: the 5/3 levels round their
 * predict to nearest, (s[i] + s[i+1] + 1) >> 1, instead of down (wavelets 3, 4). */
#define PJ2K_LIFT_ROUNDED (1u << 16)

/* The error-bounded wavelets: samples prequantised to multiples of a scale. */
static inline int pj2k_prequantised(int wavelet)
{
    return wavelet == PJ2K_WAVELET_53_QUANTISED || wavelet == PJ2K_WAVELET_53R_QUANTISED;
}

/* The lossless wavelets: the samples themselves, transformed reversibly. */
static inline int pj2k_lossless(int wavelet)
{
    return wavelet == PJ2K_WAVELET_53 || wavelet == PJ2K_WAVELET_53R;
}

/* The reversible transform's flags for a wavelet: PJ2K_LIFT_ROUNDED for the
 * rounded 5/3 (wavelets 3 and 4). */
static inline unsigned pj2k_lift_rounding(int wavelet)
{
    return wavelet == PJ2K_WAVELET_53R || wavelet == PJ2K_WAVELET_53R_QUANTISED ? PJ2K_LIFT_ROUNDED : 0u;
}

/* A context of the adaptive binary model (below): the probability of a 0
 * and the shift of its adaptation rate. */
typedef struct { uint16_t p, shift; } pj2k_prob;
_Static_assert(sizeof(pj2k_prob) == 4, "cap_rates reads a context as one 32-bit word");

typedef struct {
    const char *name;
    /* Wavelets over a box.  The reversible ones lift level l with 9/7-M
     * where bit l - 1 of `alt` is set, else with 5/3 (whose predict rounds
     * to nearest where `alt` has PJ2K_LIFT_ROUNDED).  The int16 ones (8-bit
     * data, lifted in int32) return 0 if a value does not fit int16 (the
     * buffer is then void; redo in int32, which gives the same values
     * wherever int16 suffices).  Inverses clamp every reconstructed value to
     * [-bound, bound], so hostile coefficients cannot overflow the integer
     * lifting (legitimate data never reaches the bound). */
    int (*fwd_rev_i16)(int16_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp);
    void (*fwd_rev_i32)(int32_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp);
    void (*fwd_rev_i64)(int64_t *buf, const size_t dims[3], int levels, unsigned alt, int64_t *tmp);
    void (*fwd97_f64)(double *buf, const size_t dims[3], int levels, double *tmp);
    /* The same in float32 (the lossy encoder's buffer for 8- and 16-bit
     * samples: half the memory and traffic, twice the lanes) */
    void (*fwd97_f32)(float *buf, const size_t dims[3], int levels, float *tmp);
    int (*inv_rev_i16)(int16_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp,
                       int64_t bound);
    void (*inv_rev_i32)(int32_t *buf, const size_t dims[3], int levels, unsigned alt, int32_t *tmp,
                        int64_t bound);
    void (*inv_rev_i64)(int64_t *buf, const size_t dims[3], int levels, unsigned alt, int64_t *tmp,
                        int64_t bound);
    void (*inv97_f64)(double *buf, const size_t dims[3], int levels, double *tmp, double bound);
    /* the lossy reconstruction of 8- and 16-bit samples from version 8 (and
     * a PSNR trial's: pj2k_prepared_trial_error) */
    void (*inv97_f32)(float *buf, const size_t dims[3], int levels, float *tmp, float bound);
    /* Colour transforms over three component planes of `count` samples; the
     * int16 inverse returns 0 if a result does not fit (redo it in int32). */
    void (*rct_fwd_i16)(int16_t *c0, int16_t *c1, int16_t *c2, size_t count);
    void (*rct_fwd_i32)(int32_t *c0, int32_t *c1, int32_t *c2, size_t count);
    void (*rct_fwd_i64)(int64_t *c0, int64_t *c1, int64_t *c2, size_t count);
    int (*rct_inv_i16)(int16_t *c0, int16_t *c1, int16_t *c2, size_t count);
    int (*rct_inv_i32)(int32_t *c0, int32_t *c1, int32_t *c2, size_t count);
    int (*rct_inv_i64)(int64_t *c0, int64_t *c1, int64_t *c2, size_t count);
    void (*ict_fwd)(double *c0, double *c1, double *c2, size_t count);
    void (*ict_fwd_f32)(float *c0, float *c1, float *c2, size_t count);   /* computed in double */
    void (*ict_inv)(double *c0, double *c1, double *c2, size_t count);
    void (*ict_inv_f32)(float *c0, float *c1, float *c2, size_t count);   /* computed in double */
    /* Lossy reconstruction of n values q: sign(q) (|q| + 0.5) f, and 0 for 0
     * (|q| is below 2**62, so the negation cannot overflow). */
    void (*dequantise_i16)(const int16_t *q, double *o, size_t n, double f);
    void (*dequantise_i32)(const int32_t *q, double *o, size_t n, double f);
    void (*dequantise_i64)(const int64_t *q, double *o, size_t n, double f);
    void (*dequantise_f32_i16)(const int16_t *q, float *o, size_t n, double f);   /* in float32 */
    void (*dequantise_f32_i32)(const int32_t *q, float *o, size_t n, double f);
    void (*dequantise_f32_i64)(const int64_t *q, float *o, size_t n, double f);
    /* Lossy quantisation of n coefficients x: q = sign(x) floor(|x| * inv),
     * inv = pj2k_reciprocal(step);
     * returns 0, or PJ2K_QUANTISE_WIDER / _HUGE (below) if some value does
     * not fit: retry wider / give up (step too small, NaN or inf). */
    int (*quantise_i32)(const double *x, int32_t *q, size_t n, double step);
    int (*quantise_i64)(const double *x, int64_t *q, size_t n, double step);
    int (*quantise_f32_i16)(const float *x, int16_t *q, size_t n, double step);   /* 8-bit samples */
    int (*quantise_f32_i32)(const float *x, int32_t *q, size_t n, double step);
    int (*quantise_f32_i64)(const float *x, int64_t *q, size_t n, double step);
    /* Rows between a dtype (strided) and a working type (contiguous). */
    pj2k_row_fn load[4][PJ2K_NUM_DTYPES], store[4][PJ2K_NUM_DTYPES];
    pj2k_row_fn load_f32[PJ2K_NUM_DTYPES];   /* into float32 (the lossy encoder's buffer) */
    pj2k_triples_fn load_ict_triples_f32[PJ2K_NUM_DTYPES];   /* interleaved colour, with the ICT */
    pj2k_triples_fn store_ict_triples_f64[PJ2K_NUM_DTYPES];  /* and back, with the inverse ICT */
    /* float32 work back to 8- and 16-bit dtypes (version 8's lossy decoder;
     * the other dtypes' entries are never called) */
    pj2k_row_fn store_f32[PJ2K_NUM_DTYPES];
    pj2k_triples_fn store_ict_triples_f32[PJ2K_NUM_DTYPES];
    /* a PSNR trial's float32 reconstruction against the array (8- and 16-bit
     * integer dtypes; the others' entries are never called) */
    pj2k_trial_fn trial_error_f32[PJ2K_NUM_DTYPES];
    /* sum of squared differences of two arrays of one dtype (pj2k_squared_error) */
    double (*squared_error[PJ2K_NUM_DTYPES])(const void *a, const void *b, size_t n);
    /* The rate model's histogram: n values' bins against top_bin (see
     * kernels_impl.h); returns the largest key, -1 for none. */
    int32_t (*histogram_bins_f32)(const float *x, size_t n, double norm, int32_t top_bin,
                                  int32_t last_bin, int32_t *bins);
    int32_t (*histogram_bins_f64)(const double *x, size_t n, double norm, int32_t top_bin,
                                  int32_t last_bin, int32_t *bins);
    /* Error-bounded prequantisation of one dtype's samples, in place (n
     * float64 in, their int64 out): q = round(x / scale) nudged to meet the
     * bound; 0 if some cannot. */
    int (*prequantise[PJ2K_NUM_DTYPES])(void *values, size_t n, double scale, double bound);
    /* The model's rates at a new piece: every context's shift down to at
     * most `cap` (below 2**15), its probability kept. */
    void (*cap_rates)(pj2k_prob *probs, size_t count, uint16_t cap);
} pj2k_kernels;

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define PJ2K_HAVE_AVX2 1
extern const pj2k_kernels pj2k_kernels_avx2;
#else
#define PJ2K_HAVE_AVX2 0
#endif
extern const pj2k_kernels pj2k_kernels_portable;
const pj2k_kernels *pj2k_kernels_select(void);

/* transform.c: the summed bit lengths of the high bands of `block` (a box
 * of dims, overwritten; int64 if `wide`, else int32) after one level of 5/3
 * (alt 0) or 9/7-M (alt 1); tmp as the lifting's. */
uint64_t pj2k_high_band_bits(const pj2k_kernels *K, void *block, int wide, const size_t dims[3],
                             unsigned alt, void *tmp);

/* Internal status: a value does not fit a narrow (int16) buffer; the caller
 * redoes the work with int32 buffers.  Never returned by the public API. */
#define PJ2K_NARROW_OVERFLOW ((pj2k_status)100)

/* ---- entropy.c ------------------------------------------------------------ */
typedef struct {        /* growable output buffer */
    uint8_t *data;
    size_t length, capacity;
    int failed;         /* an allocation failed; data is incomplete */
} pj2k_bytes;
int pj2k_bytes_reserve(pj2k_bytes *b, size_t extra);

typedef struct {
    pj2k_bytes *out;
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t cache_size;
} pj2k_rc_encoder;

typedef struct {
    const uint8_t *data;
    size_t length, pos;
    uint32_t range, code;
    int overrun;        /* the coder asked for bytes beyond `length` */
} pj2k_rc_decoder;

/* Adaptive binary context model.  Two rule sets share it: version 3 to 8
 * streams keep a 16-bit probability of a 0 and the shift of its adaptation
 * rate per context (the rate starts fast and settles), versions 1 and 2
 * ("legacy", decoded only) a 12-bit probability with a fixed rate. */
#define PJ2K_RUN_MIN_WIDTH 16  /* version 5: narrower bands code no zero runs (no flag) */
#define PJ2K_CLASSES 4      /* 0: low band residual, 1..3: high along 1..3 axes */
#define PJ2K_MAG_CTX 32     /* quantised neighbourhood magnitude */
#define PJ2K_EXP_POS 24     /* unary positions with their own probability */
#define PJ2K_MAX_EXP 63
#define PJ2K_MANTISSA_CTX 3 /* first mantissa bit: by neighbourhood vs exponent */

/* Neighbourhood magnitude sum -> context: two steps per octave, 0 for s = 0
 * (branch-free: the sums are below 2**63, so s << 1 cannot overflow). */
static inline unsigned magnitude_context(uint64_t s)
{
    const unsigned b = 63u - (unsigned)__builtin_clzll(s | 1u);   /* floor(log2 s) */
    const unsigned half = (unsigned)((s << 1) >> b) & 1u;          /* the bit below it */
    const unsigned c = (2 * b + half + 1) & -(unsigned)(s != 0);
    return c < PJ2K_MAG_CTX ? c : PJ2K_MAG_CTX - 1;
}

/* a + b, saturated at 0xFFFF: a chain of these over non-negative terms
 * gives the saturated total (once a partial sum saturates, the total
 * would too), in 16-bit lanes the vectoriser packs twice as densely. */
static inline uint16_t pj2k_sat_add16(uint16_t a, uint16_t b)
{
    const uint16_t s = (uint16_t)(a + b);
    return s < a ? 0xFFFF : s;
}

static inline unsigned bit_length(uint64_t v) { return v ? 64u - (unsigned)__builtin_clzll(v) : 0u; }

typedef struct {
    struct {
        pj2k_prob exponent[PJ2K_CLASSES][PJ2K_MAG_CTX][PJ2K_EXP_POS];
        pj2k_prob mantissa[PJ2K_CLASSES][PJ2K_MAX_EXP + 1][PJ2K_MANTISSA_CTX];
        pj2k_prob mantissa2[PJ2K_CLASSES][PJ2K_MAX_EXP + 1][2];   /* by the first bit */
        pj2k_prob sign[PJ2K_CLASSES][27];   /* by the W, N and colour signs */
        pj2k_prob refine[PJ2K_CLASSES][16];  /* first refinement bit by bit length */
        pj2k_prob run[PJ2K_CLASSES][2];      /* version 5: is a quiet group not all zero? by the row's
                                                previous quiet group (1: all zero, or none) */
        pj2k_prob run_first[PJ2K_CLASSES][3]; /* version 5: in a broken run, is value k non-zero? */
        pj2k_prob band_runs[PJ2K_CLASSES];   /* version 5: does the band code zero runs? */
    } prob;
    /* scratch for the neighbourhood of the row being coded: saturated
     * magnitudes and signs of the previous and current rows, each padded by
     * one zero on both sides, the parent magnitudes, the rows' context sums
     * without W and the colour neighbours' signs; 7 x (widest band + 2)
     * entries, set by the caller */
    uint16_t *rows;
    int version;        /* the format version whose rules apply (pj2k_model_reset) */
    /* the kernel table's rate cap, picked at the reset (one pick per
     * stream, not one per piece) */
    void (*cap_rates)(pj2k_prob *probs, size_t count, uint16_t cap);
} pj2k_model;
/* seven rows of width + 2, then (version 5) a bit per group of four, as
 * 64-bit words aligned to 8 bytes */
#define PJ2K_MODEL_ROWS(width) (7 * ((width) + 2) + 4 * (((width) + 255) / 256 + 1) + 4)

/* The model at the start of a stream's first piece under the rules of format
 * `version` (before version 4: of every piece); version 4 carries it from
 * piece to piece (in stream order, so every prefix still decodes), with
 * pj2k_model_next_piece in between. */
void pj2k_model_reset(pj2k_model *m, int version);
void pj2k_model_next_piece(pj2k_model *m);
void pj2k_rc_encoder_init(pj2k_rc_encoder *e, pj2k_bytes *out);
void pj2k_rc_encoder_finish(pj2k_rc_encoder *e);
void pj2k_rc_decoder_init(pj2k_rc_decoder *d, const uint8_t *data, size_t length);
/* Version 10's nodata mask: a sequence of bits coded as runs.  A writer
 * takes bits (pj2k_runs_put) and is freed by pj2k_runs_finish, which codes
 * the last run and reports a failed allocation of `out`; a reader gives
 * them back (pj2k_runs_get: 0 or 1, -1 where the stream is damaged or
 * short) until pj2k_runs_free.  NULL: no memory. */
typedef struct pj2k_runs pj2k_runs;
pj2k_runs *pj2k_runs_writer(pj2k_bytes *out);
void pj2k_runs_put(pj2k_runs *r, unsigned bit);
pj2k_status pj2k_runs_finish(pj2k_runs *r);
pj2k_runs *pj2k_runs_reader(const uint8_t *data, size_t length);
int pj2k_runs_get(pj2k_runs *r);
void pj2k_runs_free(pj2k_runs *r);

/* A band: a (z, y, x) extent inside a component buffer with element strides. */
typedef struct {
    size_t n[3];
    ptrdiff_t stride[3];
    int cls;            /* context class, see PJ2K_CLASSES */
    /* Version 3 contexts (all 0 otherwise).  The parent is the band of the
     * same orientation one level coarser (coded in an earlier segment): child
     * (z, y, x) sees parent (z >> ps[0], y >> ps[1], x >> ps[2]), clamped to
     * pn.  The sibling is the same band of the previous colour component
     * (coded just before in the same piece). */
    ptrdiff_t parent_offset, sibling_offset;   /* from this band's base, in elements */
    size_t pn[3];
    unsigned ps[3];
} pj2k_band;

/* The lossy quantiser's 1 / step (a product per value instead of a
 * division): rounded so that step * inv >= 1 exactly, so that |c| * inv is
 * never below |c| / step and a value of exactly k steps quantises to k, where
 * the nearest reciprocal can fall an ulp short (49 * (1 / 49) < 1). */
static inline double pj2k_reciprocal(double step)
{
    const double inv = 1.0 / step;
    return fma(step, inv, -1.0) < 0.0 ? nextafter(inv, INFINITY) : inv;
}

/* The lossy encoder's unquantised coefficients are float32 (8- and 16-bit
 * samples) or float64: the size of one, and element i as a double. */
static inline size_t pj2k_real_size(int f32) { return f32 ? sizeof(float) : sizeof(double); }
static inline double pj2k_real_at(const void *real, int f32, ptrdiff_t i)
{
    return f32 ? (double)((const float *)real)[i] : ((const double *)real)[i];
}

/* Rate-distortion optimised quantisation (encoder only; the high bands of a
 * 9/7 single-layer pass): while coding, each non-zero quantised value q is
 * lowered by one in magnitude where that lowers  e**2 + kappa * bits,  e the
 * reconstruction error in steps and bits its cost under the model's current
 * probabilities (docs/DESIGN.md 18).  The lowered value is written back, so
 * later contexts (neighbours, children, colour) see what the decoder sees. */
typedef struct {
    const void *real;       /* the band's unquantised coefficients, its layout: */
    int real_f32;           /* float32 if set, else float64 */
    double inv_step;        /* pj2k_reciprocal(the band's quantisation step), as the quantiser */
    double kappa;
    const float *bit_cost;  /* pj2k_bit_cost_table */
} pj2k_rdo;

/* Code one band's values sign(v) * (|v| >> shift); returns the largest
 * magnitude exponent it coded.  Decoding fails (PJ2K_ERR_CORRUPT) on an
 * exponent above max_exp or on input overrun; `shift` is the band's layer
 * shift (the parent context sees the complete parent at that scale).
 *
 * The low band (segment 0) is coded as residuals of a median-edge predictor;
 * `tmp` holds n[0]*n[1]*n[2] elements, decoded values are clamped to
 * [-bound, bound], and the encoder returns -1 if a residual does not fit the
 * (narrow) type.
 *
 * A quality layer after the first refines every value of the band from shift
 * `from` to shift `to` < from; the decoder's buffer holds the values at `from`
 * and is updated in place.  Returns the largest exponent at `to`.
 *
 * `rdo` (NULL: plain coding) may lower values of `base` in place (above).
 *
 * Every function exists per coefficient type (i16: 8-bit data, see
 * the kernels' fwd_rev_i16; i32; i64); decoders also for the legacy rules (_legacy). */
#define PJ2K_DECLARE_DECODERS(S, CT)                                                              \
    pj2k_status pj2k_decode_band_##S(pj2k_rc_decoder *d, pj2k_model *m, CT *base,                 \
                                     const pj2k_band *b, int max_exp, int shift);                \
    pj2k_status pj2k_decode_low_##S(pj2k_rc_decoder *d, pj2k_model *m, CT *base,                  \
                                    const pj2k_band *b, int max_exp, int64_t bound, CT *tmp);    \
    pj2k_status pj2k_decode_refine_##S(pj2k_rc_decoder *d, pj2k_model *m, CT *base,               \
                                       const pj2k_band *b, int from, int to);
#define PJ2K_DECLARE_CODERS(S, CT)                                                                \
    int pj2k_encode_band_##S(pj2k_rc_encoder *e, pj2k_model *m, CT *base,                         \
                             const pj2k_band *b, int shift, const pj2k_rdo *rdo);                \
    int pj2k_encode_low_##S(pj2k_rc_encoder *e, pj2k_model *m, const CT *base,                    \
                            const pj2k_band *b, int shift, CT *tmp);                             \
    int pj2k_encode_refine_##S(pj2k_rc_encoder *e, pj2k_model *m, const CT *base,                 \
                               const pj2k_band *b, int from, int to);                            \
    PJ2K_DECLARE_DECODERS(S, CT)
PJ2K_DECLARE_CODERS(i16, int16_t)
PJ2K_DECLARE_CODERS(i32, int32_t)
PJ2K_DECLARE_CODERS(i64, int64_t)
PJ2K_DECLARE_DECODERS(i16_legacy, int16_t)
PJ2K_DECLARE_DECODERS(i32_legacy, int32_t)
PJ2K_DECLARE_DECODERS(i64_legacy, int64_t)

/* ---- checksum.c ----------------------------------------------------------- */
/* pj2k_crc32c is public and picks the SSE4.2 path at run time when present;
 * the portable path is exposed so tests can compare the two. */
uint32_t pj2k_crc32c_portable(const uint8_t *data, size_t length);
int pj2k_crc32c_accelerated(void);

/* ---- memory.c ------------------------------------------------------------- */
/* malloc for buffers of megabytes (huge pages where the system offers them,
 * from PJ2K_HUGE_PAGE_BYTES on); free with free(). */
#define PJ2K_HUGE_PAGE_BYTES ((size_t)2 << 20)
void *pj2k_malloc_large(size_t size);

#endif
