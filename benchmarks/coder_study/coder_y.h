/* Candidate Y (format v4 study): rANS (32-bit state, 16-bit words, M = 2**16)
 * over the version-3 model, with the exponent of "busy" coefficients (context
 * c >= Y_C0) as one symbol of an adaptive 16-symbol CDF (15-bit, counted rate,
 * integer prior), quiet ones in v3's unary; mantissa bits 1-2 and the sign as
 * v3's binary decisions (16-bit probabilities, counted shift); other mantissa
 * bits in a raw bit stream; a run decision for 8 zeros in quiet rows (Y_RUN).
 * Parameters: Y_NAME, Y_C0, Y_RUN. */
#define YN(x) Y_CAT(x, Y_NAME)
#define Y_CAT(a, b) Y_CAT2(a, b)
#define Y_CAT2(a, b) a##_##b

#ifndef Y_SHARED_DONE
#define Y_SHARED_DONE
#define Y_RUNLEN 8
typedef struct { uint16_t p, k; } y_prob_t;
typedef struct {
    x_cdf_t cdf[4][32];
    y_prob_t e[4][32][24], m1[4][64][3], m2[4][64][2], sg[4][9], esc[4][64], run[4][2];
} y_model_t;
static void y_reset(y_model_t *m)
{
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 32; j++) {
            memset(m->cdf[k][j].c, 0, sizeof m->cdf[k][j].c);
            x_prior(m->cdf[k][j].c, (unsigned)j, 1, X_POFF, X_PDECAY);
            m->cdf[k][j].c[17] = X_PCNT;
        }
    y_prob_t *p = &m->e[0][0][0];
    const size_t n = (sizeof *m - sizeof m->cdf) / sizeof *p;
    for (size_t i = 0; i < n; i++) p[i] = (y_prob_t){32768, 1};
}
static inline void y_adapt(y_prob_t *s, unsigned bit)
{
    const unsigned up = (65536u - s->p) >> s->k, dn = s->p >> s->k;
    s->p = (uint16_t)(bit ? s->p - dn : s->p + up);
    s->k += s->k < 6;
}
typedef struct { uint32_t *r; size_t n; } y_rec_t;
static inline void y_put(y_rec_t *rec, unsigned start, unsigned freq) { rec->r[rec->n++] = start | freq << 16; }
static inline void y_bit(y_rec_t *rec, y_prob_t *p, unsigned bit)
{
    if (bit) y_put(rec, p->p, 65536u - p->p); else y_put(rec, 0, p->p);
    y_adapt(p, bit);
}
static inline void y_sym(y_rec_t *rec, uint16_t *c, unsigned sym)
{
    y_put(rec, 2u * c[sym], 2u * ((unsigned)c[sym + 1] - c[sym]));
    x_update(c, sym, X_RMAX);
}
/* reverse rANS over the block's records, words appended to out in decode order */
static void y_flush(y_rec_t *rec, buf_t *out)
{
    uint32_t x = 1u << 16;
    uint16_t *w = malloc((2 * rec->n + 4) * 2);
    size_t n = 0;
    for (size_t i = rec->n; i-- > 0;) {
        const uint32_t start = rec->r[i] & 0xFFFF, freq = rec->r[i] >> 16;
        if (x >= freq << 16) { w[n++] = (uint16_t)x; x >>= 16; }
        x = ((x / freq) << 16) + (x % freq) + start;
    }
    w[n++] = (uint16_t)x; w[n++] = (uint16_t)(x >> 16);
    buf_reserve(out, 2 * n);
    uint16_t *o = (uint16_t *)(out->data + out->len);
    for (size_t i = 0; i < n; i++) o[i] = w[n - 1 - i];
    out->len += 2 * n;
    free(w);
    rec->n = 0;
}
#define Y_BLOCK 16384
#endif

static inline void YN(y_coef)(y_rec_t *rec, bw_t *bw, y_model_t *m, int cls, unsigned c, unsigned sctx, int32_t v)
{
    const uint32_t mg = iabs32(v);
    const unsigned E = bitlen(mg);
    if (c >= Y_C0) {
        y_sym(rec, m->cdf[cls][c].c, E < 15 ? E : 15);
        if (E >= 15) { for (unsigned i = 15; i < E; i++) y_bit(rec, &m->esc[cls][i], 1); y_bit(rec, &m->esc[cls][E], 0); }
    } else {
        y_prob_t *pe = m->e[cls][c];
        for (unsigned i = 0; i < E; i++) y_bit(rec, &pe[i < 23 ? i : 23], 1);
        y_bit(rec, &pe[E < 23 ? E : 23], 0);
    }
    if (E >= 2) {
        const unsigned b1 = (mg >> (E - 2)) & 1u;
        y_bit(rec, &m->m1[cls][E][x_tctx(c, E)], b1);
        if (E >= 3) { y_bit(rec, &m->m2[cls][E][b1], (mg >> (E - 3)) & 1u); bw_put(bw, mg, (int)E - 3); }
    }
    if (E) y_bit(rec, &m->sg[cls][sctx], v < 0);
}

static size_t YN(y_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static y_model_t m;
    y_reset(&m);
    y_rec_t rec = {malloc((Y_BLOCK + 64 * 4096) * 4), 0};
    buf_t words = {0}, raw = {0};
    bw_t bw; bw_init(&bw, &raw);
    (void)rowmem;
    for (int bi = 0; bi < p->nb; bi++) {
        const band_t *b = &p->b[bi];
        const int w = b->w;
        for (int y = 0; y < b->h; y++) {
            const int32_t *row = b->v + (size_t)y * w, *rup = y ? row - w : NULL;
            int plain_until = 0;
            for (int x = 0; x < w; x++) {
                const uint32_t W = x ? XMAGQ(row[x - 1]) : 0, N = rup ? XMAGQ(rup[x]) : 0;
                const uint32_t NW = rup && x ? XMAGQ(rup[x - 1]) : 0, NE = rup && x + 1 < w ? XMAGQ(rup[x + 1]) : 0;
                const uint32_t s = 2 * W + 2 * N + NW + NE;
#if Y_RUN
                if (s == 0 && x >= plain_until && x + Y_RUNLEN <= w) {
                    int quiet = 1;
                    if (rup) for (int i = x + 2; i <= x + Y_RUNLEN && i < w; i++) quiet &= rup[i] == 0;
                    int zero = 1;
                    for (int i = 0; i < Y_RUNLEN; i++) zero &= row[x + i] == 0;
                    y_bit(&rec, &m.run[b->cls][quiet], !zero);
                    if (zero) { x += Y_RUNLEN - 1; continue; }
                    plain_until = x + Y_RUNLEN;
                }
#endif
                const unsigned sctx = 3u * (x ? XSGN(row[x - 1]) : 1u) + (rup ? XSGN(rup[x]) : 1u);
                YN(y_coef)(&rec, &bw, &m, b->cls, magctx(s), sctx, row[x]);
            }
            if (rec.n >= Y_BLOCK) y_flush(&rec, &words);
        }
    }
    y_flush(&rec, &words);
    bw_flush(&bw);
    const size_t start = out->len;
    buf_reserve(out, 4 + words.len + raw.len);
    const uint32_t wl = (uint32_t)words.len;
    memcpy(out->data + out->len, &wl, 4); out->len += 4;
    memcpy(out->data + out->len, words.data, words.len); out->len += words.len;
    memcpy(out->data + out->len, raw.data, raw.len); out->len += raw.len;
    free(words.data); free(raw.data); free(rec.r);
    return out->len - start;
}

#define Y_REN() do { const int ren_ = x < 65536u; const uint32_t xr_ = x << 16 | *in; x = ren_ ? xr_ : x; in += ren_; } while (0)
#define Y_BIT(pp, bit) do { y_prob_t *p_ = (pp); const unsigned sl_ = x & 0xFFFF, p0_ = p_->p; (bit) = sl_ >= p0_; \
        const unsigned st_ = (bit) ? p0_ : 0u, fr_ = (bit) ? 65536u - p0_ : p0_; \
        x = fr_ * (x >> 16) + sl_ - st_; Y_REN(); y_adapt(p_, (bit)); nsym++; } while (0)

static int YN(y_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static y_model_t m;
    (void)len;
    y_reset(&m);
    uint32_t wl; memcpy(&wl, data, 4);
    const uint16_t *in = (const uint16_t *)(data + 4);
    const uint8_t *bp = data + 4 + wl; uint64_t bbuf = 0; unsigned bcnt = 0;
    uint32_t x = (uint32_t)in[0] << 16 | in[1]; in += 2;
    size_t nsym = 0;
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int w = b->w, stride = w + 2 + Y_RUNLEN;
        uint16_t *up = rowmem, *cur = rowmem + stride, *pre = rowmem + 2 * stride;
        for (int i = 0; i < 2 * stride; i++) rowmem[i] = 1;
        x_cdf_t *cdfs = m.cdf[b->cls];
        y_prob_t *sg = m.sg[b->cls];
        for (int y = 0; y < b->h; y++) {
            for (int xx = 0; xx < w; xx++) pre[xx] = (uint16_t)(2u * (up[xx + 1] >> 2) + (up[xx] >> 2) + (up[xx + 2] >> 2));
            int32_t *row = b->v + (size_t)y * w;
            uint32_t rW = 1;
            int plain_until = 0;
            for (int xx = 0; xx < w; xx++) {
                const uint32_t s = 2u * (rW >> 2) + pre[xx];
#if Y_RUN
                if (UNLIKELY(s == 0) && xx >= plain_until && xx + Y_RUNLEN <= w) {
                    unsigned quiet = 1;
                    for (int i = xx + 2; i <= xx + Y_RUNLEN && i < w; i++) quiet &= (up[i + 1] >> 2) == 0;
                    unsigned nz; Y_BIT(&m.run[b->cls][quiet], nz);
                    if (!nz) {
                        for (int i = 0; i < Y_RUNLEN; i++) { row[xx + i] = 0; cur[xx + 1 + i] = 1; }
                        xx += Y_RUNLEN - 1; rW = 1;
                        continue;
                    }
                    plain_until = xx + Y_RUNLEN;
                }
#endif
                const unsigned c = LIKELY(s < CTX_LUT_N) ? ctx_lut[s] : magctx(s);
                const unsigned sctx = 3u * (rW & 3) + (up[xx + 1] & 3);
                unsigned E;
                if (c >= Y_C0) {
                    uint16_t *cdf = cdfs[c].c;
                    const unsigned slot = x & 0xFFFF;
                    const unsigned sym = x_search(cdf, slot >> 1);
                    const unsigned lo = 2u * cdf[sym];
                    x = 2u * ((unsigned)cdf[sym + 1] - cdf[sym]) * (x >> 16) + slot - lo;
                    Y_REN();
                    x_update(cdf, sym, X_RMAX);
                    nsym++;
                    E = sym;
                    if (UNLIKELY(E == 15)) { unsigned bit; do { Y_BIT(&m.esc[b->cls][E], bit); E += bit; } while (bit && E < 40); }
                } else {
                    y_prob_t *pe = m.e[b->cls][c];
                    unsigned bit;
                    E = 0;
                    for (;;) { Y_BIT(&pe[E < 23 ? E : 23], bit); if (!bit) break; E++; }
                }
                int32_t v = 0;
                uint32_t entry = 1;
                if (E) {
                    uint32_t mg = 1u << (E - 1);
                    if (E >= 2) {
                        unsigned b1; Y_BIT(&m.m1[b->cls][E][x_tctx(c, E)], b1);
                        mg |= b1 << (E - 2);
                        if (E >= 3) {
                            unsigned b2; Y_BIT(&m.m2[b->cls][E][b1], b2);
                            mg |= b2 << (E - 3);
                            { uint64_t wd; memcpy(&wd, bp, 8); bbuf |= wd << bcnt; bp += (63 - bcnt) >> 3; bcnt |= 56; }
                            mg |= (uint32_t)(bbuf & ((1u << (E - 3)) - 1)); bbuf >>= E - 3; bcnt -= E - 3;
                        }
                    }
                    unsigned neg; Y_BIT(&sg[sctx], neg);
                    v = (int32_t)((mg ^ (0u - neg)) + neg);
                    entry = (mg > 0x3FFF ? 0x3FFF : mg) << 2 | (2u - 2u * neg);
                }
                row[xx] = v;
                cur[xx + 1] = (uint16_t)entry;
                rW = entry;
            }
            uint16_t *t = up; up = cur; cur = t;
            if (nsym >= Y_BLOCK) {
                if (x != 65536u) return 0;
                x = (uint32_t)in[0] << 16 | in[1]; in += 2;
                nsym = 0;
            }
        }
    }
    return x == 65536u;
}
#undef YN
#undef Y_CAT
#undef Y_CAT2
#undef Y_REN
#undef Y_BIT
