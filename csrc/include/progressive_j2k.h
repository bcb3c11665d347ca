/* progressive_j2k: resolution-progressive wavelet codec for N-d chunks.
 *
 * The one public header of the C core.  The core has no global state: every
 * call takes its inputs explicitly and allocates only what it frees again
 * (except the encoded buffer handed back by pj2k_encode).  Decoding validates
 * all lengths and fields of untrusted input and reports errors through the
 * stable pj2k_status enum; it never reads past the buffer it is given.
 *
 * The byte layout of the codestream is specified in docs/FORMAT.md.
 */
#ifndef PROGRESSIVE_J2K_H
#define PROGRESSIVE_J2K_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The newest format version, written for chunks with nodata samples inside
 * their data (version 10: the nodata mask, pj2k_params.nodata_mask).
 * Version 9 is written for chunks with padding only (the fill field,
 * pj2k_params.fill), version 8 for the others' lossy chunks of 8- and
 * 16-bit integer samples (their reconstruction in float32).  Versions 1 (no
 * quality layers) and 2 (layers), which code coefficients with the first
 * context rules, and 3 to 7 are still read. */
#define PJ2K_FORMAT_VERSION 10
#define PJ2K_FORMAT_VERSION_PADDED 9
#define PJ2K_FORMAT_VERSION_FLOAT32 8
/* the version written where versions 8 and 9 change nothing (lossless,
 * error-bounded, 32-bit and float chunks without padding): older decoders
 * read those */
#define PJ2K_FORMAT_VERSION_COMPAT 7
#define PJ2K_M97_AUTO (-1)  /* pj2k_params.m97_levels: the encoder chooses */
#define PJ2K_MAX_NDIM 32
#define PJ2K_MAX_AXES 3     /* transformed axes per chunk */
#define PJ2K_MAX_LEVELS 10  /* decomposition levels */
#define PJ2K_MAX_BANDS (1 + PJ2K_MAX_LEVELS * 7)
#define PJ2K_MAX_LAYERS 16   /* quality layers per resolution */
#define PJ2K_RDO_DEFAULT 0.15  /* RD-optimised quantisation (pj2k_params.rdo) */
#define PJ2K_MAX_RDO 16.0
#define PJ2K_MAX_PIECES ((PJ2K_MAX_LEVELS + 1) * PJ2K_MAX_LAYERS)
#define PJ2K_FIXED_HEADER 16 /* bytes that hold the total header length */
#define PJ2K_MAX_GAPS 4      /* value gaps a lossless stream closes (version 7) */
#define PJ2K_FILL_BYTES 8    /* a fill sample's bytes in the header (version 9) */

/* Stable error codes: values never change, new ones are appended. */
typedef enum {
    PJ2K_OK = 0,
    PJ2K_ERR_PARAM = 1,      /* invalid argument from the caller */
    PJ2K_ERR_NOMEM = 2,      /* allocation failed */
    PJ2K_ERR_MAGIC = 3,      /* not a progressive_j2k codestream */
    PJ2K_ERR_VERSION = 4,    /* format version, wavelet or dtype code not known */
    PJ2K_ERR_HEADER = 5,     /* header field out of range or inconsistent */
    PJ2K_ERR_TRUNCATED = 6,  /* buffer shorter than what was asked for */
    PJ2K_ERR_CHECKSUM = 7,   /* CRC-32C mismatch: corrupted bytes */
    PJ2K_ERR_CORRUPT = 8,    /* entropy-coded data inconsistent */
    PJ2K_ERR_TOO_LARGE = 9,  /* exceeds the caller's size limit (decoded size, or
                                the encoder's max_length) */
    PJ2K_ERR_DTYPE = 10      /* dtype not supported for this mode */
} pj2k_status;

typedef enum {
    PJ2K_UINT8 = 0, PJ2K_INT8 = 1, PJ2K_UINT16 = 2, PJ2K_INT16 = 3,
    PJ2K_UINT32 = 4, PJ2K_INT32 = 5, PJ2K_FLOAT32 = 6, PJ2K_FLOAT64 = 7,
    PJ2K_NUM_DTYPES = 8
} pj2k_dtype;

/* 53: lossless.  97: lossy, quantised per band.  53_QUANTISED: error-bounded:
 * samples are first rounded to multiples of a scale (the error bound is half
 * of it, checked per sample against the dtype's own rounding), then coded
 * losslessly with the 5/3 transform.  53R and 53R_QUANTISED: the same as 53
 * and 53_QUANTISED with a 5/3 whose predict rounds to nearest instead of
 * down, so that reduced levels carry no bias (docs/FORMAT.md 4; what the
 * Python encoder writes; the others are still read and written). */
typedef enum {
    PJ2K_WAVELET_53 = 0, PJ2K_WAVELET_97 = 1, PJ2K_WAVELET_53_QUANTISED = 2,
    PJ2K_WAVELET_53R_QUANTISED = 3, PJ2K_WAVELET_53R = 4
} pj2k_wavelet;
typedef enum { PJ2K_COLOUR_NONE = 0, PJ2K_COLOUR_RCT = 1, PJ2K_COLOUR_ICT = 2 } pj2k_colour;

/* Encoder parameters.  Axes are indices into shape, strictly increasing. */
typedef struct {
    pj2k_dtype dtype;
    int ndim;
    uint64_t shape[PJ2K_MAX_NDIM];
    int naxes;                  /* 1..3 transformed axes */
    int axes[PJ2K_MAX_AXES];
    int colour_axis;            /* -1: none; else an axis of length 3 */
    int levels;                 /* 0..PJ2K_MAX_LEVELS */
    pj2k_wavelet wavelet;       /* one of pj2k_wavelet (above) */
    double step;                /* 9/7: base quantisation step (> 0);
                                   53_QUANTISED: the scale, at most 2 x tolerance */
    double tolerance;           /* 53_QUANTISED: the guaranteed error bound */
    /* Quality layers: 0 or 1 = none.  Layer j carries the magnitudes of the
     * coefficients of band b (numbered like the 9/7 steps) down to bit
     * layer_shift[j][b]: per band the shifts never increase and the last
     * layer's are 0, so all layers together hold every coefficient exactly. */
    int layers;
    uint8_t layer_shift[PJ2K_MAX_LAYERS][PJ2K_MAX_BANDS];
    /* 9/7: strength of rate-distortion optimised quantisation (0 = the plain
     * quantiser, PJ2K_RDO_DEFAULT what the rate and quality targets use, at
     * most PJ2K_MAX_RDO): values are lowered by one step where that saves
     * more bits than the added squared error (in steps**2) divided by rdo;
     * a layered stream codes the values a single-layer pass chose.  Ignored
     * by the other wavelets. */
    double rdo;
    /* Reversible wavelets (53, 53R, 53_QUANTISED, 53R_QUANTISED): bit l - 1 set lifts level l
     * with 9/7-M (5/3's update after a 4-tap predict) instead of 5/3;
     * PJ2K_M97_AUTO lets the encoder choose per chunk (the finest level, by
     * an estimate of both; docs/DESIGN.md 23).  0 for 9/7. */
    int m97_levels;
    /* 9/7 with rdo > 0: the cost table of pj2k_bit_cost_table, made once by
     * the caller and shared by many encodes (it outlives them), or NULL:
     * each prepared chunk makes its own at its first RD-optimised encode
     * (4096 log2 calls: 21 of a 128^2 chunk's 166 us first encode). */
    const float *bit_cost;
    /* 0, or the longest stream wanted: an encode that would exceed it stops
     * as soon as it does, with PJ2K_ERR_TOO_LARGE (a search that needs a
     * stream only where it fits a budget pays for little more than that) */
    size_t max_length;
    /* Lossless wavelets, 8- and 16-bit dtypes: non-zero closes the runs of
     * sample values the chunk does not take (at most PJ2K_MAX_GAPS runs of
     * 16 values or more) before the transform: smaller streams where a
     * padding or background value lies far from the data, but reduced
     * levels then average across a gap on the closed scale
     * (docs/DESIGN.md 42).  Ignored by the other wavelets. */
    int close_gaps;
    /* Non-zero: the samples at or beyond fill_extent[a] along axis a
     * (1 <= fill_extent[a] <= its length, below it on some axis) are
     * padding, not data (zarr
     * completes edge chunks with the array's fill value).  The caller has
     * already replaced them by values continuing the data, which the
     * transform codes; the decoder sets them, at every level, to the sample
     * whose little-endian bytes open fill_value (the rest zero).  Written
     * as version 9 (docs/FORMAT.md 1 and 7). */
    int fill;
    uint64_t fill_extent[PJ2K_MAX_NDIM];
    uint8_t fill_value[PJ2K_FILL_BYTES];
    /* With fill: NULL, or one byte per sample of the data's extent (the box
     * of fill_extent, in C order), non-zero where the sample is nodata: the
     * caller has replaced it by a value continuing its data (pj2k_inpaint), which
     * the transform codes; the decoder sets it to the fill sample, and at a
     * reduced level every sample whose block (2**level samples along each
     * transformed axis) is nodata or padding throughout.  At least one must
     * be set.  Written as version 10 (docs/FORMAT.md 1 and 7). */
    const uint8_t *nodata_mask;
} pj2k_params;

/* Everything the header says, as parsed and validated. */
typedef struct {
    int version;
    pj2k_dtype dtype;
    pj2k_wavelet wavelet;
    pj2k_colour colour;
    int ndim, naxes, levels, colour_axis;
    uint64_t shape[PJ2K_MAX_NDIM];
    int axes[PJ2K_MAX_AXES];
    uint32_t header_length;
    int nbands;                          /* subbands per component */
    float steps[PJ2K_MAX_BANDS];         /* 9/7 only */
    double scale, tolerance;             /* 53_QUANTISED only */
    int layers;                          /* 1 for version 1 streams */
    uint8_t layer_shift[PJ2K_MAX_LAYERS][PJ2K_MAX_BANDS];
    unsigned m97_levels;                 /* levels lifted with 9/7-M (bit l - 1: level l); version 6 */
    /* Lossless streams of 8- and 16-bit dtypes, version 7: ranges of sample
     * values no sample takes, closed before the transform.  Gap i follows
     * the coded value gap_after[i] (increasing) and is gap_length[i] values
     * long: a decoded value v becomes v + the lengths of the gaps it is above. */
    int ngaps;
    int64_t gap_after[PJ2K_MAX_GAPS];
    uint32_t gap_length[PJ2K_MAX_GAPS];
    /* Version 9: the data's extent along each axis, the rest being padding
     * decoded as the fill sample (pj2k_params.fill). */
    int fill;
    uint64_t fill_extent[PJ2K_MAX_NDIM];
    uint8_t fill_value[PJ2K_FILL_BYTES];
    /* Version 10: the coded nodata mask's bytes, which open the first piece
     * (pj2k_params.nodata_mask; 0 in earlier versions). */
    uint64_t mask_length;
    /* Piece (resolution r, layer j) is entry r * layers + j: absolute end
     * offset and CRC-32C.  segment_end[r] is the end of resolution r. */
    uint64_t piece_end[PJ2K_MAX_PIECES];
    uint32_t piece_crc[PJ2K_MAX_PIECES];
    uint64_t segment_end[PJ2K_MAX_LEVELS + 1];
} pj2k_header;

/* Encode a C-contiguous array.  On success *out is a malloc'd buffer the
 * caller frees with pj2k_free. */
pj2k_status pj2k_encode(const pj2k_params *params, const void *data,
                        uint8_t **out, size_t *out_length);
void pj2k_free(void *ptr);

/* The same in two stages, for encoders that try several steps or layer
 * tables on one chunk: pj2k_prepare loads and transforms the samples once
 * (params' step is the scale for 53_QUANTISED; the 9/7 step and the layers
 * are given per encode); pj2k_encode_prepared quantises and codes them with
 * `step` (9/7 only), `layers` tables of shifts (0 or 1: no layers) and
 * RD-optimised quantisation of strength `rdo`, stopping with
 * PJ2K_ERR_TOO_LARGE once the stream exceeds `max_length` bytes (0: no
 * limit; see pj2k_params).
 * pj2k_encode == prepare + encode_prepared(params->step, params->layers, ...). */
typedef struct pj2k_prepared pj2k_prepared;
pj2k_status pj2k_prepare(const pj2k_params *params, const void *data, pj2k_prepared **prepared);
/* RD-optimised quantisation's bit costs: -log2(i / 4096) for i = 0..4096
 * (entry 0 as entry 1), the cost in bits of a decision of probability
 * i / 4096; pj2k_params.bit_cost. */
#define PJ2K_BIT_COST_SIZE 4097
void pj2k_bit_cost_table(float *table);
pj2k_status pj2k_encode_prepared(pj2k_prepared *prepared, double step, int layers,
                                 const uint8_t (*layer_shift)[PJ2K_MAX_BANDS], double rdo,
                                 size_t max_length, uint8_t **out, size_t *out_length);
void pj2k_prepared_free(pj2k_prepared *prepared);
/* Rate-search and layer-placement aid: how the prepared coefficients fall
 * against any base step, without quantising or coding.  counts (nbands x
 * nbins; nbands must be the chunk's, 2 <= nbins <= 2**16, else PJ2K_ERR_PARAM)
 * receives, per band (numbered like the steps; every plane and colour
 * component counts into its band's row), the coefficients by their magnitude
 * v: for 9/7 in base-step units, v = |c| * band norm (the quantiser codes
 * floor(v / step)), for the reversible modes the integer |c| itself, in
 * eighth-octave bins: with key(v) the bits of the double v shifted right by
 * 49 (biased exponent * 8 + top three mantissa bits), bin k holds the finite non-zero
 * values with key == *top_key - k, the last bin everything smaller, zero or
 * not finite.  (The float32 coefficients of 8- and 16-bit samples' 9/7 are
 * scaled in float32, and those below FLT_MIN or above FLT_MAX go to the
 * last bin.)  Each band counts only every k-th row of each plane (the
 * k-th, the 2k-th, ...), with weight k: k = row_stride, or less where that
 * would count fewer than 16 rows (k = floor(rows / 16), at least 1); every
 * row of every band where the rows so counted hold no value in any band.
 * *top_key is the largest key in the rows counted (-1: none).  counts is
 * overwritten (it need not be zeroed). */
pj2k_status pj2k_prepared_histogram(const pj2k_prepared *prepared, size_t row_stride, size_t nbands,
                                    size_t nbins, uint64_t *counts, int64_t *top_key);

/* Rate-search aid (9/7 only): what the plain quantiser's values at base step
 * `step` look like to the entropy coder.  counts (nbands x nctx x nexps;
 * nbands must be the chunk's, nctx >= 1, nexps >= 2, else PJ2K_ERR_PARAM)
 * receives, per band, the values m = floor(|c| * band norm / step) by the
 * bit length of m (capped at nexps - 1) and by the magnitude context (two per
 * octave, docs/FORMAT.md 6.2; capped at nctx - 1) of the neighbourhood sum
 * 2W + NW + 2N + NE + 2B (west, north-west, north, north-east in the row
 * above, and the previous plane's value in 3-D) plus the parent term of
 * docs/FORMAT.md 6.2, and in components 1 and 2 of a colour chunk but in
 * the low band, the colour term |C|: the coder's sum, each magnitude capped
 * at 2**26 - 1.  Each band counts only every k-th row (the k-th,
 * the 2k-th, ...), with weight k: k = row_stride, or less where that would
 * count fewer than 16 rows (k = floor(rows / 16), at least 1).  counts is
 * overwritten (it need not be zeroed). */
pj2k_status pj2k_prepared_context_counts(const pj2k_prepared *prepared, double step, size_t row_stride,
                                         size_t nbands, size_t nctx, size_t nexps, uint64_t *counts);

/* The rate model's tables from a histogram of pj2k_prepared_histogram
 * (counts: nbands x nbins, top_key its *top_key, >= 0): at each base step on
 * the bins' edges, the estimated bits (per band's zero-order entropy of the
 * exponents of floor(v / step), plus one bit per mantissa bit below the
 * leading one and per sign) and squared error (v**2 for the values a step
 * zeroes, step**2 / 12 for the others), summed over the bands or (per_band)
 * one row per band; then extension_octaves more octaves below the finest
 * bin in use, 8 points an octave.  log_step (natural log, ascending)
 * receives *length values, bits and error rows x *length (rows: nbands if
 * per_band, else 1), all of room nbins + 8 + 8 * extension_octaves per row.
 * PJ2K_ERR_PARAM where no bin but the last holds a value. */
#define PJ2K_RATE_MAX_BINS 4096
#define PJ2K_RATE_MAX_EXTENSION 256
pj2k_status pj2k_rate_tables(const uint64_t *counts, size_t nbands, size_t nbins, int64_t top_key,
                             int per_band, size_t extension_octaves, double *log_step,
                             double *bits, double *error, size_t *length);

/* The context gain of counts from pj2k_prepared_context_counts (nbands x
 * nctx x nexps): estimated bits with the bit lengths coded per band and
 * context over the same with one distribution per band, both plus one bit
 * per mantissa bit below the leading one and per sign; *gain < 0 where no
 * value is non-zero. */
pj2k_status pj2k_context_gain(const uint64_t *counts, size_t nbands, size_t nctx, size_t nexps,
                              double *gain);

/* Inverts a falling table (the rate model's log bytes or minus log error
 * against log step): *x, within [lo, hi], where the piecewise linear
 * (xs, ys) first falls to y (the finest crossing: a zero-order estimate can
 * rise a little between neighbouring points); lo where the table at lo is
 * not above y (or NaN), hi where the table at hi is not below y (or NaN);
 * at a crossing next to an infinite point, the finite point's x.  xs
 * strictly ascending (else PJ2K_ERR_PARAM), n >= 2.  The arithmetic is
 * numpy's interp and the reference's in tests/test_lossy.py, bit for bit. */
pj2k_status pj2k_rate_solve(const double *xs, const double *ys, size_t n, double y, double lo,
                            double hi, double *x);
/* The table (xs, ys) read at x: numpy's interp, bit for bit (xs strictly
 * ascending, n >= 2; else PJ2K_ERR_PARAM). */
pj2k_status pj2k_rate_interp(const double *xs, const double *ys, size_t n, double x, double *y);

/* The prepared 9/7 coefficients, for tests and tools: *count values,
 * planes (axes neither transformed nor colour) x colour components x the
 * transformed axes, each transformed block in the Mallat layout (the low
 * band at the origin, a level's high band along an axis after its low part),
 * copied as doubles into `out` when it holds `capacity` >= *count (out NULL:
 * only the count). */
pj2k_status pj2k_prepared_coefficients(const pj2k_prepared *prepared, double *out, size_t capacity,
                                       size_t *count);

/* The samples that decoding the last stream pj2k_encode_prepared made gives
 * at full resolution through quality layer `layer` (-1: all), bit for bit,
 * without entropy decoding it: its values, as far as those layers carry
 * them, reconstructed as the decoder does (after a successful encode, else
 * PJ2K_ERR_PARAM; out_size must be the chunk's size in bytes).  Rate
 * searches and layer placement that measure a trial's error use it instead
 * of a decode.  Its working buffers stay in `prepared` for the next call
 * (freed with it), so calls on one prepared chunk must not overlap. */
pj2k_status pj2k_prepared_reconstruct(pj2k_prepared *prepared, int layer, void *out,
                                      size_t out_size);

/* A PSNR trial's error, cheaper than pj2k_prepared_reconstruct and a
 * comparison: the last stream's values through every layer reconstructed
 * as the decoder does and compared with `original` (the chunk's samples as
 * prepared, `size` bytes); *squared: the sum of squared errors, the
 * decode's exactly, over the samples whose byte in `skip` is 0 (NULL, or
 * one byte per sample in the chunk's C order: nodata is left out).  For
 * lossy chunks of 8- and 16-bit integer dtypes, which version 8
 * reconstructs in float32; PJ2K_ERR_DTYPE for others.
 * Shares pj2k_prepared_reconstruct's kept buffers. */
pj2k_status pj2k_prepared_trial_error(pj2k_prepared *prepared, const void *original, size_t size,
                                      const uint8_t *skip, double *squared);

/* The sum of squared differences between two arrays of one dtype, nbytes
 * each (a whole number of values), each aligned for it (a reconstruction and
 * its original: a PSNR), in double; exact for 8- and 16-bit dtypes while the
 * sum is below 2**53. */
pj2k_status pj2k_squared_error(pj2k_dtype dtype, const void *a, const void *b, size_t nbytes,
                               double *sum);

/* The likeness of neighbouring planes that encode()'s choice of axes
 * reads (docs/DESIGN.md 27, 68): a 3-D block of `dtype` samples at `origin`
 * (shape, byte strides: any layout, any alignment) sampled at count[a]
 * positions along each axis a (positions[a], each below shape[a]; even
 * count[a] >= 2), the sampled points taken as pairs (2k, 2k + 1) along each
 * axis.  For each of the count[0] / 2 pairs of sampled planes, over the
 * even sampled points (y, x) of axes 1 and 2 and each of the differences
 * d to the next sampled point along axis 2 and along axis 1 (computed in
 * double: integer samples as they are, float ones in units of their largest
 * finite magnitude among the points the differences use, differences not
 * finite left out): mixed[k] the mean |d(2k + 1) - d(2k)|, within[k] the mean of
 * (|d(2k)| + |d(2k + 1)|) / 2 (0 where none count).  Allocates
 * 8 x count[0] x count[1] x count[2] bytes. */
pj2k_status pj2k_pair_detail(pj2k_dtype dtype, const void *origin, const uint64_t shape[3],
                             const int64_t strides[3], const uint64_t *const positions[3],
                             const size_t count[3], double *mixed, double *within);

/* How pj2k_inpaint fills: from the coarsest level down, each cell's missing
 * share taken from the coarser level interpolated linearly (SMOOTH: a
 * smooth continuation, for the 9/7, whose quantisation errors in the data
 * it keeps small), or every nodata sample the mean of the data in the
 * smallest block of the pyramid around it that holds some (BLOCK_MEANS:
 * flat regions, for the reversible modes, which code a smooth fill's
 * rounding in every sample; docs/DESIGN.md 61). */
typedef enum { PJ2K_INPAINT_SMOOTH = 0, PJ2K_INPAINT_BLOCK_MEANS = 1 } pj2k_inpaint_style;

/* Before an encode with pj2k_params.nodata_mask: the `mask`ed values (one
 * byte per value, non-zero: nodata) of a C-contiguous float64 array of
 * `shape` replaced, in place, by a continuation of the others along the
 * `naxes` (at most PJ2K_MAX_AXES) strictly increasing `axes` (push-pull:
 * each level's cells the mean of the data in their block, the finer levels
 * completed from the coarser as `style` says; clipped to the data's range;
 * docs/DESIGN.md 59).  Other values are left as they are.  No axis nor the
 * product may exceed 2**48.  Allocates about 4-8 bytes per value over two
 * or three axes, up to 24 along one. */
pj2k_status pj2k_inpaint(double *values, const uint8_t *mask, int ndim, const uint64_t *shape,
                         int naxes, const int *axes, pj2k_inpaint_style style);

/* Parse and validate the header.  On PJ2K_ERR_TRUNCATED, header->header_length
 * holds the number of bytes needed (PJ2K_FIXED_HEADER if fewer than that were
 * given: the full length is stored in those first bytes). */
pj2k_status pj2k_read_header(const uint8_t *buf, size_t length, pj2k_header *header);

/* Shape of the decode at `level` (each transformed axis ceil-divided by 2**level). */
void pj2k_level_shape(const pj2k_header *header, int level, uint64_t *shape);

/* The exact header length (docs/FORMAT.md 2) of a stream of this format
 * version, rank, transformed axes, levels, wavelet, quality layers and value
 * gaps (lossless, version 7 on); 0 if any is out of range. */
uint32_t pj2k_header_length(int version, int ndim, int naxes, int levels, pj2k_wavelet wavelet,
                            int layers, int ngaps);

/* The largest coefficient exponent a stream of this dtype and wavelet may
 * code (the decoder refuses larger ones); -1 if either is unknown, or no
 * stream pairs them (a float dtype with a lossless wavelet). */
int pj2k_max_exponent(pj2k_dtype dtype, pj2k_wavelet wavelet);

/* Decode at `level` (0 = full resolution) from a buffer holding at least the
 * first header->segment_end[levels - level] bytes, into a C-contiguous `out`
 * of exactly out_size bytes.  Decodes of more than max_elements elements are
 * refused; a decode allocates at most 16 bytes per element (8 for lossless
 * 8/16-bit data; version 10's nodata mask 3 more, after the coefficients
 * are freed) plus O(longest axis) scratch. */
pj2k_status pj2k_decode(const uint8_t *buf, size_t length, int level,
                        void *out, size_t out_size, uint64_t max_elements);

/* Decode at `level` using quality layers 0..layer of the finest resolution
 * decoded (coarser resolutions use all their layers); layer < 0 means all.
 * Needs the first header->piece_end[(levels - level) * layers + layer] bytes. */
pj2k_status pj2k_decode_layer(const uint8_t *buf, size_t length, int level, int layer,
                              void *out, size_t out_size, uint64_t max_elements);

/* CRC-32C (Castagnoli), as stored in the codestream. */
uint32_t pj2k_crc32c(const uint8_t *data, size_t length);

const char *pj2k_status_message(pj2k_status status);

/* The instruction set the per-sample loops (wavelets, colour transforms,
 * conversions) run with: "avx2" on CPUs that have it, else "portable", or
 * "portable" whenever the environment variable PJ2K_SIMD is "portable".
 * Chosen at each call; results are identical either way. */
const char *pj2k_kernels_name(void);

#ifdef __cplusplus
}
#endif
#endif
