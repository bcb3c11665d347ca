/* Before the transform: nodata samples (version 10's mask) replaced by a
 * continuation of the data around them, push-pull along the transformed
 * axes (docs/DESIGN.md 59, 61).  Each level's cell holds the sum and the
 * count of the data in its block; from the coarsest level down, a cell's
 * missing share is filled from the coarser level interpolated linearly
 * (cell centres; PJ2K_INPAINT_SMOOTH), or a cell without data takes its
 * parent's value and one with data its data's mean
 * (PJ2K_INPAINT_BLOCK_MEANS); at full resolution the nodata samples take
 * the value of level 1 there, clipped to the data's range. */
#include "internal.h"
#include <stdlib.h>
#include <string.h>

typedef struct {
    int ndim;
    size_t shape[PJ2K_MAX_NDIM];
} grid;

static size_t grid_size(const grid *g)
{
    size_t n = 1;
    for (int a = 0; a < g->ndim; a++) n *= g->shape[a];
    return n;
}

static void split(const grid *g, int axis, size_t *outer, size_t *inner)
{
    *outer = *inner = 1;
    for (int a = 0; a < axis; a++) *outer *= g->shape[a];
    for (int a = axis + 1; a < g->ndim; a++) *inner *= g->shape[a];
}

/* Pairs along `axis` summed (an odd last one alone); *g shrinks. */
static void halve(grid *g, int axis, const double *in, double *out)
{
    size_t outer, inner;
    split(g, axis, &outer, &inner);
    const size_t n = g->shape[axis], half = (n + 1) / 2;
    for (size_t o = 0; o < outer; o++)
        for (size_t x = 0; x < half; x++) {
            const double *even = in + (o * n + 2 * x) * inner;
            double *to = out + (o * half + x) * inner;
            if (2 * x + 1 < n)
                for (size_t e = 0; e < inner; e++) to[e] = even[e] + even[inner + e];
            else
                memcpy(to, even, inner * sizeof *to);
        }
    g->shape[axis] = half;
}

/* Fine sample j's two cells of the coarser level (m of them) and the
 * second's weight: cell centres, fine sample j at coarse j / 2 - 1/4,
 * clamped at the ends. */
static void cells_of(size_t j, size_t m, size_t *lo, size_t *hi, double *w_hi)
{
    const size_t base = j / 2;
    if (j % 2 == 0) { *lo = base ? base - 1 : 0; *hi = base; *w_hi = 0.75; }
    else { *lo = base; *hi = base + 1; *w_hi = 0.25; }
    if (*lo >= m) *lo = m - 1;
    if (*hi >= m) *hi = m - 1;
}

/* Fine sample j's cell of the coarser level (m of them) alone: its parent. */
static void parent_of(size_t j, size_t m, size_t *lo, size_t *hi, double *w_hi)
{
    *lo = *hi = j / 2 < m ? j / 2 : m - 1;
    *w_hi = 0.0;
}

typedef void (*cells_fn)(size_t j, size_t m, size_t *lo, size_t *hi, double *w_hi);

/* Along `axis` from *g to `n` samples, each from its cells (cells_of:
 * linear interpolation, parent_of: the parent's value); *g grows. */
static void double_up(grid *g, int axis, size_t n, const double *in, double *out, cells_fn cells)
{
    size_t outer, inner;
    split(g, axis, &outer, &inner);
    const size_t m = g->shape[axis];
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < n; j++) {
            size_t lo, hi;
            double w_hi;
            cells(j, m, &lo, &hi, &w_hi);
            const double *a = in + (o * m + lo) * inner, *b = in + (o * m + hi) * inner;
            double *to = out + (o * n + j) * inner;
            for (size_t e = 0; e < inner; e++) to[e] = a[e] * (1.0 - w_hi) + b[e] * w_hi;
        }
    g->shape[axis] = n;
}

pj2k_status pj2k_inpaint(double *values, const uint8_t *mask, int ndim, const uint64_t *shape,
                         int naxes, const int *axes, pj2k_inpaint_style style)
{
    if (!values || !mask || ndim < 1 || ndim > PJ2K_MAX_NDIM || naxes < 0 || naxes > ndim ||
        naxes > PJ2K_MAX_AXES || (style != PJ2K_INPAINT_SMOOTH && style != PJ2K_INPAINT_BLOCK_MEANS))
        return PJ2K_ERR_PARAM;
    const int smooth = style == PJ2K_INPAINT_SMOOTH;
    const cells_fn cells_around = smooth ? cells_of : parent_of;
    grid g = {.ndim = ndim};
    unsigned halves[PJ2K_MAX_NDIM] = {0};
    uint64_t product = 1;   /* (the header's limits: no axis or product beyond 2**48) */
    for (int a = 0; a < ndim; a++) {
        if (shape[a] > ((uint64_t)1 << 48) || (shape[a] && product > ((uint64_t)1 << 48) / shape[a]))
            return PJ2K_ERR_PARAM;
        product *= shape[a];
        g.shape[a] = (size_t)shape[a];
    }
    for (int i = 0; i < naxes; i++) {
        if (axes[i] < 0 || axes[i] >= ndim || (i && axes[i] <= axes[i - 1])) return PJ2K_ERR_PARAM;
        halves[axes[i]] = g.shape[axes[i]] > 1;
    }
    const size_t total = grid_size(&g);
    if (!total) return PJ2K_OK;
    double lo = 0.0, hi = 0.0, mean = 0.0;
    size_t valid = 0;
    for (size_t i = 0; i < total; i++)
        if (!mask[i]) {
            if (!valid || values[i] < lo) lo = values[i];
            if (!valid || values[i] > hi) hi = values[i];
            mean += values[i];
            valid++;
        }
    mean = valid ? mean / (double)valid : 0.0;
    /* the levels: until every transformed axis is one sample */
    int levels = 0;
    for (int i = 0; i < naxes; i++) {
        int l = 0;
        while (((size_t)1 << l) < g.shape[axes[i]]) l++;
        if (l > levels) levels = l;
    }
    if (levels == 0) {   /* (nothing to halve: the data's mean) */
        for (size_t i = 0; i < total; i++)
            if (mask[i]) values[i] = mean;
        return PJ2K_OK;
    }
    grid at[64];   /* (levels <= 48: no axis holds 2**48 samples) */
    size_t offset[65];   /* of level l >= 1 in the pyramid */
    at[0] = g;
    offset[1] = 0;
    for (int l = 0; l < levels; l++) {
        at[l + 1] = at[l];
        for (int i = 0; i < naxes; i++) at[l + 1].shape[axes[i]] = (at[l].shape[axes[i]] + 1) / 2;
        if (l) offset[l + 1] = offset[l] + grid_size(&at[l]);
    }
    offset[levels + 1] = offset[levels] + grid_size(&at[levels]);
    const size_t cells = offset[levels + 1], first = grid_size(&at[1]);
    double *sums = calloc(cells, sizeof *sums), *counts = calloc(cells, sizeof *counts);
    double *work = malloc(2 * first * sizeof *work);   /* two buffers of level 1's size */
    if (!sums || !counts || !work) {
        free(sums);
        free(counts);
        free(work);
        return PJ2K_ERR_NOMEM;
    }
    /* push: level 1 from the samples, then each level from the one below */
    const int last = ndim - 1;
    pj2k_rows_walk w;
    pj2k_walk_start(&w, ndim, g.shape, halves);
    const size_t row = g.shape[last];
    for (size_t i = 0; i < total; i += row, pj2k_walk_next(&w)) {
        const size_t parent = pj2k_walk_parent(&w);
        for (size_t x = 0; x < row; x++)
            if (!mask[i + x]) {
                sums[parent + (x >> halves[last])] += values[i + x];
                counts[parent + (x >> halves[last])] += 1.0;
            }
    }
    for (int l = 1; l < levels; l++) {
        for (int k = 0; k < 2; k++) {
            double *level = k ? counts : sums;
            grid h = at[l];
            const double *from = level + offset[l];
            double *ping = work, *pong = work + first;
            for (int i = 0; i < naxes; i++) {
                if (h.shape[axes[i]] == at[l + 1].shape[axes[i]]) continue;   /* (one sample) */
                halve(&h, axes[i], from, ping);
                from = ping;
                double *t = ping;
                ping = pong;
                pong = t;
            }
            memcpy(level + offset[l + 1], from, grid_size(&at[l + 1]) * sizeof *level);
        }
    }
    /* pull: the top's means, then each level's cells completed from the
     * level above, as `style` says */
    double *estimate = work, *spare = work + first;
    for (size_t i = 0, n = grid_size(&at[levels]); i < n; i++) {
        const size_t c = offset[levels] + i;
        estimate[i] = counts[c] > 0 ? sums[c] / counts[c] : mean;
    }
    for (int l = levels - 1; l >= 1; l--) {
        grid h = at[l + 1];
        for (int i = 0; i < naxes; i++) {
            if (h.shape[axes[i]] == at[l].shape[axes[i]]) continue;
            double_up(&h, axes[i], at[l].shape[axes[i]], estimate, spare, cells_around);
            double *t = estimate;
            estimate = spare;
            spare = t;
        }
        const size_t n = grid_size(&at[l]);
        const double *s = sums + offset[l], *c = counts + offset[l];
        if (!smooth) {   /* a cell with data: its data's mean; else its parent's value */
            for (size_t i = 0; i < n; i++)
                if (c[i] > 0) estimate[i] = s[i] / c[i];
            continue;
        }
        /* each cell's block: 2**l samples along each transformed axis, fewer
         * at an odd end, its missing ones taking the interpolated value */
        for (size_t i = 0; i < n; i++) spare[i] = 1.0;   /* the block sizes, axis by axis */
        for (int k = 0; k < naxes; k++) {
            const int axis = axes[k];
            size_t outer, inner;
            split(&at[l], axis, &outer, &inner);
            const size_t m = at[l].shape[axis], full = g.shape[axis], step = (size_t)1 << l;
            for (size_t o = 0; o < outer; o++)
                for (size_t x = 0; x < m; x++) {
                    const size_t start = x * step;
                    const double count = (double)(full - start < step ? full - start : step);
                    double *to = spare + (o * m + x) * inner;
                    for (size_t e = 0; e < inner; e++) to[e] *= count;
                }
        }
        for (size_t i = 0; i < n; i++) estimate[i] = (s[i] + (spare[i] - c[i]) * estimate[i]) / spare[i];
    }
    if (!smooth) {   /* the samples: each masked one its level-1 cell's value */
        pj2k_walk_start(&w, ndim, g.shape, halves);
        for (size_t i = 0; i < total; i += row, pj2k_walk_next(&w)) {
            const double *cells = estimate + pj2k_walk_parent(&w);
            for (size_t x = 0; x < row; x++)
                if (mask[i + x]) {
                    const double v = cells[x >> halves[last]];
                    values[i + x] = v < lo ? lo : v > hi ? hi : v;
                }
        }
        goto done;
    }
    /* the samples: each masked one from level 1 interpolated linearly along
     * each transformed axis, row by row: the level-1 rows around the row
     * weighted along the other axes into one (`combined`), then along the
     * row (a sample's 2**naxes cells one by one took three quarters of the
     * fill's time) */
    size_t stride1[PJ2K_MAX_NDIM], s1 = 1;
    for (int a = last; a >= 0; a--) { stride1[a] = s1; s1 *= at[1].shape[a]; }
    const size_t cells_in_row = at[1].shape[last];
    double *combined = spare;   /* (the other buffer: level 1's size) */
    size_t index[PJ2K_MAX_NDIM] = {0};   /* the row's, along the axes before the last */
    for (size_t i = 0; i < total; i += row) {
        size_t first_masked = 0;
        while (first_masked < row && !mask[i + first_masked]) first_masked++;
        if (first_masked < row) {
            size_t base = 0, lo_at[PJ2K_MAX_AXES], hi_at[PJ2K_MAX_AXES];
            double w_hi[PJ2K_MAX_AXES];
            int k = 0;
            for (int a = 0; a < last; a++) {
                if (!halves[a]) { base += index[a] * stride1[a]; continue; }
                cells_of(index[a], at[1].shape[a], &lo_at[k], &hi_at[k], &w_hi[k]);
                lo_at[k] *= stride1[a];
                hi_at[k] *= stride1[a];
                k++;
            }
            memset(combined, 0, cells_in_row * sizeof *combined);
            for (unsigned corner = 0; corner < 1u << k; corner++) {
                size_t at_cell = base;
                double weight = 1.0;
                for (int j = 0; j < k; j++) {
                    const int up = (corner >> j) & 1;
                    at_cell += up ? hi_at[j] : lo_at[j];
                    weight *= up ? w_hi[j] : 1.0 - w_hi[j];
                }
                const double *cells = estimate + at_cell;
                for (size_t c = 0; c < cells_in_row; c++) combined[c] += weight * cells[c];
            }
            for (size_t x = first_masked; x < row; x++) {
                if (!mask[i + x]) continue;
                double v;
                if (halves[last]) {
                    size_t l, h;
                    double w_h;
                    cells_of(x, cells_in_row, &l, &h, &w_h);
                    v = combined[l] * (1.0 - w_h) + combined[h] * w_h;
                } else {
                    v = combined[x];
                }
                values[i + x] = v < lo ? lo : v > hi ? hi : v;
            }
        }
        for (int a = last - 1; a >= 0 && ++index[a] == g.shape[a]; a--) index[a] = 0;
    }
done:
    free(sums);
    free(counts);
    free(work);
    return PJ2K_OK;
}
