/* Template: the irreversible 9/7 lifting (JPEG 2000 Part 1 constants) in
 * the forms transform_impl.h expects, interleaved lanes and split halves,
 * and the interleaved form as one sweep that also gathers (KERNEL_LINES),
 * computed in LT: double, or float for the float32 coefficients of
 * 8- and 16-bit samples.  LSFX(name) names the functions.  Included per
 * type and instruction set by kernels_impl.h. */
#ifndef PJ2K_LIFT97_CONSTANTS
#define PJ2K_LIFT97_CONSTANTS
#define ALPHA (-1.586134342059924)
#define BETA (-0.052980118572961)
#define GAMMA 0.882911075530934
#define DELTA 0.443506852043971
#define KAPPA 1.230174104914001  /* low band scaled by 1/K: DC gain 1 */
/* Sample p of a line of n >= 2 samples extended whole-sample symmetrically
 * (period 2(n - 1)): the sample the edge rules of lift_odd and lift_even
 * read in its place, at any distance from the line. */
static inline size_t pj2k_mirror(ptrdiff_t p, size_t n)
{
    const ptrdiff_t period = 2 * ((ptrdiff_t)n - 1);
    p %= period;
    if (p < 0) p += period;
    return (size_t)(p < (ptrdiff_t)n ? p : period - p);
}
/* A sweep step's rows are all distinct, so its lanes depend on no other
 * lane's: said to the vectoriser by pragma.  (Eight rows it cannot tell
 * apart are too many for its run-time checks; as restrict parameters,
 * GCC 12 made wrong values once the steps were inlined into a sweep with
 * a constant width: a review's standalone test at -O2.) */
#if defined(__clang__)
#define PJ2K_LANES_APART _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define PJ2K_LANES_APART _Pragma("GCC ivdep")
#else
#define PJ2K_LANES_APART
#endif
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

/* The interleaved form step by step: what the sweeps below compute, and
 * what the sanitizer build checks them against (transform_impl.h). */
static PJ2K_MAYBE_UNUSED void LSFX(lift97_fwd)(LT *tmp, size_t n, size_t w)
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

#if defined(__clang__)   /* (unoptimised builds, the fuzzers', cannot vectorise: no warning) */
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpass-failed"
#endif
/* One pair of new rows (k - 1, k) through the forward sweep, w lanes: each
 * step on the row it trails by (rows as lift97_fwd's steps name them). */
static inline void LSFX(sweep_fwd_pair)(const LT *xa, const LT *xb, LT *x, LT *d1, LT *s1, LT *d2,
                                        LT *even, LT *odd, size_t w)
{
    PJ2K_LANES_APART
    for (size_t j = 0; j < w; j++) {
        const LT a = xa[j], b = xb[j];
        const LT nd1 = a + (LT)ALPHA * (x[j] + b);          /* odd row k - 1 */
        const LT ns1 = x[j] + (LT)BETA * (d1[j] + nd1);     /* even row k - 2 */
        const LT nd2 = d1[j] + (LT)GAMMA * (s1[j] + ns1);   /* odd row k - 3 */
        const LT ns2 = s1[j] + (LT)DELTA * (d2[j] + nd2);   /* even row k - 4 */
        odd[j] = d2[j] * (LT)(KAPPA / 2.0);                 /* row k - 5, done */
        even[j] = ns2 * (LT)(1.0 / KAPPA);                  /* row k - 4, done */
        x[j] = b;
        d1[j] = nd1;
        s1[j] = ns1;
        d2[j] = nd2;
    }
}

/* One pair of new rows (k, k + 1) through the inverse sweep. */
static inline void LSFX(sweep_inv_pair)(const LT *xe, const LT *xo, LT *o, LT *a1, LT *b1, LT *c1,
                                        LT *even, LT *odd, size_t w)
{
    PJ2K_LANES_APART
    for (size_t j = 0; j < w; j++) {
        const LT se = xe[j] * (LT)KAPPA, so = xo[j] * (LT)(2.0 / KAPPA);
        const LT na1 = se + (LT)-DELTA * (o[j] + so);       /* even row k */
        const LT nb1 = o[j] + (LT)-GAMMA * (a1[j] + na1);   /* odd row k - 1 */
        const LT nc1 = a1[j] + (LT)-BETA * (b1[j] + nb1);   /* even row k - 2, done */
        const LT nd1 = b1[j] + (LT)-ALPHA * (c1[j] + nc1);  /* odd row k - 3, done */
        even[j] = nc1;
        odd[j] = nd1;
        o[j] = so;
        a1[j] = na1;
        b1[j] = nb1;
        c1[j] = nc1;
    }
}
#if defined(__clang__)
#pragma clang diagnostic pop
#endif

/* ---- the interleaved form fused with its gather: the lines of n >= 2
 * samples at line + t * sa (w lanes each) lifted in one sweep from the
 * buffer into tmp (room for n + 6 rows of w lanes), natural order, with no
 * gathered copy and no pass per step: each new pair of rows takes all four
 * steps, each step trailing the one before by a row, and the values a
 * step reads carry (in lanes' state rows) the steps lift97_fwd gives them:
 * the same operations on the same values, bit for bit.  The sweep starts
 * four rows before the line and ends as far beyond it, on mirrored rows
 * (whole-sample symmetry holds through every step, and a + b is b + a in
 * IEEE arithmetic, up to which of two NaNs' payloads the sum keeps, which
 * IEEE leaves open and a mirrored row may settle the other way: no NaN
 * reaches a 9/7 through the Python API, which refuses them for lossy data,
 * and the decoder's inverse stores any NaN as the bound); what it makes
 * there goes to a junk row.  Returns 0, with tmp's rows undefined, if
 * every sample's bits are zero (lift97_fwd leaves such lines alone, and
 * they are their own transform).  Measured: docs/DESIGN.md 48. ---- */
#define LINE_AHEAD 4   /* rows prefetched ahead, as transform_impl.h's gather */
static int LSFX(lift97_fwd_lines)(const LT *line, ptrdiff_t sa, size_t n, size_t w, LT *tmp)
{
    /* state: x[k - 2], d1[k - 3], s1[k - 4], d2[k - 5] of each lane */
    LT *x = tmp + n * w, *d1 = x + w, *s1 = d1 + w, *d2 = s1 + w;
    LT *const junk_even = d2 + w, *const junk_odd = junk_even + w;   /* (rows apart: see above) */
    int nonzero = 0;
    const LT *first = line + (ptrdiff_t)pj2k_mirror(-4, n) * sa;
    for (size_t j = 0; j < w; j++) {
        x[j] = first[j];
        d1[j] = s1[j] = d2[j] = 0;
    }
    const ptrdiff_t last = (ptrdiff_t)n + ((n & 1) ? 3 : 4), rows = (ptrdiff_t)n;
    for (ptrdiff_t k = -2; k <= last; k += 2) {
        const LT *xa = line + (ptrdiff_t)pj2k_mirror(k - 1, n) * sa;
        const LT *xb = line + (ptrdiff_t)pj2k_mirror(k, n) * sa;
        if (k + LINE_AHEAD < rows)
            for (size_t j = 0; j < w; j += 64 / sizeof(LT)) {
                __builtin_prefetch(line + (k + LINE_AHEAD - 1) * sa + (ptrdiff_t)j);
                __builtin_prefetch(line + (k + LINE_AHEAD) * sa + (ptrdiff_t)j);
            }
        LT *even = k - 4 >= 0 && k - 4 < rows ? tmp + (size_t)(k - 4) * w : junk_even;
        LT *odd = k - 5 >= 0 && k - 5 < rows ? tmp + (size_t)(k - 5) * w : junk_odd;
        LSFX(sweep_fwd_pair)(xa, xb, x, d1, s1, d2, even, odd, w);
        /* (every row of the line is read at some k) */
        if (!nonzero) nonzero = !pj2k_zero_bits(xa, w * sizeof *xa) || !pj2k_zero_bits(xb, w * sizeof *xb);
    }
    return nonzero;
}

/* The inverse the same way: natural row r of the lines lies in the buffer
 * at its Mallat position (low rows first, nlow of them), and the steps of
 * lift97_inv trail each new pair of rows (k, k + 1). */
static PJ2K_MAYBE_UNUSED int LSFX(lift97_inv_lines)(const LT *line, ptrdiff_t sa, size_t n, size_t nlow,
                                                    size_t w, LT *tmp)
{
    /* state: o[k - 1] (scaled), a1[k - 2], b1[k - 3], c1[k - 4] of each lane */
    LT *o = tmp + n * w, *a1 = o + w, *b1 = a1 + w, *c1 = b1 + w;
    LT *const junk_even = c1 + w, *const junk_odd = junk_even + w;
    int nonzero = 0;
    for (size_t j = 0; j < w; j++) o[j] = a1[j] = b1[j] = c1[j] = 0;
#define MALLAT_ROW(r) (line + (ptrdiff_t)pj2k_mallat((r), nlow) * sa)
    const ptrdiff_t last = (ptrdiff_t)n + ((n & 1) ? 1 : 2), rows = (ptrdiff_t)n;
    for (ptrdiff_t k = -4; k <= last; k += 2) {
        const size_t re = pj2k_mirror(k, n), ro = pj2k_mirror(k + 1, n);
        const LT *xe = MALLAT_ROW(re), *xo = MALLAT_ROW(ro);
        if (k + 1 + LINE_AHEAD < rows) {
            const size_t ahead = (size_t)(k + LINE_AHEAD);
            for (size_t j = 0; j < w; j += 64 / sizeof(LT)) {
                __builtin_prefetch(MALLAT_ROW(ahead) + j);
                __builtin_prefetch(MALLAT_ROW(ahead + 1) + j);
            }
        }
        LT *even = k - 2 >= 0 && k - 2 < rows ? tmp + (size_t)(k - 2) * w : junk_even;
        LT *odd = k - 3 >= 0 && k - 3 < rows ? tmp + (size_t)(k - 3) * w : junk_odd;
        LSFX(sweep_inv_pair)(xe, xo, o, a1, b1, c1, even, odd, w);
        if (!nonzero) nonzero = !pj2k_zero_bits(xe, w * sizeof *xe) || !pj2k_zero_bits(xo, w * sizeof *xo);
    }
#undef MALLAT_ROW
    return nonzero;
}
#undef LINE_AHEAD
