/* Template: coefficient coding for one coefficient type and rule set.
 * Expects COEF, COEF_MAX, UMAG (an unsigned type holding |COEF|), SFX(name)
 * and LEGACY (1: the decoders of format versions 1 and 2; 0: versions 3 to
 * 6, both directions); included by entropy.c after the range coder
 * primitives. */
#if LEGACY
#define DECODE_BIT decode_bit_legacy
#define DECODE_EVEN decode_bit_legacy
#else
#define DECODE_BIT decode_bit
#define DECODE_EVEN decode_bit_even
#endif

static inline UMAG SFX(mag)(COEF v) { return v < 0 ? (UMAG)0 - (UMAG)v : (UMAG)v; }
/* |v| >> shift for any shift up to 63 (layer shifts; a 32-bit UMAG has no
 * bits beyond its width) */
static inline UMAG SFX(mag_shr)(COEF v, int shift)
{
    return shift < (int)(8 * sizeof(UMAG)) ? SFX(mag)(v) >> shift : 0;
}
static inline unsigned SFX(sign3)(COEF v) { return v < 0 ? 0u : (v > 0 ? 2u : 1u); }

/* The neighbourhood of each coefficient (docs/FORMAT.md section 6) is read
 * from row buffers: the saturated magnitudes and the signs of the previous row
 * and of the current row so far, each padded with a zero (sign class 1) on
 * both sides, so the inner loop has no boundary tests and computes each
 * magnitude once.  Saturating at 0xFFFF keeps every context exact: any sum of
 * 2**15 or more maps to the last context anyway. */
typedef struct {
    uint16_t *mag_up, *mag_cur;     /* index x + 1 */
    uint16_t *sgn_up, *sgn_cur;     /* 16 bits, not 8: char stores would alias everything */
    uint16_t *par;                  /* parent magnitudes of the current row, index x; NULL: none */
    size_t parent_row;              /* the parent row they were taken from */
    uint16_t *pre;                  /* the context sum without its W term, index x, saturated */
    uint16_t *sgn_sib;              /* sign class of the colour neighbour, index x (1: none) */
    int sib_neutral;                /* sgn_sib holds only 1s */
    uint64_t *quiet;                /* version 5: bit g set when pre[4g..4g+3] are all 0 */
    /* W, the value stored last in this row (0 at its start): its saturated
     * magnitude and sign class, kept here as well as in mag_cur and sgn_cur
     * so that the next context needs no load of what was just stored */
    uint32_t w, w_sign;
} SFX(rows);

static inline void SFX(rows_init)(SFX(rows) *r, uint16_t *scratch, size_t nx)
{
    r->mag_up = scratch;
    r->mag_cur = scratch + (nx + 2);
    r->sgn_up = scratch + 2 * (nx + 2);
    r->sgn_cur = scratch + 3 * (nx + 2);
    r->par = NULL;
    r->pre = scratch + 5 * (nx + 2);
    r->sgn_sib = scratch + 6 * (nx + 2);
    r->sib_neutral = 0;
    const size_t words_at = (7 * (nx + 2) + 3) & ~(size_t)3;   /* 8-byte aligned */
    r->quiet = (uint64_t *)(void *)(scratch + words_at);
}

/* The parent neighbourhood of row (z, y) at `shift`, spread to the child's
 * width: the parent's magnitude plus half those of its right and lower
 * neighbours (which lie ahead of the child in coding order), saturated.
 * Each term is capped at 2**17 - 1 first, which keeps the sums in 32 bits
 * and changes no saturated result (a capped term alone reaches 0xFFFF).
 * The values go to `pre` (rows_prepare overwrites it next; a parent row is
 * at most as wide as its child's), then spread: child x sees parent
 * min(x >> ps, last); both loops vectorise. */
#define PARENT_TERM_CAP 0x1FFFFu
static inline uint32_t SFX(parent_term)(COEF v, int shift)
{
    const UMAG m = SFX(mag_shr)(v, shift);
    return m < PARENT_TERM_CAP ? (uint32_t)m : PARENT_TERM_CAP;
}
static inline PJ2K_ALWAYS_INLINE void SFX(rows_parent)(SFX(rows) *r, uint16_t *scratch, const COEF *base,
                                    const pj2k_band *b, size_t z, size_t y, int shift)
{
    if (!b->pn[2]) return;
    size_t pz = z >> b->ps[0], py = y >> b->ps[1];
    pz = pz < b->pn[0] ? pz : b->pn[0] - 1;
    py = py < b->pn[1] ? py : b->pn[1] - 1;
    r->par = scratch + 4 * (b->n[2] + 2);
    if (y && py == r->parent_row) return;   /* two child rows share a parent row */
    r->parent_row = py;
    const size_t last = b->pn[2] - 1, n = b->n[2];
    const COEF *prow = base + b->parent_offset + (ptrdiff_t)pz * b->stride[0] +
                       (ptrdiff_t)py * b->stride[1];
    const COEF *below = py < b->pn[1] - 1 ? prow + b->stride[1] : prow;
    uint16_t *value = r->pre;
    /* the last parent is its own right neighbour; the others' loop vectorises */
    for (size_t px = 0; px < last; px++) {
        const uint32_t mg = SFX(parent_term)(prow[px], shift) +
            ((SFX(parent_term)(prow[px + 1], shift) + SFX(parent_term)(below[px], shift)) >> 1);
        value[px] = (uint16_t)(mg < 0xFFFFu ? mg : 0xFFFFu);
    }
    {
        const uint32_t mg = SFX(parent_term)(prow[last], shift) +
            ((SFX(parent_term)(prow[last], shift) + SFX(parent_term)(below[last], shift)) >> 1);
        value[last] = (uint16_t)(mg < 0xFFFFu ? mg : 0xFFFFu);
    }
    size_t x = 0;
    if (b->ps[2] == 1) {   /* the dyadic case: pairs of children */
        const size_t pairs = last < n / 2 ? last : n / 2;
        for (size_t px = 0; px < pairs; px++) r->par[2 * px] = r->par[2 * px + 1] = value[px];
        x = 2 * pairs;
    }
    for (; x < n; x++) {
        const size_t px = x >> b->ps[2];
        r->par[x] = value[px < last ? px : last];
    }
}
#undef PARENT_TERM_CAP

static inline void SFX(rows_new_plane)(SFX(rows) *r, size_t nx)
{
    for (size_t i = 0; i < nx + 2; i++) {
        r->mag_up[i] = r->mag_cur[i] = 0;
        r->sgn_up[i] = r->sgn_cur[i] = 1;
    }
}

static inline void SFX(rows_next)(SFX(rows) *r)
{
    uint16_t *m = r->mag_up; r->mag_up = r->mag_cur; r->mag_cur = m;
    uint16_t *g = r->sgn_up; r->sgn_up = r->sgn_cur; r->sgn_cur = g;
}

static inline void SFX(rows_store)(SFX(rows) *r, size_t x, COEF v)
{
    const uint64_t mg = SFX(mag)(v);
    r->w = mg > 0xFFFF ? 0xFFFF : (uint32_t)mg;
    r->w_sign = SFX(sign3)(v);
    r->mag_cur[x + 1] = (uint16_t)r->w;
    r->sgn_cur[x + 1] = (uint16_t)r->w_sign;
}

/* Everything in a row's context sums but the W term, computed once per row
 * (a loop without dependencies between coefficients): `back` (the previous
 * slice) and `sib` (the previous colour component) are rows as coded at
 * `shift` (their stored values are unshifted while encoding a layer, already
 * shifted while decoding).  Every term and the total saturate at 0xFFFF,
 * which keeps the contexts exact (any sum of 2**15 or more is the last).
 * With colour_sign (version 4) the sign contexts see the colour neighbour's
 * sign too. */
static inline uint32_t SFX(sat16)(UMAG v) { return v > 0xFFFF ? 0xFFFF : (uint32_t)v; }
/* |v| >> shift saturated at 0xFFFF (called with a literal 0 where the
 * shift is known to be 0, so that the shift folds away and loops vectorise) */
static inline uint16_t SFX(sat_mag)(COEF v, int shift) { return (uint16_t)SFX(sat16)(SFX(mag_shr)(v, shift)); }
static inline PJ2K_ALWAYS_INLINE void SFX(rows_prepare)(SFX(rows) *r, const COEF *back, const COEF *sib, size_t nx, int shift,
                                     int colour_sign, int runs)
{
    const uint16_t *up = r->mag_up;
    if (colour_sign && sib) {   /* sign classes 0, 1, 2, as coded at `shift` */
        if (shift == 0)
            for (size_t x = 0; x < nx; x++) r->sgn_sib[x] = (uint16_t)(1 + (sib[x] > 0) - (sib[x] < 0));
        else
            for (size_t x = 0; x < nx; x++) {
                const int kept = SFX(mag_shr)(sib[x], shift) != 0;
                r->sgn_sib[x] = (uint16_t)(1 + kept * ((sib[x] > 0) - (sib[x] < 0)));
            }
        r->sib_neutral = 0;
    } else if (!r->sib_neutral) {
        for (size_t x = 0; x < nx; x++) r->sgn_sib[x] = 1;
        r->sib_neutral = 1;
    }
    for (size_t x = 0; x < nx; x++)
        r->pre[x] = pj2k_sat_add16(pj2k_sat_add16(pj2k_sat_add16(up[x + 1], up[x + 1]), up[x]), up[x + 2]);
    /* the previous slice's term counts twice; shift 0 (every single-layer
     * stream) without the shift, so that the loops vectorise */
    if (back && shift == 0)
        for (size_t x = 0; x < nx; x++) {
            const uint16_t t = SFX(sat_mag)(back[x], 0);
            r->pre[x] = pj2k_sat_add16(r->pre[x], pj2k_sat_add16(t, t));
        }
    else if (back)
        for (size_t x = 0; x < nx; x++) {
            const uint16_t t = SFX(sat_mag)(back[x], shift);
            r->pre[x] = pj2k_sat_add16(r->pre[x], pj2k_sat_add16(t, t));
        }
#if !LEGACY
    if (sib && shift == 0)
        for (size_t x = 0; x < nx; x++) r->pre[x] = pj2k_sat_add16(r->pre[x], SFX(sat_mag)(sib[x], 0));
    else if (sib)
        for (size_t x = 0; x < nx; x++)
            r->pre[x] = pj2k_sat_add16(r->pre[x], SFX(sat_mag)(sib[x], shift));
    if (r->par)
        for (size_t x = 0; x < nx; x++) r->pre[x] = pj2k_sat_add16(r->pre[x], r->par[x]);
    if (runs) {   /* each word of the bitmask built in a register */
        const size_t groups = nx / 4;
        for (size_t w = 0; w <= groups / 64; w++) {
            const size_t first = 64 * w, last = groups - first < 64 ? groups : first + 64;
            uint64_t word = 0;
            for (size_t g = first; g < last; g++) {
                uint64_t p;
                memcpy(&p, r->pre + 4 * g, sizeof p);
                word |= (uint64_t)(p == 0) << (g - first);
            }
            r->quiet[w] = word;
        }
    }
#else
    (void)sib;
    (void)runs;
#endif
}

/* The first position >= from that starts a group of four with all context
 * sums (W aside) zero, or nx if none does. */
static inline size_t SFX(next_quiet)(const SFX(rows) *r, size_t from, size_t nx)
{
    const size_t groups = nx / 4;
    size_t g = (from + 3) / 4;
    if (g >= groups) return nx;
    size_t w = g >> 6;
    uint64_t bits = r->quiet[w] & (~(uint64_t)0 << (g & 63));
    while (!bits) {
        if (++w > (groups - 1) >> 6) return nx;
        bits = r->quiet[w];
    }
    g = (w << 6) + (size_t)__builtin_ctzll(bits);
    return g < groups ? 4 * g : nx;
}

/* Whether group g (of a row of nx values) is a quiet one. */
static inline int SFX(is_quiet)(const SFX(rows) *r, size_t g, size_t nx)
{
    return g < nx / 4 && ((r->quiet[g >> 6] >> (g & 63)) & 1);
}

static inline unsigned SFX(context)(const SFX(rows) *r, size_t x)
{
    return row_context(2u * r->w + r->pre[x]);
}

/* Signs of the west and north neighbours (needed only for non-zero values),
 * and in version 4 that of the colour neighbour.  Version 3 streams, decoded
 * by the same code, see that one as "zero" always, so they use contexts
 * 9..17 where FORMAT.md numbers them 0..8 (all start alike: same decodes). */
static inline unsigned SFX(sign_context)(const SFX(rows) *r, size_t x)
{
#if LEGACY
    return 3u * r->w_sign + r->sgn_up[x + 1];
#else
    return 3u * r->w_sign + r->sgn_up[x + 1] + 9u * r->sgn_sib[x];
#endif
}

/* One value: exponent in unary under the magnitude context (from decision
 * FIRST_POS: 1 where the value is known non-zero, docs/FORMAT.md 6.4), then
 * the first mantissa bits modelled (version 3: two, the first also by the
 * context; legacy: one), the rest raw, then the sign (docs/FORMAT.md 6).
 * The decisions of versions 3 to 5, as MODEL_BIT(probability, bit) and
 * RAW_BITS(count): encode_value codes them and value_cost prices them, so
 * the two cannot drift apart.  PQ qualifies the probabilities (const to
 * price). */
#define VALUE_DECISIONS(PQ, M, CLS, MCTX, R, X, MG, NEGATIVE, FIRST_POS, MODEL_BIT, RAW_BITS)    \
    do {                                                                                      \
        PQ pj2k_prob *pe_ = (M)->prob.exponent[CLS][MCTX];                                    \
        const unsigned eb_ = bit_length(MG);                                                  \
        for (unsigned i_ = (FIRST_POS); i_ < eb_; i_++)                                       \
            MODEL_BIT(&pe_[i_ < PJ2K_EXP_POS ? i_ : PJ2K_EXP_POS - 1], 1u);                   \
        MODEL_BIT(&pe_[eb_ < PJ2K_EXP_POS ? eb_ : PJ2K_EXP_POS - 1], 0u);                     \
        if (eb_ >= 2) {                                                                       \
            const unsigned first_ = (unsigned)((MG) >> (eb_ - 2)) & 1u;                       \
            MODEL_BIT(&(M)->prob.mantissa[CLS][eb_][mantissa_context(MCTX, eb_)], first_);    \
            if (eb_ >= 3) {                                                                   \
                MODEL_BIT(&(M)->prob.mantissa2[CLS][eb_][first_], (unsigned)((MG) >> (eb_ - 3)) & 1u); \
                RAW_BITS((int)eb_ - 3);                                                       \
            }                                                                                 \
        }                                                                                     \
        if (MG) MODEL_BIT(&(M)->prob.sign[CLS][SFX(sign_context)(R, X)], (unsigned)(NEGATIVE)); \
    } while (0)

#if !LEGACY
static inline PJ2K_ALWAYS_INLINE void SFX(encode_value)(pj2k_rc_encoder *e, pj2k_model *m, int cls, unsigned mctx,
                                     const SFX(rows) *r, size_t x, uint64_t mg, int negative, unsigned first_pos)
{
#define CODE_BIT(PROB, BIT) encode_bit(e, PROB, BIT)
#define CODE_RAW(N) encode_direct(e, mg, N)
    VALUE_DECISIONS(, m, cls, mctx, r, x, mg, negative, first_pos, CODE_BIT, CODE_RAW);
#undef CODE_BIT
#undef CODE_RAW
}
#endif

/* Decodes a value of at most max_exp bits; returns 0 and sets *fail to
 * PJ2K_ERR_CORRUPT on a larger exponent, or to PJ2K_NARROW_OVERFLOW if the
 * value does not fit COEF (a narrow buffer: redo the decode wide). */
static inline PJ2K_ALWAYS_INLINE COEF SFX(decode_value)(pj2k_rc_decoder *d, pj2k_model *m, int cls, unsigned mctx,
                                     const SFX(rows) *r, size_t x, unsigned max_exp,
                                     pj2k_status *fail, unsigned first_pos)
{
    pj2k_prob *pe = m->prob.exponent[cls][mctx];
    unsigned eb = first_pos;
    if (eb > max_exp) { *fail = PJ2K_ERR_CORRUPT; return 0; }
    while (DECODE_BIT(d, &pe[eb < PJ2K_EXP_POS ? eb : PJ2K_EXP_POS - 1])) {
        if (++eb > max_exp) { *fail = PJ2K_ERR_CORRUPT; return 0; }
    }
    uint64_t mg = 0;
    if (eb) {
        mg = (uint64_t)1 << (eb - 1);
#if LEGACY
        if (eb >= 2) {
            mg |= (uint64_t)DECODE_BIT(d, &m->prob.mantissa[cls][eb][0]) << (eb - 2);
            mg |= decode_direct(d, (int)eb - 2);
        }
#else
        if (eb >= 2) {
            const unsigned first = DECODE_EVEN(d, &m->prob.mantissa[cls][eb][mantissa_context(mctx, eb)]);
            mg |= (uint64_t)first << (eb - 2);
            if (eb >= 3) {
                mg |= (uint64_t)DECODE_EVEN(d, &m->prob.mantissa2[cls][eb][first]) << (eb - 3);
                mg |= decode_direct(d, (int)eb - 3);
            }
        }
#endif
    }
    if (mg > (uint64_t)COEF_MAX) { *fail = PJ2K_NARROW_OVERFLOW; return 0; }
    return (mg && DECODE_EVEN(d, &m->prob.sign[cls][SFX(sign_context)(r, x)])) ? -(COEF)mg : (COEF)mg;
}

/* sign(v) * (|v| >> shift): the value a layer at this shift carries. */
static inline COEF SFX(shifted)(COEF v, int shift)
{
    const COEF mg = (COEF)SFX(mag_shr)(v, shift);
    return v < 0 ? -mg : mg;
}

/* Visit a band's coefficients in raster order (z, y, x) with the
 * neighbourhood row buffers.  With RUNS (version 5, a band that codes zero
 * runs), each quiet group (docs/FORMAT.md 6.4: four values from a multiple
 * of 4 whose context sums, W aside, are zero, and W zero too) goes to RUN,
 * which sees `rows`, `row`, `x`, `nx_` and `prev_run`, codes the group (and
 * may go on through the quiet groups after it), stores the values with
 * rows_store and sets `x` past them; the row's bitmask of candidate groups
 * (rows_prepare) keeps the checks out of the inner loop.  Every other coefficient goes to
 * the statements given, which see `rows` (with each row's context sums
 * prepared), `row` (the current row, of ROW_T) and `x`, and must store the
 * coded value with rows_store.  PSHIFT: the parent's scale; CSHIFT: the
 * shift at which the stored rows of the previous slice and colour component
 * are read.  ON_ROW runs once per row, before its first value, with `row`
 * in scope. */
#define FOR_EACH_COEF(ROW_T, BASE, B, M, PSHIFT, CSHIFT, RUNS, ON_ROW, RUN, ...)            \
    do {                                                                                   \
        SFX(rows) rows;                                                                    \
        const size_t nx_ = (B)->n[2];                                                      \
        SFX(rows_init)(&rows, (M)->rows, nx_);                                             \
        for (size_t z = 0; z < (B)->n[0]; z++) {                                           \
            SFX(rows_new_plane)(&rows, nx_);                                               \
            for (size_t y = 0; y < (B)->n[1]; y++) {                                       \
                SFX(rows_parent)(&rows, (M)->rows, (BASE), (B), z, y, (PSHIFT));           \
                ROW_T *row = (BASE) + (ptrdiff_t)z * (B)->stride[0] + (ptrdiff_t)y * (B)->stride[1]; \
                const COEF *back = z ? row - (B)->stride[0] : NULL;                        \
                const COEF *sib = (B)->sibling_offset ? row + (B)->sibling_offset : NULL;  \
                SFX(rows_prepare)(&rows, back, sib, nx_, (CSHIFT), (M)->version >= 4, (RUNS)); \
                ON_ROW;                                                                    \
                unsigned prev_run = 1;                                                     \
                (void)prev_run;                                                            \
                rows.w = 0;                                                                \
                rows.w_sign = 1;                                                           \
                size_t x = 0, from_ = 0;                                                   \
                for (;;) {                                                                 \
                    const size_t stop_ = (RUNS) ? SFX(next_quiet)(&rows, from_, nx_) : nx_; \
                    for (; x < stop_; x++) { __VA_ARGS__ }                                 \
                    if (x >= nx_) break;                                                   \
                    if (rows.w == 0) { RUN; from_ = x; }                                   \
                    else from_ = x + 1;   /* W is not zero: x codes as usual */            \
                }                                                                          \
                SFX(rows_next)(&rows);                                                     \
            }                                                                              \
        }                                                                                  \
    } while (0)

#if !LEGACY
/* Bits to code a decision of probability p (of a 0, 16 bits) as `bit` (0
 * or 1 at every call).  The probability of a 1, 65536 - p, is picked
 * through a mask: GCC made a branch of the select (lossy encodes 2-6%
 * faster; docs/DESIGN.md 47). */
static inline float SFX(bit_cost)(const float *table, unsigned p, unsigned bit)
{
    return table[((p ^ ((0u - bit) & (p ^ (65536u - p)))) + 8) >> 4];
}

/* Bits encode_value would spend on a magnitude under the model as it is
 * (raw bits at one each, added last). */
static inline float SFX(value_cost)(const pj2k_model *m, const float *table, int cls, unsigned mctx,
                                    const SFX(rows) *r, size_t x, uint64_t mg, int negative)
{
    float bits = 0, raw = 0;
#define COST_BIT(PROB, BIT) (bits += SFX(bit_cost)(table, (PROB)->p, BIT))
#define COST_RAW(N) (raw = (float)(N))
    VALUE_DECISIONS(const, m, cls, mctx, r, x, mg, negative, 0, COST_BIT, COST_RAW);
#undef COST_BIT
#undef COST_RAW
    return bits + raw;
}

/* value_cost(q) - value_cost(q - 1), q >= 1, from the decisions in which
 * the two differ (VALUE_DECISIONS): below a power of two only the modelled
 * mantissa bits; at one, the exponent's last two decisions, both values'
 * modelled mantissa bits, one raw bit, and for q = 1 the sign. */
static inline float SFX(lowering_saves)(const pj2k_model *m, const float *table, int cls, unsigned mctx,
                                        const SFX(rows) *r, size_t x, uint64_t q, int negative)
{
#define COST(PROB, BIT) SFX(bit_cost)(table, (PROB)->p, BIT)
#define EXPONENT(I) (&m->prob.exponent[cls][mctx][(I) < PJ2K_EXP_POS ? (I) : PJ2K_EXP_POS - 1])
/* the modelled mantissa bits of a value v of eb >= 2 bits */
#define MANTISSA(V, EB)                                                                        \
    (COST(&m->prob.mantissa[cls][EB][mantissa_context(mctx, EB)], (unsigned)((V) >> ((EB) - 2)) & 1u) + \
     ((EB) >= 3 ? COST(&m->prob.mantissa2[cls][EB][(unsigned)((V) >> ((EB) - 2)) & 1u],       \
                       (unsigned)((V) >> ((EB) - 3)) & 1u) : 0.0f))
    const unsigned eb = bit_length(q);
    if (q & (q - 1))   /* q >= 3: the same exponent, raw bit count and sign */
        return MANTISSA(q, eb) - MANTISSA(q - 1, eb);
    const unsigned lower = eb - 1;   /* q = 2**lower: q - 1 has lower bits */
    float saves = COST(EXPONENT(lower), 1u) + COST(EXPONENT(eb), 0u) - COST(EXPONENT(lower), 0u);
    if (eb >= 2) saves += MANTISSA(q, eb);
    if (lower >= 2) saves -= MANTISSA(q - 1, lower);
    if (eb >= 4) saves += 1.0f;   /* eb - 3 raw bits against lower - 3 */
    if (q == 1) saves += COST(&m->prob.sign[cls][SFX(sign_context)(r, x)], (unsigned)negative);
    return saves;
#undef COST
#undef EXPONENT
#undef MANTISSA
}

/* The magnitude to code for quantised magnitude q = floor(a), a = |c| *
 * pj2k_reciprocal(step): q - 1 where that costs less (pj2k_rdo):
 * e_lower**2 + kappa bits(q - 1) < e_q**2 + kappa bits(q). */
static inline uint64_t SFX(rdo_magnitude)(const pj2k_rdo *rdo, const pj2k_model *m, int cls, unsigned mctx,
                                          const SFX(rows) *r, size_t x, uint64_t q, double a, int negative)
{
    const double u = a - (double)q;   /* in [0, 1): where c lies in q's interval */
    const double keep = (u - 0.5) * (u - 0.5);
    const double lower = q == 1 ? a * a : (u + 0.5) * (u + 0.5);
    const float saves = SFX(lowering_saves)(m, rdo->bit_cost, cls, mctx, r, x, q, negative);
#ifdef PJ2K_SELF_CHECK   /* the sanitizer build (scripts/run_sanitizers.sh): against the full prices */
    {
        const float full = SFX(value_cost)(m, rdo->bit_cost, cls, mctx, r, x, q, negative) -
                           SFX(value_cost)(m, rdo->bit_cost, cls, mctx, r, x, q - 1, negative);
        if (fabsf(full - saves) > 1e-3f * (1.0f + fabsf(full))) __builtin_trap();
    }
#endif
    return lower - keep < rdo->kappa * saves ? q - 1 : q;
}

/* RD-optimised quantisation of row[x] (pj2k_rdo), written back so that
 * every later context matches the decoder's; keep_nonzero: not to zero at
 * `shift` (a broken run's last non-zero value must stay so). */
static inline void SFX(rdo_value)(const pj2k_rdo *rdo, const pj2k_model *m, const COEF *base, COEF *row,
                                  int cls, unsigned mctx, const SFX(rows) *r, size_t x, int shift,
                                  int keep_nonzero)
{
    if (!rdo || !row[x]) return;
    const ptrdiff_t i = row - base + (ptrdiff_t)x;
    const double a = fabs(pj2k_real_at(rdo->real, rdo->real_f32, i)) * rdo->inv_step;
    const uint64_t q = SFX(mag)(row[x]);
    uint64_t lowered = SFX(rdo_magnitude)(rdo, m, cls, mctx, r, x, q, a, row[x] < 0);
    if (keep_nonzero && (lowered >> shift) == 0) lowered = q;
    row[x] = row[x] < 0 ? -(COEF)lowered : (COEF)lowered;
}

/* RDO reads the unquantised value of every non-zero one, scattered over a
 * row: a cache miss each on large chunks (a 3-D volume's coefficients are
 * tens of MB), so the row's values are asked for at its start. */
static inline void SFX(rdo_prefetch_row)(const pj2k_rdo *rdo, const COEF *base, const COEF *row,
                                         size_t nx)
{
    if (!rdo) return;
    const size_t size = pj2k_real_size(rdo->real_f32);
    const uint8_t *real = (const uint8_t *)rdo->real + (size_t)(row - base) * size;
    for (size_t i = 0; i < nx * size; i += 64) __builtin_prefetch(real + i);
}

/* Version 5's run decision for a quiet group at x: all four zero (0) or
 * not (1), under the class's run context (was the row's previous quiet
 * group all zero? 1 at the row's start).  A broken run then says, value by
 * value up to the first non-zero one, whether it is zero; that one's
 * exponent starts at 1, and the last is non-zero without saying so.  After the first non-zero value the
 * rest code as usual. */
static PJ2K_NOINLINE void SFX(encode_broken_run)(pj2k_rc_encoder *e, pj2k_model *m, COEF *base, COEF *row,
                                                 const pj2k_band *b, SFX(rows) *r, size_t x, int last_nz,
                                                 int shift, const pj2k_rdo *rdo, uint64_t *all)
{
    int found = 0;
    for (int k = 0; k < 4; k++) {
        const size_t xk = x + k;
        const unsigned mctx = SFX(context)(r, xk);
        SFX(rdo_value)(rdo, m, base, row, b->cls, mctx, r, xk, shift, !found && k == last_nz);
        const COEF v = SFX(shifted)(row[xk], shift);
        const uint64_t mg = SFX(mag)(v);
        *all |= mg;
        if (found) {
            SFX(encode_value)(e, m, b->cls, mctx, r, xk, mg, v < 0, 0);
        } else {
            if (k < 3) encode_bit(e, &m->prob.run_first[b->cls][k], mg != 0);
            if (mg) { SFX(encode_value)(e, m, b->cls, mctx, r, xk, mg, v < 0, 1); found = 1; }
        }
        SFX(rows_store)(r, xk, v);
    }
}

/* Whether the four values from x are all zero at `shift`. */
static inline int SFX(group_zero)(const COEF *row, size_t x, int shift)
{
    const UMAG any = SFX(mag)(row[x]) | SFX(mag)(row[x + 1]) | SFX(mag)(row[x + 2]) | SFX(mag)(row[x + 3]);
    return shift >= (int)(8 * sizeof(UMAG)) || (any >> shift) == 0;
}

/* The run decision of the quiet group at x, and of the quiet groups that
 * follow it while they are all zero (after a zero run W is zero, so each is
 * a run candidate, under the context "after a zero run"): one decision and
 * four stored zeros each, without the row's general loop.  Returns where
 * the row goes on. */
static inline size_t SFX(encode_run)(pj2k_rc_encoder *e, pj2k_model *m, COEF *base, COEF *row, const pj2k_band *b,
                                     SFX(rows) *r, size_t x, size_t nx, unsigned *prev_run, int shift,
                                     const pj2k_rdo *rdo, uint64_t *all)
{
    int last_nz = -1;
    for (int k = 0; k < 4; k++) if (SFX(shifted)(row[x + k], shift)) last_nz = k;
    encode_bit(e, &m->prob.run[b->cls][*prev_run], last_nz >= 0);
    *prev_run = last_nz < 0;
    if (last_nz >= 0) {
        pj2k_rc_encoder state = *e;   /* copies: see pj2k_encode_band */
        SFX(rows) view = *r;
        SFX(encode_broken_run)(&state, m, base, row, b, &view, x, last_nz, shift, rdo, all);
        *e = state;
        *r = view;
        return x + 4;
    }
    pj2k_prob *after_zero_run = &m->prob.run[b->cls][1];
    for (;;) {
        for (int k = 0; k < 4; k++) SFX(rows_store)(r, x + k, 0);
        x += 4;
        if (!SFX(is_quiet)(r, x / 4, nx) || !SFX(group_zero)(row, x, shift)) return x;
        encode_bit(e, after_zero_run, 0);
    }
}

static inline PJ2K_ALWAYS_INLINE int SFX(encode_band_with)(pj2k_rc_encoder *e, pj2k_model *m, COEF *base,
                                                           const pj2k_band *b, int shift, const pj2k_rdo *rdo,
                                                           const int runs)
{
    uint64_t all = 0;
    FOR_EACH_COEF(COEF, base, b, m, shift, shift, runs, SFX(rdo_prefetch_row)(rdo, base, row, nx_),
        x = SFX(encode_run)(e, m, base, row, b, &rows, x, nx_, &prev_run, shift, rdo, &all),
        const unsigned mctx = SFX(context)(&rows, x);
        SFX(rdo_value)(rdo, m, base, row, b->cls, mctx, &rows, x, shift, 0);
        const COEF v = SFX(shifted)(row[x], shift);
        const uint64_t mg = SFX(mag)(v);
        all |= mg;
        SFX(encode_value)(e, m, b->cls, mctx, &rows, x, mg, v < 0, 0);
        SFX(rows_store)(&rows, x, v);
    );
    return (int)bit_length(all);
}

/* Version 5: a band at least PJ2K_RUN_MIN_WIDTH wide says first whether it
 * codes zero runs; the encoder's rule: when at least half its values (at
 * `shift`) are zero. */
static int SFX(band_wants_runs)(const COEF *base, const pj2k_band *b, int shift)
{
    size_t zeros = 0;
    for (size_t z = 0; z < b->n[0]; z++)
        for (size_t y = 0; y < b->n[1]; y++) {
            const COEF *row = base + (ptrdiff_t)z * b->stride[0] + (ptrdiff_t)y * b->stride[1];
            /* shift 0 (every single-layer stream): a loop that vectorises,
             * counting in 16-bit lanes, at most 2**15 values at a time */
            const size_t span = (size_t)1 << 15;
            if (shift == 0)
                for (size_t x = 0; x < b->n[2]; x += span) {
                    const size_t end = b->n[2] - x < span ? b->n[2] : x + span;
                    uint16_t zeros_here = 0;
                    for (size_t i = x; i < end; i++) zeros_here += row[i] == 0;
                    zeros += zeros_here;
                }
            else
                for (size_t x = 0; x < b->n[2]; x++) zeros += SFX(mag_shr)(row[x], shift) == 0;
        }
    return 2 * zeros >= b->n[0] * b->n[1] * b->n[2];
}

/* The coder state is copied into a local whose address never escapes (calls
 * out of line get copies of it), so that the compiler keeps it in registers:
 * through *e every decision would store and reload it. */
int SFX(pj2k_encode_band)(pj2k_rc_encoder *e, pj2k_model *m, COEF *base, const pj2k_band *b,
                          int shift, const pj2k_rdo *rdo)
{
    pj2k_rc_encoder local = *e;
    /* rdo and runs as constants: each of the four loops drops what it does not use */
    int runs = 0;
    if (m->version >= 5 && b->n[2] >= PJ2K_RUN_MIN_WIDTH) {
        runs = SFX(band_wants_runs)(base, b, shift);
        encode_bit(&local, &m->prob.band_runs[b->cls], (unsigned)runs);
    }
    int top;
    if (rdo)
        top = runs ? SFX(encode_band_with)(&local, m, base, b, shift, rdo, 1)
                   : SFX(encode_band_with)(&local, m, base, b, shift, rdo, 0);
    else
        top = runs ? SFX(encode_band_with)(&local, m, base, b, shift, NULL, 1)
                   : SFX(encode_band_with)(&local, m, base, b, shift, NULL, 0);
    *e = local;
    return top;
}
#endif

/* The decoder's side of encode_run: the rare broken run out of line, so the
 * hot loop keeps one inlined copy of decode_value. */
static PJ2K_NOINLINE pj2k_status SFX(decode_broken_run)(pj2k_rc_decoder *d, pj2k_model *m, COEF *row,
                                                        const pj2k_band *b, SFX(rows) *r, size_t x,
                                                        unsigned max_exp)
{
    pj2k_status fail = PJ2K_OK;
    int found = 0;
    for (int k = 0; k < 4; k++) {
        const size_t xk = x + k;
        const unsigned mctx = SFX(context)(r, xk);
        if (found) {
            row[xk] = SFX(decode_value)(d, m, b->cls, mctx, r, xk, max_exp, &fail, 0);
        } else if (k == 3 || DECODE_BIT(d, &m->prob.run_first[b->cls][k])) {
            row[xk] = SFX(decode_value)(d, m, b->cls, mctx, r, xk, max_exp, &fail, 1);
            found = 1;
        } else {
            row[xk] = 0;
        }
        if (fail != PJ2K_OK) return fail;
        SFX(rows_store)(r, xk, row[xk]);
    }
    return d->overrun ? PJ2K_ERR_CORRUPT : PJ2K_OK;
}

/* The decoder's side of encode_run: a quiet group's run decision, and the
 * next quiet groups' while they are zero runs.  Returns where the row goes
 * on; *fail as decode_value's. */
static inline size_t SFX(decode_run)(pj2k_rc_decoder *d, pj2k_model *m, COEF *row, const pj2k_band *b,
                                     SFX(rows) *r, size_t x, size_t nx, unsigned *prev_run,
                                     unsigned max_exp, pj2k_status *fail)
{
    pj2k_prob *p = &m->prob.run[b->cls][*prev_run];
    for (;;) {
        const unsigned broken = DECODE_BIT(d, p);
        *prev_run = !broken;
        if (broken) {   /* a copy: see pj2k_decode_band */
            pj2k_rc_decoder state = *d;
            SFX(rows) view = *r;
            *fail = SFX(decode_broken_run)(&state, m, row, b, &view, x, max_exp);
            *d = state;
            *r = view;
            return x + 4;
        }
        for (int k = 0; k < 4; k++) { row[x + k] = 0; SFX(rows_store)(r, x + k, 0); }
        x += 4;
        if (d->overrun) { *fail = PJ2K_ERR_CORRUPT; return x; }
        if (!SFX(is_quiet)(r, x / 4, nx)) return x;
        p = &m->prob.run[b->cls][1];
    }
}

static inline PJ2K_ALWAYS_INLINE pj2k_status SFX(decode_band_with)(pj2k_rc_decoder *d, pj2k_model *m, COEF *base,
                                                                   const pj2k_band *b, int max_exp, int shift,
                                                                   const int runs)
{
    pj2k_status fail = PJ2K_OK;
    FOR_EACH_COEF(COEF, base, b, m, shift, 0, runs, (void)0,
        x = SFX(decode_run)(d, m, row, b, &rows, x, nx_, &prev_run, (unsigned)max_exp, &fail);
        if (fail != PJ2K_OK) return fail,
        const unsigned mctx = SFX(context)(&rows, x);
        row[x] = SFX(decode_value)(d, m, b->cls, mctx, &rows, x, (unsigned)max_exp, &fail, 0);
        if (fail != PJ2K_OK) return fail;
        if (d->overrun) return PJ2K_ERR_CORRUPT;  /* stop forged streams early */
        SFX(rows_store)(&rows, x, row[x]);
    );
    return PJ2K_OK;
}

/* The coder state is copied into a local whose address never escapes, so
 * that the compiler keeps range and code in registers (through *d, every
 * decision would store and reload them). */
pj2k_status SFX(pj2k_decode_band)(pj2k_rc_decoder *d, pj2k_model *m, COEF *base,
                                  const pj2k_band *b, int max_exp, int shift)
{
    pj2k_rc_decoder local = *d;
    pj2k_status st;
#if !LEGACY
    if (m->version >= 5 && b->n[2] >= PJ2K_RUN_MIN_WIDTH && DECODE_BIT(&local, &m->prob.band_runs[b->cls]))
        st = SFX(decode_band_with)(&local, m, base, b, max_exp, shift, 1);
    else
#endif
        st = SFX(decode_band_with)(&local, m, base, b, max_exp, shift, 0);
    *d = local;
    return st;
}

/* Refinement from shift `from` to shift `to` (a quality layer after the
 * first).  Coefficients already significant get their next from - to
 * magnitude bits (the first modelled by its magnitude's bit length, the rest
 * raw); the others are coded as new values below 2**(from - to) under the
 * neighbourhood context at the new scale. */
#if !LEGACY
static inline PJ2K_ALWAYS_INLINE int SFX(encode_refine_with)(pj2k_rc_encoder *e, pj2k_model *m, const COEF *base,
                                                             const pj2k_band *b, int from, int to)
{
    const int d = from - to;
    uint64_t all = 0;
    FOR_EACH_COEF(const COEF, base, b, m, to, to, 0, (void)0, (void)0,
        const uint64_t prior = SFX(mag_shr)(row[x], from), mg = SFX(mag_shr)(row[x], to);
        all |= mg;
        if (prior) {
            const unsigned eb = bit_length(prior);
            encode_bit(e, &m->prob.refine[b->cls][eb < 16 ? eb : 15], (unsigned)(mg >> (d - 1)) & 1u);
            encode_direct(e, mg, d - 1);
        } else {
            const unsigned mctx = SFX(context)(&rows, x);
            SFX(encode_value)(e, m, b->cls, mctx, &rows, x, mg, row[x] < 0, 0);
        }
        SFX(rows_store)(&rows, x, SFX(shifted)(row[x], to));
    );
    return (int)bit_length(all);
}

int SFX(pj2k_encode_refine)(pj2k_rc_encoder *e, pj2k_model *m, const COEF *base,
                            const pj2k_band *b, int from, int to)
{
    pj2k_rc_encoder local = *e;   /* in registers: see pj2k_encode_band */
    const int top = SFX(encode_refine_with)(&local, m, base, b, from, to);
    *e = local;
    return top;
}
#endif

static inline PJ2K_ALWAYS_INLINE pj2k_status SFX(decode_refine_with)(pj2k_rc_decoder *d, pj2k_model *m, COEF *base,
                                                                     const pj2k_band *b, int from, int to)
{
    const int db = from - to;
    pj2k_status fail = PJ2K_OK;
    FOR_EACH_COEF(COEF, base, b, m, to, 0, 0, (void)0, (void)0,
        const uint64_t prior = SFX(mag)(row[x]);
        if (prior) {
            const unsigned eb = bit_length(prior);
            uint64_t mg = prior << db;
            mg |= (uint64_t)DECODE_EVEN(d, &m->prob.refine[b->cls][eb < 16 ? eb : 15]) << (db - 1);
            mg |= decode_direct(d, db - 1);
            if (mg > (uint64_t)COEF_MAX) return PJ2K_NARROW_OVERFLOW;
            row[x] = row[x] < 0 ? -(COEF)mg : (COEF)mg;
        } else {
            const unsigned mctx = SFX(context)(&rows, x);
            row[x] = SFX(decode_value)(d, m, b->cls, mctx, &rows, x, (unsigned)db, &fail, 0);
        }
        if (fail != PJ2K_OK) return fail;
        if (d->overrun) return PJ2K_ERR_CORRUPT;
        SFX(rows_store)(&rows, x, row[x]);
    );
    return PJ2K_OK;
}

pj2k_status SFX(pj2k_decode_refine)(pj2k_rc_decoder *d, pj2k_model *m, COEF *base,
                                    const pj2k_band *b, int from, int to)
{
    pj2k_rc_decoder local = *d;   /* in registers: see pj2k_decode_band */
    const pj2k_status st = SFX(decode_refine_with)(&local, m, base, b, from, to);
    *d = local;
    return st;
}

/* Median-edge predictor (LOCO-I) within a plane; the first sample of a plane
 * is predicted from the first sample of the plane before. */
static inline COEF SFX(predict)(const COEF *row, const COEF *up, const COEF *back, size_t x)
{
    if (up && x) {
        const COEF a = row[x - 1], n = up[x], c = up[x - 1];
        const COEF hi = a > n ? a : n, lo = a > n ? n : a;
        /* strictly between lo and hi, so it fits COEF; summed wide (int32 lossy values
           may reach INT32_MAX) */
        return c >= hi ? lo : (c <= lo ? hi : (COEF)((int64_t)a + n - c));
    }
    if (x) return row[x - 1];
    if (up) return up[x];
    return back ? back[0] : 0;
}

#if !LEGACY
int SFX(pj2k_encode_low)(pj2k_rc_encoder *e, pj2k_model *m, const COEF *base,
                         const pj2k_band *b, int shift, COEF *tmp)
{
    const size_t nx = b->n[2], plane = b->n[1] * nx;
    const pj2k_band packed = {.n = {b->n[0], b->n[1], nx}, .stride = {(ptrdiff_t)plane, (ptrdiff_t)nx, 1}};
    COEF *out = tmp;
    for (size_t z = 0; z < b->n[0]; z++)
        for (size_t y = 0; y < b->n[1]; y++) {
            const COEF *row = base + (ptrdiff_t)z * b->stride[0] + (ptrdiff_t)y * b->stride[1];
            for (size_t x = 0; x < nx; x++) *out++ = SFX(shifted)(row[x], shift);
        }
    /* residuals in place, last first: each prediction reads only earlier values */
    for (size_t i = b->n[0] * plane; i-- > 0;) {
        const size_t z = i / plane, y = (i % plane) / nx, x = i % nx;
        COEF *row = tmp + z * plane + y * nx;
        const int64_t r = (int64_t)tmp[i] -
            (int64_t)SFX(predict)(row, y ? row - nx : NULL, z ? tmp + (z - 1) * plane : NULL, x);
        if (r < -(int64_t)COEF_MAX || r > (int64_t)COEF_MAX) return -1;   /* narrow: redo wide */
        tmp[i] = (COEF)r;
    }
    return SFX(pj2k_encode_band)(e, m, tmp, &packed, 0, NULL);
}
#endif

pj2k_status SFX(pj2k_decode_low)(pj2k_rc_decoder *d, pj2k_model *m, COEF *base,
                                 const pj2k_band *b, int max_exp, int64_t bound, COEF *tmp)
{
    const pj2k_band packed = {.n = {b->n[0], b->n[1], b->n[2]},
                              .stride = {(ptrdiff_t)(b->n[1] * b->n[2]), (ptrdiff_t)b->n[2], 1}};
    pj2k_status st = SFX(pj2k_decode_band)(d, m, tmp, &packed, max_exp, 0);
    if (st != PJ2K_OK) return st;
    const COEF *in = tmp;
    for (size_t z = 0; z < b->n[0]; z++)
        for (size_t y = 0; y < b->n[1]; y++) {
            COEF *row = base + (ptrdiff_t)z * b->stride[0] + (ptrdiff_t)y * b->stride[1];
            const COEF *up = y ? row - b->stride[1] : NULL;
            const COEF *back = z ? base + (ptrdiff_t)(z - 1) * b->stride[0] : NULL;
            for (size_t x = 0; x < b->n[2]; x++) {
                /* both terms are within +-2**max_exp, so the sum cannot overflow */
                int64_t v = (int64_t)*in++ + (int64_t)SFX(predict)(row, up, back, x);
                v = v < -bound ? -bound : (v > bound ? bound : v);
                if (v < -(int64_t)COEF_MAX || v > (int64_t)COEF_MAX) return PJ2K_NARROW_OVERFLOW;
                row[x] = (COEF)v;
            }
        }
    return PJ2K_OK;
}

#undef FOR_EACH_COEF
#undef VALUE_DECISIONS
#undef DECODE_BIT
#undef DECODE_EVEN
