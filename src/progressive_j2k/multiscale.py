"""Multiscale view of one stored array: every resolution level as a lazy array.

    levels = progressive_j2k.open_multiscale(zarr_array)
    thumbnail = levels[4][:]          # each transformed axis / 16
    region = levels[1][100:300, 50:250]
    levels[2].to_dask(), levels[2].to_xarray()   # lazy, for dask and xarray

Reading a region of level k fetches, for each chunk it touches, the byte
prefix that level needs, with range requests through the zarr store API.  A
chunk met for the first time is fetched as its header (whose exact length
follows from the codec's options) and a guess of the prefix, in one request
(SPECULATIVE_MARGIN); only the chunk a level's guesses start from (the
middle one of the first read) takes two.  Chunks are fetched concurrently and decoded in worker
threads (the C core releases the GIL).  Headers are cached, so moving between
levels costs one exact range request per chunk.  An array whose chunks are
compressed again after the codec (zarr's default zstd) is read in whole
chunks, which are decompressed first (open_multiscale warns); crc32c alone
after it keeps the prefixes in place, and is read by prefix.
"""
from __future__ import annotations

import asyncio
import copy
import math
import operator
import os
import re
import warnings
import zlib
from dataclasses import dataclass
from functools import partial
from itertools import product
from pathlib import Path

import numpy as np

from progressive_j2k import _api, _core, _options
from progressive_j2k._optional import require, require_zarr
from progressive_j2k._ome import PHYSICAL_ATTRIBUTE, ome_level0, ome_metadata, physical_axes
from progressive_j2k.errors import DecodeError, TruncatedError, WholeChunkWarning

MAX_UINT64 = 2**64 - 1
_CONCURRENCY = 32
#: Level blocks of at most this many samples are decoded on the event loop
#: (a thumbnail's 8x8 block of a 512^2 chunk: tens of microseconds), not in
#: a worker thread.
_INLINE_DECODE = 4096
#: level_nbytes and info find the chunks of an array with more grid cells
#: than this from the store's listing (where it lists), not by asking for
#: each cell: a sparse array's absent chunks then cost nothing.
_LISTING_CELLS = 4096
#: A chunk's first read at a level other than its whole fetches its header
#: and a guess of the level's prefix in one request, not two: the guess is
#: SPECULATIVE_MARGIN times the longest prefix of that level (and layer)
#: read so far, at most SPECULATIVE_LIMIT bytes; a longer prefix costs a
#: second request for the rest, as it did without the guess.  Over-reading
#: is bounded by the margin (of a prefix) or the limit: a request's latency
#: on an object store is worth tens of kilobytes (docs/DESIGN.md 32).
SPECULATIVE_MARGIN = 1.5
SPECULATIVE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class _Layout:
    """How an array's chunks are stored: chunk grid, codec options, sharding."""

    shape: tuple
    chunks: tuple            # the progressive chunks (inner chunks when sharded)
    dtype: np.dtype
    fill_value: object
    options: dict            # resolved codec options
    shard_shape: tuple | None
    index_at_start: bool
    fortran: bool            # zarr v2 order="F": chunks hold the transpose
    compressors: tuple = ()  # names of the codecs applied after progressive_j2k, in order
    trailer: int = 0         # checksum bytes after each codestream (crc32c codecs alone)

    @property
    def grid(self) -> tuple:
        """Chunks per axis (inner chunks when sharded)."""
        return tuple(-(-n // c) for n, c in zip(self.shape, self.chunks))


def _layout_of(array) -> _Layout:
    """Read the codec configuration out of a zarr Array (format 2 or 3)."""
    metadata = array.metadata
    shard_shape, index_at_start, fortran, compressors, trailer = None, False, False, (), 0
    if metadata.zarr_format == 2:
        fortran = metadata.order == "F" and len(array.shape) > 1
        compressor = metadata.compressor
        if compressor is None or getattr(compressor, "codec_id", None) != "progressive_j2k":
            raise ValueError("array is not compressed with progressive_j2k")
        if metadata.filters:
            raise ValueError("filters before progressive_j2k break prefix reads")
        config = {k: v for k, v in compressor.get_config().items() if k != "id"}
        chunks = tuple(metadata.chunks)
    else:
        codecs = [c.to_dict() for c in metadata.codecs]

        def names_in(chain) -> list:   # and those of shards' inner codecs, nested
            return [n for c in chain for n in [c["name"]] + (
                names_in(c["configuration"]["codecs"]) if c["name"] == "sharding_indexed" else [])]

        if "progressive_j2k" not in names_in(codecs):
            raise ValueError(f"array is not encoded with progressive_j2k (its codecs: "
                             f"{', '.join(c['name'] for c in codecs)})")
        codec = codecs[0]
        if codec["name"] == "sharding_indexed":
            if len(codecs) != 1:
                raise ValueError("compressors after the sharding codec compress whole shards: "
                                 "their progressive chunks cannot be read by range")
            sharding = codec["configuration"]
            inner = sharding["codecs"]
            if inner[0]["name"] == "sharding_indexed":
                raise ValueError("shards inside shards: level reads support one level of "
                                 "sharding, with progressive_j2k as the shard's serializer")
            if inner[0]["name"] != "progressive_j2k":
                raise ValueError(f"codecs before progressive_j2k in the shard "
                                 f"({inner[0]['name']}) change what each codestream holds: "
                                 f"level reads need progressive_j2k first (the serializer)")
            index = [c["name"] for c in sharding["index_codecs"]]
            if index != ["bytes", "crc32c"]:
                raise ValueError(f"unsupported shard index codecs {index}")
            codec, after = inner[0], inner[1:]
            chunks = tuple(sharding["chunk_shape"])
            shard_shape = tuple(metadata.chunk_grid.chunk_shape)
            index_at_start = sharding["index_location"] == "start"
        elif codec["name"] != "progressive_j2k":
            raise ValueError(f"codecs before progressive_j2k ({codec['name']}) change what each "
                             f"codestream holds: level reads need progressive_j2k first (the "
                             f"array's serializer)")
        else:
            after = codecs[1:]
            chunks = tuple(metadata.chunk_grid.chunk_shape)
        compressors = _compressors(after)
        if compressors and set(compressors) == {"crc32c"}:
            # checksums appended after the codestream leave its prefixes in
            # place, and the codestream checks its own pieces: read by prefix
            trailer, compressors = _CRC32C_BYTES * len(compressors), ()
        config = codec.get("configuration") or {}
    options = _options.resolve_options(_options.normalise_options(**config), chunks,
                                   np.dtype(array.dtype))
    _options.check_layout(chunks, options)   # (metadata edited by hand: axes, levels)
    return _Layout(tuple(array.shape), chunks, np.dtype(array.dtype), array.fill_value,
                   options, shard_shape, index_at_start, fortran, compressors, trailer)


#: zarr v3 bytes-to-bytes codecs that may follow progressive_j2k (zarr.create_array
#: adds zstd unless given compressors=None).  They compress whole chunks, so a
#: reader undoes them on whole chunks: such an array's levels read whole
#: chunks, not prefixes (but crc32c alone: _Layout.trailer).
_UNDOABLE = ("zstd", "gzip", "blosc", "crc32c")
_CRC32C_BYTES = 4


def _compressors(specs) -> tuple:
    """The names of an array's zarr v3 bytes-to-bytes codecs after
    progressive_j2k (their metadata dicts, in the array's order), checked."""
    unknown = [s["name"] for s in specs if s["name"] not in _UNDOABLE]
    if unknown:
        raise ValueError(f"codecs after progressive_j2k that this reader cannot undo: "
                         f"{', '.join(unknown)} (it undoes {', '.join(_UNDOABLE)}; "
                         f"an array made with compressors=None needs none)")
    return tuple(s["name"] for s in specs)


def _zstd_content_size(data: bytes) -> int | None:
    """The decompressed size a zstd frame states (RFC 8878 3.1.1), or None
    unless `data` is exactly one frame that states it: a second frame (which
    decoders go on to decompress) could hold anything."""
    if len(data) < 6 or data[:4] != b"\x28\xb5\x2f\xfd":
        return None
    descriptor = data[4]
    single_segment = descriptor >> 5 & 1
    at = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3]
    size = (single_segment, 2, 4, 8)[descriptor >> 6]
    if not size or len(data) < at + size:
        return None
    value = int.from_bytes(data[at:at + size], "little") + (256 if size == 2 else 0)
    at += size
    while True:   # the blocks: 3-byte headers (last flag, type, size)
        if len(data) < at + 3:
            return None
        block = int.from_bytes(data[at:at + 3], "little")
        kind, length = block >> 1 & 3, block >> 3
        if kind == 3:   # reserved
            return None
        at += 3 + (1 if kind == 1 else length)   # (an RLE block stores one byte)
        if block & 1:
            break
    at += 4 if descriptor >> 2 & 1 else 0   # the content checksum
    return value if at == len(data) else None


def _undo(name: str, data: bytes, limit: int) -> bytes:
    """`data` with the zarr v3 codec `name` undone, where its result is at
    most `limit` bytes (a chunk that claims more, or does not say, is refused
    before anything is allocated); ValueError and friends where damaged."""
    if name == "crc32c":   # (the core's CRC-32C: no extra dependency)
        n = _CRC32C_BYTES
        if len(data) < n or _core.crc32c(data[:-n]) != int.from_bytes(data[-n:], "little"):
            raise ValueError("its crc32c checksum does not match")
        return data[:-n]
    if name == "gzip":
        stream = zlib.decompressobj(32 + zlib.MAX_WBITS)   # (a gzip or zlib header)
        out = stream.decompress(data, limit + 1)
        if len(out) > limit or not stream.eof:
            raise ValueError("it does not decompress to a codestream of this array's chunks")
        return out
    # zstd and blosc state their decompressed size first
    stated = _zstd_content_size(data) if name == "zstd" else (
        int.from_bytes(data[4:8], "little") if len(data) >= 16 else None)
    if stated is None or stated > limit:
        raise ValueError(f"it states {'no' if stated is None else stated} decompressed bytes, "
                         f"where this array's chunks take at most {limit}")
    import numcodecs
    return bytes(numcodecs.get_codec({"id": name}).decode(data))


class _Reader:
    """Fetches chunk prefixes from the store; caches headers and shard indices."""

    def __init__(self, array):
        self.layout = _layout_of(array)
        self.store = array.store_path.store
        self.path = array.store_path.path
        self.metadata = array.metadata
        opts = self.layout.options
        self.levels = opts["levels"]
        # the axes chunk headers name (zarr v2 order="F": of the transpose)
        self.coded_axes = tuple(opts["axes"]) if not self.layout.fortran else tuple(
            sorted(len(self.layout.chunks) - 1 - a for a in opts["axes"]))
        # the longest header the options allow, what a first request for a
        # header fetches: the mode's, or a lossless chunk's (a lossy target
        # stores some chunks losslessly), which with close_gaps states up to
        # MAX_GAPS value gaps (past a shorter header come the chunk's first
        # bytes, which every prefix holds; a store clips a range past an
        # object's end)
        shape = (len(self.layout.chunks), len(opts["axes"]), self.levels)
        layers = _options.layer_count(opts)
        self.header_length = max(
            _api.header_length(*shape, opts["mode"], layers),
            _api.header_length(*shape, "lossless", layers,
                               gaps=_core.MAX_GAPS if opts["close_gaps"] else 0))
        # level 0's (scale, translation, units), read once for all levels
        self.physical = physical_axes(getattr(self.metadata, "attributes", None) or {},
                                      len(self.layout.shape))
        # chunk coords -> task for its header bytes, and shard coords -> task
        # for its index, kept between reads (a chunk rewritten since fails the
        # header's CRC, fetched again with every prefix, or its pieces', and is
        # read afresh: _exact_prefix, Level._read).  Absence is kept for one
        # read only (its `visit` dict), so chunks written later are seen.
        self._headers: dict = {}
        self._indices: dict = {}
        # (level, layer) -> the longest prefix read so far
        self._longest: dict = {}
        # chunk coords -> stored bytes, where compressors follow
        # progressive_j2k (filled by stored_headers, for info)
        self.stored_sizes: dict = {}
        # the longest codestream a chunk decompresses to: far beyond any
        # encoder's (64^2 chunks of noise with 9 quality layers: 1.45x their
        # raw bytes)
        self.stream_limit = (4 * math.prod(self.layout.chunks) * self.layout.dtype.itemsize
                             + _api.MAX_HEADER_BYTES + 2**16)
        from zarr.core.buffer import default_buffer_prototype
        self._prototype = default_buffer_prototype()

    def __getstate__(self):
        # the caches hold tasks of the event loop that filled them: a copy in
        # another process (dask distributed) starts empty
        return {**self.__dict__, "_headers": {}, "_indices": {}}

    def _key(self, coords) -> str:
        key = self.metadata.encode_chunk_key(tuple(coords))
        return f"{self.path}/{key}" if self.path else key

    def name(self, coords) -> str:
        """Chunk `coords` for a message: its grid coordinates and store key
        (its shard's, in a sharded array)."""
        grid = tuple(int(c) for c in coords)
        if self.layout.shard_shape is None:
            return f"chunk {grid} (key {self._key(coords)!r})"
        return f"chunk {grid} (in shard {self._key(self._shard_of(coords)[0])!r})"

    async def _get(self, key, start=None, stop=None, suffix=None):
        from zarr.abc.store import RangeByteRequest, SuffixByteRequest
        if suffix is not None:
            request = SuffixByteRequest(suffix)
        elif start is not None:
            request = RangeByteRequest(start, stop)
        else:
            request = None
        buf = await self.store.get(key, prototype=self._prototype, byte_range=request)
        if buf is None:
            return None
        raw = buf.to_bytes()
        # a server that ignores Range sends the whole object (our ranges end
        # within it): take the part asked for
        if suffix is not None and len(raw) > suffix:
            raw = raw[-suffix:]
        elif start is not None and len(raw) > stop - start:
            raw = raw[start:stop]
        return raw

    async def _once(self, cache: dict, key, fetch):
        """Await `fetch()` once per key, however many chunks ask at the same
        time (all callers run on zarr's event loop; shielded: one caller's
        cancellation is not the others'); failures and absence (None) are
        not cached."""
        task = cache.get(key)
        if task is None:
            task = cache[key] = asyncio.ensure_future(fetch())
        try:
            result = await asyncio.shield(task)
        except BaseException:
            failed = task.done() and (task.cancelled() or task.exception() is not None)
            if failed and cache.get(key) is task:   # (not when only this caller was cancelled)
                del cache[key]
            raise
        if result is None and cache.get(key) is task:
            del cache[key]
        return result

    def forget(self, coords) -> None:
        """Drop what is cached about a chunk (its header, its shard's index):
        the array was rewritten since."""
        self._headers.pop(coords, None)
        if self.layout.shard_shape is not None:
            self._indices.pop(self._shard_of(coords)[0], None)

    def _shard_of(self, coords) -> tuple:
        """(shard coords, coords within the shard, chunks per shard)."""
        per_shard = tuple(s // c for s, c in zip(self.layout.shard_shape, self.layout.chunks))
        return (tuple(c // p for c, p in zip(coords, per_shard)),
                tuple(c % p for c, p in zip(coords, per_shard)), per_shard)

    async def _fetch_index(self, key, per_shard):
        nbytes = 16 * math.prod(per_shard) + 4
        raw = await (self._get(key, 0, nbytes) if self.layout.index_at_start
                     else self._get(key, suffix=nbytes))
        if raw is None:  # no shard: every inner chunk is missing
            return None
        if len(raw) != nbytes or _core.crc32c(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
            raise DecodeError("the shard's index is damaged (its checksum does not match)")
        return np.frombuffer(raw[:-4], "<u8").reshape(per_shard + (2,))

    async def _locate(self, coords, visit: dict):
        """(key, offset, length or None) of a progressive chunk, or None if
        absent; `visit` holds the shards found absent in one read."""
        layout = self.layout
        if layout.shard_shape is None:
            return self._key(coords), 0, None
        shard, inner, per_shard = self._shard_of(coords)
        if visit.get(shard, True) is None:   # absent earlier in this read
            return None
        key = self._key(shard)
        # indices are kept between reads: a tile-by-tile reader (dask, napari)
        # would otherwise fetch one per chunk; after a sharded array is
        # rewritten, reopen views (a rewritten shard may move its chunks)
        index = await self._once(self._indices, shard, lambda: self._fetch_index(key, per_shard))
        if index is None:
            visit[shard] = None
            return None
        offset, length = (int(v) for v in index[inner])
        if offset == MAX_UINT64:
            return None
        if not layout.trailer <= length <= self.stream_limit + layout.trailer or (
                offset + length >= 2**63):
            raise DecodeError(f"the shard's index gives this chunk {length} bytes at {offset}, where "
                              f"this array's chunks take {layout.trailer} to "
                              f"{self.stream_limit + layout.trailer}")
        return key, offset, length - layout.trailer   # (the codestream's length)

    async def _header_bytes(self, coords, location):
        key, offset, _ = location
        if self.layout.compressors:   # compressed as a whole: read as a whole
            async def fetch():
                data = await self._whole(coords, location)
                return None if data is None else data[: self.header_length]
            return await self._once(self._headers, coords, fetch)
        return await self._once(self._headers, coords,
                                lambda: self._get(key, offset, offset + self.header_length))

    async def _whole(self, coords, location):
        """The whole stored chunk at `location` with the compressors after
        progressive_j2k undone (its codestream), or None if absent."""
        key, offset, length = location
        data = await self._get(key, offset if length is not None else None,
                               None if length is None else offset + length)
        if data is None:
            return None
        # (in a worker thread: the event loop goes on fetching other chunks)
        data = await asyncio.to_thread(self._undone, key, data, self.layout.compressors)
        if len(data) < _api.FIXED_HEADER_BYTES:
            raise TruncatedError(f"chunk {key!r} holds {len(data)} bytes once decompressed",
                                 _api.FIXED_HEADER_BYTES)
        return data

    def _undone(self, key, data: bytes, names) -> bytes:
        """A stored chunk's `data` with the codecs `names` after
        progressive_j2k undone (in reverse order)."""
        for name in reversed(names):
            try:
                data = _undo(name, data, self.stream_limit)
            except Exception as exc:   # (each codec raises its own kind: damaged bytes)
                raise DecodeError(f"chunk {key!r}: its {name} compression after progressive_j2k "
                                  f"cannot be undone ({exc})") from exc
        return data

    async def listed_chunks(self) -> list | None:
        """The coords of the chunks (a shard's every inner chunk) whose
        objects the store lists under the array, in grid order; None where
        the listing fails or leaves out the array's own metadata (a store
        that says it lists but cannot, such as plain HTTP)."""
        layout = self.layout
        prefix = f"{self.path}/" if self.path else ""
        outer = layout.shard_shape or layout.chunks
        objects = [-(-n // c) for n, c in zip(layout.shape, outer)]
        metadata = ".zarray" if self.metadata.zarr_format == 2 else "zarr.json"
        found, listed_metadata = [], False
        try:
            async for key in self.store.list_prefix(prefix):
                name = key[len(prefix):]
                listed_metadata |= name == metadata
                coords = tuple(int(d) for d in re.findall(r"\d+", name))
                if (len(coords) == len(objects) and all(c < n for c, n in zip(coords, objects))
                        and self.metadata.encode_chunk_key(coords) == name):
                    found.append(coords)
        except Exception:   # (each store fails in its own way)
            return None
        if not listed_metadata:
            return None
        if layout.shard_shape is None:
            return sorted(found)
        per_shard = [s // c for s, c in zip(layout.shard_shape, layout.chunks)]
        return sorted(inner for shard in found for inner in product(*(
            range(s * p, min((s + 1) * p, g)) for s, p, g in zip(shard, per_shard, layout.grid))))

    async def stored_size(self, coords, visit: dict):
        """The chunk's stored bytes (all its codecs' output), or None if
        absent: from its shard's index, or the store's size of its object;
        the chunk itself is not read."""
        location = await self._locate(coords, visit)
        if location is None:
            return None
        key, _, length = location
        if length is not None:
            return length + self.layout.trailer
        try:
            return await self.store.getsize(key)
        except FileNotFoundError:
            return None

    async def header(self, coords, visit: dict):
        """The chunk's header (parsed), or None if the chunk is absent;
        checked against its shard index's length as a read checks it."""
        location = await self._locate(coords, visit)
        raw = None if location is None else await self._header_bytes(coords, location)
        if raw is None:
            return None
        header = _api.read_header(raw)
        if not self.layout.compressors:   # (else the index gives the compressed length)
            _check_stream_length(header, location[2])
        return header

    async def prefix(self, coords, visit: dict, level: int, layer: int | None = None):
        """The bytes that decoding chunk `coords` at `level` (with quality
        layers 0..`layer`; None: all) needs, or None if absent; `visit`: the
        read's own cache (absent shards)."""
        location = await self._locate(coords, visit)
        if location is None:
            return None
        key, offset, length = location
        if self.layout.compressors:   # only a whole chunk can be decompressed
            data = await self._whole(coords, location)
            if data is not None:
                self._note(level, layer, data)   # (checks the header against the array's)
                self._keep_header(coords, data)
            return data
        if level == 0 and layer is None and coords not in self._headers:  # the whole chunk
            stop = None if length is None else offset + length
            data = await self._get(key, offset if length is not None else None, stop)
            if data is not None:
                if length is None and self.layout.trailer:   # the object, checksums and all
                    data = self._undone(key, data, ("crc32c",) * (self.layout.trailer
                                                                  // _CRC32C_BYTES))
                self._note(level, layer, data, length)
                self._keep_header(coords, data)
            return data
        if coords not in self._headers:
            guess = self._guess(level, layer)
            if guess:
                return await self._speculative_prefix(coords, location, level, layer, guess)
        return await self._exact_prefix(coords, location, level, layer)

    def _keep_header(self, coords, data) -> None:
        """Cache the header at the start of a whole chunk's `data`, as if read alone."""
        done = asyncio.get_running_loop().create_future()
        done.set_result(data[: self.header_length])
        self._headers.setdefault(coords, done)

    async def _exact_prefix(self, coords, location, level, layer):
        """The header (once per chunk), then the prefix it gives: after a
        header fetched just now, the rest; after a kept one, everything from
        the header's own CRC on.  The kept bytes can be older than the chunk
        (and can hold a short stream's every byte): a chunk rewritten since
        then fails that CRC, or its pieces', and Level._read reads it afresh."""
        key, offset, length = location
        kept = coords in self._headers
        header = await self._header_bytes(coords, location)
        if header is None:
            return None
        needed, header_length = self._note(level, layer, header, length)
        if not kept:
            return await self._rest(key, offset, header, needed)
        start = header_length - _CRC32C_BYTES
        rest = await self._get(key, offset + start, offset + needed)
        return None if rest is None else header[:start] + rest   # (None: deleted since)

    async def _rest(self, key, offset, data, needed):
        """The prefix of `needed` bytes, given its first bytes `data`."""
        if needed <= len(data):
            return data[:needed]
        rest = await self._get(key, offset + len(data), offset + needed)
        if rest is None:
            raise TruncatedError(f"chunk {key!r} vanished while reading", needed)
        return data + rest

    def _note(self, level, layer, raw, length=None) -> tuple:
        """(the prefix length the chunk's header, in `raw`, its first bytes,
        gives, noted for later guesses; the header's length).  DecodeError
        where the header does not fit the array's codec options, or its
        stream is not `length` bytes (a shard index's: one read before the
        shard was rewritten can point at another chunk, whose own checksums
        hold), or longer than any chunk of the array can hold."""
        try:
            header = _api.read_header(raw[: self.header_length])
        except TruncatedError as exc:
            if len(raw) < self.header_length:   # the chunk itself is short
                raise
            raise DecodeError(f"a chunk's header is {exc.needed} bytes, where the array's codec "
                              f"options give at most {self.header_length}: the chunk does not "
                              f"belong to this array (or its metadata was edited)") from exc
        if header.levels != self.levels or tuple(header.axes) != self.coded_axes:
            raise DecodeError(f"a chunk has {header.levels} levels over axes {header.axes}, the "
                              f"array's codec options say {self.levels} over {self.coded_axes}")
        _check_stream_length(header, length)
        needed = header.prefix_length(level, layer)
        if header.nbytes > self.stream_limit:   # (before a store is asked for it)
            raise DecodeError(f"a chunk's header gives a {header.nbytes}-byte stream, where "
                              f"this array's chunks take at most {self.stream_limit}")
        self._longest[level, layer] = max(self._longest.get((level, layer), 0), needed)
        return needed, header.header_length

    def has_header(self, coords) -> bool:
        """Whether the chunk's header is cached (its prefix is then read
        exactly, in one request)."""
        return coords in self._headers

    def knows(self, level, layer) -> bool:
        """Whether a prefix of this level (and layer) has been read: the
        guesses start from it (Level._read reads one chunk first if not)."""
        return (level, layer) in self._longest

    def _guess(self, level, layer):
        """Bytes past the header to fetch with it (SPECULATIVE_MARGIN), or
        None (read exactly: nothing known of this level yet)."""
        if (level, layer) not in self._longest:
            return None
        guess = SPECULATIVE_MARGIN * self._longest[level, layer] - self.header_length
        return int(min(max(guess, 0), SPECULATIVE_LIMIT)) or None

    async def _speculative_prefix(self, coords, location, level, layer, guess):
        """The header and `guess` bytes more in one request (the header
        cached as if read alone), then the rest of the prefix if longer."""
        key, offset, length = location
        stop = offset + self.header_length + guess
        if length is not None:
            stop = min(stop, offset + length)
        fetch = asyncio.ensure_future(self._get(key, offset, stop))

        async def header_of():
            data = await asyncio.shield(fetch)
            return None if data is None else data[: self.header_length]

        header_task = self._headers[coords] = asyncio.ensure_future(header_of())
        # (a failure is raised to this caller: not again, unretrieved, by the task)
        header_task.add_done_callback(lambda t: t.cancelled() or t.exception())
        data = None
        try:
            data = await asyncio.shield(fetch)
        finally:   # failures and absence are not cached (as in _once)
            if data is None and self._headers.get(coords) is header_task:
                del self._headers[coords]
        if data is None:
            return None
        return await self._rest(key, offset, data, self._note(level, layer, data, length)[0])


def _check_stream_length(header, length) -> None:
    """DecodeError unless the chunk's stream is `length` bytes (None: not
    known), its shard index's: one read before the shard was rewritten can
    point at another chunk, whose own checksums hold."""
    if length is not None and header.nbytes != length:
        raise DecodeError(f"a chunk's stream is {header.nbytes} bytes, where its shard's "
                          f"index gives {length}: the shard was rewritten since")


class Level:
    """One resolution level of a progressive array: a lazy, read-only array.

    ``shape``, ``dtype``, ``ndim``, ``chunks`` and numpy basic indexing
    (integers, slices with any step, Ellipsis, None).  Level k divides every transformed
    axis by 2**k, rounded up per chunk.  ``scale``: each axis's sample
    spacing, level 0's times 2**k along transformed axes (level k's sample i
    lies at level 0's 2**k * i where chunks are multiples of 2**k; else
    every 2**k samples from each chunk's start: ``positions``);
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
        self.scale = tuple(s * (2**level if axis in transformed else 1)
                           for axis, s in enumerate(scale))

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

    def to_dask(self):
        """A dask array over this level with matching chunks."""
        da = require("dask.array", "dask", "Level.to_dask")
        return da.from_array(self, chunks=self.chunks, asarray=False, fancy=False,
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
        position; else, along transformed axes, the positions themselves
        (so that levels line up).  Attributes: the array's, less those
        xarray keeps for itself (``_ARRAY_DIMENSIONS``, ``_FillValue``,
        ``coordinates``), with ``ome_level0``'s scale made this level's;
        name: the array's.  Values and coordinates are as
        stored, not CF-decoded: times stay numbers with their ``units``
        (``xarray.decode_cf`` on a Dataset of it decodes them), and no fill
        value is masked or kept for decode_cf to mask, since reduced levels
        blend a fill value into its neighbours (README): mask by range."""
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
            if known is not None:
                values, attrs = known
                for key in _XARRAY_OWN:
                    attrs.pop(key, None)
                coords[dim] = (dim, values[at], attrs)
            elif physical:
                coords[dim] = (dim, reader.physical[1][axis] + reader.physical[0][axis] * at)
            elif axis in transformed:
                coords[dim] = (dim, at)
        for key in _XARRAY_OWN:
            attributes.pop(key, None)
        if physical and isinstance(attributes.get(PHYSICAL_ATTRIBUTE), dict):
            # this level's spacing: to_zarr of it then records its own grid
            attributes[PHYSICAL_ATTRIBUTE] = {**attributes[PHYSICAL_ATTRIBUTE],
                                              "scale": list(self.scale)}
        data = xr.DataArray(self.to_dask(), dims=dims,
                            coords={d: xr.Variable(*c) for d, c in coords.items()},
                            attrs=attributes)
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
        semaphore = asyncio.Semaphore(_CONCURRENCY)
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
            block = decode() if math.prod(self.chunks) <= _INLINE_DECODE else (
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


def _dimension_names(metadata, attributes: dict, ndim: int) -> tuple:
    """An array's dimension names (Level.to_xarray): zarr v3's, xarray's
    attribute (zarr v2), the OME axes' names, or dim_0, dim_1, ..."""
    physical = attributes.get(PHYSICAL_ATTRIBUTE)
    ome = physical.get("axes") if isinstance(physical, dict) else None
    for names in (getattr(metadata, "dimension_names", None), attributes.get("_ARRAY_DIMENSIONS"),
                  [a.get("name") if isinstance(a, dict) else None for a in ome or ()]):
        if names and len(names) == ndim:   # the first source naming each axis, unnamed ones dim_i
            names = tuple(n if isinstance(n, str) and n else f"dim_{i}"
                          for i, n in enumerate(names))
            if len(set(names)) == ndim and any(n != f"dim_{i}" for i, n in enumerate(names)):
                return names
    return tuple(f"dim_{i}" for i in range(ndim))


#: Attributes xarray writes for itself, which to_xarray leaves out
_XARRAY_OWN = ("_ARRAY_DIMENSIONS", "_FillValue", "coordinates")


def _group_and_name(reader) -> tuple:
    """(store, path) of the group holding the reader's array, and the
    array's name in it: from its store path, or, for an array opened at the
    root of a local or fsspec store (open_multiscale("x.zarr/t")), the
    directory above where that is a zarr group; (None, None) where it has
    none."""
    parent, _, name = reader.path.rpartition("/")
    if name:
        return (reader.store, parent), name
    store = reader.store
    root = getattr(store, "root", None)   # a LocalStore opened at the array
    if isinstance(root, Path) and root.name:
        above, name = type(store)(root.parent, read_only=True), root.name
    elif hasattr(store, "fs") and isinstance(getattr(store, "path", None), str) and (
            store.path.strip("/").rpartition("/")[2]):   # an FsspecStore likewise
        up, _, name = store.path.rstrip("/").rpartition("/")
        above = type(store)(store.fs, read_only=True, path=up or "/")
    else:
        return None, None
    zarr = require_zarr("Level.to_xarray")
    try:
        zarr.open_group(store=above, mode="r")
    except (FileNotFoundError, KeyError, ValueError, TypeError, OSError):
        return None, None   # (a directory, not a group: its arrays are not this one's)
    return (above, ""), name


def _coordinate_array(group: tuple, dim: str, length: int):
    """(values, attributes) of the 1-D array named `dim` of `length` values
    in `group` (store, path), read whole; None if there is none."""
    zarr = require_zarr("Level.to_xarray")
    store, parent = group
    try:
        array = zarr.open_array(store=store, path=f"{parent}/{dim}" if parent else dim, mode="r")
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None
    if array.shape != (length,):
        return None
    return np.asarray(array[:]), dict(array.attrs)


def _naming(exc: DecodeError, name: str) -> DecodeError:
    """`exc` (its class and attributes, e.g. TruncatedError's needed), its
    message prefixed with the chunk's `name`."""
    named = copy.copy(exc)
    named.args = (f"{name}: {exc}",) + exc.args[1:]
    return named


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
    if isinstance(array, (str, os.PathLike)) and os.path.isfile(array):   # (zarr: "no group")
        raise ValueError(f"{os.fspath(array)!r} is a file, not a zarr array (a directory or "
                         f"store): make one from it with `progressive-j2k convert` or to_zarr")
    node = array if isinstance(array, (zarr.Array, zarr.Group)) else zarr.open(array, mode="r")
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


def _lists(store) -> bool:
    """Whether a store can list its keys: it says so, and is not plain HTTP
    (fsspec's and obstore's HTTP stores say so but have no listing; obstore
    retries for seconds before it fails)."""
    fs = getattr(store, "fs", None)
    return store.supports_listing and not (
        "http" in (getattr(fs, "protocol", None) or ())
        or type(getattr(store, "store", None)).__name__ == "HTTPStore")


def _stored_chunks(reader: _Reader, ask, chunks=None) -> list:
    """(coords, `await ask(coords, visit)`) for every chunk of the array (or
    those of `chunks`), in grid order, less the absent chunks' (None).
    _CONCURRENCY workers take the chunks in turn: memory grows with the
    chunks found, not with the grid (which a sparse array's metadata can
    make astronomically large); past _LISTING_CELLS cells only the chunks
    the store lists are asked for."""
    grid = reader.layout.grid

    async def gather():
        visit = {}   # (absent shards, for this gather)
        found = []
        listed = chunks
        if listed is None and math.prod(grid) > _LISTING_CELLS and _lists(reader.store):
            listed = await reader.listed_chunks()
        cells = product(*map(range, grid)) if listed is None else iter(listed)

        async def worker():
            for coords in cells:   # (one iterator: each worker takes the next chunk)
                try:
                    result = await ask(coords, visit)
                except DecodeError as exc:
                    raise _naming(exc, reader.name(coords)) from exc
                if result is not None:
                    found.append((coords, result))

        workers = [asyncio.ensure_future(worker()) for _ in range(_CONCURRENCY)]
        try:
            await asyncio.gather(*workers)
        except BaseException:   # (the others stop too: the answer is an error)
            for task in workers:
                task.cancel()
            raise
        return sorted(found, key=lambda f: f[0])

    from zarr.core.sync import sync
    return sync(gather())


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
    The levels cache chunk headers and shard indices: open them again after
    the array is rewritten.
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
