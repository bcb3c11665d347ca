/* The rate model's tables (docs/DESIGN.md 25 and 33): from a chunk's
 * histogram of coefficient magnitudes (pj2k_prepared_histogram), the
 * estimated bits and squared error at every base step on the histogram's
 * bin edges.  The rate search reads them once per chunk; built from numpy
 * calls they cost about a quarter of a millisecond, as much as a trial
 * encode of a 128^2 chunk.  The arithmetic is the numpy reference's, in its
 * order (tests/test_lossy.py keeps that reference and compares). */
#include "progressive_j2k.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x log2 x, 0 for x <= 1 (counts: 0 or 1, without a log2) */
static double xlog2x(double x) { return x > 1.0 ? x * log2(x) : 0.0; }

/* xlog2x along a run of counts, which repeat in plateaus (empty bins): the
 * last argument and result are kept, and counts of 0 or 1 cost no log2 */
typedef struct { double x, y; } xlog2x_memo;
static double xlog2x_run(double x, xlog2x_memo *memo)
{
    if (x <= 1.0) return 0.0;
    if (x != memo->x) {
        memo->x = x;
        memo->y = xlog2x(x);
    }
    return memo->y;
}

/* above[j] = sum over k = 1..j/8 of p[j % 8 + 8 (k - 1)], j < cols: the
 * octaves above grid point j that start at its phase, accumulated in
 * increasing k (as the numpy reference's cumulative sum) */
static void octaves_above(const double *p, size_t cols, double *above)
{
    for (size_t j = 0; j < cols; j++) above[j] = j < 8 ? 0.0 : above[j - 8] + p[j - 8];
}

/* log2 of the step at grid point j: key top_key - j = biased exponent * 8 +
 * three mantissa bits, the bin's upper edge; eighths[m] = log2(1 + (m + 1) / 8)
 * (eight log2 calls per table instead of one per grid point) */
static double grid_log2_step(int64_t top_key, size_t j, const double eighths[8])
{
    const int64_t key = top_key - (int64_t)j;
    const int64_t octave = key >= 0 ? key / 8 : -((-key + 7) / 8);   /* floor(key / 8) */
    return (double)(octave - 1023) + eighths[(uint64_t)key & 7u];
}

pj2k_status pj2k_rate_tables(const uint64_t *counts, size_t nbands, size_t nbins, int64_t top_key,
                             int per_band, size_t extension_octaves, double *log_step,
                             double *bits, double *error, size_t *length)
{
    if (!counts || !nbands || nbins < 2 || nbins > PJ2K_RATE_MAX_BINS || nbands > PJ2K_MAX_BANDS
        || extension_octaves > PJ2K_RATE_MAX_EXTENSION || !log_step || !bits || !error || !length
        || top_key < 0 || top_key > INT64_MAX / 2)
        return PJ2K_ERR_PARAM;
    /* each band's bins in use: 0..band_end[b] - 1 (the last bin, the
     * smallest values, aside); the last bin in use over all bands */
    size_t band_end[PJ2K_MAX_BANDS], last = SIZE_MAX;
    for (size_t b = 0; b < nbands; b++) {
        const uint64_t *c = counts + b * nbins;
        size_t end = nbins - 1;
        /* (eight bins at a time through the empty tail: the OR vectorises) */
        while (end >= 8 && !(c[end - 1] | c[end - 2] | c[end - 3] | c[end - 4] | c[end - 5] |
                             c[end - 6] | c[end - 7] | c[end - 8]))
            end -= 8;
        while (end > 0 && !c[end - 1]) end--;
        band_end[b] = end;
        if (end && (last == SIZE_MAX || end - 1 > last)) last = end - 1;
    }
    if (last == SIZE_MAX) return PJ2K_ERR_PARAM;   /* nothing to model */
    /* from 8 grid points past the last bin in use, the table repeats by octaves */
    const size_t used = last + 8;
    const size_t cols = used + 1, ext = 8 * extension_octaves, width = ext + cols;
    const size_t room = nbins + 8 + ext;   /* the rows' spacing in bits and error */
    *length = width;

    double *scratch = malloc((11 * cols + 16) * sizeof *scratch);
    if (!scratch) return PJ2K_ERR_NOMEM;
    double *below = scratch;                 /* used + 8: values in bins < j */
    double *octave = below + used + 8;       /* used: bins i..i+7 */
    double *first8 = octave + used;          /* 8: the row's sum of xlog2x(below[p]) */
    double *octave_x = first8 + 8;           /* used, and so on: the row's sums */
    double *rest_x = octave_x + used;        /* cols: xlog2x(total - below[j]) */
    double *nonzero = rest_x + cols;         /* cols: below[j] */
    double *octave_sum = nonzero + cols;     /* used: octave[i] */
    double *weighted = octave_sum + used;    /* used: (i / 8 + 1) octave_sum[i] */
    double *log2_step = weighted + used;     /* cols */
    double *row_bits = log2_step + cols;     /* cols */
    double *row_error = row_bits + cols;     /* cols */

    double eighths[8];
    for (int m = 0; m < 8; m++) eighths[m] = log2(1.0 + (double)(m + 1) / 8.0);
    for (size_t j = 0; j < cols; j++) log2_step[j] = grid_log2_step(top_key, j, eighths);
    for (size_t e = 0; e < ext; e++) {
        const double d = (double)(extension_octaves - e / 8);
        log_step[e] = (log2_step[used - e % 8] - d) * log(2.0);
    }
    for (size_t j = 0; j < cols; j++) log_step[ext + j] = log2_step[used - j] * log(2.0);

    const size_t rows = per_band ? nbands : 1;
    for (size_t r = 0; r < rows; r++) {
        double total_x = 0.0;
        memset(first8, 0, 8 * sizeof *first8);
        memset(octave_x, 0, used * sizeof *octave_x);
        memset(rest_x, 0, cols * sizeof *rest_x);
        memset(nonzero, 0, cols * sizeof *nonzero);
        memset(octave_sum, 0, used * sizeof *octave_sum);
        for (size_t b = per_band ? r : 0; b < (per_band ? r + 1 : nbands); b++) {
            const uint64_t *c = counts + b * nbins;
            /* past its bins in use (end < used) a band's cumulative count
             * stays `held` and its octaves are empty: there it adds the same
             * values as a whole pass would, without the pass (most bands end
             * far above the float32 rounding noise that sets `used`) */
            const size_t end = band_end[b];
            uint64_t total = c[nbins - 1];
            for (size_t j = 0; j < end; j++) total += c[j];
            below[0] = 0.0;
            for (size_t j = 0; j < end; j++) below[j + 1] = below[j] + (double)c[j];
            const double held = below[end];
            for (size_t j = end + 1; j < end + 8; j++) below[j] = held;
            const size_t octaves = end < used ? end : used, head = end < cols ? end : cols;
            for (size_t i = 0; i < octaves; i++) octave[i] = below[i + 8] - below[i];
            total_x += xlog2x((double)total);
            xlog2x_memo memo = {0.0, 0.0};
            for (size_t p = 0; p < 8; p++) first8[p] += xlog2x_run(p < end ? below[p] : held, &memo);
            for (size_t i = 0; i < octaves; i++) octave_x[i] += xlog2x_run(octave[i], &memo);
            for (size_t j = 0; j < head; j++)
                rest_x[j] += xlog2x_run((double)total - below[j], &memo);
            const double rest_held = xlog2x((double)total - held);
            for (size_t j = head; j < cols; j++) rest_x[j] += rest_held;
            for (size_t j = 0; j < head; j++) nonzero[j] += below[j];
            for (size_t j = head; j < cols; j++) nonzero[j] += held;
            for (size_t i = 0; i < octaves; i++) octave_sum[i] += octave[i];
        }
        for (size_t i = 0; i < used; i++) weighted[i] = (double)(i / 8 + 1) * octave_sum[i];
        /* at grid point j the non-zero values fall into the exponent groups
         * bins 0..phase-1 (bit length t + 1) and, for k = 1..t, the octave
         * starting at bin phase + 8(k-1) (bit length t - k + 1): their
         * entropy, then mantissa bits and signs */
        octaves_above(octave_x, cols, row_bits);
        octaves_above(weighted, cols, row_error);   /* (row_error: scratch until below) */
        for (size_t j = 0; j < cols; j++) {
            const size_t t = j / 8;
            row_bits[j] = total_x - first8[j % 8] - row_bits[j] - rest_x[j]
                          + (double)(t + 1) * nonzero[j] - row_error[j];
        }
        /* error: count * centre**2 for the values a step zeroes (summed from
         * the finest grid point), step**2 / 12 for the others */
        double zeroed_below = 0.0;
        row_error[used] = 0.0;
        for (size_t i = used; i-- > 0;) {
            zeroed_below += (nonzero[i + 1] - nonzero[i]) * exp2(log2_step[i + 1] + log2_step[i]);
            row_error[i] = zeroed_below;
        }
        for (size_t j = 0; j < cols; j++)
            row_error[j] += nonzero[j] * exp2(2 * log2_step[j]) / 12;
        /* past the last bin in use every value is non-zero: an octave finer
         * adds one mantissa bit per value and quarters the error, exactly;
         * extension_octaves of that (finest first), then the grid, coarsest last */
        double *out_bits = bits + r * room, *out_error = error + r * room;
        double quarter_d = ldexp(1.0, -2 * (int)extension_octaves);   /* 4**-d, exact */
        for (size_t e = 0; e < ext; e++) {
            const size_t d = extension_octaves - e / 8, f = used - e % 8;
            if (e && e % 8 == 0) quarter_d *= 4.0;
            out_bits[e] = row_bits[f] + (double)d * nonzero[used];
            out_error[e] = row_error[f] * quarter_d;
        }
        for (size_t j = 0; j < cols; j++) {
            out_bits[ext + j] = row_bits[used - j];
            out_error[ext + j] = row_error[used - j];
        }
    }
    free(scratch);
    return PJ2K_OK;
}

pj2k_status pj2k_context_gain(const uint64_t *counts, size_t nbands, size_t nctx, size_t nexps,
                              double *gain)
{
    if (!counts || !gain || !nbands || nbands > PJ2K_MAX_BANDS || !nctx
        || nctx > PJ2K_RATE_MAX_BINS || nexps < 2 || nexps > PJ2K_RATE_MAX_BINS)
        return PJ2K_ERR_PARAM;
    *gain = -1.0;
    /* per bit length: its count over all rows (uint64), then a band's (double);
     * which (band, context) rows are in use: most are empty, and the sums
     * below skip them (adding their zeros would change no bit) */
    uint64_t *per_length = calloc(nexps, sizeof *per_length);
    double *length_total = malloc(nexps * sizeof *length_total);
    unsigned char *in_use = malloc(nbands * nctx);
    if (!per_length || !length_total || !in_use) {
        free(per_length);
        free(length_total);
        free(in_use);
        return PJ2K_ERR_NOMEM;
    }
    size_t contexts = 0, lengths = 0;   /* trimmed to the ones in use */
    for (size_t b = 0; b < nbands; b++)
        for (size_t c = 0; c < nctx; c++) {   /* row by row: loops that vectorise */
            const uint64_t *row = counts + (b * nctx + c) * nexps;
            uint64_t any_in_row = 0;
            for (size_t e = 0; e < nexps; e++) {
                per_length[e] += row[e];
                any_in_row |= row[e];
            }
            in_use[b * nctx + c] = any_in_row != 0;
            if (any_in_row && c + 1 > contexts) contexts = c + 1;
        }
    /* bit length e costs e - 1 mantissa bits and a sign beyond its own code */
    double raw = 0.0;
    int any = 0;
    for (size_t e = 0; e < nexps; e++) {
        raw += (double)per_length[e] * (double)e;
        if (per_length[e]) lengths = e + 1;
        any |= e > 0 && per_length[e];
    }
    free(per_length);
    /* bits with one distribution of bit lengths per band, and with one per
     * band and context */
    double zero_order = 0.0, by_context = 0.0;
    for (size_t b = 0; any && b < nbands; b++) {
        for (size_t e = 0; e < lengths; e++) length_total[e] = 0.0;
        for (size_t c = 0; c < contexts; c++) {
            if (!in_use[b * nctx + c]) continue;
            const uint64_t *row = counts + (b * nctx + c) * nexps;
            double context_total = 0.0;
            for (size_t e = 0; e < lengths; e++) {
                length_total[e] += (double)row[e];
                context_total += (double)row[e];
                by_context -= xlog2x((double)row[e]);
            }
            by_context += xlog2x(context_total);
        }
        double band_total = 0.0;
        for (size_t e = 0; e < lengths; e++) {
            zero_order -= xlog2x(length_total[e]);
            band_total += length_total[e];
        }
        zero_order += xlog2x(band_total);
    }
    free(length_total);
    free(in_use);
    if (!any) return PJ2K_OK;   /* no value is non-zero */
    *gain = (by_context + raw) / (zero_order + raw);
    return PJ2K_OK;
}

/* np.interp(x, xs, ys) at one point, in numpy's arithmetic (xs ascending):
 * the end values outside, a table point's own value on it, else the slope
 * from the left point (from the right one where that gives NaN) */
static double interp_at(const double *xs, const double *ys, size_t n, double x)
{
    if (x != x) return x;
    if (x < xs[0]) return ys[0];
    if (x >= xs[n - 1]) return ys[n - 1];
    size_t j = 0, above = n - 1;   /* xs[j] <= x < xs[above] */
    while (above - j > 1) {
        const size_t middle = j + (above - j) / 2;
        if (xs[middle] <= x) j = middle;
        else above = middle;
    }
    if (xs[j] == x) return ys[j];
    const double slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]);
    double y = slope * (x - xs[j]) + ys[j];
    if (y != y) {
        y = slope * (x - xs[j + 1]) + ys[j + 1];
        if (y != y && ys[j] == ys[j + 1]) y = ys[j];
    }
    return y;
}

/* whether (xs, ys) is a table interp_at reads: two points or more, xs
 * strictly ascending (so no NaN) */
static int is_table(const double *xs, const double *ys, size_t n)
{
    if (!xs || !ys || n < 2) return 0;
    for (size_t i = 1; i < n; i++)
        if (!(xs[i - 1] < xs[i])) return 0;
    return 1;
}

pj2k_status pj2k_rate_interp(const double *xs, const double *ys, size_t n, double x, double *y)
{
    if (!y || !is_table(xs, ys, n)) return PJ2K_ERR_PARAM;
    *y = interp_at(xs, ys, n, x);
    return PJ2K_OK;
}

pj2k_status pj2k_rate_solve(const double *xs, const double *ys, size_t n, double y, double lo,
                            double hi, double *x)
{
    if (!x || !is_table(xs, ys, n)) return PJ2K_ERR_PARAM;
    const double y_lo = interp_at(xs, ys, n, lo), y_hi = interp_at(xs, ys, n, hi);
    if (!(y_lo > y)) { *x = lo; return PJ2K_OK; }
    if (!(y_hi < y)) { *x = hi; return PJ2K_OK; }
    /* the table's points strictly inside the window: start .. stop - 1 */
    size_t start = 0, stop = 0;
    while (start < n && xs[start] <= lo) start++;
    while (stop < n && xs[stop] < hi) stop++;
    const size_t inside = stop > start ? stop - start : 0;
    /* window point k: 0 its low end, 1..inside the table's, inside + 1 its
     * high end; k the first at or below y (the finest crossing) */
    size_t k = inside + 1;
    for (size_t i = 0; i < inside; i++)
        if (ys[start + i] <= y) { k = i + 1; break; }
    const double x0 = k == 1 ? lo : xs[start + k - 2], v0 = k == 1 ? y_lo : ys[start + k - 2];
    const double x1 = k > inside ? hi : xs[start + k - 1], v1 = k > inside ? y_hi : ys[start + k - 1];
    const double fall = v0 - v1;
    const double crossing = fall != 0.0 ? x0 + (v0 - y) / fall * (x1 - x0) : NAN;
    *x = isfinite(crossing) ? crossing : isfinite(v1) ? x1 : x0;
    return PJ2K_OK;
}
