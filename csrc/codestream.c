/* Stage 3: the codestream.  Header layout, array <-> component layout,
 * quantisation, and the encode / decode drivers that run the stages in order.
 * Byte layout: docs/FORMAT.md. */
#include "internal.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes ---------------------------------------------------------------- */
static const size_t WORK_SIZE[4] = {4, 8, 8, 2};   /* bytes, by PJ2K_WORK_* */

/* Coefficient buffers: int16 for lossless 8-bit data (half the memory; any
 * value that does not fit sends the work back to int32, which gives the same
 * values), int32 for 16-bit and for lossy values (int64 when one needs it),
 * int64 for 32-bit and error-bounded. */
typedef enum { COEF_I16 = 0, COEF_I32 = 1, COEF_I64 = 2 } coef_kind;
static const size_t COEF_BYTES[3] = {2, 4, 8};
static const int COEF_WORK[3] = {PJ2K_WORK_I16, PJ2K_WORK_I32, PJ2K_WORK_I64};
#define BY_KIND(kind, CALL)                                                   \
    do {                                                                      \
        switch (kind) {                                                       \
        case COEF_I16: CALL(i16, int16_t); break;                            \
        case COEF_I32: CALL(i32, int32_t); break;                            \
        default: CALL(i64, int64_t); break;                                   \
        }                                                                     \
    } while (0)

static const struct { unsigned size, bits, is_float, is_signed; } DTYPE_INFO[PJ2K_NUM_DTYPES] = {
    {1, 8, 0, 0}, {1, 8, 0, 1}, {2, 16, 0, 0}, {2, 16, 0, 1}, {4, 32, 0, 0}, {4, 32, 0, 1},
    {4, 32, 1, 1}, {8, 64, 1, 1}};

/* An integer dtype's values: [*lo, *hi] (for a float dtype, named in a
 * forged header, those of an integer of its width: no shift by 64) */
static void dtype_range(pj2k_dtype dtype, int64_t *lo, int64_t *hi)
{
    const unsigned bits = DTYPE_INFO[dtype].bits;
    const uint64_t top = (uint64_t)1 << (bits - 1);   /* (bits <= 64) */
    *hi = DTYPE_INFO[dtype].is_signed ? (int64_t)(top - 1) : (int64_t)(2 * top - 1);
    *lo = DTYPE_INFO[dtype].is_signed ? -*hi - 1 : 0;
}

/* Lossless streams of version 7 state their value gaps (possibly none). */
static int has_gap_field(int version, pj2k_wavelet wavelet)
{
    return version >= 7 && pj2k_lossless(wavelet);
}

/* int16 only for whole (not partially layered) lossless 8-bit decodes */
static coef_kind kind_for(const pj2k_header *h, int partial)
{
    const unsigned bits = DTYPE_INFO[h->dtype].bits;
    if (!pj2k_lossless(h->wavelet) || bits > 16) return COEF_I64;
    return bits == 16 || partial ? COEF_I32 : COEF_I16;
}

/* ---- little-endian fields ------------------------------------------------- */
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static int band_count(int levels, int naxes) { return 1 + levels * ((1 << naxes) - 1); }

/* Version 1 has no layer fields and one piece per resolution; version 2 has
 * a layer count (2..16) and shift table; version 3 a layer count (1..16) and,
 * with more than one layer, the shift table; version 6 adds the 9/7-M
 * levels; version 7 the value gaps of lossless streams (a count, and 4
 * bytes per gap). */
static uint32_t header_length_of(int version, int ndim, int naxes, int levels,
                                 pj2k_wavelet wavelet, int layers, int ngaps)
{
    uint32_t n = PJ2K_FIXED_HEADER + 8u * (uint32_t)ndim + (uint32_t)naxes;
    if (version >= 2) n += 1u;
    if (version >= 6) n += 2u;
    if (has_gap_field(version, wavelet)) n += 1u + 4u * (uint32_t)ngaps;
    if (layers > 1) n += (uint32_t)(layers * band_count(levels, naxes));
    if (pj2k_prequantised(wavelet)) n += 16u;
    if (wavelet == PJ2K_WAVELET_97) n += 4u * (uint32_t)band_count(levels, naxes);
    return n + 12u * (uint32_t)((levels + 1) * layers) + 4u;
}

/* Largest element count any shape may claim (2**48): keeps size arithmetic
 * far from overflow; the caller's own limit is checked separately. */
#define MAX_TOTAL_ELEMENTS ((uint64_t)1 << 48)

/* Structural checks shared by the encoder's parameters and parsed headers. */
static pj2k_status check_structure(const pj2k_header *h)
{
    if ((unsigned)h->dtype >= PJ2K_NUM_DTYPES) return PJ2K_ERR_HEADER;
    if ((unsigned)h->wavelet > PJ2K_WAVELET_53R) return PJ2K_ERR_HEADER;
    if (h->ndim < 1 || h->ndim > PJ2K_MAX_NDIM) return PJ2K_ERR_HEADER;
    if (h->naxes < 1 || h->naxes > PJ2K_MAX_AXES || h->naxes > h->ndim) return PJ2K_ERR_HEADER;
    if (h->levels < 0 || h->levels > PJ2K_MAX_LEVELS) return PJ2K_ERR_HEADER;
    /* every size below is computed in size_t: on 32-bit builds the total must
     * leave room for 16 bytes of working memory per element */
    const uint64_t max_total = (uint64_t)SIZE_MAX / 16 < MAX_TOTAL_ELEMENTS
                               ? (uint64_t)SIZE_MAX / 16 : MAX_TOTAL_ELEMENTS;
    uint64_t total = 1;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] > max_total) return PJ2K_ERR_HEADER;
        if (h->shape[i] && total > max_total / h->shape[i]) return PJ2K_ERR_HEADER;
        total *= h->shape[i];
    }
    for (int i = 0; i < h->naxes; i++) {
        if (h->axes[i] < 0 || h->axes[i] >= h->ndim) return PJ2K_ERR_HEADER;
        if (i && h->axes[i] <= h->axes[i - 1]) return PJ2K_ERR_HEADER;
    }
    if (h->colour_axis >= 0) {
        if (h->colour_axis >= h->ndim || h->shape[h->colour_axis] != 3) return PJ2K_ERR_HEADER;
        for (int i = 0; i < h->naxes; i++)
            if (h->axes[i] == h->colour_axis) return PJ2K_ERR_HEADER;
        if (h->colour != (h->wavelet == PJ2K_WAVELET_97 ? PJ2K_COLOUR_ICT : PJ2K_COLOUR_RCT))
            return PJ2K_ERR_HEADER;
    } else if (h->colour != PJ2K_COLOUR_NONE) {
        return PJ2K_ERR_HEADER;
    }
    if (pj2k_lossless(h->wavelet) && DTYPE_INFO[h->dtype].is_float) return PJ2K_ERR_DTYPE;
    /* 9/7-M lifts reversible levels only, and only levels that exist */
    if (h->m97_levels >> h->levels || (h->m97_levels && h->wavelet == PJ2K_WAVELET_97))
        return PJ2K_ERR_HEADER;
    if (pj2k_prequantised(h->wavelet) &&
        !(h->scale > 0.0 && isfinite(h->scale) && h->tolerance >= 0.0 && isfinite(h->tolerance)))
        return PJ2K_ERR_HEADER;
    if (h->ngaps) {
        int64_t lo, hi;
        dtype_range(h->dtype, &lo, &hi);
        if (!has_gap_field(h->version, h->wavelet) || !pj2k_value_gaps_valid(h, lo, hi))
            return PJ2K_ERR_HEADER;
    }
    return PJ2K_OK;
}

void pj2k_level_shape(const pj2k_header *h, int level, uint64_t *shape)
{
    if (level < 0) level = 0;
    for (int i = 0; i < h->ndim; i++) shape[i] = h->shape[i];
    for (int i = 0; i < h->naxes; i++) shape[h->axes[i]] = pj2k_ceil_shift(h->shape[h->axes[i]], level);
}

static void coefficient_limits(const pj2k_header *h, int *max_exp, int64_t *bound);

/* Per band, layer shifts never increase and end at 0; the first leaves room
 * for the coefficients' largest exponent. */
static int valid_layers(const pj2k_header *h)
{
    int max_exp;
    int64_t bound;
    coefficient_limits(h, &max_exp, &bound);
    if (h->layers < 1 || h->layers > PJ2K_MAX_LAYERS) return 0;
    for (int b = 0; b < h->nbands; b++) {
        if (h->layer_shift[h->layers - 1][b] != 0 || h->layer_shift[0][b] > max_exp) return 0;
        for (int j = 1; j < h->layers; j++)
            if (h->layer_shift[j][b] > h->layer_shift[j - 1][b]) return 0;
    }
    return 1;
}

/* ---- header I/O ------------------------------------------------------------- */
pj2k_status pj2k_read_header(const uint8_t *buf, size_t length, pj2k_header *h)
{
    memset(h, 0, sizeof *h);
    if (!buf || length < PJ2K_FIXED_HEADER) {
        h->header_length = PJ2K_FIXED_HEADER;
        return PJ2K_ERR_TRUNCATED;
    }
    if (memcmp(buf, "PJ2K", 4) != 0) return PJ2K_ERR_MAGIC;
    h->version = buf[4];
    if (h->version < 1 || h->version > PJ2K_FORMAT_VERSION) return PJ2K_ERR_VERSION;
    h->dtype = (pj2k_dtype)buf[5];
    h->wavelet = (pj2k_wavelet)buf[6];
    h->colour = (pj2k_colour)buf[7];
    const uint32_t stated = get_u32(buf + 8);
    h->ndim = buf[12];
    h->naxes = buf[13];
    h->levels = buf[14];
    h->colour_axis = buf[15] == 0xFF ? -1 : buf[15];
    /* codes this decoder does not know, in the versions it writes, may be a
     * later addition to them (as the rounded 5/3 was to version 6): say so,
     * not "invalid"; in earlier versions they are damage */
    if ((unsigned)h->wavelet > PJ2K_WAVELET_53R || (unsigned)h->dtype >= PJ2K_NUM_DTYPES)
        return h->version >= PJ2K_FORMAT_VERSION_COMPAT ? PJ2K_ERR_VERSION : PJ2K_ERR_HEADER;
    if (h->ndim < 1 || h->ndim > PJ2K_MAX_NDIM || h->naxes < 1 || h->naxes > PJ2K_MAX_AXES ||
        h->levels > PJ2K_MAX_LEVELS ||
        (pj2k_lift_rounding(h->wavelet) && h->version < 6))   /* (the rounded 5/3: version 6) */
        return PJ2K_ERR_HEADER;
    /* versions 2 and 3 state their layer count after the axes: until that byte
     * is read, the stated length need only be one a layer count could give */
    const int min_layers = h->version == 2 ? 2 : 1, max_layers = h->version == 1 ? 1 : PJ2K_MAX_LAYERS;
    if (stated < header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, min_layers, 0) ||
        stated > header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, max_layers,
                                  PJ2K_MAX_GAPS))
        return PJ2K_ERR_HEADER;
    h->header_length = stated;
    if (length < stated) return PJ2K_ERR_TRUNCATED;
    if (get_u32(buf + stated - 4) != pj2k_crc32c(buf, stated - 4)) return PJ2K_ERR_CHECKSUM;

    const uint8_t *p = buf + PJ2K_FIXED_HEADER;
    for (int i = 0; i < h->ndim; i++, p += 8) h->shape[i] = get_u64(p);
    for (int i = 0; i < h->naxes; i++) h->axes[i] = *p++;
    h->nbands = band_count(h->levels, h->naxes);
    h->layers = 1;
    if (h->version >= 2) {
        h->layers = *p++;
        if (h->layers < min_layers || h->layers > PJ2K_MAX_LAYERS) return PJ2K_ERR_HEADER;
        if (stated < header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, h->layers, 0) ||
            stated > header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, h->layers,
                                      PJ2K_MAX_GAPS))
            return PJ2K_ERR_HEADER;
        if (h->layers > 1)
            for (int j = 0; j < h->layers; j++)
                for (int b = 0; b < h->nbands; b++) h->layer_shift[j][b] = *p++;
    }
    if (h->version >= 6) {
        h->m97_levels = (unsigned)p[0] | (unsigned)p[1] << 8;
        p += 2;
    }
    if (has_gap_field(h->version, h->wavelet)) {
        h->ngaps = *p++;
        if (h->ngaps > PJ2K_MAX_GAPS) return PJ2K_ERR_HEADER;
        int64_t lo, hi;
        dtype_range(h->dtype, &lo, &hi);
        for (int g = 0; g < h->ngaps; g++, p += 4) {   /* (checked in check_structure) */
            h->gap_after[g] = lo + (int64_t)((unsigned)p[0] | (unsigned)p[1] << 8);
            h->gap_length[g] = (unsigned)p[2] | (unsigned)p[3] << 8;
        }
    }
    if (stated != header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, h->layers,
                                   h->ngaps))
        return PJ2K_ERR_HEADER;
    if (pj2k_prequantised(h->wavelet)) {
        uint64_t bits = get_u64(p);
        memcpy(&h->scale, &bits, 8);
        bits = get_u64(p + 8);
        memcpy(&h->tolerance, &bits, 8);
        p += 16;
    }
    if (h->wavelet == PJ2K_WAVELET_97) {
        for (int i = 0; i < h->nbands; i++, p += 4) {
            const uint32_t bits = get_u32(p);
            memcpy(&h->steps[i], &bits, 4);
            if (!(h->steps[i] > 0.0f) || !isfinite(h->steps[i])) return PJ2K_ERR_HEADER;
        }
    }
    uint64_t previous = stated;
    const int pieces = (h->levels + 1) * h->layers;
    for (int i = 0; i < pieces; i++, p += 12) {
        h->piece_end[i] = get_u64(p);
        h->piece_crc[i] = get_u32(p + 8);
        if (h->piece_end[i] < previous) return PJ2K_ERR_HEADER;
        previous = h->piece_end[i];
    }
    for (int r = 0; r <= h->levels; r++) h->segment_end[r] = h->piece_end[r * h->layers + h->layers - 1];
    const pj2k_status st = check_structure(h);
    /* (a stream that pairs a float dtype with a lossless wavelet is a bad
     * header, not a caller's wrong dtype: no encoder writes one) */
    if (st != PJ2K_OK) return st == PJ2K_ERR_DTYPE ? PJ2K_ERR_HEADER : st;
    return valid_layers(h) ? PJ2K_OK : PJ2K_ERR_HEADER;
}

static void write_header(const pj2k_header *h, uint8_t *buf)
{
    memcpy(buf, "PJ2K", 4);
    buf[4] = (uint8_t)h->version;
    buf[5] = (uint8_t)h->dtype;
    buf[6] = (uint8_t)h->wavelet;
    buf[7] = (uint8_t)h->colour;
    put_u32(buf + 8, h->header_length);
    buf[12] = (uint8_t)h->ndim;
    buf[13] = (uint8_t)h->naxes;
    buf[14] = (uint8_t)h->levels;
    buf[15] = h->colour_axis < 0 ? 0xFF : (uint8_t)h->colour_axis;
    uint8_t *p = buf + PJ2K_FIXED_HEADER;
    for (int i = 0; i < h->ndim; i++, p += 8) put_u64(p, h->shape[i]);
    for (int i = 0; i < h->naxes; i++) *p++ = (uint8_t)h->axes[i];
    if (h->version >= 2) {
        *p++ = (uint8_t)h->layers;
        if (h->layers > 1)
            for (int j = 0; j < h->layers; j++)
                for (int b = 0; b < h->nbands; b++) *p++ = h->layer_shift[j][b];
    }
    if (h->version >= 6) {
        *p++ = (uint8_t)(h->m97_levels & 0xFF);
        *p++ = (uint8_t)(h->m97_levels >> 8);
    }
    if (has_gap_field(h->version, h->wavelet)) {
        int64_t lo, hi;
        dtype_range(h->dtype, &lo, &hi);
        *p++ = (uint8_t)h->ngaps;
        for (int g = 0; g < h->ngaps; g++, p += 4) {   /* (valid: within 16 bits) */
            const uint32_t after = (uint32_t)(h->gap_after[g] - lo);
            p[0] = (uint8_t)after;
            p[1] = (uint8_t)(after >> 8);
            p[2] = (uint8_t)h->gap_length[g];
            p[3] = (uint8_t)(h->gap_length[g] >> 8);
        }
    }
    if (pj2k_prequantised(h->wavelet)) {
        uint64_t bits;
        memcpy(&bits, &h->scale, 8);
        put_u64(p, bits);
        memcpy(&bits, &h->tolerance, 8);
        put_u64(p + 8, bits);
        p += 16;
    }
    if (h->wavelet == PJ2K_WAVELET_97) {
        for (int i = 0; i < h->nbands; i++, p += 4) {
            uint32_t bits;
            memcpy(&bits, &h->steps[i], 4);
            put_u32(p, bits);
        }
    }
    for (int i = 0; i < (h->levels + 1) * h->layers; i++, p += 12) {
        put_u64(p, h->piece_end[i]);
        put_u32(p + 8, h->piece_crc[i]);
    }
    put_u32(p, pj2k_crc32c(buf, h->header_length - 4));
}

/* ---- array <-> components ------------------------------------------------- *
 * The working buffer holds planes x components x box, where the planes run over
 * the axes neither transformed nor colour (in order), the components over the
 * colour axis, and the box over the transformed axes (padded to 3 with 1s). */
typedef struct {
    int ndim;
    uint64_t shape[PJ2K_MAX_NDIM];  /* array shape at this level */
    int perm[PJ2K_MAX_NDIM];        /* array axes in working-buffer order */
    size_t planes, ncomp, dims[3], box, elements;
} layout;

static void make_layout(const pj2k_header *h, int level, layout *L)
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
    L->elements = L->planes * L->ncomp * L->box;   /* bounded by check_structure */
}

/* Visit the C-contiguous array and the working buffer together, one run
 * along the last working axis at a time: visit(ctx, work run, array run,
 * run length, the run's stride in the array). */
typedef void (*run_visit)(void *ctx, uint8_t *work, uint8_t *array, size_t run, ptrdiff_t stride);
static void for_each_run(const layout *L, void *work, size_t work_size, void *array,
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
static void permuted_copy(const layout *L, void *work, size_t work_size, void *array,
                          size_t item_size, pj2k_row_fn fn, int to_work)
{
    for_each_run(L, work, work_size, array, item_size, to_work ? load_run : store_run, &fn);
}

/* Whether the array's last axis is the colour axis and its second to last
 * the last working axis: each run of the array is then a run of triples. */
static int interleaved_colour(const pj2k_header *h, const layout *L)
{
    return h->colour_axis == h->ndim - 1 && L->perm[h->ndim - 1] == h->ndim - 2;
}

/* permuted_copy for interleaved colour: each run of triples to or from its
 * three components at once (fn: the ICT's kernels, either way). */
static void copy_interleaved_colour(const layout *L, void *work, size_t work_size, void *array,
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

/* ---- subbands of one segment --------------------------------------------- *
 * Segment 0 is the low band after `levels` levels; segment r >= 1 holds the
 * high bands of level levels - r + 1 (coarsest first).  Box axis 3-naxes+i is
 * transformed axis i; orientation bit i set means high-pass along it. */
typedef struct {
    pj2k_band band;
    size_t offset;      /* element offset of the band in its component */
    int step_index;
} segment_band;

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
static int segment_bands(const size_t dims[3], int levels, int r, int naxes, int parents,
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

/* Coefficient limits per mode: the decoder rejects larger exponents, and the
 * inverse transform clamps to `bound`, which legitimate data never reaches. */
static void coefficient_limits(const pj2k_header *h, int *max_exp, int64_t *bound)
{
    if (h->wavelet == PJ2K_WAVELET_97) {
        *max_exp = 60;
        *bound = (int64_t)1 << 60;
    } else if (pj2k_prequantised(h->wavelet)) {
        *max_exp = 52;   /* |q| < 2**40, plus colour and transform growth */
        *bound = (int64_t)1 << 52;
    } else {
        *max_exp = (int)DTYPE_INFO[h->dtype].bits + 10;
        *bound = (int64_t)1 << *max_exp;
    }
}

/* ---- quantisation (9/7) ----------------------------------------------------- */
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

/* pj2k_band_norms for the chunk a header describes. */
static int header_band_norms(const pj2k_header *h, double *norms)
{
    uint64_t lengths[PJ2K_MAX_AXES];
    for (int i = 0; i < h->naxes; i++) lengths[i] = h->shape[h->axes[i]];
    return pj2k_band_norms(lengths, h->naxes, h->levels, norms);
}

/* Each band's step is the base step over its synthesis norm (norms: from
 * header_band_norms), so that every band adds the same error per
 * coefficient. */
static void compute_steps(pj2k_header *h, const double *norms, double base_step)
{
    for (int b = 0; b < h->nbands; b++) h->steps[b] = (float)(base_step / norms[b]);
}

/* Every row of every band of a component (segments 0..levels): BODY sees
 * `sb` (the band), `r_` (its segment), `at` (the row's first element) and
 * `nx` (its length). */
#define FOR_EACH_BAND_ROW(dims, levels, naxes, BODY)                            \
    for (int r_ = 0; r_ <= (levels); r_++) {                                    \
        segment_band sbs_[7];                                                   \
        const int nb_ = segment_bands((dims), (levels), r_, (naxes), 0, sbs_);  \
        for (int b_ = 0; b_ < nb_; b_++) {                                      \
            const segment_band *sb = &sbs_[b_];                                 \
            const size_t nx = sb->band.n[2];                                    \
            for (size_t z = 0; z < sb->band.n[0]; z++)                          \
                for (size_t y = 0; y < sb->band.n[1]; y++) {                    \
                    const size_t at = sb->offset + z * sb->band.stride[0] +     \
                                      y * sb->band.stride[1];                   \
                    BODY                                                        \
                }                                                               \
        }                                                                       \
    }
/* The same, element by element: `at` is the element */
#define FOR_EACH_BAND(dims, levels, naxes, BODY)                                \
    FOR_EACH_BAND_ROW(dims, levels, naxes, {                                    \
        const size_t row_at_ = at;                                              \
        for (size_t x = 0; x < nx; x++) {                                       \
            const size_t at = row_at_ + x;                                      \
            BODY                                                                \
        }                                                                       \
    })

/* Quantised values go into the prepared kind (int16 for 8-bit samples,
 * else int32) unless one needs more: PJ2K_NARROW_OVERFLOW asks the caller
 * to widen the buffer (widen). */
static pj2k_status quantise(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                            const void *in, int in_f32, void *out, coef_kind kind)
{
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        const uint8_t *src = (const uint8_t *)in + c * L->box * pj2k_real_size(in_f32);
        uint8_t *dst = (uint8_t *)out + c * L->box * COEF_BYTES[kind];
        FOR_EACH_BAND_ROW(L->dims, h->levels, h->naxes, {
            const double step = (double)h->steps[sb->step_index];
            int fit;
            if (kind == COEF_I16)   /* float32 coefficients only (8-bit samples) */
                fit = in_f32 ? K->quantise_f32_i16((const float *)src + at, (int16_t *)dst + at, nx, step)
                             : PJ2K_QUANTISE_HUGE;
            else if (kind == COEF_I64)
                fit = in_f32 ? K->quantise_f32_i64((const float *)src + at, (int64_t *)dst + at, nx, step)
                             : K->quantise_i64((const double *)src + at, (int64_t *)dst + at, nx, step);
            else
                fit = in_f32 ? K->quantise_f32_i32((const float *)src + at, (int32_t *)dst + at, nx, step)
                             : K->quantise_i32((const double *)src + at, (int32_t *)dst + at, nx, step);
            if (fit == PJ2K_QUANTISE_HUGE) return PJ2K_ERR_PARAM;   /* step too small, or NaN/inf */
            if (fit) return PJ2K_NARROW_OVERFLOW;
        })
    }
    return PJ2K_OK;
}

/* Lossy chunks of 8- and 16-bit integer samples work in float32: the
 * encoder's coefficients, and from version 8 the decoder's reconstruction
 * (docs/FORMAT.md 4), so that a PSNR trial's float32 reconstruction is the
 * decode's. */
static int float32_work(const pj2k_header *h)
{
    return h->wavelet == PJ2K_WAVELET_97 && DTYPE_INFO[h->dtype].size <= 2 &&
           !DTYPE_INFO[h->dtype].is_float;
}
static int float32_reconstruction(const pj2k_header *h)
{
    return h->version >= 8 && float32_work(h);
}

/* Reconstruction of a value known to shift s (segment r decoded through
 * layer last[r], |v| >> s = |q|): the middle of its interval,
 * [|q|, |q| + 1) * 2**s quantisation steps.  Per band: step * 2**shift (a
 * power-of-two factor: exact, so single-layer streams get (|q| + 0.5) *
 * step bit for bit). */
static void dequantise_factors(const pj2k_header *h, int levels, const int *last, double *factor)
{
    const int per_level = (1 << h->naxes) - 1;
    for (int b = 0; b < 1 + levels * per_level; b++) {
        const int r = b ? 1 + (b - 1) / per_level : 0;
        factor[b] = ldexp((double)h->steps[b], h->layer_shift[last[r]][b]);
    }
}

/* The factors of dequantise, clamped for float32 work */
static void dequantise_factors_for(const pj2k_header *h, int levels, const int *last, int f32,
                                   double *factor)
{
    dequantise_factors(h, levels, last, factor);
    if (f32)   /* (a float32 step times 2**shift: exact in float32 unless beyond it) */
        for (int b = 0; b < 1 + levels * ((1 << h->naxes) - 1); b++)
            factor[b] = factor[b] < FLT_MAX ? factor[b] : FLT_MAX;
}

/* into float64, or with f32 into float32 (float32_reconstruction) */
static void dequantise(const pj2k_kernels *K, const pj2k_header *h, const layout *L, int levels,
                       const void *in, coef_kind kind, void *out, int f32, const int *last)
{
    double factor[PJ2K_MAX_BANDS];
    dequantise_factors_for(h, levels, last, f32, factor);
    const size_t real_size = f32 ? sizeof(float) : sizeof(double);
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        const uint8_t *src = (const uint8_t *)in + c * L->box * COEF_BYTES[kind];
        uint8_t *dst = (uint8_t *)out + c * L->box * real_size;
#define ROWS(FN, CT, RT) \
        FOR_EACH_BAND_ROW(L->dims, levels, h->naxes, \
                          K->FN((const CT *)src + at, (RT *)dst + at, nx, factor[sb->step_index]);)
        if (f32) {
            if (kind == COEF_I16) ROWS(dequantise_f32_i16, int16_t, float)
            else if (kind == COEF_I32) ROWS(dequantise_f32_i32, int32_t, float)
            else ROWS(dequantise_f32_i64, int64_t, float)
        } else {
            if (kind == COEF_I16) ROWS(dequantise_i16, int16_t, double)
            else if (kind == COEF_I32) ROWS(dequantise_i32, int32_t, double)
            else ROWS(dequantise_i64, int64_t, double)
        }
#undef ROWS
    }
}

/* The level, 1..levels, at which index i of an axis of length n lies in
 * a high half (Mallat layout), or levels + 1 in the low band. */
static int octave(size_t i, size_t n, int levels)
{
    if (i < pj2k_ceil_shift(n, levels)) return levels + 1;
    int l = levels;
    while (l > 1 && i >= pj2k_ceil_shift(n, l - 1)) l--;
    return l;
}

/* dequantise for values half as wide as the working type that lie in the
 * upper half of `real` itself (int32 in bytes [4n, 8n) of float64 work,
 * int16 in [2n, 4n) of float32 work): values are taken in memory order, so
 * the working value of element i, which covers the values of elements
 * 2i - n and 2i - n + 1, only ever overwrites values already taken; each
 * kernel call gets a piece whose input and output do not overlap.  The
 * decoder then needs no separate buffer of values (docs/DESIGN.md 35). */
#define DEQUANTISE_UPPER_HALF(NAME, CT, RT, KERNEL)                                         \
static void NAME(const pj2k_kernels *K, const pj2k_header *h, const layout *L, int levels,  \
                 RT *real, const double *factor)                                            \
{                                                                                           \
    const size_t n = L->elements, *d = L->dims;                                             \
    const CT *values = (const CT *)(const void *)((uint8_t *)real + sizeof(CT) * n);        \
    const int first = 3 - h->naxes;   /* box axes first..2 are transformed, bit a - first */ \
    for (size_t c = 0; c < L->planes * L->ncomp; c++)                                       \
        for (size_t z = 0; z < d[0]; z++)                                                   \
            for (size_t y = 0; y < d[1]; y++) {                                             \
                const int oz = octave(z, d[0], levels), oy = octave(y, d[1], levels);       \
                const size_t row = c * L->box + (z * d[1] + y) * d[2];                      \
                /* along x in memory order: the low part, then the high halves,             \
                 * coarsest first */                                                        \
                for (int ox = levels + 1; ox >= 1; ox--) {                                  \
                    const size_t from = ox > levels ? 0 : pj2k_ceil_shift(d[2], ox);        \
                    const size_t to = pj2k_ceil_shift(d[2], ox > levels ? levels : ox - 1); \
                    if (from >= to) continue;                                               \
                    int level = ox < oy ? ox : oy;                                          \
                    level = level < oz ? level : oz;                                        \
                    int b = 0;   /* the band's step index (segment_bands' numbering) */     \
                    if (level <= levels) {                                                  \
                        int o = 0;                                                          \
                        if (ox == level) o |= 1 << (2 - first);                             \
                        if (oy == level && first <= 1) o |= 1 << (1 - first);              \
                        if (oz == level && first == 0) o |= 1;                              \
                        b = 1 + (levels - level) * ((1 << h->naxes) - 1) + (o - 1);         \
                    }                                                                       \
                    /* in pieces whose input lies above their output */                     \
                    for (size_t a = row + from, e = row + to; a < e;) {                     \
                        const size_t room = (n + a) / 2, stop = e < room ? e : room;        \
                        if (stop == a) {   /* the last element covers its own value: read first */ \
                            const CT q = values[a];                                         \
                            RT v;                                                           \
                            K->KERNEL(&q, &v, 1, factor[b]);                                \
                            real[a++] = v;                                                  \
                            continue;                                                       \
                        }                                                                   \
                        K->KERNEL(values + a, real + a, stop - a, factor[b]);               \
                        a = stop;                                                           \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
}
DEQUANTISE_UPPER_HALF(dequantise_upper_half_f64, int32_t, double, dequantise_i32)
DEQUANTISE_UPPER_HALF(dequantise_upper_half_f32, int16_t, float, dequantise_f32_i16)
#undef DEQUANTISE_UPPER_HALF

/* dequantise for int32 values where their float32 results go (float32 work
 * of values that needed int32): each row's values through a small copy,
 * so that the kernel's input and output never overlap. */
static void dequantise_same_place(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                                  int levels, float *real, const double *factor)
{
    enum { PIECE = 256 };
    int32_t piece[PIECE];
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        float *plane = real + c * L->box;
        FOR_EACH_BAND_ROW(L->dims, levels, h->naxes, {
            for (size_t i = 0; i < nx; i += PIECE) {
                const size_t k = nx - i < PIECE ? nx - i : PIECE;
                memcpy(piece, (const void *)(plane + at + i), k * sizeof *piece);
                K->dequantise_f32_i32(piece, plane + at + i, k, factor[sb->step_index]);
            }
        })
    }
}

/* Dequantise values of `kind` that lie within `real` itself (where
 * in_place_offset puts them) into it: float32 or float64 work. */
static void dequantise_in_place(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                                int levels, void *real, int f32, coef_kind kind, const int *last)
{
    double factor[PJ2K_MAX_BANDS];
    dequantise_factors_for(h, levels, last, f32, factor);
    if (!f32) dequantise_upper_half_f64(K, h, L, levels, real, factor);
    else if (kind == COEF_I16) dequantise_upper_half_f32(K, h, L, levels, real, factor);
    else dequantise_same_place(K, h, L, levels, real, factor);
}

/* Where values of `kind` go within a working buffer of float32 (f32) or
 * float64 values that dequantise_in_place fills from them, in bytes from
 * its start: int16 and int32 in the upper half of float32 and float64
 * work, int32 where its float32 results go; -1 for the rest (int64
 * values, and int16 in float64 work, which no stream takes). */
static ptrdiff_t in_place_offset(const layout *L, int f32, coef_kind kind)
{
    if (f32 && kind == COEF_I32) return 0;
    if (f32 ? kind == COEF_I16 : kind == COEF_I32)
        return (ptrdiff_t)(COEF_BYTES[kind] * L->elements);
    return -1;
}

/* Integer coefficients known only to shift s > 0 (segment r decoded through
 * layer last[r]): scaled back, plus the integer part of the interval's middle. */
#define RECONSTRUCT_PARTIAL(COEF, name)                                                  \
static void name(const pj2k_header *h, const layout *L, int levels, COEF *coef, const int *last) \
{                                                                                         \
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {                                   \
        COEF *v = coef + c * L->box;                                                      \
        FOR_EACH_BAND(L->dims, levels, h->naxes, {                                        \
            const int s = h->layer_shift[last[r_]][sb->step_index];                      \
            if (s && v[at]) {                                                             \
                const COEF m = (COEF)(((v[at] < 0 ? -v[at] : v[at]) << s) + ((((COEF)1 << s) - 1) >> 1)); \
                v[at] = v[at] < 0 ? -m : m;                                               \
            }                                                                             \
        })                                                                                \
    }                                                                                     \
}
RECONSTRUCT_PARTIAL(int32_t, reconstruct_partial_i32)
RECONSTRUCT_PARTIAL(int64_t, reconstruct_partial_i64)

/* ---- encoder ------------------------------------------------------------------ */
static pj2k_status header_from_params(const pj2k_params *p, pj2k_header *h)
{
    memset(h, 0, sizeof *h);
    if (!p || p->ndim < 1 || p->ndim > PJ2K_MAX_NDIM || p->naxes < 1 || p->naxes > PJ2K_MAX_AXES ||
        p->levels < 0 || p->levels > PJ2K_MAX_LEVELS)
        return PJ2K_ERR_PARAM;
    h->dtype = p->dtype;
    h->wavelet = p->wavelet;
    h->ndim = p->ndim;
    h->naxes = p->naxes;
    h->levels = p->levels;
    h->colour_axis = p->colour_axis < 0 ? -1 : p->colour_axis;
    h->colour = h->colour_axis < 0 ? PJ2K_COLOUR_NONE
                : (p->wavelet == PJ2K_WAVELET_97 ? PJ2K_COLOUR_ICT : PJ2K_COLOUR_RCT);
    h->scale = pj2k_prequantised(p->wavelet) ? p->step : 0.0;
    h->tolerance = pj2k_prequantised(p->wavelet) ? p->tolerance : 0.0;
    memcpy(h->shape, p->shape, sizeof h->shape);
    memcpy(h->axes, p->axes, sizeof h->axes);
    h->nbands = band_count(h->levels, h->naxes);
    h->layers = 1;            /* layers, version and lengths are set per encode */
    if ((unsigned)p->wavelet > PJ2K_WAVELET_53R) return PJ2K_ERR_PARAM;
    /* a given mask is checked with the header's rules (check_structure); a
     * negative one other than AUTO has bits beyond any level */
    if (p->m97_levels != PJ2K_M97_AUTO) h->m97_levels = (unsigned)p->m97_levels;
    if (pj2k_prequantised(h->wavelet) && !(p->step > 0.0 && isfinite(p->step)))
        return PJ2K_ERR_PARAM;
    const pj2k_status st = check_structure(h);
    return st == PJ2K_ERR_HEADER ? PJ2K_ERR_PARAM : st;
}

static size_t low_band_elems(const layout *L, int levels)
{
    return pj2k_ceil_shift(L->dims[0], levels) * pj2k_ceil_shift(L->dims[1], levels) *
           pj2k_ceil_shift(L->dims[2], levels);
}

/* The model before piece i (in stream order) of a stream of `version`. */
static void start_piece(pj2k_model *model, int version, int i)
{
    if (i == 0 || version < 4) pj2k_model_reset(model, version);
    else pj2k_model_next_piece(model);
}

/* Entropy-code one piece: layer j of every band of segment r, in coding
 * order.  Fails when a value exceeds what the decoder accepts, and stops
 * with PJ2K_ERR_TOO_LARGE once `out` holds more than max_length bytes (0: no
 * limit; checked per band: the stream only grows).
 * rdo_template: NULL, or the strength and cost table of RD-optimised
 * quantisation with `real` the unquantised coefficients (single layer only). */
static pj2k_status encode_piece(const pj2k_header *h, const layout *L, void *coef,
                                coef_kind kind, int r, int j, pj2k_rc_encoder *rc,
                                pj2k_model *model, void *tmp, const pj2k_rdo *rdo_template,
                                size_t max_length, const pj2k_bytes *out)
{
    int max_exp;
    int64_t bound;
    coefficient_limits(h, &max_exp, &bound);
    segment_band sbs[7];
    const int nb = segment_bands(L->dims, h->levels, r, h->naxes, 1, sbs);
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        for (int b = 0; b < nb; b++) {
            const size_t at = c * L->box + sbs[b].offset;
            pj2k_band component_band = sbs[b].band;
            component_band.sibling_offset = c % L->ncomp ? -(ptrdiff_t)L->box : 0;
            const pj2k_band *band = &component_band;
            const int to = h->layer_shift[j][sbs[b].step_index];
            const int from = j ? h->layer_shift[j - 1][sbs[b].step_index] : 0;
            if (j && from == to) continue;   /* this band has nothing in layer j */
            pj2k_rdo rdo;
            if (rdo_template) {
                rdo = *rdo_template;
                rdo.real = (const uint8_t *)rdo_template->real + at * pj2k_real_size(rdo.real_f32);
                rdo.inv_step = pj2k_reciprocal((double)h->steps[sbs[b].step_index]);
            }
            int e;
#define CODE(S, CT)                                                                        \
            {                                                                              \
                CT *base = (CT *)coef + at;                                                \
                e = j ? pj2k_encode_refine_##S(rc, model, base, band, from, to)            \
                  : r == 0 ? pj2k_encode_low_##S(rc, model, base, band, to, (CT *)tmp)     \
                  : pj2k_encode_band_##S(rc, model, base, band, to, rdo_template ? &rdo : NULL); \
            }
            BY_KIND(kind, CODE);
#undef CODE
            if (e < 0) return PJ2K_NARROW_OVERFLOW;
            if (e > max_exp - to) return PJ2K_ERR_PARAM;  /* never emit what the decoder rejects */
            if (max_length && out->length > max_length) return PJ2K_ERR_TOO_LARGE;
        }
    }
    return PJ2K_OK;
}

/* Entropy-code all pieces of the coefficient buffer into `out` (after the
 * header placeholder), recording their ends and checksums in h.  With
 * rdo > 0 (9/7, one layer; bit_cost from pj2k_bit_cost_table) the high
 * bands' quantised values are chosen by RD-optimised quantisation from
 * `real` (float32 if real_f32, else float64) and written back to `coef`. */
static pj2k_status encode_segments(pj2k_header *h, const layout *L, void *coef,
                                   coef_kind kind, const void *real, int real_f32, double rdo,
                                   const float *bit_cost, size_t max_length, pj2k_bytes *out)
{
    pj2k_model *model = malloc(sizeof *model);
    void *tmp = malloc((low_band_elems(L, h->levels) + 1) * COEF_BYTES[kind]);
    uint16_t *rows = malloc(PJ2K_MODEL_ROWS(L->dims[2]) * sizeof *rows);
    const int with_rdo = rdo > 0.0 && real && bit_cost && h->wavelet == PJ2K_WAVELET_97 &&
                         h->layers == 1;
    pj2k_status st = (model && tmp && rows) ? PJ2K_OK : PJ2K_ERR_NOMEM;
    if (model) model->rows = rows;
    const pj2k_rdo rdo_template = {.real = real, .real_f32 = real_f32, .kappa = rdo,
                                   .bit_cost = bit_cost};
    for (int r = 0; r <= h->levels && st == PJ2K_OK; r++) {
        for (int j = 0; j < h->layers && st == PJ2K_OK; j++) {
            const size_t start = out->length;
            pj2k_rc_encoder rc;
            pj2k_rc_encoder_init(&rc, out);
            start_piece(model, h->version, r * h->layers + j);
            st = encode_piece(h, L, coef, kind, r, j, &rc, model, tmp,
                              with_rdo ? &rdo_template : NULL, max_length, out);
            pj2k_rc_encoder_finish(&rc);
            if (out->failed) { st = PJ2K_ERR_NOMEM; break; }
            const int i = r * h->layers + j;
            h->piece_end[i] = out->length;
            h->piece_crc[i] = pj2k_crc32c(out->data + start, out->length - start);
        }
        h->segment_end[r] = h->piece_end[r * h->layers + h->layers - 1];
    }
    free(model);
    free(tmp);
    free(rows);
    return st;
}

/* The encoder in two stages: pj2k_prepare loads and transforms the samples
 * once; pj2k_encode_prepared quantises (9/7) and entropy-codes them, as often
 * as a rate search or a layer probe needs. */
struct pj2k_prepared {
    pj2k_header h;      /* from the parameters; steps, layers and pieces per encode */
    layout L;
    int lossy;
    int choose_m97;     /* m97_levels is the encoder's choice (choose_m97_levels) */
    int close_gaps;     /* pj2k_params.close_gaps, for a lossless wavelet */
    coef_kind kind;
    void *coef;         /* lossless and error-bounded: the coefficients; 9/7: quantised ones */
    void *real;         /* 9/7: the coefficients, */
    int real_f32;       /* in float32 (8- and 16-bit samples: ample precision) or float64 */
    int coef_in_real;   /* coef lies in real's allocation, after the coefficients */
    const float *bit_cost;  /* RD-optimised quantisation's cost table: the caller's, */
    float *own_bit_cost;    /* or this one, made at its first use */
    int coded;          /* coef holds the values of the last encode, whose header is */
    pj2k_header coded_h;
    double coded_rdo;   /* and whose RD-optimised quantisation had this strength (0: none) */
    /* 9/7: each band's synthesis norm (header_band_norms), made once: every
     * trial's steps, the histogram and the context counts read them (each
     * is naxes * levels * 2 impulse responses: 5% of a 128^2 ratio search
     * when made per call) */
    double norms[PJ2K_MAX_BANDS];
    /* pj2k_prepared_reconstruct's working buffers, kept for the next call:
     * a search reconstructs every trial, and a fresh chunk-sized buffer
     * costs its first touch (the kernel zeroes every page: about a quarter
     * of a 9/7 reconstruction) */
    void *scratch_coef;   /* a copy of coef, in the kind scratch_kind */
    coef_kind scratch_kind;
    double *scratch_real; /* dequantised or scaled values */
    size_t scratch_real_bytes;
};

/* coef and real, allocated apart or (9/7) together */
static void free_buffers(pj2k_prepared *prep)
{
    if (!prep->coef_in_real) free(prep->coef);
    free(prep->real);
    prep->coef = prep->real = NULL;
    prep->coef_in_real = 0;
}

void pj2k_prepared_free(pj2k_prepared *prep)
{
    if (!prep) return;
    free_buffers(prep);
    free(prep->own_bit_cost);
    free(prep->scratch_coef);
    free(prep->scratch_real);
    free(prep);
}

/* The encoder's choice of wavelet for the finest level of a reversible
 * chunk (docs/DESIGN.md 23): 9/7-M where it predicts smooth data better, 5/3
 * where it does not (noise, edges, sparse data); coarser levels always 5/3
 * (9/7-M gains little there).  The estimate lifts sample blocks of up to
 * M97_BLOCK along each box axis, every other block along each axis of every
 * component, both ways, and compares their high bands' bit lengths; 9/7-M
 * wins unless it costs M97_MARGIN_BITS per sampled value more, because the
 * estimate favours 5/3 (the entropy coder's contexts gain more from the
 * smoother bands).  A margin per value rather than a fraction keeps noisy
 * high-bit-depth data, whose many shared mantissa bits dilute any fraction,
 * on 5/3.  Blocks are copied out: the choice needs no chunk-sized memory. */
#define M97_BLOCK 32
#define M97_MARGIN_BITS 0.01
static pj2k_status choose_m97_levels(pj2k_prepared *prep, const pj2k_kernels *K)
{
    pj2k_header *h = &prep->h;
    const layout *L = &prep->L;
    h->m97_levels = 0;
    if (h->levels < 1) return PJ2K_OK;
    size_t block[3], count = 1;
    for (int a = 0; a < 3; a++) {
        block[a] = L->dims[a] < M97_BLOCK ? L->dims[a] : M97_BLOCK;
        count *= block[a];
    }
    /* int32 holds every 8- and 16-bit coefficient; the rest lift in int64 */
    const int wide = prep->kind == COEF_I64;
    const size_t size = wide ? sizeof(int64_t) : sizeof(int32_t);
    uint8_t *both = malloc(2 * count * size);
    void *tmp = malloc(pj2k_transform_tmp_elems(block) * size);
    if (!both || !tmp) {
        free(both);
        free(tmp);
        return PJ2K_ERR_NOMEM;
    }
    void *as53 = both, *asm97 = both + count * size;
    uint64_t bits[2] = {0, 0};
    size_t sampled = 0;
    const ptrdiff_t st[3] = {(ptrdiff_t)(L->dims[1] * L->dims[2]), (ptrdiff_t)L->dims[2], 1};
    for (size_t c = 0; c < L->planes * L->ncomp; c++)
        for (size_t z0 = 0; z0 < L->dims[0]; z0 += 2 * block[0])
            for (size_t y0 = 0; y0 < L->dims[1]; y0 += 2 * block[1])
                for (size_t x0 = 0; x0 < L->dims[2]; x0 += 2 * block[2]) {
                    const size_t e[3] = {L->dims[0] - z0 < block[0] ? L->dims[0] - z0 : block[0],
                                         L->dims[1] - y0 < block[1] ? L->dims[1] - y0 : block[1],
                                         L->dims[2] - x0 < block[2] ? L->dims[2] - x0 : block[2]};
                    const ptrdiff_t from = (ptrdiff_t)(c * L->box) + (ptrdiff_t)z0 * st[0] +
                                           (ptrdiff_t)y0 * st[1] + (ptrdiff_t)x0;
                    size_t i = 0;
#define GATHER_AS(WT, S, CT)                                                                  \
    for (size_t z = 0; z < e[0]; z++)                                                         \
        for (size_t y = 0; y < e[1]; y++)                                                     \
            for (size_t x = 0; x < e[2]; x++, i++)                                            \
                ((WT *)as53)[i] = ((WT *)asm97)[i] = (WT)((const CT *)prep->coef)[             \
                    from + (ptrdiff_t)z * st[0] + (ptrdiff_t)y * st[1] + (ptrdiff_t)x]
#define GATHER32(S, CT) GATHER_AS(int32_t, S, CT)
#define GATHER64(S, CT) GATHER_AS(int64_t, S, CT)
                    if (wide) BY_KIND(prep->kind, GATHER64);
                    else BY_KIND(prep->kind, GATHER32);
#undef GATHER_AS
#undef GATHER32
#undef GATHER64
                    sampled += e[0] * e[1] * e[2];
                    bits[0] += pj2k_high_band_bits(K, as53, wide, e, pj2k_lift_rounding(h->wavelet), tmp);
                    bits[1] += pj2k_high_band_bits(K, asm97, wide, e, 1, tmp);
                }
    free(both);
    free(tmp);
    h->m97_levels = (double)bits[1] < (double)bits[0] + M97_MARGIN_BITS * (double)sampled ? 1u : 0u;
    return PJ2K_OK;
}

/* Load, colour-transform and wavelet-transform the samples into prep->coef
 * (or prep->real) of prep->kind; PJ2K_NARROW_OVERFLOW if int16 does not suffice. */
static pj2k_status transform_samples(pj2k_prepared *prep, const void *data, double *tmp)
{
    const pj2k_kernels *K = pj2k_kernels_select();
    const pj2k_header *h = &prep->h;
    const layout *L = &prep->L;
    const int lossy = prep->lossy, prequantised = pj2k_prequantised(h->wavelet);
    void *coef = prep->coef;
    double *real = prep->real;
    float *real32 = prep->real;
    const int f32 = prep->real_f32;
    /* samples as floats first: lossy into real; error-bounded into coef
     * (int64), where they are prequantised in place */
    const int work = lossy || prequantised ? PJ2K_WORK_F64 : COEF_WORK[prep->kind];
    /* interleaved colour into float32: loaded and colour-transformed at once */
    const int interleaved = f32 && h->colour == PJ2K_COLOUR_ICT && interleaved_colour(h, L);
    if (interleaved)
        copy_interleaved_colour(L, real32, sizeof(float), (void *)data, DTYPE_INFO[h->dtype].size,
                                K->load_ict_triples_f32[h->dtype]);
    else
        permuted_copy(L, lossy ? (void *)real : coef, f32 ? sizeof(float) : WORK_SIZE[work],
                      (void *)data, DTYPE_INFO[h->dtype].size,
                      f32 ? K->load_f32[h->dtype] : K->load[work][h->dtype], 1);
    if (prequantised && !K->prequantise[h->dtype](coef, L->elements, h->scale, h->tolerance))
        return PJ2K_ERR_PARAM;   /* non-finite, too large for the scale, or below precision */
    if (prep->close_gaps) {   /* (8- and 16-bit dtypes: closes nothing for wider ones) */
        int64_t lo, hi;
        dtype_range(h->dtype, &lo, &hi);
        const pj2k_status st = pj2k_close_value_gaps(&prep->h, coef, (int)COEF_BYTES[prep->kind],
                                                     L->elements, lo, hi);
        if (st != PJ2K_OK) return st;
    }
    const size_t comp = L->box;
    for (size_t p = 0; p < L->planes && !interleaved; p++) {   /* (interleaved: as they loaded) */
        const size_t c0 = p * L->ncomp * comp;
        if (h->colour == PJ2K_COLOUR_ICT && f32) {
            K->ict_fwd_f32(real32 + c0, real32 + c0 + comp, real32 + c0 + 2 * comp, comp);
        } else if (h->colour == PJ2K_COLOUR_ICT) {
            K->ict_fwd(real + c0, real + c0 + comp, real + c0 + 2 * comp, comp);
        } else if (h->colour == PJ2K_COLOUR_RCT) {
#define RCT(S, CT) K->rct_fwd_##S((CT *)coef + c0, (CT *)coef + c0 + comp, (CT *)coef + c0 + 2 * comp, comp)
            BY_KIND(prep->kind, RCT);
#undef RCT
        }
    }
    if (prep->choose_m97) {
        const pj2k_status st = choose_m97_levels(prep, K);
        if (st != PJ2K_OK) return st;
    }
    const unsigned m97 = h->m97_levels | pj2k_lift_rounding(h->wavelet);
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        if (lossy && f32) K->fwd97_f32(real32 + c * comp, L->dims, h->levels, (float *)tmp);
        else if (lossy) K->fwd97_f64(real + c * comp, L->dims, h->levels, tmp);
        else if (prep->kind == COEF_I64)
            K->fwd_rev_i64((int64_t *)coef + c * comp, L->dims, h->levels, m97, (int64_t *)tmp);
        else if (prep->kind == COEF_I32)
            K->fwd_rev_i32((int32_t *)coef + c * comp, L->dims, h->levels, m97, (int32_t *)tmp);
        else if (!K->fwd_rev_i16((int16_t *)coef + c * comp, L->dims, h->levels, m97, (int32_t *)tmp))
            return PJ2K_NARROW_OVERFLOW;
    }
    return PJ2K_OK;
}

pj2k_status pj2k_prepare(const pj2k_params *params, const void *data, pj2k_prepared **out)
{
    if (!out || !data) return PJ2K_ERR_PARAM;
    *out = NULL;
    pj2k_prepared *prep = calloc(1, sizeof *prep);
    if (!prep) return PJ2K_ERR_NOMEM;
    pj2k_header *h = &prep->h;
    layout *L = &prep->L;
    pj2k_status st = header_from_params(params, h);
    if (st != PJ2K_OK) goto fail;
    make_layout(h, 0, L);
    prep->lossy = h->wavelet == PJ2K_WAVELET_97;
    prep->bit_cost = params->bit_cost;
    if (prep->lossy && !header_band_norms(h, prep->norms)) { st = PJ2K_ERR_NOMEM; goto fail; }
    prep->choose_m97 = params->m97_levels == PJ2K_M97_AUTO && !prep->lossy;
    prep->close_gaps = params->close_gaps && pj2k_lossless(h->wavelet);
    prep->real_f32 = float32_work(h);
    /* lossy: int16 for 8-bit samples (what their quantised values need
     * unless the step is far below one), else int32; widened when needed */
    prep->kind = !prep->lossy ? kind_for(h, 0)
               : prep->real_f32 && DTYPE_INFO[h->dtype].bits == 8 ? COEF_I16 : COEF_I32;
    if (L->elements) {
        double *tmp = malloc(pj2k_transform_tmp_elems(L->dims) * 8);
        if (!tmp) { st = PJ2K_ERR_NOMEM; goto fail; }
        const size_t real_bytes = L->elements * pj2k_real_size(prep->real_f32);
        do {
            free_buffers(prep);
            if (prep->lossy) {
                /* one allocation: the float32 coefficients of a 512^2 chunk
                 * alone (1 MiB) would miss the huge pages of
                 * pj2k_malloc_large and fault per 4 KiB on every encode */
                prep->real = pj2k_malloc_large(real_bytes + L->elements * COEF_BYTES[prep->kind]);
                prep->coef = prep->real ? (uint8_t *)prep->real + real_bytes : NULL;
                prep->coef_in_real = 1;
            } else {
                prep->coef = pj2k_malloc_large(L->elements * COEF_BYTES[prep->kind]);
            }
            st = !prep->coef ? PJ2K_ERR_NOMEM
                 : transform_samples(prep, data, tmp);
            if (st == PJ2K_NARROW_OVERFLOW) prep->kind = COEF_I32;   /* again, wide */
        } while (st == PJ2K_NARROW_OVERFLOW);
        free(tmp);
        if (st != PJ2K_OK) goto fail;
    }
    *out = prep;
    return PJ2K_OK;
fail:
    pj2k_prepared_free(prep);
    return st;
}

/* Coefficients whose coding needs a wider type: int16 (lossless 8-bit) to
 * int32, keeping the values; lossy int16 to int32 and int32 to int64 (the
 * caller quantises again). */
static pj2k_status widen(pj2k_prepared *prep)
{
    const size_t n = prep->L.elements;
    if (prep->lossy) {
        if (prep->kind == COEF_I64) return PJ2K_ERR_PARAM;   /* the widest: a low-band residual beyond it */
        const coef_kind kind = prep->kind == COEF_I16 ? COEF_I32 : COEF_I64;
        void *wide = pj2k_malloc_large(n * COEF_BYTES[kind]);
        if (!wide) return PJ2K_ERR_NOMEM;
        if (!prep->coef_in_real) free(prep->coef);
        prep->coef = wide;
        prep->coef_in_real = 0;
        prep->kind = kind;
        return PJ2K_OK;
    }
    int32_t *wide = pj2k_malloc_large(n * sizeof *wide);
    if (!wide) return PJ2K_ERR_NOMEM;
    const int16_t *narrow = prep->coef;
    for (size_t i = 0; i < n; i++) wide[i] = narrow[i];
    free(prep->coef);
    prep->coef = wide;
    prep->kind = COEF_I32;
    return PJ2K_OK;
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

/* The largest key of every row_stride-th row of each band (-1: none). */
static int64_t largest_key(const pj2k_prepared *prep, const double *norms, size_t row_stride,
                           double *buf)
{
    const pj2k_header *h = &prep->h;
    const layout *L = &prep->L;
    const pj2k_kernels *K = pj2k_kernels_select();
    const int f32 = prep->lossy && prep->real_f32;
    int32_t largest = -1, bins[HISTOGRAM_SLICE];   /* (the bins themselves are not wanted) */
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        FOR_EACH_BAND_ROW(L->dims, h->levels, h->naxes, {
            if ((z * sb->band.n[1] + y) % row_stride == 0) {
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
                       int32_t top_bin, int32_t last_bin, uint64_t *band_counts)
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
            else band_counts[(size_t)bins[i]]++;
        }
        band_counts[last_bin] += in_last;
    }
    return largest;
}

/* Bins every coefficient's key against `top` into counts (nbands x width,
 * zeroed), bin HISTOGRAM_HEADROOM holding key == top; returns the largest
 * key seen, or -2 if one lies beyond the headroom. */
static int64_t bin_keys(const pj2k_prepared *prep, const double *norms, int64_t top, size_t width,
                        uint64_t *counts, double *buf)
{
    const pj2k_header *h = &prep->h;
    const layout *L = &prep->L;
    const pj2k_kernels *K = pj2k_kernels_select();
    const int32_t top_bin = (int32_t)(top + HISTOGRAM_HEADROOM), last_bin = (int32_t)width - 1;
    const int f32 = prep->lossy && prep->real_f32;   /* read as they are; else as doubles */
    int32_t largest = -1;
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        FOR_EACH_BAND_ROW(L->dims, h->levels, h->naxes, {
            const void *row = binned_row(prep, f32, c, at, nx, buf);
            const int32_t row_largest =
                bin_row(K, row, f32, nx, norms[sb->step_index], top_bin, last_bin,
                        counts + (size_t)sb->step_index * width);
            largest = row_largest > largest ? row_largest : largest;
        })
    }
    return largest > top_bin ? -2 : largest;   /* (that key's bin would be below 0) */
}

pj2k_status pj2k_prepared_histogram(const pj2k_prepared *prep, size_t nbands, size_t nbins,
                                    uint64_t *counts, int64_t *top_key)
{
    if (!prep || nbins < 2 || !counts || !top_key) return PJ2K_ERR_PARAM;
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
    int64_t probe = largest_key(prep, norms, HISTOGRAM_PROBE_STRIDE, buf);   /* the provisional top */
    int64_t top = bin_keys(prep, norms, probe, width, wide, buf);
    if (top == -2) {   /* beyond the headroom: again, against the true top */
        memset(wide, 0, nbands * width * sizeof *wide);
        probe = top = largest_key(prep, norms, 1, buf);
        bin_keys(prep, norms, probe, width, wide, buf);
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
#define CONTEXT_SAMPLE_MIN_ROWS 16   /* rows counted at least (if the band has them) */
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
            const int nb = segment_bands(L->dims, h->levels, r, h->naxes, 1, sbs);
            for (int b = 0; b < nb; b++) {
                const pj2k_band *band = &sbs[b].band;
                const size_t nx = band->n[2], ny = band->n[1], nz = band->n[0], pnx = band->pn[2];
                const size_t most = ny / CONTEXT_SAMPLE_MIN_ROWS,
                             stride = most < 1 ? 1 : most < row_stride ? most : row_stride;
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

/* Quantise (9/7) and entropy-code the prepared coefficients into `out`.  A
 * layered 9/7 stream with RD-optimised quantisation codes the values a
 * single-layer pass chose, so that all its layers decode exactly like the
 * single-layer stream.  quantised: coef already holds the values this
 * encode needs (the decisions of the last encode, at the same steps and
 * strength), so neither the quantiser nor that pass runs again. */
static pj2k_status quantise_and_code(pj2k_prepared *prep, pj2k_header *h, double rdo,
                                     int quantised, size_t max_length, pj2k_bytes *out)
{
    const layout *L = &prep->L;
    pj2k_status st = PJ2K_OK;
    if (prep->lossy && rdo > 0.0 && !prep->bit_cost) {
        prep->own_bit_cost = malloc(PJ2K_BIT_COST_SIZE * sizeof *prep->own_bit_cost);
        if (!prep->own_bit_cost) return PJ2K_ERR_NOMEM;
        pj2k_bit_cost_table(prep->own_bit_cost);
        prep->bit_cost = prep->own_bit_cost;
    }
    if (prep->lossy && !quantised)
        st = quantise(pj2k_kernels_select(), h, L, prep->real, prep->real_f32, prep->coef, prep->kind);
    if (st == PJ2K_OK && prep->lossy && rdo > 0.0 && h->layers > 1 && !quantised) {
        pj2k_header single = *h;
        single.layers = 1;
        memset(single.layer_shift, 0, sizeof single.layer_shift);
        pj2k_bytes scratch = {0};
        st = encode_segments(&single, L, prep->coef, prep->kind, prep->real, prep->real_f32, rdo,
                             prep->bit_cost, 0, &scratch);
        free(scratch.data);
    }
    if (st == PJ2K_OK)
        st = encode_segments(h, L, prep->coef, prep->kind, prep->real, prep->real_f32, rdo,
                             prep->bit_cost, max_length, out);
    return st;
}

pj2k_status pj2k_encode_prepared(pj2k_prepared *prep, double step, int layers,
                                 const uint8_t (*layer_shift)[PJ2K_MAX_BANDS], double rdo,
                                 size_t max_length, uint8_t **out, size_t *out_length)
{
    if (!prep || !out || !out_length || layers < 0 || layers > PJ2K_MAX_LAYERS ||
        (layers > 1 && !layer_shift) || !(rdo >= 0.0 && rdo <= PJ2K_MAX_RDO))
        return PJ2K_ERR_PARAM;
    *out = NULL;
    *out_length = 0;
    const int was_coded = prep->coded;
    prep->coded = 0;
    pj2k_header h = prep->h;
    const layout *L = &prep->L;
    h.layers = layers > 1 ? layers : 1;
    memset(h.layer_shift, 0, sizeof h.layer_shift);
    if (h.layers > 1) memcpy(h.layer_shift, layer_shift, (size_t)h.layers * sizeof *layer_shift);
    /* version 8 where it changes the decode, else version 7: the same
     * bytes, which decoders before version 8 still read */
    h.version = float32_work(&h) ? PJ2K_FORMAT_VERSION : PJ2K_FORMAT_VERSION_COMPAT;
    h.header_length = header_length_of(h.version, h.ndim, h.naxes, h.levels, h.wavelet, h.layers,
                                       h.ngaps);
    if (!valid_layers(&h)) return PJ2K_ERR_PARAM;
    pj2k_status st = PJ2K_OK;
    if (prep->lossy) {
        if (!(step > 0.0 && isfinite(step))) return PJ2K_ERR_PARAM;
        compute_steps(&h, prep->norms, step);
        for (int i = 0; i < h.nbands; i++)
            if (!(h.steps[i] > 0.0f) || !isfinite(h.steps[i])) return PJ2K_ERR_PARAM;
    }
    if (max_length && h.header_length > max_length) return PJ2K_ERR_TOO_LARGE;
    pj2k_bytes bytes = {0};
    if (!pj2k_bytes_reserve(&bytes, h.header_length + 1024)) return PJ2K_ERR_NOMEM;
    bytes.length = h.header_length;
    if (L->elements) {
        /* layers over the RD-optimised values of the last encode at these
         * steps: its decisions are reused, not made again (a layered encode
         * makes them in a pass without layers; docs/DESIGN.md 30) */
        const int quantised = prep->lossy && was_coded && rdo > 0.0 && h.layers > 1 &&
                              prep->coded_rdo == rdo &&
                              !memcmp(prep->coded_h.steps, h.steps, (size_t)h.nbands * sizeof *h.steps);
        st = quantise_and_code(prep, &h, rdo, quantised, max_length, &bytes);
        while (st == PJ2K_NARROW_OVERFLOW) {   /* a value or residual needs a wider type */
            bytes.length = h.header_length;
            st = widen(prep);
            if (st == PJ2K_OK) st = quantise_and_code(prep, &h, rdo, 0, max_length, &bytes);
        }
    } else {
        if (prep->lossy) for (int i = 0; i < h.nbands; i++) h.steps[i] = 1.0f;
        for (int i = 0; i < (h.levels + 1) * h.layers; i++) {
            h.piece_end[i] = h.header_length;
            h.piece_crc[i] = pj2k_crc32c(NULL, 0);
        }
    }
    if (st == PJ2K_OK && max_length && bytes.length > max_length)
        st = PJ2K_ERR_TOO_LARGE;   /* (the last flushes) */
    if (st != PJ2K_OK) {
        free(bytes.data);
        return st;
    }
    write_header(&h, bytes.data);
    *out = bytes.data;
    *out_length = bytes.length;
    prep->coded = 1;
    prep->coded_h = h;
    prep->coded_rdo = prep->lossy ? rdo : 0.0;
    return PJ2K_OK;
}

pj2k_status pj2k_encode(const pj2k_params *params, const void *data, uint8_t **out, size_t *out_length)
{
    if (!out || !out_length) return PJ2K_ERR_PARAM;
    *out = NULL;
    *out_length = 0;
    if (!params) return PJ2K_ERR_PARAM;
    pj2k_prepared *prep = NULL;
    pj2k_status st = pj2k_prepare(params, data, &prep);
    if (st == PJ2K_OK)
        st = pj2k_encode_prepared(prep, params->step, params->layers,
                                  (const uint8_t (*)[PJ2K_MAX_BANDS])params->layer_shift, params->rdo,
                                  params->max_length, out, out_length);
    pj2k_prepared_free(prep);
    return st;
}

void pj2k_free(void *ptr) { free(ptr); }

/* ---- decoder ------------------------------------------------------------------ */
/* Decode pieces 0..last[r] of every segment r <= levels into `coef`. */
static pj2k_status decode_segments(const pj2k_header *h, const layout *L, int levels,
                                   const int *last, const uint8_t *buf, void *coef,
                                   coef_kind kind)
{
    pj2k_model *model = malloc(sizeof *model);
    void *tmp = malloc((low_band_elems(L, levels) + 1) * COEF_BYTES[kind]);
    uint16_t *rows = malloc(PJ2K_MODEL_ROWS(L->dims[2]) * sizeof *rows);
    pj2k_status st = (model && tmp && rows) ? PJ2K_OK : PJ2K_ERR_NOMEM;
    if (model) model->rows = rows;
    int max_exp;
    int64_t bound;
    coefficient_limits(h, &max_exp, &bound);
    const int legacy = h->version < 3;   /* versions 1 and 2: the first coding rules */
    for (int r = 0; r <= levels && st == PJ2K_OK; r++) {
        segment_band sbs[7];
        const int nb = segment_bands(L->dims, levels, r, h->naxes, !legacy, sbs);
        for (int j = 0; j <= last[r] && st == PJ2K_OK; j++) {
            const int i = r * h->layers + j;
            const uint64_t start = i ? h->piece_end[i - 1] : h->header_length;
            pj2k_rc_decoder rc;
            pj2k_rc_decoder_init(&rc, buf + start, (size_t)(h->piece_end[i] - start));
            start_piece(model, h->version, i);
            for (size_t c = 0; c < L->planes * L->ncomp && st == PJ2K_OK; c++) {
                for (int b = 0; b < nb && st == PJ2K_OK; b++) {
                    const size_t at = c * L->box + sbs[b].offset;
                    pj2k_band component_band = sbs[b].band;
                    if (!legacy) component_band.sibling_offset = c % L->ncomp ? -(ptrdiff_t)L->box : 0;
                    const pj2k_band *band = &component_band;
                    const int to = h->layer_shift[j][sbs[b].step_index];
                    const int from = j ? h->layer_shift[j - 1][sbs[b].step_index] : 0;
                    if (j && from == to) continue;
#define DECODE(S, CT)                                                                      \
                    {                                                                      \
                        CT *base = (CT *)coef + at;                                        \
                        st = j ? pj2k_decode_refine_##S(&rc, model, base, band, from, to)  \
                           : r == 0 ? pj2k_decode_low_##S(&rc, model, base, band, max_exp - to, \
                                                          bound >> to, (CT *)tmp)          \
                           : pj2k_decode_band_##S(&rc, model, base, band, max_exp - to, to); \
                    }
#define DECODE_LEGACY(S, CT) DECODE(S##_legacy, CT)
                    if (legacy) BY_KIND(kind, DECODE_LEGACY);
                    else BY_KIND(kind, DECODE);
#undef DECODE_LEGACY
#undef DECODE
                }
            }
            /* the decoder reads exactly the bytes the encoder wrote */
            if (st == PJ2K_OK && (rc.overrun || rc.pos != rc.length)) st = PJ2K_ERR_CORRUPT;
        }
    }
    free(model);
    free(tmp);
    free(rows);
    return st;
}

typedef struct {
    pj2k_trial_fn fn;
    double *squared;
} trial_runs;

static void trial_run(void *ctx, uint8_t *work, uint8_t *array, size_t run, ptrdiff_t stride)
{
    const trial_runs *t = ctx;
    t->fn((const float *)(void *)work, array, run, stride, t->squared);
}

/* A PSNR trial's float32 samples `values` (working order) against the
 * array's: the sum of squared errors. */
static double compare_trial(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                            const float *values, void *original)
{
    double squared = 0.0;
    trial_runs runs = {K->trial_error_f32[h->dtype], &squared};
    for_each_run(L, (void *)values, sizeof(float), original, DTYPE_INFO[h->dtype].size, trial_run,
                 &runs);
    return squared;
}

/* The decoded coefficients (of `kind`, levels still to undo, pieces through
 * last[r]) to samples in `out`: dequantisation, inverse transforms and the
 * store.  Lossless and error-bounded coefficients are transformed in place
 * (error-bounded ones then become float64 values there); lossy ones are only
 * read, and reconstructed in float64, or in float32 where
 * float32_reconstruction says so.  PJ2K_NARROW_OVERFLOW if int16 did not
 * suffice (nothing was stored).  real_buffer (9/7): room for L->elements
 * values of the working float type, or NULL to allocate it here; `coef`
 * lying within it where in_place_offset says is dequantised there
 * (dequantise_in_place).  With `trial` (float32 reconstructions only):
 * the samples are compared with `out` instead of stored there, and *trial
 * gets the sum of squared errors (pj2k_prepared_trial_error). */
static pj2k_status reconstruct(const pj2k_header *h, const layout *L, int levels, const int *last,
                               void *coef, coef_kind kind, void *out, double *real_buffer,
                               double *trial)
{
    const pj2k_kernels *K = pj2k_kernels_select();
    const int lossy = h->wavelet == PJ2K_WAVELET_97;
    const int prequantised = pj2k_prequantised(h->wavelet);
    const int f32 = float32_reconstruction(h);
    /* interleaved colour: the inverse ICT done as the triples are stored */
    const int ict_with_store = lossy && !trial && h->colour == PJ2K_COLOUR_ICT && interleaved_colour(h, L);
    int max_exp;
    int64_t bound;
    coefficient_limits(h, &max_exp, &bound);
    pj2k_status st = PJ2K_OK;
    double *real = NULL;
    void *tmp = malloc(pj2k_transform_tmp_elems(L->dims) * 8 + 8);
    if (!tmp) { st = PJ2K_ERR_NOMEM; goto done; }
    const size_t comp = L->box;
    int work;
    void *result;
    if (trial && !f32) {
        st = PJ2K_ERR_PARAM;
        goto done;
    }
    if (lossy) {
        real = real_buffer ? real_buffer
                           : pj2k_malloc_large(L->elements * pj2k_real_size(f32) + 8);
        if (!real) { st = PJ2K_ERR_NOMEM; goto done; }
        float *real32 = (float *)(void *)real;   /* f32: the buffer as float32 */
        const ptrdiff_t inside = in_place_offset(L, f32, kind);
        if (real_buffer && inside >= 0 && (uint8_t *)coef == (uint8_t *)real_buffer + inside) {
            dequantise_in_place(K, h, L, levels, real, f32, kind, last);
        } else {
            dequantise(K, h, L, levels, coef, kind, f32 ? (void *)real32 : (void *)real, f32, last);
        }
        /* generous: data values up to ~1e300, and no overflow to inf inside */
        const double real_bound = DTYPE_INFO[h->dtype].is_float ? 1e300 : 1e12;
        for (size_t c = 0; c < L->planes * L->ncomp; c++) {
            if (f32) K->inv97_f32(real32 + c * comp, L->dims, levels, tmp, (float)real_bound);
            else K->inv97_f64(real + c * comp, L->dims, levels, tmp, real_bound);
        }
        if (h->colour == PJ2K_COLOUR_ICT && !ict_with_store)
            for (size_t p = 0; p < L->planes; p++) {
                if (f32) {
                    float *c0 = real32 + p * 3 * comp;
                    K->ict_inv_f32(c0, c0 + comp, c0 + 2 * comp, comp);
                } else {
                    double *c0 = real + p * 3 * comp;
                    K->ict_inv(c0, c0 + comp, c0 + 2 * comp, comp);
                }
            }
        work = PJ2K_WORK_F64;   /* (float32 work: its own store kernels, below) */
        result = f32 ? (void *)real32 : (void *)real;
    } else {
        if (last[levels] < h->layers - 1) {   /* only the finest segment can end early */
            if (kind == COEF_I64) reconstruct_partial_i64(h, L, levels, coef, last);
            else reconstruct_partial_i32(h, L, levels, coef, last);   /* never narrow */
        }
        /* the levels inverted, and the rounded 5/3's flag */
        const unsigned m97 = (h->m97_levels >> (h->levels - levels)) | pj2k_lift_rounding(h->wavelet);
        for (size_t c = 0; c < L->planes * L->ncomp && st == PJ2K_OK; c++) {
            if (kind == COEF_I64)
                K->inv_rev_i64((int64_t *)coef + c * comp, L->dims, levels, m97, tmp, bound);
            else if (kind == COEF_I32)
                K->inv_rev_i32((int32_t *)coef + c * comp, L->dims, levels, m97, tmp, bound);
            else if (!K->inv_rev_i16((int16_t *)coef + c * comp, L->dims, levels, m97, tmp, bound))
                st = PJ2K_NARROW_OVERFLOW;
        }
        if (h->colour == PJ2K_COLOUR_RCT)
            for (size_t p = 0; p < L->planes && st == PJ2K_OK; p++) {
                const size_t c0 = p * 3 * comp;
                int fits = 1;
#define RCT(S, CT) fits = K->rct_inv_##S((CT *)coef + c0, (CT *)coef + c0 + comp, (CT *)coef + c0 + 2 * comp, comp)
                BY_KIND(kind, RCT);
#undef RCT
                if (!fits) st = PJ2K_NARROW_OVERFLOW;
            }
        if (st != PJ2K_OK) goto done;
        work = COEF_WORK[kind];
        result = coef;
        if (prequantised) {   /* back to data units in place: q * scale, as the encoder checked */
            if (kind != COEF_I64) { st = PJ2K_ERR_PARAM; goto done; }   /* (kind_for's) */
            unsigned char *at = coef;   /* int64 in, float64 out (memcpy: they share the memory) */
            for (size_t i = 0; i < L->elements; i++, at += 8) {
                int64_t q;
                memcpy(&q, at, sizeof q);
                const double v = (double)q * h->scale;
                memcpy(at, &v, sizeof v);
            }
            work = PJ2K_WORK_F64;
        }
    }
    if (h->ngaps) {   /* (lossless: result holds integers of `kind`) */
        int64_t lo, hi;
        dtype_range(h->dtype, &lo, &hi);
        pj2k_open_value_gaps(h, result, (int)COEF_BYTES[kind], L->elements, lo, hi);
    }
    const size_t work_size = lossy ? pj2k_real_size(f32) : WORK_SIZE[work];
    if (trial) {
        *trial = compare_trial(K, h, L, result, out);
    } else if (ict_with_store) {
        copy_interleaved_colour(L, result, work_size, out, DTYPE_INFO[h->dtype].size,
                                f32 ? K->store_ict_triples_f32[h->dtype]
                                    : K->store_ict_triples_f64[h->dtype]);
    } else {
        permuted_copy(L, result, work_size, out, DTYPE_INFO[h->dtype].size,
                      lossy && f32 ? K->store_f32[h->dtype] : K->store[work][h->dtype], 0);
    }
done:
    if (real != real_buffer) free(real);
    free(tmp);
    return st;
}

static int64_t coef_get(const void *p, coef_kind kind, size_t i)
{
    return kind == COEF_I16 ? ((const int16_t *)p)[i]
         : kind == COEF_I32 ? ((const int32_t *)p)[i] : ((const int64_t *)p)[i];
}

/* The prepared values as decoding through `layer` has them, in `kind`
 * (wide enough for them): the finest segment's values shifted by that
 * layer's shifts, the other segments' whole. */
static void copy_known(const pj2k_prepared *prep, int layer, void *dst, coef_kind kind)
{
    const pj2k_header *h = &prep->coded_h;
    const layout *L = &prep->L;
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        const size_t base = c * L->box;
        FOR_EACH_BAND(L->dims, h->levels, h->naxes, {
            int64_t v = coef_get(prep->coef, prep->kind, base + at);
            const int s = r_ == h->levels ? h->layer_shift[layer][sb->step_index] : 0;
            if (s) {   /* sign(v) * (|v| >> s), with |v| unsigned (v may be INT64_MIN) */
                const uint64_t m = (v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v) >> s;
                v = v < 0 ? -(int64_t)m : (int64_t)m;
            }
            if (kind == COEF_I16) ((int16_t *)dst)[base + at] = (int16_t)v;
            else if (kind == COEF_I32) ((int32_t *)dst)[base + at] = (int32_t)v;
            else ((int64_t *)dst)[base + at] = v;
        })
    }
}

/* The working buffer of reconstructions, room for every value in float64
 * (real_size 8) or float32 (4: float32_reconstruction), kept for the next
 * call; 0 if out of memory.  A float32 buffer below a huge page
 * gets the float64 size where that reaches one: the first touch of 1 MiB
 * in 4 KiB pages cost camera's trial 0.4 ms, half its reconstruction. */
static int keep_real_buffer(pj2k_prepared *prep, size_t real_size)
{
    size_t bytes = prep->L.elements * real_size + 8;
    if (bytes < PJ2K_HUGE_PAGE_BYTES) bytes = prep->L.elements * sizeof(double) + 8;
    if (prep->scratch_real && prep->scratch_real_bytes >= bytes) return 1;
    free(prep->scratch_real);
    prep->scratch_real = pj2k_malloc_large(bytes);
    prep->scratch_real_bytes = prep->scratch_real ? bytes : 0;
    return prep->scratch_real != NULL;
}

pj2k_status pj2k_prepared_reconstruct(pj2k_prepared *prep, int layer, void *out,
                                      size_t out_size)
{
    if (!prep || !out || !prep->coded) return PJ2K_ERR_PARAM;
    const pj2k_header *h = &prep->coded_h;
    const layout *L = &prep->L;
    if (layer < 0) layer = h->layers - 1;
    if (layer >= h->layers || out_size != L->elements * DTYPE_INFO[h->dtype].size)
        return PJ2K_ERR_PARAM;
    if (!L->elements) return PJ2K_OK;
    int last[PJ2K_MAX_LEVELS + 1];   /* as pj2k_decode_layer at level 0 */
    for (int r = 0; r <= h->levels; r++) last[r] = r == h->levels ? layer : h->layers - 1;
    const int partial = layer < h->layers - 1;
    if (prep->lossy && !keep_real_buffer(prep, pj2k_real_size(float32_reconstruction(h))))
        return PJ2K_ERR_NOMEM;
    if (prep->lossy && !partial)   /* read only: no copy */
        return reconstruct(h, L, h->levels, last, prep->coef, prep->kind, out, prep->scratch_real, NULL);
    /* lossless reconstruction transforms in place, and partial values are
     * shifted: a copy, in the decoder's kind (wider only if a value needs it) */
    coef_kind kind = prep->lossy ? prep->kind : kind_for(h, partial);
    if (COEF_BYTES[kind] < COEF_BYTES[prep->kind]) kind = prep->kind;
    pj2k_status st;
    /* a wider kept buffer serves too: a wider kind gives the same values */
    if (prep->scratch_coef && COEF_BYTES[prep->scratch_kind] > COEF_BYTES[kind]) kind = prep->scratch_kind;
    do {
        if (prep->scratch_coef && prep->scratch_kind != kind) {
            free(prep->scratch_coef);
            prep->scratch_coef = NULL;
        }
        if (!prep->scratch_coef) {
            prep->scratch_coef = pj2k_malloc_large(L->elements * COEF_BYTES[kind] + 8);
            if (!prep->scratch_coef) return PJ2K_ERR_NOMEM;
            prep->scratch_kind = kind;
        }
        copy_known(prep, layer, prep->scratch_coef, kind);
        st = reconstruct(h, L, h->levels, last, prep->scratch_coef, kind, out, prep->scratch_real, NULL);
        if (st == PJ2K_NARROW_OVERFLOW && kind != COEF_I64) kind = kind == COEF_I16 ? COEF_I32 : COEF_I64;
        else break;
    } while (1);
    return st;
}

pj2k_status pj2k_prepared_trial_error(pj2k_prepared *prep, const void *original, size_t size,
                                      double *squared)
{
    if (!prep || !original || !squared || !prep->coded) return PJ2K_ERR_PARAM;
    const pj2k_header *h = &prep->coded_h;
    if (!float32_reconstruction(h)) return PJ2K_ERR_DTYPE;
    const layout *L = &prep->L;
    if (size != L->elements * DTYPE_INFO[h->dtype].size) return PJ2K_ERR_PARAM;
    *squared = 0.0;
    if (!L->elements) return PJ2K_OK;
    int last[PJ2K_MAX_LEVELS + 1];   /* every layer */
    for (int r = 0; r <= h->levels; r++) last[r] = h->layers - 1;
    if (!keep_real_buffer(prep, sizeof(float))) return PJ2K_ERR_NOMEM;
    /* (the trial only reads `original`) */
    pj2k_status st = reconstruct(h, L, h->levels, last, prep->coef, prep->kind, (void *)original,
                                 prep->scratch_real, squared);
#ifdef PJ2K_SELF_CHECK   /* the sanitizer build (scripts/run_sanitizers.sh): the decode's sum */
    if (st == PJ2K_OK) {
        void *decoded = malloc(size);
        if (decoded && reconstruct(h, L, h->levels, last, prep->coef, prep->kind, decoded,
                                   prep->scratch_real, NULL) == PJ2K_OK) {
            /* (both sums are exact below 2**53; above, summed apart, within an ulp) */
            const double exact =
                pj2k_kernels_select()->squared_error[h->dtype](decoded, original, L->elements);
            if (exact < 0x1p53 ? exact != *squared : fabs(exact - *squared) > 0x1p-50 * exact)
                __builtin_trap();
        }
        free(decoded);
    }
#endif
    return st;
}

/* Entropy decoding, then reconstruct, with coefficients of `kind`. */
static pj2k_status decode_with(const pj2k_header *h, const layout *L, int levels, const int *last,
                               const uint8_t *buf, void *out, coef_kind kind)
{
    /* 9/7 values go where in_place_offset puts them in the float buffer
     * that dequantisation then fills in place: one buffer of 8 bytes per
     * value for float64 work (not 12), of 4 for float32 work (not 6 or 8) */
    const int f32 = float32_reconstruction(h);
    const ptrdiff_t inside = h->wavelet == PJ2K_WAVELET_97 ? in_place_offset(L, f32, kind) : -1;
    void *block = pj2k_malloc_large(L->elements * (inside >= 0 ? pj2k_real_size(f32) : COEF_BYTES[kind]) + 8);
    void *coef = inside >= 0 && block ? (uint8_t *)block + inside : block;
    pj2k_status st = coef ? decode_segments(h, L, levels, last, buf, coef, kind) : PJ2K_ERR_NOMEM;
    if (st == PJ2K_OK) st = reconstruct(h, L, levels, last, coef, kind, out, inside >= 0 ? block : NULL, NULL);
    free(block);
    return st;
}

pj2k_status pj2k_decode(const uint8_t *buf, size_t length, int level, void *out, size_t out_size,
                        uint64_t max_elements)
{
    return pj2k_decode_layer(buf, length, level, -1, out, out_size, max_elements);
}

pj2k_status pj2k_decode_layer(const uint8_t *buf, size_t length, int level, int layer,
                              void *out, size_t out_size, uint64_t max_elements)
{
    pj2k_header h;
    pj2k_status st = pj2k_read_header(buf, length, &h);
    if (st != PJ2K_OK) return st;
    if (level < 0 || level > h.levels || layer >= h.layers) return PJ2K_ERR_PARAM;
    const int levels = h.levels - level;   /* decomposition levels still to undo */
    /* layers decoded per segment: all, except in the finest decoded one */
    int last[PJ2K_MAX_LEVELS + 1];
    for (int r = 0; r <= levels; r++) last[r] = (r == levels && layer >= 0) ? layer : h.layers - 1;
    const int pieces = levels * h.layers + last[levels] + 1;
    if (length < h.piece_end[pieces - 1]) return PJ2K_ERR_TRUNCATED;
    layout L;
    make_layout(&h, level, &L);
    const size_t item = DTYPE_INFO[h.dtype].size;
    if (!out || out_size != L.elements * item) return PJ2K_ERR_PARAM;
    if (L.elements > max_elements) return PJ2K_ERR_TOO_LARGE;
    for (int i = 0; i < pieces; i++) {
        const uint64_t start = i ? h.piece_end[i - 1] : h.header_length;
        if (pj2k_crc32c(buf + start, (size_t)(h.piece_end[i] - start)) != h.piece_crc[i])
            return PJ2K_ERR_CHECKSUM;
    }
    if (L.elements == 0) return PJ2K_OK;
    /* lossy values are decoded narrow unless one needs more: int32, or
     * int16 for 8-bit samples in float32 (the encoder's kind for them) */
    coef_kind kind = h.wavelet != PJ2K_WAVELET_97 ? kind_for(&h, last[levels] < h.layers - 1)
                   : float32_reconstruction(&h) && DTYPE_INFO[h.dtype].bits == 8 ? COEF_I16 : COEF_I32;
    st = decode_with(&h, &L, levels, last, buf, out, kind);
    while (st == PJ2K_NARROW_OVERFLOW && kind != COEF_I64) {   /* a value did not fit: wider */
        kind = kind == COEF_I16 ? COEF_I32 : COEF_I64;
        st = decode_with(&h, &L, levels, last, buf, out, kind);
    }
    return st;
}

const char *pj2k_status_message(pj2k_status status)
{
    switch (status) {
    case PJ2K_OK: return "success";
    case PJ2K_ERR_PARAM: return "invalid parameter";
    case PJ2K_ERR_NOMEM: return "out of memory";
    case PJ2K_ERR_MAGIC: return "not a progressive_j2k codestream (bad magic)";
    case PJ2K_ERR_VERSION: return "codestream format version, wavelet or dtype code not known to this decoder (written by a newer progressive_j2k?)";
    case PJ2K_ERR_HEADER: return "invalid codestream header";
    case PJ2K_ERR_TRUNCATED: return "codestream truncated";
    case PJ2K_ERR_CHECKSUM: return "checksum mismatch: corrupted codestream";
    case PJ2K_ERR_CORRUPT: return "corrupted entropy-coded data";
    case PJ2K_ERR_TOO_LARGE: return "size exceeds the limit";
    case PJ2K_ERR_DTYPE: return "dtype not supported in this mode";
    }
    return "unknown error";
}
