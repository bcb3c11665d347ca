/* Candidate SL (lanes study): section 16's L_adapt (adaptive 16-symbol rANS
 * for the exponent under the 16 merged contexts, adaptive binary rANS top
 * mantissa bit and sign, other bits raw) in SL_LANES horizontal strips per
 * band (ceil(h / K) rows each) that share nothing: each lane has its own
 * model (l_model_t, reset per piece), its own rANS state and word stream and
 * its own raw bit stream; contexts do not cross strip boundaries.  The
 * decoder interleaves the lanes (one coefficient of each lane per loop
 * iteration) with every lane's state in its own locals.
 * A lane's stream is exactly what l_enc_piece_la writes for the piece cut to
 * that lane's strips: u32 rANS bytes | rANS words | raw bits.  Piece = K u32
 * lane lengths | the K lane streams.  Pieces with fewer than SL_MIN
 * coefficients are coded in one lane.
 * Parameters: SL_NAME, SL_LANES (1, 2 or 4), SL_MIN, SL_BLREN (branch-free renormalisation).  Needs coder_l.h
 * instantiated as la (L_ADAPT 1, L_SIGN 1, L_TOP 1) and coder_s.h's shared part. */
#define SLN(x) SL_CAT(x, SL_NAME)
#define SL_CAT(a, b) SL_CAT2(a, b)
#define SL_CAT2(a, b) a##_##b
#ifndef SL_MIN
#define SL_MIN 0
#endif
#ifndef SL_BLREN
#define SL_BLREN 0
#endif
/* rANS renormalisation; SL_BLREN 1 writes it with masks (gcc 12 turns the
 * select form into a branch, mispredicted ~0.2 times per coefficient) */
#if SL_BLREN
#define SL_REN(x, in) do { const uint32_t mk_ = 0u - (uint32_t)((x) < 65536u); \
        (x) = ((x) & ~mk_) | (((x) << 16 | *(in)) & mk_); (in) += mk_ & 1u; } while (0)
#else
#define SL_REN(x, in) do { const int ren_ = (x) < 65536; const uint32_t xr_ = (x) << 16 | *(in); \
        (x) = ren_ ? xr_ : (x); (in) += ren_; } while (0)
#endif

static size_t SLN(sl_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    const int K = s_piece_ncoef(p) >= (size_t)SL_MIN ? SL_LANES : 1;
    buf_t lane_out[SL_LANES];
    memset(lane_out, 0, sizeof lane_out);
    for (int l = 0; l < K; l++) {
        piece_t sub = *p;
        for (int bi = 0; bi < p->nb; bi++) {
            const band_t *b = &p->b[bi];
            const int hs = (b->h + K - 1) / K;
            int y0 = l * hs, y1 = (l + 1) * hs;
            if (y1 > b->h) y1 = b->h;
            if (y0 > y1) y0 = y1;
            sub.b[bi].h = y1 - y0;
            sub.b[bi].v = b->v + (size_t)y0 * b->w;
        }
        l_enc_piece_la(&sub, &lane_out[l], rowmem);
    }
    const size_t start = out->len;
    for (int l = 0; l < K; l++) {
        const uint32_t n = (uint32_t)lane_out[l].len;
        buf_reserve(out, 4);
        memcpy(out->data + out->len, &n, 4); out->len += 4;
    }
    for (int l = 0; l < K; l++) {
        buf_reserve(out, lane_out[l].len);
        memcpy(out->data + out->len, lane_out[l].data, lane_out[l].len);
        out->len += lane_out[l].len;
        free(lane_out[l].data);
    }
    return out->len - start;
}

/* one coefficient of one lane (the L_adapt decode step, N/NW/NE read from the row above) */
static inline __attribute__((always_inline)) void SLN(sl_coef)(uint32_t *xs, const uint16_t **inp, const uint8_t **bpp,
                                                                uint64_t *bbufp, unsigned *bcntp, l_model_t *m, int cls,
                                                                const uint16_t *up, uint16_t *cur, int32_t *row, int xx,
                                                                uint32_t *rW)
{
    const uint16_t *u = up + xx;
    const uint32_t s = 2u * ((*rW >> 2) + (u[1] >> 2)) + (u[0] >> 2) + (u[2] >> 2);
    const unsigned sctx = 3u * (*rW & 3) + (u[1] & 3);
    uint16_t *cdf = m->c[cls][l_ctx(s)].cdf;
    uint32_t x = *xs;
    const uint16_t *in = *inp;
    const unsigned slot = x & 0x7FFF;
    const unsigned sym = a_search(cdf, slot);
    const unsigned st = cdf[sym];
    x = ((unsigned)cdf[sym + 1] - st) * (x >> 15) + slot - st;
    SL_REN(x, in);
    { const unsigned cnt_ = cdf[17]; a_update(cdf, sym, 4 + (cnt_ > 15) + (cnt_ > 31)); cdf[17] = (uint16_t)(cnt_ + (cnt_ < 32)); }
    uint32_t entry = 1;
    int32_t v = 0;
    if (sym) {
        unsigned E = sym;
        const uint8_t *bp = *bpp; uint64_t bbuf = *bbufp; unsigned bcnt = *bcntp;
        { uint64_t wd; memcpy(&wd, bp, 8); bbuf |= wd << bcnt; bp += (63 - bcnt) >> 3; bcnt |= 56; }
        if (UNLIKELY(E == 15)) { E += (unsigned)(bbuf & 31); bbuf >>= 5; bcnt -= 5; }
        uint32_t mg = 1u << (E - 1);
        if (E >= 2) {
            uint16_t *pt = &m->top[cls][E];
            const unsigned sl = x & 0x7FFF, p0 = *pt, bit = sl >= p0, mask = 0u - bit;
            x = ((p0 ^ mask) + (32769u & mask)) * (x >> 15) + sl - (p0 & mask);
            SL_REN(x, in);
            *pt = (uint16_t)(*pt + (((int)(bit ? 1 : 32767) - (int)*pt) >> 5));
            mg |= bit << (E - 2);
            mg |= (uint32_t)(bbuf & ((1u << (E - 2)) - 1));
            bbuf >>= E - 2; bcnt -= E - 2;
        }
        uint16_t *ps = &m->sgn[cls][sctx];
        const unsigned sl = x & 0x7FFF, p0 = *ps, neg = sl >= p0, mask = 0u - neg;
        x = ((p0 ^ mask) + (32769u & mask)) * (x >> 15) + sl - (p0 & mask);
        SL_REN(x, in);
        *ps = (uint16_t)(*ps + (((int)(neg ? 1 : 32767) - (int)*ps) >> 5));
        v = (int32_t)((mg ^ (0u - neg)) + neg);
        entry = (mg > 0x3FFF ? 0x3FFF : mg) << 2 | (2u - 2u * neg);
        *bpp = bp; *bbufp = bbuf; *bcntp = bcnt;
    }
    *xs = x; *inp = in;
    row[xx] = v;
    cur[xx + 1] = (uint16_t)entry;
    *rW = entry;
}

#define SL_ST(l) &xs##l, &in##l, &bp##l, &bb##l, &bc##l
#define SL_LANE_INIT(l) uint32_t xs##l = 0; const uint16_t *in##l = NULL; const uint8_t *bp##l = NULL; \
    uint64_t bb##l = 0; unsigned bc##l = 0; \
    if (l < K) { uint32_t n_, rb_; memcpy(&n_, data + 4 * l, 4); memcpy(&rb_, q, 4); \
        in##l = (const uint16_t *)(q + 4); bp##l = q + 4 + rb_; \
        xs##l = (uint32_t)in##l[0] << 16 | in##l[1]; in##l += 2; l_model_reset(&m[l]); q += n_; }
#define SL_ROW(l, upr, curr, rowp) do { uint32_t rWs = 1; \
        for (int x_ = 0; x_ < w; x_++) SLN(sl_coef)(SL_ST(l), &m[l], cls, (upr), (curr), (rowp), x_, &rWs); } while (0)
#define SL_ROW_ANY(l, upr, curr, rowp) do { switch (l) { \
        case 0: SL_ROW(0, upr, curr, rowp); break; \
        case 1: SL_ROW(1, upr, curr, rowp); break; \
        case 2: SL_ROW(2, upr, curr, rowp); break; \
        default: SL_ROW(3, upr, curr, rowp); break; } } while (0)

static int SLN(sl_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static l_model_t m[4];
    (void)len;
    const int K = s_piece_ncoef(p) >= (size_t)SL_MIN ? SL_LANES : 1;
    const uint8_t *q = data + 4 * K;
    SL_LANE_INIT(0) SL_LANE_INIT(1) SL_LANE_INIT(2) SL_LANE_INIT(3)
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int w = b->w, cls = b->cls, stride = w + 2;
        const int hs = (b->h + K - 1) / K;
        int nfull = b->h - (K - 1) * hs;
        if (nfull < 0) nfull = 0;
        uint16_t *up[4], *cur[4];
        for (int l = 0; l < K; l++) { up[l] = rowmem + (size_t)(2 * l) * stride; cur[l] = up[l] + stride; }
        for (int i = 0; i < 2 * K * stride; i++) rowmem[i] = 1;
        for (int r = 0; r < hs; r++) {
            if (K == SL_LANES && r < nfull) {
                uint16_t *u0 = up[0], *c0 = cur[0];
                int32_t *v0 = b->v + (size_t)r * w;
                uint32_t rW0 = 1;
#if SL_LANES >= 2
                uint16_t *u1 = up[1], *c1 = cur[1];
                int32_t *v1 = b->v + (size_t)(hs + r) * w;
                uint32_t rW1 = 1;
#endif
#if SL_LANES >= 4
                uint16_t *u2 = up[2], *c2 = cur[2], *u3 = up[3], *c3 = cur[3];
                int32_t *v2 = b->v + (size_t)(2 * hs + r) * w, *v3 = b->v + (size_t)(3 * hs + r) * w;
                uint32_t rW2 = 1, rW3 = 1;
#endif
                for (int x = 0; x < w; x++) {
                    SLN(sl_coef)(SL_ST(0), &m[0], cls, u0, c0, v0, x, &rW0);
#if SL_LANES >= 2
                    SLN(sl_coef)(SL_ST(1), &m[1], cls, u1, c1, v1, x, &rW1);
#endif
#if SL_LANES >= 4
                    SLN(sl_coef)(SL_ST(2), &m[2], cls, u2, c2, v2, x, &rW2);
                    SLN(sl_coef)(SL_ST(3), &m[3], cls, u3, c3, v3, x, &rW3);
#endif
                }
            } else {
                for (int l = 0; l < K; l++)
                    if (l * hs + r < b->h) {
                        uint16_t *ul = up[l], *cl = cur[l];
                        int32_t *vl = b->v + (size_t)(l * hs + r) * w;
                        SL_ROW_ANY(l, ul, cl, vl);
                    }
            }
            for (int l = 0; l < K; l++) { uint16_t *t = up[l]; up[l] = cur[l]; cur[l] = t; }
        }
    }
    return 1;
}
#undef SLN
#undef SL_CAT
#undef SL_CAT2
#undef SL_ST
#undef SL_LANE_INIT
#undef SL_ROW
#undef SL_ROW_ANY
#undef SL_MIN
#undef SL_BLREN
#undef SL_REN
