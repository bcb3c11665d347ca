/* Prototype bench: real 5/3 wavelet coefficients from the repo's transform,
 * current coder vs candidates: size, round trip, decode speed. */
#define _GNU_SOURCE
#include "common.h"
#include "internal.h"
#include <time.h>
#include <math.h>
#include <valgrind/callgrind.h>

/* ---------------- image -> pieces ---------------- */
static int32_t med_predict(const int32_t *row, const int32_t *up, int x)
{
    if (up && x) {
        const int32_t a = row[x - 1], n = up[x], c = up[x - 1];
        const int32_t hi = a > n ? a : n, lo = a > n ? n : a;
        return c >= hi ? lo : (c <= lo ? hi : a + n - c);
    }
    if (x) return row[x - 1];
    if (up) return up[x];
    return 0;
}

static void build_image(const char *path, int levels, image_t *im, int32_t **coef_out, int *H, int *W)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    int32_t hw[2];
    if (fread(hw, 4, 2, f) != 2) exit(1);
    const int h = hw[0], w = hw[1];
    int32_t *buf = malloc((size_t)h * w * 4);
    if (fread(buf, 4, (size_t)h * w, f) != (size_t)h * w) exit(1);
    fclose(f);
    *H = h; *W = w;
    int32_t *orig = malloc((size_t)h * w * 4);
    memcpy(orig, buf, (size_t)h * w * 4);
    *coef_out = orig;
    size_t dims[3] = {1, (size_t)h, (size_t)w};
    int32_t *tmp = malloc(pj2k_transform_tmp_elems(dims) * 4);
    pj2k_kernels_select()->fwd_rev_i32(buf, dims, levels, 0, tmp);
    free(tmp);
    if (getenv("PJQ")) {   /* emulate a lossy stream: quantise with a dead zone */
        const int q = atoi(getenv("PJQ"));
        for (size_t i = 0; i < (size_t)h * w; i++) buf[i] /= q;
    }
    memset(im, 0, sizeof *im);
    im->ncoef = (size_t)h * w;
    im->maxw = w;
    /* piece 0: low band residuals */
    {
        const int lh = (int)pj2k_ceil_shift(h, levels), lw = (int)pj2k_ceil_shift(w, levels);
        band_t *b = &im->p[0].b[0];
        b->h = lh; b->w = lw; b->cls = 0;
        int32_t *v = malloc((size_t)lh * lw * 4), *res = malloc((size_t)lh * lw * 4);
        for (int y = 0; y < lh; y++) for (int x = 0; x < lw; x++) v[y * lw + x] = buf[(size_t)y * w + x];
        for (int y = 0; y < lh; y++)
            for (int x = 0; x < lw; x++)
                res[y * lw + x] = v[y * lw + x] - med_predict(v + y * lw, y ? v + (y - 1) * lw : NULL, x);
        free(v);
        b->v = res;
        im->p[0].nb = 1;
    }
    for (int r = 1; r <= levels; r++) {
        const int level = levels - r + 1;
        const int ey = (int)pj2k_ceil_shift(h, level - 1), ex = (int)pj2k_ceil_shift(w, level - 1);
        const int ly = (ey + 1) / 2, lx = (ex + 1) / 2;
        piece_t *p = &im->p[r];
        p->nb = 0;
        for (int o = 1; o < 4; o++) {
            const int hy = o & 1, hx = (o >> 1) & 1;
            band_t *b = &p->b[p->nb];
            b->h = hy ? ey - ly : ly;
            b->w = hx ? ex - lx : lx;
            b->cls = hy + hx;
            if (b->h <= 0 || b->w <= 0) continue;
            b->v = malloc((size_t)b->h * b->w * 4);
            const int oy = hy ? ly : 0, ox = hx ? lx : 0;
            for (int y = 0; y < b->h; y++)
                for (int x = 0; x < b->w; x++) b->v[(size_t)y * b->w + x] = buf[(size_t)(oy + y) * w + ox + x];
            p->nb++;
        }
    }
    im->npieces = levels + 1;
    free(buf);
}

/* ---------------- current coder (the repo's own functions) ---------------- */
static pj2k_band piece_band(const band_t *b)
{
    return (pj2k_band){.n = {1, (size_t)b->h, (size_t)b->w}, .stride = {(ptrdiff_t)b->h * b->w, b->w, 1},
                       .cls = b->cls};
}
/* Code the piece with the repo's band coder from model m as it is, `passes`
 * times (the last pass is kept; before a later pass the rate shifts are
 * lowered to at most `cap`), appending the bytes to out. */
static size_t repo_enc(const piece_t *p, buf_t *out, pj2k_model *m, int passes, unsigned cap)
{
    pj2k_bytes bytes = {0};
    pj2k_rc_encoder e;
    for (int pass = 0; pass < passes; pass++) {
        bytes.length = 0;
        pj2k_rc_encoder_init(&e, &bytes);
        if (pass) {
            pj2k_prob *q = &m->prob.exponent[0][0][0];
            for (size_t i = 0; i < sizeof m->prob / sizeof *q; i++) if (q[i].shift > cap) q[i].shift = (uint16_t)cap;
        }
        for (int i = 0; i < p->nb; i++) {
            const pj2k_band pb = piece_band(&p->b[i]);
            pj2k_encode_band_i32(&e, m, p->b[i].v, &pb, 0, NULL);
        }
        pj2k_rc_encoder_finish(&e);
    }
    buf_reserve(out, bytes.length);
    memcpy(out->data + out->len, bytes.data, bytes.length);
    out->len += bytes.length;
    free(bytes.data);
    return bytes.length;
}
static size_t base_enc_piece(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static pj2k_model m;
    m.rows = rowmem;
    pj2k_model_reset(&m, 3);   /* version-3 rules */
    return repo_enc(p, out, &m, 1, 0);
}
static int base_dec_piece(const uint8_t *data, size_t len, piece_t *p, uint16_t *rowmem)
{
    pj2k_rc_decoder d;
    static pj2k_model m;
    m.rows = rowmem;
    pj2k_rc_decoder_init(&d, data, len);
    pj2k_model_reset(&m, 3);   /* version-3 rules */
    for (int i = 0; i < p->nb; i++) {
        const pj2k_band pb = piece_band(&p->b[i]);
        if (pj2k_decode_band_i32(&d, &m, p->b[i].v, &pb, 40, 0) != PJ2K_OK) return 0;
    }
    return d.pos == len;
}

/* oracle: the same coder starting from the probabilities a first pass over
 * the piece ended with (the learning cost's bound; rate shifts at most ORACLE_K) */
#ifndef ORACLE_K
#define ORACLE_K 6
#endif
static size_t oracle_enc_piece(const piece_t *p, buf_t *out, uint16_t *rowmem)
{
    static pj2k_model m;
    m.rows = rowmem;
    pj2k_model_reset(&m, 3);
    return repo_enc(p, out, &m, 2, ORACLE_K);
}
/* ---------------- candidates ---------------- */
#define A_NAME f16
#define A_TOPBIT 1
#define A_SIGN 1
#define A_CTX(c) (((c) + 1) >> 1)
#define A_RATE0 4
#include "coder_f.h"
#undef A_NAME
#undef A_TOPBIT
#undef A_CTX
#undef A_RATE0

#define A_NAME f16x
#define A_TOPBIT 1
#define A_SIGN 1
#define A_FIXRATE 1
#define A_CTX(c) (((c) + 1) >> 1)
#define A_RATE0 5
#include "coder_f.h"
#undef A_NAME
#undef A_TOPBIT
#undef A_CTX
#undef A_RATE0

#define A_NAME f32
#define A_TOPBIT 1
#define A_SIGN 1
#define A_CTX(c) (c)
#define A_RATE0 4
#include "coder_f.h"
#undef A_NAME
#undef A_TOPBIT
#undef A_CTX
#undef A_RATE0

#define L_NAME la
#define L_ADAPT 1
#define L_SIGN 1
#define L_TOP 1
#include "coder_l.h"
#undef L_NAME
#undef L_ADAPT
#undef L_SIGN
#undef L_TOP
#define L_NAME lans
#define L_ADAPT 1
#define L_SIGN 0
#define L_TOP 1
#include "coder_l.h"
#undef L_NAME
#undef L_ADAPT
#undef L_SIGN
#undef L_TOP
#define L_NAME ls
#define L_ADAPT 0
#define L_SIGN 1
#define L_TOP 1
#include "coder_l.h"
#undef L_NAME
#undef L_ADAPT
#undef L_SIGN
#undef L_TOP
#define L_NAME lsns
#define L_ADAPT 0
#define L_SIGN 0
#define L_TOP 1
#include "coder_l.h"
#undef L_NAME
#undef L_ADAPT
#undef L_SIGN
#undef L_TOP
#include "coder_g.h"
#define V_NAME vj1
#define V_JOINT 1
#define V_LANES 1
#define V_M2 1
#define V_RMAX 6
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define V_NAME vj2
#define V_JOINT 1
#define V_LANES 2
#define V_M2 1
#define V_RMAX 6
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define V_NAME vj4
#define V_JOINT 1
#define V_LANES 4
#define V_M2 1
#define V_RMAX 6
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define V_NAME vs1
#define V_JOINT 0
#define V_LANES 1
#define V_M2 1
#define V_RMAX 6
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define V_NAME vs2
#define V_JOINT 0
#define V_LANES 2
#define V_M2 1
#define V_RMAX 6
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define V_NAME vj2r5
#define V_JOINT 1
#define V_LANES 2
#define V_M2 1
#define V_RMAX 5
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define V_NAME vj2r7
#define V_JOINT 1
#define V_LANES 2
#define V_M2 1
#define V_RMAX 7
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define V_NAME vj2nm2
#define V_JOINT 1
#define V_LANES 2
#define V_M2 0
#define V_RMAX 6
#include "coder_v.h"
#undef V_NAME
#undef V_JOINT
#undef V_LANES
#undef V_M2
#undef V_RMAX
#define W_NAME w1
#define W_BITX w_bit
#define W_LANES 1
#define W_RAWSEP 0
#include "coder_w.h"
#undef W_NAME
#undef W_LANES
#undef W_RAWSEP
#undef W_BITX
#define W_NAME w2
#define W_BITX w_bit
#define W_LANES 2
#define W_RAWSEP 0
#include "coder_w.h"
#undef W_NAME
#undef W_LANES
#undef W_RAWSEP
#undef W_BITX
#define W_NAME w4
#define W_BITX w_bit
#define W_LANES 4
#define W_RAWSEP 0
#include "coder_w.h"
#undef W_NAME
#undef W_LANES
#undef W_RAWSEP
#undef W_BITX
#define W_NAME w1r
#define W_LANES 1
#define W_RAWSEP 1
#define W_BITX w_bitbl
#include "coder_w.h"
#undef W_NAME
#undef W_LANES
#undef W_RAWSEP
#undef W_BITX
#define W_NAME w2r
#define W_LANES 2
#define W_RAWSEP 1
#define W_BITX w_bitbl
#include "coder_w.h"
#undef W_NAME
#undef W_LANES
#undef W_RAWSEP
#undef W_BITX
#define W_NAME w4r
#define W_LANES 4
#define W_RAWSEP 1
#define W_BITX w_bitbl
#include "coder_w.h"
#undef W_NAME
#undef W_LANES
#undef W_RAWSEP
#undef W_BITX
#define S_NAME sw1
#define S_LANES 1
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 0
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw2
#define S_LANES 2
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 0
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw4
#define S_LANES 4
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 0
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw2l8
#define S_LANES 2
#define S_STRIP 0
#define S_LAG 8
#define S_MIN 0
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw4l8
#define S_LANES 4
#define S_STRIP 0
#define S_LAG 8
#define S_MIN 0
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss2
#define S_LANES 2
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 0
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss4
#define S_LANES 4
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 0
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw2m
#define S_LANES 2
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 8192
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw4m
#define S_LANES 4
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 8192
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss2m
#define S_LANES 2
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 8192
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss4m
#define S_LANES 4
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 8192
#define S_BL 0
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw1b
#define S_LANES 1
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 0
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw2b
#define S_LANES 2
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 0
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw4b
#define S_LANES 4
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 0
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss2b
#define S_LANES 2
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 0
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss4b
#define S_LANES 4
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 0
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss2mb
#define S_LANES 2
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 8192
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME ss4mb
#define S_LANES 4
#define S_STRIP 1
#define S_LAG 2
#define S_MIN 8192
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw2mb
#define S_LANES 2
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 8192
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define S_NAME sw4mb
#define S_LANES 4
#define S_STRIP 0
#define S_LAG 2
#define S_MIN 8192
#define S_BL 1
#include "coder_s.h"
#undef S_NAME
#undef S_LANES
#undef S_STRIP
#define SL_NAME sl1
#define SL_LANES 1
#define SL_MIN 0
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME sl2
#define SL_LANES 2
#define SL_MIN 0
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME sl4
#define SL_LANES 4
#define SL_MIN 0
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME sl2m
#define SL_LANES 2
#define SL_MIN 8192
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME sl4m
#define SL_LANES 4
#define SL_MIN 8192
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME slb1
#define SL_LANES 1
#define SL_MIN 0
#define SL_BLREN 1
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME slb2
#define SL_LANES 2
#define SL_MIN 0
#define SL_BLREN 1
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME slb4
#define SL_LANES 4
#define SL_MIN 0
#define SL_BLREN 1
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME slb2m
#define SL_LANES 2
#define SL_MIN 8192
#define SL_BLREN 1
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define SL_NAME slb4m
#define SL_LANES 4
#define SL_MIN 8192
#define SL_BLREN 1
#include "coder_sl.h"
#undef SL_NAME
#undef SL_LANES
#define X_NAME x0
#define X_RUN 0
#define X_PRIOR 0
#include "coder_x.h"
#undef X_NAME
#undef X_RUN
#undef X_PRIOR
#define X_NAME xp
#define X_RUN 0
#define X_PRIOR 1
#include "coder_x.h"
#undef X_NAME
#undef X_RUN
#undef X_PRIOR
#define X_NAME xpr
#define X_RUN 1
#define X_PRIOR 1
#include "coder_x.h"
#undef X_NAME
#undef X_RUN
#undef X_PRIOR
#define Y_NAME y0
#define Y_C0 0
#define Y_RUN 0
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#define Y_NAME y6
#define Y_C0 6
#define Y_RUN 0
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#define Y_NAME y10
#define Y_C0 10
#define Y_RUN 0
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#define Y_NAME y14
#define Y_C0 14
#define Y_RUN 0
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#define Y_NAME y99
#define Y_C0 99
#define Y_RUN 0
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#define Y_NAME y6r
#define Y_C0 6
#define Y_RUN 1
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#define Y_NAME y10r
#define Y_C0 10
#define Y_RUN 1
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#define Y_NAME y99r
#define Y_C0 99
#define Y_RUN 1
#include "coder_y.h"
#undef Y_NAME
#undef Y_C0
#undef Y_RUN
#include "analysis.h"

typedef struct {
    const char *name;
    size_t (*enc)(const piece_t *, buf_t *, uint16_t *);
    int (*dec)(const uint8_t *, size_t, piece_t *, uint16_t *);
} coder_t;
static const coder_t coders[] = {
    {"current", base_enc_piece, base_dec_piece},
    {"oracle", oracle_enc_piece, base_dec_piece},
    {"F16", a_enc_piece_f16, a_dec_piece_f16},
    {"F16fix5", a_enc_piece_f16x, a_dec_piece_f16x},
    {"F32", a_enc_piece_f32, a_dec_piece_f32},
    {"L_adapt", l_enc_piece_la, l_dec_piece_la},
    {"L_adapt_rawsign", l_enc_piece_lans, l_dec_piece_lans},
    {"L_static", l_enc_piece_ls, l_dec_piece_ls},
    {"L_static_rawsign", l_enc_piece_lsns, l_dec_piece_lsns},
    {"G_static_lut", g_enc_piece, g_dec_piece},
    {"y0", y_enc_piece_y0, y_dec_piece_y0},
    {"y6", y_enc_piece_y6, y_dec_piece_y6},
    {"y10", y_enc_piece_y10, y_dec_piece_y10},
    {"y14", y_enc_piece_y14, y_dec_piece_y14},
    {"y99", y_enc_piece_y99, y_dec_piece_y99},
    {"y6r", y_enc_piece_y6r, y_dec_piece_y6r},
    {"y10r", y_enc_piece_y10r, y_dec_piece_y10r},
    {"y99r", y_enc_piece_y99r, y_dec_piece_y99r},
    {"x0", x_enc_piece_x0, x_dec_piece_x0},
    {"xp", x_enc_piece_xp, x_dec_piece_xp},
    {"xpr", x_enc_piece_xpr, x_dec_piece_xpr},
    {"w1", w_enc_piece_w1, w_dec_piece_w1},
    {"w2", w_enc_piece_w2, w_dec_piece_w2},
    {"w4", w_enc_piece_w4, w_dec_piece_w4},
    {"w1r", w_enc_piece_w1r, w_dec_piece_w1r},
    {"w2r", w_enc_piece_w2r, w_dec_piece_w2r},
    {"w4r", w_enc_piece_w4r, w_dec_piece_w4r},
    {"sw1", s_enc_piece_sw1, s_dec_piece_sw1},
    {"sw2", s_enc_piece_sw2, s_dec_piece_sw2},
    {"sw4", s_enc_piece_sw4, s_dec_piece_sw4},
    {"sw2l8", s_enc_piece_sw2l8, s_dec_piece_sw2l8},
    {"sw4l8", s_enc_piece_sw4l8, s_dec_piece_sw4l8},
    {"ss2", s_enc_piece_ss2, s_dec_piece_ss2},
    {"ss4", s_enc_piece_ss4, s_dec_piece_ss4},
    {"sw2m", s_enc_piece_sw2m, s_dec_piece_sw2m},
    {"sw4m", s_enc_piece_sw4m, s_dec_piece_sw4m},
    {"ss2m", s_enc_piece_ss2m, s_dec_piece_ss2m},
    {"ss4m", s_enc_piece_ss4m, s_dec_piece_ss4m},
    {"sw1b", s_enc_piece_sw1b, s_dec_piece_sw1b},
    {"sw2b", s_enc_piece_sw2b, s_dec_piece_sw2b},
    {"sw4b", s_enc_piece_sw4b, s_dec_piece_sw4b},
    {"ss2b", s_enc_piece_ss2b, s_dec_piece_ss2b},
    {"ss4b", s_enc_piece_ss4b, s_dec_piece_ss4b},
    {"ss2mb", s_enc_piece_ss2mb, s_dec_piece_ss2mb},
    {"ss4mb", s_enc_piece_ss4mb, s_dec_piece_ss4mb},
    {"sw2mb", s_enc_piece_sw2mb, s_dec_piece_sw2mb},
    {"sw4mb", s_enc_piece_sw4mb, s_dec_piece_sw4mb},
    {"sl1", sl_enc_piece_sl1, sl_dec_piece_sl1},
    {"sl2", sl_enc_piece_sl2, sl_dec_piece_sl2},
    {"sl4", sl_enc_piece_sl4, sl_dec_piece_sl4},
    {"sl2m", sl_enc_piece_sl2m, sl_dec_piece_sl2m},
    {"sl4m", sl_enc_piece_sl4m, sl_dec_piece_sl4m},
    {"slb1", sl_enc_piece_slb1, sl_dec_piece_slb1},
    {"slb2", sl_enc_piece_slb2, sl_dec_piece_slb2},
    {"slb4", sl_enc_piece_slb4, sl_dec_piece_slb4},
    {"slb2m", sl_enc_piece_slb2m, sl_dec_piece_slb2m},
    {"slb4m", sl_enc_piece_slb4m, sl_dec_piece_slb4m},
    {"vj1", v_enc_piece_vj1, v_dec_piece_vj1},
    {"vj2", v_enc_piece_vj2, v_dec_piece_vj2},
    {"vj4", v_enc_piece_vj4, v_dec_piece_vj4},
    {"vs1", v_enc_piece_vs1, v_dec_piece_vs1},
    {"vs2", v_enc_piece_vs2, v_dec_piece_vs2},
    {"vj2r5", v_enc_piece_vj2r5, v_dec_piece_vj2r5},
    {"vj2r7", v_enc_piece_vj2r7, v_dec_piece_vj2r7},
    {"vj2nm2", v_enc_piece_vj2nm2, v_dec_piece_vj2nm2},
};
#define NCODERS (sizeof coders / sizeof *coders)

static image_t dst;  /* decode target with the same geometry */
static buf_t pieces[16];

static NOINLINE int decode_all(const coder_t *c, const image_t *im, uint16_t *rowmem)
{
    int ok = 1;
    for (int i = 0; i < im->npieces; i++) ok &= c->dec(pieces[i].data, pieces[i].len, &dst.p[i], rowmem);
    return ok;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: bench img.raw size|time|cg [coder] [reps]\n"); return 1; }
    image_t im;
    ctx_lut_init();
    g_init();
    x_init();
    int32_t *orig; int H, W;
    build_image(argv[1], 6, &im, &orig, &H, &W);
    dst = im;
    for (int i = 0; i < im.npieces; i++)
        for (int j = 0; j < im.p[i].nb; j++)
            dst.p[i].b[j].v = calloc((size_t)im.p[i].b[j].h * im.p[i].b[j].w, 4);
    uint16_t *rowmem = calloc(16 * ((size_t)im.maxw + 2) + 64, 2);
    const char *mode = argv[2];
    const char *only = argc > 3 ? argv[3] : NULL;
    int reps = argc > 4 ? atoi(argv[4]) : 20;

    if (!strcmp(mode, "analyse")) { analyse(&im, rowmem); static_entropy(&im); return 0; }
    if (!strcmp(mode, "size")) {
        /* public encoder total, for reference */
        pj2k_params prm; memset(&prm, 0, sizeof prm);
        prm.dtype = PJ2K_INT32; prm.ndim = 2; prm.shape[0] = H; prm.shape[1] = W;
        prm.naxes = 2; prm.axes[0] = 0; prm.axes[1] = 1; prm.colour_axis = -1; prm.levels = 6;
        prm.wavelet = PJ2K_WAVELET_53; prm.layers = 1;
        uint8_t *enc; size_t enclen;
        int st = pj2k_encode(&prm, orig, &enc, &enclen);
        printf("%-12s public pj2k_encode: %zu bytes (status %d)\n", argv[1], enclen, st);
        if (st == 0) pj2k_free(enc);
    }
    for (size_t ci = 0; ci < NCODERS; ci++) {
        const coder_t *c = &coders[ci];
        if (only && strcmp(only, "all") && strcmp(only, c->name)) continue;
        size_t total = 0;
        for (int i = 0; i < im.npieces; i++) {
            pieces[i].len = 0;
            total += c->enc(&im.p[i], &pieces[i], rowmem);
            buf_reserve(&pieces[i], 16);
            memset(pieces[i].data + pieces[i].len, 0, 16);   /* read padding */
        }
        if (!strcmp(mode, "cg")) {
            CALLGRIND_TOGGLE_COLLECT;
            int ok = decode_all(c, &im, rowmem);
            CALLGRIND_TOGGLE_COLLECT;
            printf("%s ok=%d ncoef=%zu\n", c->name, ok, im.ncoef);
            continue;
        }
        if (!strcmp(mode, "esize")) { printf("%-12s %-12s bytes %8zu\n", argv[1], c->name, total); continue; }
        int ok = decode_all(c, &im, rowmem);
        for (int i = 0; i < im.npieces && ok; i++)
            for (int j = 0; j < im.p[i].nb; j++)
                if (memcmp(im.p[i].b[j].v, dst.p[i].b[j].v, (size_t)im.p[i].b[j].h * im.p[i].b[j].w * 4)) {
                    ok = 0;
                    fprintf(stderr, "%s mismatch piece %d band %d\n", c->name, i, j);
                }
        double ns = 0;
        if (!strcmp(mode, "time")) {
            double best = 1e30;
            for (int k = 0; k < 5; k++) {
                double t0 = now();
                for (int r = 0; r < reps; r++) decode_all(c, &im, rowmem);
                double t = (now() - t0) / reps;
                if (t < best) best = t;
            }
            ns = best * 1e9 / im.ncoef;
        }
        printf("%-12s %-12s bytes %8zu  bpc %.4f  ok %d", argv[1], c->name, total, 8.0 * total / im.ncoef, ok);
        if (ns) printf("  ns/coef %.2f", ns);
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
