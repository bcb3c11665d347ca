/* Template: coefficient coding for one coefficient type.  Expects COEF and
 * SFX(name); included by entropy.c after the range coder primitives. */

static inline uint64_t SFX(mag)(COEF v) { return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v; }
static inline unsigned SFX(sign3)(COEF v) { return v < 0 ? 0u : (v > 0 ? 2u : 1u); }

/* Context of element x of `row` from its coded neighbours: west, north-west,
 * north, north-east in the same plane, and the same place one plane back. */
static inline unsigned SFX(context)(const COEF *row, const COEF *up, const COEF *back,
                                    size_t x, size_t nx, unsigned *sign_ctx)
{
    uint64_t s = 0;
    unsigned sw = 1, sn = 1;
    if (x) { s += 2 * SFX(mag)(row[x - 1]); sw = SFX(sign3)(row[x - 1]); }
    if (up) {
        s += 2 * SFX(mag)(up[x]);
        sn = SFX(sign3)(up[x]);
        if (x) s += SFX(mag)(up[x - 1]);
        if (x + 1 < nx) s += SFX(mag)(up[x + 1]);
    }
    if (back) s += 2 * SFX(mag)(back[x]);
    *sign_ctx = 3 * sw + sn;
    return magnitude_context(s);
}

int SFX(pj2k_encode_band)(pj2k_rc_encoder *e, pj2k_model *m, const COEF *base, const pj2k_band *b)
{
    uint16_t (*expo)[PJ2K_EXP_POS] = m->exponent[b->cls];
    uint16_t *mant = m->mantissa[b->cls], *sgn = m->sign[b->cls];
    uint64_t all = 0;
    for (size_t z = 0; z < b->n[0]; z++) {
        for (size_t y = 0; y < b->n[1]; y++) {
            const COEF *row = base + (ptrdiff_t)z * b->stride[0] + (ptrdiff_t)y * b->stride[1];
            const COEF *up = y ? row - b->stride[1] : NULL;
            const COEF *back = z ? row - b->stride[0] : NULL;
            for (size_t x = 0; x < b->n[2]; x++) {
                unsigned sctx;
                uint16_t *pe = expo[SFX(context)(row, up, back, x, b->n[2], &sctx)];
                const uint64_t mg = SFX(mag)(row[x]);
                const unsigned eb = bit_length(mg);
                all |= mg;
                for (unsigned i = 0; i < eb; i++)
                    encode_bit(e, &pe[i < PJ2K_EXP_POS ? i : PJ2K_EXP_POS - 1], 1);
                encode_bit(e, &pe[eb < PJ2K_EXP_POS ? eb : PJ2K_EXP_POS - 1], 0);
                if (eb >= 2) {
                    encode_bit(e, &mant[eb], (unsigned)(mg >> (eb - 2)) & 1u);
                    encode_direct(e, mg, (int)eb - 2);
                }
                if (mg) encode_bit(e, &sgn[sctx], row[x] < 0);
            }
        }
    }
    return (int)bit_length(all);
}

pj2k_status SFX(pj2k_decode_band)(pj2k_rc_decoder *d, pj2k_model *m, COEF *base,
                                  const pj2k_band *b, int max_exp)
{
    uint16_t (*expo)[PJ2K_EXP_POS] = m->exponent[b->cls];
    uint16_t *mant = m->mantissa[b->cls], *sgn = m->sign[b->cls];
    for (size_t z = 0; z < b->n[0]; z++) {
        for (size_t y = 0; y < b->n[1]; y++) {
            COEF *row = base + (ptrdiff_t)z * b->stride[0] + (ptrdiff_t)y * b->stride[1];
            const COEF *up = y ? row - b->stride[1] : NULL;
            const COEF *back = z ? row - b->stride[0] : NULL;
            for (size_t x = 0; x < b->n[2]; x++) {
                unsigned sctx;
                uint16_t *pe = expo[SFX(context)(row, up, back, x, b->n[2], &sctx)];
                unsigned eb = 0;
                while (decode_bit(d, &pe[eb < PJ2K_EXP_POS ? eb : PJ2K_EXP_POS - 1])) {
                    if (++eb > (unsigned)max_exp) return PJ2K_ERR_CORRUPT;
                }
                uint64_t mg = 0;
                if (eb) {
                    mg = (uint64_t)1 << (eb - 1);
                    if (eb >= 2) {
                        mg |= (uint64_t)decode_bit(d, &mant[eb]) << (eb - 2);
                        mg |= decode_direct(d, (int)eb - 2);
                    }
                }
                row[x] = (mg && decode_bit(d, &sgn[sctx])) ? -(COEF)mg : (COEF)mg;
                if (d->overrun) return PJ2K_ERR_CORRUPT;  /* stop forged streams early */
            }
        }
    }
    return PJ2K_OK;
}

/* Median-edge predictor (LOCO-I) within a plane; the first sample of a plane
 * is predicted from the first sample of the plane before. */
static inline COEF SFX(predict)(const COEF *row, const COEF *up, const COEF *back, size_t x)
{
    if (up && x) {
        const COEF a = row[x - 1], n = up[x], c = up[x - 1];
        const COEF hi = a > n ? a : n, lo = a > n ? n : a;
        return c >= hi ? lo : (c <= lo ? hi : a + n - c);
    }
    if (x) return row[x - 1];
    if (up) return up[x];
    return back ? back[0] : 0;
}

int SFX(pj2k_encode_low)(pj2k_rc_encoder *e, pj2k_model *m, const COEF *base,
                         const pj2k_band *b, COEF *tmp)
{
    const pj2k_band packed = {{b->n[0], b->n[1], b->n[2]},
                              {(ptrdiff_t)(b->n[1] * b->n[2]), (ptrdiff_t)b->n[2], 1}, 0};
    COEF *out = tmp;
    for (size_t z = 0; z < b->n[0]; z++)
        for (size_t y = 0; y < b->n[1]; y++) {
            const COEF *row = base + (ptrdiff_t)z * b->stride[0] + (ptrdiff_t)y * b->stride[1];
            const COEF *up = y ? row - b->stride[1] : NULL;
            const COEF *back = z ? base + (ptrdiff_t)(z - 1) * b->stride[0] : NULL;
            for (size_t x = 0; x < b->n[2]; x++) *out++ = row[x] - SFX(predict)(row, up, back, x);
        }
    return SFX(pj2k_encode_band)(e, m, tmp, &packed);
}

pj2k_status SFX(pj2k_decode_low)(pj2k_rc_decoder *d, pj2k_model *m, COEF *base,
                                 const pj2k_band *b, int max_exp, int64_t bound, COEF *tmp)
{
    const pj2k_band packed = {{b->n[0], b->n[1], b->n[2]},
                              {(ptrdiff_t)(b->n[1] * b->n[2]), (ptrdiff_t)b->n[2], 1}, 0};
    pj2k_status st = SFX(pj2k_decode_band)(d, m, tmp, &packed, max_exp);
    if (st != PJ2K_OK) return st;
    const COEF *in = tmp;
    for (size_t z = 0; z < b->n[0]; z++)
        for (size_t y = 0; y < b->n[1]; y++) {
            COEF *row = base + (ptrdiff_t)z * b->stride[0] + (ptrdiff_t)y * b->stride[1];
            const COEF *up = y ? row - b->stride[1] : NULL;
            const COEF *back = z ? base + (ptrdiff_t)(z - 1) * b->stride[0] : NULL;
            for (size_t x = 0; x < b->n[2]; x++) {
                /* both terms are within +-2**max_exp, so the sum cannot overflow */
                int64_t v = (int64_t)*in++ + (int64_t)SFX(predict)(row, up, back, x);
                row[x] = (COEF)(v < -bound ? -bound : (v > bound ? bound : v));
            }
        }
    return PJ2K_OK;
}
