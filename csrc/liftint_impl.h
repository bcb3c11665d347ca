/* Template: reversible integer lifting for one signed integer type T (with
 * UT, its unsigned twin), as SFX(name).  Three wavelets share the update step:
 *   5/3   (JPEG 2000 Part 1):  d -= (s[i] + s[i+1]) >> 1
 *   5/3 rounded (wavelets 3, 4): d -= (s[i] + s[i+1] + 1) >> 1
 *   9/7-M (5/3's update after a 4-tap predict):
 *         d -= (9 (s[i] + s[i+1]) - (s[i-1] + s[i+2]) + 8) >> 4
 *   both: s += (d[i-1] + d[i] + 2) >> 2
 * with whole-sample symmetric extension (docs/FORMAT.md 4).  Right shifts of
 * negative values are arithmetic (floor division), as on every compiler this
 * builds with.  The 4-tap sum wraps in UT: exact for every value a valid
 * stream holds, and free of undefined behaviour on forged ones (whose
 * values the inverse clamps afterwards). */

#define ROW(i) (tmp + (size_t)(i) * w)

/* Position t of a line of n >= 2 samples under whole-sample symmetric
 * extension (x[-t] = x[t], x[n-1+t] = x[n-1-t], repeated for short lines). */
static inline size_t SFX(reflect)(ptrdiff_t t, size_t n)
{
    const ptrdiff_t period = 2 * ((ptrdiff_t)n - 1);
    t %= period;
    if (t < 0) t += period;
    return (size_t)(t < (ptrdiff_t)n ? t : period - t);
}

static inline T SFX(predict4)(T a, T b, T c, T e)   /* (9 (b + c) - (a + e) + 8) >> 4 */
{
    return (T)(UT)(9u * ((UT)b + (UT)c) - ((UT)a + (UT)e) + 8u) >> 4;
}

/* ---- interleaved form: tmp holds n >= 2 rows (samples) of w lanes ---- */

/* 5/3 predict on every odd row: sign -1 forward, +1 inverse; half 1 rounds
 * the prediction to nearest (ties up) instead of down */
static inline void SFX(predict2_rows)(T *tmp, size_t n, size_t w, int inverse, T half)
{
    for (size_t i = 0; i < n / 2; i++) {
        T *d = ROW(2 * i + 1);
        const T *a = ROW(2 * i), *b = ROW(2 * i + 2 < n ? 2 * i + 2 : 2 * i);
        if (inverse) for (size_t j = 0; j < w; j++) d[j] += (a[j] + b[j] + half) >> 1;
        else         for (size_t j = 0; j < w; j++) d[j] -= (a[j] + b[j] + half) >> 1;
    }
}

static inline void SFX(predict4_rows)(T *tmp, size_t n, size_t w, int inverse)
{
    for (size_t i = 0; i < n / 2; i++) {
        const ptrdiff_t t = 2 * (ptrdiff_t)i + 1;
        T *d = ROW(t);
        const T *a = ROW(SFX(reflect)(t - 3, n)), *b = ROW(t - 1), *c = ROW(SFX(reflect)(t + 1, n)),
                *e = ROW(SFX(reflect)(t + 3, n));
        if (inverse) for (size_t j = 0; j < w; j++) d[j] += SFX(predict4)(a[j], b[j], c[j], e[j]);
        else         for (size_t j = 0; j < w; j++) d[j] -= SFX(predict4)(a[j], b[j], c[j], e[j]);
    }
}

static inline void SFX(update_rows)(T *tmp, size_t n, size_t w, int inverse)
{
    for (size_t i = 0; i < n - n / 2; i++) {
        T *s = ROW(2 * i);
        const T *a = ROW(i ? 2 * i - 1 : 1), *b = ROW(2 * i + 1 < n ? 2 * i + 1 : 2 * i - 1);
        if (inverse) for (size_t j = 0; j < w; j++) s[j] -= (a[j] + b[j] + 2) >> 2;
        else         for (size_t j = 0; j < w; j++) s[j] += (a[j] + b[j] + 2) >> 2;
    }
}
#undef ROW

static void SFX(lift53_fwd)(T *tmp, size_t n, size_t w)
{ SFX(predict2_rows)(tmp, n, w, 0, 0); SFX(update_rows)(tmp, n, w, 0); }
static void SFX(lift53_inv)(T *tmp, size_t n, size_t w)
{ SFX(update_rows)(tmp, n, w, 1); SFX(predict2_rows)(tmp, n, w, 1, 0); }
static void SFX(lift53r_fwd)(T *tmp, size_t n, size_t w)
{ SFX(predict2_rows)(tmp, n, w, 0, 1); SFX(update_rows)(tmp, n, w, 0); }
static void SFX(lift53r_inv)(T *tmp, size_t n, size_t w)
{ SFX(update_rows)(tmp, n, w, 1); SFX(predict2_rows)(tmp, n, w, 1, 1); }
static void SFX(liftm97_fwd)(T *tmp, size_t n, size_t w)
{ SFX(predict4_rows)(tmp, n, w, 0); SFX(update_rows)(tmp, n, w, 0); }
static void SFX(liftm97_inv)(T *tmp, size_t n, size_t w)
{ SFX(update_rows)(tmp, n, w, 1); SFX(predict4_rows)(tmp, n, w, 1); }

/* ---- split form: one line as its smooth half s[0..ns) and detail half
 * d[0..nd) (ns = nd or nd + 1), for lines along the contiguous axis.  The
 * same extension: the left detail of s[0] is d[0]; s[ns] is s[ns - 1]; d[nd]
 * is d[nd - 1]. ---- */

static inline void SFX(predict2_split)(const T *s, T *d, size_t ns, size_t nd, int inverse,
                                       T half)
{
    const T last = ns == nd ? (s[nd - 1] + s[nd - 1] + half) >> 1 : 0;
    if (inverse) {
        for (size_t i = 0; i + 1 < ns; i++) d[i] += (s[i] + s[i + 1] + half) >> 1;
        if (ns == nd) d[nd - 1] += last;
    } else {
        for (size_t i = 0; i + 1 < ns; i++) d[i] -= (s[i] + s[i + 1] + half) >> 1;
        if (ns == nd) d[nd - 1] -= last;
    }
}

/* s[k] of the extended line for any k (sample 2k) */
#define S_AT(k) s[SFX(reflect)(2 * (ptrdiff_t)(k), n) / 2]
static inline void SFX(predict4_split)(const T *s, T *d, size_t ns, size_t nd, int inverse)
{
    const size_t n = ns + nd;
    /* s[i - 1] .. s[i + 2] all exist for i in [lo, hi): 1 <= i < ns - 2 */
    const size_t lo = nd < 1 ? nd : 1;
    size_t hi = ns >= 3 ? ns - 2 : lo;
    hi = hi > nd ? nd : (hi < lo ? lo : hi);
    for (size_t i = 0; i < nd; i++) {
        if (i == lo) {   /* the interior, then the right edge */
            if (inverse) for (; i < hi; i++) d[i] += SFX(predict4)(s[i - 1], s[i], s[i + 1], s[i + 2]);
            else         for (; i < hi; i++) d[i] -= SFX(predict4)(s[i - 1], s[i], s[i + 1], s[i + 2]);
            if (i == nd) break;
        }
        const T p = SFX(predict4)(S_AT((ptrdiff_t)i - 1), s[i], S_AT(i + 1), S_AT(i + 2));
        d[i] = inverse ? d[i] + p : d[i] - p;
    }
}
#undef S_AT

static inline void SFX(update_split)(T *s, const T *d, size_t ns, size_t nd, int inverse)
{
    const int sign = inverse ? -1 : 1;
    s[0] += sign * ((d[0] + d[0] + 2) >> 2);
    if (inverse) for (size_t i = 1; i < nd; i++) s[i] -= (d[i - 1] + d[i] + 2) >> 2;
    else         for (size_t i = 1; i < nd; i++) s[i] += (d[i - 1] + d[i] + 2) >> 2;
    if (ns > nd) s[nd] += sign * ((d[nd - 1] + d[nd - 1] + 2) >> 2);
}

static void SFX(lift53_fwd_split)(T *s, T *d, size_t ns, size_t nd)
{ SFX(predict2_split)(s, d, ns, nd, 0, 0); SFX(update_split)(s, d, ns, nd, 0); }
static void SFX(lift53_inv_split)(T *s, T *d, size_t ns, size_t nd)
{ SFX(update_split)(s, d, ns, nd, 1); SFX(predict2_split)(s, d, ns, nd, 1, 0); }
static void SFX(lift53r_fwd_split)(T *s, T *d, size_t ns, size_t nd)
{ SFX(predict2_split)(s, d, ns, nd, 0, 1); SFX(update_split)(s, d, ns, nd, 0); }
static void SFX(lift53r_inv_split)(T *s, T *d, size_t ns, size_t nd)
{ SFX(update_split)(s, d, ns, nd, 1); SFX(predict2_split)(s, d, ns, nd, 1, 1); }
static void SFX(liftm97_fwd_split)(T *s, T *d, size_t ns, size_t nd)
{ SFX(predict4_split)(s, d, ns, nd, 0); SFX(update_split)(s, d, ns, nd, 0); }
static void SFX(liftm97_inv_split)(T *s, T *d, size_t ns, size_t nd)
{ SFX(update_split)(s, d, ns, nd, 1); SFX(predict4_split)(s, d, ns, nd, 1); }
