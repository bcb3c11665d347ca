"""Multiscale view of one stored array: every resolution level as a lazy array.

    levels = progressive_j2k.open_multiscale(zarr_array)
    thumbnail = levels[4][:]          # each transformed axis / 16
    region = levels[1][100:300, 50:250]
    levels[2].to_dask(), levels[2].to_xarray()   # lazy, for dask and xarray

Reading a region of level k fetches, for each chunk it touches, the byte
prefix that level needs, with range requests through the zarr store API.  A
chunk met for the first time is fetched as its header (whose exact length
follows from the codec's options) and a guess of the prefix, in one request
(_reader.SPECULATIVE_MARGIN); only the chunk a level's guesses start from (the
middle one of the first read) takes two.  Chunks are fetched concurrently and decoded in worker
threads (the C core releases the GIL).  Headers are cached, so moving between
levels costs one exact range request per chunk.  An array whose chunks are
compressed again after the codec (zarr's default zstd) is read in whole
chunks, which are decompressed first (open_multiscale warns); crc32c alone
after it keeps the prefixes in place, and is read by prefix.
"""
from __future__ import annotations

import asyncio
import math
import operator
import os
import warnings
from functools import partial
from itertools import product

import numpy as np

from progressive_j2k import _api, _options
from progressive_j2k._optional import require, require_zarr, zarr_store
from progressive_j2k._ome import (PHYSICAL_ATTRIBUTE, channel_labels, ome_level0, ome_metadata,
                                  physical_axes)
from progressive_j2k import _reader
from progressive_j2k._reader import _naming, _Reader, _stored_chunks
from progressive_j2k._xarray import (_XARRAY_OWN, _cf_fill_value, _coordinate_array,
                                     _dimension_names, _group_and_name, _nodata_as_nan)
from progressive_j2k._zarr_layout import _layout_of, open_zarr_node
from progressive_j2k.errors import DecodeError, WholeChunkWarning


class Level:
    """One resolution level of a progressive array: a lazy, read-only array.

    ``shape``, ``dtype``, ``ndim``, ``chunks`` and numpy basic indexing
    (integers, slices with any step, Ellipsis, None).  Level k divides every transformed
    axis by 2**k, rounded up per chunk.  ``scale``: each axis's sample
    spacing, level 0's times 2**k along transformed axes, or times the
    chunk length where chunks are shorter (level k's sample i lies at level
    0's 2**k * i where chunks are multiples of 2**k; else every 2**k samples
    from each chunk's start: ``positions``);
    ``translation`` and ``units``: level 0's.
    Level 0's are those the array records (_ome.PHYSICAL_ATTRIBUTE,
    which ``progressive-j2k convert`` takes from an OME-Zarr input), else 1,
    0 and None.  napari takes them as ``scale=`` and ``translate=`` with a
    colour (RGB) or ``channel_axis`` axis left out.
    """

    def __init__(self, reader: _Reader, level: int, layer: int | None = None):
        self._reader = reader
        self.level = level
        self.layer = layer
        layout = reader.layout
        transformed = set(layout.options["axes"])
        chunks, shape = [], []
        for axis, (n, c) in enumerate(zip(layout.shape, layout.chunks)):
            if axis in transformed:
                lc = -(-c // 2**level)
                full, last = divmod(n, c)
                chunks.append(lc)
                shape.append(full * lc + (-(-last // 2**level) if last else 0))
            else:
                chunks.append(c)
                shape.append(n)
        self.chunks = tuple(chunks)
        self.shape = tuple(shape)
        self.dtype = layout.dtype
        self.ndim = len(shape)
        scale, self.translation, self.units = reader.physical
        # level k's samples lie 2**k apart in each chunk (positions), one at
        # each chunk's start where chunks are shorter: c apart (chunks of
        # one sample keep the axis's grid, aligned_levels)
        self.scale = tuple(s * (min(2**level, c) if axis in transformed else 1)
                           for axis, (s, c) in enumerate(zip(scale, layout.chunks)))

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        layer = "" if self.layer is None else f" layer={self.layer}"
        return f"<progressive_j2k Level {self.level}{layer} shape={self.shape} dtype={self.dtype}>"

    def __array__(self, dtype=None, copy=None):
        if copy is False:
            raise ValueError("a Level is read from the store: it cannot be viewed without a copy")
        data = self[...]
        return data if dtype is None else data.astype(dtype)

    def to_dask(self, chunks=None):
        """A dask array over this level.  Its blocks (``chunks``, as dask
        takes them; None: whole chunks of this level, as many as cover a
        stored chunk's extent, about 2**k per transformed axis) are each read in
        one go: a block per chunk of a coarse level cost a task per few
        samples (level 4 of 256**2 chunks: 16 x 16 each, reads 3x slower
        than the level read whole)."""
        da = require("dask.array", "dask", "Level.to_dask")
        if chunks is None:
            stored = self._reader.layout.chunks
            chunks = tuple(min(n, c * -(-s // c)) if n else c
                           for n, c, s in zip(self.shape, self.chunks, stored))
        return da.from_array(self, chunks=chunks, asarray=False, fancy=False,
                             meta=np.empty((0,) * self.ndim, self.dtype))

    def to_xarray(self):
        """A lazy xarray.DataArray over this level (its data to_dask's).

        Dimensions: the array's names (a zarr v3 array's dimension_names,
        xarray's ``_ARRAY_DIMENSIONS`` attribute, or the axes' names its
        ``ome_level0`` attribute records), else dim_0, dim_1, ...  Coordinates,
        per axis, at the level-0 positions this level's samples lie at
        (positions): a 1-D coordinate array of the dimension's name beside
        the array in its group (as xarray writes them) taken there; else,
        where the array records physical axes, translation + scale *
        position (but an OME channel axis that is not transformed, whose
        channels the ``omero`` attribute names: those names); else, along
        transformed axes, the positions themselves (so that levels line
        up).  Attributes: the array's, less those xarray keeps for itself
        (``_ARRAY_DIMENSIONS``, ``_FillValue``, ``coordinates``), with
        ``ome_level0``'s scale made this level's; name: the array's.
        Values and coordinates are as stored, not CF-decoded: times stay
        numbers with their ``units`` (``xarray.decode_cf`` on a Dataset of
        it decodes them).  Nodata
        (the codec's ``nodata``, which every level keeps exact and apart from
        the data) is the exception, as xarray.open_zarr masks it: a float
        level reads NaN there (``encoding["_FillValue"]`` keeps the stored
        value), an integer level keeps it and has it as its ``_FillValue``
        attribute, for decode_cf to mask.  Without nodata, the ``_FillValue``
        xarray masks an integer array with (its attribute in zarr v3, the
        fill value of an array it wrote to zarr v2) stays an attribute, so
        decode_cf of CF packing (int16 with ``scale_factor``) masks as
        xarray.open_zarr does."""
        xr = require("xarray", "xarray", "Level.to_xarray")
        reader = self._reader
        attributes = dict(getattr(reader.metadata, "attributes", None) or {})
        dims = _dimension_names(reader.metadata, attributes, self.ndim)
        physical = reader.physical != physical_axes({}, self.ndim)
        transformed = set(reader.layout.options["axes"])
        group, name = _group_and_name(reader)   # (where coordinate arrays lie)
        coords = {}
        for axis, dim in enumerate(dims):
            at = self.positions(axis)
            known = None if group is None or dim == name else _coordinate_array(
                group, dim, reader.layout.shape[axis])
            labels = None if known is not None or axis in transformed else channel_labels(
                attributes, axis, self.ndim, reader.layout.shape[axis])
            if known is not None:
                values, attrs = known
                for key in _XARRAY_OWN:
                    attrs.pop(key, None)
                coords[dim] = (dim, values[at], attrs)
            elif labels is not None:   # an OME channel axis: its channels' names
                coords[dim] = (dim, labels[at])
            elif physical:
                coords[dim] = (dim, reader.physical[1][axis] + reader.physical[0][axis] * at)
            elif axis in transformed:
                coords[dim] = (dim, at)
        cf_fill = _cf_fill_value(attributes, reader.metadata.zarr_format,
                                 reader.layout.fill_value, self.dtype)
        for key in _XARRAY_OWN:
            attributes.pop(key, None)
        if physical and isinstance(attributes.get(PHYSICAL_ATTRIBUTE), dict):
            # this level's spacing: to_zarr of it then records its own grid
            attributes[PHYSICAL_ATTRIBUTE] = {**attributes[PHYSICAL_ATTRIBUTE],
                                              "scale": list(self.scale)}
        values, nodata = self.to_dask(), reader.layout.options.get("nodata")
        masked = nodata is not None and self.dtype.kind == "f" and not np.isnan(nodata)
        if masked:   # (a NaN nodata is NaN already)
            values = values.map_blocks(_nodata_as_nan, self.dtype.type(nodata), dtype=self.dtype)
        elif nodata is not None and self.dtype.kind in "iu":
            attributes["_FillValue"] = int(nodata)
        elif cf_fill is not None:   # (CF packing: decode_cf masks as xarray.open_zarr does)
            attributes["_FillValue"] = cf_fill
        data = xr.DataArray(values, dims=dims,
                            coords={d: xr.Variable(*c) for d, c in coords.items()},
                            attrs=attributes)
        if masked:
            data.encoding["_FillValue"] = float(nodata)
        data.name = name   # (not the dask array's)
        return data

    def positions(self, axis: int) -> np.ndarray:
        """The level-0 indices along `axis` at which this level's samples lie:
        every 2**level-th from each chunk's start along transformed axes."""
        index = operator.index(axis)
        if not -self.ndim <= index < self.ndim:
            raise IndexError(f"axis {index} is out of range for a {self.ndim}-d level")
        axis = range(self.ndim)[index]   # (negative axes too)
        n, c = self._reader.layout.shape[axis], self._reader.layout.chunks[axis]
        if axis not in self._reader.layout.options["axes"] or self.level == 0:
            return np.arange(n)
        return np.concatenate([np.arange(start, min(start + c, n), 2**self.level)
                               for start in range(0, n, c)] or [np.arange(0)])

    def __getitem__(self, key):
        starts, stops, steps, post = _normalise_key(key, self.shape)
        from zarr.core.sync import sync
        region = sync(self._read(starts, stops, steps))
        return region[post]

    async def _read(self, starts, stops, steps):
        """The selection start:stop:step per axis, allocating only it and
        reading only the chunks that hold one of its elements."""
        out = np.empty(tuple(len(range(*r)) for r in zip(starts, stops, steps)), self.dtype)
        if out.size == 0:
            return out
        per_axis = []   # per axis: (chunk index, its part of out, the selected part of it)
        for a, b, step, c in zip(starts, stops, steps, self.chunks):
            parts = []
            # the chunks holding a selected index: those spanned, or (steps
            # longer than a chunk) those of each index, never more than out has
            spanned = range(a // c, (b - 1) // c + 1)
            held = spanned if step <= c else sorted({i // c for i in range(a, b, step)})
            for k in held:
                lo, hi = max(a, k * c), min(b, (k + 1) * c)
                first = a + -(-(lo - a) // step) * step   # the first selected index >= lo
                if first < hi:
                    at = (first - a) // step
                    parts.append((k, slice(at, at + len(range(first, hi, step))),
                                  slice(first - k * c, hi - k * c, step)))
            per_axis.append(parts)
        semaphore = asyncio.Semaphore(_reader._CONCURRENCY)
        visit = {}   # this read's own cache: absent shards

        async def fill(parts):
            coords = tuple(p[0] for p in parts)
            region_out = tuple(p[1] for p in parts)
            region_chunk = tuple(p[2] for p in parts)
            try:
                block = await read(coords)
            except DecodeError:
                # a header cached before the array was rewritten gives the
                # wrong prefix: once more, afresh
                self._reader.forget(coords)
                try:
                    block = await read(coords)
                except DecodeError as exc:   # which chunk (the core's messages cannot say)
                    raise _naming(exc, self._reader.name(coords)) from exc
            if block is None:
                fill = self._reader.layout.fill_value
                out[region_out] = 0 if fill is None else fill  # zarr reads None as 0
                return
            out[region_out] = block[region_chunk]

        async def read(coords):
            async with semaphore:
                data = await self._reader.prefix(coords, visit, self.level, self.layer)
            if data is None:
                return None
            layout = self._reader.layout
            fortran = layout.fortran   # chunks coded as their transpose
            decode = partial(_api.decode_chunk, data,
                             layout.chunks[::-1] if fortran else layout.chunks,
                             layout.dtype, self.level, self.layer)
            # a small block is decoded at once: a worker thread's round trip
            # would cost more than the decode keeps the event loop waiting
            block = decode() if math.prod(self.chunks) <= _reader._INLINE_DECODE else (
                await asyncio.to_thread(decode))
            return block.T if fortran else block

        jobs = list(product(*per_axis))
        whole = bool(self._reader.layout.compressors)   # (whole chunks: nothing to guess)
        if not whole and len(jobs) > 1 and (self.level or self.layer is not None) and not (
                self._reader.knows(self.level, self.layer)) and not all(
                self._reader.has_header(tuple(p[0] for p in parts)) for parts in jobs):
            # the guesses of a level's prefixes start from one chunk read
            # exactly: the middle one, which is more typical than a corner
            # (often background in slides and scans)
            await fill(jobs.pop(len(jobs) // 2))
        await asyncio.gather(*(fill(parts) for parts in jobs))
        return out


def _normalise_key(key, shape):
    """Basic numpy indexing -> per-axis start, stop and (positive) step of
    the region to read, and the index that makes the result of it:
    integers drop their axis, negative steps reverse it, None (np.newaxis)
    adds one."""
    if not isinstance(key, tuple):
        key = (key,)
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(k is not None and k is not Ellipsis for k in key)
    if used > len(shape):
        raise IndexError(f"too many indices for an array of {len(shape)} dimensions")
    if any(k is Ellipsis for k in key):
        i = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - used) + key[i + 1:]
    else:
        key = key + (slice(None),) * (len(shape) - used)
    starts, stops, steps, post = [], [], [], []
    axis = 0
    for k in key:
        if k is None:
            post.append(None)
            continue
        n = shape[axis]
        axis += 1
        if isinstance(k, np.ndarray) and k.ndim == 0 and k.dtype.kind in "iu":
            k = k.item()   # (numpy reads a 0-d integer array as its integer)
        if isinstance(k, (bool, np.bool_)):
            raise IndexError("boolean indices are not supported")
        if isinstance(k, (int, np.integer)):
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {k} out of range for axis of length {n}")
            starts.append(i), stops.append(i + 1), steps.append(1), post.append(0)
        elif isinstance(k, slice):
            picked = range(*k.indices(n))
            if picked.step < 0:   # the same elements read forwards, then reversed
                picked = picked[::-1]
            starts.append(picked.start), stops.append(max(picked.start, picked.stop))
            steps.append(picked.step)
            post.append(slice(None, None, -1) if k.indices(n)[2] < 0 else slice(None))
        else:
            kind = type(k).__name__ if isinstance(k, np.ndarray) or hasattr(k, "__len__") else repr(k)
            raise IndexError(f"only integers, slices, None and Ellipsis are supported (basic "
                             f"indexing), got {kind}")
    return starts, stops, steps, tuple(post)


def progressive_array(array):
    """A zarr Array as given, or opened read-only from a path or store; in a
    group, its one progressive_j2k array or an OME-Zarr group's level 0."""
    zarr = require_zarr("open_multiscale")
    if not isinstance(array, (zarr.Array, zarr.Group)):
        array = zarr_store(array, "open_multiscale")
    if isinstance(array, (str, os.PathLike)) and os.path.isfile(array):   # (zarr: "no group")
        raise ValueError(f"{os.fspath(array)!r} is a file, not a zarr array (a directory or "
                         f"store): make one from it with `progressive-j2k convert` or to_zarr")
    node = array if isinstance(array, (zarr.Array, zarr.Group)) else open_zarr_node(zarr, array)
    if isinstance(node, zarr.Array):
        return node
    attrs = node.attrs.asdict()
    multiscales = ome_metadata(attrs, "multiscales")
    if multiscales:
        return ome_level0(node, multiscales)[0]
    progressive = [name for name, child in node.arrays() if _is_progressive(child)]
    if len(progressive) == 1:
        return node[progressive[0]]
    names = sorted(progressive or [name for name, _ in node.arrays()])
    # named as the caller named the group: paths for a path, keys for a Group
    if isinstance(array, (str, os.PathLike)):
        where = os.fspath(array).rstrip("/")
        listed = ", ".join(f"{where}/{name}" for name in names)
    else:
        listed = ", ".join(f"group[{name!r}]" for name in names)
    if not names:   # (an HTTP server that lists no directories shows a group no members)
        groups = sorted(name for name, _ in node.groups())
        if groups:
            raise ValueError(f"a zarr group, not an array, and no arrays directly in it: pass "
                             f"an array's own path in its groups ({', '.join(groups)})")
        raise ValueError("a zarr group, not an array, and no arrays were found in it (a store "
                         "that cannot list, such as most HTTP servers and object stores' "
                         "public URLs, shows none): pass the array's own path or URL")
    raise ValueError(f"a zarr group, not an array: pass one of its "
                     f"{'progressive_j2k ' if progressive else ''}arrays ({listed})")


def _is_progressive(array) -> bool:
    try:
        _layout_of(array)
    except (ValueError, TypeError):
        return False
    return True


#: Where compressors follow progressive_j2k a chunk's header costs the whole
#: chunk: stored_headers then reads this many, spread over the stored ones.
HEADER_SAMPLE = 32


def stored_headers(array) -> tuple:
    """(the array's reader, headers of its stored chunks, how many are
    stored): every header, and only the headers, are read; where compressors
    follow progressive_j2k, the chunks' sizes (reader.stored_sizes) come from
    the store or the shards' indices and HEADER_SAMPLE chunks spread over
    the stored ones are read whole for theirs."""
    reader = _Reader(progressive_array(array))
    if not reader.layout.compressors:
        headers = [h for _, h in _stored_chunks(reader, reader.header)]
        return reader, headers, len(headers)
    reader.stored_sizes = dict(_stored_chunks(reader, reader.stored_size))
    stored = list(reader.stored_sizes)
    sample = stored[::max(1, -(-len(stored) // HEADER_SAMPLE))]
    return reader, [h for _, h in _stored_chunks(reader, reader.header, sample)], len(stored)


def codec_options(array) -> dict:
    """The codec options an array records (normalised, with the levels and
    axes its chunks have)."""
    return dict(_layout_of(progressive_array(array)).options)


def level_nbytes(array, layer: int | None = None) -> list[int]:
    """Stored bytes each level needs in total (sum of the chunks' prefixes),
    finest first, with quality layers 0..``layer`` (None: all); reads only
    the chunks' headers.  Where compressors follow progressive_j2k, every
    level needs the whole stored chunks: their sizes, from the store or the
    shards' indices (the chunks are not read)."""
    reader = _Reader(progressive_array(array))
    _check_layer(reader, layer)
    if reader.layout.compressors:
        return [sum(n for _, n in _stored_chunks(reader, reader.stored_size))] * (
            reader.levels + 1)
    headers = [h for _, h in _stored_chunks(reader, reader.header)]
    return [sum(h.prefix_length(k, layer) for h in headers) for k in range(reader.levels + 1)]


def _check_layer(reader: _Reader, layer) -> None:
    """ValueError unless `layer` is None or one of the array's quality layers
    (TypeError for a non-integer, bools included, which would read as 0 or 1)."""
    if isinstance(layer, (bool, np.bool_)):
        raise TypeError(f"layer must be an integer or None, got {layer!r}")
    if layer is not None:
        layers = _options.layer_count(reader.layout.options)
        if not 0 <= operator.index(layer) < layers:
            raise ValueError(f"layer must be in 0..{layers - 1} for this array, got {layer}")


def levels_from(level: Level) -> list[Level]:
    """`level` and the coarser levels of its array (at its layer), finest first."""
    reader = level._reader
    return [Level(reader, k, level.layer) for k in range(level.level, reader.levels + 1)]


def open_multiscale(array, layer: int | None = None) -> list[Level]:
    """All resolution levels of a progressive_j2k zarr array, finest first.

    ``array`` is a zarr Array (format 2 with ``compressor=ProgressiveJ2K()``,
    or format 3 with the ``progressive_j2k`` serializer, sharded or not), or a
    path/store that ``zarr.open_array`` accepts.  ``layer`` (for arrays coded
    with quality layers) reads every level from the shorter prefix of its
    layers 0..``layer``: a quicker, lower-quality view; None reads all layers.
    The levels cache chunk headers (a rewritten chunk fails its checksum
    against them and is read afresh, so views of an unsharded array follow
    writes) and shard indices: open a sharded array's levels again after it
    is rewritten.
    """
    reader = _Reader(progressive_array(array))
    layout = reader.layout
    aligned, split = _api.aligned_levels(layout.shape, layout.chunks, layout.options["axes"])
    if reader.levels > aligned:   # (to_zarr's defaults avoid this, and warn where they cannot)
        stretched = (f"level {reader.levels} of this array is" if aligned + 1 == reader.levels
                     else f"levels {aligned + 1} to {reader.levels} of this array are")
        warnings.warn(f"{stretched} stretched: its "
                      f"chunks of {split} along the axes they cut are not multiples of "
                      f"2**{reader.levels}, so each chunk's level k ends on a partial sample and "
                      f"level k is not the array's grid every 2**k samples (a viewer that infers "
                      f"scales from shapes misplaces it)", stacklevel=2)
    _check_layer(reader, layer)
    if layout.compressors:
        names = ", ".join(layout.compressors)
        warnings.warn(f"this array compresses its chunks again after progressive_j2k ({names}): "
                      f"every level reads and decompresses whole chunks, not the prefix it "
                      f"needs. Arrays made with compressors=None (zarr.create_array adds zstd "
                      f"otherwise) are read by prefix", WholeChunkWarning, stacklevel=2)
    return [Level(reader, k, layer) for k in range(reader.levels + 1)]
