# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin bindings to the C core: buffers in, buffers out, GIL released."""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memset
from cpython.buffer cimport PyBUF_RECORDS_RO, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_FromStringAndSize

import math

import numpy as np

from progressive_j2k._dtypes import DTYPE_CODES
from progressive_j2k.errors import (
    ChecksumError, CorruptDataError, DecodeError, TooLargeError, TruncatedError)


cdef extern from "progressive_j2k.h" nogil:
    ctypedef enum pj2k_status:
        PJ2K_OK, PJ2K_ERR_PARAM, PJ2K_ERR_NOMEM, PJ2K_ERR_MAGIC, PJ2K_ERR_VERSION,
        PJ2K_ERR_HEADER, PJ2K_ERR_TRUNCATED, PJ2K_ERR_CHECKSUM, PJ2K_ERR_CORRUPT,
        PJ2K_ERR_TOO_LARGE, PJ2K_ERR_DTYPE
    ctypedef enum pj2k_dtype:
        pass
    ctypedef enum pj2k_wavelet:
        PJ2K_WAVELET_53, PJ2K_WAVELET_97, PJ2K_WAVELET_53_QUANTISED, PJ2K_WAVELET_53R_QUANTISED,
        PJ2K_WAVELET_53R
    enum: PJ2K_MAX_NDIM, PJ2K_MAX_AXES, PJ2K_MAX_LEVELS, PJ2K_MAX_LAYERS, PJ2K_MAX_BANDS
    enum: PJ2K_MAX_PIECES, PJ2K_MAX_GAPS, PJ2K_FILL_BYTES
    int PJ2K_FIXED_HEADER, PJ2K_FORMAT_VERSION, PJ2K_FORMAT_VERSION_PADDED, PJ2K_FORMAT_VERSION_FLOAT32
    int PJ2K_FORMAT_VERSION_COMPAT, PJ2K_M97_AUTO
    double PJ2K_RDO_DEFAULT
    ctypedef struct pj2k_params:
        pj2k_dtype dtype
        int ndim
        uint64_t shape[PJ2K_MAX_NDIM]
        int naxes
        int axes[PJ2K_MAX_AXES]
        int colour_axis
        int levels
        pj2k_wavelet wavelet
        double step
        double tolerance
        int layers
        uint8_t layer_shift[PJ2K_MAX_LAYERS][PJ2K_MAX_BANDS]
        double rdo
        int m97_levels
        const float *bit_cost
        size_t max_length
        int close_gaps
        int fill
        uint64_t fill_extent[PJ2K_MAX_NDIM]
        uint8_t fill_value[PJ2K_FILL_BYTES]
        const uint8_t *nodata_mask
    ctypedef struct pj2k_header:
        int version
        pj2k_dtype dtype
        pj2k_wavelet wavelet
        int colour
        int ndim, naxes, levels, colour_axis
        uint64_t shape[PJ2K_MAX_NDIM]
        int axes[PJ2K_MAX_AXES]
        uint32_t header_length
        int nbands
        float steps[PJ2K_MAX_BANDS]
        double scale, tolerance
        int layers
        uint8_t layer_shift[PJ2K_MAX_LAYERS][PJ2K_MAX_BANDS]
        unsigned m97_levels
        int ngaps
        int64_t gap_after[PJ2K_MAX_GAPS]
        uint32_t gap_length[PJ2K_MAX_GAPS]
        int fill
        uint64_t fill_extent[PJ2K_MAX_NDIM]
        uint8_t fill_value[PJ2K_FILL_BYTES]
        uint64_t mask_length
        uint64_t piece_end[PJ2K_MAX_PIECES]
        uint32_t piece_crc[PJ2K_MAX_PIECES]
        uint64_t segment_end[PJ2K_MAX_LEVELS + 1]
    void pj2k_free(void *ptr)
    ctypedef struct pj2k_prepared:
        pass
    pj2k_status pj2k_prepare(const pj2k_params *params, const void *data, pj2k_prepared **prepared)
    void pj2k_bit_cost_table(float *table)
    enum: PJ2K_BIT_COST_SIZE
    pj2k_status pj2k_encode_prepared(pj2k_prepared *prepared, double step, int layers,
                                     const uint8_t (*layer_shift)[PJ2K_MAX_BANDS], double rdo,
                                     size_t max_length, uint8_t **out, size_t *out_length)
    void pj2k_prepared_free(pj2k_prepared *prepared)
    pj2k_status pj2k_prepared_histogram(const pj2k_prepared *prepared, size_t row_stride,
                                        size_t nbands, size_t nbins, uint64_t *counts,
                                        int64_t *top_key)
    pj2k_status pj2k_prepared_coefficients(const pj2k_prepared *prepared, double *out,
                                           size_t capacity, size_t *count)
    pj2k_status pj2k_prepared_context_counts(const pj2k_prepared *prepared, double step,
                                             size_t row_stride, size_t nbands, size_t nctx,
                                             size_t nexps, uint64_t *counts)
    pj2k_status pj2k_prepared_reconstruct(pj2k_prepared *prepared, int layer, void *out,
                                          size_t out_size)
    pj2k_status pj2k_prepared_trial_error(pj2k_prepared *prepared, const void *original,
                                          size_t size, const uint8_t *skip, double *squared)
    pj2k_status pj2k_read_header(const uint8_t *buf, size_t length, pj2k_header *header)
    uint32_t pj2k_header_length(int version, int ndim, int naxes, int levels, pj2k_wavelet wavelet,
                                int layers, int ngaps)
    int pj2k_max_exponent(pj2k_dtype dtype, pj2k_wavelet wavelet)
    pj2k_status pj2k_decode_layer(const uint8_t *buf, size_t length, int level, int layer,
                                  void *out, size_t out_size, uint64_t max_elements)
    uint32_t pj2k_crc32c(const uint8_t *data, size_t length)
    pj2k_status pj2k_rate_tables(const uint64_t *counts, size_t nbands, size_t nbins,
                                 int64_t top_key, int per_band, size_t extension_octaves,
                                 double *log_step, double *bits, double *error, size_t *length)
    pj2k_status pj2k_context_gain(const uint64_t *counts, size_t nbands, size_t nctx,
                                  size_t nexps, double *gain)
    pj2k_status pj2k_rate_solve(const double *xs, const double *ys, size_t n, double y,
                                double lo, double hi, double *x)
    pj2k_status pj2k_rate_interp(const double *xs, const double *ys, size_t n, double x,
                                 double *y)
    pj2k_status pj2k_squared_error(pj2k_dtype dtype, const void *a, const void *b, size_t nbytes,
                                   double *sum)
    pj2k_status pj2k_pair_detail(pj2k_dtype dtype, const void *origin, const uint64_t *shape,
                                 const int64_t *strides, const uint64_t **positions,
                                 const size_t *count, double *mixed, double *within)
    ctypedef enum pj2k_inpaint_style:
        PJ2K_INPAINT_SMOOTH
        PJ2K_INPAINT_BLOCK_MEANS
    pj2k_status pj2k_inpaint(double *values, const uint8_t *mask, int ndim, const uint64_t *shape,
                             int naxes, const int *axes, pj2k_inpaint_style style)
    const char *pj2k_status_message(pj2k_status status)
    const char *pj2k_kernels_name()

cdef extern from "internal.h" nogil:
    int pj2k_band_norms(const uint64_t *lengths, int naxes, int levels, double *norms)
    uint32_t pj2k_crc32c_portable(const uint8_t *data, size_t length)
    int pj2k_crc32c_accelerated()

MAX_NDIM = PJ2K_MAX_NDIM
MAX_AXES = PJ2K_MAX_AXES
MAX_LEVELS = PJ2K_MAX_LEVELS
MAX_LAYERS = PJ2K_MAX_LAYERS
MAX_GAPS = PJ2K_MAX_GAPS
RDO_DEFAULT = PJ2K_RDO_DEFAULT
FIXED_HEADER = PJ2K_FIXED_HEADER
FORMAT_VERSION = PJ2K_FORMAT_VERSION
FORMAT_VERSION_PADDED = PJ2K_FORMAT_VERSION_PADDED
FORMAT_VERSION_FLOAT32 = PJ2K_FORMAT_VERSION_FLOAT32
FORMAT_VERSION_COMPAT = PJ2K_FORMAT_VERSION_COMPAT

_ERRORS = {
    PJ2K_ERR_PARAM: ValueError,
    PJ2K_ERR_NOMEM: MemoryError,
    PJ2K_ERR_MAGIC: DecodeError,
    PJ2K_ERR_VERSION: DecodeError,
    PJ2K_ERR_HEADER: DecodeError,
    PJ2K_ERR_TRUNCATED: TruncatedError,
    PJ2K_ERR_CHECKSUM: ChecksumError,
    PJ2K_ERR_CORRUPT: CorruptDataError,
    PJ2K_ERR_TOO_LARGE: TooLargeError,
    PJ2K_ERR_DTYPE: TypeError,
}


cdef raise_status(pj2k_status status, str context):
    message = pj2k_status_message(status).decode()
    raise _ERRORS.get(status, DecodeError)(f"{context}: {message}")


# RD-optimised quantisation's bit costs, made once and shared by every encode
# (a constant: pj2k_params.bit_cost)
cdef float BIT_COST[PJ2K_BIT_COST_SIZE]
pj2k_bit_cost_table(BIT_COST)


cdef fill_params(pj2k_params *params, int dtype_code, tuple shape, tuple axes, int colour_axis,
                 int levels, int wavelet, double step, double tolerance, int m97_levels,
                 bint close_gaps, tuple fill_extent, bytes fill_value):
    memset(params, 0, sizeof(pj2k_params))
    if len(shape) > PJ2K_MAX_NDIM or len(axes) > PJ2K_MAX_AXES:
        raise ValueError("too many dimensions or transformed axes")
    params.dtype = <pj2k_dtype>dtype_code
    params.ndim = len(shape)
    for i, n in enumerate(shape):
        params.shape[i] = n
    params.naxes = len(axes)
    for i, a in enumerate(axes):
        params.axes[i] = a
    params.colour_axis = colour_axis
    params.levels = levels
    params.wavelet = <pj2k_wavelet>wavelet
    params.step = step
    params.tolerance = tolerance
    params.m97_levels = m97_levels
    params.close_gaps = close_gaps
    params.bit_cost = BIT_COST
    if fill_extent:
        if len(fill_extent) != len(shape) or len(fill_value) > PJ2K_FILL_BYTES:
            raise ValueError("a fill extent per axis and one sample's bytes")
        params.fill = 1
        for i, n in enumerate(fill_extent):
            params.fill_extent[i] = n
        for i, byte in enumerate(fill_value):
            params.fill_value[i] = byte


cdef fill_layers(pj2k_params *params, tuple layer_shifts):
    if len(layer_shifts) > PJ2K_MAX_LAYERS:
        raise ValueError(f"at most {PJ2K_MAX_LAYERS} quality layers")
    params.layers = len(layer_shifts)
    for j, shifts in enumerate(layer_shifts):
        if len(shifts) > PJ2K_MAX_BANDS:
            raise ValueError("too many bands")
        for b, shift in enumerate(shifts):
            if not 0 <= shift <= 255:
                raise ValueError(f"layer shift {shift} out of range")
            params.layer_shift[j][b] = shift


cdef class Prepared:
    """A chunk loaded and transformed once (pj2k_prepare), to be coded with
    several steps or layer tables: encode(step, layer_shifts, rdo,
    max_length) -> bytes, or None where longer than max_length (> 0).
    `data` is the C-contiguous bytes of an array with `shape`; wavelet 0 is
    lossless 5/3 (4: the rounded 5/3), 1 lossy 9/7 (the step is given per
    encode), 2 error-bounded (3: the rounded 5/3; `step` here is the scale,
    at most twice `tolerance`, the bound checked per sample).  m97_levels
    (all but 1): the levels lifted with
    9/7-M, bit l - 1 for level l, or -1 to let the encoder choose.
    close_gaps (wavelets 0 and 4): close the chunk's value gaps
    (pj2k_params.close_gaps).  fill_extent, fill_value: the data's extent
    per axis, beyond which the chunk is padding that decodes as
    the sample of those bytes (pj2k_params.fill), or () for none;
    nodata_mask: None, or one byte per sample of that extent's box (C
    order), non-zero where the sample is nodata (pj2k_params.nodata_mask).  layer_shifts: per quality layer, one shift per band (never
    increasing, the last layer's all 0), or () for no layers.  rdo: strength
    of RD-optimised quantisation (9/7 only; 0 = plain quantiser).
    Not for sharing between threads: an encode writes into the object (the
    quantised values), so use one object per thread, as encode() does."""
    cdef pj2k_prepared *ptr
    cdef size_t elements

    def __cinit__(self, const uint8_t[::1] data, int dtype_code, tuple shape, tuple axes,
                  int colour_axis, int levels, int wavelet, double step, double tolerance=0.0,
                  int m97_levels=PJ2K_M97_AUTO, bint close_gaps=False, tuple fill_extent=(),
                  bytes fill_value=b"", const uint8_t[::1] nodata_mask=None):
        cdef pj2k_params params
        cdef pj2k_status status
        fill_params(&params, dtype_code, shape, axes, colour_axis, levels, wavelet, step, tolerance,
                    m97_levels, close_gaps, fill_extent, fill_value)
        self.elements = 1
        for n in shape:
            self.elements *= n
        if nodata_mask is not None:
            inside = 1
            for n in fill_extent:
                inside *= n
            if not fill_extent or nodata_mask.shape[0] != inside:
                raise ValueError("a nodata mask needs a fill extent, and a byte per sample in it")
            params.nodata_mask = &nodata_mask[0]
        with nogil:
            status = pj2k_prepare(&params, &data[0] if data.shape[0] else <uint8_t *>&params,
                                  &self.ptr)
        if status != PJ2K_OK:
            raise_status(status, "encode")

    def __dealloc__(self):
        pj2k_prepared_free(self.ptr)

    def encode(self, double step, tuple layer_shifts=(), double rdo=0.0, size_t max_length=0):
        """The stream (pj2k_encode_prepared); with max_length > 0, None
        where it would be longer (the encoder stops as soon as it is)."""
        cdef pj2k_params params   # only its layer tables are used
        cdef uint8_t *out = NULL
        cdef size_t out_length = 0
        cdef pj2k_status status
        memset(&params, 0, sizeof(params))
        fill_layers(&params, layer_shifts)
        try:
            with nogil:
                status = pj2k_encode_prepared(self.ptr, step, params.layers, params.layer_shift,
                                              rdo, max_length, &out, &out_length)
            if status == PJ2K_ERR_TOO_LARGE and max_length:
                return None
            if status != PJ2K_OK:
                raise_status(status, "encode")
            return PyBytes_FromStringAndSize(<char *>out, out_length)
        finally:
            pj2k_free(out)

    def histogram(self, uint64_t[:, ::1] counts, size_t row_stride=1):
        """Fill counts (the chunk's nbands x nbins, nbins >= 2) with the
        coefficients per band and eighth-octave bin of |c| * band norm (9/7)
        or |c| (reversible modes), each band's every row_stride-th row
        counted row_stride times (pj2k_prepared_histogram); returns the top
        bin's key."""
        cdef int64_t top_key = -1
        cdef pj2k_status status
        with nogil:
            status = pj2k_prepared_histogram(self.ptr, row_stride, counts.shape[0],
                                             counts.shape[1], &counts[0, 0], &top_key)
        if status != PJ2K_OK:
            raise_status(status, "histogram")
        return top_key

    def coefficients(self, double[::1] out=None):
        """9/7 only: the prepared coefficients (pj2k_prepared_coefficients),
        copied as float64 into `out`; without it, their count."""
        cdef size_t count = 0
        cdef pj2k_status status
        if out is None or out.shape[0] == 0:
            status = pj2k_prepared_coefficients(self.ptr, NULL, 0, &count)
        else:
            with nogil:
                status = pj2k_prepared_coefficients(self.ptr, &out[0], out.shape[0], &count)
        if status != PJ2K_OK:
            raise_status(status, "coefficients")
        return count

    def reconstruct(self, uint8_t[::1] out, int layer=-1):
        """After an encode: fill `out` (the chunk's bytes) with what decoding
        that stream through quality layer `layer` (-1: all) gives, without
        entropy decoding it (pj2k_prepared_reconstruct)."""
        cdef pj2k_status status
        cdef uint8_t dummy = 0
        with nogil:
            status = pj2k_prepared_reconstruct(self.ptr, layer,
                                               &out[0] if out.shape[0] else &dummy, out.shape[0])
        if status != PJ2K_OK:
            raise_status(status, "reconstruct")

    def trial_error(self, const uint8_t[::1] original, const uint8_t[::1] skip=None):
        """After an encode: the sum of squared errors of the stream's decode
        against `original` (the chunk's bytes), without entropy decoding or
        storing it (pj2k_prepared_trial_error), over the samples whose byte
        in `skip` (None, or one per sample in C order) is 0.  None where the
        chunk is not reconstructed in float32 (not lossy 8- or 16-bit)."""
        cdef pj2k_status status
        cdef double squared = 0.0
        cdef uint8_t dummy = 0
        cdef const uint8_t *skip_at = NULL
        if skip is not None:
            if <size_t>skip.shape[0] != self.elements:
                raise ValueError("trial_error: skip needs one byte per sample of the chunk")
            skip_at = &skip[0] if skip.shape[0] else &dummy
        with nogil:
            status = pj2k_prepared_trial_error(self.ptr, &original[0] if original.shape[0] else &dummy,
                                               original.shape[0], skip_at, &squared)
        if status == PJ2K_ERR_DTYPE:
            return None
        if status != PJ2K_OK:
            raise_status(status, "trial_error")
        return squared

    def context_counts(self, double step, size_t row_stride, uint64_t[:, :, ::1] counts):
        """9/7 only: fill counts (nbands x contexts x exponents) with the plain
        quantiser's values at `step` by band, neighbourhood context and bit
        length (pj2k_prepared_context_counts)."""
        cdef pj2k_status status
        with nogil:
            status = pj2k_prepared_context_counts(self.ptr, step, row_stride, counts.shape[0],
                                                  counts.shape[1], counts.shape[2], &counts[0, 0, 0])
        if status != PJ2K_OK:
            raise_status(status, "context_counts")


def read_header(const uint8_t[::1] buf):
    """Parse the header; returns a dict of its fields."""
    cdef pj2k_header h
    cdef pj2k_status status
    cdef size_t n = buf.shape[0]
    with nogil:
        status = pj2k_read_header(&buf[0] if n else NULL, n, &h)
    if status == PJ2K_ERR_TRUNCATED:
        raise TruncatedError(
            f"read_header: the header needs {h.header_length} bytes, got {n}", h.header_length)
    if status != PJ2K_OK:
        raise_status(status, "read_header")
    cdef int i, j, r
    # list comprehensions over C ints compile to plain loops (generator
    # expressions would not): this runs for every chunk a reader decodes
    cdef int lossy = h.wavelet == PJ2K_WAVELET_97
    cdef int scaled = h.wavelet == PJ2K_WAVELET_53_QUANTISED or h.wavelet == PJ2K_WAVELET_53R_QUANTISED
    return dict(
        version=h.version, dtype_code=<int>h.dtype, wavelet=<int>h.wavelet,
        scale=h.scale if scaled else None, tolerance=h.tolerance if scaled else None,
        shape=tuple([h.shape[i] for i in range(h.ndim)]),
        axes=tuple([h.axes[i] for i in range(h.naxes)]),
        colour_axis=None if h.colour_axis < 0 else h.colour_axis,
        levels=h.levels, header_length=h.header_length, m97_levels=h.m97_levels,
        gaps=tuple([(h.gap_after[i], h.gap_length[i]) for i in range(h.ngaps)]),
        fill_extent=tuple([h.fill_extent[i] for i in range(h.ndim)]) if h.fill else None,
        fill_bytes=bytes(h.fill_value[:PJ2K_FILL_BYTES]) if h.fill else None,
        mask_length=h.mask_length,
        steps=tuple([h.steps[i] for i in range(h.nbands)]) if lossy else (),
        layer_shifts=tuple([tuple([h.layer_shift[j][i] for i in range(h.nbands)])
                            for j in range(h.layers)]),
        piece_ends=tuple([tuple([h.piece_end[r * h.layers + j] for j in range(h.layers)])
                          for r in range(h.levels + 1)]),
        piece_crcs=tuple([tuple([h.piece_crc[r * h.layers + j] for j in range(h.layers)])
                          for r in range(h.levels + 1)]),
    )


def decode_into(const uint8_t[::1] buf, int level, uint8_t[::1] out, uint64_t max_elements,
                int layer=-1):
    """Decode `buf` at `level` (quality layers 0..layer of its finest
    resolution; -1 = all) into the C-contiguous bytes of `out`."""
    cdef pj2k_status status
    cdef size_t n = buf.shape[0], m = out.shape[0]
    cdef uint8_t dummy = 0
    with nogil:
        status = pj2k_decode_layer(&buf[0] if n else NULL, n, level, layer,
                                   &out[0] if m else &dummy, m, max_elements)
    if status != PJ2K_OK:
        raise_status(status, "decode")


def header_length(int version, int ndim, int naxes, int levels, int wavelet, int layers,
                  int gaps):
    """The exact header length of such a stream (pj2k_header_length)."""
    cdef uint32_t n = pj2k_header_length(version, ndim, naxes, levels, <pj2k_wavelet>wavelet,
                                         layers, gaps)
    if n == 0:
        raise ValueError(f"no stream has version {version}, {ndim} dimensions, {naxes} axes, "
                         f"{levels} levels, wavelet {wavelet}, {layers} layers and {gaps} gaps")
    return n


def max_exponent(int dtype_code, int wavelet):
    """The largest coefficient exponent of such a stream (pj2k_max_exponent)."""
    cdef int e = pj2k_max_exponent(<pj2k_dtype>dtype_code, <pj2k_wavelet>wavelet)
    if e < 0:
        raise ValueError(f"unknown dtype code {dtype_code} or wavelet {wavelet}, or no stream "
                         f"pairs them")
    return e


def band_norms(tuple lengths, int levels):
    """Synthesis norm of every band (numbered like the 9/7 steps) for
    transformed axes of these lengths: what the lossy steps divide by."""
    cdef uint64_t c_lengths[PJ2K_MAX_AXES]
    cdef double norms[PJ2K_MAX_BANDS]
    if not 1 <= len(lengths) <= PJ2K_MAX_AXES or not 0 <= levels <= PJ2K_MAX_LEVELS:
        raise ValueError(f"1 to {PJ2K_MAX_AXES} axes and 0 to {PJ2K_MAX_LEVELS} levels")
    for i, n in enumerate(lengths):
        c_lengths[i] = n
    if not pj2k_band_norms(c_lengths, len(lengths), levels, norms):
        raise MemoryError("band_norms")
    return tuple(norms[b] for b in range(1 + levels * ((1 << len(lengths)) - 1)))


def rate_tables(const uint64_t[:, ::1] counts, int64_t top_key, size_t extension_octaves,
                double[::1] log_step, double[:, ::1] bits, double[:, ::1] error):
    """The rate model's tables from a histogram (pj2k_rate_tables): per band
    where bits has a row per band, else summed into its one row; returns
    their length (columns filled)."""
    cdef size_t length = 0
    cdef pj2k_status status
    cdef Py_ssize_t width = counts.shape[1] + 8 + 8 * <Py_ssize_t>extension_octaves
    # (rows exactly `width` apart: the C spaces them so)
    if (bits.shape[0] not in (1, counts.shape[0]) or error.shape[0] != bits.shape[0]
            or log_step.shape[0] < width or bits.shape[1] != width or error.shape[1] != width):
        raise ValueError("rate_tables: output buffers of the wrong shape")
    with nogil:
        status = pj2k_rate_tables(&counts[0, 0], counts.shape[0], counts.shape[1], top_key,
                                  bits.shape[0] > 1, extension_octaves, &log_step[0],
                                  &bits[0, 0], &error[0, 0], &length)
    if status != PJ2K_OK:
        raise_status(status, "rate_tables")
    return length


def context_gain(const uint64_t[:, :, ::1] counts):
    """pj2k_context_gain of counts (bands x contexts x bit lengths): the
    gain, or None where no value is non-zero."""
    cdef double gain = -1.0
    cdef pj2k_status status
    with nogil:
        status = pj2k_context_gain(&counts[0, 0, 0], counts.shape[0], counts.shape[1],
                                   counts.shape[2], &gain)
    if status != PJ2K_OK:
        raise_status(status, "context_gain")
    return None if gain < 0 else gain


cdef check_table(const double[::1] xs, const double[::1] ys, str name):
    if xs.shape[0] != ys.shape[0] or xs.shape[0] < 2:
        raise ValueError(f"{name}: tables of different lengths, or under two points")


def rate_solve(const double[::1] xs, const double[::1] ys, double y, double lo, double hi):
    """pj2k_rate_solve: the x in [lo, hi] where the falling table (xs, ys)
    first reaches y."""
    cdef double x = 0.0
    cdef pj2k_status status
    check_table(xs, ys, "rate_solve")
    with nogil:
        status = pj2k_rate_solve(&xs[0], &ys[0], xs.shape[0], y, lo, hi, &x)
    if status != PJ2K_OK:
        raise_status(status, "rate_solve")
    return x


def rate_interp(const double[::1] xs, const double[::1] ys, double x):
    """pj2k_rate_interp: the table (xs, ys) read at x, as numpy's interp."""
    cdef double y = 0.0
    cdef pj2k_status status
    check_table(xs, ys, "rate_interp")
    with nogil:
        status = pj2k_rate_interp(&xs[0], &ys[0], xs.shape[0], x, &y)
    if status != PJ2K_OK:
        raise_status(status, "rate_interp")
    return y


def squared_error(const uint8_t[::1] a, const uint8_t[::1] b, int dtype_code):
    """The sum of (a - b)**2 over two arrays of the format dtype `dtype_code`
    given as their bytes, aligned for it (pj2k_squared_error): exact for 8-
    and 16-bit dtypes below 2**53."""
    cdef double total = 0.0
    cdef pj2k_status status
    if a.shape[0] != b.shape[0]:
        raise ValueError("squared_error: arrays of different lengths")
    if a.shape[0] == 0:
        return 0.0
    with nogil:
        status = pj2k_squared_error(<pj2k_dtype>dtype_code, &a[0], &b[0], a.shape[0], &total)
    if status != PJ2K_OK:
        raise_status(status, "squared_error")
    return total


def pair_detail(block, const uint64_t[::1] p0, const uint64_t[::1] p1, const uint64_t[::1] p2,
                double[::1] mixed, double[::1] within):
    """pj2k_pair_detail of a 3-D buffer (any strides) of a format dtype in
    native byte order, as its buffer states them, at positions p0, p1, p2
    along its axes, into mixed and within (one value per pair of sampled
    planes)."""
    cdef Py_buffer view
    cdef uint64_t dims[3]
    cdef int64_t strides[3]
    cdef const uint64_t *positions[3]
    cdef size_t count[3]
    cdef pj2k_status status
    cdef int code
    counts = (p0.shape[0], p1.shape[0], p2.shape[0])
    if min(counts) < 2 or any(c % 2 for c in counts) or \
            not mixed.shape[0] == within.shape[0] == counts[0] // 2:
        raise ValueError("pair_detail: an even number (at least 2) of positions per axis, and "
                         "room for a value per pair of planes")
    PyObject_GetBuffer(block, &view, PyBUF_RECORDS_RO)
    try:
        # the layout and dtype the buffer itself gives (not the object's own
        # attributes, which a subclass may state otherwise)
        dtype = _buffer_dtype(view.format)
        code = DTYPE_CODES.get(dtype, -1)
        if view.ndim != 3 or code < 0 or view.itemsize != dtype.itemsize:
            raise ValueError(f"pair_detail: a 3-D buffer of a format dtype, not {dtype} "
                             f"in {view.ndim}-D")
        for a in range(3):
            dims[a] = view.shape[a]
            strides[a] = view.strides[a]
            count[a] = counts[a]
        positions[0], positions[1], positions[2] = &p0[0], &p1[0], &p2[0]
        with nogil:
            status = pj2k_pair_detail(<pj2k_dtype>code, view.buf, dims, strides, positions,
                                      count, &mixed[0], &within[0])
    finally:
        PyBuffer_Release(&view)
    if status != PJ2K_OK:
        raise_status(status, "pair_detail")


cdef _buffer_dtype(const char *buffer_format):
    """The numpy dtype of a buffer's struct format ("B", "<h", ...), or None."""
    try:
        return np.dtype(buffer_format.decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError):
        return None


def inpaint(double[::1] values, const uint8_t[::1] mask, tuple shape, tuple axes,
            bint block_means=False):
    """The masked values of a float64 array of `shape` (flat, C order)
    filled in place from the others along `axes` (pj2k_inpaint): smooth, or
    with block_means the mean of the data in the smallest block around."""
    cdef uint64_t dims[PJ2K_MAX_NDIM]
    cdef int axis_list[PJ2K_MAX_AXES]
    cdef pj2k_status status
    cdef int ndim = len(shape), naxes = len(axes)
    if not 1 <= ndim <= PJ2K_MAX_NDIM or naxes > PJ2K_MAX_AXES or \
            values.shape[0] != mask.shape[0] or math.prod(shape) != values.shape[0]:
        raise ValueError("inpaint: a shape of 1 to 32 axes holding the values, at most 3 "
                         "axes, and a mask of their length")
    for i, n in enumerate(shape):
        dims[i] = n
    for i, a in enumerate(axes):
        axis_list[i] = a
    if values.shape[0] == 0:
        return
    with nogil:
        status = pj2k_inpaint(&values[0], &mask[0], ndim, dims, naxes, axis_list,
                              PJ2K_INPAINT_BLOCK_MEANS if block_means else PJ2K_INPAINT_SMOOTH)
    if status != PJ2K_OK:
        raise_status(status, "inpaint")


def crc32c(const uint8_t[::1] data, bint portable=False):
    """CRC-32C of `data` (the accelerated path unless `portable`)."""
    cdef size_t n = data.shape[0]
    cdef const uint8_t *p = &data[0] if n else NULL
    cdef uint32_t crc
    with nogil:
        crc = pj2k_crc32c_portable(p, n) if portable else pj2k_crc32c(p, n)
    return crc


def crc32c_accelerated():
    return bool(pj2k_crc32c_accelerated())


def kernels():
    """The instruction set the per-sample loops run with now: "avx2" or
    "portable" (forced by the environment variable PJ2K_SIMD=portable)."""
    return pj2k_kernels_name().decode()
