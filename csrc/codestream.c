/* Stage 3: the codestream's encode and decode drivers, which run the stages
 * in order: samples -> transforms -> quantisation -> entropy coding ->
 * header, and back.  The header's bytes are header.c's; docs/FORMAT.md. */
#include "codestream.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* int16 only for whole (not partially layered) lossless 8-bit decodes */
static coef_kind kind_for(const pj2k_header *h, int partial)
{
    const unsigned bits = DTYPE_INFO[h->dtype].bits;
    if (!pj2k_lossless(h->wavelet) || bits > 16) return COEF_I64;
    return bits == 16 || partial ? COEF_I32 : COEF_I16;
}

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
    /* a given mask is checked with the header's rules (pj2k_check_structure); a
     * negative one other than AUTO has bits beyond any level */
    if (p->m97_levels != PJ2K_M97_AUTO) h->m97_levels = (unsigned)p->m97_levels;
    if (p->fill) {
        h->fill = 1;
        memcpy(h->fill_extent, p->fill_extent, sizeof h->fill_extent);
        memcpy(h->fill_value, p->fill_value, sizeof h->fill_value);
        /* (checked with the rules of the version written) */
        h->version = p->nodata_mask ? PJ2K_FORMAT_VERSION : PJ2K_FORMAT_VERSION_PADDED;
    } else if (p->nodata_mask) {
        return PJ2K_ERR_PARAM;   /* (a mask restores the fill sample) */
    }
    if (pj2k_prequantised(h->wavelet) && !(p->step > 0.0 && isfinite(p->step)))
        return PJ2K_ERR_PARAM;
    const pj2k_status st = pj2k_check_structure(h);
    return st == PJ2K_ERR_HEADER ? PJ2K_ERR_PARAM : st;
}

static size_t low_band_elems(const layout *L, int levels)
{
    return pj2k_ceil_shift(L->dims[0], levels) * pj2k_ceil_shift(L->dims[1], levels) *
           pj2k_ceil_shift(L->dims[2], levels);
}

/* The entropy coder's working memory, the same for both directions: its
 * model, its neighbourhood rows and room for the low band (at `levels`). */
typedef struct {
    pj2k_model *model;
    void *low;
    uint16_t *rows;
} coder_buffers;

static pj2k_status coder_buffers_alloc(coder_buffers *cb, const layout *L, int levels,
                                       coef_kind kind)
{
    cb->model = malloc(sizeof *cb->model);
    cb->low = malloc((low_band_elems(L, levels) + 1) * COEF_BYTES[kind]);
    cb->rows = malloc(PJ2K_MODEL_ROWS(L->dims[2]) * sizeof *cb->rows);
    if (cb->model) cb->model->rows = cb->rows;
    return cb->model && cb->low && cb->rows ? PJ2K_OK : PJ2K_ERR_NOMEM;
}

static void coder_buffers_free(coder_buffers *cb)
{
    free(cb->model);
    free(cb->low);
    free(cb->rows);
}

/* One band of one component as piece (r, j) codes it: where its values
 * start, its geometry (with the previous colour component as its sibling,
 * from version 3), and the layer shifts it codes from and to (equal: the
 * band has nothing in layer j). */
typedef struct {
    size_t at;
    pj2k_band band;
    int from, to;
} piece_band;

static piece_band piece_band_of(const pj2k_header *h, const layout *L, const segment_band *sb,
                                size_t c, int j, int siblings)
{
    piece_band p = {c * L->box + sb->offset, sb->band,
                    j ? h->layer_shift[j - 1][sb->step_index] : 0, h->layer_shift[j][sb->step_index]};
    if (siblings) p.band.sibling_offset = c % L->ncomp ? -(ptrdiff_t)L->box : 0;
    return p;
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
                                const coder_buffers *cb, const pj2k_rdo *rdo_template,
                                size_t max_length, const pj2k_bytes *out)
{
    int max_exp;
    int64_t bound;
    coefficient_limits(h, &max_exp, &bound);
    segment_band sbs[7];
    const int nb = pj2k_segment_bands(L->dims, h->levels, r, h->naxes, 1, sbs);
    for (size_t c = 0; c < L->planes * L->ncomp; c++) {
        for (int b = 0; b < nb; b++) {
            const piece_band p = piece_band_of(h, L, &sbs[b], c, j, 1);
            if (j && p.from == p.to) continue;
            pj2k_rdo rdo;
            if (rdo_template) {
                rdo = *rdo_template;
                rdo.real = (const uint8_t *)rdo_template->real + p.at * pj2k_real_size(rdo.real_f32);
                rdo.inv_step = pj2k_reciprocal((double)h->steps[sbs[b].step_index]);
            }
            int e;
#define CODE(S, CT)                                                                        \
            {                                                                              \
                CT *base = (CT *)coef + p.at;                                              \
                e = j ? pj2k_encode_refine_##S(rc, cb->model, base, &p.band, p.from, p.to) \
                  : r == 0 ? pj2k_encode_low_##S(rc, cb->model, base, &p.band, p.to, (CT *)cb->low) \
                  : pj2k_encode_band_##S(rc, cb->model, base, &p.band, p.to,              \
                                         rdo_template ? &rdo : NULL);                      \
            }
            BY_KIND(kind, CODE);
#undef CODE
            if (e < 0) return PJ2K_NARROW_OVERFLOW;
            if (e > max_exp - p.to) return PJ2K_ERR_PARAM;  /* never emit what the decoder rejects */
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
    coder_buffers cb;
    pj2k_status st = coder_buffers_alloc(&cb, L, h->levels, kind);
    const int with_rdo = rdo > 0.0 && real && bit_cost && h->wavelet == PJ2K_WAVELET_97 &&
                         h->layers == 1;
    const pj2k_rdo rdo_template = {.real = real, .real_f32 = real_f32, .kappa = rdo,
                                   .bit_cost = bit_cost};
    for (int r = 0; r <= h->levels && st == PJ2K_OK; r++) {
        for (int j = 0; j < h->layers && st == PJ2K_OK; j++) {
            /* (the first piece's checksum covers the mask that opens it,
             * which the caller has written) */
            const size_t start = out->length - (r || j ? 0 : (size_t)h->mask_length);
            pj2k_rc_encoder rc;
            pj2k_rc_encoder_init(&rc, out);
            start_piece(cb.model, h->version, r * h->layers + j);
            st = encode_piece(h, L, coef, kind, r, j, &rc, &cb,
                              with_rdo ? &rdo_template : NULL, max_length, out);
            pj2k_rc_encoder_finish(&rc);
            if (out->failed) { st = PJ2K_ERR_NOMEM; break; }
            const int i = r * h->layers + j;
            h->piece_end[i] = out->length;
            h->piece_crc[i] = pj2k_crc32c(out->data + start, out->length - start);
        }
        h->segment_end[r] = h->piece_end[r * h->layers + h->layers - 1];
    }
    coder_buffers_free(&cb);
    return st;
}


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
    free(prep->mask.data);
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
        pj2k_copy_interleaved_colour(L, real32, sizeof(float), (void *)data, DTYPE_INFO[h->dtype].size,
                                K->load_ict_triples_f32[h->dtype]);
    else
        pj2k_permuted_copy(L, lossy ? (void *)real : coef, f32 ? sizeof(float) : WORK_SIZE[work],
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
    pj2k_make_layout(h, 0, L);
    if (params->nodata_mask) {
        size_t inside = 1, masked = 0;
        for (int a = 0; a < h->ndim; a++) inside *= (size_t)h->fill_extent[a];
        for (size_t i = 0; i < inside && !masked; i++) masked = params->nodata_mask[i] != 0;
        st = !masked ? PJ2K_ERR_PARAM : pj2k_mask_write(h, params->nodata_mask, &prep->mask);
        if (st != PJ2K_OK) goto fail;
        h->mask_length = prep->mask.length;
    }
    prep->lossy = h->wavelet == PJ2K_WAVELET_97;
    prep->bit_cost = params->bit_cost;
    if (prep->lossy && !pj2k_header_band_norms(h, prep->norms)) { st = PJ2K_ERR_NOMEM; goto fail; }
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
        st = pj2k_quantise(pj2k_kernels_select(), h, L, prep->real, prep->real_f32, prep->coef, prep->kind);
    if (st == PJ2K_OK && prep->lossy && rdo > 0.0 && h->layers > 1 && !quantised) {
        pj2k_header single = *h;
        single.layers = 1;
        single.mask_length = 0;   /* (no stream: its decisions only) */
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
    /* version 10 where the chunk has nodata samples in its data, 9 where it
     * has padding only; else version 8 where that changes the decode, else
     * version 7: the same bytes, which decoders before version 8 still read */
    h.version = h.mask_length ? PJ2K_FORMAT_VERSION : h.fill ? PJ2K_FORMAT_VERSION_PADDED
              : float32_work(&h) ? PJ2K_FORMAT_VERSION_FLOAT32 : PJ2K_FORMAT_VERSION_COMPAT;
    h.header_length = pj2k_header_length_of(h.version, h.ndim, h.naxes, h.levels, h.wavelet, h.layers,
                                       h.ngaps);
    if (!pj2k_valid_layers(&h)) return PJ2K_ERR_PARAM;
    pj2k_status st = PJ2K_OK;
    if (prep->lossy) {
        if (!(step > 0.0 && isfinite(step))) return PJ2K_ERR_PARAM;
        pj2k_compute_steps(&h, prep->norms, step);
        for (int i = 0; i < h.nbands; i++)
            if (!(h.steps[i] > 0.0f) || !isfinite(h.steps[i])) return PJ2K_ERR_PARAM;
    }
    if (max_length && coded_start(&h) > max_length) return PJ2K_ERR_TOO_LARGE;
    pj2k_bytes bytes = {0};
    if (!pj2k_bytes_reserve(&bytes, coded_start(&h) + 1024)) return PJ2K_ERR_NOMEM;
    if (h.mask_length) memcpy(bytes.data + h.header_length, prep->mask.data, prep->mask.length);
    bytes.length = coded_start(&h);
    if (L->elements) {
        /* layers over the RD-optimised values of the last encode at these
         * steps: its decisions are reused, not made again (a layered encode
         * makes them in a pass without layers; docs/DESIGN.md 30) */
        const int quantised = prep->lossy && was_coded && rdo > 0.0 && h.layers > 1 &&
                              prep->coded_rdo == rdo &&
                              !memcmp(prep->coded_h.steps, h.steps, (size_t)h.nbands * sizeof *h.steps);
        st = quantise_and_code(prep, &h, rdo, quantised, max_length, &bytes);
        while (st == PJ2K_NARROW_OVERFLOW) {   /* a value or residual needs a wider type */
            bytes.length = coded_start(&h);
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
    pj2k_write_header(&h, bytes.data);
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
    coder_buffers cb;
    pj2k_status st = coder_buffers_alloc(&cb, L, levels, kind);
    int max_exp;
    int64_t bound;
    coefficient_limits(h, &max_exp, &bound);
    const int legacy = h->version < 3;   /* versions 1 and 2: the first coding rules */
    for (int r = 0; r <= levels && st == PJ2K_OK; r++) {
        segment_band sbs[7];
        const int nb = pj2k_segment_bands(L->dims, levels, r, h->naxes, !legacy, sbs);
        for (int j = 0; j <= last[r] && st == PJ2K_OK; j++) {
            const int i = r * h->layers + j;
            const uint64_t start = i ? h->piece_end[i - 1] : coded_start(h);
            pj2k_rc_decoder rc;
            pj2k_rc_decoder_init(&rc, buf + start, (size_t)(h->piece_end[i] - start));
            start_piece(cb.model, h->version, i);
            for (size_t c = 0; c < L->planes * L->ncomp && st == PJ2K_OK; c++) {
                for (int b = 0; b < nb && st == PJ2K_OK; b++) {
                    const piece_band p = piece_band_of(h, L, &sbs[b], c, j, !legacy);
                    if (j && p.from == p.to) continue;
#define DECODE(S, CT)                                                                      \
                    {                                                                      \
                        CT *base = (CT *)coef + p.at;                                      \
                        st = j ? pj2k_decode_refine_##S(&rc, cb.model, base, &p.band, p.from, p.to) \
                           : r == 0 ? pj2k_decode_low_##S(&rc, cb.model, base, &p.band,    \
                                                          max_exp - p.to, bound >> p.to,   \
                                                          (CT *)cb.low)                    \
                           : pj2k_decode_band_##S(&rc, cb.model, base, &p.band, max_exp - p.to, p.to); \
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
    coder_buffers_free(&cb);
    return st;
}

/* A PSNR trial: the samples it leaves out (NULL, or a byte per sample of
 * the array, non-zero for nodata) and the sum of squared errors it gets. */
typedef struct {
    const uint8_t *skip;
    double squared;
} trial_sums;

typedef struct {
    pj2k_trial_fn fn;
    trial_sums *sums;
    const uint8_t *original;
    size_t sample_size;
} trial_runs;

static void trial_run(void *ctx, uint8_t *work, uint8_t *array, size_t run, ptrdiff_t stride)
{
    const trial_runs *t = ctx;
    const uint8_t *skip = t->sums->skip ? t->sums->skip + (size_t)(array - t->original) / t->sample_size
                                        : NULL;
    t->fn((const float *)(void *)work, array, skip, run, stride, &t->sums->squared);
}

/* A PSNR trial's float32 samples `values` (working order) against the
 * array's: trial->squared gets the sum of squared errors. */
static void compare_trial(const pj2k_kernels *K, const pj2k_header *h, const layout *L,
                          const float *values, void *original, trial_sums *trial)
{
    trial->squared = 0.0;
    trial_runs runs = {K->trial_error_f32[h->dtype], trial, original, DTYPE_INFO[h->dtype].size};
    pj2k_for_each_run(L, (void *)values, sizeof(float), original, DTYPE_INFO[h->dtype].size, trial_run,
                 &runs);
}

/* The decoded coefficients (of `kind`, levels still to undo, pieces through
 * last[r]) to samples in `out`: dequantisation, inverse transforms and the
 * store.  Lossless and error-bounded coefficients are transformed in place
 * (error-bounded ones then become float64 values there); lossy ones are only
 * read, and reconstructed in float64, or in float32 where
 * float32_reconstruction says so.  PJ2K_NARROW_OVERFLOW if int16 did not
 * suffice (nothing was stored).  real_buffer (9/7): room for L->elements
 * values of the working float type, or NULL to allocate it here; `coef`
 * lying within it where pj2k_in_place_offset says is dequantised there
 * (pj2k_dequantise_in_place).  With `trial` (float32 reconstructions only):
 * the samples are compared with `out` instead of stored there, and trial
 * gets the sum of squared errors (pj2k_prepared_trial_error). */
static pj2k_status reconstruct(const pj2k_header *h, const layout *L, int levels, const int *last,
                               void *coef, coef_kind kind, void *out, double *real_buffer,
                               trial_sums *trial)
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
        const ptrdiff_t inside = pj2k_in_place_offset(L, f32, kind);
        if (real_buffer && inside >= 0 && (uint8_t *)coef == (uint8_t *)real_buffer + inside) {
            pj2k_dequantise_in_place(K, h, L, levels, real, f32, kind, last);
        } else {
            pj2k_dequantise(K, h, L, levels, coef, kind, f32 ? (void *)real32 : (void *)real, f32, last);
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
            if (kind == COEF_I64) pj2k_reconstruct_partial_i64(h, L, levels, coef, last);
            else pj2k_reconstruct_partial_i32(h, L, levels, coef, last);   /* never narrow */
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
        compare_trial(K, h, L, result, out, trial);
    } else if (ict_with_store) {
        pj2k_copy_interleaved_colour(L, result, work_size, out, DTYPE_INFO[h->dtype].size,
                                f32 ? K->store_ict_triples_f32[h->dtype]
                                    : K->store_ict_triples_f64[h->dtype]);
    } else {
        pj2k_permuted_copy(L, result, work_size, out, DTYPE_INFO[h->dtype].size,
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
                                      const uint8_t *skip, double *squared)
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
    trial_sums trial = {skip, 0.0};
    pj2k_status st = reconstruct(h, L, h->levels, last, prep->coef, prep->kind, (void *)original,
                                 prep->scratch_real, &trial);
    *squared = trial.squared;
#ifdef PJ2K_SELF_CHECK   /* the sanitizer build (scripts/run_sanitizers.sh): the decode's sum */
    if (st == PJ2K_OK) {
        uint8_t *decoded = malloc(size);
        if (decoded && reconstruct(h, L, h->levels, last, prep->coef, prep->kind, decoded,
                                   prep->scratch_real, NULL) == PJ2K_OK) {
            const size_t sample = DTYPE_INFO[h->dtype].size;   /* skipped samples: no error */
            for (size_t i = 0; skip && i < L->elements; i++)
                if (skip[i]) memcpy(decoded + i * sample, (const uint8_t *)original + i * sample, sample);
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
    /* 9/7 values go where pj2k_in_place_offset puts them in the float buffer
     * that dequantisation then fills in place: one buffer of 8 bytes per
     * value for float64 work (not 12), of 4 for float32 work (not 6 or 8) */
    const int f32 = float32_reconstruction(h);
    const ptrdiff_t inside = h->wavelet == PJ2K_WAVELET_97 ? pj2k_in_place_offset(L, f32, kind) : -1;
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
    pj2k_make_layout(&h, level, &L);
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
    if (st == PJ2K_OK) st = pj2k_restore_fill(&h, &L, level, buf, out);
    return st;
}
