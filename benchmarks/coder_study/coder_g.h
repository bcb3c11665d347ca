/* Candidate G: speed bound.  Static two-pass tables per piece and class (16
 * contexts, quantised histograms sent like L_static), rANS with 11-bit
 * precision decoded by one LUT load per symbol (no search, no update);
 * context s = 2|W| + (2|N| + |NW| + |NE|), the row part precomputed per row;
 * everything below the leading one and the sign raw. */
#define G_PREC 11
#define G_M (1u << G_PREC)
typedef struct { uint32_t lut[4][16][G_M]; uint16_t cdf[4][16][17]; } g_model_t;
static uint8_t g_ctx_lut[4096];
static void g_init(void) { for (unsigned s = 0; s < 4096; s++) g_ctx_lut[s] = (uint8_t)((magctx(s) + 1) >> 1); }
static inline unsigned g_ctx(uint32_t s) { return g_ctx_lut[s < 4095 ? s : 4095]; }

static void g_build(const uint32_t *q, uint16_t *cdf, uint32_t *lut)
{
    uint64_t Q = 0; for (int i = 0; i < 16; i++) Q += q[i];
    uint32_t f[16]; int32_t sum = 0; int big = 0;
    for (int i = 0; i < 16; i++) {
        f[i] = Q ? (uint32_t)((uint64_t)q[i] * G_M / Q) : (i == 0 ? G_M : 0);
        if (q[i] && !f[i]) f[i] = 1;
        sum += (int32_t)f[i];
        if (f[i] > f[big]) big = i;
    }
    f[big] += G_M - sum;
    uint32_t c = 0;
    for (int i = 0; i < 16; i++) {
        cdf[i] = (uint16_t)c;
        if (lut && Q) for (uint32_t k = 0; k < f[i]; k++) lut[c + k] = (uint32_t)i | f[i] << 4 | c << 16;
        c += f[i];
    }
    cdf[16] = (uint16_t)c;
}

static void g_walk(const piece_t *p, uint16_t *rowmem, g_model_t *m, a_rec_t *rec, bw_t *bw, uint32_t (*hist)[16][16])
{
    for (int bi = 0; bi < p->nb; bi++) {
        const band_t *b = &p->b[bi];
        uint16_t *up = rowmem, *cur = rowmem + b->w + 2;
        memset(rowmem, 0, 2 * (b->w + 2) * 2);
        for (int y = 0; y < b->h; y++) {
            const int32_t *row = b->v + (size_t)y * b->w;
            for (int x = 0; x < b->w; x++) {
                const uint32_t s = 2u * cur[x] + 2u * up[x + 1] + up[x] + up[x + 2];
                const unsigned c = g_ctx(s);
                const uint32_t mg = iabs32(row[x]);
                const unsigned E = bitlen(mg), sym = E < 15 ? E : 15;
                if (hist) hist[b->cls][c][sym]++;
                else {
                    const uint16_t *cdf = m->cdf[b->cls][c];
                    a_rec_put(rec, cdf[sym], (unsigned)cdf[sym + 1] - cdf[sym]);
                    if (sym == 15) bw_put(bw, E - 15, 5);
                    if (E) bw_put(bw, ((uint64_t)(mg & ((1u << (E - 1)) - 1)) << 1) | (row[x] < 0), (int)E);
                }
                cur[x + 1] = mg > 0x3FFF ? 0x3FFF : (uint16_t)mg;
            }
            uint16_t *t = up; up = cur; cur = t;
        }
    }
}

/* rANS flush for 11-bit precision */
static void g_rans_flush(a_rec_t *r, buf_t *out)
{
    uint16_t *words = malloc((r->n * 2 + 4) * sizeof *words);
    size_t nw = 0;
    uint32_t x = 1u << 16;
    for (size_t i = r->n; i-- > 0;) {
        const uint32_t start = r->rec[i] >> 16, freq = r->rec[i] & 0xFFFF;
        if ((uint64_t)x >= ((uint64_t)freq << (32 - G_PREC))) { words[nw++] = (uint16_t)x; x >>= 16; }
        x = ((x / freq) << G_PREC) + (x % freq) + start;
    }
    words[nw++] = (uint16_t)x; words[nw++] = (uint16_t)(x >> 16);
    uint32_t bytes = (uint32_t)(nw * 2);
    buf_reserve(out, 4 + bytes);
    memcpy(out->data + out->len, &bytes, 4); out->len += 4;
    for (size_t i = 0; i < nw; i++) { uint16_t w = words[nw - 1 - i]; memcpy(out->data + out->len, &w, 2); out->len += 2; }
    free(words);
    r->n = 0;
}

static size_t g_enc_piece(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static g_model_t m; static a_rec_t rec;
    static uint32_t hist[4][16][16];
    buf_t raw = {0};
    bw_t bw; bw_init(&bw, &raw);
    const size_t start_len = out->len;
    memset(hist, 0, sizeof hist);
    g_walk(p, rowmem, &m, &rec, &bw, hist);
    size_t tbits = 0;
    int used[4] = {0};
    for (int i = 0; i < p->nb; i++) used[p->b[i].cls] = 1;
    for (int k = 0; k < 4; k++) {
        if (!used[k]) continue;
        for (int c = 0; c < 16; c++) { uint32_t q[16]; l_put_hist(&bw, hist[k][c], q, &tbits); g_build(q, m.cdf[k][c], NULL); }
    }
    g_walk(p, rowmem, &m, &rec, &bw, NULL);
    bw_flush(&bw);
    g_rans_flush(&rec, out);
    buf_reserve(out, raw.len);
    memcpy(out->data + out->len, raw.data, raw.len);
    out->len += raw.len;
    free(raw.data);
    return out->len - start_len;
}

static int g_dec_piece(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static g_model_t m;
    (void)len;
    uint32_t rbytes; memcpy(&rbytes, data, 4);
    const uint16_t *in = (const uint16_t *)(data + 4);
    br_t brs; br_init(&brs, data + 4 + rbytes);
    int used[4] = {0};
    for (int i = 0; i < p->nb; i++) used[p->b[i].cls] = 1;
    for (int k = 0; k < 4; k++) {
        if (!used[k]) continue;
        for (int c = 0; c < 16; c++) { uint32_t q[16]; l_get_hist(&brs, q); g_build(q, m.cdf[k][c], m.lut[k][c]); }
    }
    const uint8_t *bp = brs.p; uint64_t bbuf = brs.buf; unsigned bcnt = brs.cnt;
    uint32_t x = (uint32_t)in[0] << 16 | in[1];
    in += 2;
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int w = b->w;
        uint16_t *up = rowmem, *cur = rowmem + w + 2;
        uint32_t *sN = (uint32_t *)(rowmem + 2 * (w + 2) + 8);
        memset(rowmem, 0, 2 * (w + 2) * 2);
        const uint32_t (*lut)[G_M] = (const uint32_t (*)[G_M])m.lut[b->cls];
        for (int y = 0; y < b->h; y++) {
            int32_t *row = b->v + (size_t)y * w;
            for (int xx = 0; xx < w; xx++) sN[xx] = 2u * up[xx + 1] + up[xx] + up[xx + 2];   /* vectorised */
            uint32_t mW = 0;
            for (int xx = 0; xx < w; xx++) {
                const unsigned c = g_ctx(2u * mW + sN[xx]);
                const uint32_t slot = x & (G_M - 1);
                const uint32_t e = lut[c][slot];
                x = (e >> 4 & 0xFFF) * (x >> G_PREC) + slot - (e >> 16);
                { const int ren = x < 65536; const uint32_t xr = x << 16 | *in; x = ren ? xr : x; in += ren; }
                unsigned E = e & 15;
                int32_t v = 0;
                uint32_t mg = 0;
                if (E) {
                    { uint64_t wd; memcpy(&wd, bp, 8); bbuf |= wd << bcnt; bp += (63 - bcnt) >> 3; bcnt |= 56; }
                    if (UNLIKELY(E == 15)) { E += (unsigned)(bbuf & 31); bbuf >>= 5; bcnt -= 5; }
                    const uint32_t bits = (uint32_t)(bbuf & ((1u << E) - 1));
                    bbuf >>= E; bcnt -= E;
                    mg = (1u << (E - 1)) | (bits >> 1);
                    const uint32_t neg = bits & 1;
                    v = (int32_t)((mg ^ (0u - neg)) + neg);
                }
                row[xx] = v;
                mW = mg > 0x3FFF ? 0x3FFF : mg;
                cur[xx + 1] = (uint16_t)mW;
            }
            uint16_t *t = up; up = cur; cur = t;
        }
    }
    return 1;
}
