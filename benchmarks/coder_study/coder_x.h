/* Candidate X (format v4 study): range coder (LZMA carry scheme) with
 *  - the exponent E as one symbol of an adaptive 16-symbol CDF (15-bit,
 *    counted rate, integer prior by context; 15 escapes), decoded by one
 *    division and a vector compare;
 *  - first and second mantissa bits and the sign as v3's binary decisions
 *    (16-bit probabilities, counted shift), branch-free;
 *  - the other mantissa bits in a separate raw bit stream;
 *  - X_RUN: a run decision for 8 zero coefficients where the context is 0
 *    and the row above is quiet.
 * Parameters: X_NAME, X_RUN, X_RMAX, X_PRIOR. */
#define XN(x) X_CAT(x, X_NAME)
#define X_CAT(a, b) X_CAT2(a, b)
#define X_CAT2(a, b) a##_##b

#ifndef X_SHARED_DONE
#define X_SHARED_DONE
#ifndef X_R0
#define X_R0 1
#endif
#ifndef X_RSTEP
#define X_RSTEP 1
#endif
#ifndef X_RMAX
#define X_RMAX 6
#endif
#ifndef X_POFF
#define X_POFF 4
#endif
#ifndef X_PDECAY
#define X_PDECAY 2
#endif
#ifndef X_PCNT
#define X_PCNT 2
#endif
#define X_ESC 15
#define X_RUNLEN 8
typedef struct { uint16_t c[32] __attribute__((aligned(64))); } x_cdf_t;   /* [0..15] cdf, [16] 32768, [17] count */
typedef struct { uint16_t p, k; } x_prob_t;
typedef struct {
    x_cdf_t cdf[4][32];
    x_prob_t m1[4][64][3], m2[4][64][2], sg[4][9], esc[4][64], run[4][2];
} x_model_t;

static void x_prior(uint16_t *c, unsigned ctx, int on, int off2, int decay)
{
    /* weight of E = e: 2**(12 - min(12, |2e - (ctx - off2)| * decay / 2)); integer */
    uint32_t w[16], tot = 0;
    for (int e = 0; e < 16; e++) {
        int d = 2 * e - ((int)ctx - off2);
        if (d < 0) d = -d;
        d = d * decay / 2;
        w[e] = on ? 1u << (12 - (d < 12 ? d : 12)) : 1;
        tot += w[e];
    }
    uint32_t acc = 0;
    for (int e = 0; e < 16; e++) { c[e] = (uint16_t)(e + (uint32_t)(((uint64_t)(32768 - 16) * acc) / tot)); acc += w[e]; }
    c[16] = 32768;
}
static void x_reset(x_model_t *m, int prior)
{
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 32; j++) {
            memset(m->cdf[k][j].c, 0, sizeof m->cdf[k][j].c);
            x_prior(m->cdf[k][j].c, (unsigned)j, prior, X_POFF, X_PDECAY);
            m->cdf[k][j].c[17] = prior ? X_PCNT : 0;
        }
    x_prob_t *p = &m->m1[0][0][0];
    const size_t n = (sizeof *m - sizeof m->cdf) / sizeof *p;
    for (size_t i = 0; i < n; i++) p[i] = (x_prob_t){32768, 1};
}
static uint16_t x_hi[16] __attribute__((aligned(32)));
static void x_init(void) { for (int i = 0; i < 16; i++) x_hi[i] = (uint16_t)(32768 - 16 + i); }

static inline unsigned x_search(const uint16_t *c, unsigned q)
{
#if defined(__AVX2__)
    const __m256i g = _mm256_cmpgt_epi16(_mm256_load_si256((const __m256i *)c), _mm256_set1_epi16((short)q));
    return 15u - ((unsigned)__builtin_popcount((unsigned)_mm256_movemask_epi8(g)) >> 1);
#else
    unsigned n = 0;
    for (int i = 1; i < 16; i++) n += c[i] <= q;
    return n;
#endif
}
static inline void x_update(uint16_t *c, unsigned sym, unsigned rmax)
{
    const unsigned cnt = c[17];
    const unsigned rate = X_R0 + (cnt >> X_RSTEP) < rmax ? X_R0 + (cnt >> X_RSTEP) : rmax;
    c[17] = (uint16_t)(cnt + (X_R0 + (cnt >> X_RSTEP) < rmax));
#if defined(__AVX2__)
    const __m256i io = _mm256_setr_epi16(0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15);
    __m256i a = _mm256_load_si256((const __m256i *)c);
    const __m256i t = _mm256_blendv_epi8(io, _mm256_load_si256((const __m256i *)x_hi), _mm256_cmpgt_epi16(io, _mm256_set1_epi16((short)sym)));
    a = _mm256_add_epi16(a, _mm256_sra_epi16(_mm256_sub_epi16(t, a), _mm_cvtsi32_si128((int)rate)));
    _mm256_store_si256((__m256i *)c, a);
#else
    for (int i = 0; i < 16; i++) {
        const int t = i <= (int)sym ? i : x_hi[i];
        c[i] = (uint16_t)((int)c[i] + ((t - (int)c[i]) >> rate));
    }
#endif
}

/* ---- encoder ---- */
typedef struct { buf_t *out; uint64_t low; uint32_t range; uint8_t cache; uint64_t csize; } x_enc_t;
static void x_enc_init(x_enc_t *e, buf_t *out) { e->out = out; e->low = 0; e->range = 0xFFFFFFFFu; e->cache = 0; e->csize = 1; }
static inline void x_shift_low(x_enc_t *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        const uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t byte = e->cache;
        do { buf_reserve(e->out, 1); e->out->data[e->out->len++] = (uint8_t)(byte + carry); byte = 0xFF; } while (--e->csize != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->csize++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}
static inline void x_norm_enc(x_enc_t *e) { while (e->range < (1u << 24)) { e->range <<= 8; x_shift_low(e); } }
static inline void x_adapt(x_prob_t *s, unsigned bit)
{
#ifdef X_FIXADAPT
    s->p = (uint16_t)(s->p + (((int)(bit ? 1 : 65535) - (int)s->p) >> 5)); return;
#endif
    const unsigned up = (65536u - s->p) >> s->k, dn = s->p >> s->k;
    s->p = (uint16_t)(bit ? s->p - dn : s->p + up);
    s->k += s->k < 6;
}
static inline void x_enc_bit(x_enc_t *e, x_prob_t *p, unsigned bit)
{
    const uint32_t bound = (e->range >> 16) * p->p;
    if (bit) { e->low += bound; e->range -= bound; } else e->range = bound;
    x_adapt(p, bit);
    x_norm_enc(e);
}
static inline void x_enc_sym(x_enc_t *e, uint16_t *c, unsigned sym)
{
    const uint32_t r = e->range >> 15, lo = r * c[sym];
    e->low += lo;
    e->range = sym == 15 ? e->range - lo : r * (uint32_t)(c[sym + 1] - c[sym]);
    x_update(c, sym, X_RMAX);
    x_norm_enc(e);
}
static inline unsigned x_tctx(unsigned c, unsigned E) { const int o = (int)(c >> 1) - (int)E - 2; return o < 0 ? 0u : o == 0 ? 1u : 2u; }
#endif

static inline void XN(x_enc_coef)(x_enc_t *e, bw_t *bw, x_model_t *m, int cls, unsigned c, unsigned sctx, int32_t v)
{
    const uint32_t mg = iabs32(v);
    const unsigned E = bitlen(mg);
    x_enc_sym(e, m->cdf[cls][c].c, E < X_ESC ? E : X_ESC);
    if (E >= X_ESC) { for (unsigned i = X_ESC; i < E; i++) x_enc_bit(e, &m->esc[cls][i], 1); x_enc_bit(e, &m->esc[cls][E], 0); }
    if (E >= 2) {
        const unsigned b1 = (mg >> (E - 2)) & 1u;
        x_enc_bit(e, &m->m1[cls][E][x_tctx(c, E)], b1);
        if (E >= 3) {
            x_enc_bit(e, &m->m2[cls][E][b1], (mg >> (E - 3)) & 1u);
            bw_put(bw, mg, (int)E - 3);
        }
    }
    if (E) x_enc_bit(e, &m->sg[cls][sctx], v < 0);
}

/* quiet: the row above has nothing non-zero from x - 1 to x + RUNLEN */
static size_t XN(x_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static x_model_t m;
    x_reset(&m, X_PRIOR);
    buf_t rc = {0}, raw = {0};
    x_enc_t e; x_enc_init(&e, &rc);
    bw_t bw; bw_init(&bw, &raw);
    (void)rowmem;
    for (int bi = 0; bi < p->nb; bi++) {
        const band_t *b = &p->b[bi];
        const int w = b->w;
        for (int y = 0; y < b->h; y++) {
            const int32_t *row = b->v + (size_t)y * w, *rup = y ? row - w : NULL;
#define XMAGQ(v_) ((uint32_t)(iabs32(v_) > 0x3FFF ? 0x3FFF : iabs32(v_)))
#define XSGN(v_) ((v_) < 0 ? 0u : (v_) > 0 ? 2u : 1u)
            int plain_until = 0;
            for (int x = 0; x < w; x++) {
                const uint32_t W = x ? XMAGQ(row[x - 1]) : 0, N = rup ? XMAGQ(rup[x]) : 0;
                const uint32_t NW = rup && x ? XMAGQ(rup[x - 1]) : 0, NE = rup && x + 1 < w ? XMAGQ(rup[x + 1]) : 0;
                const uint32_t s = 2 * W + 2 * N + NW + NE;
#if X_RUN
                if (s == 0 && x >= plain_until && x + X_RUNLEN <= w) {
                    int quiet = 1;
                    if (rup) for (int i = x + 2; i <= x + X_RUNLEN && i < w; i++) quiet &= rup[i] == 0;
                    int zero = 1;
                    for (int i = 0; i < X_RUNLEN; i++) zero &= row[x + i] == 0;
                    x_enc_bit(&e, &m.run[b->cls][quiet], !zero);
                    if (zero) { x += X_RUNLEN - 1; continue; }
                    plain_until = x + X_RUNLEN;
                }
#endif
                const unsigned c = magctx(s);
                const unsigned sctx = 3u * (x ? XSGN(row[x - 1]) : 1u) + (rup ? XSGN(rup[x]) : 1u);
                XN(x_enc_coef)(&e, &bw, &m, b->cls, c, sctx, row[x]);
            }
        }
    }
    for (int i = 0; i < 5; i++) x_shift_low(&e);
    bw_flush(&bw);
    const size_t start = out->len;
    buf_reserve(out, 4 + rc.len + raw.len);
    const uint32_t n = (uint32_t)rc.len;
    memcpy(out->data + out->len, &n, 4); out->len += 4;
    memcpy(out->data + out->len, rc.data, rc.len); out->len += rc.len;
    memcpy(out->data + out->len, raw.data, raw.len); out->len += raw.len;
    free(rc.data); free(raw.data);
    return out->len - start;
}

/* ---- decoder: state in locals ---- */
#define X_NORM() do { if (range < (1u << 24)) { range <<= 8; code = (code << 8) | *ip++; \
        if (range < (1u << 24)) { range <<= 8; code = (code << 8) | *ip++; } } } while (0)
#define X_BIT(pp, bit) do { x_prob_t *p_ = (pp); const uint32_t bound_ = (range >> 16) * p_->p; \
        (bit) = code >= bound_; code -= bound_ & (0u - (bit)); range = (bit) ? range - bound_ : bound_; \
        x_adapt(p_, (bit)); X_NORM(); } while (0)

static int XN(x_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static x_model_t m;
    (void)len;
    x_reset(&m, X_PRIOR);
    uint32_t n; memcpy(&n, data, 4);
    const uint8_t *ip = data + 4 + 1;
    uint32_t range = 0xFFFFFFFFu, code = (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
    ip += 4;
    const uint8_t *bp = data + 4 + n; uint64_t bbuf = 0; unsigned bcnt = 0;
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        const int w = b->w, stride = w + 2 + X_RUNLEN;
        uint16_t *up = rowmem, *cur = rowmem + stride, *pre = rowmem + 2 * stride;
        for (int i = 0; i < 2 * stride; i++) rowmem[i] = 1;
        x_cdf_t *cdfs = m.cdf[b->cls];
        x_prob_t *sg = m.sg[b->cls];
        for (int y = 0; y < b->h; y++) {
            /* the row above's part of every context sum */
            for (int x = 0; x < w; x++) pre[x] = (uint16_t)(((2u * (up[x + 1] >> 2) + (up[x] >> 2) + (up[x + 2] >> 2)) > 0xFFFF) ? 0xFFFF : (2u * (up[x + 1] >> 2) + (up[x] >> 2) + (up[x + 2] >> 2)));
            int32_t *row = b->v + (size_t)y * w;
            uint32_t rW = 1;
            int plain_until = 0;
            for (int x = 0; x < w; x++) {
                const uint32_t s = 2u * (rW >> 2) + pre[x];
#if X_RUN
                if (UNLIKELY(s == 0) && x >= plain_until && x + X_RUNLEN <= w) {
                    unsigned quiet = 1;
                    for (int i = x + 2; i <= x + X_RUNLEN && i < w; i++) quiet &= (up[i + 1] >> 2) == 0;
                    unsigned nz; X_BIT(&m.run[b->cls][quiet], nz);
                    if (!nz) {
                        for (int i = 0; i < X_RUNLEN; i++) { row[x + i] = 0; cur[x + 1 + i] = 1; }
                        x += X_RUNLEN - 1; rW = 1;
                        continue;
                    }
                    plain_until = x + X_RUNLEN;
                }
#endif
                const unsigned c = LIKELY(s < CTX_LUT_N) ? ctx_lut[s] : magctx(s);
                const unsigned sctx = 3u * (rW & 3) + (up[x + 1] & 3);
                uint16_t *cdf = cdfs[c].c;
                const uint32_t r = range >> 15;
#ifdef X_MULSEARCH
                unsigned sym;
                {
                    const __m256i bias = _mm256_set1_epi32((int)0x80000000u);
                    const __m256i rv = _mm256_set1_epi32((int)r), cv = _mm256_xor_si256(_mm256_set1_epi32((int)code), bias);
                    const __m128i lo8 = _mm_load_si128((const __m128i *)cdf), hi8 = _mm_load_si128((const __m128i *)(cdf + 8));
                    const __m256i pa = _mm256_xor_si256(_mm256_mullo_epi32(_mm256_cvtepu16_epi32(lo8), rv), bias);
                    const __m256i pb = _mm256_xor_si256(_mm256_mullo_epi32(_mm256_cvtepu16_epi32(hi8), rv), bias);
                    const unsigned ga = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(pa, cv)));
                    const unsigned gb = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(pb, cv)));
                    sym = 15u - (unsigned)__builtin_popcount(ga | gb << 8);
                }
#else
                uint32_t q = code / r; q = q < 32767 ? q : 32767;
                const unsigned sym = x_search(cdf, q);
#endif
                const uint32_t lo = r * cdf[sym];
                code -= lo;
                range = sym == 15 ? range - lo : r * (uint32_t)(cdf[sym + 1] - cdf[sym]);
                x_update(cdf, sym, X_RMAX);
                X_NORM();
                unsigned E = sym;
                if (UNLIKELY(E == X_ESC)) { unsigned bit; do { X_BIT(&m.esc[b->cls][E], bit); E += bit; } while (bit && E < 40); }
                int32_t v = 0;
                uint32_t entry = 1;
                if (E) {
                    uint32_t mg = 1u << (E - 1);
                    if (E >= 2) {
                        unsigned b1; X_BIT(&m.m1[b->cls][E][x_tctx(c, E)], b1);
                        mg |= b1 << (E - 2);
                        if (E >= 3) {
                            unsigned b2; X_BIT(&m.m2[b->cls][E][b1], b2);
                            mg |= b2 << (E - 3);
                            { uint64_t wd; memcpy(&wd, bp, 8); bbuf |= wd << bcnt; bp += (63 - bcnt) >> 3; bcnt |= 56; }
                            mg |= (uint32_t)(bbuf & ((1u << (E - 3)) - 1)); bbuf >>= E - 3; bcnt -= E - 3;
                        }
                    }
                    unsigned neg; X_BIT(&sg[sctx], neg);
                    v = (int32_t)((mg ^ (0u - neg)) + neg);
                    entry = (mg > 0x3FFF ? 0x3FFF : mg) << 2 | (2u - 2u * neg);
                }
                row[x] = v;
                cur[x + 1] = (uint16_t)entry;
                rW = entry;
            }
            uint16_t *t = up; up = cur; cur = t;
        }
    }
    return 1;
}
#undef XN
#undef X_CAT
#undef X_CAT2
