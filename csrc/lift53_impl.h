/* Template: reversible integer 5/3 lifting (JPEG 2000 Part 1, whole-sample
 * symmetric extension) and the reversible colour transform, for one signed
 * integer type.  Expects T and SFX(name).  Right shifts of negative values are
 * arithmetic (floor division), as on every compiler this builds with. */

#define ROW(i) (tmp + (size_t)(i) * w)

/* tmp holds n >= 2 interleaved rows of w lanes; lifted in place. */
static void SFX(lift53_fwd)(T *tmp, size_t n, size_t w)
{
    const size_t nd = n / 2, ns = n - nd;
    for (size_t i = 0; i < nd; i++) {        /* predict: d = odd - floor((left + right) / 2) */
        T *d = ROW(2 * i + 1);
        const T *a = ROW(2 * i), *b = ROW(2 * i + 2 < n ? 2 * i + 2 : 2 * i);
        for (size_t j = 0; j < w; j++) d[j] -= (a[j] + b[j]) >> 1;
    }
    for (size_t i = 0; i < ns; i++) {        /* update: s = even + floor((dl + dr + 2) / 4) */
        T *s = ROW(2 * i);
        const T *a = ROW(i ? 2 * i - 1 : 1), *b = ROW(2 * i + 1 < n ? 2 * i + 1 : 2 * i - 1);
        for (size_t j = 0; j < w; j++) s[j] += (a[j] + b[j] + 2) >> 2;
    }
}

static void SFX(lift53_inv)(T *tmp, size_t n, size_t w)
{
    const size_t nd = n / 2, ns = n - nd;
    for (size_t i = 0; i < ns; i++) {
        T *s = ROW(2 * i);
        const T *a = ROW(i ? 2 * i - 1 : 1), *b = ROW(2 * i + 1 < n ? 2 * i + 1 : 2 * i - 1);
        for (size_t j = 0; j < w; j++) s[j] -= (a[j] + b[j] + 2) >> 2;
    }
    for (size_t i = 0; i < nd; i++) {
        T *d = ROW(2 * i + 1);
        const T *a = ROW(2 * i), *b = ROW(2 * i + 2 < n ? 2 * i + 2 : 2 * i);
        for (size_t j = 0; j < w; j++) d[j] += (a[j] + b[j]) >> 1;
    }
}
#undef ROW

void SFX(pj2k_rct_fwd)(T *c0, T *c1, T *c2, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const T r = c0[i], g = c1[i], b = c2[i];
        c0[i] = (r + 2 * g + b) >> 2;
        c1[i] = b - g;
        c2[i] = r - g;
    }
}

void SFX(pj2k_rct_inv)(T *c0, T *c1, T *c2, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const T g = c0[i] - ((c1[i] + c2[i]) >> 2);
        c0[i] = c2[i] + g;
        c2[i] = c1[i] + g;
        c1[i] = g;
    }
}
