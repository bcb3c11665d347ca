/* Candidate S (lanes study): the W coder (version-3 model: binary range
 * coder, unary exponent with per-position counted adaptation, two modelled
 * mantissa bits, raw bits through the range coder, modelled sign) split into
 * S_LANES lanes that share NOTHING: each lane has its own model (its own
 * probability tables, reset at the start of every piece) and its own range
 * coder and byte stream, so the lanes' dependency chains are independent and
 * can overlap in one thread.  The decoder keeps every lane's coder state in
 * its own local variables and decodes one coefficient of each lane per loop
 * iteration.
 *   S_STRIP 0: rows dealt round-robin (row y to lane y % K), decoded as a
 *              wavefront with lag S_LAG columns (lane l at column x - S_LAG*l),
 *              contexts exactly as raster order (they read the row above,
 *              which another lane decodes).
 *   S_STRIP 1: the band split into K horizontal strips of ceil(h / K) rows;
 *              contexts do NOT cross strip boundaries (a strip's first row
 *              sees an empty row above, as a band's first row does), so the
 *              lanes share no data at all.
 * Pieces with fewer than S_MIN coefficients are coded in one lane (lane 0).
 * Stream per piece: K u32 lane lengths, then the K range-coder streams.
 * Parameters: S_NAME, S_LANES (1, 2 or 4), S_STRIP, S_LAG (>= 2), S_MIN,
 * S_BL (1: branch-free mantissa and sign decisions).  Needs coder_w.h's
 * shared part and w_enc_coef_w1 (coder_w.h instantiated as w1). */
#define SN(x) S_CAT(x, S_NAME)
#define S_CAT(a, b) S_CAT2(a, b)
#define S_CAT2(a, b) a##_##b

#ifndef S_LAG
#define S_LAG 2
#endif
#ifndef S_MIN
#define S_MIN 0
#endif
#ifndef S_BL
#define S_BL 0
#endif

#ifndef S_SHARED_DONE
#define S_SHARED_DONE
static size_t s_piece_ncoef(const piece_t *p)
{
    size_t n = 0;
    for (int i = 0; i < p->nb; i++) n += (size_t)p->b[i].h * p->b[i].w;
    return n;
}
#endif

static size_t SN(s_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static w_model_t m[S_LANES];
    (void)rowmem;
    const int K = s_piece_ncoef(p) >= (size_t)S_MIN ? S_LANES : 1;
    buf_t lane_out[S_LANES];
    w_enc_t enc[S_LANES];
    memset(lane_out, 0, sizeof lane_out);
    for (int l = 0; l < K; l++) { w_reset(&m[l]); w_enc_init(&enc[l], &lane_out[l]); }
    /* the lanes are independent: code lane by lane, each in its own raster order */
    for (int l = 0; l < K; l++)
        for (int bi = 0; bi < p->nb; bi++) {
            const band_t *b = &p->b[bi];
            const int hs = (b->h + K - 1) / K;
            for (int y = 0; y < b->h; y++) {
#if S_STRIP
                if (y / hs != l) continue;
                const int top = y % hs == 0;
#else
                if (y % K != l) continue;
                const int top = y == 0;
#endif
                const int32_t *row = b->v + (size_t)y * b->w;
                const int32_t *rup = top ? NULL : row - b->w;
                for (int x = 0; x < b->w; x++) {
#define S_MAGQ(v_) ((uint32_t)(iabs32(v_) > 0x3FFF ? 0x3FFF : iabs32(v_)))
#define S_SGN(v_) ((v_) < 0 ? 0u : (v_) > 0 ? 2u : 1u)
                    const uint32_t W = x ? S_MAGQ(row[x - 1]) : 0, N = rup ? S_MAGQ(rup[x]) : 0;
                    const uint32_t NW = rup && x ? S_MAGQ(rup[x - 1]) : 0, NE = rup && x + 1 < b->w ? S_MAGQ(rup[x + 1]) : 0;
                    const unsigned c = magctx(2 * W + 2 * N + NW + NE);
                    const unsigned sctx = 3u * (x ? S_SGN(row[x - 1]) : 1u) + (rup ? S_SGN(rup[x]) : 1u);
                    w_enc_coef_w1(&enc[l], NULL, &m[l], b->cls, c, sctx, row[x]);
#undef S_MAGQ
#undef S_SGN
                }
            }
        }
    size_t total = 0;
    for (int l = 0; l < K; l++) { w_enc_finish(&enc[l]); total += lane_out[l].len; }
    const size_t start = out->len;
    buf_reserve(out, 4 * (size_t)K + total);
    for (int l = 0; l < K; l++) {
        const uint32_t n = (uint32_t)lane_out[l].len;
        memcpy(out->data + out->len, &n, 4); out->len += 4;
    }
    for (int l = 0; l < K; l++) {
        memcpy(out->data + out->len, lane_out[l].data, lane_out[l].len);
        out->len += lane_out[l].len;
        free(lane_out[l].data);
    }
    return out->len - start;
}

/* ---- decoder: every lane's state in its own locals (rg, cd, bp) ---- */
#define S_NORM(rg, cd, bp) do { if ((rg) < (1u << 24)) { (rg) <<= 8; (cd) = ((cd) << 8) | *(bp)++; \
        if ((rg) < (1u << 24)) { (rg) <<= 8; (cd) = ((cd) << 8) | *(bp)++; } } } while (0)
static inline __attribute__((always_inline)) unsigned SN(s_bit)(uint32_t *rg, uint32_t *cd, const uint8_t **bp, w_prob_t *p)
{
    const uint32_t bound = (*rg >> 16) * p->p;
    unsigned bit;
    if (*cd < bound) { *rg = bound; bit = 0; p->p = (uint16_t)(p->p + ((65536u - p->p) >> p->k)); }
    else { *cd -= bound; *rg -= bound; bit = 1; p->p = (uint16_t)(p->p - (p->p >> p->k)); }
    p->k += p->k < 6;
    S_NORM(*rg, *cd, *bp);
    return bit;
}
static inline __attribute__((always_inline)) unsigned SN(s_bitbl)(uint32_t *rg, uint32_t *cd, const uint8_t **bp, w_prob_t *p)
{
#if S_BL
    const uint32_t bound = (*rg >> 16) * p->p;
    const unsigned bit = *cd >= bound;
    const uint32_t mask = 0u - bit;
    *cd -= bound & mask;
    *rg = bit ? *rg - bound : bound;
    const unsigned up_ = (65536u - p->p) >> p->k, dn_ = p->p >> p->k;
    p->p = (uint16_t)(bit ? p->p - dn_ : p->p + up_);
    p->k += p->k < 6;
    S_NORM(*rg, *cd, *bp);
    return bit;
#else
    return SN(s_bit)(rg, cd, bp, p);
#endif
}
static inline __attribute__((always_inline)) uint32_t SN(s_direct)(uint32_t *rg, uint32_t *cd, const uint8_t **bp, int nb)
{
    uint32_t v = 0;
    for (int k = 0; k < nb; k++) {
        *rg >>= 1;
        const unsigned bit = *cd >= *rg;
        if (bit) *cd -= *rg;
        v = (v << 1) | bit;
        S_NORM(*rg, *cd, *bp);
    }
    return v;
}
/* one coefficient: W from the lane's register rW, N/NW/NE from the row above */
static inline __attribute__((always_inline)) void SN(s_dec_coef)(uint32_t *rg, uint32_t *cd, const uint8_t **bp,
                                                                  w_model_t *m, int cls, const uint16_t *up,
                                                                  uint16_t *cur, int32_t *row, int x, uint32_t *rW)
{
    const uint16_t *u = up + x;
    const uint32_t s = 2u * ((*rW >> 2) + (u[1] >> 2)) + (u[0] >> 2) + (u[2] >> 2);
    const unsigned c = LIKELY(s < CTX_LUT_N) ? ctx_lut[s] : magctx(s);
    const unsigned sctx = 3u * (*rW & 3) + (u[1] & 3);
    w_prob_t *pe = m->e[cls][c];
    unsigned E = 0;
    while (SN(s_bit)(rg, cd, bp, &pe[E < 23 ? E : 23])) E++;
    int32_t v = 0;
    uint32_t entry = 1;
    if (E) {
        uint32_t mg = 1u << (E - 1);
        if (E >= 2) {
            const unsigned b1 = SN(s_bitbl)(rg, cd, bp, &m->m1[cls][E][w_tctx(c, E)]);
            mg |= b1 << (E - 2);
            if (E >= 3) {
                mg |= SN(s_bitbl)(rg, cd, bp, &m->m2[cls][E][b1]) << (E - 3);
                mg |= SN(s_direct)(rg, cd, bp, (int)E - 3);
            }
        }
        const unsigned neg = SN(s_bitbl)(rg, cd, bp, &m->sg[cls][sctx]);
        v = (int32_t)((mg ^ (0u - neg)) + neg);
        entry = (mg > 0x3FFF ? 0x3FFF : mg) << 2 | (2u - 2u * neg);
    }
    row[x] = v;
    cur[x + 1] = (uint16_t)entry;
    *rW = entry;
}

/* lane l's state as named locals; S_ST(l) expands to the state arguments */
#define S_ST(l) &rg##l, &cd##l, &bp##l
#define S_LANE_INIT(l) if (l < K) { \
        memcpy(&lens[l], data + 4 * l, 4); \
        cd##l = (uint32_t)q[1] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 8 | q[4]; \
        bp##l = q + 5; rg##l = 0xFFFFFFFFu; q += lens[l]; }
/* one row of one lane, alone (tails, small pieces) */
#define S_ROW(l, upr, curr, rowp) do { uint32_t rWs = 1; \
        for (int x_ = 0; x_ < w; x_++) SN(s_dec_coef)(S_ST(l), &m[l], cls, (upr), (curr), (rowp), x_, &rWs); } while (0)
#define S_ROW_ANY(l, upr, curr, rowp) do { switch (l) { \
        case 0: S_ROW(0, upr, curr, rowp); break; \
        case 1: S_ROW(1, upr, curr, rowp); break; \
        case 2: S_ROW(2, upr, curr, rowp); break; \
        default: S_ROW(3, upr, curr, rowp); break; } } while (0)

static int SN(s_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static w_model_t m[4];
    (void)len;
    const int K = s_piece_ncoef(p) >= (size_t)S_MIN ? S_LANES : 1;
    uint32_t lens[4];
    uint32_t rg0 = 0, cd0 = 0, rg1 = 0, cd1 = 0, rg2 = 0, cd2 = 0, rg3 = 0, cd3 = 0;
    const uint8_t *bp0 = NULL, *bp1 = NULL, *bp2 = NULL, *bp3 = NULL;
    const uint8_t *q = data + 4 * K;
    S_LANE_INIT(0) S_LANE_INIT(1) S_LANE_INIT(2) S_LANE_INIT(3)
    for (int l = 0; l < K; l++) w_reset(&m[l]);
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int w = b->w, cls = b->cls, stride = w + 2;
#if S_STRIP
        const int hs = (b->h + K - 1) / K;
        /* rows r < nfull exist in every strip */
        int nfull = b->h - (K - 1) * hs;
        if (nfull < 0) nfull = 0;
        uint16_t *up[4], *cur[4];
        for (int l = 0; l < K; l++) { up[l] = rowmem + (size_t)(2 * l) * stride; cur[l] = up[l] + stride; }
        for (int i = 0; i < 2 * K * stride; i++) rowmem[i] = 1;
        for (int r = 0; r < hs; r++) {
            if (K == S_LANES && r < nfull) {
                uint16_t *u0 = up[0], *c0 = cur[0];
                int32_t *v0 = b->v + (size_t)r * w;
                uint32_t rW0 = 1;
#if S_LANES >= 2
                uint16_t *u1 = up[1], *c1 = cur[1];
                int32_t *v1 = b->v + (size_t)(hs + r) * w;
                uint32_t rW1 = 1;
#endif
#if S_LANES >= 4
                uint16_t *u2 = up[2], *c2 = cur[2], *u3 = up[3], *c3 = cur[3];
                int32_t *v2 = b->v + (size_t)(2 * hs + r) * w, *v3 = b->v + (size_t)(3 * hs + r) * w;
                uint32_t rW2 = 1, rW3 = 1;
#endif
                for (int x = 0; x < w; x++) {
                    SN(s_dec_coef)(S_ST(0), &m[0], cls, u0, c0, v0, x, &rW0);
#if S_LANES >= 2
                    SN(s_dec_coef)(S_ST(1), &m[1], cls, u1, c1, v1, x, &rW1);
#endif
#if S_LANES >= 4
                    SN(s_dec_coef)(S_ST(2), &m[2], cls, u2, c2, v2, x, &rW2);
                    SN(s_dec_coef)(S_ST(3), &m[3], cls, u3, c3, v3, x, &rW3);
#endif
                }
            } else {
                for (int l = 0; l < K; l++)
                    if (l * hs + r < b->h) {
                        uint16_t *ul = up[l], *cl = cur[l];
                        int32_t *vl = b->v + (size_t)(l * hs + r) * w;
                        S_ROW_ANY(l, ul, cl, vl);
                    }
            }
            for (int l = 0; l < K; l++) { uint16_t *t = up[l]; up[l] = cur[l]; cur[l] = t; }
        }
#else
        /* row ring: K + 1 rows; row y in slot y % (K + 1); slot K is row -1 for the first group */
        uint16_t *ring = rowmem;
        for (int i = 0; i < (K + 1) * stride; i++) ring[i] = 1;
        for (int y0 = 0; y0 < b->h; y0 += K) {
            const int nl = b->h - y0 < K ? b->h - y0 : K;
            uint16_t *rows[5];
            rows[0] = y0 ? ring + (size_t)((y0 - 1) % (K + 1)) * stride : ring + (size_t)K * stride;
            for (int l = 0; l < K; l++) rows[l + 1] = ring + (size_t)((y0 + l) % (K + 1)) * stride;
            if (K == S_LANES && nl == K) {
                uint16_t *u0 = rows[0], *c0 = rows[1];
                int32_t *v0 = b->v + (size_t)y0 * w;
                uint32_t rW0 = 1;
#if S_LANES >= 2
                uint16_t *c1 = rows[2];
                int32_t *v1 = v0 + w;
                uint32_t rW1 = 1;
#endif
#if S_LANES >= 4
                uint16_t *c2 = rows[3], *c3 = rows[4];
                int32_t *v2 = v0 + 2 * w, *v3 = v0 + 3 * w;
                uint32_t rW2 = 1, rW3 = 1;
#endif
                const int A = S_LAG * (S_LANES - 1), T = w + A;
                for (int t = 0; t < T; t++) {
                    if (t >= A && t < w) {   /* steady state: every lane active */
                        SN(s_dec_coef)(S_ST(0), &m[0], cls, u0, c0, v0, t, &rW0);
#if S_LANES >= 2
                        SN(s_dec_coef)(S_ST(1), &m[1], cls, c0, c1, v1, t - S_LAG, &rW1);
#endif
#if S_LANES >= 4
                        SN(s_dec_coef)(S_ST(2), &m[2], cls, c1, c2, v2, t - 2 * S_LAG, &rW2);
                        SN(s_dec_coef)(S_ST(3), &m[3], cls, c2, c3, v3, t - 3 * S_LAG, &rW3);
#endif
                    } else {
                        if (t < w) SN(s_dec_coef)(S_ST(0), &m[0], cls, u0, c0, v0, t, &rW0);
#if S_LANES >= 2
                        if (t >= S_LAG && t - S_LAG < w) SN(s_dec_coef)(S_ST(1), &m[1], cls, c0, c1, v1, t - S_LAG, &rW1);
#endif
#if S_LANES >= 4
                        if (t >= 2 * S_LAG && t - 2 * S_LAG < w) SN(s_dec_coef)(S_ST(2), &m[2], cls, c1, c2, v2, t - 2 * S_LAG, &rW2);
                        if (t >= 3 * S_LAG && t - 3 * S_LAG < w) SN(s_dec_coef)(S_ST(3), &m[3], cls, c2, c3, v3, t - 3 * S_LAG, &rW3);
#endif
                    }
                }
            } else {
                for (int l = 0; l < nl; l++) {
                    uint16_t *ul = rows[l], *cl = rows[l + 1];
                    int32_t *vl = b->v + (size_t)(y0 + l) * w;
                    S_ROW_ANY(l, ul, cl, vl);
                }
            }
        }
#endif
    }
    (void)rg1; (void)cd1; (void)bp1; (void)rg2; (void)cd2; (void)bp2; (void)rg3; (void)cd3; (void)bp3;
    /* every lane must have consumed its stream (up to the coder's 4-byte tail) */
    const uint8_t *qq = data + 4 * K;
    const uint8_t *ends[4] = {bp0, bp1, bp2, bp3};
    for (int l = 0; l < K; l++) { if (ends[l] > qq + lens[l] + 4) return 0; qq += lens[l]; }
    return 1;
}
#undef SN
#undef S_CAT
#undef S_CAT2
#undef S_NORM
#undef S_ST
#undef S_LANE_INIT
#undef S_ROW
#undef S_ROW_ANY
#undef S_LAG
#undef S_MIN
#undef S_BL
