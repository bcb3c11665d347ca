/* Lean coder family (same symbol model as F16: E = min(E,15) under 16
 * magnitude contexts per class, top mantissa bit by (class, E), sign by
 * 3*sgn(W)+sgn(N), rest raw in a separate bit stream), written for a short
 * decode path: neighbourhood in registers, one packed uint16 row entry per
 * coefficient ((min(mag, 0x3FFF) << 2) | sign class), branchless binary steps.
 * Parameters: L_NAME, L_ADAPT (1 adaptive CDFs, 0 static two-pass tables sent
 * in the piece), L_SIGN (1 modelled, 0 raw), L_TOP (1 modelled, 0 raw). */
#define LN(x) L_CAT(x, L_NAME)
#define L_CAT(a, b) L_CAT2(a, b)
#define L_CAT2(a, b) a##_##b

#ifndef L_SHARED_DONE
#define L_SHARED_DONE
typedef struct {
    a_cdf_t c[4][16];
    uint16_t top[4][64];
    uint16_t sgn[4][16];
} l_model_t;
static void l_model_reset(l_model_t *m)
{
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 16; j++) {
            for (int i = 0; i < 16; i++) m->c[k][j].cdf[i] = (uint16_t)(i * 2048);
            m->c[k][j].cdf[16] = 32768;
            m->c[k][j].cdf[17] = 0;
        }
    for (int k = 0; k < 4; k++) for (int j = 0; j < 64; j++) m->top[k][j] = 16384;
    for (int k = 0; k < 4; k++) for (int j = 0; j < 16; j++) m->sgn[k][j] = 16384;
}
static inline unsigned l_ctx(uint32_t s) { return (LIKELY(s < CTX_LUT_N) ? ctx_lut[s] + 1u : magctx(s) + 1u) >> 1; }

/* ---- static tables: histogram -> transmitted quantised counts -> CDF ---- */
static void eg_put(bw_t *bw, uint32_t v, int k, size_t *bits)   /* Exp-Golomb order k */
{
    uint32_t u = (v >> k) + 1;
    int nb = (int)bitlen(u);
    bw_put(bw, 0, nb - 1); bw_put(bw, 1, 1); bw_put(bw, u, nb - 1); bw_put(bw, v, k);
    *bits += (size_t)(2 * nb - 1 + k);
}
static uint32_t eg_get(br_t *br, int k)
{
    br_refill(br);
    int z = 0;
    while (!(br->buf & 1)) { br->buf >>= 1; br->cnt--; z++; if (br->cnt < 8) br_refill(br); }
    br_refill(br);
    br_get(br, 1);
    uint32_t u = (1u << z) | (uint32_t)br_get(br, (unsigned)z);
    br_refill(br);
    return ((u - 1) << k) | (uint32_t)br_get(br, k);
}
/* quantised counts q[0..15] -> cdf (15 bit), zero-width for absent symbols */
static void l_build_cdf(const uint32_t *q, uint16_t *cdf)
{
    uint64_t Q = 0; for (int i = 0; i < 16; i++) Q += q[i];
    uint32_t f[16]; int32_t sum = 0, big = 0;
    for (int i = 0; i < 16; i++) {
        f[i] = Q ? (uint32_t)((uint64_t)q[i] * 32768 / Q) : (i == 0 ? 32768 : 0);
        if (q[i] && !f[i]) f[i] = 1;
        sum += (int32_t)f[i];
        if (f[i] > f[big]) big = i;
    }
    if (!f[15]) { f[15] = 1; sum++; }
    f[big] += 32768 - sum;
    uint32_t c = 0;
    for (int i = 0; i < 16; i++) { cdf[i] = (uint16_t)c; c += f[i]; }
    cdf[16] = 32768;
}
/* per context: used flag, counts quantised to ~6 significant bits */
static void l_put_hist(bw_t *bw, const uint32_t *h, uint32_t *q, size_t *bits)
{
    uint32_t n = 0, last = 0;
    for (int i = 0; i < 16; i++) { n += h[i]; if (h[i]) last = (uint32_t)i; }
    bw_put(bw, n != 0, 1); (*bits)++;
    memset(q, 0, 16 * sizeof *q);
    if (!n) return;
    const int sh = bitlen(n) > 7 ? (int)bitlen(n) - 7 : 0;   /* keep ~7 bits of the total */
    bw_put(bw, last, 4); bw_put(bw, (uint32_t)sh, 4); *bits += 8;
    for (uint32_t i = 0; i <= last; i++) {
        q[i] = (h[i] + (1u << sh >> 1)) >> sh;
        if (h[i] && !q[i]) q[i] = 1;
        eg_put(bw, q[i], 2, bits);
    }
}
static void l_get_hist(br_t *br, uint32_t *q)
{
    memset(q, 0, 16 * sizeof *q);
    br_refill(br);
    if (!br_get(br, 1)) return;
    const uint32_t last = (uint32_t)br_get(br, 4);
    br_get(br, 4);
    for (uint32_t i = 0; i <= last; i++) q[i] = eg_get(br, 2);
}
static uint16_t l_bin_p(uint32_t n0, uint32_t n1) /* 6-bit quantised probability of 0 */
{
    uint32_t n = n0 + n1;
    uint32_t v = n ? (uint32_t)((n0 * 64ull + n / 2) / n) : 32;
    if (v < 1) v = 1;
    if (v > 63) v = 63;
    return (uint16_t)v;
}
#endif

#if L_ADAPT
#define L_UPD(cdf, sym) do { const unsigned cnt_ = (cdf)[17]; \
        a_update((cdf), (sym), 4 + (cnt_ > 15) + (cnt_ > 31)); (cdf)[17] = (uint16_t)(cnt_ + (cnt_ < 32)); } while (0)
#define L_BINUPD(pt, bit) (*(pt) = (uint16_t)(*(pt) + (((int)((bit) ? 1 : 32767) - (int)*(pt)) >> 5)))
#else
#define L_UPD(cdf, sym) ((void)0)
#define L_BINUPD(pt, bit) ((void)0)
#endif

/* Context walk shared by the encoder passes. */
static void LN(l_walk)(const piece_t *p, uint16_t *rowmem, l_model_t *m, a_rec_t *rec, bw_t *bw,
                       uint32_t (*hist)[16][16], uint32_t (*shist)[16][2], uint32_t (*thist)[64][2])
{
    for (int bi = 0; bi < p->nb; bi++) {
        const band_t *b = &p->b[bi];
        uint16_t *up = rowmem, *cur = rowmem + b->w + 2;
        for (int i = 0; i < 2 * (b->w + 2); i++) rowmem[i] = 1;
        for (int y = 0; y < b->h; y++) {
            const int32_t *row = b->v + (size_t)y * b->w;
            for (int x = 0; x < b->w; x++) {
                const uint32_t s = 2u * ((cur[x] >> 2) + (up[x + 1] >> 2)) + (up[x] >> 2) + (up[x + 2] >> 2);
                const unsigned c = l_ctx(s), sctx = 3u * (cur[x] & 3) + (up[x + 1] & 3);
                const uint32_t mg = iabs32(row[x]);
                const unsigned E = bitlen(mg), sym = E < 15 ? E : 15;
                const int neg = row[x] < 0;
                const unsigned top = E >= 2 ? (mg >> (E - 2)) & 1u : 0;
                if (hist) {
                    hist[b->cls][c][sym]++;
                    if (E && L_SIGN) shist[b->cls][sctx][neg]++;
                    if (E >= 2 && L_TOP) thist[b->cls][E][top]++;
                } else {
                    uint16_t *cdf = m->c[b->cls][c].cdf;
                    a_rec_put(rec, cdf[sym], (unsigned)cdf[sym + 1] - cdf[sym]);
                    L_UPD(cdf, sym);
                    if (sym == 15) bw_put(bw, E - 15, 5);
                    if (E >= 2) {
#if L_TOP
                        uint16_t *pt = &m->top[b->cls][E];
                        if (!top) a_rec_put(rec, 0, *pt); else a_rec_put(rec, *pt, 32768 - *pt);
                        L_BINUPD(pt, top);
                        bw_put(bw, mg, (int)E - 2);
#else
                        bw_put(bw, mg, (int)E - 1);
#endif
                    }
                    if (E) {
#if L_SIGN
                        uint16_t *ps = &m->sgn[b->cls][sctx];
                        if (!neg) a_rec_put(rec, 0, *ps); else a_rec_put(rec, *ps, 32768 - *ps);
                        L_BINUPD(ps, neg);
#else
                        bw_put(bw, (uint32_t)neg, 1);
#endif
                    }
                }
                cur[x + 1] = (uint16_t)((mg > 0x3FFF ? 0x3FFF : mg) << 2 | (row[x] < 0 ? 0u : row[x] > 0 ? 2u : 1u));
            }
            uint16_t *t = up; up = cur; cur = t;
        }
    }
}

static size_t LN(l_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static l_model_t m; static a_rec_t rec;
    l_model_reset(&m);
    buf_t raw = {0};
    bw_t bw; bw_init(&bw, &raw);
    const size_t start_len = out->len;
#if !L_ADAPT
    static uint32_t hist[4][16][16], shist[4][16][2], thist[4][64][2];
    memset(hist, 0, sizeof hist); memset(shist, 0, sizeof shist); memset(thist, 0, sizeof thist);
    LN(l_walk)(p, rowmem, &m, &rec, &bw, hist, shist, thist);
    size_t tbits = 0;
    int used[4] = {0};
    for (int i = 0; i < p->nb; i++) used[p->b[i].cls] = 1;
    for (int k = 0; k < 4; k++) {
        if (!used[k]) continue;
        for (int c = 0; c < 16; c++) {
            uint32_t q[16];
            l_put_hist(&bw, hist[k][c], q, &tbits);
            l_build_cdf(q, m.c[k][c].cdf);
        }
#if L_SIGN
        for (int c = 0; c < 9; c++) { m.sgn[k][c] = (uint16_t)(l_bin_p(shist[k][c][0], shist[k][c][1]) << 9); bw_put(&bw, m.sgn[k][c] >> 9, 6); tbits += 6; }
#endif
#if L_TOP
        for (int e = 2; e < 32; e++) {
            const int u = thist[k][e][0] + thist[k][e][1] > 0;
            bw_put(&bw, (uint32_t)u, 1); tbits++;
            if (u) { m.top[k][e] = (uint16_t)(l_bin_p(thist[k][e][0], thist[k][e][1]) << 9); bw_put(&bw, m.top[k][e] >> 9, 6); tbits += 6; }
        }
#endif
    }
#endif
    LN(l_walk)(p, rowmem, &m, &rec, &bw, NULL, NULL, NULL);
    bw_flush(&bw);
    a_rans_flush(&rec, out);
    buf_reserve(out, raw.len);
    memcpy(out->data + out->len, raw.data, raw.len);
    out->len += raw.len;
    free(raw.data);
    return out->len - start_len;
}

static int LN(l_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static l_model_t m;
    (void)len;
    uint32_t rbytes; memcpy(&rbytes, data, 4);
    const uint16_t *in = (const uint16_t *)(data + 4);
    br_t brs; br_init(&brs, data + 4 + rbytes);
#if L_ADAPT
    l_model_reset(&m);
#else
    {
        int used[4] = {0};
        for (int i = 0; i < p->nb; i++) used[p->b[i].cls] = 1;
        for (int k = 0; k < 4; k++) {
            if (!used[k]) continue;
            for (int c = 0; c < 16; c++) { uint32_t q[16]; l_get_hist(&brs, q); l_build_cdf(q, m.c[k][c].cdf); }
#if L_SIGN
            for (int c = 0; c < 9; c++) { br_refill(&brs); m.sgn[k][c] = (uint16_t)(br_get(&brs, 6) << 9); }
#endif
#if L_TOP
            for (int e = 2; e < 32; e++) { br_refill(&brs); if (br_get(&brs, 1)) m.top[k][e] = (uint16_t)(br_get(&brs, 6) << 9); }
#endif
        }
    }
#endif
    /* decoder state in locals */
    const uint8_t *bp = brs.p; uint64_t bbuf = brs.buf; unsigned bcnt = brs.cnt;
    uint32_t x = (uint32_t)in[0] << 16 | in[1];
    in += 2;
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int w = b->w;
        uint16_t *up = rowmem, *cur = rowmem + w + 2;
        for (int i = 0; i < 2 * (w + 2); i++) rowmem[i] = 1;
        a_cdf_t *cls = m.c[b->cls];
        uint16_t *tops = m.top[b->cls], *sgns = m.sgn[b->cls];
        (void)tops; (void)sgns;
        for (int y = 0; y < b->h; y++) {
            int32_t *row = b->v + (size_t)y * w;
            uint32_t rW = 1, rN = up[1], rNW = 1;
            for (int xx = 0; xx < w; xx++) {
                const uint32_t rNE = up[xx + 2];
                const uint32_t s = 2u * ((rW >> 2) + (rN >> 2)) + (rNW >> 2) + (rNE >> 2);
                const unsigned sctx = 3u * (rW & 3) + (rN & 3);
                rNW = rN; rN = rNE;
                uint16_t *cdf = cls[l_ctx(s)].cdf;
                const unsigned slot = x & 0x7FFF;
                const unsigned sym = a_search(cdf, slot);
                const unsigned st = cdf[sym];
                x = ((unsigned)cdf[sym + 1] - st) * (x >> 15) + slot - st;
                {   const int ren = x < 65536; const uint32_t xr = x << 16 | *in; x = ren ? xr : x; in += ren; }
                L_UPD(cdf, sym);
                uint32_t entry = 1;   /* sign class 1, magnitude 0 */
                int32_t v = 0;
                if (sym) {
                    unsigned E = sym;
                    { uint64_t wd; memcpy(&wd, bp, 8); bbuf |= wd << bcnt; bp += (63 - bcnt) >> 3; bcnt |= 56; }
                    if (UNLIKELY(E == 15)) { E += (unsigned)(bbuf & 31); bbuf >>= 5; bcnt -= 5; }
                    uint32_t mg = 1u << (E - 1);
#if L_TOP
                    if (E >= 2) {
                        uint16_t *pt = &tops[E];
                        const unsigned sl = x & 0x7FFF, p0 = *pt, bit = sl >= p0, mask = 0u - bit;
                        x = ((p0 ^ mask) + (32769u & mask)) * (x >> 15) + sl - (p0 & mask);
                        { const int ren = x < 65536; const uint32_t xr = x << 16 | *in; x = ren ? xr : x; in += ren; }
                        L_BINUPD(pt, bit);
                        mg |= bit << (E - 2);
                        mg |= (uint32_t)(bbuf & ((1u << (E - 2)) - 1));
                        bbuf >>= E - 2; bcnt -= E - 2;
                    }
#else
                    mg |= (uint32_t)(bbuf & ((1u << (E - 1)) - 1));
                    bbuf >>= E - 1; bcnt -= E - 1;
#endif
#if L_SIGN
                    uint16_t *ps = &sgns[sctx];
                    const unsigned sl = x & 0x7FFF, p0 = *ps, neg = sl >= p0, mask = 0u - neg;
                    x = ((p0 ^ mask) + (32769u & mask)) * (x >> 15) + sl - (p0 & mask);
                    { const int ren = x < 65536; const uint32_t xr = x << 16 | *in; x = ren ? xr : x; in += ren; }
                    L_BINUPD(ps, neg);
#else
                    (void)sctx;
                    const unsigned neg = (unsigned)(bbuf & 1); bbuf >>= 1; bcnt -= 1;
#endif
                    v = (int32_t)((mg ^ (0u - neg)) + neg);
                    entry = (mg > 0x3FFF ? 0x3FFF : mg) << 2 | (2u - 2u * neg);
                }
                row[xx] = v;
                cur[xx + 1] = (uint16_t)entry;
                rW = entry;
            }
            uint16_t *t = up; up = cur; cur = t;
        }
    }
    return 1;
}
#undef LN
#undef L_CAT
#undef L_CAT2
#undef L_UPD
#undef L_BINUPD
