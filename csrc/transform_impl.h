/* Template: the separable multilevel wavelet transform over a box, for one
 * element type.  Expects TB (the buffer's type), T (the type the lifting
 * runs in: TB, or wider for a narrow buffer), NARROW (1 if TB is narrower
 * than T), SFX(name), and KERNEL(op) naming the lifting functions fwd(tmp, n, w),
 * inv(tmp, n, w), fwd_split(s, d, ns, nd) and inv_split(s, d, ns, nd); and
 * KERNEL_ALT(op) the same for the wavelet of the levels whose bit is set in
 * `alt_levels` (bit l - 1 for level l; 9/7-M for the integer builds), and
 * KERNEL_ROUND(op) for the other levels where `alt_levels` has
 * PJ2K_LIFT_ROUNDED (the rounded 5/3).  A pass's `lift`: 0 KERNEL, 1
 * KERNEL_ALT, 2 KERNEL_ROUND.
 *
 * Along the contiguous axis each line is split into its even and odd samples
 * (which is the Mallat order: low half first) and lifted on the two
 * contiguous halves.  Along the other axes a pass gathers up to pj2k_lanes(dims)
 * neighbouring lines into a small interleaved buffer (row t = sample t of
 * every line), lifts all lanes of a row at once, and scatters the result back
 * in Mallat order; where KERNEL_LINES(op) names them (the 9/7 float builds),
 * fwd(line, sa, n, w, tmp) and inv(line, sa, n, nlow, w, tmp) lift the lines
 * into that buffer in one sweep instead, with no gathered copy.  All forms
 * vectorise and compute the same values.
 *
 * The lifting always runs in T on the small buffer `tmp`; a narrow buffer
 * only stores the results, and a result that does not fit sets *overflow
 * (the caller then redoes the work in a wide buffer: same values). */

#define CLAMPED(v) ((v) >= -bound ? ((v) <= bound ? (v) : bound) : -bound)  /* NaN -> -bound */
#define AS_IS(v) (v)
#define LIFT(op, ...)                                                    \
    do {                                                                 \
        if (lift == 1) KERNEL_ALT(op)(__VA_ARGS__);                      \
        else if (lift == 2) KERNEL_ROUND(op)(__VA_ARGS__);               \
        else KERNEL(op)(__VA_ARGS__);                                    \
    } while (0)
/* store a lifted value into the buffer, noting a narrow buffer's overflow */
#define PUT(dst, v)                                                      \
    do {                                                                 \
        const T v_ = (v);                                                \
        (dst) = (TB)v_;                                                  \
        if (NARROW) *overflow |= (T)(TB)v_ != v_;                        \
    } while (0)

static void SFX(transform_rows)(TB *buf, const size_t ext[3], const ptrdiff_t st[3], T *tmp,
                                int inverse, int lift, T bound, int *overflow)
{
    const size_t n = ext[2], ns = (n + 1) / 2, nd = n / 2;
    for (size_t z = 0; z < ext[0]; z++)
        for (size_t y = 0; y < ext[1]; y++) {
            TB *row = buf + (ptrdiff_t)z * st[0] + (ptrdiff_t)y * st[1];
            if (pj2k_zero_bits(row, n * sizeof *row)) continue;   /* zeros lift to zeros */
            if (!inverse) {
                for (size_t i = 0; i < nd; i++) { tmp[i] = row[2 * i]; tmp[ns + i] = row[2 * i + 1]; }
                if (ns > nd) tmp[nd] = row[n - 1];
                LIFT(fwd_split, tmp, tmp + ns, ns, nd);
                for (size_t i = 0; i < n; i++) PUT(row[i], tmp[i]);
            } else {
                for (size_t i = 0; i < n; i++) tmp[i] = row[i];
                LIFT(inv_split, tmp, tmp + ns, ns, nd);
                for (size_t i = 0; i < nd; i++) {
                    PUT(row[2 * i], CLAMPED(tmp[i]));
                    PUT(row[2 * i + 1], CLAMPED(tmp[ns + i]));
                }
                if (ns > nd) PUT(row[n - 1], CLAMPED(tmp[nd]));
            }
        }
}

/* A gather along axis 0 or 1 reads a few cache lines per line sample, each
 * sample a plane or a row away from the last: too far apart for the
 * hardware's prefetchers, so the lines PREFETCH_AHEAD samples ahead are
 * asked for (docs/DESIGN.md 37: a volume's forward 9/7 -12%; 8 and 16
 * ahead did less). */
#define PREFETCH_AHEAD 4
static void SFX(transform_axis)(TB *buf, const size_t ext[3], const ptrdiff_t st[3], size_t lanes,
                                int axis, T *tmp, int inverse, int lift, T bound, int *overflow)
{
    const size_t n = ext[axis];
    if (n < 2) return;                       /* a single sample is its own low band */
    if (axis == 2) {
        SFX(transform_rows)(buf, ext, st, tmp, inverse, lift, bound, overflow);
        return;
    }
    const size_t nlow = (n + 1) / 2;
    const int lane_axis = 2, outer_axis = 1 - axis;   /* axis 0 or 1 */
    const ptrdiff_t sa = st[axis];
    for (size_t o = 0; o < ext[outer_axis]; o++) {
        for (size_t l0 = 0; l0 < ext[lane_axis]; l0 += lanes) {
            const size_t w = ext[lane_axis] - l0 < lanes ? ext[lane_axis] - l0 : lanes;
            TB *base = buf + (ptrdiff_t)o * st[outer_axis] + (ptrdiff_t)l0;
            /* position of interleaved sample t in the buffer, natural or Mallat */
#define NATURAL(t) ((ptrdiff_t)(t))
#define MALLAT(t) ((ptrdiff_t)pj2k_mallat((t), nlow))
#define GATHER(POS)                                                          \
            for (size_t t = 0; t < n; t++) {                                 \
                if (t + PREFETCH_AHEAD < n)                                  \
                    for (size_t j = 0; j < w; j += 64 / sizeof(TB))          \
                        __builtin_prefetch(base + POS(t + PREFETCH_AHEAD) * sa + (ptrdiff_t)j); \
                for (size_t j = 0; j < w; j++)                               \
                    tmp[t * w + j] = base[POS(t) * sa + (ptrdiff_t)j];       \
            }
#define SCATTER(POS, VALUE)                                                  \
            for (size_t t = 0; t < n; t++)                                   \
                for (size_t j = 0; j < w; j++)                               \
                    PUT(base[POS(t) * sa + (ptrdiff_t)j], VALUE(tmp[t * w + j]));
            /* zeros lift to zeros, and any order of them is the same lines */
#ifdef KERNEL_LINES   /* lifted from the buffer in one sweep (lift97_impl.h) */
            const int lifted = inverse ? KERNEL_LINES(inv)(base, sa, n, nlow, w, tmp)
                                       : KERNEL_LINES(fwd)(base, sa, n, w, tmp);
#ifdef PJ2K_SELF_CHECK   /* the sanitizer build: against the gather and the step-by-step lifting */
            {
                T *const sweep = tmp;
                tmp = malloc(n * w * sizeof *tmp);
                if (!tmp) abort();
                if (inverse) { GATHER(MALLAT) } else { GATHER(NATURAL) }
                if (lifted == pj2k_zero_bits(tmp, n * w * sizeof *tmp)) abort();
                if (lifted) {
                    if (inverse) LIFT(inv, tmp, n, w);
                    else LIFT(fwd, tmp, n, w);
                    for (size_t i = 0; i < n * w; i++)   /* (NaNs: any payload, lift97_impl.h) */
                        if (memcmp(&tmp[i], &sweep[i], sizeof *tmp) && !(tmp[i] != tmp[i] && sweep[i] != sweep[i]))
                            abort();
                }
                free(tmp);
                tmp = sweep;
            }
#endif
            if (!lifted) continue;
            if (!inverse) SCATTER(MALLAT, AS_IS)
            else SCATTER(NATURAL, CLAMPED)  /* also maps NaN to -bound */
#else
            if (!inverse) {
                GATHER(NATURAL)
                if (pj2k_zero_bits(tmp, n * w * sizeof *tmp)) continue;
                LIFT(fwd, tmp, n, w);
                SCATTER(MALLAT, AS_IS)
            } else {
                GATHER(MALLAT)
                if (pj2k_zero_bits(tmp, n * w * sizeof *tmp)) continue;
                LIFT(inv, tmp, n, w);
                SCATTER(NATURAL, CLAMPED)  /* also maps NaN to -bound */
            }
#endif
#undef NATURAL
#undef MALLAT
#undef GATHER
#undef SCATTER
        }
    }
}

/* The lifting of level l + 1 (see LIFT). */
static inline int SFX(lift_of)(unsigned alt_levels, int l)
{
    return (alt_levels >> l) & 1 ? 1 : (alt_levels & PJ2K_LIFT_ROUNDED) ? 2 : 0;
}

/* Both return 0 if a narrow buffer overflowed (its contents are then void). */
static int SFX(forward)(TB *buf, const size_t dims[3], int levels, unsigned alt_levels, T *tmp)
{
    const ptrdiff_t st[3] = {(ptrdiff_t)(dims[1] * dims[2]), (ptrdiff_t)dims[2], 1};
    const size_t lanes = pj2k_lanes(dims);   /* tmp holds pj2k_transform_tmp_elems(dims) */
    int overflow = 0;
    for (int l = 0; l < levels && !overflow; l++) {
        const size_t ext[3] = {pj2k_ceil_shift(dims[0], l), pj2k_ceil_shift(dims[1], l),
                               pj2k_ceil_shift(dims[2], l)};
        for (int axis = 0; axis < 3; axis++)
            SFX(transform_axis)(buf, ext, st, lanes, axis, tmp, 0, SFX(lift_of)(alt_levels, l), 0,
                                &overflow);
    }
    return !overflow;
}

/* (the float32 build of 9/7's inverse is version 8's lossy decoder for 8-
 * and 16-bit samples, and a PSNR trial's reconstruction; the float64 build
 * decodes the others) */
static PJ2K_MAYBE_UNUSED int SFX(inverse)(TB *buf, const size_t dims[3], int levels, unsigned alt_levels, T *tmp,
                        T bound)
{
    const ptrdiff_t st[3] = {(ptrdiff_t)(dims[1] * dims[2]), (ptrdiff_t)dims[2], 1};
    const size_t lanes = pj2k_lanes(dims);   /* tmp holds pj2k_transform_tmp_elems(dims) */
    int overflow = 0;
    for (int l = levels - 1; l >= 0 && !overflow; l--) {
        const size_t ext[3] = {pj2k_ceil_shift(dims[0], l), pj2k_ceil_shift(dims[1], l),
                               pj2k_ceil_shift(dims[2], l)};
        for (int axis = 2; axis >= 0; axis--)
            SFX(transform_axis)(buf, ext, st, lanes, axis, tmp, 1, SFX(lift_of)(alt_levels, l), bound,
                                &overflow);
    }
    return !overflow;
}
#undef CLAMPED
#undef AS_IS
#undef LIFT
#undef PUT
#undef PREFETCH_AHEAD
