/* Template: row conversions between one array dtype and the working types.
 * Expects DT (C type), DSFX(name), DT_LO and DT_HI (value range as int64,
 * for clamping integer outputs), DT_IS_FLOAT and DT_FMAX (largest finite value
 * of a float dtype: lossy overshoot near it is clamped, never cast to inf). */

static void DSFX(load_i32)(void *dst, const void *src, size_t n, ptrdiff_t stride)
{
    int32_t *d = dst;
    const DT *s = src;
    for (size_t i = 0; i < n; i++) d[i] = (int32_t)s[(ptrdiff_t)i * stride];
}

static void DSFX(load_i64)(void *dst, const void *src, size_t n, ptrdiff_t stride)
{
    int64_t *d = dst;
    const DT *s = src;
    for (size_t i = 0; i < n; i++) d[i] = (int64_t)s[(ptrdiff_t)i * stride];
}

static void DSFX(load_f64)(void *dst, const void *src, size_t n, ptrdiff_t stride)
{
    double *d = dst;
    const DT *s = src;
    for (size_t i = 0; i < n; i++) d[i] = (double)s[(ptrdiff_t)i * stride];
}

/* Integer results are clamped to the dtype's range: reduced resolutions may
 * overshoot it slightly, full-resolution lossless data never does. */
static void DSFX(store_i32)(void *dst, const void *src, size_t n, ptrdiff_t stride)
{
    DT *d = dst;
    const int32_t *s = src;
    for (size_t i = 0; i < n; i++) {
        const int64_t v = s[i];
        d[(ptrdiff_t)i * stride] = (DT)(v < DT_LO ? DT_LO : (v > DT_HI ? DT_HI : v));
    }
}

static void DSFX(store_i64)(void *dst, const void *src, size_t n, ptrdiff_t stride)
{
    DT *d = dst;
    const int64_t *s = src;
    for (size_t i = 0; i < n; i++) {
        const int64_t v = s[i];
        d[(ptrdiff_t)i * stride] = (DT)(v < DT_LO ? DT_LO : (v > DT_HI ? DT_HI : v));
    }
}

static void DSFX(store_f64)(void *dst, const void *src, size_t n, ptrdiff_t stride)
{
    DT *d = dst;
    const double *s = src;
    for (size_t i = 0; i < n; i++) {
        double v = s[i];
        if (!DT_IS_FLOAT) {
            if (!(v >= (double)DT_LO)) v = (double)DT_LO;   /* NaN too */
            if (v > (double)DT_HI) v = (double)DT_HI;
            v = floor(v + 0.5);
        } else {
            if (!(v >= -DT_FMAX)) v = -DT_FMAX;            /* NaN too */
            if (v > DT_FMAX) v = DT_FMAX;
        }
        d[(ptrdiff_t)i * stride] = (DT)v;
    }
}
