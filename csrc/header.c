/* The codestream's header: its fields, their checks, and its bytes
 * (docs/FORMAT.md 1). */
#include "codestream.h"
#include <math.h>
#include <string.h>

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

/* Version 1 has no layer fields and one piece per resolution; version 2 has
 * a layer count (2..16) and shift table; version 3 a layer count (1..16) and,
 * with more than one layer, the shift table; version 6 adds the 9/7-M
 * levels; version 7 the value gaps of lossless streams (a count, and 4
 * bytes per gap); version 9 the data's extent per axis and the fill
 * sample; version 10 the nodata mask's length. */
uint32_t pj2k_header_length_of(int version, int ndim, int naxes, int levels,
                               pj2k_wavelet wavelet, int layers, int ngaps)
{
    uint32_t n = PJ2K_FIXED_HEADER + 8u * (uint32_t)ndim + (uint32_t)naxes;
    if (version >= 2) n += 1u;
    if (version >= 6) n += 2u;
    if (has_gap_field(version, wavelet)) n += 1u + 4u * (uint32_t)ngaps;
    if (has_fill_field(version)) n += 8u * (uint32_t)ndim + PJ2K_FILL_BYTES;
    if (has_mask_field(version)) n += 8u;
    if (layers > 1) n += (uint32_t)(layers * band_count(levels, naxes));
    if (pj2k_prequantised(wavelet)) n += 16u;
    if (wavelet == PJ2K_WAVELET_97) n += 4u * (uint32_t)band_count(levels, naxes);
    return n + 12u * (uint32_t)((levels + 1) * layers) + 4u;
}

uint32_t pj2k_header_length(int version, int ndim, int naxes, int levels, pj2k_wavelet wavelet,
                            int layers, int ngaps)
{
    /* (what pj2k_read_header refuses, this refuses too) */
    if (version < 1 || version > PJ2K_FORMAT_VERSION || ndim < 1 || ndim > PJ2K_MAX_NDIM ||
        naxes < 1 || naxes > PJ2K_MAX_AXES || naxes > ndim || levels < 0 ||
        levels > PJ2K_MAX_LEVELS || (unsigned)wavelet > PJ2K_WAVELET_53R ||
        (pj2k_lift_rounding(wavelet) && version < 6) || layers < (version == 2 ? 2 : 1) ||
        layers > (version == 1 ? 1 : PJ2K_MAX_LAYERS) || ngaps < 0 || ngaps > PJ2K_MAX_GAPS ||
        (ngaps && !has_gap_field(version, wavelet)))
        return 0;
    return pj2k_header_length_of(version, ndim, naxes, levels, wavelet, layers, ngaps);
}

int pj2k_max_exponent(pj2k_dtype dtype, pj2k_wavelet wavelet)
{
    if ((unsigned)dtype >= PJ2K_NUM_DTYPES || (unsigned)wavelet > PJ2K_WAVELET_53R ||
        (pj2k_lossless(wavelet) && DTYPE_INFO[dtype].is_float))   /* (no stream has those) */
        return -1;
    if (wavelet == PJ2K_WAVELET_97) return 60;
    if (pj2k_prequantised(wavelet)) return 52;   /* |q| < 2**40, plus colour and transform growth */
    return (int)DTYPE_INFO[dtype].bits + 10;
}

/* Largest element count any shape may claim (2**48): keeps size arithmetic
 * far from overflow; the caller's own limit is checked separately. */
#define MAX_TOTAL_ELEMENTS ((uint64_t)1 << 48)

/* Structural checks shared by the encoder's parameters and parsed headers. */
pj2k_status pj2k_check_structure(const pj2k_header *h)
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
    /* the product of the non-zero axes, wherever a zero axis lies: at most
     * max_total elements, or for an empty array (nothing to decode) what
     * numpy can shape, whose bytes must not pass PTRDIFF_MAX (2**63 - 1) */
    int empty = 0;
    for (int i = 0; i < h->ndim; i++) empty |= h->shape[i] == 0;
    const uint64_t limit = empty ? (uint64_t)PTRDIFF_MAX / DTYPE_INFO[h->dtype].size : max_total;
    uint64_t total = 1;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] > max_total) return PJ2K_ERR_HEADER;
        if (!h->shape[i]) continue;
        if (total > limit / h->shape[i]) return PJ2K_ERR_HEADER;
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
    if (h->fill) {
        /* the data's extent lies within the chunk, is not empty and leaves
         * some padding (one encoding per stream); the fill sample's bytes
         * beyond the dtype's are zero */
        if (!has_fill_field(h->version)) return PJ2K_ERR_HEADER;
        int pads = 0;
        for (int a = 0; a < h->ndim; a++) {
            if (h->fill_extent[a] < 1 || h->fill_extent[a] > h->shape[a]) return PJ2K_ERR_HEADER;
            pads |= h->fill_extent[a] < h->shape[a];
        }
        if (!pads && !has_mask_field(h->version)) return PJ2K_ERR_HEADER;   /* (10: the mask) */
        for (size_t i = DTYPE_INFO[h->dtype].size; i < PJ2K_FILL_BYTES; i++)
            if (h->fill_value[i]) return PJ2K_ERR_HEADER;
    }
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

/* Per band, layer shifts never increase and end at 0; the first leaves room
 * for the coefficients' largest exponent. */
int pj2k_valid_layers(const pj2k_header *h)
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
    if (stated < pj2k_header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, min_layers, 0) ||
        stated > pj2k_header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, max_layers,
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
        if (stated < pj2k_header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, h->layers, 0) ||
            stated > pj2k_header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, h->layers,
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
        for (int g = 0; g < h->ngaps; g++, p += 4) {   /* (checked in pj2k_check_structure) */
            h->gap_after[g] = lo + (int64_t)((unsigned)p[0] | (unsigned)p[1] << 8);
            h->gap_length[g] = (unsigned)p[2] | (unsigned)p[3] << 8;
        }
    }
    if (stated != pj2k_header_length_of(h->version, h->ndim, h->naxes, h->levels, h->wavelet, h->layers,
                                   h->ngaps))
        return PJ2K_ERR_HEADER;
    if (has_fill_field(h->version)) {
        h->fill = 1;
        for (int a = 0; a < h->ndim; a++, p += 8) h->fill_extent[a] = get_u64(p);
        memcpy(h->fill_value, p, PJ2K_FILL_BYTES);
        p += PJ2K_FILL_BYTES;
    }
    if (has_mask_field(h->version)) {
        h->mask_length = get_u64(p);   /* (within the first piece: checked below) */
        p += 8;
        if (h->mask_length == 0) return PJ2K_ERR_HEADER;   /* version 10 has a mask */
    }
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
    if (h->piece_end[0] - stated < h->mask_length) return PJ2K_ERR_HEADER;   /* the mask opens piece 0 */
    const pj2k_status st = pj2k_check_structure(h);
    /* (a stream that pairs a float dtype with a lossless wavelet is a bad
     * header, not a caller's wrong dtype: no encoder writes one) */
    if (st != PJ2K_OK) return st == PJ2K_ERR_DTYPE ? PJ2K_ERR_HEADER : st;
    return pj2k_valid_layers(h) ? PJ2K_OK : PJ2K_ERR_HEADER;
}

void pj2k_write_header(const pj2k_header *h, uint8_t *buf)
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
    if (has_fill_field(h->version)) {
        for (int a = 0; a < h->ndim; a++, p += 8) put_u64(p, h->fill_extent[a]);
        memcpy(p, h->fill_value, PJ2K_FILL_BYTES);
        p += PJ2K_FILL_BYTES;
    }
    if (has_mask_field(h->version)) {
        put_u64(p, h->mask_length);
        p += 8;
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
