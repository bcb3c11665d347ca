"""Functional API: encode, decode (at any resolution level) and read_header."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields

import numpy as np
from numcodecs.compat import ensure_contiguous_ndarray

from progressive_j2k import _core, _edges, _layers, _metrics, _rate
from progressive_j2k._bands import band_count, band_norms
from progressive_j2k._axes import AUTO_COLOUR, choose_axes, encoder_colour_axis
from progressive_j2k._dtypes import DTYPE_CODES, DTYPES
from progressive_j2k._options import (check_dtype, check_layout, check_targets, integer_option,
                                      layer_count, lossy_ratio, nodata_in, normalise_options,
                                      resolve_options)
from progressive_j2k.errors import (DecodeError, NonFiniteError, OutDtypeError, PSNRPeakWarning,
                                    TooLargeError, TruncatedError)

MAX_LEVELS = _core.MAX_LEVELS
#: Decoding refuses to allocate more than this many bytes (output plus working
#: buffers) unless told otherwise.
DEFAULT_MAX_DECODED_BYTES = 1 << 32
#: Lossy limits: the quantised values must fit the coder (|data| / step) and
#: the per-band steps are stored as float32.
MAX_LOSSY_RANGE_OVER_STEP = 2.0**50
MAX_LOSSY_STEP = 1e37
#: A target's search keeps its steps to max|data| / step at most this, a
#: bit inside the coder's limit above (its start step is clamped alike)
TARGET_RANGE_OVER_STEP = 2.0**49


def _largest_band_norm(shape, options: dict) -> float:
    return max(band_norms(tuple(shape[a] for a in options["axes"]), options["levels"]))


def min_lossy_step(shape, options: dict) -> float:
    """The smallest base step whose band steps (step / band norm, stored as
    float32) are all at least the smallest float32, 2**-149."""
    return 2.0**-149 * _largest_band_norm(shape, options)
FIXED_HEADER_BYTES = _core.FIXED_HEADER


#: The mode of each wavelet code (docs/FORMAT.md 1): 0 and 4 lossless, 1
#: lossy, 2 and 3 error-bounded; 3 and 4 lift with the rounded 5/3, whose
#: reduced levels carry no bias (docs/DESIGN.md 31).
WAVELET_MODES = ("lossless", "lossy", "tolerance", "tolerance", "lossless")
#: The wavelet codes encode() writes for lossless and error-bounded chunks.
LOSSLESS_WAVELET, TOLERANCE_WAVELET = 4, 3
#: The wavelet code encode() writes for each mode
MODE_WAVELETS = {"lossless": LOSSLESS_WAVELET, "lossy": 1, "tolerance": TOLERANCE_WAVELET}


#: The newest format version of a chunk without padding (version 9 adds
#: the fill field, 10 the nodata mask's length; 7 and 8 have the same layout).
UNPADDED_VERSION = _core.FORMAT_VERSION_FLOAT32


def padded_version(padding) -> int:
    """The format version of a chunk with this padding (_edges.Padding, or None)."""
    if padding is None:
        return UNPADDED_VERSION
    return _core.FORMAT_VERSION if padding.nodata is not None else _core.FORMAT_VERSION_PADDED


def header_length(ndim: int, naxes: int, levels: int, mode: str, layers: int = 1,
                  version: int = UNPADDED_VERSION, gaps: int = 0) -> int:
    """Exact header size (docs/FORMAT.md, section 1) for a chunk of this rank,
    transformed axes, levels, mode ("lossless", "lossy" or "tolerance"),
    number of quality layers, format version (by default that of a chunk
    without padding: version 9 adds the fill field, 10 the mask's length)
    and (lossless, versions 7 to 10) value gaps: at most _core.MAX_GAPS.
    (The C core's one definition.)"""
    wavelet = MODE_WAVELETS[mode]
    if version < 6:   # (before the rounded 5/3: JPEG 2000's, of the same header length)
        wavelet = {LOSSLESS_WAVELET: 0, TOLERANCE_WAVELET: 2}.get(wavelet, wavelet)
    return _core.header_length(version, ndim, naxes, levels, wavelet, layers, gaps)


def smallest_lossy_stream(ndim: int, naxes: int, levels: int, layers: int = 1,
                          version: int = UNPADDED_VERSION) -> int:
    """Bytes of the smallest lossy stream of this format version: its
    header, and every piece's range-coder flush (and in version 10 a mask,
    not counted)."""
    return (header_length(ndim, naxes, levels, "lossy", layers, version)
            + _layers.PIECE_FLUSH_BYTES * (levels + 1) * layers)


#: Bytes that always suffice for read_header: the largest possible header
#: (32 dimensions, lossy, 10 levels, 16 layers, padding and a mask).  Typical headers
#: are 100-300 bytes; the exact length is stored in the first
#: FIXED_HEADER_BYTES bytes.
MAX_HEADER_BYTES = header_length(_core.MAX_NDIM, _core.MAX_AXES, _core.MAX_LEVELS, "lossy",
                                 _core.MAX_LAYERS, version=_core.FORMAT_VERSION)


@dataclass(frozen=True)
class Header:
    """What a chunk's header says (see docs/FORMAT.md)."""

    version: int
    dtype: np.dtype
    shape: tuple
    axes: tuple
    colour_axis: int | None
    levels: int
    wavelet: int
    scale: float | None
    tolerance: float | None
    header_length: int
    steps: tuple
    layer_shifts: tuple
    piece_ends: tuple
    piece_crcs: tuple
    #: reversible modes, version 6: the levels lifted with 9/7-M instead of
    #: 5/3, bit l - 1 for level l (docs/FORMAT.md 4)
    m97_levels: int = 0
    #: lossless, versions 7 and 8: the runs of sample values the chunk does not
    #: take, closed before the transform: (coded value the gap follows,
    #: its length) per gap (docs/FORMAT.md 2)
    gaps: tuple = ()
    #: version 9: the data's extent per axis, beyond which the chunk is
    #: padding that decodes as ``fill_value`` at every level (None: no
    #: padding; docs/FORMAT.md 1)
    fill_extent: tuple | None = None
    fill_value: object = None
    #: version 10: the bytes of the nodata mask that opens the first piece
    #: (samples inside the extent that decode as ``fill_value``; 0: none)
    mask_length: int = 0

    def _key(self) -> tuple:
        """The fields, the fill value by its bits: a NaN fill value (a
        float chunk's, zarr's default) is equal to itself."""
        return tuple(np.asarray(self.fill_value).tobytes() if f.name == "fill_value"
                     and self.fill_value is not None else getattr(self, f.name)
                     for f in fields(self))

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    @property
    def mode(self) -> str:
        """"lossless" (5/3), "lossy" (9/7) or "tolerance" (error-bounded)."""
        return WAVELET_MODES[self.wavelet]

    @property
    def reversible(self) -> bool:
        """True when the full-resolution decode (of all layers) is bit-exact."""
        return WAVELET_MODES[self.wavelet] == "lossless"

    @property
    def layers(self) -> int:
        """Quality layers per resolution (1: none)."""
        return len(self.layer_shifts)

    @property
    def segment_ends(self) -> tuple:
        """End offset of each resolution's data, coarsest first."""
        return tuple(ends[-1] for ends in self.piece_ends)

    @property
    def nbytes(self) -> int:
        """Length of the whole codestream."""
        return self.piece_ends[-1][-1] if self.piece_ends else self.header_length

    def _check_level(self, level: int) -> int:
        level = integer_option(level, "level")
        if not 0 <= level <= self.levels:
            raise ValueError(f"level must be in 0..{self.levels}, got {level}")
        return level

    def _check_layer(self, layer) -> int:
        if layer is None:
            return self.layers - 1
        layer = integer_option(layer, "layer")
        if not 0 <= layer < self.layers:
            raise ValueError(f"layer must be in 0..{self.layers - 1}, got {layer}")
        return layer

    def prefix_length(self, level: int = 0, layer: int | None = None) -> int:
        """Number of leading bytes that decoding at ``level`` needs, with
        quality layers 0..``layer`` of that resolution (None: all layers)."""
        resolution = self.levels - self._check_level(level)
        return self.piece_ends[resolution][self._check_layer(layer)]

    def level_shape(self, level: int = 0) -> tuple:
        """Shape of the decode at ``level``: transformed axes ceil-divided by 2**level."""
        return level_shape(self.shape, self.axes, self._check_level(level))

    def decode_memory(self, level: int = 0) -> int:
        """What decoding at ``level`` may allocate (decode_memory): what
        decode() checks max_bytes against."""
        shape = self.level_shape(level)
        bound = decode_memory(math.prod(shape), self.mode, self.dtype, max(shape, default=0),
                              math.prod(self.level_shape(self.levels)))
        # (the mask is decoded after the coefficients are freed: the larger phase)
        return max(bound, math.prod(shape) * (self.dtype.itemsize + MASK_BYTES_PER_ELEMENT)
                   if self.mask_length else 0)


def level_shape(shape, axes, level: int) -> tuple:
    """`shape` at `level`: its transformed `axes` ceil-divided by 2**level."""
    return tuple(-(-n // (1 << level)) if a in axes else n for a, n in enumerate(shape))


def _as_bytes(buf) -> np.ndarray:
    if isinstance(buf, (bytes, bytearray)):   # (the common case, at a fifth of the cost)
        return np.frombuffer(buf, np.uint8)
    if isinstance(buf, np.ndarray) and buf.dtype == np.uint8 and buf.ndim == 1 and (
            buf.flags.c_contiguous):
        return buf
    return ensure_contiguous_ndarray(buf).reshape(-1).view(np.uint8)


def read_header(buf) -> Header:
    """Parse the header of a chunk from ``buf``, which may be just a prefix.

    ``buf`` needs the header's own length (``Header.header_length``, stored in
    the first 16 bytes); the first ``MAX_HEADER_BYTES`` bytes always suffice.
    Raises ``TruncatedError`` (a ``ValueError``) with ``.needed`` set when
    ``buf`` is shorter.
    """
    fields = _core.read_header(_as_bytes(buf))
    fields["dtype"] = DTYPES[fields.pop("dtype_code")]
    sample = fields.pop("fill_bytes")
    if sample is not None:   # (little-endian bytes, read as the dtype's value)
        fields["fill_value"] = np.frombuffer(sample, fields["dtype"].newbyteorder("<"), 1)[0]
        fields["fill_value"] = fields["fill_value"].astype(fields["dtype"])
    return Header(**fields)


#: Tolerance mode's float scale gives up one ulp of the largest value, or of
#: tolerance * 2**STABLE_SCALE_BITS where that is more: the scale then does
#: not depend on the data below that magnitude (float32: 65536 tolerances,
#: at a cost of at most 1/256 of the scale; float64: 2**40, which is the
#: format's range), so a chunk that zarr decodes, partly overwrites and
#: encodes again keeps its values on the same grid and within the bound.
STABLE_SCALE_BITS = {4: 16, 8: 40}
#: Beyond that magnitude the margin is the ulp of the chunk's largest value,
#: which partial writes may change.  A float32 array's finite nodata value
#: or fill value beyond it sets the margin of every chunk (whatever its
#: values: a chunk whose first rows stay below the stable magnitude must
#: take the same grid) where its ulp costs at most 1/ANCHOR_MARGIN_SHARE of
#: the scale (-9999 at tolerance 0.01: 1/20), so that the array's chunks
#: share one grid up to its magnitude (partial writes of a CT masked with
#: -9999 at 0.01 drifted to 1.7 tolerances without it, found by a review).
#: float64's stable magnitude is the format's limit: nothing to anchor.
ANCHOR_MARGIN_SHARE = 16


def tolerance_scale(arr: np.ndarray, tolerance: float, anchors=()) -> float:
    """The quantisation scale of tolerance mode.  Samples become q * scale; a
    scale of 2 * tolerance would leave no room for the dtype's own rounding of
    q * scale, so floats give up one ulp of their largest value (or more,
    STABLE_SCALE_BITS) and integers use a whole number (whose multiples need
    no rounding).  Nodata is no sample of it: streams restore nodata exactly
    from their fill sample (format versions 9 and 10).  `anchors`: the
    array's nodata and fill values (None where not set), whose magnitude
    only widens a float32 margin, where it passes the stable magnitude and
    that costs little (ANCHOR_MARGIN_SHARE; docs/DESIGN.md 61, 62)."""
    if arr.dtype.kind == "f":
        peak = np.abs(arr).max() if arr.size else arr.dtype.type(0)
        stable = tolerance * 2.0 ** STABLE_SCALE_BITS[arr.dtype.itemsize]
        margin = max(_ulp(peak, arr.dtype), _ulp(stable, arr.dtype))
        for value in anchors if arr.dtype.itemsize == 4 else ():
            if value is not None and math.isfinite(value) and abs(value) > stable:
                anchored = _ulp(value, arr.dtype)
                if anchored <= 2 * tolerance / ANCHOR_MARGIN_SHARE:
                    margin = max(margin, anchored)
        scale = 2 * tolerance - margin
        if not scale >= tolerance:
            raise ValueError(f"tolerance {tolerance:g} is below the precision of {arr.dtype} "
                             f"at values up to {float(peak):g}")
        return scale
    return max(1.0, math.floor(2 * tolerance))


_peak = _metrics.peak_magnitude


def _ulp(value: float, dtype: np.dtype) -> float:
    """The spacing of `dtype` at |value| (capped at the dtype's largest
    binade, whose spacing np.spacing overflows to inf at the largest value)."""
    half = float(np.finfo(dtype).max) / 2
    value = abs(float(value))
    return (float(np.spacing(dtype.type(value))) if value <= half
            else 2 * float(np.spacing(dtype.type(half))))


def is_big_endian(dtype: np.dtype) -> bool:
    """The format stores little-endian samples: these dtypes need a swap."""
    return dtype.byteorder == ">" or (dtype.byteorder == "=" and not np.little_endian)


def require_finite(arr: np.ndarray, mode: str, fill_value=None, nodata=None,
                   where: str = "this chunk") -> None:
    """Refuses NaN and infinite samples, but for nodata (``nodata``, and
    any NaN where NaN is ``fill_value``) and the fill value (zarr's padding,
    which may be infinite): checked before nodata is filled in from the data
    around it, which would spread them (encode checks an infinite fill value
    again once the padding is replaced: inside the data it is refused)."""
    if arr.dtype.kind != "f":   # (the format's other dtypes are integers: nothing to scan)
        return
    if arr.size and not np.isfinite(arr).all():
        bad = ~np.isfinite(arr)
        named, fill = _edges.sample_of(nodata, arr.dtype), _edges.sample_of(fill_value, arr.dtype)
        if named is not None:
            bad &= ~_edges.matches(arr, named)
        if fill is not None:
            bad &= ~_edges.matches(arr, fill)
        if not bad.any():
            return
        nan = int(np.isnan(arr[bad]).sum())
        inf = int(bad.sum()) - nan
        raise NonFiniteError(
            f"{mode} needs finite values: {where} holds {nan} NaN and {inf} infinite "
            f"values among its {arr.size}. Replace them in the data with a finite value, "
            f"or name masked cells as nodata (nodata=, e.g. -999: decoded exactly and kept "
            f"out of every reduced level) or make NaN the fill value (encode's fill_value=, "
            f"to_zarr's, or the zarr v3 array's): NaN samples are then nodata", nan, inf)


def _wavelet_and_step(arr: np.ndarray, options: dict, fill=None) -> tuple:
    """The format's wavelet code, the step (lossy) or scale (tolerance), and
    max|data| where the mode scans the values for it (lossy; else None);
    `fill`: the array's fill value (tolerance_scale's anchor)."""
    tol = options["tolerance"]
    if tol is not None:   # (finite values: encode checked them)
        # (nodata is no sample of the grid: the stream restores it exactly,
        # from its fill sample, since format versions 9 and 10)
        scale = tolerance_scale(arr, tol, (options["nodata"], fill))
        peak = _peak(arr)
        if peak / scale >= 2.0**40:
            raise ValueError(f"tolerance {tol:g} is too small for values up to {peak:g}"
                             " (max|data| / (2 tolerance) must be below 2**40)")
        return TOLERANCE_WAVELET, scale, None
    if options["mode"] == "lossless":
        return LOSSLESS_WAVELET, 0.0, None
    # the value range, scanned once (peak: _peak's value)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    peak = max(-lo, hi)
    step = options["step"]
    if step is None:
        # 1/256 of the span, in halves that cannot overflow (exact: 256 is a
        # power of two); a constant chunk: 1, or coarser where its values
        # would not fit, and for floats no coarser than the targets' step
        # relative to the value (a step of 1 zeroed a constant chunk of 2e-5)
        span = hi / 256.0 - lo / 256.0
        step = span if span > 0 else max(1.0, peak / 2.0**40)
        if not span > 0 and arr.dtype.kind == "f" and peak > 0:
            step = min(step, max(peak * _rate.CONSTANT_STEP, min_lossy_step(arr.shape, options)))
    if not (step > 0 and math.isfinite(step)):
        raise ValueError(f"step must be a positive number, got {step}")
    targeted = options["ratio"] is not None or options["psnr"] is not None
    if targeted and options["step"] is None:   # (the search keeps to these limits: _encode_filled)
        step = max(step, peak / TARGET_RANGE_OVER_STEP)
    if step > MAX_LOSSY_STEP or peak / step >= MAX_LOSSY_RANGE_OVER_STEP:
        given = ("" if options["step"] is not None else
                 " (where the target's search starts: 1/256 of the span)" if targeted else
                 " (the default: 1/256 of the span)" if hi > lo else
                 " (the default for a constant chunk)")
        raise ValueError(f"lossy coding needs step <= {MAX_LOSSY_STEP:g} and max|data| / step "
                         f"< 2**50 (got step {step:g}{given}, max|data| {peak:g}): "
                         f"scale such values first, or use tolerance=")
    # a target's search starts at this step but keeps to min_lossy_step: it
    # is refused only where every value would quantise to zero there
    if np.float32(step / _largest_band_norm(arr.shape, options)) == 0 and (
            not targeted or peak < min_lossy_step(arr.shape, options)):
        raise ValueError(f"lossy steps are stored as float32: step {step:g} is below "
                         f"{min_lossy_step(arr.shape, options):g} for this chunk (values this "
                         f"small need scaling before lossy coding, or tolerance= mode)")
    return 1, float(step), peak


def _max_exponent(arr: np.ndarray, wavelet: int) -> int:
    """The largest coefficient exponent the format allows in this mode."""
    return _core.max_exponent(DTYPE_CODES[arr.dtype], wavelet)


def _m97_levels(m97_levels, wavelet: int, levels: int) -> int:
    """The C core's m97_levels: -1 (the encoder's choice) or a checked mask."""
    if m97_levels is None:
        return -1 if wavelet != 1 else 0
    mask = integer_option(m97_levels, "m97_levels")
    if wavelet == 1 and mask:
        raise ValueError("m97_levels applies to the reversible modes (lossless, tolerance)")
    if not 0 <= mask < 1 << levels:
        raise ValueError(f"m97_levels must be a mask of the {levels} levels (0..{(1 << levels) - 1}), "
                         f"got {m97_levels}")
    return mask


def _padded_targets(options: dict, padding, arr: np.ndarray) -> dict:
    """The targets of a chunk with zarr's padding, for its data: scaled to
    the data's share of the chunk as to_zarr scales its edge chunks'
    (edge_chunk_options: the ratio up to EDGE_FLOORS smallest streams, the
    PSNR by 10 log10(1 / share); nodata samples count in the ratio's share,
    not in the PSNR's), and a ratio's budget grown by the fill field, which
    a chunk without padding does not spend: a 15 x 32 float32 chunk of a CT
    at 8.7:1 lost its data to those 24 bytes.  (A mask's bytes are spent
    from the budget.)"""
    floor = smallest_lossy_stream(arr.ndim, len(options["axes"]), options["levels"],
                                  layer_count(options), padded_version(padding))
    mask = 0
    if padding.nodata is not None:   # the mask that opens the stream: 0.3-0.8 bytes a run
        # of its samples in C order (measured), spent from the budget
        runs = 1 + np.count_nonzero(np.diff(padding.nodata.reshape(-1).view(np.int8)))
        mask = int(MASK_BYTES_PER_RUN * runs) + _layers.PIECE_FLUSH_BYTES
    options = _edges.edge_chunk_options(
        options, math.prod(padding.extent) / arr.size, arr.dtype,
        arr.nbytes / (_edges.EDGE_FLOORS * floor),
        max(padding.data_samples(), 1) / arr.size) or options   # (all nodata: zeros coded)
    if options["ratio"] is not None:
        field = header_length(arr.ndim, 1, 0, "lossy", version=padded_version(padding)) - \
            header_length(arr.ndim, 1, 0, "lossy")
        options = {**options, "ratio": arr.nbytes / (arr.nbytes / options["ratio"] + field)}
        # a budget the mask would take most of leaves the data nothing (a 56 x 88
        # chunk with 5% scattered nodata at 20:1: every value zeroed): beside
        # the mask, two smallest streams, or the budget where that is less
        # (two layered ones took 64 x 64 chunks at 10:1 to 850 bytes, not 410)
        budget = arr.nbytes / options["ratio"]
        least = mask + min(2 * floor, budget)
        if budget < least:
            options = {**options, "ratio": arr.nbytes / least}
    return options


class _ChunkEncoder:
    """One chunk's encode: the chunk loaded and transformed once, then
    quantised and coded as often as a rate or quality search, the layers
    and the lossless comparison ask; the last stream made is remembered, so
    that its decode, or a PSNR trial's error, needs no entropy decoding."""

    def __init__(self, arr: np.ndarray, options: dict, code: int, wavelet: int, step: float,
                 m97_levels, fill=None):
        self.arr, self.options, self.code, self.wavelet = arr, options, code, wavelet
        self.fill = fill   # arr's padding (_edges.Padding), or None
        self.lossy_floor = smallest_lossy_stream(arr.ndim, len(options["axes"]), options["levels"],
                                                 version=padded_version(fill))
        self.last_made = None        # the stream encode_with made last
        self.reconstructed = None    # decode_last's output, made at its first use
        self.trial_skip = None       # trial_error's nodata samples, made at its first use
        self.lossless_tried = None   # (cap, the lossless stream or None: longer than cap)
        self.prepared = self.prepare(arr, wavelet, step, options["tolerance"] or 0.0,
                                     _m97_levels(m97_levels, wavelet, options["levels"]),
                                     fill=fill)

    def prepare(self, data, wavelet, step, tolerance=0.0, m97=-1, fill=None):
        """`data` (the chunk, or a mosaic of it) loaded and transformed with
        the chunk's axes, colour axis and levels; `fill`: the chunk's padding
        (its streams restore the fill value there)."""
        colour_axis = self.options["colour_axis"]
        extent, sample = (fill.extent, fill.sample) if fill is not None else ((), b"")
        nodata = None if fill is None or fill.nodata is None else \
            np.ascontiguousarray(fill.nodata, np.uint8).reshape(-1)
        return _core.Prepared(data.reshape(-1).view(np.uint8), self.code, data.shape,
                              self.options["axes"], -1 if colour_axis is None else colour_axis,
                              int(self.options["levels"]), wavelet, step, tolerance, m97,
                              bool(self.options["close_gaps"]), extent, sample, nodata)

    def encode_with(self, step, layer_shifts=(), rdo=False):
        self.last_made = self.prepared.encode(step, layer_shifts,
                                              _core.RDO_DEFAULT if rdo else 0.0)
        return self.last_made

    def decode_last(self, encoded, layer=None):
        """decode(encoded, layer=layer), bit for bit: for the stream
        encode_with made last, its values reconstructed without entropy
        decoding them."""
        if encoded is not self.last_made:
            decoded = decode(encoded, layer=layer, max_bytes=math.inf)
            if self.fill is not None:   # (as the reconstruction: arr's padding, not the fill)
                self.fill.like_coded(decoded, self.arr)
            return decoded
        if self.reconstructed is None:
            self.reconstructed = np.empty(self.arr.shape, self.arr.dtype)
        self.prepared.reconstruct(self.reconstructed.reshape(-1).view(np.uint8),
                                  -1 if layer is None else layer)
        if self.fill is not None and self.fill.nodata is not None:
            # (nodata decodes exactly: a PSNR trial counts the data's error
            # only, which its target was scaled for)
            self.fill.like_coded(self.reconstructed, self.arr, pads=False)
        return self.reconstructed

    def trial_error(self, encoded):
        """Prepared.trial_error of the stream encode_with made last, over
        the data (nodata decodes exactly: a PSNR trial counts the data's
        error only, which its target was scaled for); None for another
        stream, or where the chunk has no float32 reconstruction."""
        if encoded is not self.last_made:
            return None
        if self.fill is None or self.fill.nodata is None:
            return self.prepared.trial_error(self.arr.reshape(-1).view(np.uint8))
        if self.trial_skip is None:   # (as decode_last: nodata left out, padding counted)
            self.trial_skip = np.zeros(self.arr.shape, np.uint8)
            self.trial_skip[tuple(slice(0, n) for n in self.fill.extent)] = self.fill.nodata
        return self.prepared.trial_error(self.arr.reshape(-1).view(np.uint8),
                                         self.trial_skip.reshape(-1))

    def rate_model(self, prepared, row_stride=1):
        """The rate model of `prepared` (this chunk's, or a mosaic's), from
        every row_stride-th row of its bands; None where every coefficient
        is zero: nothing to model."""
        # (np.empty: histogram and context_counts zero their counts first)
        counts = np.empty((band_count(self.options["levels"], len(self.options["axes"])),
                           _rate.HISTOGRAM_BINS), np.uint64)
        top_key = prepared.histogram(counts, row_stride)
        return None if top_key < 0 else _rate.RateModel(counts, top_key, self.lossy_floor)

    def lossless_within(self, cap):
        """The chunk's lossless stream (with the layers asked), or None
        where it is longer than cap bytes: without layers, the encoder stops
        there.  Made once: a later call with a cap no larger reuses it."""
        tried, options = self.lossless_tried, self.options
        if tried is None or (tried[1] is None and cap > tried[0]):
            if options["layers"] is None:
                stream = self.prepare(self.arr, LOSSLESS_WAVELET, 0.0,
                                      fill=self.fill).encode(0.0, (), 0.0, cap)
            else:
                # (the chunk as given, with its fill value: padded alike)
                source = self.arr if self.fill is None else self.fill.original
                stream = encode(source, levels=options["levels"], axes=options["axes"],
                                colour_axis=options["colour_axis"], layers=options["layers"],
                                layer_metric=options["layer_metric"],
                                close_gaps=options["close_gaps"], nodata=options["nodata"],
                                fill_value=None if self.fill is None else self.fill.fill_value)
            self.lossless_tried = (cap, stream)
        stream = self.lossless_tried[1]
        return stream if stream is not None and len(stream) <= cap else None


def encode(data, *, levels=None, mode=None, axes=None, colour_axis=AUTO_COLOUR, step=None,
           tolerance=None, ratio=None, bits_per_sample=None, psnr=None, layers=None,
           layer_metric="ratio", rdo=None, m97_levels=None, nodata=None, reversible=None,
           close_gaps=None, fill_value=None) -> bytes:
    """Encode an array into one progressive codestream.

    levels: decomposition levels (default: enough to bring the longest
        transformed axis to one sample, at most 6).
    mode: "lossless" (5/3, or 9/7-M at the finest level; see m97_levels),
        "lossy" (9/7) or "tolerance" (error-bounded).  Default (None): implied
        by the knobs -- ``tolerance`` gives "tolerance", any of ``step``,
        ``ratio``, ``bits_per_sample`` and ``psnr`` gives "lossy", none of
        them "lossless" -- so one knob is enough: ``encode(a, ratio=20)``.
    reversible: the older spelling of the mode: True for lossless (or
        tolerance, with ``tolerance``), False for lossy.
    axes: axes to transform (default: the last three that are not the colour
        axis, less the first of three where the array is a stack of unlike
        frames, or else less the last (channels last, e.g. RGBA): where
        neighbouring planes along it do not share their edges
        (FRAME_DETAIL_LIMIT); the codecs keep all three, so that every chunk
        of an array has the same axes and levels).
    colour_axis: an axis of length 3 (RGB) to decorrelate first.  "auto"
        (default): the last axis where the array looks like an integer
        colour image (three or more dimensions, the last of length 3 after
        two longer ones, not among the given axes), or else a channels-first
        one (channels_first_colour_axis); None: no colour axis.
    step: lossy, the quantisation step in data units (RMS error is about
        step / sqrt(12): 0.5-1.7x that on gray test images, more at steps
        near 1, where rounding to the dtype adds its own, less at coarse
        steps, where most detail quantises to zero; with the colour transform
        about 1.7x that per channel); default 1/256 of the chunk's value range.
    tolerance: error-bounded mode: every decoded sample at full resolution is
        within ``tolerance`` of the original (any dtype; NaN and inf refused).
    ratio: lossy, instead of step: make the chunk ``ratio`` times smaller
        than raw (within 5%; within 5% of the closest reachable size for
        chunks that cannot; a smaller stream where that one decodes exactly,
        e.g. the lossless stream of an integer chunk where it fits).
    bits_per_sample: lossy, instead of step: the same target as a rate,
        coded bits per sample (per element; for RGB, per component value):
        ``ratio`` = the dtype's bits / bits_per_sample (at most the dtype's
        bits).
    psnr: lossy, instead of step: the smallest chunk with a PSNR of at
        least ``psnr`` dB (peak 2**bits - 1 for integers, the value range for
        floats), within 0.5 dB of it where reachable (or, for integers, the
        lossless stream where that is no larger).
    layers: quality layers within each resolution, so that a shorter prefix
        decodes that resolution at lower quality (``decode(..., layer=j)``).
        A count (1..16: each layer about doubles the bytes of the one before),
        or the targets of the layers before the last, which completes the
        chunk (lossless stays bit-exact): compression ratios (decreasing, e.g.
        ``[80, 40, 20]``) of the layer's bytes over all resolutions, as in
        JPEG 2000 -- a reader of layer j at full resolution fetches more,
        ``read_header(buf).prefix_length(0, j)``, because coarser resolutions
        always come complete -- or, with ``layer_metric="psnr"``, the PSNRs
        (increasing) of ``decode(buf, layer=j)``.  Targets are placed at the
        granularity of one band's bit plane: ratios and counts from the rate
        model's size estimate (typically within 15% up to about 150:1),
        PSNRs from its error estimate (lossy; within about 1 dB) or by probe
        encodes (reversible modes; within about 1.5 dB).
    rdo: lossy only, rate-distortion optimised quantisation: each value is
        lowered by one step where the bits saved outweigh the error added
        (about +0.1 dB at equal size, a smaller and slightly less accurate
        stream at a given step).  Default (None): on with ``ratio`` and
        ``psnr`` targets, off with a ``step`` or the default step.
    m97_levels: lossless and tolerance modes, the levels to lift with the
        9/7-M wavelet instead of 5/3, as a bit mask (bit l - 1 for level l;
        0 = the rounded 5/3 throughout).  Default (None): the encoder
        chooses per chunk, 9/7-M at the finest level where it estimates
        that smaller (smooth data; docs/DESIGN.md 23).
    nodata: a value that marks no data (e.g. -999 or -9999, as xarray's
        ``_FillValue``), in any mode: its samples are coded as a fill
        continuing the data around them (smooth for the 9/7; in the
        reversible modes smooth or flat block means, whichever codes
        smaller: docs/DESIGN.md 61) and decode as the value again, exactly,
        at full resolution and at a reduced level wherever a sample's whole
        block is nodata (format version 10; docs/DESIGN.md 59); it is then
        also the chunk's fill value (below).  Its value changes neither the
        axes chosen nor tolerance mode's grid (docs/DESIGN.md 61).  A value
        of the dtype.
    close_gaps: lossless streams (mode "lossless", and a lossy target's
        chunks stored losslessly) of 8- and 16-bit integers: True closes the
        runs of values that no sample of the chunk takes (up to 4 runs of 16
        or more, e.g. a CT's padding value far below its air) before the
        transform, and the decoder opens them again: smaller streams where
        such a value sits apart from the data (a CT -10%, a two-frame CT
        -29%), the same samples at full resolution, but reduced levels then
        average on the closed scale, so a sample on an edge between two
        such value ranges leans to one of them instead of lying between
        them (docs/DESIGN.md 42).  Default (None): off.
    fill_value: the value of samples that are no data (the zarr v3 codec
        gives the array's fill_value, with which zarr completes edge chunks
        and chunks written in part).  Where the chunk ends in whole slices
        of it along an axis (bit for bit; NaN too), those are coded as the
        data's continuation (its mean, or in tolerance mode its last
        samples held) and decode as the fill value again, at every level,
        so coarser levels do not blend it into the data's last samples, and
        a float array's NaN padding needs no finite stand-in.  Size and
        quality targets of such a chunk are then scaled to the data's share
        of it, as to_zarr scales its edge chunks'; padding that does not
        stand out from the data's edge is left as given, and counts.  A
        NaN fill value is also nodata (above): NaN inside a float chunk
        (any NaN) needs no finite stand-in then, in any mode.  Default
        (None): none.
    """
    arr = np.asarray(data)
    if is_big_endian(arr.dtype):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    options = normalise_options(levels=levels, mode=mode, axes=axes, colour_axis=colour_axis,
                                step=step, tolerance=tolerance, ratio=ratio,
                                bits_per_sample=bits_per_sample, psnr=psnr, layers=layers,
                                layer_metric=layer_metric, rdo=rdo, nodata=nodata,
                                reversible=reversible, close_gaps=close_gaps)
    code = check_dtype(arr.dtype, options)   # (first: bytes make 0-d arrays of strings)
    options["nodata"] = nodata_in(options["nodata"], arr.dtype)
    if arr.ndim == 0:
        raise ValueError("cannot encode a 0-d array (a single value): reshape it to 1-d")
    # the C core reads whole values: aligned ones, in C order (made before the
    # value scans below: a vast view of a few values, say of stride 0, fails
    # here as numpy's MemoryError instead of being scanned for hours)
    arr = np.require(arr, requirements="CA")
    # a rate in bits per sample is a ratio for this dtype
    options.update(ratio=lossy_ratio(options, arr.dtype), bits_per_sample=None)
    check_targets(options)
    options["colour_axis"] = encoder_colour_axis(options, arr)
    if options["axes"] is None and len(arr.shape) <= _core.MAX_NDIM:
        options["axes"] = choose_axes(arr, options["colour_axis"], options["nodata"])
    options = resolve_options(options, arr.shape, arr.dtype)
    check_layout(arr.shape, options)
    axes, colour_axis, levels = options["axes"], options["colour_axis"], options["levels"]
    # zarr's padding and nodata samples: coded as the data's continuation,
    # restored by the decoder
    finite = "tolerance mode" if options["mode"] == "tolerance" else "lossy coding"
    if options["mode"] != "lossless":
        require_finite(arr, finite, fill_value, options["nodata"])
    fill = _edges.sample_of(fill_value, arr.dtype)
    psnr = options["psnr"]   # (as given: the warning below names it, scaled or not)
    # The 9/7 fills nodata smoothly.  The reversible modes code a fill's
    # every sample exactly, and take the smaller stream of a fill of flat
    # block means (most masked images, up to 20% smaller) and the smooth one
    # (smooth fields, and some volumes): 3.6-5% smaller than the smooth fill
    # alone on 33 masked real images and volumes, for twice the encode time
    # of such chunks (docs/DESIGN.md 61).
    fills = (True, False) if options["mode"] != "lossy" else (False,)
    best = None
    for block_means in fills:
        filled, padding = _edges.padded(arr, fill_value, options["mode"] == "tolerance",
                                        colour_axis, axes, options["nodata"], block_means)
        if fill is not None and options["mode"] != "lossless" and np.isinf(fill):
            require_finite(filled, finite)   # (the padding replaced: an infinity left is data)
        if best is None and psnr is not None and _metrics.narrow_for_psnr(filled, psnr):
            # (one message per target and dtype: warned once, not per chunk)
            message = _metrics.narrow_psnr_message(psnr, arr.dtype)
            warnings.warn(message, PSNRPeakWarning, stacklevel=2)
        encoded = _encode_filled(filled, padding, options, code, m97_levels, fill)
        best = encoded if best is None or len(encoded) < len(best) else best
        if padding is None or padding.nodata is None or padding.nodata.all():
            break   # (no nodata inside, or nothing else: one fill)
    return best


def _encode_filled(arr: np.ndarray, padding, options: dict, code: int, m97_levels,
                   fill=None) -> bytes:
    """encode()'s stream of a chunk whose padding and nodata are filled in
    (_edges.padded): the mode's search, layers, and the lossless stream
    where a target ends near it; `fill`: the fill value's sample, or None."""
    if padding is not None:
        options = _padded_targets(options, padding, arr)
    axes, colour_axis, levels = options["axes"], options["colour_axis"], options["levels"]
    wavelet, step, peak = _wavelet_and_step(arr, options, fill)
    try:
        chunk = _ChunkEncoder(arr, options, code, wavelet, step, m97_levels, padding)
    except ValueError as exc:
        if wavelet == TOLERANCE_WAVELET:  # the only data-dependent refusal left: float precision
            raise ValueError(f"tolerance {options['tolerance']:g} is below the precision "
                             f"of {arr.dtype} at these values") from exc
        raise
    # RD-optimised quantisation (docs/DESIGN.md 18): by default with rate and
    # quality targets, not with a given step
    targeted = options["ratio"] is not None or options["psnr"] is not None
    rdo = targeted if options["rdo"] is None else options["rdo"]
    encode_with, decode_last = chunk.encode_with, chunk.decode_last

    model = None
    layered_search = None   # a ratio search to go on with layered encodes
    if targeted and arr.size:
        limits = (max(peak / TARGET_RANGE_OVER_STEP, min_lossy_step(arr.shape, options)),
                  MAX_LOSSY_STEP)
        step = min(max(step, limits[0]), limits[1])   # the search's start, within its limits
        # (a PSNR search's model from every other row: its trials measure
        # the error; a ratio search's first aims need every row, DESIGN.md 67)
        model = chunk.rate_model(chunk.prepared, 1 if options["psnr"] is None
                                 else _rate.PSNR_HISTOGRAM_ROW_STRIDE)
        if model is None:   # every coefficient is zero: any step gives the same exact stream
            encoded = encode_with(step, rdo=rdo)
        elif options["ratio"] is not None:
            if _rate.lossless_first(model, arr, options, limits, rdo, colour_axis is not None):
                lossless = chunk.lossless_within(_rate.lossless_cap(0, arr.nbytes, options))
                if lossless is not None:   # within the target's budget: the result
                    return lossless
            mosaic = _rate.pilot_mosaic(arr, axes)

            def pilot(step, rdo):   # the mosaic's real size over its model's
                mosaic_prepared = chunk.prepare(mosaic, wavelet, step)
                mosaic_model = chunk.rate_model(mosaic_prepared)
                if mosaic_model is None:
                    return None
                size = len(mosaic_prepared.encode(step, (), _core.RDO_DEFAULT if rdo else 0.0))
                return mosaic_model.coded_scale(size, step)   # (None: nothing coded)

            def context(step):   # the chunk's context_gain at that step
                counts = np.empty((band_count(levels, len(axes)), _rate.CONTEXT_CLASSES,
                                   _rate.CONTEXT_EXPONENTS), np.uint64)
                chunk.prepared.context_counts(step, _rate.CONTEXT_ROW_STRIDE, counts)
                return _rate.context_gain(counts)

            def to_ratio(encode_at, start, rdo, seed=None):
                return _rate.encode_to_ratio(
                    encode_at, arr, options["ratio"], start, limits, model, rdo,
                    colour=colour_axis is not None, pilot=None if mosaic is None else pilot,
                    context=context, seed=seed,
                    exact=lambda encoded: np.array_equal(decode_last(encoded), arr))

            encoded, step, rdo = to_ratio(lambda s, r: encode_with(s, rdo=r), step, rdo)
            if _rate.ratio_met(len(encoded), arr.nbytes, options["ratio"]):
                layered_search = to_ratio   # (else out of reach: layers will not bring it)
        else:
            gain = _rate.ICT_ERROR_GAIN if colour_axis is not None else 1.0
            encoded, step, rdo = _rate.encode_to_psnr(
                lambda s, r: encode_with(s, rdo=r), decode_last, arr, options["psnr"], step, limits,
                model, gain, rdo, chunk.trial_error)
    else:
        encoded = encode_with(step, rdo=rdo)
    if options["layers"] is not None:
        encoded = _add_layers(chunk, encoded, step, rdo, model, layered_search)
    # near the floor: the coded bytes (less the header and flushes of a stream
    # with these layers) within (NEAR_FLOOR - 1) single-layer floors
    payload = len(encoded) - smallest_lossy_stream(arr.ndim, len(axes), levels,
                                                   layer_count(options), padded_version(padding))
    if targeted and arr.size and arr.dtype.kind in "iu" and (
            model is None or payload <= (_rate.NEAR_FLOOR - 1) * chunk.lossy_floor
            or model.squared_error(step) <= (_rate.NEAR_LOSSLESS_RMS ** 2) * arr.size) and (
            not _rate.lossless_out_of_reach(model, len(encoded), arr.nbytes, options)):
        lossless = chunk.lossless_within(_rate.lossless_cap(len(encoded), arr.nbytes, options))
        if lossless is not None and _rate.lossless_is_better(
                len(lossless), len(encoded), arr.nbytes, options,
                lambda: np.array_equal(decode_last(encoded), arr)):
            return lossless
    return encoded


def _add_layers(chunk, encoded, step, rdo, model, layered_search):
    """The stream the chunk made (`encoded`, at `step`) with the layers its
    options ask for; layered_search(encode_at, start, rdo, seed): a ratio
    search to go on with, from the layered stream at `step`."""
    arr, options, wavelet = chunk.arr, chunk.options, chunk.wavelet
    encode_with, decode_last = chunk.encode_with, chunk.decode_last
    axes, levels = options["axes"], options["levels"]
    max_shift = _max_exponent(arr, wavelet)
    estimate = None
    sized = _layers.by_size(options["layers"], options["layer_metric"])
    if arr.size and (sized or wavelet == 1):
        # placed by the rate model, no probe encodes (PSNRs: 9/7 only, whose
        # model gives sample errors through the band norms); a chunk whose
        # coefficients are all zero has no model, and gets the probes
        model = chunk.rate_model(chunk.prepared) if model is None else model
        if model is not None and sized:
            estimate = _layers.LayerEstimate(
                model, step if wavelet == 1 else 1.0, max_shift,
                len(encoded) - read_header(encoded).header_length, pieces=levels + 1)
        elif model is not None:
            final_psnr = _metrics.psnr(decode_last(encoded), arr)
            if math.isfinite(final_psnr):
                estimate = _layers.LayerPsnrEstimate(
                    model, step, max_shift, finest=2 ** len(axes) - 1, final_psnr=final_psnr)
    def plan_for(whole_low):
        return _layers.choose_shifts(
            lambda t: encode_with(step, t, rdo), decode_last, arr,
            options["layers"], options["layer_metric"], tuple(arr.shape[a] for a in axes),
            levels, weighted=wavelet != 1,
            data_bits=math.log2(_peak(arr) / (1.0 if WAVELET_MODES[wavelet] == "lossless"
                                              else step) + 1),
            max_shift=max_shift, estimate=estimate, whole_low=whole_low)

    plan = plan_for(False)
    layered = encode_with(step, plan.tables(), rdo)
    if len(layered) > _layers.RAW_LOW_BAND_GROWTH * len(encoded) + _layers.RAW_LOW_BAND_SLACK:
        # a flat (or flatly quantised) low band, whose refinement went raw:
        # kept whole where that is smaller (docs/DESIGN.md 56)
        whole_plan = plan_for(True)
        whole = encode_with(step, whole_plan.tables(), rdo)
        if len(whole) < len(layered):
            plan, layered = whole_plan, whole
    if layered_search is None:
        return layered
    # the layers' tables and coding add a few percent (up to 16% measured):
    # searched again with them, from the layered stream of the step found,
    # the layers' cuts kept in data units (docs/DESIGN.md 30)
    return layered_search(
        lambda s, r: encode_with(s, plan.tables(round(math.log2(step / s))), r),
        step, rdo, seed=layered)[0]


def _typed_buffer(out) -> np.ndarray | None:
    """A buffer's items as numpy sees them (its format), or None where it
    has no buffer interface (left to ensure_contiguous_ndarray to refuse)."""
    try:
        return np.asarray(memoryview(out))
    except (TypeError, ValueError, NotImplementedError):
        return None


def aligned_levels(shape, chunks, axes) -> tuple:
    """(k, split): the most levels for which level k of an array is its
    chunks' level k side by side on one grid (every sample 2**k apart), and
    the chunk lengths along the transformed axes the chunks cut (which must
    be multiples of 2**k; else each chunk ends on a partial sample and the
    level is stretched).  Chunks of one sample are never divided: such an
    axis keeps its grid."""
    split = tuple(c for a, (n, c) in enumerate(zip(shape, chunks)) if a in axes and n > c > 1)
    return min((((c & -c).bit_length() - 1) for c in split), default=MAX_LEVELS), split


#: decode_memory's bytes per sample of a chunk's longest line: the entropy
#: decoder's context rows (seven uint16 rows as wide as a band's rows), with
#: room to spare (16 left 1 MB to spare on hostile streams claiming
#: (4, 2**20, 3) uint8 samples decoded at a coarse level through one
#: quality layer: a fuzz run's, session 34).
LINE_BYTES = 24
#: The inverse transform's strips (csrc/transform.c, pj2k_transform_tmp_elems):
#: float64 rows of up to STRIP_LANES lanes across the longest line, or the
#: whole chunk where it is narrower than that.
STRIP_LANES = 64
#: What aligning buffers to huge pages (csrc/memory.c) can add: two
#: 2 MiB-aligned buffers live at once, for chunks whose values reach one.
HUGE_PAGE_SLACK = 2 * (2 << 20)
#: The fixed part of any decode: small buffers, the allocator's pages, the
#: stack (a 32^3 chunk's level 3 touched 0.4 MiB for 0.3 of buffers).
FIXED_SLACK = 1 << 20


#: What a nodata mask costs per run of its samples, about (0.3-0.8 measured; the
#: smallest stream a ratio target keeps room for: _padded_targets)
MASK_BYTES_PER_RUN = 0.5
#: A version-10 decode's nodata mask: the level's map and two levels of
#: cells, with the output, after the coefficients are freed
MASK_BYTES_PER_ELEMENT = 3


def decode_memory(elements: int, mode: str, dtype: np.dtype, longest: int, low_band: int) -> int:
    """An upper bound on the bytes decoding that many elements of a chunk of
    that mode and dtype, whose longest axis has ``longest`` samples and whose
    low band (its coarsest level) ``low_band`` elements, allocates: the
    output, plus int32 or int64 coefficients (8-bit data decodes in int16 but
    may fall back to int32, and takes int32 for some quality layers), plus a
    copy of the low band's (the entropy decoder's prediction), plus float64
    samples for lossy streams (float32 for version 8's 8- and 16-bit ones:
    within the bound; docs/DESIGN.md 5 and 49), plus LINE_BYTES per sample
    of the longest line, the inverse transform's strips (8 bytes per element
    of a chunk narrower than STRIP_LANES), FIXED_SLACK and HUGE_PAGE_SLACK
    (none for an empty chunk, which decodes nothing)."""
    dtype = np.dtype(dtype)
    via_float = mode != "lossless"
    coefficient = 8 if via_float or dtype.itemsize > 2 else 4
    if not elements:
        return 0
    strips = 8 * min(elements + 6 * longest, STRIP_LANES * (longest + 6))
    slack = FIXED_SLACK + (HUGE_PAGE_SLACK if elements * coefficient >= 2 << 20 else 0)
    return (elements * (dtype.itemsize + coefficient + (8 if via_float else 0))
            + coefficient * low_band + LINE_BYTES * longest + strips + slack)


def check_decodable(shape: tuple, dtype: np.dtype, options: dict, why: str) -> None:
    """Refuse, before it is written, a chunk whose full decode would need
    more than decode()'s default max_bytes (``options`` resolved for it);
    `why`: what keeps that default for its reader."""
    needed = decode_memory(math.prod(shape), options["mode"], dtype, max(shape, default=0),
                           math.prod(level_shape(shape, options["axes"], options["levels"])))
    if needed > DEFAULT_MAX_DECODED_BYTES:
        raise ValueError(f"a chunk of shape {tuple(shape)} ({np.dtype(dtype)}) needs {needed} bytes "
                         f"to decode, over decode()'s default max_bytes "
                         f"({DEFAULT_MAX_DECODED_BYTES}), {why}")


def decode_chunk(buf, shape: tuple, dtype, level: int = 0, layer: int | None = None):
    """decode() at ``level`` of an array's chunk, whose shape and dtype the
    array's metadata gives: a header that disagrees raises DecodeError (a
    chunk from another array, or metadata edited since, would otherwise read
    as wrong values), and the working memory is then what that shape needs,
    whatever max_bytes would allow (the array's owner chose the chunk size)."""
    data = _as_bytes(buf)
    header = read_header(data)
    got, expected = header.level_shape(0), tuple(shape)
    why = ("(a chunk of another array, or the array was rewritten since it was opened: "
           "open it again)")
    if got != expected:
        raise DecodeError(f"chunk has shape {got}, the array's chunks are {expected} {why}")
    if header.dtype != np.dtype(dtype).newbyteorder("<"):
        raise DecodeError(f"chunk holds {header.dtype} values, the array is {np.dtype(dtype)} "
                          f"{why}")
    return _decode(data, header, level, None, layer, math.inf)


def decode(buf, level: int = 0, out=None, *, layer: int | None = None,
           max_bytes: int = DEFAULT_MAX_DECODED_BYTES):
    """Decode a chunk at ``level`` (0 = full resolution, k = 1/2**k per transformed axis).

    ``buf`` may be the whole chunk or any prefix of at least
    ``read_header(buf).prefix_length(level, layer)`` bytes.  ``layer`` (for
    chunks coded with quality layers) decodes that resolution from its layers
    0..``layer`` only: a shorter prefix, lower quality; None uses all layers.
    ``out``, if given, must be a writeable C-contiguous buffer of exactly the
    decoded size; it is filled and returned.  ``max_bytes`` bounds the memory
    the decode may allocate (output plus working buffers: decode_memory) and
    is checked before anything is allocated.  Raises
    ``ValueError`` subclasses for damaged or short input.
    """
    if isinstance(max_bytes, (bool, np.bool_)) or not isinstance(
            max_bytes, (int, float, np.integer, np.floating)):
        raise TypeError(f"max_bytes must be a number (math.inf: no limit), got {max_bytes!r}")
    if not max_bytes >= 0:   # (NaN too)
        raise ValueError(f"max_bytes must be >= 0 (math.inf: no limit), got {max_bytes!r}")
    data = _as_bytes(buf)
    return _decode(data, read_header(data), level, out, layer, max_bytes)


def _decode(data: np.ndarray, header: Header, level, out, layer, max_bytes):
    """decode() of `data` (bytes as uint8) whose header is parsed."""
    level = header._check_level(level)
    layer = header._check_layer(layer)
    needed = header.prefix_length(level, layer)
    if data.nbytes < needed:
        raise TruncatedError(f"decode at level {level}, layer {layer} needs {needed} bytes, "
                             f"got {data.nbytes}", needed)
    shape = header.level_shape(level)
    elements = math.prod(shape)
    nbytes = elements * header.dtype.itemsize
    needed_memory = header.decode_memory(level) if max_bytes != math.inf else 0
    if needed_memory > max_bytes:
        raise TooLargeError(f"decoding needs {needed_memory} bytes (output {nbytes} plus working "
                            f"buffers), over max_bytes={max_bytes}")
    if isinstance(out, np.ndarray) and not out.dtype.isnative:
        # the other byte order: values, not bytes (of the same dtype only)
        if out.dtype.newbyteorder("=") != header.dtype.newbyteorder("="):
            raise OutDtypeError(f"out has dtype {out.dtype.str}, the chunk decodes to "
                                f"{header.dtype.str}")
        if not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        if out.size != elements:
            raise ValueError(f"out has {out.size} elements, the decode needs {elements}")
        out.reshape(-1)[...] = _decode(data, header, level, None, layer, max_bytes).reshape(-1)
        return out
    if out is None:
        result = np.empty(shape, header.dtype)
        target = result.reshape(-1).view(np.uint8)
    else:
        result = out
        # raw bytes (uint8, int8, void) are the numcodecs convention; any other
        # dtype would hold the values reinterpreted (typed buffers too: a
        # memoryview of float32, array.array("f"))
        typed = out if isinstance(out, np.ndarray) else _typed_buffer(out)
        if typed is not None and not typed.flags.c_contiguous:   # (or an F-ordered memoryview)
            raise ValueError("out must be C-contiguous")
        raw_bytes = typed is None or typed.dtype.kind == "V" or (
            typed.dtype.kind in "uiS" and typed.dtype.itemsize == 1)   # (S1: ctypes' char)
        if not raw_bytes and typed.dtype != header.dtype:
            raise OutDtypeError(f"out has dtype {typed.dtype}, the chunk decodes to "
                                f"{header.dtype} (give an out of that dtype, or raw bytes)")
        target = ensure_contiguous_ndarray(out).reshape(-1).view(np.uint8)
        if target.nbytes != nbytes:
            raise ValueError(f"out has {target.nbytes} bytes, the decode needs {nbytes}")
        if not target.flags.writeable:
            raise ValueError("out is read-only")
        if target.ctypes.data % header.dtype.alignment:   # raw bytes at an odd address:
            target[...] = _decode(data, header, level, None, layer, max_bytes).reshape(-1).view(
                np.uint8)   # the C core stores whole values, aligned
            return result
    _core.decode_into(data, level, target, math.prod(shape), layer)
    return result
