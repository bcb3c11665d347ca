/* libFuzzer harness: encode arrays built from the input (any dtype, 1-4
 * dimensions, any axes, levels, colour axis (before the transformed axes or
 * last) and mode, with or without quality layers), decode, and require a
 * bit-exact result for lossless, every sample within the bound for
 * error-bounded, and finite float output for lossy; layered streams must
 * also decode at every layer.  For lossy input, the rate-search histogram
 * must count every coefficient exactly once.  A prepared chunk's
 * reconstruction must be the decode bit for bit, through every layer, after
 * one encode and after another (its buffers reused).  Lossless chunks close
 * their value gaps on a bit of the input.  On another, the chunk has nodata
 * samples (version 10; with padding along its first axis on a third): they
 * and the padding must decode as the fill sample, bit for bit, and every
 * reduced level must decode.  The axis choice's likeness of 3-D inputs
 * must be finite, within its bound, and refuse positions past the shape. */
#include "progressive_j2k.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const size_t ITEM[PJ2K_NUM_DTYPES] = {1, 1, 2, 2, 4, 4, 4, 8};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    pj2k_params p;
    memset(&p, 0, sizeof p);
    p.dtype = (pj2k_dtype)(data[0] % PJ2K_NUM_DTYPES);
    /* any of the five wavelets; floats cannot be lossless (0 and 4): lossy */
    const int lossless = data[1] % 5 == PJ2K_WAVELET_53 || data[1] % 5 == PJ2K_WAVELET_53R;
    p.wavelet = (pj2k_wavelet)(lossless && p.dtype >= PJ2K_FLOAT32 ? 1 : data[1] % 5);
    p.ndim = 1 + data[1] / 2 % 4;
    uint64_t n = 1;
    for (int i = 0; i < p.ndim; i++) {
        p.shape[i] = 1 + data[2 + i] % 19;
        n *= p.shape[i];
    }
    p.naxes = 1 + data[6] % (p.ndim < 3 ? p.ndim : 3);
    /* colour on the axis before the transformed ones, or last with the
     * transformed ones just before it (interleaved colour) */
    const int colour = (data[6] & 0x80) && p.naxes < p.ndim;
    const int colour_last = colour && (data[6] & 0x40);
    for (int i = 0; i < p.naxes; i++) p.axes[i] = p.ndim - p.naxes + i - colour_last;
    p.colour_axis = -1;
    if (colour) {
        const int c = colour_last ? p.ndim - 1 : p.ndim - p.naxes - 1;
        n = n / p.shape[c] * 3;
        p.shape[c] = 3;
        p.colour_axis = c;
    }
    p.levels = data[7] % 7;
    if (data[0] & 0x80) p.rdo = PJ2K_RDO_DEFAULT * (1 + data[0] % 16);   /* RD-optimised quantisation */
    p.step = 0.5 + data[7] / 16;
    p.tolerance = 0.5 * p.step;   /* error-bounded: the tightest bound the scale allows */
    p.close_gaps = data[size - 1] & 4;   /* (value gaps: lossless 8- and 16-bit chunks) */
    if (p.wavelet != PJ2K_WAVELET_97)   /* 9/7-M levels: the encoder's choice or a mask */
        p.m97_levels = data[3] & 0x40 ? PJ2K_M97_AUTO : (int)((data[4] >> 2) & ((1u << p.levels) - 1));
    if (data[5] & 0x80) {          /* quality layers: shifts from the input, made valid */
        p.layers = 2 + data[5] % 3;
        const int bands = 1 + p.levels * ((1 << p.naxes) - 1);
        for (int b = 0; b < bands; b++)
            for (int j = p.layers - 2; j >= 0; j--)
                /* steps of 0-3 bits, or up to 31 (shifts near and above the
                   largest exponent: the encoder must refuse or round-trip) */
                p.layer_shift[j][b] = (uint8_t)(p.layer_shift[j + 1][b] +
                    (data[(b + j) % size] & 0x40 ? data[(b + j) % size] % 32 : data[(b + j) % size] % 4));
    }
    const size_t bytes = (size_t)n * ITEM[p.dtype];
    uint8_t *in = calloc(bytes, 1), *back = malloc(bytes);
    if (!in || !back) { free(in); free(back); return 0; }
    for (size_t i = 0; i < bytes; i++) in[i] = size > 8 ? data[8 + i % (size - 8)] ^ (uint8_t)(i * 131) : 0;
    if (p.dtype == PJ2K_FLOAT32)       /* finite floats only */
        for (size_t i = 0; i < n; i++) ((float *)in)[i] = (float)(((int8_t *)in)[4 * i] * 3.5);
    if (p.dtype == PJ2K_FLOAT64)
        for (size_t i = 0; i < n; i++) ((double *)in)[i] = ((int8_t *)in)[8 * i] * 0.25;
    /* nodata samples (and padding): expected back as the fill sample, the
     * first sample's bytes */
    uint8_t *mask = NULL, *expect = in, *restored = NULL;   /* restored: nodata or padding */
    const size_t item = ITEM[p.dtype];
    if (size > 9 && (data[size - 1] & 8)) {
        p.fill = 1;
        size_t inside = 1;
        for (int i = 0; i < p.ndim; i++) {
            p.fill_extent[i] = p.shape[i] - (i == 0 && i != p.colour_axis && p.shape[0] > 1 &&
                                             (data[size - 1] & 16));
            inside *= (size_t)p.fill_extent[i];
        }
        memcpy(p.fill_value, in, item);
        mask = malloc(inside);
        expect = malloc(bytes);
        restored = malloc(n);
        if (!mask || !expect || !restored) abort();
        for (size_t i = 0; i < inside; i++) mask[i] = (data[(i * 7 + 3) % size] & 3) == 0;
        mask[inside / 2] = 1;
        p.nodata_mask = mask;
        {   /* the encoder's fill of nodata: the data untouched, the fill within its range */
            double *values = malloc(inside * sizeof *values);
            if (!values) abort();
            double lo = 0.0, hi = 0.0;
            size_t valid = 0;
            for (size_t i = 0; i < inside; i++) {
                values[i] = (double)(int8_t)data[(i * 5 + 1) % size];
                if (mask[i]) continue;
                if (!valid || values[i] < lo) lo = values[i];
                if (!valid || values[i] > hi) hi = values[i];
                valid++;
            }
            const pj2k_inpaint_style style = data[size - 1] & 32 ? PJ2K_INPAINT_BLOCK_MEANS
                                                                : PJ2K_INPAINT_SMOOTH;
            if (pj2k_inpaint(values, mask, p.ndim, p.fill_extent, p.naxes, p.axes, style) != PJ2K_OK)
                abort();
            for (size_t i = 0; i < inside; i++)
                if (mask[i] ? valid && (values[i] < lo || values[i] > hi)
                            : values[i] != (double)(int8_t)data[(i * 5 + 1) % size])
                    abort();
            free(values);
        }
        memcpy(expect, in, bytes);
        for (size_t i = 0, j = 0; i < n; i++) {   /* C order: the extent's box first per row */
            size_t rest = i, nodata = 1;
            int in_box = 1;
            for (int a = p.ndim - 1; a >= 0; a--) {
                in_box &= rest % p.shape[a] < p.fill_extent[a];
                rest /= p.shape[a];
            }
            if (in_box) nodata = mask[j++];
            restored[i] = (uint8_t)nodata;
            if (nodata) memcpy(expect + i * item, p.fill_value, item);
        }
    }
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    if (pj2k_encode(&p, in, &enc, &enc_len) == PJ2K_OK) {
        for (int j = 0; j < p.layers; j++)
            if (pj2k_decode_layer(enc, enc_len, 0, j, back, bytes, n) != PJ2K_OK) abort();
        if (pj2k_decode(enc, enc_len, 0, back, bytes, n) != PJ2K_OK) abort();
        const int exact = p.wavelet == PJ2K_WAVELET_53 || p.wavelet == PJ2K_WAVELET_53R;
        if (exact && memcmp(expect, back, bytes) != 0) abort();
        if (mask)
            for (size_t i = 0; i < n; i++)
                if (restored[i] && memcmp(back + i * item, p.fill_value, item)) abort();
        if (mask) {   /* every reduced level decodes */
            pj2k_header h;
            if (pj2k_read_header(enc, enc_len, &h) != PJ2K_OK || h.version != PJ2K_FORMAT_VERSION)
                abort();
            for (int level = 1; level <= p.levels; level++) {
                uint64_t shape[PJ2K_MAX_NDIM], count = 1;
                pj2k_level_shape(&h, level, shape);
                for (int a = 0; a < p.ndim; a++) count *= shape[a];
                if (pj2k_decode(enc, (size_t)h.segment_end[p.levels - level], level, back,
                                (size_t)count * item, count) != PJ2K_OK)
                    abort();
            }
            if (pj2k_decode(enc, enc_len, 0, back, bytes, n) != PJ2K_OK) abort();
        }
        if (p.wavelet == PJ2K_WAVELET_53_QUANTISED || p.wavelet == PJ2K_WAVELET_53R_QUANTISED)
            for (size_t i = 0; i < n; i++) {
                double a, b;
                switch (p.dtype) {
                case PJ2K_UINT8: a = ((uint8_t *)expect)[i]; b = ((uint8_t *)back)[i]; break;
                case PJ2K_INT8: a = ((int8_t *)expect)[i]; b = ((int8_t *)back)[i]; break;
                case PJ2K_UINT16: a = ((uint16_t *)expect)[i]; b = ((uint16_t *)back)[i]; break;
                case PJ2K_INT16: a = ((int16_t *)expect)[i]; b = ((int16_t *)back)[i]; break;
                case PJ2K_UINT32: a = ((uint32_t *)expect)[i]; b = ((uint32_t *)back)[i]; break;
                case PJ2K_INT32: a = ((int32_t *)expect)[i]; b = ((int32_t *)back)[i]; break;
                case PJ2K_FLOAT32: a = ((float *)expect)[i]; b = ((float *)back)[i]; break;
                default: a = ((double *)expect)[i]; b = ((double *)back)[i]; break;
                }
                if (!(fabs(a - b) <= p.tolerance)) abort();
            }
        if (p.dtype == PJ2K_FLOAT32)
            for (size_t i = 0; i < n; i++) if (!isfinite(((float *)back)[i])) abort();
        {   /* a length limit: the same stream where it fits, else PJ2K_ERR_TOO_LARGE
               (exactly the stream's length for a quarter of the inputs; the
               last bytes choose, apart from the parameters' first eight) */
            pj2k_params limited = p;
            const size_t under = size > 9 && (data[size - 1] & 3) ? 1 + data[size - 2] : 0;
            limited.max_length = under < enc_len ? enc_len - under : 1;
            uint8_t *enc2 = NULL;
            size_t enc2_len = 0;
            const pj2k_status st2 = pj2k_encode(&limited, in, &enc2, &enc2_len);
            if (limited.max_length == enc_len
                    ? st2 != PJ2K_OK || enc2_len != enc_len || memcmp(enc, enc2, enc_len) != 0
                    : st2 != PJ2K_ERR_TOO_LARGE || enc2 != NULL)
                abort();
            pj2k_free(enc2);
        }
        if (p.layers > 1 && !exact) {
            /* all layers decode exactly like the single-layer stream (with
               RD-optimised quantisation too: the layers code its choice) */
            pj2k_params single = p;
            single.layers = 0;
            uint8_t *enc1 = NULL, *back1 = malloc(bytes);
            size_t enc1_len = 0;
            if (!back1) abort();
            if (pj2k_encode(&single, in, &enc1, &enc1_len) != PJ2K_OK ||
                pj2k_decode(enc1, enc1_len, 0, back1, bytes, n) != PJ2K_OK ||
                memcmp(back, back1, bytes) != 0)
                abort();
            pj2k_free(enc1);
            free(back1);
        }
    }
    if (enc && !mask) {   /* (a reconstruction keeps the nodata samples' coded values) */
        pj2k_prepared *prep = NULL;
        uint8_t *mine = malloc(bytes);
        if (mine && pj2k_prepare(&p, in, &prep) == PJ2K_OK)
            for (int pass = 0; pass < 2; pass++) {   /* (lossy: coarser, then finer: a widening) */
                uint8_t *again = NULL;
                size_t again_len = 0;
                const double step = pass ? p.step / 64.0 : 2.0 * p.step;
                if (pass) {   /* an encode stopped by a length limit leaves the object usable */
                    const size_t limit = 1 + (size > 9 ? data[size - 3] : 0);
                    const pj2k_status stopped = pj2k_encode_prepared(
                        prep, step, p.layers, (const uint8_t (*)[PJ2K_MAX_BANDS])p.layer_shift,
                        p.rdo, limit, &again, &again_len);
                    if (stopped == PJ2K_OK ? again_len > limit
                                           : stopped == PJ2K_ERR_TOO_LARGE && again != NULL)
                        abort();
                    pj2k_free(again);
                    again = NULL;
                }
                const pj2k_status st = pj2k_encode_prepared(
                    prep, step, p.layers, (const uint8_t (*)[PJ2K_MAX_BANDS])p.layer_shift, p.rdo,
                    0, &again, &again_len);
                if (st == PJ2K_ERR_PARAM && pass) break;   /* a finer step may be refused */
                if (st != PJ2K_OK) abort();
                const int layers = p.layers > 1 ? p.layers : 1;
                for (int j = layers - 1; j >= -1; j--) {   /* last, each, then all again */
                    if (pj2k_prepared_reconstruct(prep, j, mine, bytes) != PJ2K_OK ||
                        pj2k_decode_layer(again, again_len, 0, j, back, bytes, n) != PJ2K_OK ||
                        memcmp(mine, back, bytes) != 0)
                        abort();
                }
                pj2k_free(again);
            }
        pj2k_prepared_free(prep);
        free(mine);
    }
    if (p.wavelet == PJ2K_WAVELET_97) {
        pj2k_prepared *prep = NULL;
        if (pj2k_prepare(&p, in, &prep) == PJ2K_OK) {
            const size_t bands = 1 + (size_t)p.levels * ((1u << p.naxes) - 1);
            const size_t nbins = 2 + data[4] % 600;
            uint64_t *counts = malloc(bands * nbins * sizeof *counts);
            int64_t top;
            if (counts && pj2k_prepared_histogram(prep, 1, bands, nbins, counts, &top) == PJ2K_OK) {
                uint64_t total = 0, first = 0;
                for (size_t i = 0; i < bands * nbins; i++) total += counts[i];
                for (size_t b = 0; b < bands; b++) first += counts[b * nbins];
                if (total != n || (top >= 0) != (first > 0)) abort();
                /* every few rows, each counted that often: no more values, a
                 * top no higher, and some value wherever there is one */
                int64_t sampled_top;
                const size_t stride = 2 + data[4] % 3;
                if (pj2k_prepared_histogram(prep, stride, bands, nbins, counts, &sampled_top) == PJ2K_OK) {
                    uint64_t sampled = 0;
                    for (size_t i = 0; i < bands * nbins; i++) sampled += counts[i];
                    if (sampled > n || sampled_top > top || (sampled_top >= 0) != (top >= 0)) abort();
                }
            }
            if (counts && pj2k_prepared_histogram(prep, 1, bands + 1, nbins, counts, &top) == PJ2K_OK)
                abort();   /* a band count not the chunk's is refused */
            if (counts && pj2k_prepared_histogram(prep, 0, bands, nbins, counts, &top) == PJ2K_OK)
                abort();   /* so is a row stride of 0 */
            free(counts);
        }
        pj2k_prepared_free(prep);
    }
    if (p.ndim >= 3) {   /* the axis choice's likeness over the first three axes, sampled
                            at positions from the input (a few past the shape: refused) */
        const uint64_t c_shape[3] = {p.shape[0], p.shape[1], p.shape[2]};
        const uint64_t tail = n / (c_shape[0] * c_shape[1] * c_shape[2]);   /* (a 4th axis) */
        const int64_t c_strides[3] = {(int64_t)(c_shape[1] * c_shape[2] * tail * item),
                                      (int64_t)(c_shape[2] * tail * item), (int64_t)(tail * item)};
        /* the axes in any of their six orders (a transposed view's strides) */
        static const int ORDERS[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
        const int *order = ORDERS[data[2] % 6];
        uint64_t shape3[3];
        int64_t strides[3];
        for (int a = 0; a < 3; a++) {
            shape3[a] = c_shape[order[a]];
            strides[a] = c_strides[order[a]];
        }
        uint64_t at[3][8];
        const uint64_t *positions[3] = {at[0], at[1], at[2]};
        size_t count[3];
        int outside = 0;
        for (int a = 0; a < 3; a++) {
            count[a] = 2 + 2 * (size_t)(data[(a + 3) % size] % 4);
            for (size_t i = 0; i < count[a]; i++) {
                at[a][i] = data[(a * 8 + i + 9) % size] % (shape3[a] + (data[size - 1] & 1));
                outside |= at[a][i] >= shape3[a];
            }
        }
        double mixed[4], within[4];
        const pj2k_status st = pj2k_pair_detail(p.dtype, in, shape3, strides, positions, count,
                                                mixed, within);
        if (st != (outside ? PJ2K_ERR_PARAM : PJ2K_OK)) abort();
        for (size_t k = 0; !outside && k < count[0] / 2; k++)   /* |b - a| <= |a| + |b| */
            if (!(mixed[k] >= 0.0 && within[k] >= 0.0 && isfinite(mixed[k]) &&
                  isfinite(within[k]) && mixed[k] <= 2.0 * within[k] * (1.0 + 1e-12)))
                abort();
        count[1] = 3;   /* an odd count: refused */
        if (pj2k_pair_detail(p.dtype, in, shape3, strides, positions, count, mixed, within) !=
            PJ2K_ERR_PARAM)
            abort();
    }
    pj2k_free(enc);
    if (expect != in) free(expect);
    free(mask);
    free(restored);
    free(in);
    free(back);
    return 0;
}
