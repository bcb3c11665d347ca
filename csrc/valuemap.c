/* Stage 0 of lossless streams (format version 7): value gaps.  Sample values
 * that no sample of a chunk takes, in long runs (a CT's padding value far
 * below its air, a background of 0 far below the data), make every edge
 * between the two value ranges a large step that the wavelet codes at full
 * cost.  The encoder closes such runs before the transform where there are
 * at most PJ2K_MAX_GAPS of them (each value above a gap moves down by its
 * length: the values stay in order and every difference within a range is
 * kept); the decoder opens them again after the inverse transform
 * (docs/DESIGN.md 42). */
#include "internal.h"
#include <stdlib.h>

/* Runs shorter than this stay: closing one gains less than its header bytes
 * and moves values that the low-pass levels average (docs/DESIGN.md 42). */
#define VALUE_GAP_MIN 16

/* A gap in sample values: [start, start + length) is unused. */
typedef struct { int64_t start, length; } value_gap;

/* The runs of at least VALUE_GAP_MIN unused values between the smallest and
 * largest value in `used` (one byte per value of [lo, lo + span)), in
 * increasing order, if there are at most PJ2K_MAX_GAPS of them; returns their
 * count, or 0 for more: values on a coarse lattice (12-bit data scaled by 32,
 * say) have gaps everywhere, and closing a few of them would only bend the
 * scale that reduced levels average on. */
static int isolated_gaps(const uint8_t *used, int64_t lo, size_t span, value_gap *gaps)
{
    size_t first = 0, last = span;
    while (first < span && !used[first]) first++;
    while (last > first && !used[last - 1]) last--;
    int count = 0;
    for (size_t v = first; v < last;) {
        if (used[v]) { v++; continue; }
        const size_t start = v;
        while (!used[v]) v++;   /* (used[last - 1] stops it) */
        if (v - start < VALUE_GAP_MIN) continue;
        if (count == PJ2K_MAX_GAPS) return 0;
        gaps[count++] = (value_gap){lo + (int64_t)start, (int64_t)(v - start)};
    }
    return count;
}

/* A sample value v closed: less the lengths of the gaps below it. */
static int64_t closed_value(int64_t v, const value_gap *gaps, int count)
{
    int64_t below = 0;
    for (int g = 0; g < count; g++) below += v >= gaps[g].start ? gaps[g].length : 0;
    return v - below;
}

/* A decoded value w opened (each gap compared with w as decoded) and clamped
 * to [lo, hi]; w below lo opens no gap and w above hi opens all, so clamping
 * w first gives the same. */
static int64_t opened_value(int64_t w, const pj2k_header *h, int64_t lo, int64_t hi)
{
    w = w < lo ? lo : w > hi ? hi : w;
    int64_t x = w;
    for (int g = 0; g < h->ngaps; g++) x += w > h->gap_after[g] ? h->gap_length[g] : 0;
    return x > hi ? hi : x;
}

/* Either map as a table over [lo, hi] (chunks of more values than that: one
 * lookup each) or value by value; one set of loops per coefficient width. */
typedef struct {
    void (*mark)(const void *values, size_t n, int64_t lo, uint8_t *used);
    void (*lookup)(void *values, size_t n, int64_t lo, int64_t hi, const int32_t *table);
    void (*close)(void *values, size_t n, const value_gap *gaps, int count);
    void (*open)(void *values, size_t n, const pj2k_header *h, int64_t lo, int64_t hi);
} value_loops;

#define VALUE_GAPS(SFX, T)                                                                  \
    static void mark_##SFX(const void *values, size_t n, int64_t lo, uint8_t *used)         \
    {                                                                                       \
        const T *v = values;                                                                \
        for (size_t i = 0; i < n; i++) used[v[i] - lo] = 1;                                 \
    }                                                                                       \
    static void lookup_##SFX(void *values, size_t n, int64_t lo, int64_t hi, const int32_t *table) \
    {                                                                                       \
        T *v = values;                                                                      \
        for (size_t i = 0; i < n; i++) v[i] = (T)table[(v[i] < lo ? lo : v[i] > hi ? hi : v[i]) - lo]; \
    }                                                                                       \
    static void close_##SFX(void *values, size_t n, const value_gap *gaps, int count)       \
    {                                                                                       \
        T *v = values;                                                                      \
        for (size_t i = 0; i < n; i++) v[i] = (T)closed_value(v[i], gaps, count);          \
    }                                                                                       \
    static void open_##SFX(void *values, size_t n, const pj2k_header *h, int64_t lo, int64_t hi) \
    {                                                                                       \
        T *v = values;                                                                      \
        for (size_t i = 0; i < n; i++) v[i] = (T)opened_value(v[i], h, lo, hi);             \
    }
VALUE_GAPS(i16, int16_t)
VALUE_GAPS(i32, int32_t)
VALUE_GAPS(i64, int64_t)
#undef VALUE_GAPS

static const value_loops *loops_for(int width)
{
    static const value_loops loops[] = {{mark_i16, lookup_i16, close_i16, open_i16},
                                        {mark_i32, lookup_i32, close_i32, open_i32},
                                        {mark_i64, lookup_i64, close_i64, open_i64}};
    return &loops[width == 2 ? 0 : width == 4 ? 1 : 2];
}

pj2k_status pj2k_close_value_gaps(pj2k_header *h, void *values, int width, size_t n,
                                  int64_t lo, int64_t hi)
{
    h->ngaps = 0;
    if (!n || hi < lo || hi - lo >= (int64_t)1 << 16) return PJ2K_OK;   /* 8- and 16-bit dtypes */
    const size_t span = (size_t)(hi - lo) + 1;
    const value_loops *loops = loops_for(width);
    uint8_t *used = calloc(span, 1);
    if (!used) return PJ2K_ERR_NOMEM;
    loops->mark(values, n, lo, used);
    value_gap gaps[PJ2K_MAX_GAPS];
    const int count = isolated_gaps(used, lo, span, gaps);
    free(used);
    if (!count) return PJ2K_OK;
    int32_t *table = n > span ? malloc(span * sizeof *table) : NULL;
    if (table) {
        for (size_t v = 0; v < span; v++) table[v] = (int32_t)closed_value(lo + (int64_t)v, gaps, count);
        loops->lookup(values, n, lo, hi, table);
        free(table);
    } else {
        loops->close(values, n, gaps, count);
    }
    int64_t closed = 0;   /* the lengths of the gaps below */
    for (int g = 0; g < count; g++) {
        h->gap_after[g] = gaps[g].start - 1 - closed;
        h->gap_length[g] = (uint32_t)gaps[g].length;
        closed += gaps[g].length;
    }
    h->ngaps = count;
    return PJ2K_OK;
}

void pj2k_open_value_gaps(const pj2k_header *h, void *values, int width, size_t n,
                          int64_t lo, int64_t hi)
{
    if (!h->ngaps) return;
    const size_t span = (size_t)(hi - lo) + 1;   /* (at most 2**16: pj2k_value_gaps_valid) */
    int32_t *table = n > span ? malloc(span * sizeof *table) : NULL;
    if (table) {
        for (size_t w = 0; w < span; w++) table[w] = (int32_t)opened_value(lo + (int64_t)w, h, lo, hi);
        loops_for(width)->lookup(values, n, lo, hi, table);
        free(table);
    } else {   /* (small, or no memory for the table: value by value) */
        loops_for(width)->open(values, n, h, lo, hi);
    }
}

int pj2k_value_gaps_valid(const pj2k_header *h, int64_t lo, int64_t hi)
{
    if (h->ngaps < 0 || h->ngaps > PJ2K_MAX_GAPS) return 0;
    if (h->ngaps && hi - lo >= (int64_t)1 << 16) return 0;   /* 8- and 16-bit dtypes only */
    int64_t closed = 0;
    for (int g = 0; g < h->ngaps; g++) {
        if (h->gap_length[g] < 1 || h->gap_after[g] < lo) return 0;
        if (g && h->gap_after[g] <= h->gap_after[g - 1]) return 0;
        closed += h->gap_length[g];
        /* the value after the gap, where it opens, is one of the dtype's */
        if (h->gap_after[g] + 1 + closed > hi) return 0;
    }
    return 1;
}
