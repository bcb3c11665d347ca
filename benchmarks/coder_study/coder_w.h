/* Candidate W (format v4 study): the version-3 model (binary range coder,
 * unary exponent with per-position counted adaptation, two modelled mantissa
 * bits, modelled sign) coded in W_LANES lanes: the rows of a band are dealt
 * to lanes in turn (row y to lane y % lanes), each lane has its own range
 * coder and byte stream, and the lanes run as a wavefront (lane l at column
 * x - 2l) so every context is exactly the raster-order one while the lanes'
 * dependency chains overlap.  Raw mantissa bits go to a separate bit stream.
 * Parameters: W_NAME, W_LANES (1, 2 or 4), W_RAWSEP (1: raw bits in their
 * own stream, 0: through the range coder). */
#define WN(x) W_CAT(x, W_NAME)
#define W_CAT(a, b) W_CAT2(a, b)
#define W_CAT2(a, b) a##_##b

#ifndef W_SHARED_DONE
#define W_SHARED_DONE
typedef struct { uint16_t p, k; } w_prob_t;
typedef struct {
    w_prob_t e[4][32][24], m1[4][64][3], m2[4][64][2], sg[4][9];
} w_model_t;
static void w_reset(w_model_t *m)
{
    w_prob_t *p = &m->e[0][0][0];
    for (size_t i = 0; i < sizeof *m / sizeof *p; i++) p[i] = (w_prob_t){32768, 1};
}
/* encoder */
typedef struct { buf_t *out; uint64_t low; uint32_t range; uint8_t cache; uint64_t csize; } w_enc_t;
static void w_enc_init(w_enc_t *e, buf_t *out) { e->out = out; e->low = 0; e->range = 0xFFFFFFFFu; e->cache = 0; e->csize = 1; }
static inline void w_putb(buf_t *b, uint8_t v) { buf_reserve(b, 1); b->data[b->len++] = v; }
static inline void w_shift_low(w_enc_t *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        const uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t byte = e->cache;
        do { w_putb(e->out, (uint8_t)(byte + carry)); byte = 0xFF; } while (--e->csize != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->csize++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}
static void w_enc_finish(w_enc_t *e) { for (int i = 0; i < 5; i++) w_shift_low(e); }
static inline void w_adapt(w_prob_t *s, unsigned bit)
{
    if (bit) s->p = (uint16_t)(s->p - (s->p >> s->k)); else s->p = (uint16_t)(s->p + ((65536u - s->p) >> s->k));
    s->k += s->k < 6;
}
static inline void w_enc_bit(w_enc_t *e, w_prob_t *p, unsigned bit)
{
    const uint32_t bound = (e->range >> 16) * p->p;
    if (!bit) e->range = bound; else { e->low += bound; e->range -= bound; }
    w_adapt(p, bit);
    while (e->range < (1u << 24)) { e->range <<= 8; w_shift_low(e); }
}
static inline void w_enc_direct(w_enc_t *e, uint32_t v, int nb)
{
    for (int k = nb - 1; k >= 0; k--) {
        e->range >>= 1;
        if ((v >> k) & 1) e->low += e->range;
        if (e->range < (1u << 24)) { e->range <<= 8; w_shift_low(e); }
    }
}
static inline unsigned w_tctx(unsigned c, unsigned E) { const int o = (int)(c >> 1) - (int)E - 2; return o < 0 ? 0u : o == 0 ? 1u : 2u; }
#endif

typedef struct { const uint8_t *p, *end; uint32_t range, code; } WN(w_dec_t);

static inline void WN(w_enc_coef)(w_enc_t *e, bw_t *bw, w_model_t *m, int cls, unsigned c, unsigned sctx, int32_t v)
{
    (void)bw;
    const uint32_t mg = iabs32(v);
    const unsigned E = bitlen(mg);
    w_prob_t *pe = m->e[cls][c];
    for (unsigned i = 0; i < E; i++) w_enc_bit(e, &pe[i < 23 ? i : 23], 1);
    w_enc_bit(e, &pe[E < 23 ? E : 23], 0);
    if (E >= 2) {
        const unsigned b1 = (mg >> (E - 2)) & 1u;
        w_enc_bit(e, &m->m1[cls][E][w_tctx(c, E)], b1);
        if (E >= 3) {
            w_enc_bit(e, &m->m2[cls][E][b1], (mg >> (E - 3)) & 1u);
#if W_RAWSEP
            bw_put(bw, mg, (int)E - 3);
#else
            w_enc_direct(e, mg, (int)E - 3);
#endif
        }
    }
    if (E) w_enc_bit(e, &m->sg[cls][sctx], v < 0);
}

static size_t WN(w_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static w_model_t m;
    w_reset(&m);
    buf_t lane_out[4] = {{0}}, raw = {0};
    w_enc_t enc[4];
    for (int l = 0; l < W_LANES; l++) w_enc_init(&enc[l], &lane_out[l]);
    bw_t bw; bw_init(&bw, &raw);
    for (int bi = 0; bi < p->nb; bi++) {
        const band_t *b = &p->b[bi];
        uint16_t *up = rowmem, *cur = rowmem + b->w + 2;
        for (int i = 0; i < 2 * (b->w + 2); i++) rowmem[i] = 1;
        /* coding order: row groups of W_LANES rows, wavefront with lag 2 */
        for (int y0 = 0; y0 < b->h; y0 += W_LANES) {
            const int nl = b->h - y0 < W_LANES ? b->h - y0 : W_LANES;
            /* raster rows y0..y0+nl-1: row buffers hold magnitudes of every row (we keep a full copy) */
            const int wave = nl == W_LANES;
            for (int t = 0; t < (wave ? b->w + 2 * (nl - 1) : nl * b->w); t++)
                for (int l = 0; l < (wave ? nl : 1); l++) {
                    const int x = wave ? t - 2 * l : t % b->w;
                    if (!wave) l = t / b->w;
                    if (x < 0 || x >= b->w) continue;
                    const int y = y0 + l;
                    const int32_t *row = b->v + (size_t)y * b->w;
                    const int32_t *rup = y ? row - b->w : NULL;
#define MAGQ(v_) ((uint32_t)(iabs32(v_) > 0x3FFF ? 0x3FFF : iabs32(v_)))
#define SGN(v_) ((v_) < 0 ? 0u : (v_) > 0 ? 2u : 1u)
                    const uint32_t W = x ? MAGQ(row[x - 1]) : 0, N = rup ? MAGQ(rup[x]) : 0;
                    const uint32_t NW = rup && x ? MAGQ(rup[x - 1]) : 0, NE = rup && x + 1 < b->w ? MAGQ(rup[x + 1]) : 0;
                    const unsigned c = magctx(2 * W + 2 * N + NW + NE);
                    const unsigned sctx = 3u * (x ? SGN(row[x - 1]) : 1u) + (rup ? SGN(rup[x]) : 1u);
                    WN(w_enc_coef)(&enc[l], &bw, &m, b->cls, c, sctx, row[x]);
                }
        }
        (void)up; (void)cur;
    }
    size_t total = 0;
    for (int l = 0; l < W_LANES; l++) { w_enc_finish(&enc[l]); total += lane_out[l].len; }
    bw_flush(&bw);
    const size_t start = out->len;
    buf_reserve(out, 4 * W_LANES + total + raw.len);
    for (int l = 0; l < W_LANES; l++) {
        const uint32_t n = (uint32_t)lane_out[l].len;
        memcpy(out->data + out->len, &n, 4); out->len += 4;
    }
    for (int l = 0; l < W_LANES; l++) {
        memcpy(out->data + out->len, lane_out[l].data, lane_out[l].len);
        out->len += lane_out[l].len;
        free(lane_out[l].data);
    }
    memcpy(out->data + out->len, raw.data, raw.len);
    out->len += raw.len;
    free(raw.data);
    return out->len - start;
}

#define W_NORM(d) do { if ((d)->range < (1u << 24)) { (d)->range <<= 8; (d)->code = ((d)->code << 8) | *(d)->p++; \
        if ((d)->range < (1u << 24)) { (d)->range <<= 8; (d)->code = ((d)->code << 8) | *(d)->p++; } } } while (0)
static inline __attribute__((always_inline)) unsigned WN(w_bit)(WN(w_dec_t) *d, w_prob_t *p)
{
    const uint32_t bound = (d->range >> 16) * p->p;
    unsigned bit;
    if (d->code < bound) { d->range = bound; bit = 0; p->p = (uint16_t)(p->p + ((65536u - p->p) >> p->k)); }
    else { d->code -= bound; d->range -= bound; bit = 1; p->p = (uint16_t)(p->p - (p->p >> p->k)); }
    p->k += p->k < 6;
    W_NORM(d);
    return bit;
}
/* branch-free variant for unpredictable bits */
static inline __attribute__((always_inline)) unsigned WN(w_bitbl)(WN(w_dec_t) *d, w_prob_t *p)
{
    const uint32_t bound = (d->range >> 16) * p->p;
    const unsigned bit = d->code >= bound;
    const uint32_t mask = 0u - bit;
    d->code -= bound & mask;
    d->range = bit ? d->range - bound : bound;
    const unsigned up_ = (65536u - p->p) >> p->k, dn_ = p->p >> p->k;
    p->p = (uint16_t)(bit ? p->p - dn_ : p->p + up_);
    p->k += p->k < 6;
    W_NORM(d);
    return bit;
}
static inline __attribute__((always_inline)) uint32_t WN(w_direct)(WN(w_dec_t) *d, int nb)
{
    uint32_t v = 0;
    for (int k = 0; k < nb; k++) {
        d->range >>= 1;
        const unsigned bit = d->code >= d->range;
        if (bit) d->code -= d->range;
        v = (v << 1) | bit;
        W_NORM(d);
    }
    return v;
}

typedef struct { const uint8_t *bp; uint64_t buf; unsigned cnt; } WN(w_raw_t);

/* one coefficient of one lane: W from the lane's register, N/NW/NE from the row above */
static inline __attribute__((always_inline)) void WN(w_dec_coef)(WN(w_dec_t) *d, WN(w_raw_t) *rw, w_model_t *m, int cls,
                                                                  const uint16_t *up, uint16_t *cur, int32_t *row, int x,
                                                                  uint32_t *rW)
{
    (void)rw;
    const uint16_t *u = up + x;
    const uint32_t s = 2u * ((*rW >> 2) + (u[1] >> 2)) + (u[0] >> 2) + (u[2] >> 2);
    const unsigned c = LIKELY(s < CTX_LUT_N) ? ctx_lut[s] : magctx(s);
    const unsigned sctx = 3u * (*rW & 3) + (u[1] & 3);
    w_prob_t *pe = m->e[cls][c];
    unsigned E = 0;
    while (WN(w_bit)(d, &pe[E < 23 ? E : 23])) E++;
    int32_t v = 0;
    uint32_t entry = 1;
    if (E) {
        uint32_t mg = 1u << (E - 1);
        if (E >= 2) {
            const unsigned b1 = WN(W_BITX)(d, &m->m1[cls][E][w_tctx(c, E)]);
            mg |= b1 << (E - 2);
            if (E >= 3) {
                mg |= WN(W_BITX)(d, &m->m2[cls][E][b1]) << (E - 3);
#if W_RAWSEP
                { uint64_t wd; memcpy(&wd, rw->bp, 8); rw->buf |= wd << rw->cnt; rw->bp += (63 - rw->cnt) >> 3; rw->cnt |= 56; }
                mg |= (uint32_t)(rw->buf & ((1u << (E - 3)) - 1)); rw->buf >>= E - 3; rw->cnt -= E - 3;
#else
                mg |= WN(w_direct)(d, (int)E - 3);
#endif
            }
        }
        const unsigned neg = WN(W_BITX)(d, &m->sg[cls][sctx]);
        v = (int32_t)((mg ^ (0u - neg)) + neg);
        entry = (mg > 0x3FFF ? 0x3FFF : mg) << 2 | (2u - 2u * neg);
    }
    row[x] = v;
    cur[x + 1] = (uint16_t)entry;
    *rW = entry;
}

static int WN(w_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static w_model_t m;
    (void)len;
    w_reset(&m);
    WN(w_dec_t) d[W_LANES];
    uint32_t lens[W_LANES];
    const uint8_t *q = data + 4 * W_LANES;
    for (int l = 0; l < W_LANES; l++) {
        memcpy(&lens[l], data + 4 * l, 4);
        d[l].p = q + 1; d[l].end = q + lens[l]; d[l].range = 0xFFFFFFFFu;
        d[l].code = (uint32_t)q[1] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 8 | q[4];
        d[l].p = q + 5;
        q += lens[l];
    }
    WN(w_raw_t) rw = {q, 0, 0};
    /* row ring: W_LANES + 1 rows of (w + 2) entries; row y lives in slot y % (W_LANES + 1) */
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int w = b->w, stride = w + 2;
        uint16_t *ring = rowmem;
        for (int i = 0; i < (W_LANES + 1) * stride; i++) ring[i] = 1;
        uint16_t *zero = ring + W_LANES * stride;   /* slot used as "row -1" */
        (void)zero;
        for (int y0 = 0; y0 < b->h; y0 += W_LANES) {
            const int nl = b->h - y0 < W_LANES ? b->h - y0 : W_LANES;
            uint16_t *rows[W_LANES + 1];
            /* rows[0] = row y0 - 1 (or zeros), rows[l + 1] = row y0 + l */
            rows[0] = y0 ? ring + (size_t)((y0 - 1) % (W_LANES + 1)) * stride : ring + (size_t)W_LANES * stride;
            for (int l = 0; l < W_LANES; l++) {
                rows[l + 1] = ring + (size_t)((y0 + l) % (W_LANES + 1)) * stride;
            }
            if (!y0) { for (int i = 0; i < stride; i++) rows[0][i] = 1; }
            uint32_t rW[W_LANES];
            for (int l = 0; l < W_LANES; l++) rW[l] = 1;
            if (nl == W_LANES) {
                const int T = w + 2 * (W_LANES - 1);
                int t = 0;
                /* prologue / steady state / epilogue by bounds per lane */
                for (; t < T; t++) {
                    if (t < w) WN(w_dec_coef)(&d[0], &rw, &m, b->cls, rows[0], rows[1], b->v + (size_t)y0 * w, t, &rW[0]);
#if W_LANES >= 2
                    if (t >= 2 && t - 2 < w) WN(w_dec_coef)(&d[1], &rw, &m, b->cls, rows[1], rows[2], b->v + (size_t)(y0 + 1) * w, t - 2, &rW[1]);
#endif
#if W_LANES >= 4
                    if (t >= 4 && t - 4 < w) WN(w_dec_coef)(&d[2], &rw, &m, b->cls, rows[2], rows[3], b->v + (size_t)(y0 + 2) * w, t - 4, &rW[2]);
                    if (t >= 6 && t - 6 < w) WN(w_dec_coef)(&d[3], &rw, &m, b->cls, rows[3], rows[4], b->v + (size_t)(y0 + 3) * w, t - 6, &rW[3]);
#endif
                }
            } else {
                for (int l = 0; l < nl; l++)
                    for (int x = 0; x < w; x++)
                        WN(w_dec_coef)(&d[l], &rw, &m, b->cls, rows[l], rows[l + 1], b->v + (size_t)(y0 + l) * w, x, &rW[l]);
            }
            for (int l = 0; l < W_LANES; l++) rows[l + 1][0] = 1, rows[l + 1][w + 1] = 1;
        }
    }
    return 1;
}
#undef WN
#undef W_CAT
#undef W_CAT2
#undef W_NORM
