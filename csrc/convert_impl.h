/* Template: row conversions between one array dtype and the working types.
 * Expects DT (C type), DSFX(name), DT_LO and DT_HI (value range as int64,
 * for clamping integer outputs), DT_IS_FLOAT and DT_FMAX (largest finite value
 * of a float dtype: lossy overshoot near it is clamped, never cast to inf). */

/* Loads: samples (strided) into a working type.  The array and the work
 * buffer never overlap: restrict lets the strided loops vectorise (an
 * 8-bit source may otherwise alias the stores; interleaved RGB's stride-3
 * loads ran one value at a time, 23% of a colour chunk's prepare). */
#define LOAD_AS(SUFFIX, WT)                                                       \
    static void DSFX(load_##SUFFIX)(void *restrict dst, const void *restrict src, size_t n, \
                                    ptrdiff_t stride)                             \
    {                                                                             \
        WT *restrict d = dst;                                                     \
        const DT *restrict s = src;                                               \
        for (size_t i = 0; i < n; i++) d[i] = (WT)s[(ptrdiff_t)i * stride];       \
    }
LOAD_AS(i16, int16_t)   /* 8-bit dtypes only */
LOAD_AS(i32, int32_t)
LOAD_AS(i64, int64_t)
LOAD_AS(f64, double)
LOAD_AS(f32, float)     /* the lossy encoder's, for 8- and 16-bit dtypes */
#undef LOAD_AS

/* The lossy encoder's interleaved colour (RGB last, float32 work): n
 * contiguous triples loaded and colour-transformed (ICT) into three
 * component rows in one pass, which vectorises, where three stride-3 loads
 * ran one value at a time and the ICT made a pass of its own.  The same
 * values: the samples as float32 (exact for 8- and 16-bit, the only dtypes
 * with float32 work: the other dtypes' entries are never called), then
 * ict_fwd_f32's arithmetic. */
static void DSFX(load_ict_triples_f32)(void *restrict w0, void *restrict w1, void *restrict w2,
                                       void *restrict array, size_t n)
{
    float *restrict d0 = w0, *restrict d1 = w1, *restrict d2 = w2;
    const DT *restrict s = array;
    for (size_t i = 0; i < n; i++) {
        const double r = (float)s[3 * i], g = (float)s[3 * i + 1], b = (float)s[3 * i + 2];
        d0[i] = (float)ICT_Y(r, g, b);
        d1[i] = (float)ICT_CB(r, g, b);
        d2[i] = (float)ICT_CR(r, g, b);
    }
}

/* A double as this dtype will hold it: integers rounded half up and clamped,
 * floats clamped to their largest finite magnitude (NaN to the lowest). */
static inline double DSFX(representable)(double v)
{
    if (!DT_IS_FLOAT) {
        v = v >= (double)DT_LO ? v : (double)DT_LO;   /* NaN too */
        v = v <= (double)DT_HI ? v : (double)DT_HI;
        /* floor(v + 0.5): one instruction where the kernel table's
         * instruction set has it; elsewhere in double arithmetic only, so
         * the loop vectorises (x86-64 before SSE4.1 has no floor): adding and
         * subtracting 1.5 * 2**52 rounds |t| < 2**51 to an integer (in
         * double precision: needs FLT_EVAL_METHOD 0 and no fast-math), then
         * step down where that rounded up */
        const double t = v + 0.5;
#if KERNELS_FLOOR_INSN
        return floor(t);
#elif FLT_EVAL_METHOD == 0 && !defined(__FAST_MATH__)
        const double r = (t + 0x1.8p52) - 0x1.8p52;
        return r > t ? r - 1.0 : r;
#else   /* excess precision (x87) or reassociation would keep the fraction */
        const int64_t i = (int64_t)t;
        return (double)(i - ((double)i > t));
#endif
    }
    if (!(v >= -DT_FMAX)) v = -DT_FMAX;
    if (v > DT_FMAX) v = DT_FMAX;
    return v;
}

/* Error-bounded prequantisation, in place: each of the n float64 samples x
 * in `values` becomes its int64 q = round(x / scale), nudged by one where
 * the dtype's own rounding of q * scale would leave the bound (memcpy: the
 * two types share the memory).  Returns 0 if some sample is not finite,
 * too large, or cannot meet the bound. */
static int DSFX(prequantise)(void *values, size_t n, double scale, double bound)
{
    unsigned char *at = values;
    for (size_t i = 0; i < n; i++, at += 8) {
        double x;
        memcpy(&x, at, sizeof x);
        if (!isfinite(x) || !(fabs(x) / scale < 0x1p40)) return 0;
        const double base = nearbyint(x / scale);
        int found = 0;
        for (int d = 0; d < 3 && !found; d++) {
            const double c = base + (d == 0 ? 0 : (d == 1 ? -1 : 1));
            /* the decoder computes (DT)(double)q * scale */
            if (fabs((double)(DT)DSFX(representable)(c * scale) - x) <= bound) {
                const int64_t q = (int64_t)c;
                memcpy(at, &q, sizeof q);
                found = 1;
            }
        }
        if (!found) return 0;
    }
    return 1;
}

/* Integer results are clamped to the dtype's range: reduced resolutions may
 * overshoot it slightly, full-resolution lossless data never does. */
#define STORE_FROM_INT(SUFFIX, WT)                                                \
    static void DSFX(store_##SUFFIX)(void *restrict dst, const void *restrict src, size_t n, \
                                     ptrdiff_t stride)                            \
    {                                                                             \
        DT *restrict d = dst;                                                     \
        const WT *restrict s = src;                                               \
        for (size_t i = 0; i < n; i++) {                                          \
            const int64_t v = s[i];                                               \
            d[(ptrdiff_t)i * stride] = (DT)(v < DT_LO ? DT_LO : (v > DT_HI ? DT_HI : v)); \
        }                                                                         \
    }
STORE_FROM_INT(i16, int16_t)
STORE_FROM_INT(i32, int32_t)
STORE_FROM_INT(i64, int64_t)
#undef STORE_FROM_INT

/* Float work back to the dtype (lossy and error-bounded values): float64,
 * or float32 (version 8's lossy decoder for 8- and 16-bit integer dtypes,
 * each value widened exactly), then representable()'s rounding and
 * clamping. */
#define STORE_FROM_REAL(SUFFIX, RT)                                               \
    static void DSFX(store_##SUFFIX)(void *restrict dst, const void *restrict src, size_t n, \
                                     ptrdiff_t stride)                            \
    {                                                                             \
        DT *restrict d = dst;                                                     \
        const RT *restrict s = src;                                               \
        if (stride == 1) {   /* the common case, kept apart so that it vectorises */ \
            for (size_t i = 0; i < n; i++) d[i] = (DT)DSFX(representable)((double)s[i]); \
            return;                                                               \
        }                                                                         \
        /* strided (e.g. interleaved colour): convert blocks contiguously,        \
         * which vectorises, then scatter them */                                 \
        DT block[64];                                                             \
        for (size_t i0 = 0; i0 < n; i0 += 64) {                                   \
            const size_t m = n - i0 < 64 ? n - i0 : 64;                           \
            for (size_t i = 0; i < m; i++) block[i] = (DT)DSFX(representable)((double)s[i0 + i]); \
            for (size_t i = 0; i < m; i++) d[(ptrdiff_t)(i0 + i) * stride] = block[i]; \
        }                                                                         \
    }
STORE_FROM_REAL(f64, double)
STORE_FROM_REAL(f32, float)
#undef STORE_FROM_REAL

/* The lossy decoder's interleaved colour (RGB last): three component rows
 * colour-transformed back (the inverse ICT) and stored as n triples in one
 * pass, where ict_inv made a pass of its own and the store scattered each
 * component with stride 3.  The same values: ict_inv's arithmetic (in
 * double; with float32 work, each result rounded to float32 as ict_inv_f32
 * does), then the store's rounding and clamping. */
#define STORE_ICT_TRIPLES(SUFFIX, RT)                                             \
    static void DSFX(store_ict_triples_##SUFFIX)(void *restrict w0, void *restrict w1, \
                                                 void *restrict w2, void *restrict array, \
                                                 size_t n)                        \
    {                                                                             \
        const RT *restrict c0 = w0, *restrict c1 = w1, *restrict c2 = w2;         \
        DT *restrict d = array;                                                   \
        for (size_t i = 0; i < n; i++) {                                          \
            const double y = c0[i], cb = c1[i], cr = c2[i];                       \
            d[3 * i] = (DT)DSFX(representable)((double)(RT)ICT_R(y, cb, cr));    \
            d[3 * i + 1] = (DT)DSFX(representable)((double)(RT)ICT_G(y, cb, cr)); \
            d[3 * i + 2] = (DT)DSFX(representable)((double)(RT)ICT_B(y, cb, cr)); \
        }                                                                         \
    }
STORE_ICT_TRIPLES(f64, double)
STORE_ICT_TRIPLES(f32, float)
#undef STORE_ICT_TRIPLES

/* A PSNR trial's float32 reconstruction against n samples of the array
 * (strided): the sum of squared errors, each value rounded and clamped as
 * the decoder's store_f32 does (version 8 decoders reconstruct these
 * chunks in float32, so the sum is the decode's, bit for bit).  Integer
 * sums in 32-bit lanes over blocks of TRIAL_BLOCK samples (the 8-bit
 * dtypes' e**2 < 2**16), the 16-bit dtypes' e**2 in 64-bit lanes. */
#define TRIAL_BLOCK ((size_t)1 << 15)
static inline void DSFX(trial_block)(const float *restrict work, const DT *restrict x,
                                     const uint8_t *restrict skip, size_t n, ptrdiff_t stride,
                                     uint64_t *squared)
{
    const float lo = (float)DT_LO, hi = (float)DT_HI;
    uint32_t squared32 = 0;
    uint64_t squared64 = 0;
    for (size_t i = 0; i < n; i++) {
        const float v = work[i];
        float c = v >= lo ? v : lo;   /* NaN too */
        c = c <= hi ? c : hi;
        /* floor(c + 0.5), representable()'s rounding: c to nearest (halves
         * to even; exact), then a half that went down steps up (c - r is
         * exact).  Not c + 0.5 itself, which rounds 0.5 - 2**-25 up to 1.
         * Nearest is one instruction where the kernel table's instruction
         * set has it; elsewhere adding and subtracting 1.5 * 2**23 rounds
         * |c| < 2**22 in float arithmetic only (as representable's), so
         * the loop vectorises */
#if KERNELS_FLOOR_INSN
        float r = rintf(c);
#elif FLT_EVAL_METHOD == 0 && !defined(__FAST_MATH__)
        float r = (c + 0x1.8p23f) - 0x1.8p23f;
#else   /* excess precision or reassociation: in double, one value at a time */
        float r = (float)floor((double)c + 0.5);
#endif
        r += (float)(c - r == 0.5f);
        int32_t e = (int32_t)r - (int32_t)x[(ptrdiff_t)i * stride];
        if (skip) e &= -(int32_t)(skip[(ptrdiff_t)i * stride] == 0);   /* (a mask: vectorises) */
        const uint32_t magnitude = (uint32_t)(e < 0 ? -e : e);
        if (sizeof(DT) == 1)
            squared32 += magnitude * magnitude;
        else
            squared64 += (uint64_t)magnitude * magnitude;
    }
    *squared += squared32 + squared64;
}

static void DSFX(trial_error_f32)(const float *work, const void *array, const uint8_t *skip, size_t n,
                                  ptrdiff_t stride, double *squared)
{
    if (DT_IS_FLOAT || sizeof(DT) > 2) {   /* (never called) */
        *squared = NAN;
        return;
    }
    const DT *x = array;
    uint64_t sum = 0;
    for (size_t start = 0; start < n; start += TRIAL_BLOCK) {
        const size_t count = n - start < TRIAL_BLOCK ? n - start : TRIAL_BLOCK;
        const DT *block = x + (ptrdiff_t)start * stride;
        /* (each case its own copy: the common ones with constants folded) */
        if (skip)
            DSFX(trial_block)(work + start, block, skip + (ptrdiff_t)start * stride, count, stride, &sum);
        else if (stride == 1)   /* (contiguous loads: the common case) */
            DSFX(trial_block)(work + start, block, NULL, count, 1, &sum);
        else
            DSFX(trial_block)(work + start, block, NULL, count, stride, &sum);
    }
    *squared += (double)sum;
}
#undef TRIAL_BLOCK

/* The sum of (a[i] - b[i])**2 over two arrays of this dtype, in double: a
 * trial reconstruction's error (the PSNR searches).  Dtypes of up to 16
 * bits square (below 2**32) and add up in 64-bit integers per block: exact
 * while the total stays below 2**53; wider ones as doubles, differences
 * taken in double, summed value after value per block, then across blocks.
 * a and b are aligned for DT (the caller's to ensure). */
#define SQUARED_ERROR_BLOCK ((size_t)1 << 16)
static double DSFX(squared_error)(const void *a, const void *b, size_t n)
{
    const DT *x = a, *y = b;
    double total = 0.0;
    for (size_t start = 0; start < n; start += SQUARED_ERROR_BLOCK) {
        const size_t end = n - start < SQUARED_ERROR_BLOCK ? n : start + SQUARED_ERROR_BLOCK;
        if (!DT_IS_FLOAT && sizeof(DT) <= 2) {
            uint64_t sum = 0;
            for (size_t i = start; i < end; i++) {
                const int32_t d = (int32_t)x[i] - (int32_t)y[i];
                sum += (uint64_t)((int64_t)d * d);
            }
            total += (double)sum;
        } else {
            double sum = 0.0;
            for (size_t i = start; i < end; i++) {
                const double d = (double)x[i] - (double)y[i];
                sum += d * d;
            }
            total += sum;
        }
    }
    return total;
}
#undef SQUARED_ERROR_BLOCK

/* the template's parameters end with it */
#undef DT
#undef DSFX
#undef DT_LO
#undef DT_HI
#undef DT_IS_FLOAT
#undef DT_FMAX
