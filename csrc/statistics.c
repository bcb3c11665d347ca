/* What the rate model reads from a prepared chunk (docs/DESIGN.md 25, 26):
 * a histogram of its coefficients per band, their context counts at a
 * step, and the squared error of a decode. */
#include "codestream.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Both statistics sample a band's rows at a stride, but never so coarsely
 * that fewer than SAMPLE_MIN_ROWS rows a plane are read (where the band has
 * them). */
#define SAMPLE_MIN_ROWS 16

/* The rows a statistic sampled at row_stride reads in a band of `rows` rows
 * a plane: every k-th (y + 1 a multiple of k), k = row_stride or less where
 * that would read fewer than SAMPLE_MIN_ROWS rows. */
static size_t band_stride(size_t rows, size_t row_stride)
{
    const size_t most = rows / SAMPLE_MIN_ROWS;
    return most < 1 ? 1 : most < row_stride ? most : row_stride;
}

/* Rate-search and layer-placement aid: see the header.  A double's bits
 * above the top three mantissa bits (sign 0) order non-negative values like
 * the values.
 *
 * One pass over the coefficients (a second would read them all again: a
 * chunk's doubles are 8x its 8-bit samples): keys are binned against a
 * provisional top, the largest key of every HISTOGRAM_PROBE_STRIDE-th row,
 * with HISTOGRAM_HEADROOM bins above it for larger values, while the true
 * largest key is tracked; the bins are then shifted to it, which gives the
 * same counts as binning against it.  A value more than the headroom above
 * the provisional top (a spike between probed rows) makes a second pass bin
 * against the true top. */
#define HISTOGRAM_PROBE_STRIDE 16
#define HISTOGRAM_HEADROOM 64   /* eight octaves */
#define HISTOGRAM_MAX_BINS (1 << 16)   /* (bins are computed in 32-bit lanes) */

#define HISTOGRAM_SLICE 256
/* Row `at` (nx values) of component c as the histogram's kernels read it:
 * 9/7's coefficients where they are (float32 where f32, else float64), the
 * reversible modes' integers converted into buf as doubles. */
static const void *binned_row(const pj2k_prepared *prep, int f32, size_t c, size_t at, size_t nx,
                              double *buf)
{
    const size_t first = c * prep->L.box + at;
    if (prep->lossy)
        return f32 ? (const void *)((const float *)prep->real + first)
                   : (const void *)((const double *)prep->real + first);
#define CONVERT(S, CT) for (size_t i = 0; i < nx; i++) buf[i] = (double)((const CT *)prep->coef)[first + i]
    BY_KIND(prep->kind, CONVERT);
#undef CONVERT
    return buf;
}

/* The kernels' histogram_bins on n values of a row from `start`: their bins
 * into bins, the largest key (the key's one definition) returned. */
static int32_t slice_bins(const pj2k_kernels *K, const void *row, int f32, size_t start,
                          size_t n, double norm, int32_t top_bin, int32_t last_bin, int32_t *bins)
{
    return f32 ? K->histogram_bins_f32((const float *)row + start, n, norm, top_bin, last_bin, bins)
               : K->histogram_bins_f64((const double *)row + start, n, norm, top_bin, last_bin,
                                       bins);
}

/* The largest key of every probe_stride-th row of those a histogram of
 * row_stride bins in each band (-1: none): never above the largest key
 * those rows hold, which the bins are shifted to. */
static int64_t largest_key(const pj2k_prepared *prep, const double *norms, size_t probe_stride,
                           size_t row_stride, double *buf)
{
    const pj2k_header *h = &prep->h;
    const layout *L = &prep->L;
    const pj2k_kernels *K = pj2k_kernels_select();
    const int f32 = prep->lossy && prep->real_f32;
    int32_t largest = -1, bins[HISTOGRAM_SLICE];   /* (the bins themselves are not wanted) */
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        FOR_EACH_BAND_ROW(L->dims, h->levels, h->naxes, {
            const size_t k = band_stride(sb->band.n[1], row_stride);
            if ((y + 1) % k == 0 && ((z * sb->band.n[1] + y) / k) % probe_stride == 0) {
                const void *row = binned_row(prep, f32, c, at, nx, buf);
                for (size_t start = 0; start < nx; start += HISTOGRAM_SLICE) {
                    const size_t n = nx - start < HISTOGRAM_SLICE ? nx - start : HISTOGRAM_SLICE;
                    const int32_t key = slice_bins(K, row, f32, start, n, norms[sb->step_index],
                                                   0, 0, bins);
                    largest = key > largest ? key : largest;
                }
            }
        })
    }
    return largest;
}

/* One row's values (float32 or double, scaled by norm) binned against
 * top_bin (bin_keys), in slices of HISTOGRAM_SLICE values: their bins first
 * (the kernels' histogram_bins, which vectorises), then the counting, the
 * last bin's (zeros, which come in runs) in a register: their increments
 * to one address waited on each other (mni152's histogram: -13%).  The
 * float32 coefficients are read as they are (a conversion pass into doubles
 * first cost a third of the histogram).  Returns the row's largest key, or
 * -1.  (Counting into four copies of the band's counts in turn, so that
 * neighbours in one bin do not wait on each other's increment, made the
 * histogram 13-16% faster alone, but their 350 KB of scratch per call made
 * a 128^2 colour tile's whole encode 25% slower in a default glibc process:
 * docs/DESIGN.md 38.) */
static int32_t bin_row(const pj2k_kernels *K, const void *row, int f32, size_t nx, double norm,
                       int32_t top_bin, int32_t last_bin, uint64_t weight, uint64_t *band_counts)
{
    int32_t largest = -1, bins[HISTOGRAM_SLICE];
    for (size_t start = 0; start < nx; start += HISTOGRAM_SLICE) {
        const size_t n = nx - start < HISTOGRAM_SLICE ? nx - start : HISTOGRAM_SLICE;
        const int32_t slice_largest =
            slice_bins(K, row, f32, start, n, norm, top_bin, last_bin, bins);
        largest = slice_largest > largest ? slice_largest : largest;
        size_t in_last = 0;   /* zeros and the smallest values: counted apart */
        for (size_t i = 0; i < n; i++) {
            if (bins[i] == last_bin) in_last++;
            else band_counts[(size_t)bins[i]] += weight;
        }
        band_counts[last_bin] += in_last * weight;
    }
    return largest;
}

/* Bins the keys of every row_stride-th row of each band (the row_stride-th,
 * the 2 row_stride-th, ... of each plane; fewer where that would bin fewer
 * than SAMPLE_MIN_ROWS rows), each counted row_stride times,
 * against `top` into counts (nbands x width, zeroed), bin HISTOGRAM_HEADROOM
 * holding key == top; returns the largest key seen, or -2 if one lies beyond
 * the headroom. */
static int64_t bin_keys(const pj2k_prepared *prep, const double *norms, int64_t top, size_t width,
                        size_t row_stride, uint64_t *counts, double *buf)
{
    const pj2k_header *h = &prep->h;
    const layout *L = &prep->L;
    const pj2k_kernels *K = pj2k_kernels_select();
    const int32_t top_bin = (int32_t)(top + HISTOGRAM_HEADROOM), last_bin = (int32_t)width - 1;
    const int f32 = prep->lossy && prep->real_f32;   /* read as they are; else as doubles */
    int32_t largest = -1;
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        FOR_EACH_BAND_ROW(L->dims, h->levels, h->naxes, {
            const size_t stride = band_stride(sb->band.n[1], row_stride);
            if ((y + 1) % stride == 0) {
                const void *row = binned_row(prep, f32, c, at, nx, buf);
                const int32_t row_largest =
                    bin_row(K, row, f32, nx, norms[sb->step_index], top_bin, last_bin, stride,
                            counts + (size_t)sb->step_index * width);
                largest = row_largest > largest ? row_largest : largest;
            }
        })
    }
    return largest > top_bin ? -2 : largest;   /* (that key's bin would be below 0) */
}

pj2k_status pj2k_prepared_histogram(const pj2k_prepared *prep, size_t row_stride, size_t nbands,
                                    size_t nbins, uint64_t *counts, int64_t *top_key)
{
    if (!prep || row_stride < 1 || nbins < 2 || !counts || !top_key) return PJ2K_ERR_PARAM;
    const pj2k_header *h = &prep->h;
    if (nbands != (size_t)h->nbands || nbins > HISTOGRAM_MAX_BINS) return PJ2K_ERR_PARAM;
    const layout *L = &prep->L;
    memset(counts, 0, nbands * nbins * sizeof *counts);
    *top_key = -1;
    if (!L->elements) return PJ2K_OK;
    double ones[PJ2K_MAX_BANDS];   /* lossless: the integers themselves (layer cuts are in their bit planes) */
    for (size_t b = 0; b < nbands; b++) ones[b] = 1.0;
    const double *norms = prep->lossy ? prep->norms : ones;
    const size_t width = nbins + HISTOGRAM_HEADROOM;
    uint64_t *wide = calloc(nbands * width, sizeof *wide);
    const int converted = !prep->lossy;   /* binned_row converts into buf */
    double *buf = converted ? malloc(L->dims[2] * sizeof *buf) : NULL;
    if (!wide || (converted && !buf)) {
        free(wide);
        free(buf);
        return PJ2K_ERR_NOMEM;
    }
    /* the provisional top, from rows that are binned: the true top is at
     * least as large */
    int64_t probe = largest_key(prep, norms, HISTOGRAM_PROBE_STRIDE, row_stride, buf);
    int64_t top = bin_keys(prep, norms, probe, width, row_stride, wide, buf);
    if (top == -1 && row_stride > 1) {   /* nothing in the rows binned: every row */
        memset(wide, 0, nbands * width * sizeof *wide);
        row_stride = 1;
        probe = largest_key(prep, norms, HISTOGRAM_PROBE_STRIDE, row_stride, buf);
        top = bin_keys(prep, norms, probe, width, row_stride, wide, buf);
    }
    if (top == -2) {   /* beyond the headroom: again, against the true top */
        memset(wide, 0, nbands * width * sizeof *wide);
        probe = top = largest_key(prep, norms, 1, row_stride, buf);
        bin_keys(prep, norms, probe, width, row_stride, wide, buf);
    }
    free(buf);
    if (top >= 0) {
        /* key == top sits in wide bin HISTOGRAM_HEADROOM - (top - probe) */
        const size_t first = (size_t)(HISTOGRAM_HEADROOM - (top - probe));
        for (size_t b = 0; b < nbands; b++) {
            const uint64_t *from = wide + b * width + first;
            uint64_t *to = counts + b * nbins;
            memcpy(to, from, (nbins - 1) * sizeof *to);
            for (size_t j = nbins - 1; j < width - first; j++) to[nbins - 1] += from[j];
        }
    } else {   /* nothing finite and non-zero: all in the last bin */
        for (size_t b = 0; b < nbands; b++)
            for (size_t j = 0; j < width; j++) counts[b * nbins + nbins - 1] += wide[b * width + j];
    }
    free(wide);
    *top_key = top;
    return PJ2K_OK;
}
#undef HISTOGRAM_PROBE_STRIDE
#undef HISTOGRAM_HEADROOM
#undef HISTOGRAM_MAX_BINS
#undef HISTOGRAM_SLICE

pj2k_status pj2k_squared_error(pj2k_dtype dtype, const void *a, const void *b, size_t nbytes,
                               double *sum)
{
    if (!sum || (unsigned)dtype >= PJ2K_NUM_DTYPES || nbytes % DTYPE_INFO[dtype].size ||
        (nbytes && (!a || !b)))
        return PJ2K_ERR_PARAM;
    const size_t n = nbytes / DTYPE_INFO[dtype].size;
    *sum = n ? pj2k_kernels_select()->squared_error[dtype](a, b, n) : 0.0;
    return PJ2K_OK;
}

pj2k_status pj2k_prepared_coefficients(const pj2k_prepared *prep, double *out, size_t capacity,
                                       size_t *count)
{
    if (!prep || !prep->lossy || !count) return PJ2K_ERR_PARAM;
    const size_t n = prep->L.elements;
    *count = n;
    if (!out) return PJ2K_OK;
    if (capacity < n) return PJ2K_ERR_PARAM;
    for (size_t i = 0; i < n; i++)
        out[i] = pj2k_real_at(prep->real, prep->real_f32, (ptrdiff_t)i);
    return PJ2K_OK;
}

/* Rate-search aid for 9/7: see the header.  Magnitudes are capped below
 * 2**26 so that neighbourhood sums stay in 32 bits and every pass but the
 * counting vectorises. */
#define CONTEXT_MAGNITUDE_CAP 67108863.0
#define MAGNITUDES(NAME, REAL)                                                          \
    static void NAME(const REAL *src, size_t n, double inv, uint32_t *m)                \
    {                                                                                   \
        for (size_t i = 0; i < n; i++) {                                                \
            const double a = fabs((double)src[i]) * inv;                                \
            m[i] = (uint32_t)(int32_t)(a < CONTEXT_MAGNITUDE_CAP ? a : CONTEXT_MAGNITUDE_CAP); \
        }                                                                               \
    }
MAGNITUDES(magnitudes_f64, double)
MAGNITUDES(magnitudes_f32, float)
#undef MAGNITUDES
/* n prepared 9/7 coefficients from element `at` on, in steps of 1 / inv */
static void magnitudes_in_steps(const pj2k_prepared *prep, ptrdiff_t at, size_t n, double inv, uint32_t *m)
{
    if (prep->real_f32) magnitudes_f32((const float *)prep->real + at, n, inv, m);
    else magnitudes_f64((const double *)prep->real + at, n, inv, m);
}

/* The parent term of docs/FORMAT.md 6.2 for each of a band row's nx values,
 * from the parent row `par` (pnx values, one more slot) and the row below it. */
static void spread_parent_term(uint32_t *par, const uint32_t *below, size_t pnx, unsigned shift,
                               uint32_t *term, size_t nx)
{
    par[pnx] = par[pnx - 1];
    for (size_t px = 0; px < pnx; px++) par[px] += (par[px + 1] + below[px]) >> 1;
    for (size_t x = 0; x < nx; x++) {
        const size_t px = x >> shift;
        term[x] = par[px < pnx ? px : pnx - 1];
    }
}

pj2k_status pj2k_prepared_context_counts(const pj2k_prepared *prep, double step, size_t row_stride,
                                         size_t nbands, size_t nctx, size_t nexps, uint64_t *counts)
{
    if (!prep || !prep->lossy || !counts || !(step > 0.0 && step <= DBL_MAX) || row_stride < 1 ||
        nctx < 1 || nexps < 2)
        return PJ2K_ERR_PARAM;
    const pj2k_header *h = &prep->h;
    if (nbands != (size_t)h->nbands || nctx > SIZE_MAX / sizeof *counts / nbands / nexps)
        return PJ2K_ERR_PARAM;
    const layout *L = &prep->L;
    memset(counts, 0, nbands * nctx * nexps * sizeof *counts);
    if (!L->elements) return PJ2K_OK;
    const double *norms = prep->norms;
    /* magnitude rows (this one, the one above, and zeros for the plane
     * before the first, each with a zero on either side; the parent row and
     * the one below it), the parent term per value, the neighbourhood sums,
     * then the previous component's row (the colour term) (calloc: the
     * zeros stay zeros) */
    const size_t width = L->dims[2] + 2;
    uint32_t *rows = calloc(8 * width, sizeof *rows);
    if (!rows) return PJ2K_ERR_NOMEM;
    uint32_t *cur = rows + 1, *up = cur + width, *back = up + width, *par = back + width,
             *par_below = par + width, *parent_term = par_below + width, *sum = parent_term + width,
             *colour = sum + width;
    /* bands of more than one plane: a plane's sampled rows are the next
     * plane's rows behind, and planes with the same parent plane (2k and
     * 2k + 1 under a 3-D transform, more where it is clamped) share their
     * parent terms; both are kept per band (the last plane's rows, each
     * with a zero before it, and the parent terms) instead of being
     * converted and spread again */
    uint32_t *planes = NULL;
    size_t planes_size = 0;
    pj2k_status st = PJ2K_OK;
    const int per_segment = (1 << h->naxes) - 1;
    for (size_t c = 0; c < L->planes * L->ncomp && st == PJ2K_OK; c++) {
        for (int r = 0; r <= h->levels && st == PJ2K_OK; r++) {
            segment_band sbs[7];
            const int nb = pj2k_segment_bands(L->dims, h->levels, r, h->naxes, 1, sbs);
            for (int b = 0; b < nb; b++) {
                const pj2k_band *band = &sbs[b].band;
                const size_t nx = band->n[2], ny = band->n[1], nz = band->n[0], pnx = band->pn[2];
                const size_t stride = band_stride(ny, row_stride);
                const size_t sampled = ny >= stride ? (ny - stride) / stride + 1 : 0;
                const double inv = norms[sbs[b].step_index] / step;
                const ptrdiff_t origin = (ptrdiff_t)(c * L->box + sbs[b].offset);
                uint64_t *band_counts = counts + (size_t)sbs[b].step_index * nctx * nexps;
                uint32_t *last_plane = NULL, *this_plane = NULL, *parent_plane = NULL;
                const size_t row_width = nx + 1;   /* a zero, then the row */
                /* components 1 and 2 but in the low band (docs/FORMAT.md 6.2) */
                const int colour_term = c % L->ncomp != 0 && r > 0;
                if (nz > 1) {
                    const size_t need = 3 * sampled * row_width;
                    if (need > planes_size) {
                        free(planes);
                        planes = malloc(need * sizeof *planes);
                        planes_size = planes ? need : 0;
                        if (!planes) { st = PJ2K_ERR_NOMEM; break; }
                    }
                    last_plane = planes;
                    this_plane = last_plane + sampled * row_width;
                    parent_plane = this_plane + sampled * row_width;
                    for (size_t i = 0; i < 2 * sampled; i++) planes[i * row_width] = 0;
                }
                size_t parents_of = SIZE_MAX;   /* the parent plane parent_plane holds */
                /* most values are zeros amid zeros: the count of (0, 0) is
                 * what the others leave, not a chain of increments */
                size_t quiet = 0;
                up[nx] = 0;
                for (size_t z = 0; z < nz; z++) {
                    size_t pz = pnx ? z >> band->ps[0] : 0;
                    pz = pnx && pz >= band->pn[0] ? band->pn[0] - 1 : pz;
                    const int fresh_parents = !parent_plane || pz != parents_of;
                    for (size_t y = stride - 1, row = 0; y < ny; y += stride, row++) {
                        const ptrdiff_t at = origin + (ptrdiff_t)z * band->stride[0] +
                                             (ptrdiff_t)y * band->stride[1];
                        uint32_t *here = this_plane ? this_plane + row * row_width + 1 : cur;
                        magnitudes_in_steps(prep, at, nx, inv, here);
                        if (y) magnitudes_in_steps(prep, at - band->stride[1], nx, inv, up);
                        else memset(up, 0, nx * sizeof *up);
                        const uint32_t *behind = z && last_plane ? last_plane + row * row_width + 1 : back;
                        for (size_t x = 0; x < nx; x++)
                            sum[x] = 2u * here[x - 1] + up[x - 1] + 2u * up[x] + up[x + 1] + 2u * behind[x];
                        if (pnx) {
                            uint32_t *term = parent_plane ? parent_plane + row * row_width : parent_term;
                            if (fresh_parents) {
                                size_t py = y >> band->ps[1];
                                py = py < band->pn[1] ? py : band->pn[1] - 1;
                                const ptrdiff_t prow = origin + band->parent_offset + (ptrdiff_t)pz * band->stride[0] +
                                                     (ptrdiff_t)py * band->stride[1];
                                const double pinv = norms[sbs[b].step_index - per_segment] / step;
                                magnitudes_in_steps(prep, prow, pnx, pinv, par);
                                magnitudes_in_steps(prep, py + 1 < band->pn[1] ? prow + band->stride[1] : prow, pnx,
                                                    pinv, par_below);
                                spread_parent_term(par, par_below, pnx, band->ps[2], term, nx);
                            }
                            for (size_t x = 0; x < nx; x++) sum[x] += term[x];
                        }
                        if (colour_term) {   /* the previous component's value, as the coder's term */
                            magnitudes_in_steps(prep, at - (ptrdiff_t)L->box, nx, inv, colour);
                            for (size_t x = 0; x < nx; x++) sum[x] += colour[x];
                        }
                        for (size_t x = 0; x < nx; x++) {
                            if (!(sum[x] | here[x])) continue;
                            const unsigned ctx = magnitude_context(sum[x]), e = bit_length(here[x]);
                            band_counts[(ctx < nctx ? ctx : nctx - 1) * nexps + (e < nexps ? e : nexps - 1)] +=
                                stride;
                            quiet--;
                        }
                        quiet += nx;
                    }
                    parents_of = pz;
                    if (this_plane) {   /* this plane's rows are the next one's behind */
                        uint32_t *t = last_plane;
                        last_plane = this_plane;
                        this_plane = t;
                    }
                }
                band_counts[0] += quiet * stride;
            }
        }
    }
    free(planes);
    free(rows);
    return st;
}

/* ---- likeness of neighbouring planes (encode()'s choice of axes) ---- */

/* The n samples of one dtype at p + at[x] * stride (bytes) as doubles
 * (memcpy: any alignment); one loop per dtype, so each is a plain
 * conversion. */
typedef void (*gather_fn)(const uint8_t *p, const uint64_t *at, size_t n, int64_t stride,
                          double *to);
#define GATHER(SFX, T)                                                                   \
    static void gather_##SFX(const uint8_t *p, const uint64_t *at, size_t n, int64_t stride, \
                             double *to)                                                 \
    {                                                                                    \
        for (size_t x = 0; x < n; x++) {                                                 \
            T v;                                                                         \
            memcpy(&v, p + (int64_t)at[x] * stride, sizeof v);                           \
            to[x] = (double)v;                                                           \
        }                                                                                \
    }
GATHER(u8, uint8_t)
GATHER(i8, int8_t)
GATHER(u16, uint16_t)
GATHER(i16, int16_t)
GATHER(u32, uint32_t)
GATHER(i32, int32_t)
GATHER(f32, float)
GATHER(f64, double)
#undef GATHER
static const gather_fn GATHER_BY_DTYPE[PJ2K_NUM_DTYPES] = {
    gather_u8, gather_i8, gather_u16, gather_i16, gather_u32, gather_i32, gather_f32, gather_f64};

pj2k_status pj2k_pair_detail(pj2k_dtype dtype, const void *origin, const uint64_t shape[3],
                             const int64_t strides[3], const uint64_t *const positions[3],
                             const size_t count[3], double *mixed, double *within)
{
    if ((unsigned)dtype >= PJ2K_NUM_DTYPES || !origin || !shape || !strides || !positions ||
        !count || !mixed || !within)
        return PJ2K_ERR_PARAM;
    for (int a = 0; a < 3; a++) {
        if (count[a] < 2 || count[a] % 2 || !positions[a]) return PJ2K_ERR_PARAM;
        for (size_t i = 0; i < count[a]; i++)
            if (positions[a][i] >= shape[a]) return PJ2K_ERR_PARAM;
    }
    const size_t n0 = count[0], n1 = count[1], n2 = count[2];
    if (n1 > SIZE_MAX / n2 || n0 > SIZE_MAX / sizeof(double) / (n1 * n2)) return PJ2K_ERR_PARAM;
    double *g = malloc(n0 * n1 * n2 * sizeof *g);   /* the sampled block, gathered */
    if (!g) return PJ2K_ERR_NOMEM;
    for (size_t z = 0; z < n0; z++)
        for (size_t y = 0; y < n1; y++) {
            const uint8_t *row = (const uint8_t *)origin + (int64_t)positions[0][z] * strides[0] +
                                 (int64_t)positions[1][y] * strides[1];
            GATHER_BY_DTYPE[dtype](row, positions[2], n2, strides[2], g + (z * n1 + y) * n2);
        }
    /* floats in units of the largest finite magnitude read (no difference
     * overflows); the points read: (even, even) and its two neighbours */
    const int is_float = DTYPE_INFO[dtype].is_float;
    double largest = 1.0;
    if (is_float) {
        largest = 0.0;
        for (size_t z = 0; z < n0; z++)
            for (size_t y = 0; y < n1; y++)
                for (size_t x = 0; x < n2; x += 1 + y % 2) {   /* odd rows: even x only */
                    const double a = fabs(g[(z * n1 + y) * n2 + x]);
                    if (isfinite(a) && a > largest) largest = a;
                }
    }
    for (size_t k = 0; k < n0 / 2; k++) {
        const double *here = g + 2 * k * n1 * n2, *there = here + n1 * n2;
        double change = 0.0, size = 0.0;
        size_t counted = 0;
        if (largest > 0.0)
            for (size_t y = 0; y < n1; y += 2)
                for (size_t x = 0; x < n2; x += 2) {
                    const size_t at = y * n2 + x, next[2] = {at + 1, at + n2};   /* axis 2, axis 1 */
                    for (int d = 0; d < 2; d++) {
                        const double a = is_float ? here[next[d]] / largest - here[at] / largest
                                                  : here[next[d]] - here[at];
                        const double b = is_float ? there[next[d]] / largest - there[at] / largest
                                                  : there[next[d]] - there[at];
                        const double c = fabs(b - a), s = 0.5 * (fabs(a) + fabs(b));
                        if (is_float && !(isfinite(c) && isfinite(s))) continue;
                        change += c;
                        size += s;
                        counted++;
                    }
                }
        const double n = counted ? (double)counted : 1.0;
        mixed[k] = change / n;
        within[k] = size / n;
    }
    free(g);
    return PJ2K_OK;
}
