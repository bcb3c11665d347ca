"""Fetching and decoding the byte prefixes of a progressive array's chunks
(the levels' reads, multiscale.py): headers cached, one request per chunk,
concurrent fetches, decodes in worker threads."""
from __future__ import annotations

import asyncio
import copy
import math
import os
import re
import weakref
from itertools import product

import numpy as np

from progressive_j2k import _api, _core, _options
from progressive_j2k._ome import physical_axes
from progressive_j2k._zarr_layout import _CRC32C_BYTES, MAX_UINT64, _layout_of, _undo
from progressive_j2k.errors import DecodeError, TruncatedError

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

#: The readers alive in this process.  A child forked while one of them was
#: fetching a header inherits a task of the parent's event loop (zarr gives
#: the child a loop of its own) that never finishes there, and every read of
#: that chunk failed ("attached to a different loop"): the child drops them.
_LIVE_READERS: weakref.WeakSet = weakref.WeakSet()


def _forget_inherited_fetches() -> None:
    for reader in list(_LIVE_READERS):
        reader.forget_fetches()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_inherited_fetches)

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
        # MAX_GAPS value gaps, and an edge chunk's the fill field of zarr's
        # padding (version 9) (past a shorter header come the chunk's first
        # bytes, which every prefix holds; a store clips a range past an
        # object's end)
        shape = (len(self.layout.chunks), len(opts["axes"]), self.levels)
        layers = _options.layer_count(opts)
        self.header_length = max(
            _api.header_length(*shape, opts["mode"], layers, version=_core.FORMAT_VERSION),
            _api.header_length(*shape, "lossless", layers, version=_core.FORMAT_VERSION,
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
        _LIVE_READERS.add(self)
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

    def __setstate__(self, state):
        self.__dict__.update(state)
        _LIVE_READERS.add(self)

    def forget_fetches(self) -> None:
        """Drop the cached headers and shard indices (and fetches of them
        under way)."""
        self._headers.clear()
        self._indices.clear()

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
            # a failure is raised to the callers still waiting; where every
            # one was cancelled first (a read that failed elsewhere), it is
            # not reported again, unretrieved, when the task is collected
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
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

    def in_flight(self) -> list:
        """The shared fetches (headers, shard indices) not finished yet."""
        return [task for cache in (self._headers, self._indices) for task in cache.values()
                if not task.done()]

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
        self._check_fits(header)   # (level_nbytes and info sum its prefixes by level)
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
        self._check_fits(header)
        _check_stream_length(header, length)
        if layer is not None and layer >= header.layers:   # (metadata edited since: name the chunk)
            raise DecodeError(f"a chunk has {header.layers} quality layer(s), where the array's "
                              f"codec options give layer {layer}")
        needed = header.prefix_length(level, layer)
        if header.nbytes > self.stream_limit:   # (before a store is asked for it)
            raise DecodeError(f"a chunk's header gives a {header.nbytes}-byte stream, where "
                              f"this array's chunks take at most {self.stream_limit}")
        self._longest[level, layer] = max(self._longest.get((level, layer), 0), needed)
        return needed, header.header_length

    def _check_fits(self, header) -> None:
        """DecodeError unless the chunk has the levels and axes the array's
        codec options give (a chunk copied from another array)."""
        if header.levels != self.levels or tuple(header.axes) != self.coded_axes:
            raise DecodeError(f"a chunk has {header.levels} levels over axes {header.axes}, the "
                              f"array's codec options say {self.levels} over {self.coded_axes}")

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


def _naming(exc: DecodeError, name: str) -> DecodeError:
    """`exc` (its class and attributes, e.g. TruncatedError's needed), its
    message prefixed with the chunk's `name`."""
    named = copy.copy(exc)
    named.args = (f"{name}: {exc}",) + exc.args[1:]
    return named


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
        except BaseException as exc:   # (the others stop too: the answer is an error)
            for task in workers:
                task.cancel()
            if isinstance(exc, Exception):   # (not an interrupt or a cancellation)
                # the fetches they shared finish first (one header or index
                # each): else a program that exits on this error leaves them
                # pending ("Task was destroyed but it is pending!")
                await asyncio.gather(*workers, *reader.in_flight(), return_exceptions=True)
            raise
        return sorted(found, key=lambda f: f[0])

    from zarr.core.sync import sync
    return sync(gather())
