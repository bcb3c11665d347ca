/* Stage 1: wavelet and colour transforms: geometry and band norms. */
#include "internal.h"
#include <math.h>
#include <stdlib.h>

size_t pj2k_transform_tmp_elems(const size_t dims[3])
{
    size_t m = dims[0] > dims[1] ? dims[0] : dims[1];
    if (dims[2] > m) m = dims[2];
    return m * PJ2K_LANES;
}

/* The lifting itself (5/3, 9/7) and the colour transforms are templates
 * (lift53_impl.h, lift97_impl.h, transform_impl.h, rct_impl.h) built once
 * per instruction set by kernels.c and kernels_avx2.c. */

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
        pj2k_kernels_portable.inv97_f64(buf, dims, level, tmp, 1e300);
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) sum += buf[i] * buf[i];
        norm = sqrt(sum);
    }
    free(buf);
    free(tmp);
    return norm;
}
