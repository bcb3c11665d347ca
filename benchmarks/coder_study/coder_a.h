/* Candidate A: adaptive multi-symbol rANS.
 * Template parameters:
 *   A_NAME     suffix
 *   A_TOPBIT   1: first mantissa bit modelled (binary adaptive, per class x E), 0: raw
 *   A_CTX(c)   map of the 0..31 magnitude context to the context used (< 32)
 *   A_RATE0    base adaptation shift (count based: +1 after 16, +1 after 32 symbols)
 * Symbol = min(E, 15); 15 escapes with E-15 in 5 raw bits.  Raw bits (mantissa
 * below the leading one [and below the modelled one], then sign) go to a
 * separate LSB-first bit stream.  Piece = u32 length of rANS part | rANS 16-bit
 * words | raw bits. */
#include <immintrin.h>

#define AN(x) A_CAT(x, A_NAME)
#define A_CAT(a, b) A_CAT2(a, b)
#define A_CAT2(a, b) a##_##b

#ifndef A_SHARED_DONE
#define A_SHARED_DONE
typedef struct { uint16_t cdf[32] __attribute__((aligned(32))); } a_cdf_t;  /* [0..15] cdf, [16]=32768, [17]=count */
typedef struct {
    a_cdf_t c[4][32];
    uint16_t top[4][64];
    uint16_t sgn[4][16];
} a_model_t;
static void a_model_reset(a_model_t *m)
{
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 32; j++) {
            for (int i = 0; i < 16; i++) m->c[k][j].cdf[i] = (uint16_t)(i * 2048);
            m->c[k][j].cdf[16] = 32768;
            m->c[k][j].cdf[17] = 0;
        }
    for (int k = 0; k < 4; k++) for (int j = 0; j < 64; j++) m->top[k][j] = 16384;
    for (int k = 0; k < 4; k++) for (int j = 0; j < 16; j++) m->sgn[k][j] = 16384;
}
static inline unsigned a_search(const uint16_t *cdf, unsigned slot)
{
#ifdef __AVX2__
    __m256i c = _mm256_load_si256((const __m256i *)cdf);
    __m256i gt = _mm256_cmpgt_epi16(c, _mm256_set1_epi16((short)slot));
    unsigned m = (unsigned)_mm256_movemask_epi8(gt);     /* 2 bits per lane */
    return ((unsigned)__builtin_ctzll((uint64_t)m | (1ull << 32)) >> 1) - 1;
#else
    __m128i s = _mm_set1_epi16((short)slot);
    __m128i g0 = _mm_cmpgt_epi16(_mm_load_si128((const __m128i *)cdf), s);
    __m128i g1 = _mm_cmpgt_epi16(_mm_load_si128((const __m128i *)(cdf + 8)), s);
    unsigned m = (unsigned)_mm_movemask_epi8(_mm_packs_epi16(g0, g1));
    return (unsigned)__builtin_ctz(m | 0x10000u) - 1;
#endif
}
static inline void a_update(uint16_t *cdf, unsigned sym, int rate)
{
#ifdef __AVX2__
    const __m256i iota = _mm256_setr_epi16(0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15);
    __m256i c = _mm256_load_si256((const __m256i *)cdf);
    __m256i t = _mm256_add_epi16(iota, _mm256_and_si256(_mm256_cmpgt_epi16(iota, _mm256_set1_epi16((short)sym)),
                                                         _mm256_set1_epi16(32752)));
    c = _mm256_add_epi16(c, _mm256_sra_epi16(_mm256_sub_epi16(t, c), _mm_cvtsi32_si128(rate)));
    _mm256_store_si256((__m256i *)cdf, c);
#else
    const __m128i io0 = _mm_setr_epi16(0,1,2,3,4,5,6,7), io1 = _mm_setr_epi16(8,9,10,11,12,13,14,15);
    const __m128i big = _mm_set1_epi16(32752), s = _mm_set1_epi16((short)sym), r = _mm_cvtsi32_si128(rate);
    __m128i c0 = _mm_load_si128((const __m128i *)cdf), c1 = _mm_load_si128((const __m128i *)(cdf + 8));
    __m128i t0 = _mm_add_epi16(io0, _mm_and_si128(_mm_cmpgt_epi16(io0, s), big));
    __m128i t1 = _mm_add_epi16(io1, _mm_and_si128(_mm_cmpgt_epi16(io1, s), big));
    c0 = _mm_add_epi16(c0, _mm_sra_epi16(_mm_sub_epi16(t0, c0), r));
    c1 = _mm_add_epi16(c1, _mm_sra_epi16(_mm_sub_epi16(t1, c1), r));
    _mm_store_si128((__m128i *)cdf, c0);
    _mm_store_si128((__m128i *)(cdf + 8), c1);
#endif
}
/* encoder-side rANS: symbols recorded forward, coded backward */
typedef struct { uint32_t *rec; size_t n, cap; } a_rec_t;
static inline void a_rec_put(a_rec_t *r, unsigned start, unsigned freq)
{
    if (r->n == r->cap) { r->cap = r->cap ? 2 * r->cap : 65536; r->rec = realloc(r->rec, r->cap * 4); }
    r->rec[r->n++] = (uint32_t)start << 16 | freq;
}
static void a_rans_flush(a_rec_t *r, buf_t *out)
{
    uint16_t *words = malloc((r->n * 2 + 4) * sizeof *words);
    size_t nw = 0;
    uint32_t x = 1u << 16;
    for (size_t i = r->n; i-- > 0;) {
        const uint32_t start = r->rec[i] >> 16, freq = r->rec[i] & 0xFFFF;
        if (x >= (freq << 17)) { words[nw++] = (uint16_t)x; x >>= 16; }
        x = ((x / freq) << 15) + (x % freq) + start;
    }
    words[nw++] = (uint16_t)x; words[nw++] = (uint16_t)(x >> 16);
    uint32_t bytes = (uint32_t)(nw * 2);
    buf_reserve(out, 4 + bytes);
    memcpy(out->data + out->len, &bytes, 4); out->len += 4;
    for (size_t i = 0; i < nw; i++) { uint16_t w = words[nw - 1 - i]; memcpy(out->data + out->len, &w, 2); out->len += 2; }
    free(words);
    r->n = 0;
}
static inline void a_enc_bin(a_rec_t *rec, uint16_t *pt, unsigned bit)
{
    if (!bit) a_rec_put(rec, 0, *pt); else a_rec_put(rec, *pt, 32768 - *pt);
    *pt = (uint16_t)(*pt + (((int)(bit ? 1 : 32767) - (int)*pt) >> 5));
}
static inline unsigned a_dec_bin(uint32_t *xs, const uint16_t **in, uint16_t *pt)
{
    uint32_t x = *xs;
    const unsigned sl = x & 0x7FFF, p0 = *pt;
    const unsigned bit = sl >= p0;
    if (!bit) x = p0 * (x >> 15) + sl; else x = (32768 - p0) * (x >> 15) + sl - p0;
    *pt = (uint16_t)(p0 + (((int)(bit ? 1 : 32767) - (int)p0) >> 5));
    if (x < 65536) x = x << 16 | *(*in)++;
    *xs = x;
    return bit;
}
#endif

/* Rows: saturated magnitudes (uint16) and, with A_SIGN, sign classes (uint8),
 * previous and current row, padded by one on both sides. */
#ifndef A_SIGN
#define A_SIGN 0
#endif
static size_t AN(a_enc_piece)(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static a_model_t m; static a_rec_t rec;
    a_model_reset(&m);
    buf_t raw = {0};
    bw_t bw; bw_init(&bw, &raw);
    const size_t start_len = out->len;
    for (int bi = 0; bi < p->nb; bi++) {
        const band_t *b = &p->b[bi];
        uint16_t *up = rowmem, *cur = rowmem + b->w + 2;
        uint8_t *sup = (uint8_t *)(rowmem + 2 * (b->w + 2)), *scur = sup + b->w + 2;
        memset(rowmem, 0, 2 * (b->w + 2) * sizeof *rowmem);
        memset(sup, 1, 2 * (b->w + 2));
        for (int y = 0; y < b->h; y++) {
            const int32_t *row = b->v + (size_t)y * b->w;
            for (int x = 0; x < b->w; x++) {
                const uint32_t s = 2u * cur[x] + 2u * up[x + 1] + up[x] + up[x + 2];
                uint16_t *cdf = m.c[b->cls][A_CTX(magctx(s))].cdf;
                const uint32_t mg = iabs32(row[x]);
                const unsigned E = bitlen(mg);
                const unsigned sym = E < 15 ? E : 15;
                a_rec_put(&rec, cdf[sym], (unsigned)cdf[sym + 1] - cdf[sym]);
                const unsigned cnt = cdf[17];
                a_update(cdf, sym, A_RATE0 + (cnt > 15) + (cnt > 31));
                cdf[17] = (uint16_t)(cnt + (cnt < 32));
                if (sym == 15) bw_put(&bw, E - 15, 5);
                if (E >= 2) {
#if A_TOPBIT
                    a_enc_bin(&rec, &m.top[b->cls][E], (mg >> (E - 2)) & 1u);
                    bw_put(&bw, mg, (int)E - 2);
#else
                    bw_put(&bw, mg, (int)E - 1);
#endif
                }
                if (E) {
#if A_SIGN
                    a_enc_bin(&rec, &m.sgn[b->cls][3 * scur[x] + sup[x + 1]], row[x] < 0);
#else
                    bw_put(&bw, row[x] < 0, 1);
#endif
                }
                cur[x + 1] = mg > 0xFFFF ? 0xFFFF : (uint16_t)mg;
                scur[x + 1] = row[x] < 0 ? 0 : row[x] > 0 ? 2 : 1;
            }
            uint16_t *t = up; up = cur; cur = t;
            uint8_t *t8 = sup; sup = scur; scur = t8;
        }
    }
    bw_flush(&bw);
    a_rans_flush(&rec, out);
    buf_reserve(out, raw.len);
    memcpy(out->data + out->len, raw.data, raw.len);
    out->len += raw.len;
    free(raw.data);
    return out->len - start_len;
}

static int AN(a_dec_piece)(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    static a_model_t m;
    a_model_reset(&m);
    uint32_t rbytes; memcpy(&rbytes, data, 4);
    const uint16_t *in = (const uint16_t *)(data + 4);
    br_t br; br_init(&br, data + 4 + rbytes);
    uint32_t x = (uint32_t)in[0] << 16 | in[1];
    in += 2;
    (void)len;
    for (int bi = 0; bi < p->nb; bi++) {
        band_t *b = &p->b[bi];
        uint16_t *up = rowmem, *cur = rowmem + b->w + 2;
        uint8_t *sup = (uint8_t *)(rowmem + 2 * (b->w + 2)), *scur = sup + b->w + 2;
        memset(rowmem, 0, 2 * (b->w + 2) * sizeof *rowmem);
        memset(sup, 1, 2 * (b->w + 2));
        a_cdf_t *cls = m.c[b->cls];
        uint16_t *tops = m.top[b->cls];
        uint16_t *sgns = m.sgn[b->cls];
        (void)tops; (void)sgns;
        for (int y = 0; y < b->h; y++) {
            int32_t *row = b->v + (size_t)y * b->w;
            for (int xx = 0; xx < b->w; xx++) {
                const uint32_t s = 2u * cur[xx] + 2u * up[xx + 1] + up[xx] + up[xx + 2];
                uint16_t *cdf = cls[A_CTX(magctx(s))].cdf;
                const unsigned slot = x & 0x7FFF;
                const unsigned sym = a_search(cdf, slot);
                const unsigned st = cdf[sym];
                x = ((unsigned)cdf[sym + 1] - st) * (x >> 15) + slot - st;
                if (x < 65536) x = x << 16 | *in++;
                const unsigned cnt = cdf[17];
                a_update(cdf, sym, A_RATE0 + (cnt > 15) + (cnt > 31));
                cdf[17] = (uint16_t)(cnt + (cnt < 32));
                unsigned E = sym;
                int32_t v = 0;
                uint32_t mg = 0;
                unsigned sc = 1;
                if (E) {
                    br_refill(&br);
                    if (UNLIKELY(E == 15)) E += (unsigned)br_get(&br, 5);
                    mg = 1u << (E - 1);
#if A_TOPBIT
                    if (E >= 2) {
                        mg |= a_dec_bin(&x, &in, &tops[E]) << (E - 2);
                        mg |= (uint32_t)br_get(&br, E - 2);
                    }
#else
                    mg |= (uint32_t)br_get(&br, E - 1);
#endif
#if A_SIGN
                    const unsigned neg = a_dec_bin(&x, &in, &sgns[3 * scur[xx] + sup[xx + 1]]);
#else
                    const unsigned neg = (unsigned)br_get(&br, 1);
#endif
                    v = neg ? -(int32_t)mg : (int32_t)mg;
                    sc = neg ? 0 : 2;
                }
                row[xx] = v;
                cur[xx + 1] = mg > 0xFFFF ? 0xFFFF : (uint16_t)mg;
                scur[xx + 1] = (uint8_t)sc;
            }
            uint16_t *t = up; up = cur; cur = t;
            uint8_t *t8 = sup; sup = scur; scur = t8;
        }
    }
    return 1;
}

#undef AN
#undef A_SIGN
#undef A_CAT
#undef A_CAT2
