/* The array <-> component layout of the working buffer, and the subbands
 * of each segment in it. */
#include "codestream.h"
#include <stdlib.h>
#include <string.h>

void pj2k_make_layout(const pj2k_header *h, int level, layout *L)
{
    L->ndim = h->ndim;
    pj2k_level_shape(h, level, L->shape);
    int k = 0;
    L->planes = 1;
    for (int a = 0; a < h->ndim; a++) {
        int transformed = 0;
        for (int i = 0; i < h->naxes; i++) transformed |= h->axes[i] == a;
        if (!transformed && a != h->colour_axis) { L->perm[k++] = a; L->planes *= L->shape[a]; }
    }
    if (h->colour_axis >= 0) L->perm[k++] = h->colour_axis;
    L->ncomp = h->colour_axis >= 0 ? 3 : 1;
    L->dims[0] = L->dims[1] = L->dims[2] = 1;
    for (int i = 0; i < h->naxes; i++) {
        L->perm[k++] = h->axes[i];
        L->dims[3 - h->naxes + i] = L->shape[h->axes[i]];
    }
    L->box = L->dims[0] * L->dims[1] * L->dims[2];
    L->elements = L->planes * L->ncomp * L->box;   /* bounded by pj2k_check_structure */
}

static int is_transformed(const pj2k_header *h, int axis)
{
    for (int i = 0; i < h->naxes; i++)
        if (h->axes[i] == axis) return 1;
    return 0;
}

/* ---- version 10's nodata mask, level by level (docs/FORMAT.md 6.5) -------
 * Level l's mask covers the data's extent at that level (its box: the
 * extent along each transformed axis ceil-divided by 2**l); a cell is
 * nodata (1) where every sample of its block is nodata or padding, so a
 * cell one level coarser is nodata where all the cells it halves are.  The
 * stream codes the coarsest level's cells, then each finer level's cells
 * whose parent is not nodata (the others are), in C order. */
static void box_at(const pj2k_header *h, int level, size_t *box)
{
    for (int a = 0; a < h->ndim; a++)
        box[a] = is_transformed(h, a) ? pj2k_ceil_shift((size_t)h->fill_extent[a], level)
                                      : (size_t)h->fill_extent[a];
}

static size_t box_size(int ndim, const size_t *box)
{
    size_t n = 1;
    for (int a = 0; a < ndim; a++) n *= box[a];
    return n;
}

/* Which axes halve from level to level (pj2k_rows_walk). */
static void transformed_axes(const pj2k_header *h, unsigned *halve)
{
    for (int a = 0; a < h->ndim; a++) halve[a] = (unsigned)is_transformed(h, a);
}

pj2k_status pj2k_mask_write(const pj2k_header *h, const uint8_t *mask, pj2k_bytes *out)
{
    size_t boxes[PJ2K_MAX_LEVELS + 1][PJ2K_MAX_NDIM];
    unsigned halve[PJ2K_MAX_NDIM];
    transformed_axes(h, halve);
    size_t offset[PJ2K_MAX_LEVELS + 2] = {0};
    for (int l = 0; l <= h->levels; l++) {
        box_at(h, l, boxes[l]);
        offset[l + 1] = offset[l] + box_size(h->ndim, boxes[l]);
    }
    uint8_t *pyramid = malloc(offset[h->levels + 1] ? offset[h->levels + 1] : 1);
    if (!pyramid) return PJ2K_ERR_NOMEM;
    for (size_t i = 0; i < offset[1]; i++) pyramid[i] = mask[i] != 0;
    for (int l = 0; l < h->levels; l++) {   /* level l + 1 from level l */
        uint8_t *fine = pyramid + offset[l], *coarse = pyramid + offset[l + 1];
        memset(coarse, 1, offset[l + 2] - offset[l + 1]);
        pj2k_rows_walk w;
        pj2k_walk_start(&w, h->ndim, boxes[l], halve);
        const size_t row = boxes[l][w.last];
        for (size_t at = 0; at < offset[l + 1] - offset[l]; at += row, pj2k_walk_next(&w)) {
            uint8_t *parents = coarse + pj2k_walk_parent(&w);
            for (size_t x = 0; x < row; x++) parents[x >> w.halve[w.last]] &= fine[at + x];
        }
    }
    pj2k_runs *r = pj2k_runs_writer(out);
    if (!r) { free(pyramid); return PJ2K_ERR_NOMEM; }
    const int top = h->levels;
    for (size_t i = offset[top]; i < offset[top + 1]; i++) pj2k_runs_put(r, pyramid[i]);
    for (int l = top - 1; l >= 0; l--) {
        const uint8_t *cells = pyramid + offset[l], *parents = pyramid + offset[l + 1];
        pj2k_rows_walk w;
        pj2k_walk_start(&w, h->ndim, boxes[l], halve);
        const size_t row = boxes[l][w.last];
        for (size_t at = 0; at < offset[l + 1] - offset[l]; at += row, pj2k_walk_next(&w)) {
            const uint8_t *p = parents + pj2k_walk_parent(&w);
            for (size_t x = 0; x < row; x++)
                if (!p[x >> w.halve[w.last]]) pj2k_runs_put(r, cells[at + x]);
        }
    }
    free(pyramid);
    return pj2k_runs_finish(r);
}

/* The nodata cells (1) of the decode at `level`, in `map` (L's shape, C
 * order): the mask's, and the padding beyond the data's extent. */
static pj2k_status nodata_map(const pj2k_header *h, const layout *L, int level, const uint8_t *buf,
                              uint8_t *map)
{
    size_t box[PJ2K_MAX_NDIM];
    unsigned halve[PJ2K_MAX_NDIM];
    transformed_axes(h, halve);
    box_at(h, level, box);
    const size_t most = box_size(h->ndim, box);   /* (coarser boxes are no larger) */
    uint8_t *cells = malloc(most ? most : 1), *parents = malloc(most ? most : 1);
    pj2k_runs *r = pj2k_runs_reader(buf + h->header_length, (size_t)h->mask_length);
    pj2k_status st = cells && parents && r ? PJ2K_OK : PJ2K_ERR_NOMEM;
    box_at(h, h->levels, box);
    for (size_t i = 0, n = box_size(h->ndim, box); i < n && st == PJ2K_OK; i++) {
        const int bit = pj2k_runs_get(r);
        if (bit < 0) st = PJ2K_ERR_CORRUPT;
        cells[i] = (uint8_t)bit;
    }
    for (int l = h->levels - 1; l >= level && st == PJ2K_OK; l--) {
        uint8_t *swap = parents;
        parents = cells;
        cells = swap;
        box_at(h, l, box);
        pj2k_rows_walk w;
        pj2k_walk_start(&w, h->ndim, box, halve);
        const size_t row = box[w.last], n = box_size(h->ndim, box);
        for (size_t at = 0; at < n && st == PJ2K_OK; at += row, pj2k_walk_next(&w)) {
            const uint8_t *p = parents + pj2k_walk_parent(&w);
            for (size_t x = 0; x < row; x++) {
                if (p[x >> w.halve[w.last]]) { cells[at + x] = 1; continue; }
                const int bit = pj2k_runs_get(r);
                if (bit < 0) { st = PJ2K_ERR_CORRUPT; break; }
                cells[at + x] = (uint8_t)bit;
            }
        }
    }
    if (st == PJ2K_OK) {   /* the box's rows into the level's shape; padding elsewhere */
        box_at(h, level, box);
        memset(map, 1, L->elements);
        const int last = h->ndim - 1;
        const size_t row = box[last], n = box_size(h->ndim, box);
        size_t at[PJ2K_MAX_NDIM] = {0};
        for (size_t from = 0; from < n; from += row) {
            size_t to = 0;
            for (int a = 0; a < last; a++) to = to * (size_t)L->shape[a] + at[a];
            memcpy(map + to * (size_t)L->shape[last], cells + from, row);
            for (int a = last - 1; a >= 0 && ++at[a] == box[a]; a--) at[a] = 0;
        }
    }
    pj2k_runs_free(r);
    free(cells);
    free(parents);
    return st;
}

pj2k_status pj2k_restore_fill(const pj2k_header *h, const layout *L, int level, const uint8_t *buf,
                              void *array)
{
    if (!h->fill || !L->elements) return PJ2K_OK;
    const size_t item = DTYPE_INFO[h->dtype].size;
    uint8_t *out = array;
    if (h->mask_length) {
        uint8_t *map = malloc(L->elements);
        pj2k_status st = map ? nodata_map(h, L, level, buf, map) : PJ2K_ERR_NOMEM;
        if (st == PJ2K_OK)
            for (size_t i = 0; i < L->elements; i++)
                if (map[i]) memcpy(out + i * item, h->fill_value, item);
        free(map);
        return st;
    }
    for (int a = 0; a < h->ndim; a++) {
        /* sample x of a transformed axis at level k lies at 2**k x: data
         * where that is below the extent */
        const size_t n = L->shape[a];
        const size_t data = (size_t)(is_transformed(h, a) ? pj2k_ceil_shift(h->fill_extent[a], level)
                                                          : h->fill_extent[a]);
        if (data >= n) continue;
        size_t outer = 1, inner = item;
        for (int b = 0; b < a; b++) outer *= L->shape[b];
        for (int b = a + 1; b < L->ndim; b++) inner *= L->shape[b];
        const size_t count = (n - data) * inner / item;
        for (size_t o = 0; o < outer; o++) {
            uint8_t *p = out + (o * n + data) * inner;
            for (size_t e = 0; e < count; e++, p += item) memcpy(p, h->fill_value, item);
        }
    }
    return PJ2K_OK;
}

void pj2k_for_each_run(const layout *L, void *work, size_t work_size, void *array,
                       size_t item_size, run_visit visit, void *ctx)
{
    if (L->elements == 0) return;
    ptrdiff_t stride[PJ2K_MAX_NDIM], s = 1;
    for (int a = L->ndim - 1; a >= 0; a--) { stride[a] = s; s *= (ptrdiff_t)L->shape[a]; }
    const int last = L->ndim - 1;
    const size_t run = L->shape[L->perm[last]];
    const ptrdiff_t run_stride = stride[L->perm[last]];
    size_t index[PJ2K_MAX_NDIM] = {0};
    ptrdiff_t offset = 0;
    uint8_t *w = work;
    for (size_t done = 0; done < L->elements; done += run, w += run * work_size) {
        visit(ctx, w, (uint8_t *)array + offset * (ptrdiff_t)item_size, run, run_stride);
        for (int k = last - 1; k >= 0; k--) {   /* odometer over the other axes */
            const int ax = L->perm[k];
            offset += stride[ax];
            if (++index[k] < L->shape[ax]) break;
            offset -= stride[ax] * (ptrdiff_t)L->shape[ax];
            index[k] = 0;
        }
    }
}

static void load_run(void *fn, uint8_t *work, uint8_t *array, size_t run, ptrdiff_t stride)
{
    (*(pj2k_row_fn *)fn)(work, array, run, stride);
}
static void store_run(void *fn, uint8_t *work, uint8_t *array, size_t run, ptrdiff_t stride)
{
    (*(pj2k_row_fn *)fn)(array, work, run, stride);
}

/* Copy between the C-contiguous array and the working buffer. */
void pj2k_permuted_copy(const layout *L, void *work, size_t work_size, void *array,
                        size_t item_size, pj2k_row_fn fn, int to_work)
{
    pj2k_for_each_run(L, work, work_size, array, item_size, to_work ? load_run : store_run, &fn);
}


/* pj2k_permuted_copy for interleaved colour: each run of triples to or from its
 * three components at once (fn: the ICT's kernels, either way). */
void pj2k_copy_interleaved_colour(const layout *L, void *work, size_t work_size, void *array,
                                  size_t item_size, pj2k_triples_fn fn)
{
    if (L->elements == 0) return;
    ptrdiff_t stride[PJ2K_MAX_NDIM], s = 1;
    for (int a = L->ndim - 1; a >= 0; a--) { stride[a] = s; s *= (ptrdiff_t)L->shape[a]; }
    const int last = L->ndim - 1, colour = L->ndim - 1;   /* (its runs are the triples) */
    const size_t run = L->shape[L->perm[last]];
    size_t index[PJ2K_MAX_NDIM] = {0};
    ptrdiff_t offset = 0;
    const size_t component = L->box * work_size;
    for (size_t at = 0; at < L->planes * L->box; at += run) {   /* (plane, place in the box) */
        uint8_t *w = (uint8_t *)work + (at / L->box * 3 * L->box + at % L->box) * work_size;
        fn(w, w + component, w + 2 * component, (uint8_t *)array + offset * (ptrdiff_t)item_size,
           run);
        for (int k = last - 1; k >= 0; k--) {   /* odometer over the other axes */
            const int ax = L->perm[k];
            if (ax == colour) continue;
            offset += stride[ax];
            if (++index[k] < L->shape[ax]) break;
            offset -= stride[ax] * (ptrdiff_t)L->shape[ax];
            index[k] = 0;
        }
    }
}


/* The band of orientation o (bit i: high-pass along transformed axis i)
 * made by `level`; returns 0 if it is empty. */
static int orientation_band(const size_t dims[3], int level, int naxes, int o, segment_band *sb)
{
    const size_t st[3] = {dims[1] * dims[2], dims[2], 1};
    const int first = 3 - naxes;
    size_t nonempty = 1;
    memset(sb, 0, sizeof *sb);
    for (int a = 0; a < 3; a++) {
        const size_t ext = pj2k_ceil_shift(dims[a], level - 1), low = (ext + 1) / 2;
        const int high = a >= first && ((o >> (a - first)) & 1);
        sb->band.n[a] = high ? ext - low : low;
        sb->band.stride[a] = (ptrdiff_t)st[a];
        sb->offset += high ? low * st[a] : 0;
        sb->band.cls += high;
        nonempty &= sb->band.n[a] > 0;
    }
    return nonempty != 0;
}

/* The non-empty bands of segment r; with `parents` (version 3) each high band
 * of a segment r >= 2 knows its parent in segment r - 1. */
int pj2k_segment_bands(const size_t dims[3], int levels, int r, int naxes, int parents,
                       segment_band *out)
{
    if (r == 0) {
        memset(&out[0], 0, sizeof out[0]);
        for (int a = 0; a < 3; a++) {
            out[0].band.n[a] = pj2k_ceil_shift(dims[a], levels);
            out[0].band.stride[a] = (ptrdiff_t)(a == 0 ? dims[1] * dims[2] : a == 1 ? dims[2] : 1);
        }
        return 1;
    }
    const int level = levels - r + 1;
    int count = 0;
    for (int o = 1; o < (1 << naxes); o++) {
        segment_band *sb = &out[count];
        if (!orientation_band(dims, level, naxes, o, sb)) continue;
        sb->step_index = 1 + (r - 1) * ((1 << naxes) - 1) + (o - 1);
        segment_band parent;
        if (parents && r >= 2 && orientation_band(dims, level + 1, naxes, o, &parent)) {
            sb->band.parent_offset = (ptrdiff_t)parent.offset - (ptrdiff_t)sb->offset;
            for (int a = 0; a < 3; a++) {
                sb->band.pn[a] = parent.band.n[a];
                sb->band.ps[a] = a >= 3 - naxes;   /* transformed axes halve */
            }
        }
        count++;
    }
    return count;
}
