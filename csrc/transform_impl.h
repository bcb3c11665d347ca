/* Template: the separable multilevel wavelet transform over a box, for one
 * element type.  Expects T, SFX(name), KERNEL_FWD(tmp, n, w) and
 * KERNEL_INV(tmp, n, w) to be defined by the including file.
 *
 * Each 1-D pass gathers up to PJ2K_LANES neighbouring lines into a small
 * interleaved buffer (row t = sample t of every line), lifts all lanes of a
 * row at once (contiguous, vectorisable), and scatters the result back in
 * Mallat order (low half first).  The same code serves all three axes. */

static void SFX(transform_axis)(T *buf, const size_t ext[3], const ptrdiff_t st[3],
                                int axis, T *tmp, int inverse, T bound)
{
    const size_t n = ext[axis];
    if (n < 2) return;                       /* a single sample is its own low band */
    const size_t nlow = (n + 1) / 2;
    const int lane_axis = axis == 2 ? 1 : 2;
    const int outer_axis = 3 - axis - lane_axis;
    const ptrdiff_t sa = st[axis], sl = st[lane_axis];
    for (size_t o = 0; o < ext[outer_axis]; o++) {
        for (size_t l0 = 0; l0 < ext[lane_axis]; l0 += PJ2K_LANES) {
            const size_t w = ext[lane_axis] - l0 < PJ2K_LANES ? ext[lane_axis] - l0 : PJ2K_LANES;
            T *base = buf + (ptrdiff_t)o * st[outer_axis] + (ptrdiff_t)l0 * sl;
            /* position of interleaved sample t in the buffer, natural or Mallat */
#define NATURAL(t) ((ptrdiff_t)(t))
#define MALLAT(t) ((ptrdiff_t)(((t) & 1) ? nlow + (t) / 2 : (t) / 2))
#define GATHER(POS)                                                          \
            if (sa == 1) {                                                   \
                for (size_t j = 0; j < w; j++)                               \
                    for (size_t t = 0; t < n; t++)                           \
                        tmp[t * w + j] = base[(ptrdiff_t)j * sl + POS(t)];   \
            } else {                                                         \
                for (size_t t = 0; t < n; t++)                               \
                    for (size_t j = 0; j < w; j++)                           \
                        tmp[t * w + j] = base[POS(t) * sa + (ptrdiff_t)j * sl]; \
            }
#define SCATTER(POS, VALUE)                                                  \
            if (sa == 1) {                                                   \
                for (size_t j = 0; j < w; j++)                               \
                    for (size_t t = 0; t < n; t++)                           \
                        base[(ptrdiff_t)j * sl + POS(t)] = VALUE(tmp[t * w + j]); \
            } else {                                                         \
                for (size_t t = 0; t < n; t++)                               \
                    for (size_t j = 0; j < w; j++)                           \
                        base[POS(t) * sa + (ptrdiff_t)j * sl] = VALUE(tmp[t * w + j]); \
            }
#define AS_IS(v) (v)
#define CLAMPED(v) ((v) >= -bound ? ((v) <= bound ? (v) : bound) : -bound)
            if (!inverse) {
                GATHER(NATURAL)
                KERNEL_FWD(tmp, n, w);
                SCATTER(MALLAT, AS_IS)
            } else {
                GATHER(MALLAT)
                KERNEL_INV(tmp, n, w);
                SCATTER(NATURAL, CLAMPED)  /* also maps NaN to -bound */
            }
#undef NATURAL
#undef MALLAT
#undef GATHER
#undef SCATTER
#undef AS_IS
#undef CLAMPED
        }
    }
}

static void SFX(forward)(T *buf, const size_t dims[3], int levels, T *tmp)
{
    const ptrdiff_t st[3] = {(ptrdiff_t)(dims[1] * dims[2]), (ptrdiff_t)dims[2], 1};
    for (int l = 0; l < levels; l++) {
        const size_t ext[3] = {pj2k_ceil_shift(dims[0], l), pj2k_ceil_shift(dims[1], l),
                               pj2k_ceil_shift(dims[2], l)};
        for (int axis = 0; axis < 3; axis++)
            SFX(transform_axis)(buf, ext, st, axis, tmp, 0, 0);
    }
}

static void SFX(inverse)(T *buf, const size_t dims[3], int levels, T *tmp, T bound)
{
    const ptrdiff_t st[3] = {(ptrdiff_t)(dims[1] * dims[2]), (ptrdiff_t)dims[2], 1};
    for (int l = levels - 1; l >= 0; l--) {
        const size_t ext[3] = {pj2k_ceil_shift(dims[0], l), pj2k_ceil_shift(dims[1], l),
                               pj2k_ceil_shift(dims[2], l)};
        for (int axis = 2; axis >= 0; axis--)
            SFX(transform_axis)(buf, ext, st, axis, tmp, 1, bound);
    }
}
