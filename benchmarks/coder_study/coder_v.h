/* Candidate V (format v4 study): adaptive multi-symbol rANS with the v3
 * context sum, coded in K lanes (horizontal strips of a band decoded in
 * lockstep, each with its own rANS state) so that the per-coefficient
 * dependency chains of different lanes overlap.
 * Symbol per coefficient: V_JOINT 1: (E, first mantissa bit) in one
 * 31-symbol alphabet (0: E=0, 1: E=1, 2 + 2(E-2) + m1 for E = 2..15,
 * 30: escape); V_JOINT 0: E in a 15-symbol alphabet (14: escape) and the
 * first mantissa bit binary by (E, t).  Second mantissa bit binary by
 * (E, m1) when V_M2, the rest raw; sign binary by the sign context.
 * Parameters: V_NAME, V_JOINT, V_LANES, V_M2, V_RMAX. */
#define VN(x) V_CAT(x, V_NAME)
#define V_CAT(a, b) V_CAT2(a, b)
#define V_CAT2(a, b) a##_##b

#ifndef V_SHARED_DONE
#define V_SHARED_DONE
#define V_NSYM 32                   /* cdf entries incl. the 32768 sentinel */
typedef struct { uint16_t c[V_NSYM] __attribute__((aligned(64))); } v_cdf_t;
typedef struct { uint16_t p, k; } v_bin_t;
typedef struct {
    v_cdf_t cdf[4][32], cdf2[4][32];
    uint8_t cnt[4][32], cnt2[4][32];
    v_bin_t m1[4][64][3], m2[4][64][2], sgn[4][9], esc[4];
} v_model_t;

#include <math.h>
#ifndef V_PRIOR
#define V_PRIOR 0
#define V_PRIOR_OFF 1.5
#define V_PRIOR_LAM 1.0
#define V_PRIOR_CNT 2
#endif
static void v_prior(uint16_t *c, int nsym, int ctx)
{
    /* P(E = e) ~ exp(-lambda |e - mu|), mu from the context's octave; joint
     * alphabets split E's mass over the first mantissa bit 0.6 / 0.4 */
    double w[32] = {0}, tot = 0;
    const double mu = ctx ? (ctx - 1) / 2.0 - V_PRIOR_OFF : 0, lam = V_PRIOR_LAM;
    for (int i = 0; i < nsym; i++) {
        int e = i;
        double split = 1;
        if (nsym == 31) { if (i < 2) e = i; else if (i < 30) { e = 2 + (i - 2) / 2; split = (i - 2) % 2 ? 0.4 : 0.6; } else e = 16; }
        w[i] = exp(-lam * fabs(e - mu)) * split;
        tot += w[i];
    }
    const int room = 32768 - nsym;   /* every symbol keeps at least 1 */
    double acc = 0;
    for (int i = 0; i < nsym; i++) { c[i] = (uint16_t)(i + (int)(room * acc / tot)); acc += w[i]; }
    for (int i = nsym; i < V_NSYM; i++) c[i] = 32768;
}
static void v_model_reset(v_model_t *m, int nsym)
{
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 32; j++) {
            for (int i = 0; i < V_NSYM; i++)
                m->cdf2[k][j].c[i] = m->cdf[k][j].c[i] = (uint16_t)(i < nsym ? (i * 32768) / nsym : 32768);
            if (V_PRIOR) { v_prior(m->cdf[k][j].c, nsym, j); memcpy(m->cdf2[k][j].c, m->cdf[k][j].c, sizeof m->cdf[k][j].c); }
            m->cnt2[k][j] = m->cnt[k][j] = V_PRIOR ? V_PRIOR_CNT : 0;
        }
    v_bin_t *b = &m->m1[0][0][0];
    const size_t nb = (sizeof m->m1 + sizeof m->m2 + sizeof m->sgn + sizeof m->esc) / sizeof *b;
    for (size_t i = 0; i < nb; i++) b[i] = (v_bin_t){16384, 1};
}

/* count of cdf entries <= slot, signed compare: the sentinels 32768 (lanes
 * alpha..31) are -32768 and always count, as does c[0] = 0 */
static inline unsigned v_search(const uint16_t *c, unsigned slot, unsigned alpha)
{
#if defined(__AVX2__)
    const __m256i s = _mm256_set1_epi16((short)slot);
    const __m256i a = _mm256_load_si256((const __m256i *)c), b = _mm256_load_si256((const __m256i *)(c + 16));
    const __m256i ga = _mm256_cmpgt_epi16(a, s), gb = _mm256_cmpgt_epi16(b, s);
    const unsigned m = (unsigned)_mm256_movemask_epi8(_mm256_packs_epi16(ga, gb));
    return alpha - 1u - (unsigned)__builtin_popcount(m);
#else
    unsigned n = 0;
    for (int i = 0; i < V_NSYM; i++) n += (int16_t)c[i] <= (int16_t)slot;
    return n - (V_NSYM + 1 - alpha);
#endif
}
/* targets: i below or at the symbol, hi[i] above it (32768 - alpha + i, the
 * sentinels 32768), so neighbouring entries stay at least 1 apart */
static uint16_t v_hi[V_NSYM] __attribute__((aligned(64)));
static void v_targets(unsigned alpha) { for (unsigned i = 0; i < V_NSYM; i++) v_hi[i] = (uint16_t)(i < alpha ? 32768 - alpha + i : 32768); }
static inline void v_update(uint16_t *c, unsigned sym, unsigned rate)
{
#if defined(__AVX2__)
    const __m256i io0 = _mm256_setr_epi16(0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15);
    const __m256i io1 = _mm256_add_epi16(io0, _mm256_set1_epi16(16));
    const __m256i s = _mm256_set1_epi16((short)sym);
    const __m128i r = _mm_cvtsi32_si128((int)rate);
    __m256i a = _mm256_load_si256((const __m256i *)c), b = _mm256_load_si256((const __m256i *)(c + 16));
    const __m256i ta = _mm256_blendv_epi8(io0, _mm256_load_si256((const __m256i *)v_hi), _mm256_cmpgt_epi16(io0, s));
    const __m256i tb = _mm256_blendv_epi8(io1, _mm256_load_si256((const __m256i *)(v_hi + 16)), _mm256_cmpgt_epi16(io1, s));
    a = _mm256_add_epi16(a, _mm256_sra_epi16(_mm256_sub_epi16(ta, a), r));
    b = _mm256_add_epi16(b, _mm256_sra_epi16(_mm256_sub_epi16(tb, b), r));
    _mm256_store_si256((__m256i *)c, a);
    _mm256_store_si256((__m256i *)(c + 16), b);
#else
    for (int i = 0; i < V_NSYM; i++) {
        const int16_t t = (int16_t)(i <= (int)sym ? i : v_hi[i]);
        c[i] = (uint16_t)((int16_t)c[i] + (int16_t)((int16_t)(t - (int16_t)c[i]) >> rate));
    }
#endif
}

/* encoder records: start | freq << 15 | lane << 30 */
typedef struct { uint32_t *r; size_t n, cap; } v_rec_t;
static inline void v_put(v_rec_t *rec, unsigned start, unsigned freq, unsigned lane)
{
    rec->r[rec->n++] = start | freq << 15 | lane << 30;
}
/* encode the block's records in reverse into 16-bit words appended to out */
static void v_flush(v_rec_t *rec, buf_t *out, int lanes)
{
    uint32_t x[4] = {65536, 65536, 65536, 65536};
    size_t cap = 2 * rec->n + 16, n = 0;
    uint16_t *w = malloc(cap * 2);
    for (size_t i = rec->n; i-- > 0;) {
        const uint32_t r = rec->r[i];
        const unsigned start = r & 0x7FFF, freq = (r >> 15) & 0x7FFF, lane = r >> 30;
        uint32_t s = x[lane];
        if (s >= ((uint32_t)freq << 17)) { w[n++] = (uint16_t)s; s >>= 16; }
        x[lane] = ((s / freq) << 15) + (s % freq) + start;
    }
    for (int l = lanes; l-- > 0;) { w[n++] = (uint16_t)x[l]; w[n++] = (uint16_t)(x[l] >> 16); }
    buf_reserve(out, 2 * n);
    uint16_t *o = (uint16_t *)(out->data + out->len);
    for (size_t i = 0; i < n; i++) o[i] = w[n - 1 - i];
    out->len += 2 * n;
    free(w);
    rec->n = 0;
}
#ifndef V_R0
#define V_R0 1
#endif
#ifndef V_RSTEP
#define V_RSTEP 0
#endif
static inline unsigned v_rate(uint8_t *cnt, unsigned rmax)
{
    /* rate shift V_R0 + cnt >> V_RSTEP, up to rmax */
    const unsigned r = V_R0 + ((unsigned)*cnt >> V_RSTEP);
    if (r < rmax) (*cnt)++;
    return r < rmax ? r : rmax;
}
static inline void v_bin_upd(v_bin_t *b, unsigned bit)
{
    if (bit) b->p = (uint16_t)(b->p - (b->p >> b->k)); else b->p = (uint16_t)(b->p + ((32768u - b->p) >> b->k));
    b->k += b->k < 6;
}
#define V_BLOCK 16384
#endif

#if V_JOINT
#define V_ALPHA 31
#define V_ESC 30
static inline unsigned VN(v_sym)(unsigned E, uint32_t mg) { return E < 2 ? E : E < 16 ? 2 + 2 * (E - 2) + ((mg >> (E - 2)) & 1) : V_ESC; }
#else
#define V_ALPHA 15
#define V_ESC 14
static inline unsigned VN(v_sym)(unsigned E, uint32_t mg) { (void)mg; return E < V_ESC ? E : V_ESC; }
#endif

static inline unsigned VN(v_tctx)(unsigned c, unsigned E) { const int o = (int)(c >> 1) - (int)E - 2; return o < 0 ? 0u : o == 0 ? 1u : 2u; }

/* one coefficient, encoder side */
static inline void VN(v_enc_coef)(v_model_t *m, v_rec_t *rec, bw_t *bw, int cls, unsigned c, unsigned sctx,
                                  int32_t v, unsigned lane)
{
    const uint32_t mg = iabs32(v);
    const unsigned E = bitlen(mg), sym = VN(v_sym)(E, mg);
    uint16_t *cdf = m->cdf[cls][c].c;
#ifdef V_MIX
    uint16_t *cdf2 = m->cdf2[cls][c].c;
    const unsigned lo_ = (cdf[sym] + cdf2[sym]) >> 1, hi_ = ((unsigned)cdf[sym + 1] + cdf2[sym + 1]) >> 1;
    v_put(rec, lo_, hi_ - lo_, lane);
    v_update(cdf2, sym, v_rate(&m->cnt2[cls][c], V_MIX));
#else
    v_put(rec, cdf[sym], (unsigned)cdf[sym + 1] - cdf[sym], lane);
#endif
    v_update(cdf, sym, v_rate(&m->cnt[cls][c], V_RMAX));
    if (sym == V_ESC) bw_put(bw, E - (V_JOINT ? 16 : V_ESC), 6);
    unsigned known = 1;   /* bits below the leading one already coded */
#if V_JOINT
    if (E >= 2 && E < 16) known = 2;
#else
    if (E >= 2) {
        const unsigned b1 = (mg >> (E - 2)) & 1u;
        v_bin_t *pb = &m->m1[cls][E][VN(v_tctx)(c, E)];
        if (!b1) v_put(rec, 0, pb->p, lane); else v_put(rec, pb->p, 32768 - pb->p, lane);
        v_bin_upd(pb, b1);
        known = 2;
    }
#endif
    if (E >= 3 && V_M2 && known == 2) {
        const unsigned b1 = (mg >> (E - 2)) & 1u, b2 = (mg >> (E - 3)) & 1u;
        v_bin_t *pb = &m->m2[cls][E][b1];
        if (!b2) v_put(rec, 0, pb->p, lane); else v_put(rec, pb->p, 32768 - pb->p, lane);
        v_bin_upd(pb, b2);
        known = 3;
    }
    if (E > known) bw_put(bw, mg, (int)(E - known));
    if (E) {
        v_bin_t *pb = &m->sgn[cls][sctx];
        const unsigned neg = v < 0;
        if (!neg) v_put(rec, 0, pb->p, lane); else v_put(rec, pb->p, 32768 - pb->p, lane);
        v_bin_upd(pb, neg);
    }
}

/* lanes: rows of a band split into V_LANES strips of ceil(h / lanes) rows */
static size_t VN(v_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static v_model_t m;
    v_model_reset(&m, V_ALPHA);
    v_targets(V_ALPHA);
    v_rec_t rec = {malloc((V_BLOCK + 16 * 4 * 4096) * 4), 0, 0};
    buf_t words = {0}, raw = {0};
    bw_t bw; bw_init(&bw, &raw);
    for (int bi = 0; bi < p->nb; bi++) {
        const band_t *b = &p->b[bi];
        const int lanes = b->h >= 8 * V_LANES ? V_LANES : 1;
        const int hs = (b->h + lanes - 1) / lanes;
        uint16_t *up[4], *cur[4];
        for (int l = 0; l < lanes; l++) {
            up[l] = rowmem + (size_t)(2 * l) * (b->w + 2); cur[l] = up[l] + b->w + 2;
            for (int i = 0; i < 2 * (b->w + 2); i++) up[l][i] = 1;
        }
        for (int y = 0; y < hs; y++) {
            for (int x = 0; x < b->w; x++)
                for (int l = 0; l < lanes; l++) {
                    const int yy = l * hs + y;
                    if (yy >= b->h) continue;
                    const int32_t v = b->v[(size_t)yy * b->w + x];
                    const uint16_t *u = up[l] + x, *cr = cur[l] + x;
                    const uint32_t s = 2u * ((cr[0] >> 2) + (u[1] >> 2)) + (u[0] >> 2) + (u[2] >> 2);
                    const unsigned c = magctx(s), sctx = 3u * (cr[0] & 3) + (u[1] & 3);
                    VN(v_enc_coef)(&m, &rec, &bw, b->cls, c, sctx, v, (unsigned)l);
                    const uint32_t mg = iabs32(v);
                    cur[l][x + 1] = (uint16_t)((mg > 0x3FFF ? 0x3FFF : mg) << 2 | (v < 0 ? 0u : v > 0 ? 2u : 1u));
                }
            for (int l = 0; l < lanes; l++) { uint16_t *t = up[l]; up[l] = cur[l]; cur[l] = t; cur[l][0] = 1; }
            if (rec.n >= V_BLOCK) v_flush(&rec, &words, V_LANES);
        }
    }
    v_flush(&rec, &words, V_LANES);
    bw_flush(&bw);
    const size_t start = out->len;
    buf_reserve(out, 4 + words.len + raw.len);
    const uint32_t wl = (uint32_t)words.len;
    memcpy(out->data + out->len, &wl, 4);
    memcpy(out->data + out->len + 4, words.data, words.len);
    memcpy(out->data + out->len + 4 + words.len, raw.data, raw.len);
    out->len += 4 + words.len + raw.len;
    free(words.data); free(raw.data); free(rec.r);
    return out->len - start;
}

#define V_RENORM(xs) do { const int ren_ = (xs) < 65536u; const uint32_t xr_ = (xs) << 16 | *in; \
        (xs) = ren_ ? xr_ : (xs); in += ren_; } while (0)
#define V_BIN(xs, pb, bit) do { const unsigned sl_ = (xs) & 0x7FFF, p0_ = (pb)->p; (bit) = sl_ >= p0_; \
        const unsigned mk_ = 0u - (bit); \
        (xs) = ((p0_ ^ mk_) + (32769u & mk_)) * ((xs) >> 15) + sl_ - (p0_ & mk_); V_RENORM(xs); \
        v_bin_upd((pb), (bit)); } while (0)

static int VN(v_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static v_model_t m;
    (void)len;
    v_model_reset(&m, V_ALPHA);
    uint32_t wl; memcpy(&wl, data, 4);
    const uint16_t *in = (const uint16_t *)(data + 4);
    const uint8_t *bp = data + 4 + wl; uint64_t bbuf = 0; unsigned bcnt = 0;
    uint32_t xs[4];
    for (int l = 0; l < V_LANES; l++) { xs[l] = (uint32_t)in[0] << 16 | in[1]; in += 2; }
    size_t nsym = 0;
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int lanes = b->h >= 8 * V_LANES ? V_LANES : 1;
        const int hs = (b->h + lanes - 1) / lanes;
        uint16_t *up[4], *cur[4];
        uint32_t rW[4];
        for (int l = 0; l < lanes; l++) {
            up[l] = rowmem + (size_t)(2 * l) * (b->w + 2); cur[l] = up[l] + b->w + 2;
            for (int i = 0; i < 2 * (b->w + 2); i++) up[l][i] = 1;
        }
        v_cdf_t *cdfs = m.cdf[b->cls];
        uint8_t *cnts = m.cnt[b->cls];
        for (int y = 0; y < hs; y++) {
            const int nl = lanes == 1 ? 1 : (y + (lanes - 1) * hs < b->h ? lanes : lanes - 1);
            /* (prototype: the last strip may be shorter; rows beyond h skipped) */
            for (int l = 0; l < lanes; l++) rW[l] = 1;
            for (int x = 0; x < b->w; x++)
                for (int l = 0; l < nl; l++) {
                    const int yy = l * hs + y;
                    const uint16_t *u = up[l] + x;
                    const uint32_t s = 2u * ((rW[l] >> 2) + (u[1] >> 2)) + (u[0] >> 2) + (u[2] >> 2);
                    const unsigned c = LIKELY(s < CTX_LUT_N) ? ctx_lut[s] : magctx(s);
                    const unsigned sctx = 3u * (rW[l] & 3) + (u[1] & 3);
                    uint16_t *cdf = cdfs[c].c;
                    uint32_t st = xs[l];
                    const unsigned slot = st & 0x7FFF;
                    const unsigned sym = v_search(cdf, slot, V_ALPHA);
                    const unsigned lo = cdf[sym];
                    st = ((unsigned)cdf[sym + 1] - lo) * (st >> 15) + slot - lo;
                    V_RENORM(st);
                    v_update(cdf, sym, v_rate(&cnts[c], V_RMAX));
                    nsym++;
                    int32_t v = 0;
                    uint32_t entry = 1;
                    if (sym) {
                        { uint64_t wd; memcpy(&wd, bp, 8); bbuf |= wd << bcnt; bp += (63 - bcnt) >> 3; bcnt |= 56; }
                        unsigned E, known;
#if V_JOINT
                        uint32_t mg;
                        if (sym < 2) { E = sym; mg = 1; known = 1; }
                        else if (sym < V_ESC) { E = 2 + ((sym - 2) >> 1); mg = (2u | ((sym - 2) & 1u)) << (E - 2); known = 2; }
                        else { E = 16 + (unsigned)(bbuf & 63); bbuf >>= 6; bcnt -= 6; mg = 1u << (E - 1); known = 1; }
#else
                        E = sym;
                        if (UNLIKELY(sym == V_ESC)) { E += (unsigned)(bbuf & 63); bbuf >>= 6; bcnt -= 6; }
                        uint32_t mg = 1u << (E - 1);
                        known = 1;
                        if (E >= 2) {
                            unsigned b1; v_bin_t *pb = &m.m1[b->cls][E][VN(v_tctx)(c, E)];
                            V_BIN(st, pb, b1); nsym++;
                            mg |= b1 << (E - 2); known = 2;
                        }
#endif
#if V_M2
                        if (E >= 3 && known == 2) {
                            unsigned b2; v_bin_t *pb = &m.m2[b->cls][E][(mg >> (E - 2)) & 1u];
                            V_BIN(st, pb, b2); nsym++;
                            mg |= b2 << (E - 3); known = 3;
                        }
#endif
                        if (E > known) { mg |= (uint32_t)(bbuf & ((1u << (E - known)) - 1)); bbuf >>= E - known; bcnt -= E - known; }
                        unsigned neg; v_bin_t *ps = &m.sgn[b->cls][sctx];
                        V_BIN(st, ps, neg); nsym++;
                        v = (int32_t)((mg ^ (0u - neg)) + neg);
                        entry = (mg > 0x3FFF ? 0x3FFF : mg) << 2 | (2u - 2u * neg);
                    }
                    xs[l] = st;
                    b->v[(size_t)yy * b->w + x] = v;
                    cur[l][x + 1] = (uint16_t)entry;
                    rW[l] = entry;
                }
            for (int l = 0; l < lanes; l++) { uint16_t *t = up[l]; up[l] = cur[l]; cur[l] = t; }
            if (nsym >= V_BLOCK) {
                for (int l = 0; l < V_LANES; l++) if (xs[l] != 65536) return 0;
                for (int l = 0; l < V_LANES; l++) { xs[l] = (uint32_t)in[0] << 16 | in[1]; in += 2; }
                nsym = 0;
            }
        }
    }
    for (int l = 0; l < V_LANES; l++) if (xs[l] != 65536) return 0;
    return 1;
}
#undef VN
#undef V_CAT
#undef V_CAT2
#undef V_ALPHA
#undef V_ESC
#undef V_RENORM
#undef V_BIN
