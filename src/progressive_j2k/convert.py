"""Writing progressive zarr arrays: ``to_zarr`` (its inputs: _inputs.py; the
refusals that guard its input and output: _guards.py)."""
from __future__ import annotations

import contextlib
import functools
import json
import math
import numbers
import os
import shutil
import threading
import warnings
from itertools import combinations, product

import numpy as np

from progressive_j2k import _api, _axes, _core, _metrics, _options
from progressive_j2k._edges import EDGE_FLOORS, edge_chunk_options, pad_chunk
from progressive_j2k._guards import (_already_there, consolidate_enclosing_groups,
                                     local_metadata, refuse_a_v2_group,
                                     refuse_foreign_directory,
                                     refuse_to_overwrite_input, settle_zarr_writes,
                                     staging_beside, swap_in, warn_unnamed_in_a_dataset,
                                     zarr_tasks)
from progressive_j2k._ome import space_axes
from progressive_j2k._optional import require, require_zarr, zarr_store
from progressive_j2k._xarray import (cf_mask_value, float_for_xarray, float_from_xarray,
                                     same_value, without_other_missing_value)
from progressive_j2k.errors import PSNRPeakWarning


#: default_chunks keeps an untransformed last axis this short whole
#: (channels last, e.g. RGBA: its samples are read together).
CHANNELS_LAST_MAX = 4


def default_chunks(shape, dtype, options: dict) -> tuple:
    """1024 along transformed axes (256 for 3-D transforms); the whole colour
    axis, and the whole of a short untransformed last axis (channels last,
    e.g. RGBA: read together, so one request each); 1 along other plane
    axes (frames, read one by one).  An axis of length 0 gets chunks of 1
    (zarr's chunks are positive; there is nothing to read)."""
    resolved = _options.resolve_options(_options.normalise_options(**options), shape, dtype)
    edge = 256 if len(resolved["axes"]) == 3 else 1024
    chunks = []
    for axis, n in enumerate(shape):
        if axis in resolved["axes"]:
            chunks.append(min(n, edge))
        elif axis == resolved["colour_axis"] or (
                axis == len(shape) - 1 and n <= CHANNELS_LAST_MAX):
            chunks.append(n)
        else:
            chunks.append(1)
    return tuple(max(c, 1) for c in chunks)


#: to_zarr makes encode()'s choice of axes (a stack of unlike frames stays a
#: stack: _axes.choose_axes) once for the whole array, from a block at the
#: array's centre: at most AXES_SAMPLE_EDGE samples along each candidate
#: axis, and along the first only as many planes as the choice samples
#: (2 * LIKENESS_SAMPLES: every one of them is used), so that a stack of
#: large frames costs 32 frames' windows to judge, not 256.
AXES_SAMPLE_EDGE = 256


def chosen_axes(data, dtype, codec_options: dict, read: dict | None = None,
                space: tuple | None = None) -> tuple | None:
    """The axes encode() would choose for ``data``, judged on a central
    block (_central_block, which keeps it in ``read``); None where there is
    no choice to make (axes given, or fewer than three candidate axes).
    ``space``: the axes OME metadata calls space, where it calls others
    channel or time (_ome.space_axes): the candidates are then those (the
    last three, less any of one sample), so that no level blends channels
    or time points, as OME-Zarr pyramids downsample space only."""
    options = _options.normalise_options(**codec_options)
    shape = tuple(data.shape)
    if options["axes"] is not None or len(shape) > _core.MAX_NDIM:
        return None
    colour_axis = _axes.resolve_colour_axis(options, shape, dtype)
    candidates = _axes.default_axes(len(shape), colour_axis)
    if space is not None and any(a not in space for a in candidates):
        spatial = [a for a in space if a != colour_axis][-_core.MAX_AXES:]
        if spatial:
            return tuple(a for a in spatial if shape[a] > 1) or tuple(spatial[-1:])
    if len(candidates) < 3:
        return None
    block = _central_block(data, [
        min(n, 2 * _axes.LIKENESS_SAMPLES) if axis == candidates[0] else
        min(n, AXES_SAMPLE_EDGE) if axis in candidates else min(n, 1)
        for axis, n in enumerate(shape)], read)
    return _axes.choose_axes(block, colour_axis, options["nodata"])


def _central_block(data, edges, read: dict | None = None) -> np.ndarray:
    """The block of the given edge lengths at the centre of ``data``; ``read``
    (a dict) keeps the blocks read, for the next choice to reuse (the colour
    axis's and the axes' are the same block on a (t, c, y, x) image).  Not
    moved onto the input's chunks: that made the choice depend on how the
    input is stored (21 of 9,750 random cases chose other axes)."""
    region = tuple(slice((n - e) // 2, (n - e) // 2 + e) for n, e in zip(data.shape, edges))
    if read is None:
        return _read(data, region)
    key = tuple((r.start, r.stop) for r in region)
    if key not in read:
        read[key] = _read(data, region)
    return read[key]


def _chunk_grid(data) -> tuple | None:
    """The chunk lengths a lazily read input is stored in (a zarr array's, a
    tiled TIFF's zarr view's); None for others (dask's chunks are tuples of
    lengths, and its reads are its own)."""
    grid = getattr(data, "chunks", None)
    if (isinstance(grid, tuple) and len(grid) == len(data.shape)
            and all(isinstance(c, numbers.Integral) and c > 0 for c in grid)):
        return tuple(int(c) for c in grid)
    return None


def _cf_packing(data) -> str | None:
    """The integer dtype an xarray DataArray was unpacked from (its
    encoding's, with scale_factor or add_offset), or None."""
    encoding = getattr(data, "encoding", None) or {}
    try:
        packed = np.dtype(encoding.get("dtype"))
    except TypeError:
        return None
    if packed.kind not in "iu" or not ({"scale_factor", "add_offset"} & set(encoding)):
        return None
    return str(packed)


def _with_xarray_fill_value(attributes, nodata: float, dtype: np.dtype) -> dict:
    """``attributes`` with xarray's ``_FillValue`` (its CF mask value) as
    nodata where they give none, in the form xarray reads from zarr v3: a
    float's as the base64 of its little-endian float64 bytes (a plain
    number there stops xarray with a TypeError, so a given one is recoded)."""
    attributes = dict(attributes or {})
    value = attributes.get("_FillValue", nodata)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        pass   # (a string: already in xarray's form)
    elif math.isnan(value):   # (xarray's float default: NaN cells are stored as nodata now)
        value = nodata
    elif dtype.kind in "iu" and not (math.isfinite(value) and value == int(value)):
        raise ValueError(f"attributes' _FillValue {value!r} is no {dtype} value")
    given = float_from_xarray(value)
    if given is not None and math.isnan(given):   # (NaN as xarray's text: as a number above)
        value = nodata
    elif given is not None and not same_value(given, nodata, dtype):
        # (xarray would mask cells of the other value, and not nodata's)
        warnings.warn(f"the attributes' _FillValue {given:g} is not nodata {nodata:g}: the "
                      f"array's _FillValue is nodata's", stacklevel=3)
        value = nodata
    if dtype.kind == "f" and isinstance(value, numbers.Real) and not isinstance(value, bool):
        with np.errstate(over="ignore"):   # (as xarray writes it: the dtype's value)
            rounded = float(dtype.type(value))
        value = rounded if math.isfinite(rounded) or not math.isfinite(value) else value
        value = float_for_xarray(value)
    elif dtype.kind in "iu" and isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = int(value)
    attributes["_FillValue"] = value
    return attributes


class _NanAs:
    """An array-like reading ``data`` with its NaN as ``value``."""

    def __init__(self, data, value):
        self.data, self.value = data, value
        self.shape, self.dtype = tuple(data.shape), np.dtype(data.dtype)
        self.chunks = getattr(data, "chunks", None)

    def __getitem__(self, key):
        block = np.array(self.data[key], dtype=self.dtype)
        block[np.isnan(block)] = self.value
        return block


def _nan_as(data, value):
    """``data`` with its NaN read as ``value`` (to_zarr with nodata=)."""
    if _is_dask(data):
        import dask.array as da
        return da.where(da.isnan(data), value, data)
    return _NanAs(data, value)


def _read(data, region: tuple) -> np.ndarray:
    try:
        return np.asarray(data[region])
    except (TypeError, IndexError):   # an array-like that slices its first axis only
        return np.asarray(data[region[0]])[(slice(None),) + tuple(region[1:])]


def chosen_colour_axis(data, dtype, options: dict, read: dict | None = None):
    """encode()'s colour axis (encoder_colour_axis) where it differs from
    the codecs' fixed "auto" (a channels-first colour axis; none for three
    unrelated channels last), judged on a block at the array's centre
    (_central_block, which keeps it in ``read``); AUTO_COLOUR where "auto"
    says the same, or was not asked for."""
    if options["colour_axis"] != _axes.AUTO_COLOUR:
        return _axes.AUTO_COLOUR
    shape = tuple(data.shape)
    auto = _axes.resolve_colour_axis(options, shape, dtype)
    candidate = auto if auto is not None else \
        _axes.channels_first_colour_axis(shape, dtype, options["axes"])
    if candidate is None:
        return _axes.AUTO_COLOUR
    image = _axes.colour_image_axes(len(shape), candidate)
    block = _central_block(data, [3 if a == candidate else min(n, AXES_SAMPLE_EDGE)
                                  if a in image else 1 for a, n in enumerate(shape)], read)
    chosen = _axes.encoder_colour_axis(options, block)
    return _axes.AUTO_COLOUR if chosen == auto else chosen


def _aligned_levels(shape, chunks, resolved: dict, default: bool) -> int:
    """The levels to code: level k of the array is its chunks' level k side by
    side, which keeps one grid (every sample 2**k apart) only where the
    chunks along each axis cut into several are multiples of 2**k; else each
    chunk ends on a partial sample and the level is stretched.  The default
    levels stop where that would start (with a warning); levels given are
    kept (with a warning)."""
    aligned, split = _api.aligned_levels(shape, chunks, resolved["axes"])
    levels = resolved["levels"]
    if levels <= aligned:
        return levels
    if default:
        warnings.warn(f"chunks of {split} along the axes they split are multiples of 2**{aligned}, "
                      f"not 2**{levels}: coded with {aligned} levels instead of {levels}, so that "
                      f"level k of the array keeps one grid (chunks that are multiples of "
                      f"2**{levels}, e.g. 1024, keep all {levels})", stacklevel=3)
        return aligned
    warnings.warn(f"levels={levels} with chunks of {split} along the axes they split: levels above "
                  f"{aligned} are stretched (each chunk ends on a partial sample; chunks that are "
                  f"multiples of 2**{levels} avoid it)", stacklevel=3)
    return levels


def _is_dask(data) -> bool:
    return type(data).__module__.startswith("dask.")


def _pad_slab(slab: np.ndarray, shape: tuple, chunks: tuple, pad) -> np.ndarray:
    """A slab of whole chunks (starting on chunk boundaries) with every edge
    chunk padded (``pad``: pad_chunk with its options); ``shape`` is the
    slab's padded shape."""
    if slab.shape == shape:
        return slab
    out = np.empty(shape, slab.dtype)
    grid = [range(0, n, c) for n, c in zip(slab.shape, chunks)]
    for corner in product(*grid):
        valid = tuple(slice(a, min(a + c, n)) for a, c, n in zip(corner, chunks, slab.shape))
        whole = tuple(slice(a, a + c) for a, c in zip(corner, chunks))
        out[whole] = pad(slab[valid], chunks)
    return out


def _write_region(z, data, lo, hi, unit, shape, chunks, pad, progress=None) -> None:
    """Write the region [lo, hi) of the padded array (on chunk boundaries)
    from ``data``, one block of write units (``unit``: chunks or shards, or
    whole axes) at a time, its edge chunks padded (``pad``); ``progress``
    wraps the blocks (tqdm)."""
    starts = [range(a - a % u, b, u) for a, b, u in zip(lo, hi, unit)]
    corners = list(product(*starts))
    for corner in corners if progress is None else progress(corners):
        begin = [max(c, a) for c, a in zip(corner, lo)]
        end = [min(c + u, b) for c, u, b in zip(corner, unit, hi)]
        region = tuple(slice(b, min(e, n)) for b, e, n in zip(begin, end, shape))
        # (rows along axis 0 alone: a bare slice, which every array-like takes)
        whole = all(r.start == 0 and r.stop == n for r, n in zip(region[1:], shape[1:]))
        slab = np.asarray(data[region[0]]) if whole else _read(data, region)
        z[tuple(slice(b, e) for b, e in zip(begin, end))] = _pad_slab(
            slab, tuple(e - b for b, e in zip(begin, end)), chunks, pad)


def _with_codec_options(z, codec_options: dict):
    """A handle on the array ``z`` whose progressive_j2k codec (also inside
    shards) encodes with ``codec_options``; the stored metadata is left as it
    is (it records the array's own options).  Built with zarr's
    AsyncArray(metadata, store_path) (zarr 3.0 and 3.1); where a zarr has
    no such constructor, ``z`` itself, warned (the array's own targets)."""
    from zarr import Array

    from progressive_j2k.zarr3 import ProgressiveJ2K

    try:
        from zarr.core.array import AsyncArray
    except ImportError:
        AsyncArray = None

    metadata = z.metadata.to_dict()
    replacement = ProgressiveJ2K(**codec_options).to_dict()

    def swap(codecs) -> list:
        codecs = [dict(codec) for codec in codecs]
        for i, codec in enumerate(codecs):
            if codec["name"] == replacement["name"]:
                codecs[i] = replacement
            elif codec["name"] == "sharding_indexed":
                codec["configuration"] = {**codec["configuration"],
                                          "codecs": swap(codec["configuration"]["codecs"])}
        return codecs

    metadata["codecs"] = swap(metadata["codecs"])
    try:
        return Array(AsyncArray(metadata, z.store_path))
    except TypeError:   # (AsyncArray None, or another signature)
        warnings.warn("this zarr version cannot open an array with other codec options: edge "
                      "chunks are coded with the array's own targets, which count their "
                      "padding", stacklevel=4)
        return z


#: to_zarr refuses chunks longer than twice the array along an axis whose
#: padded chunk exceeds both of these (bytes; times the array's bytes): a
#: 10 x 10 image in chunks of 100000² allocated 10 GB and was killed
PADDED_CHUNK_BYTES = 256 * 2**20
PADDED_CHUNK_GROWTH = 16
#: ... and refuses lengths that look meant for the trailing axes where the
#: axes they were given to get this many times their length (a 4-band
#: scene in chunks (256, 256, 900): 64x, written 40x slower; 60 slices of
#: 1500² in chunks (420, 420): 7x, 3.4x slower in 4x the memory), and the trailing
#: axes would take them unpadded; less (chunks=(64,) for 30 slices: 2.1x)
#: may be meant as given, and is warned of
MISPLACED_CHUNK_PADDING = 4
#: to_zarr copies an array-like stored in chunks (zarr, a tiled TIFF) in
#: rows of write units as long as its chunks, or as many units as hold at
#: most this many bytes (edge regions with targets: as before)
ROW_BYTES = 2**29
#: to_zarr's dask tasks each write as many whole write units as hold at
#: most this many bytes (zarr encodes a task's chunks in parallel; a task
#: per chunk cost 1.5-1.8x the write of numpy input at 256**2 chunks)
TASK_BYTES = 2**25
#: An edge region is written this many write units at a time along the
#: axis it spans (zarr encodes a call's chunks in parallel).
EDGE_BLOCK_UNITS = 16


def _regions(shape, chunks, padded, codec_options: dict, dtype, ratio_cap: float) -> list:
    """(codec options or None for the array's own, lo, hi): the regions of
    the padded array to_zarr writes.  With size or quality targets and
    partial chunks, the interior, then each class of edge chunks (partial
    along the same axes, so of one share of data) with its options
    (edge_chunk_options); else the whole array."""
    ndim = len(shape)
    partial = [a for a in range(ndim) if shape[a] % chunks[a]]
    whole = [(None, [0] * ndim, list(padded))]
    if not partial or edge_chunk_options(codec_options, 0.5, dtype) is None:   # (no targets)
        return whole
    regions = [(None, [0] * ndim, [padded[a] - (chunks[a] if a in partial else 0)
                                   for a in range(ndim)])]
    for count in range(1, len(partial) + 1):
        for along in combinations(partial, count):
            fraction = math.prod((shape[a] % chunks[a]) / chunks[a] for a in along)
            lo = [padded[a] - chunks[a] if a in along else 0 for a in range(ndim)]
            hi = [padded[a] - chunks[a] if a in partial and a not in along else padded[a]
                  for a in range(ndim)]
            regions.append((edge_chunk_options(codec_options, fraction, dtype, ratio_cap), lo, hi))
    return [r for r in regions if all(a < b for a, b in zip(r[1], r[2]))]


def _whole_axes(lengths, whole: tuple) -> tuple:
    """`lengths` with None or -1 replaced by the axis's `whole` length, as
    zarr takes them (0 for entries beyond `whole`: refused later); TypeError
    for entries that are not whole numbers (64.5 is no length, nor is True)."""
    lengths = tuple(None if c is None else _whole_number(c) for c in lengths)
    return tuple(w if c is None or c == -1 else c
                 for c, w in zip(lengths, tuple(whole) + (0,) * len(lengths)))


def _whole_number(value) -> int:
    """An integer, or a float or 0-d array holding one, as an int (TypeError
    otherwise: bools too)."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray)
                                               and value.dtype == bool):
        raise TypeError(f"not a whole number: {value!r}")
    number = value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value
    if isinstance(number, numbers.Integral):
        return int(number)
    if isinstance(number, numbers.Real) and float(number).is_integer():
        return int(number)
    raise TypeError(f"not a whole number: {value!r}")


def _plain(value):
    """`value` with numpy values as numbers and lists, at any depth."""
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(x) for k, x in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(x) for x in value]
    return value


def _json_attributes(attrs: dict, whose: str = "the DataArray's",
                     advice: str = " (pass attributes= to choose them)") -> dict:
    """An xarray DataArray's attrs (or convert's input's: `whose`, `advice`)
    as zarr can store them (_plain); those JSON cannot hold (dates, bytes)
    left out with a warning, before the store is touched."""
    kept, left = {}, []
    for key, value in attrs.items():
        try:
            value = _plain(value)
            json.dumps(value, allow_nan=True)
        except (TypeError, ValueError):
            left.append(str(key))
            continue
        kept[str(key)] = value
    if left:
        warnings.warn(f"{whose} attributes {', '.join(left)} cannot be stored as JSON: "
                      f"left out{advice}", stacklevel=3)
    return kept


def _pieces(lo: int, hi: int, unit: int) -> tuple:
    """[lo, hi) cut at the multiples of unit: a region's dask chunks, each
    within one write unit (a shard is then written by one task)."""
    cuts = [lo, *range(lo - lo % unit + unit, hi, unit), hi]
    return tuple(b - a for a, b in zip(cuts, cuts[1:]))


def _task_units(lo, hi, write_unit, itemsize: int) -> list:
    """A dask task's extent in [lo, hi): whole write units, as many as
    TASK_BYTES holds, taken along the last axes first."""
    units = list(write_unit)
    for a in reversed(range(len(units))):
        fit = TASK_BYTES // max(math.prod(units) * itemsize, 1)
        units[a] *= max(1, min(fit, -(-(hi[a] - lo[a]) // units[a])))
    return units


def _refuse_values_in_memory(data, nan_ok: bool) -> None:
    """Infinite values (and NaN, unless it is nodata) in a numpy array in
    memory (or an xarray DataArray's), refused before anything is created or
    overwritten: found in a chunk by the codec, they stop the write part-way.
    (Lazy inputs are read once, as written.)"""
    if type(data) is not np.ndarray:
        data = getattr(data, "data", None)   # (a DataArray over numpy)
    if type(data) is np.ndarray:
        _api.require_finite(data, "to_zarr", math.nan if nan_ok else None, where="the data")


def _fill_value_in(dtype: np.dtype, fill_value):
    """`fill_value` as a value of `dtype`, refused where it is not one (zarr
    would cast 2.5 to 2 for uint8, and refuse 300 only after overwrite=True
    has deleted the old array)."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (info.min <= fill_value <= info.max and float(fill_value).is_integer()):
            raise ValueError(f"fill_value {fill_value!r} is not a value of {dtype} "
                             f"(whole numbers {info.min} to {info.max})")
        return int(fill_value)
    with np.errstate(over="ignore"):   # (beyond the range: infinity, refused)
        finite = np.isfinite(np.asarray(fill_value, dtype=np.float64).astype(dtype))
    if not finite:
        raise ValueError(f"fill_value {fill_value!r} is not a finite value of {dtype}")
    return float(fill_value)


def to_zarr(data, store, *, chunks=None, shards=None, overwrite=False, dimension_names=None,
            fill_value=None, attributes=None, progress=False, **codec_options):
    """Write ``data`` (numpy, dask, or any array-like) as a zarr v3 array whose
    chunks are progressive_j2k codestreams; returns the zarr Array.

    Without ``axes``, the axes are chosen as ``encode()`` chooses them (a
    stack of unlike frames is coded frame by frame), once for the array, from
    a block at its centre.  Chunks at the array's edge are completed with
    their own mean (pad_chunk), not the fill value, so that coarser levels
    keep the array's border free of the fill value; with ``nodata`` (or a
    NaN fill value), with nodata, which the codec continues the data into
    and keeps out of coarse levels.  Two consequences: until to_zarr
    returns, the array has the shape of its whole chunks; and if it is
    later enlarged with ``resize``, the region that uncovers in those edge
    chunks reads as that mean (nodata, where there is one), not the fill
    value, until written.  Size and
    quality targets (ratio, bits_per_sample, psnr and layer targets) hold
    for the data of edge chunks, not for the padded chunk: those chunks are
    coded with their targets scaled to their share of data
    (edge_chunk_options), and zarr.json records the array's own.

    Data larger than memory: pass a dask array (written chunk by chunk by the
    active dask scheduler, distributed included) or an array-like that slices
    lazily (e.g. a memory-mapped .npy or another zarr array), which is copied
    one row of chunks at a time.  ``chunks``: lengths for the leading axes
    (the others get the defaults); None or -1 takes an axis whole, in
    ``shards`` too (sample lengths, multiples of the chunks; one chunk per
    shard along an axis left out).  ``codec_options`` are those of
    :class:`progressive_j2k.ProgressiveJ2K`.  ``fill_value`` None: the
    ``nodata`` option where one is given (unwritten parts then read as
    nodata), else zarr's default, 0; it must be a value of the dtype (a
    whole number in range for integers).  NaN (floats) makes the data's
    NaN cells nodata, kept as NaN: decoded exactly and left out of coarse
    levels, as a finite ``nodata`` is.  ``attributes``: the array's (e.g.
    PHYSICAL_ATTRIBUTE, which open_multiscale's levels read; JSON values,
    numpy ones taken as numbers and lists); None: an
    xarray DataArray's attrs (numpy values as lists and numbers; those JSON
    cannot hold left out, warned), else none.
    ``dimension_names`` None: an xarray DataArray's dims (as strings), else
    none.  Everything zarr checks is checked before ``overwrite=True``
    deletes what the store holds; and where the store is a local path
    holding an array or group, the new array is written beside it and takes
    its place once whole, so a failed or interrupted write leaves the old
    one as it was (the disk holds both meanwhile).
    """
    zarr = require_zarr("to_zarr")
    # (before anything is created in the store: a missing one leaves nothing behind)
    tqdm = require("tqdm", "cli", "to_zarr(progress=True)").tqdm if progress else None

    from progressive_j2k.zarr3 import ProgressiveJ2K

    if not (hasattr(data, "shape") and hasattr(data, "dtype")):   # (nested lists, say)
        data = np.asarray(data)
    shape, dtype = tuple(data.shape), np.dtype(data.dtype)
    dims = getattr(data, "dims", None)   # an xarray DataArray's, unless given
    if dimension_names is None and isinstance(dims, tuple) and len(dims) == len(shape):
        others = [d for d in dims if not isinstance(d, str)]   # zarr takes strings only
        if others:
            warnings.warn(f"dims {others} are not strings: written as their str()", stacklevel=2)
        dimension_names = tuple(map(str, dims))
    if attributes is None and isinstance(dims, tuple) and isinstance(
            getattr(data, "attrs", None), dict):   # and its attributes (units, say)
        attributes = _json_attributes(data.attrs)
    elif attributes is not None:   # (zarr would find out after overwrite=True deleted the old)
        try:
            attributes = _plain(dict(attributes))
            json.dumps(attributes, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"attributes must be JSON (numbers, strings, lists, dicts): "
                            f"{exc}") from None
    # an xarray DataArray's mask value where no nodata or fill value is
    # given: its encoding's (as xarray.to_zarr writes it: Level.to_xarray's
    # levels, a variable opened with decode_cf), else its attributes' (one
    # opened with mask_and_scale=False, whose _FillValue is copied with
    # them): _FillValue, else CF's missing_value
    if isinstance(dims, tuple) and fill_value is None and codec_options.get("nodata") is None:
        name, given = cf_mask_value(getattr(data, "encoding", None) or {},
                                    getattr(data, "attrs", None) or {})
        mark = float_from_xarray(given)
        if mark is not None and math.isnan(mark):
            fill_value = math.nan if dtype.kind == "f" else None
        elif mark is not None:
            try:
                codec_options = {**codec_options, "nodata": _options.nodata_in(mark, dtype)}
            except ValueError as exc:   # (one the dtype does not hold: no cell has it)
                if isinstance(attributes, dict) and name in attributes:
                    attributes = {k: v for k, v in attributes.items() if k != name}
                warnings.warn(f"the DataArray's {name} {mark:g} cannot be nodata ({exc}): "
                              f"not copied; give nodata= to mask cells", stacklevel=2)
    # the options and the dtype checked before anything is created in the store
    _options.check_option_names(codec_options, "to_zarr")
    if not shape:
        raise ValueError("to_zarr needs an array of at least one axis, got a 0-d one")
    options = _options.normalise_options(**codec_options)
    try:
        _options.check_dtype(dtype, options)
    except TypeError as exc:
        packed = _cf_packing(data) if isinstance(dims, tuple) else None
        if packed is None or dtype.kind != "f":
            raise
        raise TypeError(f"{exc}. This DataArray was unpacked from {packed} (CF's scale_factor "
                        f"and add_offset): to store the packed integers losslessly, open it "
                        f"with mask_and_scale=False and write those") from None
    options["nodata"] = _options.nodata_in(options["nodata"], dtype)   # (1e20: float32's)
    if options["nodata"] is not None:   # (which the axis choice and zarr.json see too)
        codec_options = {**codec_options, "nodata": options["nodata"]}
    if fill_value is None:
        fill_value = options["nodata"]
    if isinstance(fill_value, np.ndarray) and fill_value.ndim == 0:
        fill_value = fill_value.item()
    if fill_value is not None and (isinstance(fill_value, (bool, np.bool_))
                                   or not isinstance(fill_value, numbers.Real)):
        raise ValueError(f"fill_value must be a number (or None), got {fill_value!r}")
    nan_fill = fill_value is not None and np.isnan(fill_value)
    if nan_fill and dtype.kind != "f":
        raise ValueError(f"fill_value NaN is no {dtype} value")
    if fill_value is not None and not nan_fill:
        fill_value = _fill_value_in(dtype, fill_value)
    _options.check_targets(options)
    _refuse_values_in_memory(data, nan_ok=nan_fill or options["nodata"] is not None)
    # a channels-first colour image gets encode()'s colour axis, recorded
    # (the codecs' "auto" looks at the last axis only) -- where its chunks
    # keep the three channels together
    if chunks is not None:
        try:
            chunks = _whole_axes(chunks, shape)
        except TypeError:
            raise ValueError(f"chunks must be up to {len(shape)} positive integer lengths "
                             f"(None or -1: the whole axis), got {chunks}") from None
    if options["nodata"] is not None:   # so that xarray reads nodata cells as NaN
        attributes = _with_xarray_fill_value(attributes, options["nodata"], dtype)
    if attributes:   # (CF's second mask value, where it is not nodata: its cells are data)
        attributes = without_other_missing_value(attributes, options["nodata"], dtype,
                                                 stacklevel=3)
    source = data   # (what the overwrite guard looks at)
    if options["nodata"] is not None and dtype.kind == "f":   # NaN cells stored as nodata
        data = _nan_as(data, dtype.type(options["nodata"]))
    central = {}   # (the blocks both choices read, read once)
    colour_axis = chosen_colour_axis(data, dtype, options, central)
    if colour_axis is None or (colour_axis != _axes.AUTO_COLOUR and (
            chunks is None or len(chunks) <= colour_axis or chunks[colour_axis] == 3)):
        codec_options = {**codec_options, "colour_axis": colour_axis}
    axes = chosen_axes(data, dtype, codec_options, central,
                       space_axes(attributes or {}, len(shape)))
    del central
    if axes is not None:   # recorded in zarr.json, so every chunk has the same axes
        codec_options = {**codec_options, "axes": axes}
    defaults = default_chunks(shape, dtype, codec_options)
    # the axes left out at the end get the default (the whole colour axis)
    given = chunks
    chunks = defaults if chunks is None else tuple(int(c) for c in chunks)
    chunks += defaults[len(chunks):]
    if len(chunks) != len(shape) or min(chunks, default=1) < 1:
        raise ValueError(f"chunks must be up to {len(shape)} positive lengths, got {chunks}")
    padded_axes = [a for a, (n, c) in enumerate(zip(shape, chunks)) if 0 < 2 * n <= c]
    if padded_axes:
        # lengths meant for (y, x) given to a (frame, y, x) stack: an axis
        # left out is longer than a padded one's chunk
        misplaced = given is not None and any(
            shape[b] >= chunks[a] for a in padded_axes for b in range(len(given), len(shape)))
        meant = None
        if misplaced:   # the same lengths on the trailing axes
            meant = defaults[:len(shape) - len(given)] + tuple(int(c) for c in given)
        growth = math.prod(chunks[a] / shape[a] for a in padded_axes)
        padding = (f"chunks {chunks} are at least twice the array's length along axis "
                   f"{', '.join(map(str, padded_axes))} (shape {shape}): every chunk codes "
                   f"that much padding")
        advice = (". Chunk lengths apply to the leading dimensions (the trailing ones may be "
                  "left out): give one per axis from the first" if misplaced else "")
        if misplaced and growth >= MISPLACED_CHUNK_PADDING and all(
                c < 2 * n for n, c in zip(shape, meant)):
            # (never meant: a write 40x slower, a read of a corner 0.4 s)
            raise ValueError(f"{padding}{advice}, e.g. chunks={meant}")
        chunk_bytes = math.prod(chunks) * dtype.itemsize
        if chunk_bytes > max(PADDED_CHUNK_BYTES, PADDED_CHUNK_GROWTH * math.prod(shape)
                             * dtype.itemsize):
            raise ValueError(f"{padding}, {chunk_bytes / 2**20:,.0f} MiB each: give chunks "
                             f"no longer than the array (-1 takes an axis whole){advice}")
        warnings.warn(padding + advice, stacklevel=2)
    if shards is not None:
        # like chunks, trailing axes may be left out: one chunk per shard
        # there; None or -1 takes an axis whole (its chunks', padding included)
        whole = tuple(max(-(-n // c) * c, c) for n, c in zip(shape, chunks))
        try:
            shards = tuple(int(s) for s in _whole_axes(shards, whole))
        except (TypeError, ValueError):
            raise ValueError(f"shards must be up to {len(shape)} multiples of the chunks "
                             f"{chunks}, got {shards}") from None
        shards += chunks[len(shards):]
        if len(shards) != len(shape) or any(s < c or s % c for s, c in zip(shards, chunks)):
            raise ValueError(f"shards must be up to {len(shape)} multiples of the chunks "
                             f"{chunks}, got {shards}")
    resolved = _options.resolve_options(_options.normalise_options(**codec_options), chunks, dtype)
    _options.check_layout(chunks, resolved)   # (axes, colour axis, levels) before the array exists
    levels = _aligned_levels(shape, chunks, resolved, codec_options.get("levels") is None)
    codec_options = {**codec_options, "levels": levels}  # recorded in zarr.json
    # written as an array of whole chunks, edge chunks padded with their own
    # mean (pad_chunk), then cut to its shape: resizing keeps the chunks it
    # still overlaps as they are
    padded = tuple(-(-n // c) * c for n, c in zip(shape, chunks))
    metadata = dict(shape=padded, dtype=dtype, chunks=chunks, shards=shards,
                    serializer=ProgressiveJ2K(**codec_options), compressors=None,
                    fill_value=fill_value, dimension_names=dimension_names, attributes=attributes)
    # zarr checks these as it writes zarr.json, after overwrite=True has
    # deleted what was there: checked in memory first
    zarr.create_array(zarr.storage.MemoryStore(), **metadata)
    store = zarr_store(store, "to_zarr")
    refuse_foreign_directory(store, overwrite)
    refuse_a_v2_group(store)
    warn_unnamed_in_a_dataset(store, dimension_names, "give dimension_names")
    if overwrite:
        refuse_to_overwrite_input(source, store)
    # an array or group to replace on the local filesystem (a path given):
    # the new one is written beside it and takes its place once whole, so a
    # failed or interrupted write (bad values found in a lazy input's last
    # chunk, say) leaves the old one as it was
    target = local_metadata(store) if overwrite and isinstance(store, (str, os.PathLike)) else None
    staging = None if target is None else staging_beside(store, target)
    others = zarr_tasks() if staging is not None else ()   # (not this call's to settle)
    from zarr.errors import ContainsArrayAndGroupError, ContainsArrayError, ContainsGroupError
    try:
        z = zarr.create_array(store if staging is None else str(staging),
                              overwrite=overwrite and staging is None, **metadata)
    except (ContainsArrayError, ContainsGroupError, ContainsArrayAndGroupError) as exc:
        raise _already_there(store) from exc
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    write_unit = tuple(shards) if shards is not None else chunks
    # edge chunks are padded with nodata where there is one (NaN as the fill
    # value is nodata too), which the codec continues the data into, keeps
    # out of coarse levels and scales their targets for (encode's padding);
    # else with pad_chunk's continuation of the data, which is data to the
    # codec, so their targets are scaled here (_regions)
    nodata = math.nan if nan_fill else options["nodata"]
    # (the stream's header and flushes: an edge chunk's scaled rate target
    # keeps at least EDGE_FLOORS times them)
    floor = _api.smallest_lossy_stream(len(shape), len(resolved["axes"]), levels,
                                       _options.layer_count(resolved))
    regions = _regions(shape, chunks, padded, codec_options if nodata is None else {}, dtype,
                       math.prod(chunks) * dtype.itemsize / (EDGE_FLOORS * floor))
    try:
        try:
            if 0 in shape:   # no chunk to write
                pass
            else:
                with _psnr_warnings_as_given(codec_options.get("psnr"), dtype):
                    pad = functools.partial(pad_chunk, hold=resolved["mode"] == "tolerance",
                                            nodata=nodata)
                    _write_regions(z, data, regions, shape, chunks, padded, write_unit, pad,
                                   tqdm)
        finally:   # the data's shape, also when writing failed part-way
            if padded != shape:
                z.resize(shape)
    except BaseException:
        if staging is not None:   # (the old array stays)
            settle_zarr_writes(before=others)
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if staging is None:
        consolidate_enclosing_groups(zarr, store)
        return z
    try:
        replaced = swap_in(staging, target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(replaced, ignore_errors=True)
    consolidate_enclosing_groups(zarr, store)
    return zarr.open_array(store, mode="r+")


class _SharedWarningRecord:
    """One warnings.catch_warnings(record=True) for every to_zarr write under
    way.  catch_warnings swaps process-wide state and restores what it found,
    so two calls in threads overlapping as A in, B in, A out, B out left A's
    record as the process's warning sink: every later warning was lost.
    The first write in enters it, the last out leaves it; each takes what
    was recorded by then (what a write says while others go on is recorded
    again, and said by the last)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._writers = 0
        self._context = self._record = None

    def enter(self) -> None:
        with self._lock:
            if not self._writers:
                self._context = warnings.catch_warnings(record=True)
                self._record = self._context.__enter__()
            self._writers += 1

    def leave(self) -> list:
        """What was recorded (and not taken yet); the last to leave restores
        the warnings' state."""
        with self._lock:
            taken = self._record[:]   # (appended to without the lock: cut, not cleared)
            del self._record[:len(taken)]
            self._writers -= 1
            if not self._writers:
                self._context.__exit__(None, None, None)
                self._context = self._record = None
        return taken

    def after_fork_in_child(self) -> None:
        """A child forked during a write: its writers are not there, so the
        state is restored and the lock made anew (it may have been held)."""
        self._lock = threading.Lock()
        if self._writers:
            self._context.__exit__(None, None, None)
        self._writers = 0
        self._context = self._record = None


_WRITE_WARNINGS = _SharedWarningRecord()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WRITE_WARNINGS.after_fork_in_child)


@contextlib.contextmanager
def _psnr_warnings_as_given(psnr, dtype):
    """PSNRPeakWarnings of the chunks written inside, as one that names the
    target given (edge chunks are coded to a target raised for their
    padding, edge_chunk_options); other warnings as they came, also when
    the write fails."""
    _WRITE_WARNINGS.enter()
    try:
        yield
    finally:
        _say_recorded(_WRITE_WARNINGS.leave(), psnr, dtype)


def _say_recorded(caught: list, psnr, dtype) -> None:
    """Warn again what a write recorded: PSNRPeakWarnings of the chunks as
    one naming `psnr` (one another write named is said as it is)."""
    peak_warned = False
    for w in caught:
        if (issubclass(w.category, PSNRPeakWarning) and psnr is not None
                and not getattr(w.message, "as_given", False)):
            if not peak_warned:
                given = PSNRPeakWarning(_metrics.narrow_psnr_message(psnr, dtype))
                given.as_given = True
                warnings.warn(given, stacklevel=5)
            peak_warned = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _write_regions(z, data, regions, shape, chunks, padded, write_unit, pad, tqdm) -> None:
    """to_zarr's writes: each region of the padded array (_regions) with its
    codec options, from a dask array or an array-like."""
    if _is_dask(data):
        import dask.array as da
        blocks = data.rechunk(chunks)
        if padded != shape:
            blocks = blocks.map_blocks(
                pad, chunks, dtype=data.dtype,
                chunks=tuple((c,) * len(b) for c, b in zip(chunks, blocks.chunks)))
        for options, lo, hi in regions:   # (one after another: they share shards)
            where = tuple(slice(a, b) for a, b in zip(lo, hi))
            task = _task_units(lo, hi, write_unit, np.dtype(data.dtype).itemsize)
            part = blocks[where].rechunk(tuple(map(_pieces, lo, hi, task)))
            da.store(part, z if options is None else _with_codec_options(z, options),
                     regions=where, lock=False)
    else:
        # one row of write units at a time: along the first axis the
        # units cut (an OME-Zarr (t, c, z, y, x) image of t = c = z = 1
        # is cut along y, not read whole), the axes after it whole
        split = next((a for a in range(len(shape)) if shape[a] > write_unit[a]), 0)
        rows = [write_unit[a] if a <= split else padded[a] for a in range(len(shape))]
        # the interior's rows end where the input's chunks do, so each of
        # those is read once (a (64, 512, 512)-chunked stack written frame
        # by frame read every input chunk 64 times), or are as many units
        # long as fit ROW_BYTES (each input chunk read fewer times)
        interior = list(rows)
        grid = _chunk_grid(data)
        if grid is not None:
            unit_bytes = math.prod(rows) * np.dtype(data.dtype).itemsize
            fit = max(ROW_BYTES // unit_bytes, 1) * rows[split]
            interior[split] = min(math.lcm(rows[split], grid[split]), fit)
        bar = (lambda corners: tqdm(corners, unit="chunk row", desc="writing")
               ) if tqdm is not None else None
        for options, lo, hi in regions:
            if options is None:
                _write_region(z, data, lo, hi, interior, shape, chunks, pad, bar)
            else:   # (a thin region: several rows of units per call)
                _write_region(_with_codec_options(z, options), data, lo, hi,
                              [u * EDGE_BLOCK_UNITS if a == split else u
                               for a, u in enumerate(rows)], shape, chunks, pad)


