/* The array <-> component layout of the working buffer, and the subbands
 * of each segment in it. */
#include "codestream.h"
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

void pj2k_restore_fill(const pj2k_header *h, const layout *L, int level, void *array)
{
    if (!h->fill || !L->elements) return;
    const size_t item = DTYPE_INFO[h->dtype].size;
    uint8_t *out = array;
    for (int a = 0; a < h->ndim; a++) {
        int transformed = 0;
        for (int i = 0; i < h->naxes; i++) transformed |= h->axes[i] == a;
        /* sample x of a transformed axis at level k lies at 2**k x: data
         * where that is below the extent */
        const size_t n = L->shape[a];
        const size_t data = (size_t)(transformed ? pj2k_ceil_shift(h->fill_extent[a], level)
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
