/* Template: reversible integer 5/3 lifting (JPEG 2000 Part 1, whole-sample
 * symmetric extension), for one signed integer type.  Expects T and
 * SFX(name).  Right shifts of negative values are arithmetic (floor
 * division), as on every compiler this builds with. */

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

/* One line split into its smooth half s[0..ns) and detail half d[0..nd)
 * (ns = nd or nd + 1): the same lifting on contiguous halves, for lines
 * along the contiguous axis.  Symmetric extension as above: the left detail
 * of s[0] is d[0]; s[ns] is s[ns - 1]; d[nd] is d[nd - 1]. */
static void SFX(lift53_fwd_split)(T *s, T *d, size_t ns, size_t nd)
{
    for (size_t i = 0; i + 1 < ns; i++) d[i] -= (s[i] + s[i + 1]) >> 1;
    if (ns == nd) d[nd - 1] -= (s[nd - 1] + s[nd - 1]) >> 1;
    s[0] += (d[0] + d[0] + 2) >> 2;
    for (size_t i = 1; i < nd; i++) s[i] += (d[i - 1] + d[i] + 2) >> 2;
    if (ns > nd) s[nd] += (d[nd - 1] + d[nd - 1] + 2) >> 2;
}

static void SFX(lift53_inv_split)(T *s, T *d, size_t ns, size_t nd)
{
    s[0] -= (d[0] + d[0] + 2) >> 2;
    for (size_t i = 1; i < nd; i++) s[i] -= (d[i - 1] + d[i] + 2) >> 2;
    if (ns > nd) s[nd] -= (d[nd - 1] + d[nd - 1] + 2) >> 2;
    for (size_t i = 0; i + 1 < ns; i++) d[i] += (s[i] + s[i + 1]) >> 1;
    if (ns == nd) d[nd - 1] += (s[nd - 1] + s[nd - 1]) >> 1;
}
