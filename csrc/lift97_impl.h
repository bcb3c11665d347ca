/* The irreversible 9/7 lifting (JPEG 2000 Part 1 constants) on double, in
 * the two forms transform_impl.h expects: interleaved lanes and split
 * halves.  Included once per instruction set by kernels_impl.h. */
#define ALPHA (-1.586134342059924)
#define BETA (-0.052980118572961)
#define GAMMA 0.882911075530934
#define DELTA 0.443506852043971
#define KAPPA 1.230174104914001  /* low band scaled by 1/K: DC gain 1 */

/* odd rows += c * (even left + even right), whole-sample symmetric */
static void lift_odd(double *tmp, size_t n, size_t w, double c)
{
    for (size_t i = 0; i < n / 2; i++) {
        double *d = tmp + (2 * i + 1) * w;
        const double *a = tmp + 2 * i * w, *b = tmp + (2 * i + 2 < n ? 2 * i + 2 : 2 * i) * w;
        for (size_t j = 0; j < w; j++) d[j] += c * (a[j] + b[j]);
    }
}

static void lift_even(double *tmp, size_t n, size_t w, double c)
{
    for (size_t i = 0; i < n - n / 2; i++) {
        double *s = tmp + 2 * i * w;
        const double *a = tmp + (i ? 2 * i - 1 : 1) * w;
        const double *b = tmp + (2 * i + 1 < n ? 2 * i + 1 : 2 * i - 1) * w;
        for (size_t j = 0; j < w; j++) s[j] += c * (a[j] + b[j]);
    }
}

static void scale_rows(double *tmp, size_t n, size_t w, double even, double odd)
{
    for (size_t t = 0; t < n; t++) {
        const double c = (t & 1) ? odd : even;
        for (size_t j = 0; j < w; j++) tmp[t * w + j] *= c;
    }
}

/* The same on a line split into contiguous halves s[0..ns), d[0..nd). */
static void lift_d_split(double *s, double *d, size_t ns, size_t nd, double c)
{
    for (size_t i = 0; i + 1 < ns; i++) d[i] += c * (s[i] + s[i + 1]);
    if (ns == nd) d[nd - 1] += c * (s[nd - 1] + s[nd - 1]);
}

static void lift_s_split(double *s, const double *d, size_t ns, size_t nd, double c)
{
    s[0] += c * (d[0] + d[0]);
    for (size_t i = 1; i < nd; i++) s[i] += c * (d[i - 1] + d[i]);
    if (ns > nd) s[nd] += c * (d[nd - 1] + d[nd - 1]);
}

static void scale_split(double *s, double *d, size_t ns, size_t nd, double even, double odd)
{
    for (size_t i = 0; i < ns; i++) s[i] *= even;
    for (size_t i = 0; i < nd; i++) d[i] *= odd;
}

static void lift97_fwd_split(double *s, double *d, size_t ns, size_t nd)
{
    lift_d_split(s, d, ns, nd, ALPHA);
    lift_s_split(s, d, ns, nd, BETA);
    lift_d_split(s, d, ns, nd, GAMMA);
    lift_s_split(s, d, ns, nd, DELTA);
    scale_split(s, d, ns, nd, 1.0 / KAPPA, KAPPA / 2.0);
}

static void lift97_inv_split(double *s, double *d, size_t ns, size_t nd)
{
    scale_split(s, d, ns, nd, KAPPA, 2.0 / KAPPA);
    lift_s_split(s, d, ns, nd, -DELTA);
    lift_d_split(s, d, ns, nd, -GAMMA);
    lift_s_split(s, d, ns, nd, -BETA);
    lift_d_split(s, d, ns, nd, -ALPHA);
}

static void lift97_fwd(double *tmp, size_t n, size_t w)
{
    lift_odd(tmp, n, w, ALPHA);
    lift_even(tmp, n, w, BETA);
    lift_odd(tmp, n, w, GAMMA);
    lift_even(tmp, n, w, DELTA);
    scale_rows(tmp, n, w, 1.0 / KAPPA, KAPPA / 2.0);
}

static void lift97_inv(double *tmp, size_t n, size_t w)
{
    scale_rows(tmp, n, w, KAPPA, 2.0 / KAPPA);
    lift_even(tmp, n, w, -DELTA);
    lift_odd(tmp, n, w, -GAMMA);
    lift_even(tmp, n, w, -BETA);
    lift_odd(tmp, n, w, -ALPHA);
}
