"""Chunks that end before their data's array does: completing them with
values that continue the data (pad_chunk), finding where zarr completed
them with the array's fill value (fill_extent, padded), and their targets
scaled to their data (edge_chunk_options); the samples a caller names
nodata inside the data, filled in from the data around it (nodata_mask,
inpaint)."""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from progressive_j2k import _core, _options


#: An edge chunk's scaled rate target keeps at least this many times the
#: stream's header and flushes (edge_chunk_options' ratio_cap): the last
#: row of astronaut (513 rows in 256^2 chunks at 10:1) decoded at 16 dB
#: scaled fully (249 bytes), 26 dB at 2 floors (488), 44 dB at 4 (940);
#: the chunks inside 41.5 dB.
EDGE_FLOORS = 4
#: In tolerance mode pad_chunk holds an edge chunk's last samples: their
#: means over blocks of this many samples along the other axes
PAD_BLOCK = 32
#: of this many last samples along the axis padded
PAD_DEPTH = 4
#: held this far, then their mean to the chunk's end
PAD_HOLD = 32


def pad_chunk(block: np.ndarray, chunks: tuple, hold: bool = False, nodata=None) -> np.ndarray:
    """An edge chunk (shorter than ``chunks``) completed, rounded to the
    dtype: zarr would complete it with the fill value, which the wavelet's
    low bands then blend into the array's last rows and columns at every
    coarser level (a dark line along a bright slide's border at fill_value
    0).  By default with its own mean: a constant costs as little to code
    as the fill value.  With ``hold`` (tolerance mode, whose coarse levels
    are to be a faithful low-pass up to the array's edge), axis after axis
    by its last samples held: along each axis it is short on, the mean of
    its last PAD_DEPTH slices over blocks of PAD_BLOCK samples along the
    other axes, for PAD_HOLD samples, then their mean.  That keeps the last
    rows of coarse levels 2-6x closer to an unchunked encode's (a smooth
    field's: 2 K -> 0.3 K) for 0-3% more bytes on whole arrays; in lossy
    modes the quantisation's error hides the difference, and a thin edge
    chunk's scaled budget would go to the held rows (astronaut's one-row
    chunk at 10:1: 37.8 -> 29.9 dB).  Repeating or mirroring the edge
    itself codes its texture again in every padded row, 4-40x the bytes of
    a thin edge chunk (docs/DESIGN.md 29, 57).  With ``nodata`` (a value,
    or NaN) the padding is nodata: the codec continues the data into it as
    above, around the block's own nodata too (padded), and keeps it out of
    coarse levels with the block's nodata (a level's sample whose block
    within the array is nodata reads as nodata, not as the continuation)."""
    if block.shape == chunks:
        return block
    if nodata is not None or block.size == 0 or not hold:
        value = sample_of(nodata, block.dtype) if nodata is not None else \
            0 if block.size == 0 else padding_mean(block)
        out = np.full(chunks, value, block.dtype)
        out[tuple(slice(0, n) for n in block.shape)] = block
        return out
    out = block
    for axis, (n, length) in enumerate(zip(block.shape, chunks)):
        if n == length:
            continue
        edge = np.take(out, range(max(n - PAD_DEPTH, 0), n), axis=axis).mean(
            axis=axis, keepdims=True, dtype=np.float64)
        for other in range(out.ndim):
            if other != axis and edge.shape[other] > 1:
                starts = np.arange(0, edge.shape[other], PAD_BLOCK)
                counts = np.diff(np.append(starts, edge.shape[other]))
                sums = np.add.reduceat(edge, starts, axis=other)
                shape = [1] * edge.ndim
                shape[other] = len(counts)
                edge = np.repeat(sums / counts.reshape(shape), counts, axis=other)
        edge = _within(edge, block)
        edge[~np.isfinite(edge)] = 0.0   # (NaN or inf in the data: refused by the encoder)
        flat = np.full_like(edge, edge.mean())
        if block.dtype.kind in "iu":
            info = np.iinfo(block.dtype)
            edge, flat = (np.clip(np.rint(v), info.min, info.max) for v in (edge, flat))
        # (a single slice's hold is no closer than its mean, which costs
        # less: camera's one-row edge chunks 30% fewer bytes at tolerance 2)
        held = min(length - n, PAD_HOLD) if n > 1 else 0
        out = np.concatenate([out, np.repeat(edge.astype(block.dtype), held, axis=axis),
                              np.repeat(flat.astype(block.dtype), length - n - held, axis=axis)],
                             axis=axis)
    return out


def padding_mean(block: np.ndarray):
    """The value pad_chunk completes ``block`` with by default: its mean,
    within its range, rounded to its dtype (0 where it is not finite)."""
    mean = float(_within(np.mean(block, dtype=np.float64), block))
    if not np.isfinite(mean):
        mean = 0.0
    if block.dtype.kind in "iu":
        info = np.iinfo(block.dtype)
        mean = min(max(round(mean), info.min), info.max)
    return mean


def _within(values, block: np.ndarray):
    """Float ``values`` (means of ``block``'s samples) clipped to its range:
    a float64 mean can land an ulp outside it, and a constant chunk then
    spans an ulp, whose default lossy step the encoder refuses."""
    if block.dtype.kind != "f":
        return values
    # (all NaN: no range; tested first, as nanmin would warn, and a
    # catch_warnings here would reset every warning's once-per-place record)
    if block.size == 0 or np.isnan(block).all():
        return values
    lo, hi = np.nanmin(block), np.nanmax(block)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return values
    return np.clip(values, float(lo), float(hi))


def fill_extent(arr: np.ndarray, fill_value, keep=()) -> tuple | None:
    """The data's extent per axis where ``arr`` ends in slabs of samples
    that are all ``fill_value`` (matches: bit for bit, or any NaN for NaN;
    zarr completes an edge chunk,
    or a part of a chunk never written, with the array's fill value), or
    None where it has none; axes in ``keep`` (a colour axis, whose three
    channels zarr never pads) are whole.  A slab is a run of whole slices
    at the end of an axis; every such slab contains the chunk's last
    sample, so most chunks are decided by that one sample.  Data that
    happens to end in such slices is taken for padding too: it decodes as
    it was.  A chunk that is fill throughout has no data to extend: None
    (it codes as a constant)."""
    fill = sample_of(fill_value, arr.dtype)
    if fill is None or arr.size == 0 or not matches(np.asarray(arr[(-1,) * arr.ndim]), fill):
        return None
    return trailing_extent(matches(arr, fill), keep)


def trailing_extent(same: np.ndarray, keep=()) -> tuple | None:
    """fill_extent of the samples ``same`` marks."""
    if same.size == 0 or not same[(-1,) * same.ndim]:
        return None
    extent = []
    for axis, n in enumerate(same.shape):
        end = n
        if axis in keep:
            extent.append(end)
            continue
        while end and same[(slice(None),) * axis + (end - 1,)].all():
            end -= 1
        if end == 0:
            return None
        extent.append(end)
    return None if tuple(extent) == same.shape else tuple(extent)


def sample_of(value, dtype):
    """``value`` as a sample of ``dtype``, or None where it is none (zarr
    hands numbers; a value the dtype cannot hold pads nothing)."""
    given = np.asarray(value)
    if value is None or given.ndim or given.dtype.kind not in "biuf":
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        sample = given.astype(dtype, casting="unsafe")
    if not np.array_equal(sample, given, equal_nan=np.dtype(dtype).kind == "f"):
        return None
    return sample[()]


def fill_bytes(fill_value, dtype) -> bytes:
    """The fill sample's little-endian bytes (the stream's fill field)."""
    little = np.dtype(dtype).newbyteorder("<")
    return np.asarray(fill_value).astype(little, casting="unsafe").tobytes()


def padding(extent) -> list:
    """The index of each slab beyond ``extent`` (fill_extent's), one per
    axis it ends before (they overlap at the corners)."""
    return [(slice(None),) * axis + (slice(end, None),) for axis, end in enumerate(extent)]


class Padding(NamedTuple):
    """A chunk's padding as encode() codes it: the data's extent (fill_extent)
    and the fill sample's bytes; the chunk as given and its fill value (for
    an encode of it in another mode); the nodata samples inside the extent
    (nodata_mask; None: none, version 9)."""
    extent: tuple
    sample: bytes
    original: np.ndarray
    fill_value: object
    nodata: np.ndarray | None = None

    def data_samples(self) -> int:
        """The samples that are data: neither padding nor nodata."""
        inside = math.prod(self.extent)
        return inside - (0 if self.nodata is None else int(np.count_nonzero(self.nodata)))

    def like_coded(self, decoded: np.ndarray, coded: np.ndarray, pads: bool = True) -> None:
        """``decoded`` (a full-resolution decode) with ``coded``'s values
        where the decoder restores the fill value (``pads``: the padding
        too, else only the nodata samples): as a reconstruction of ``coded``
        (the chunk as encode() coded it) has them, and with no error there."""
        for slab in padding(self.extent) if pads else ():
            decoded[slab] = coded[slab]
        if self.nodata is not None:
            box = tuple(slice(0, n) for n in self.extent)
            decoded[box][self.nodata] = coded[box][self.nodata]


def stands_out(data: np.ndarray, axes, fill_value, continuation=None) -> bool:
    """Whether the fill value stands out against the data's last slice
    along one of ``axes`` (those it pads): lies further from that slice's
    samples, on average, than they lie from their mean, and than from
    ``continuation`` (the value that would replace it; None: the slice
    itself, held).  A fill value like the data's edge (a zero background,
    say) blends into coarse levels as harmlessly as a continuation of the
    data would, and codes for less (docs/DESIGN.md 58); NaN and infinities
    always stand out."""
    fill = float(fill_value)
    if not np.isfinite(fill):
        return True
    for axis in axes:
        edge = np.take(data, -1, axis=axis).astype(np.float64)
        near = np.abs(edge - edge.mean()).mean()
        if continuation is not None:
            near = max(near, np.abs(edge - continuation).mean())
        if np.abs(edge - fill).mean() > near:
            return True
    return False


def matches(arr: np.ndarray, value) -> np.ndarray:
    """Where ``arr`` holds ``value`` (a value of its dtype): bit for bit, or
    for NaN any NaN (arithmetic makes NaNs of other bits than np.nan's)."""
    if arr.dtype.kind == "f" and np.isnan(value):
        return np.isnan(arr)
    bits = np.dtype(f"u{arr.dtype.itemsize}")
    return arr.view(bits) == np.asarray(value, arr.dtype).reshape(1).view(bits)[0]


def nodata_mask(data: np.ndarray, nodata, colour_axis=None) -> np.ndarray | None:
    """Where ``data`` (a chunk's data, without padding) holds ``nodata``
    (matches; with a colour axis, in every channel: a channel of zeros is
    colour), or None where it holds none (docs/DESIGN.md 59)."""
    if nodata is None or data.size == 0:
        return None
    mask = whole_pixels(matches(data, nodata), colour_axis)
    return mask if mask.any() else None


def whole_pixels(mask: np.ndarray, colour_axis=None) -> np.ndarray:
    """``mask`` where it holds in every channel along ``colour_axis`` (a
    channel of zeros is colour, not nodata)."""
    if colour_axis is None:
        return mask
    return np.broadcast_to(mask.all(axis=colour_axis, keepdims=True), mask.shape)


def inpaint(data: np.ndarray, mask: np.ndarray, axes, block_means: bool = False) -> np.ndarray:
    """``data`` with its ``mask``ed samples replaced by a continuation of
    the others along ``axes`` (the transformed ones; each plane and colour
    component apart), within their range and rounded to the dtype
    (_core.inpaint: push-pull, each level's cells the mean of the data they
    hold, then from the coarsest level down each cell's missing part filled
    from the coarser level).  Smooth (the coarser level interpolated
    linearly) for the 9/7, whose quantisation errors in the data it keeps
    small; with ``block_means`` each nodata sample is the mean of the data
    in the smallest block of the pyramid around it that holds some: flat
    regions, which the reversible modes often code in fewer bits than a
    smooth fill's rounding, and partly masked cells of coarse levels nearer
    their data's mean (docs/DESIGN.md 61).  Either way the fill near the
    data is the nearby data's mean, so coarse levels that blend the two
    stay near the data (docs/DESIGN.md 59)."""
    values = np.ascontiguousarray(data, np.float64).copy().reshape(-1)
    flat = np.ascontiguousarray(mask, np.uint8).reshape(-1)
    _core.inpaint(values, flat, data.shape, tuple(sorted(a % data.ndim for a in axes)),
                  block_means)
    filled = values[flat.view(bool)]
    if data.dtype.kind in "iu":
        filled = np.rint(filled)
    out = data.copy()
    out[mask] = filled.astype(data.dtype)
    return out


def nan_as_nodata_message(nodata) -> str:
    """The warning where a NaN fill value's samples inside a chunk are
    coded as a finite nodata, which is what they then decode as."""
    return (f"NaN samples, the fill value's, are coded as nodata={nodata:g} and decode as "
            f"{nodata:g}, which a reader that masks the fill value (xarray: _FillValue NaN) "
            f"takes for data: make the fill value the nodata value (to_zarr and convert "
            f"do), or leave nodata unset to keep NaN")


def padded(arr: np.ndarray, fill_value, hold: bool, colour_axis=None, axes=(), nodata=None,
           block_means: bool = False):
    """(``arr`` with its fill padding replaced by the data's continuation
    (pad_chunk), Padding) where it has some that stands out from the data
    (stands_out), else (arr, None).  ``nodata`` (and any NaN where NaN is
    the fill value) marks samples that are no data: inside the data they
    are filled in along ``axes`` (inpaint, smooth or with ``block_means``),
    in trailing slices they are padding, and either way they decode as
    nodata, which is then the chunk's fill sample (a chunk without them
    pads with the fill value)."""
    keep = () if colour_axis is None else (colour_axis,)
    fill, named = sample_of(fill_value, arr.dtype), sample_of(nodata, arr.dtype)
    nan_fill = fill is not None and arr.dtype.kind == "f" and np.isnan(fill)
    if named is None and nan_fill:
        named = fill   # (NaN is never data: xarray's fill value for floats)
    if named is not None:
        restore = matches(arr, named) | (np.isnan(arr) if nan_fill else False)
        extent = trailing_extent(restore, keep)
        box = arr if extent is None else arr[tuple(slice(0, n) for n in extent)]
        if nan_fill and not np.isnan(named) and np.isnan(box).any():
            warnings.warn(nan_as_nodata_message(named), stacklevel=3)
        mask = whole_pixels(restore[tuple(slice(0, n) for n in box.shape)], colour_axis)
        if mask.any() or extent is not None:
            mask = mask if mask.any() else None
            # (nothing but nodata: any values, zero codes for least)
            data = box if mask is None else np.zeros_like(box) if mask.all() else \
                inpaint(box, mask, axes, block_means)
            return (pad_chunk(data, arr.shape, hold),
                    Padding(extent or arr.shape, fill_bytes(named, arr.dtype), arr, named, mask))
    extent = fill_extent(arr, fill_value, keep)
    if extent is None:
        return arr, None
    data = arr[tuple(slice(0, n) for n in extent)]
    padded_axes = [a for a, n in enumerate(extent) if n < arr.shape[a]]
    # (what pad_chunk would fill in beyond the data: its mean; hold: the
    # edge itself, or for one slice its mean, as far from the edge as its
    # spread), judged before any padding is made
    continuation = None if hold else float(data.dtype.type(padding_mean(data)))
    if not stands_out(data, padded_axes, fill_value, continuation):
        return arr, None
    return (pad_chunk(data, arr.shape, hold),
            Padding(extent, fill_bytes(fill_value, arr.dtype), arr, fill_value))


def edge_chunk_options(codec_options: dict, fraction: float, dtype,
                       ratio_cap: float = math.inf, psnr_fraction: float | None = None
                       ) -> dict | None:
    """The codec options for an edge chunk of which ``fraction`` is the
    array's data and the rest padding (to_zarr's, or zarr's that encode()
    takes for padding), or None where they are the array's own.  A
    chunk's targets count all of its samples: its size budget is its
    whole raw size over the ratio, and its squared error is
    averaged over the padding too, which costs almost no bytes and has almost
    no error.  So the data of an edge chunk coded with the array's targets
    got the budget of a whole chunk (a 600 x 600 coffee crop in 256^2 chunks
    at ratio=20 came out 12:1) or, with psnr=, lost 10 log10(1 / fraction)
    dB (a corner chunk of 88 x 88 in 512 x 512: 66 dB for 80).  Scaled here,
    both hold for the data alone: PSNRs (and layer PSNRs) up by
    10 log10(1 / fraction) dB, which keeps the data's own mean squared error
    within the target even where the padding decodes inexactly; the ratio
    and layer ratios times 1 / fraction (bits_per_sample over it), but to
    no ratio above ``ratio_cap``: a thin edge's share of the budget falls
    below the stream's header and flushes, and a target below them zeroes
    the data (one row of a 256^2 chunk of astronaut at 10:1: 16 dB).
    ``psnr_fraction`` (default: ``fraction``) is the share the PSNRs are
    scaled for: nodata samples inside the data are samples of the array, so
    its rate counts them, but they decode exactly, so its PSNR is the
    data's (docs/DESIGN.md 59)."""
    options = dict(codec_options)
    gain = 10.0 * math.log10(1.0 / (fraction if psnr_fraction is None else psnr_fraction))
    layers = options.get("layers")
    listed = layers is not None and not isinstance(layers, (int, np.integer))  # (not a count)
    by_psnr = options.get("layer_metric", "ratio") == "psnr"
    # the ratio that must keep its floor: the chunk's own (its layers'
    # ratios are scaled alike, so they keep their order), or its first layer's
    rate = _options.lossy_ratio({"ratio": options.get("ratio"),
                                 "bits_per_sample": options.get("bits_per_sample")}, dtype) or (
        max(layers) if listed and not by_psnr else None)
    scale = max(1.0, min(1.0 / fraction, ratio_cap / rate)) if rate else 1.0
    if scale > 1.0:
        if options.get("ratio") is not None:
            options["ratio"] = float(options["ratio"]) * scale
        if options.get("bits_per_sample") is not None:
            options["bits_per_sample"] = float(options["bits_per_sample"]) / scale
        if listed and not by_psnr:
            options["layers"] = tuple(float(t) * scale for t in layers)
    if options.get("psnr") is not None:
        options["psnr"] = float(options["psnr"]) + gain
    if listed and by_psnr:
        options["layers"] = tuple(float(t) + gain for t in layers)
    return None if options == codec_options else options
