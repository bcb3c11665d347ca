"""Writing progressive zarr arrays: ``to_zarr`` and the input readers of the CLI."""
from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import types
import warnings
from itertools import combinations, product
from pathlib import Path, PurePosixPath

import numpy as np

from progressive_j2k import _api, _axes, _core, _options, _rate
from progressive_j2k._optional import require, require_zarr
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


def chosen_axes(data, dtype, codec_options: dict) -> tuple | None:
    """The axes encode() would choose for ``data``, judged on a central
    block; None where there is no choice to make (axes given, or fewer than
    three candidate axes)."""
    options = _options.normalise_options(**codec_options)
    shape = tuple(data.shape)
    if options["axes"] is not None or len(shape) > _core.MAX_NDIM:
        return None
    colour_axis = _axes.resolve_colour_axis(options, shape, dtype)
    candidates = _axes.default_axes(len(shape), colour_axis)
    if len(candidates) < 3:
        return None
    block = _central_block(data, [
        min(n, 2 * _axes.LIKENESS_SAMPLES) if axis == candidates[0] else
        min(n, AXES_SAMPLE_EDGE) if axis in candidates else min(n, 1)
        for axis, n in enumerate(shape)])
    return _axes.choose_axes(block, colour_axis)


def _central_block(data, edges) -> np.ndarray:
    """The block of the given edge lengths at the centre of ``data``."""
    region = tuple(slice((n - e) // 2, (n - e) // 2 + e) for n, e in zip(data.shape, edges))
    return _read(data, region)


def _read(data, region: tuple) -> np.ndarray:
    try:
        return np.asarray(data[region])
    except (TypeError, IndexError):   # an array-like that slices its first axis only
        return np.asarray(data[region[0]])[(slice(None),) + tuple(region[1:])]


def chosen_colour_axis(data, dtype, options: dict) -> int | None:
    """encode()'s colour axis where the codecs' "auto" finds none: a
    channels-first colour axis, judged on a block at the array's centre."""
    shape = tuple(data.shape)
    candidate = _axes.channels_first_colour_axis(shape, dtype, options["axes"])
    if candidate is None or _axes.resolve_colour_axis(options, shape, dtype) is not None:
        return None
    block = _central_block(data, [3 if a == candidate else min(n, AXES_SAMPLE_EDGE)
                                  if a >= len(shape) - 2 else 1 for a, n in enumerate(shape)])
    return _axes.encoder_colour_axis(options, block)


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


def pad_chunk(block: np.ndarray, chunks: tuple) -> np.ndarray:
    """An edge chunk (shorter than ``chunks``) completed with its own mean,
    rounded to the dtype: zarr would complete it with the fill value, which
    the wavelet's low bands then blend into the array's last rows and columns
    at every coarser level (a dark line along a bright slide's border at
    fill_value 0).  A constant costs as little to code as the fill value;
    repeating or mirroring the edge costs 9-30x more in thin edge chunks
    (docs/DESIGN.md 29)."""
    if block.shape == chunks:
        return block
    mean = float(np.mean(block, dtype=np.float64)) if block.size else 0.0
    if not np.isfinite(mean):
        mean = 0.0
    if block.dtype.kind in "iu":
        info = np.iinfo(block.dtype)
        mean = min(max(round(mean), info.min), info.max)
    out = np.full(chunks, mean, block.dtype)
    out[tuple(slice(0, n) for n in block.shape)] = block
    return out


def _pad_slab(slab: np.ndarray, shape: tuple, chunks: tuple) -> np.ndarray:
    """A slab of whole chunks (starting on chunk boundaries) with every edge
    chunk padded (pad_chunk); ``shape`` is the slab's padded shape."""
    if slab.shape == shape:
        return slab
    out = np.empty(shape, slab.dtype)
    grid = [range(0, n, c) for n, c in zip(slab.shape, chunks)]
    for corner in product(*grid):
        valid = tuple(slice(a, min(a + c, n)) for a, c, n in zip(corner, chunks, slab.shape))
        whole = tuple(slice(a, a + c) for a, c in zip(corner, chunks))
        out[whole] = pad_chunk(slab[valid], chunks)
    return out


def edge_chunk_options(codec_options: dict, fraction: float, dtype,
                       ratio_cap: float = math.inf) -> dict | None:
    """The codec options for an edge chunk of which ``fraction`` is the
    array's data and the rest to_zarr's padding, or None where they are the
    array's own.  A chunk's targets count all of its samples: its size
    budget is its whole raw size over the ratio, and its squared error is
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
    the data (one row of a 256^2 chunk of astronaut at 10:1: 16 dB)."""
    options = dict(codec_options)
    gain = 10.0 * math.log10(1.0 / fraction)
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
            options["layers"] = [float(t) * scale for t in layers]
    if options.get("psnr") is not None:
        options["psnr"] = float(options["psnr"]) + gain
    if listed and by_psnr:
        options["layers"] = [float(t) + gain for t in layers]
    return None if options == codec_options else options


def _write_region(z, data, lo, hi, unit, shape, chunks, progress=None) -> None:
    """Write the region [lo, hi) of the padded array (on chunk boundaries)
    from ``data``, one block of write units (``unit``: chunks or shards, or
    whole axes) at a time, its edge chunks padded (pad_chunk); ``progress``
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
            slab, tuple(e - b for b, e in zip(begin, end)), chunks)


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


#: An edge chunk's scaled rate target keeps at least this many times the
#: stream's header and flushes (edge_chunk_options' ratio_cap): the last
#: row of astronaut (513 rows in 256^2 chunks at 10:1) decoded at 16 dB
#: scaled fully (249 bytes), 26 dB at 2 floors (488), 44 dB at 4 (940);
#: the chunks inside 41.5 dB.
EDGE_FLOORS = 4
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


def _json_attributes(attrs: dict) -> dict:
    """An xarray DataArray's attrs as zarr can store them (_plain); those
    JSON cannot hold (dates, bytes) left out with a warning, before the
    store is touched."""
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
        warnings.warn(f"the DataArray's attributes {', '.join(left)} cannot be stored as JSON: "
                      f"left out (pass attributes= to choose them)", stacklevel=3)
    return kept


def _pieces(lo: int, hi: int, unit: int) -> tuple:
    """[lo, hi) cut at the multiples of unit: a region's dask chunks, each
    within one write unit (a shard is then written by one task)."""
    cuts = [lo, *range(lo - lo % unit + unit, hi, unit), hi]
    return tuple(b - a for a, b in zip(cuts, cuts[1:]))


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
    keep the array's border free of the fill value.  Two consequences: until
    to_zarr returns, the array has the shape of its whole chunks; and if it
    is later enlarged with ``resize``, the region that uncovers in those edge
    chunks reads as that mean, not the fill value, until written.  Size and
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
    whole number in range for integers).  ``attributes``: the array's (e.g.
    PHYSICAL_ATTRIBUTE, which open_multiscale's levels read; JSON values,
    numpy ones taken as numbers and lists); None: an
    xarray DataArray's attrs (numpy values as lists and numbers; those JSON
    cannot hold left out, warned), else none.
    ``dimension_names`` None: an xarray DataArray's dims (as strings), else
    none.  Everything zarr checks is checked before ``overwrite=True``
    deletes what the store holds.
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
    # the options and the dtype checked before anything is created in the store
    options = _options.normalise_options(**codec_options)
    _options.check_dtype(dtype, options)
    if fill_value is None:
        fill_value = options["nodata"]
    if isinstance(fill_value, np.ndarray) and fill_value.ndim == 0:
        fill_value = fill_value.item()
    if fill_value is not None and (isinstance(fill_value, (bool, np.bool_))
                                   or not isinstance(fill_value, numbers.Real)):
        raise ValueError(f"fill_value must be a number (or None), got {fill_value!r}")
    if fill_value is not None and np.isnan(fill_value):
        raise ValueError("fill_value NaN: the lossy and tolerance modes refuse NaN, and zarr "
                         "pads the chunks of later partial writes with the fill value; give "
                         "a finite one (e.g. 0)")
    if fill_value is not None:
        fill_value = _fill_value_in(dtype, fill_value)
    _options.check_targets(options)
    # a channels-first colour image gets encode()'s colour axis, recorded
    # (the codecs' "auto" looks at the last axis only) -- where its chunks
    # keep the three channels together
    if chunks is not None:
        try:
            chunks = _whole_axes(chunks, shape)
        except TypeError:
            raise ValueError(f"chunks must be up to {len(shape)} positive integer lengths "
                             f"(None or -1: the whole axis), got {chunks}") from None
    colour_axis = chosen_colour_axis(data, dtype, options)
    if colour_axis is not None and (chunks is None or len(chunks) <= colour_axis
                                    or chunks[colour_axis] == 3):
        codec_options = {**codec_options, "colour_axis": colour_axis}
    axes = chosen_axes(data, dtype, codec_options)
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
        warnings.warn(f"chunks {chunks} are at least twice the array's length along axis "
                      f"{', '.join(map(str, padded_axes))} (shape {shape}): every chunk codes "
                      f"that much padding" + (
                          ". Chunk lengths apply to the leading axes (the trailing ones may be "
                          "left out): give one per axis from the first" if misplaced else ""),
                      stacklevel=2)
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
    refuse_foreign_directory(store, overwrite)
    if overwrite:
        refuse_to_overwrite_input(data, store)
    from zarr.errors import ContainsArrayAndGroupError, ContainsArrayError, ContainsGroupError
    try:
        z = zarr.create_array(store, overwrite=overwrite, **metadata)
    except (ContainsArrayError, ContainsGroupError, ContainsArrayAndGroupError) as exc:
        raise _already_there(store) from exc
    write_unit = tuple(shards) if shards is not None else chunks
    # (the stream's header and flushes: an edge chunk's scaled rate target
    # keeps at least EDGE_FLOORS times them)
    floor = _api.smallest_lossy_stream(len(shape), len(resolved["axes"]), levels,
                                       _options.layer_count(resolved))
    regions = _regions(shape, chunks, padded, codec_options, dtype,
                       math.prod(chunks) * dtype.itemsize / (EDGE_FLOORS * floor))
    try:
        if 0 in shape:   # no chunk to write
            pass
        else:
            with _psnr_warnings_as_given(codec_options.get("psnr"), dtype):
                _write_regions(z, data, regions, shape, chunks, padded, write_unit, tqdm)
    finally:   # the data's shape, also when writing failed part-way
        if padded != shape:
            z.resize(shape)
    return z


@contextlib.contextmanager
def _psnr_warnings_as_given(psnr, dtype):
    """PSNRPeakWarnings of the chunks written inside, as one that names the
    target given (edge chunks are coded to a target raised for their
    padding, edge_chunk_options); other warnings as they came."""
    with warnings.catch_warnings(record=True) as caught:
        yield
    peak_warned = False
    for w in caught:
        if issubclass(w.category, PSNRPeakWarning) and psnr is not None:
            if not peak_warned:
                warnings.warn(_rate.narrow_psnr_message(psnr, dtype), PSNRPeakWarning,
                              stacklevel=4)
            peak_warned = True
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _write_regions(z, data, regions, shape, chunks, padded, write_unit, tqdm) -> None:
    """to_zarr's writes: each region of the padded array (_regions) with its
    codec options, from a dask array or an array-like."""
    if _is_dask(data):
        import dask.array as da
        blocks = data.rechunk(chunks)
        if padded != shape:
            blocks = blocks.map_blocks(
                pad_chunk, chunks, dtype=data.dtype,
                chunks=tuple((c,) * len(b) for c, b in zip(chunks, blocks.chunks)))
        for options, lo, hi in regions:   # (one after another: they share shards)
            where = tuple(slice(a, b) for a, b in zip(lo, hi))
            part = blocks[where].rechunk(tuple(map(_pieces, lo, hi, write_unit)))
            da.store(part, z if options is None else _with_codec_options(z, options),
                     regions=where, lock=False)
    else:
        # one row of write units at a time: along the first axis the
        # units cut (an OME-Zarr (t, c, z, y, x) image of t = c = z = 1
        # is cut along y, not read whole), the axes after it whole
        split = next((a for a in range(len(shape)) if shape[a] > write_unit[a]), 0)
        rows = [write_unit[a] if a <= split else padded[a] for a in range(len(shape))]
        bar = (lambda corners: tqdm(corners, unit="chunk row", desc="writing")
               ) if tqdm is not None else None
        for options, lo, hi in regions:
            if options is None:
                _write_region(z, data, lo, hi, rows, shape, chunks, bar)
            else:   # (a thin region: several rows of units per call)
                _write_region(_with_codec_options(z, options), data, lo, hi,
                              [u * EDGE_BLOCK_UNITS if a == split else u
                               for a, u in enumerate(rows)], shape, chunks)


#: The array attribute holding level 0's physical axes, from an OME-Zarr
#: input: OME's "axes" (names, types, units) and the scale and translation
#: its coordinate transformations give level 0 (open_multiscale's
#: Level.scale, .translation and .units read it).
PHYSICAL_ATTRIBUTE = "ome_level0"
#: An OME input's channel rendering metadata (names, colours, display
#: windows), kept as it is under its OME name: viewers read it from there.
OMERO_ATTRIBUTE = "omero"
#: The attributes a conversion carries from its input to its output.
CARRIED_ATTRIBUTES = (PHYSICAL_ATTRIBUTE, OMERO_ATTRIBUTE)


#: _places' "where" for the local filesystem (compared by identity, as stores are)
_LOCAL = "local"


def _places(thing) -> list:
    """Where `thing` keeps its data, as (where, path) pairs: a local path,
    file:// URL, LocalStore or local FsspecStore, or a zarr array, group,
    StorePath or level view in one, as (_LOCAL, its resolved path); one in
    another store as (that store's dict or the store, its path in it); a
    dask array: its zarr sources' places (zarr arrays and level views, as
    Level.to_dask makes).  Nothing for a remote URL."""
    graph = thing.__dask_graph__() if hasattr(thing, "__dask_graph__") else None
    if graph is not None:
        # the arrays a dask array reads: from_zarr and from_array keep them in
        # a materialized layer, or (inline_array=True) as a blockwise layer's
        # literal argument; an optimised graph, or dask-expr's, holds them in
        # its tasks; other layers are not materialized (seconds for 10**5
        # chunks)
        nodes = _one_task_per_name(graph) if not hasattr(graph, "layers") else []
        if hasattr(graph, "layers"):
            from dask.blockwise import Blockwise
            from dask.highlevelgraph import MaterializedLayer
            for layer in graph.layers.values():
                if isinstance(layer, MaterializedLayer):
                    nodes.extend(_one_task_per_name(layer))
                elif isinstance(layer, Blockwise):
                    nodes.extend(value for value, index in layer.indices if index is None)
        sources = {id(source): source for node in nodes for source in _graph_sources(node)}
        return [p for source in sources.values() for p in _places(source)]
    reader = getattr(thing, "_reader", None)   # a multiscale Level
    store_path = getattr(thing, "store_path", None) or (   # an Array, Group or StorePath
        thing if hasattr(thing, "store") and hasattr(thing, "path") else None)
    store, path = ((reader.store, reader.path) if reader is not None else
                   (store_path.store, store_path.path) if store_path is not None else (thing, ""))
    if isinstance(store, (str, os.PathLike)):
        name = os.fspath(store)
        if name.startswith("file://"):
            name = name[len("file://"):]
        return [] if "://" in name else [(_LOCAL, (Path(name) / path).resolve())]
    root = getattr(store, "root", None)   # LocalStore
    if isinstance(root, Path):
        return [(_LOCAL, (root / path).resolve())]
    fs = getattr(store, "fs", None)   # FsspecStore
    if fs is not None and "file" in (getattr(fs, "protocol", None) or ()):
        return [(_LOCAL, (Path(store.path) / path).resolve())]
    # in memory: MemoryStores over one dict are one place
    return [(getattr(store, "_store_dict", store), PurePosixPath("/", path))]


#: What _graph_sources looks into, in dask's and xarray's own objects: a
#: task's arguments, a data node's value, and what lazy wrappers (xarray's
#: backend arrays and indexing adapters) hold
_HOLDERS = ("args", "kwargs", "value", "array", "_array")


#: What _graph_sources does not look into
_LEAVES = (str, bytes, int, float, slice, np.ndarray, np.generic, types.FunctionType,
           types.BuiltinFunctionType)


def _one_task_per_name(mapping) -> list:
    """A dask graph's (or layer's) tasks, the first and last of each output
    name: the chunks of one name come from one operation, mostly on the same
    sources (10**5 chunks' tasks searched whole take seconds).  An optimised
    graph that fuses a concatenation of three or more arrays into one name
    can hold a source in its middle tasks only: not seen."""
    first, last = {}, {}
    for key, task in mapping.items():
        name = key[0] if isinstance(key, tuple) and key else key
        first.setdefault(name, task)
        last[name] = task
    return list(first.values()) + [task for name, task in last.items() if task is not first[name]]


def _graph_sources(node, depth: int = 8) -> list:
    """The zarr arrays and level views a dask graph node reads: the node
    itself, or one within its task's arguments (old-style tuples, or Task
    and DataNode objects) or a lazy wrapper around it, such as xarray's
    open_zarr makes (up to `depth` steps in)."""
    import zarr
    from progressive_j2k.multiscale import Level   # (which imports this module)
    if isinstance(node, (zarr.Array, Level)):
        return [node]
    if depth == 0 or node is None or isinstance(node, _LEAVES):
        return []
    if isinstance(node, (tuple, list)):
        children = node
    elif isinstance(node, dict):
        children = node.values()
    elif type(node).__module__.startswith(("dask.", "xarray.")):
        children = [getattr(node, name, None) for name in _HOLDERS]
    else:
        return []
    return [found for child in children for found in _graph_sources(child, depth - 1)]


#: The files that make a directory a zarr array or group (v3, v2)
_ZARR_METADATA = ("zarr.json", ".zarray", ".zgroup")


def local_path(output) -> Path | None:
    """Where `output` (a path, file:// URL or local store) lies on the local
    filesystem, None for another store or a URL."""
    places = _places(output)
    return places[0][1] if places and places[0][0] is _LOCAL else None


def refuse_foreign_directory(output, overwrite: bool) -> None:
    """FileExistsError where `output` is a local directory holding files but
    no zarr array or group (zarr would write beside them, or with overwrite
    delete them all), or, without overwrite, a zarr v2 array or group (zarr
    3 looks for its own format's there, and would write beside it)."""
    path = local_path(output)
    if path is None or not path.is_dir() or not any(path.iterdir()):
        return
    if not any((path / name).exists() for name in _ZARR_METADATA):
        raise FileExistsError(f"{output}: a directory that holds no zarr array or group "
                              f"(it is not empty); write to a new or empty one")
    if not overwrite and not (path / "zarr.json").exists():
        raise _already_there(output, "(v2) ")


def _already_there(output, kind: str = "") -> FileExistsError:
    """The refusal of an output that holds a zarr array or group, without overwrite."""
    return FileExistsError(f"{output}: a zarr {kind}array or group is already there; pass "
                           f"overwrite=True (command line: --overwrite) to replace it")


def refuse_to_overwrite_input(data, output) -> None:
    """ValueError where writing `output` with overwrite would delete `data`
    (a path, or an array read from one or from a store) before it is read:
    the same place, or one holding it."""
    for source in _places(data):
        for target in _places(output):
            if source[0] is target[0] and (source[1] == target[1]
                                           or target[1] in source[1].parents):
                raise ValueError(f"{output}: overwriting it would delete the input being "
                                 f"converted ({source[1]}) before it is read; write "
                                 f"elsewhere, then move it")


def ome_metadata(attrs: dict, key: str):
    """An OME-Zarr group's `key` ("multiscales", "omero"): among the group's
    attributes (OME-NGFF 0.4) or under their "ome" (0.5); None if absent."""
    ome = attrs.get("ome")
    return attrs.get(key) or (ome.get(key) if isinstance(ome, dict) else None)


def open_input(path: str) -> tuple:
    """A lazily sliceable array from a .npy, TIFF, zarr array or OME-Zarr group
    (its level 0), its dimension names (a zarr v3 array's, or the OME
    axes'; else None) and the attributes to give its conversion (an OME
    input's physical axes, PHYSICAL_ATTRIBUTE, and its omero block,
    OMERO_ATTRIBUTE; a converted array's CARRIED_ATTRIBUTES)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        return np.load(p, mmap_mode="r"), None, {}
    if suffix in (".tif", ".tiff"):
        return _open_tiff(p)
    zarr = require_zarr("reading zarr input")
    node = zarr.open(str(p), mode="r")
    if isinstance(node, zarr.Array):
        return node, getattr(node.metadata, "dimension_names", None), {
            k: v for k, v in node.attrs.asdict().items() if k in CARRIED_ATTRIBUTES}
    attrs = node.attrs.asdict()
    multiscales = ome_metadata(attrs, "multiscales")
    if multiscales:
        array, multiscale = ome_level0(node, multiscales)
        axes = _list(multiscale.get("axes"))
        names = [a.get("name") if isinstance(a, dict) else a for a in axes]
        if len(names) != array.ndim or not all(isinstance(n, str) for n in names):
            names = getattr(array.metadata, "dimension_names", None)
        carried = _physical_axes(multiscale, array.ndim)
        omero = ome_metadata(attrs, "omero")
        if isinstance(omero, dict):
            carried[OMERO_ATTRIBUTE] = omero
        return array, names, carried
    arrays = sorted(node.array_keys())
    if len(arrays) == 1:
        return node[arrays[0]], getattr(node[arrays[0]].metadata, "dimension_names", None), {}
    raise ValueError(f"{path}: a zarr group without OME multiscales metadata; name one of its "
                     f"arrays ({', '.join(f'{path}/{a}' for a in arrays)})")


def ome_level0(group, multiscales) -> tuple:
    """(level 0's array, its multiscale entry) of an OME-Zarr group, from
    its multiscales metadata; ValueError where that names no array in it."""
    zarr = require_zarr("reading OME-Zarr")
    try:
        multiscale = multiscales[0]
        array = group[multiscale["datasets"][0]["path"]]
    except (KeyError, IndexError, TypeError) as exc:
        array = exc
    if not isinstance(array, zarr.Array):
        raise ValueError(f"an OME-Zarr group whose multiscales attribute names no level-0 "
                         f"array in it (multiscales[0].datasets[0].path: {array!r})")
    return array, multiscale


def _list(value) -> list:
    """An attribute's list, or [] where it holds something else."""
    return value if isinstance(value, list) else []


def _physical_axes(multiscale: dict, ndim: int) -> dict:
    """PHYSICAL_ATTRIBUTE for an OME multiscale's level 0: its axes, and the
    scale and translation of its dataset's transformations followed by the
    multiscale's own (OME-NGFF 0.4/0.5); {} where it gives neither."""
    axes = _list(multiscale.get("axes"))
    scale, translation = [1.0] * ndim, [0.0] * ndim
    found, skipped = False, []
    for transform in _list(multiscale["datasets"][0].get("coordinateTransformations")) + (
            _list(multiscale.get("coordinateTransformations"))):
        kind = transform.get("type") if isinstance(transform, dict) else None
        values = _numbers(transform.get(kind), ndim) if kind in ("scale", "translation") else None
        if values is None:
            if kind != "identity":
                skipped.append(kind if isinstance(kind, str) else repr(transform))
            continue
        found = True
        if kind == "scale":
            scale = [s * v for s, v in zip(scale, values)]
            translation = [t * v for t, v in zip(translation, values)]
        else:
            translation = [t + v for t, v in zip(translation, values)]
    if skipped:
        warnings.warn(f"OME coordinate transformations not understood, left out of the "
                      f"physical axes kept ({', '.join(map(str, skipped))}): check "
                      f"{PHYSICAL_ATTRIBUTE}'s scale and translation", stacklevel=3)
    if not found and len(axes) != ndim:
        return {}
    return {PHYSICAL_ATTRIBUTE: {"axes": axes if len(axes) == ndim else [],
                                 "scale": scale, "translation": translation}}


def _numbers(values, count: int) -> list | None:
    """`values` as `count` finite floats, or None if they are not that."""
    if not isinstance(values, list) or len(values) != count or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values):
        return None
    return [float(v) for v in values]


def physical_axes(attributes: dict, ndim: int) -> tuple:
    """(scale, translation, units) of level 0 from an array's
    PHYSICAL_ATTRIBUTE: unit spacing, no offset and None where it is absent
    or malformed (warned), units None where no axis names one."""
    physical = attributes.get(PHYSICAL_ATTRIBUTE)
    default = ((1.0,) * ndim, (0.0,) * ndim, None)
    if physical is None:
        return default
    scale = _numbers(physical.get("scale"), ndim) if isinstance(physical, dict) else None
    translation = None
    if scale:   # (no translation given: no offset)
        given = physical.get("translation")
        translation = default[1] if given is None else _numbers(given, ndim)
    if translation is None:
        warnings.warn(f"{PHYSICAL_ATTRIBUTE} is malformed (scale, and translation if given, "
                      f"must be {ndim} finite numbers each): unit spacing assumed", stacklevel=3)
        return default
    axes = _list(physical.get("axes"))
    units = tuple(a.get("unit") if isinstance(a, dict) else None for a in axes) \
        if len(axes) == ndim else ()
    return tuple(scale), tuple(translation), units if any(u is not None for u in units) else None


def _open_tiff(path) -> tuple:
    """open_input for a TIFF's first series (its full-resolution level): a
    memory map where its data is stored contiguously, else a zarr view of
    its tiles or strips (decoded as read: a tiled slide is never held
    whole), with an OME-TIFF's axes and physical pixel sizes."""
    tifffile = require("tifffile", "cli", "reading TIFF")
    with _tifffile_damage(path), tifffile.TiffFile(path) as tif:
        _check_tiff_extent(tif.series[0], path)
        contiguous = tif.series[0].dataoffset is not None
        # (a single compressed segment per page would be decoded whole for
        # every row of chunks read from it: read it once)
        whole = len(tif.series[0].pages) == 1 and len(tif.pages.first.dataoffsets) == 1
        names, carried = _tiff_axes(tif)
    if contiguous:
        try:   # read-only: an archive's files are never written
            return tifffile.memmap(path, mode="r"), names, carried
        except ValueError as exc:   # (numpy: "mmap length is greater than file size")
            raise ValueError(f"{path}: the file ends before its image data does "
                             f"(truncated?): {exc}") from None
    if whole:
        return tifffile.imread(path, series=0), names, carried
    zarr = require_zarr("reading a tiled or compressed TIFF")
    return zarr.open_array(tifffile.imread(path, aszarr=True, series=0, level=0),
                           mode="r"), names, carried


#: tifffile's log messages for a series it could not read whole (a
#: truncated stack): it then reads the pages it found, as a smaller image.
#: (Not "invalid page offset" alone: a complete file can end with a bad
#: pointer past its last page.)
_TIFF_DAMAGE = ("failed to reshape", "ImageJ series metadata invalid or corrupted file")


@contextlib.contextmanager
def _tifffile_damage(path):
    """ValueError where tifffile logs, inside, that a series is cut short
    (tifffile warns and goes on with fewer pages)."""
    import logging

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    messages, handler, logger = [], Collect(logging.WARNING), logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    damage = [m for m in messages if any(d in m for d in _TIFF_DAMAGE)]
    if damage:
        raise ValueError(f"{path}: a series is cut short (truncated or damaged): "
                         f"{damage[0]}")


def _check_tiff_extent(series, path) -> None:
    """ValueError where a page of `series` is missing or its data runs past
    the end of its file (a truncated copy; a multi-file OME-TIFF's pages
    lie in several): tifffile reads those as zeros."""
    for index, page in enumerate(series.pages):
        size = None if page is None else page.parent.filehandle.size
        if page is None or any(offset + count > size for offset, count in
                               zip(page.dataoffsets, page.databytecounts)):
            raise ValueError(f"{path}: page {index} of the image is missing or ends past the "
                             f"end of its file: the file is truncated or damaged")


#: OME-XML's length units as OME-Zarr names them (UDUNITS-2), each name's
#: OME-XML symbol first (export writes it; µm: the micro sign or the Greek
#: mu, both in use)
OME_LENGTH_UNITS = {"Å": "angstrom", "nm": "nanometer", "µm": "micrometer", "μm": "micrometer",
                    "um": "micrometer", "micron": "micrometer", "mm": "millimeter",
                    "cm": "centimeter", "m": "meter"}
#: and its time units
_OME_UNITS = {**OME_LENGTH_UNITS, "ms": "millisecond", "s": "second", "min": "minute", "h": "hour"}
#: A TIFF series axis (tifffile's letters): its OME pixel size attribute and default unit
_OME_SIZES = {"X": ("PhysicalSizeX", "µm"), "Y": ("PhysicalSizeY", "µm"),
              "Z": ("PhysicalSizeZ", "µm"), "T": ("TimeIncrement", "s")}
_OME_TYPES = {"X": "space", "Y": "space", "Z": "space", "T": "time", "C": "channel",
              "S": "channel"}


def _tiff_axes(tif) -> tuple:
    """(dimension names, carried attributes) of a TIFF's first series: its
    axes as OME-Zarr names them (x, y, z, t, c; RGB samples c, or s beside
    a channel axis) and PHYSICAL_ATTRIBUTE with the pixel sizes that its
    OME-XML, its ImageJ metadata or its resolution tags in centimetres give
    (tags in inches, mostly a screen's 72 or 96 dpi, are left out, warned),
    and an OME-TIFF's channel names as OMERO_ATTRIBUTE; (None, {}) where it
    gives no sizes (or OME-XML that does not parse, warned)."""
    sizes, channels = _tiff_pixel_sizes(tif)
    if sizes is None:
        return None, {}
    letters = tif.series[0].axes
    axes, scale = [], []
    for letter in letters:
        name = letter.lower()
        if letter == "S":   # RGB samples: OME-Zarr's channel axis, unless the TIFF has one
            name = "s" if "C" in letters else "c"
        axis = {"name": name}
        if letter in _OME_TYPES:
            axis["type"] = _OME_TYPES[letter]
        size = 1.0
        if letter in sizes:   # (no size: unit spacing and no unit)
            given, unit = sizes[letter]
            size = _float(given)
            if not (math.isfinite(size) and size > 0):
                warnings.warn(f"the TIFF's pixel size along {name}, {given!r}, is not a size: "
                              f"unit spacing", stacklevel=4)
                size = 1.0
            axis["unit"] = _OME_UNITS.get(unit, unit)
        axes.append(axis)
        scale.append(size)
    names = [a["name"] for a in axes]
    carried = {PHYSICAL_ATTRIBUTE: {"axes": axes, "scale": scale,
                                    "translation": [0.0] * len(axes)}}
    channel = "C" if "C" in letters else "S"
    if channels and channel in letters and len(channels) == tif.series[0].shape[
            letters.index(channel)]:   # (OME-Zarr viewers label channels from omero)
        carried[OMERO_ATTRIBUTE] = {"channels": [{"label": c} for c in channels]}
    return (names if len(set(names)) == len(names) else None), carried


def _tiff_pixel_sizes(tif) -> tuple:
    """({axis letter: (size as given, unit)}, OME channel names) of a TIFF: from its
    OME-XML, else its ImageJ metadata, else resolution tags in centimetres;
    (None, []) where it has none of them."""
    if tif.is_ome:
        import xml.etree.ElementTree as ElementTree

        try:
            pixels = ElementTree.fromstring(tif.ome_metadata).find(".//{*}Pixels")
        except ElementTree.ParseError as exc:
            warnings.warn(f"OME-XML not understood, physical axes left out: {exc}", stacklevel=4)
            return None, []
        sizes = {}
        for letter, (attribute, unit) in _OME_SIZES.items():
            given = None if pixels is None else pixels.get(attribute)
            if given is not None:
                sizes[letter] = (given, pixels.get(attribute + "Unit", unit))
        channels = [] if pixels is None else [
            c.get("Name") or "" for c in pixels.findall("{*}Channel")]
        return sizes, channels if any(channels) else []
    page = tif.pages.first
    resolution = [page.tags.get(t) for t in ("YResolution", "XResolution")]
    if None in resolution:
        return None, []
    rationals = [tuple(map(_float, tag.value)) for tag in resolution]
    per_unit = [n / d if d else math.nan for n, d in rationals]
    unit = page.tags.get("ResolutionUnit")
    unit = unit.value if unit is not None else 2   # (TIFF's default: inches)
    imagej = tif.imagej_metadata if tif.is_imagej else None
    if imagej and imagej.get("unit"):   # ImageJ: pixels per its unit, and z spacing
        sizes = dict(zip("YX", ((1 / p if p else math.nan, imagej["unit"]) for p in per_unit)))
        if "spacing" in imagej:
            sizes["Z"] = (imagej["spacing"], imagej["unit"])
        return sizes, []
    if unit == 3:   # RESUNIT_CENTIMETER
        return dict(zip("YX", ((1e4 / p if p else math.nan, "µm") for p in per_unit))), []
    if unit == 2 and per_unit != [1.0, 1.0]:
        warnings.warn(f"the TIFF's resolution, {per_unit[1]:g} pixels per inch (a screen's, "
                      f"mostly), is not carried as a pixel size", stacklevel=4)
    return None, []


def _float(value) -> float:
    """`value` as a float, NaN where it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
