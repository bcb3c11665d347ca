/* Stage 1: wavelet and colour transforms: geometry and band norms. */
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t pj2k_transform_tmp_elems(const size_t dims[3])
{
    const size_t across = dims[0] > dims[1] ? dims[0] : dims[1];   /* a line along axis 0 or 1 */
    const size_t lanes = pj2k_lanes(dims);
    const size_t width = dims[2] < lanes ? dims[2] : lanes;
    /* (the 9/7's sweep adds six rows: lift97_impl.h) */
    return (across + 6) * width > dims[2] ? (across + 6) * width : dims[2];   /* or a split row */
}

/* The lifting itself (5/3, 9/7-M, 9/7) and the colour transforms are templates
 * (liftint_impl.h, lift97_impl.h, transform_impl.h, rct_impl.h) built once
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

/* bit_length(|v|) from the exponent of (float)v, a form that vectorises
 * (a float rounds 2**k - 1 up to 2**k only beyond 2**24: an estimate) */
#define HIGH_BAND_BITS(CT)                                                                   \
    do {                                                                                     \
        const CT *v = block;                                                                 \
        for (size_t z = 0; z < dims[0]; z++)                                                 \
            for (size_t y = 0; y < dims[1]; y++, v += dims[2]) {                             \
                /* the low band is the corner below `low` on every axis */                   \
                const size_t from = z < low[0] && y < low[1] ? low[2] : 0;                   \
                uint32_t row = 0;                                                            \
                for (size_t x = from; x < dims[2]; x++) {                                    \
                    const float f = (float)v[x];                                             \
                    uint32_t e;                                                              \
                    memcpy(&e, &f, sizeof e);                                                \
                    e = (e >> 23) & 0xFFu;                                                   \
                    row += e ? e - 126u : 0u;                                                \
                }                                                                            \
                bits += row;                                                                 \
            }                                                                                \
    } while (0)

/* The encoder's estimate of what one level of lifting costs: `block` (a box
 * of dims, overwritten; int64 if `wide`, else int32) is lifted one level
 * with 5/3 (alt 0, or PJ2K_LIFT_ROUNDED: the rounded 5/3) or 9/7-M (alt 1), and the bit lengths of its high-band
 * values are summed -- roughly the bits an entropy coder spends on them
 * (docs/DESIGN.md 23). */
uint64_t pj2k_high_band_bits(const pj2k_kernels *K, void *block, int wide, const size_t dims[3],
                             unsigned alt, void *tmp)
{
    const size_t low[3] = {pj2k_ceil_shift(dims[0], 1), pj2k_ceil_shift(dims[1], 1),
                           pj2k_ceil_shift(dims[2], 1)};
    uint64_t bits = 0;
    if (wide) {
        K->fwd_rev_i64(block, dims, 1, alt, tmp);
        HIGH_BAND_BITS(int64_t);
    } else {
        K->fwd_rev_i32(block, dims, 1, alt, tmp);
        HIGH_BAND_BITS(int32_t);
    }
    return bits;
}
#undef HIGH_BAND_BITS

/* Synthesis norm of every band (numbered like the steps): the product of the
 * 1-D norms along the transformed axes at their real lengths (an axis shorter
 * than 2**levels stops being split, which changes its norms).  Returns 0 if
 * out of memory. */
int pj2k_band_norms(const uint64_t *lengths, int naxes, int levels, double *norms)
{
    double low[PJ2K_MAX_AXES][PJ2K_MAX_LEVELS + 1], high[PJ2K_MAX_AXES][PJ2K_MAX_LEVELS + 1];
    for (int i = 0; i < naxes; i++)
        for (int l = 1; l <= levels; l++) {
            /* a norm depends on the length only up to 16 << l (see
             * pj2k_synthesis_norm97): an axis like an earlier one there
             * (square chunks, long axes at the first levels) copies its
             * norms instead of transforming two impulses again */
            const uint64_t longest = (uint64_t)16 << l;
            int same = -1;
            for (int k = 0; k < i && same < 0; k++)
                if ((lengths[k] < longest ? lengths[k] : longest) ==
                    (lengths[i] < longest ? lengths[i] : longest))
                    same = k;
            low[i][l] = same >= 0 ? low[same][l] : pj2k_synthesis_norm97((size_t)lengths[i], l, 0);
            high[i][l] = same >= 0 ? high[same][l] : pj2k_synthesis_norm97((size_t)lengths[i], l, 1);
            if (low[i][l] < 0 || high[i][l] < 0) return 0;
        }
    norms[0] = 1.0;
    for (int i = 0; i < naxes; i++) norms[0] *= levels ? low[i][levels] : 1.0;
    for (int r = 1; r <= levels; r++) {
        const int level = levels - r + 1;
        for (int o = 1; o < (1 << naxes); o++) {
            double norm = 1.0;
            for (int i = 0; i < naxes; i++) norm *= ((o >> i) & 1) ? high[i][level] : low[i][level];
            norms[1 + (r - 1) * ((1 << naxes) - 1) + (o - 1)] = norm;
        }
    }
    return 1;
}

