/* Template: the irreversible 9/7 lifting (JPEG 2000 Part 1 constants) in
 * the two forms transform_impl.h expects, interleaved lanes and split
 * halves, computed in LT: double, or float for the float32 coefficients of
 * 8- and 16-bit samples.  LSFX(name) names the functions.  Included per
 * type and instruction set by kernels_impl.h. */
#ifndef PJ2K_LIFT97_CONSTANTS
#define PJ2K_LIFT97_CONSTANTS
#define ALPHA (-1.586134342059924)
#define BETA (-0.052980118572961)
#define GAMMA 0.882911075530934
#define DELTA 0.443506852043971
#define KAPPA 1.230174104914001  /* low band scaled by 1/K: DC gain 1 */
#endif

/* odd rows += c * (even left + even right), whole-sample symmetric */
static void LSFX(lift_odd)(LT *tmp, size_t n, size_t w, LT c)
{
    for (size_t i = 0; i < n / 2; i++) {
        LT *d = tmp + (2 * i + 1) * w;
        const LT *a = tmp + 2 * i * w, *b = tmp + (2 * i + 2 < n ? 2 * i + 2 : 2 * i) * w;
        for (size_t j = 0; j < w; j++) d[j] += c * (a[j] + b[j]);
    }
}

static void LSFX(lift_even)(LT *tmp, size_t n, size_t w, LT c)
{
    for (size_t i = 0; i < n - n / 2; i++) {
        LT *s = tmp + 2 * i * w;
        const LT *a = tmp + (i ? 2 * i - 1 : 1) * w;
        const LT *b = tmp + (2 * i + 1 < n ? 2 * i + 1 : 2 * i - 1) * w;
        for (size_t j = 0; j < w; j++) s[j] += c * (a[j] + b[j]);
    }
}

static void LSFX(scale_rows)(LT *tmp, size_t n, size_t w, LT even, LT odd)
{
    for (size_t t = 0; t < n; t++) {
        const LT c = (t & 1) ? odd : even;
        for (size_t j = 0; j < w; j++) tmp[t * w + j] *= c;
    }
}

/* The same on a line split into contiguous halves s[0..ns), d[0..nd). */
static void LSFX(lift_d_split)(LT *s, LT *d, size_t ns, size_t nd, LT c)
{
    for (size_t i = 0; i + 1 < ns; i++) d[i] += c * (s[i] + s[i + 1]);
    if (ns == nd) d[nd - 1] += c * (s[nd - 1] + s[nd - 1]);
}

static void LSFX(lift_s_split)(LT *s, const LT *d, size_t ns, size_t nd, LT c)
{
    s[0] += c * (d[0] + d[0]);
    for (size_t i = 1; i < nd; i++) s[i] += c * (d[i - 1] + d[i]);
    if (ns > nd) s[nd] += c * (d[nd - 1] + d[nd - 1]);
}

static void LSFX(scale_split)(LT *s, LT *d, size_t ns, size_t nd, LT even, LT odd)
{
    for (size_t i = 0; i < ns; i++) s[i] *= even;
    for (size_t i = 0; i < nd; i++) d[i] *= odd;
}

static void LSFX(lift97_fwd_split)(LT *s, LT *d, size_t ns, size_t nd)
{
    LSFX(lift_d_split)(s, d, ns, nd, (LT)ALPHA);
    LSFX(lift_s_split)(s, d, ns, nd, (LT)BETA);
    LSFX(lift_d_split)(s, d, ns, nd, (LT)GAMMA);
    LSFX(lift_s_split)(s, d, ns, nd, (LT)DELTA);
    LSFX(scale_split)(s, d, ns, nd, (LT)(1.0 / KAPPA), (LT)(KAPPA / 2.0));
}

static PJ2K_MAYBE_UNUSED void LSFX(lift97_inv_split)(LT *s, LT *d, size_t ns, size_t nd)
{
    LSFX(scale_split)(s, d, ns, nd, (LT)KAPPA, (LT)(2.0 / KAPPA));
    LSFX(lift_s_split)(s, d, ns, nd, (LT)-DELTA);
    LSFX(lift_d_split)(s, d, ns, nd, (LT)-GAMMA);
    LSFX(lift_s_split)(s, d, ns, nd, (LT)-BETA);
    LSFX(lift_d_split)(s, d, ns, nd, (LT)-ALPHA);
}

static void LSFX(lift97_fwd)(LT *tmp, size_t n, size_t w)
{
    LSFX(lift_odd)(tmp, n, w, (LT)ALPHA);
    LSFX(lift_even)(tmp, n, w, (LT)BETA);
    LSFX(lift_odd)(tmp, n, w, (LT)GAMMA);
    LSFX(lift_even)(tmp, n, w, (LT)DELTA);
    LSFX(scale_rows)(tmp, n, w, (LT)(1.0 / KAPPA), (LT)(KAPPA / 2.0));
}

static PJ2K_MAYBE_UNUSED void LSFX(lift97_inv)(LT *tmp, size_t n, size_t w)
{
    LSFX(scale_rows)(tmp, n, w, (LT)KAPPA, (LT)(2.0 / KAPPA));
    LSFX(lift_even)(tmp, n, w, (LT)-DELTA);
    LSFX(lift_odd)(tmp, n, w, (LT)-GAMMA);
    LSFX(lift_even)(tmp, n, w, (LT)-BETA);
    LSFX(lift_odd)(tmp, n, w, (LT)-ALPHA);
}
