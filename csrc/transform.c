/* Stage 1: wavelet and colour transforms. */
#include "internal.h"
#include <math.h>
#include <stdlib.h>

size_t pj2k_transform_tmp_elems(const size_t dims[3])
{
    size_t m = dims[0] > dims[1] ? dims[0] : dims[1];
    if (dims[2] > m) m = dims[2];
    return m * PJ2K_LANES;
}

/* ---- reversible colour transform: int16 planes (computed in int32), int32, int64 ---- */
#define T int32_t
#define TB int16_t
#define NARROW 1
#define SFX(name) name##_i16
#include "rct_impl.h"
#undef TB
#undef NARROW
#undef SFX
#define TB int32_t
#define NARROW 0
#define SFX(name) name##_i32
#include "rct_impl.h"
#undef T
#undef TB
#undef NARROW
#undef SFX
#define T int64_t
#define TB int64_t
#define NARROW 0
#define SFX(name) name##_i64
#include "rct_impl.h"
#undef T
#undef TB
#undef NARROW
#undef SFX

/* ---- reversible 5/3: int16 buffers (lifted in int32), int32, int64 ---- */

#define T int32_t
#define SFX(name) name##_i32
#include "lift53_impl.h"
#define KERNEL_FWD lift53_fwd_i32
#define KERNEL_INV lift53_inv_i32
#define KERNEL_FWD_SPLIT lift53_fwd_split_i32
#define KERNEL_INV_SPLIT lift53_inv_split_i32
#define TB int32_t
#define NARROW 0
#include "transform_impl.h"
#undef TB
#undef NARROW
#undef SFX
#define SFX(name) name##_i16
#define TB int16_t
#define NARROW 1
#include "transform_impl.h"
#undef TB
#undef NARROW
#undef KERNEL_FWD
#undef KERNEL_INV
#undef KERNEL_FWD_SPLIT
#undef KERNEL_INV_SPLIT
#undef T
#undef SFX

#define T int64_t
#define TB int64_t
#define NARROW 0
#define SFX(name) name##_i64
#include "lift53_impl.h"
#define KERNEL_FWD lift53_fwd_i64
#define KERNEL_INV lift53_inv_i64
#define KERNEL_FWD_SPLIT lift53_fwd_split_i64
#define KERNEL_INV_SPLIT lift53_inv_split_i64
#include "transform_impl.h"
#undef KERNEL_FWD
#undef KERNEL_INV
#undef KERNEL_FWD_SPLIT
#undef KERNEL_INV_SPLIT
#undef T
#undef TB
#undef NARROW
#undef SFX

/* ---- irreversible 9/7 on double (JPEG 2000 Part 1 lifting constants) ---- */
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

#define T double
#define TB double
#define NARROW 0
#define SFX(name) name##_f64
#define KERNEL_FWD lift97_fwd
#define KERNEL_INV lift97_inv
#define KERNEL_FWD_SPLIT lift97_fwd_split
#define KERNEL_INV_SPLIT lift97_inv_split
#include "transform_impl.h"
#undef KERNEL_FWD
#undef KERNEL_INV
#undef KERNEL_FWD_SPLIT
#undef KERNEL_INV_SPLIT
#undef T
#undef TB
#undef NARROW
#undef SFX

/* ---- public entry points of this stage ---- */
int pj2k_fwd53_i16(int16_t *buf, const size_t dims[3], int levels, int32_t *tmp)
{ return forward_i16(buf, dims, levels, tmp); }
int pj2k_inv53_i16(int16_t *buf, const size_t dims[3], int levels, int32_t *tmp, int64_t bound)
{ return inverse_i16(buf, dims, levels, tmp, (int32_t)(bound > INT32_MAX / 4 ? INT32_MAX / 4 : bound)); }
void pj2k_fwd53_i32(int32_t *buf, const size_t dims[3], int levels, int32_t *tmp)
{ forward_i32(buf, dims, levels, tmp); }
void pj2k_fwd53_i64(int64_t *buf, const size_t dims[3], int levels, int64_t *tmp)
{ forward_i64(buf, dims, levels, tmp); }
void pj2k_fwd97_f64(double *buf, const size_t dims[3], int levels, double *tmp)
{ forward_f64(buf, dims, levels, tmp); }
void pj2k_inv53_i32(int32_t *buf, const size_t dims[3], int levels, int32_t *tmp, int64_t bound)
{ inverse_i32(buf, dims, levels, tmp, (int32_t)(bound > INT32_MAX / 4 ? INT32_MAX / 4 : bound)); }
void pj2k_inv53_i64(int64_t *buf, const size_t dims[3], int levels, int64_t *tmp, int64_t bound)
{ inverse_i64(buf, dims, levels, tmp, bound > INT64_MAX / 4 ? INT64_MAX / 4 : bound); }
void pj2k_inv97_f64(double *buf, const size_t dims[3], int levels, double *tmp, double bound)
{ inverse_f64(buf, dims, levels, tmp, bound); }

double pj2k_synthesis_norm97(size_t length, int level, int high)
{
    /* long axes: an interior basis function of a long line (boundaries
     * do not matter); short axes: the middle of the band on the real line,
     * where lines of length 1 are not transformed (so an axis that runs out
     * of levels keeps the low-pass norm of its last real level) */
    const size_t longest = (size_t)16 << level;
    const size_t n = length < longest ? length : longest;
    const size_t ext = pj2k_ceil_shift(n, level - 1), low = (ext + 1) / 2;
    if (n == 0 || (high && ext - low == 0)) return 1.0;   /* empty band */
    const size_t dims[3] = {1, 1, n};
    double *buf = calloc(n, sizeof *buf);
    double *tmp = malloc(pj2k_transform_tmp_elems(dims) * sizeof *tmp);
    double norm = -1.0;
    if (buf && tmp) {
        buf[high ? low + (ext - low) / 2 : pj2k_ceil_shift(n, level) / 2] = 1.0;
        inverse_f64(buf, dims, level, tmp, 1e300);
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) sum += buf[i] * buf[i];
        norm = sqrt(sum);
    }
    free(buf);
    free(tmp);
    return norm;
}

/* ---- irreversible colour transform (JPEG 2000 ICT, YCbCr) ---- */
void pj2k_ict_fwd_f64(double *c0, double *c1, double *c2, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const double r = c0[i], g = c1[i], b = c2[i];
        c0[i] = 0.299 * r + 0.587 * g + 0.114 * b;
        c1[i] = -0.16875 * r - 0.33126 * g + 0.5 * b;
        c2[i] = 0.5 * r - 0.41869 * g - 0.08131 * b;
    }
}

void pj2k_ict_inv_f64(double *c0, double *c1, double *c2, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const double y = c0[i], cb = c1[i], cr = c2[i];
        c0[i] = y + 1.402 * cr;
        c1[i] = y - 0.34413 * cb - 0.71414 * cr;
        c2[i] = y + 1.772 * cb;
    }
}
