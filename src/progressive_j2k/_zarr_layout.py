"""What open_multiscale reads from a zarr array's metadata (v2 or v3): its
shape and chunks, the codec's options, the chunk keys, sharding, and the
compressors after the codec, undone where they are."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from progressive_j2k import _core, _options
from progressive_j2k._optional import is_url

#: A shard index's offset and length for an absent chunk
MAX_UINT64 = 2**64 - 1
#: The checksum a crc32c codec after this one appends to each chunk
_CRC32C_BYTES = 4


def open_zarr_node(zarr, store):
    """zarr.open(store, mode="r"), with the arithmetic errors zarr's own
    metadata checks raise on hand-edited metadata (a chunk length of 0 in
    a shard, a fill value beyond the dtype) as ValueError naming the store,
    and nothing at a URL as FileNotFoundError naming the URL (zarr names
    its store object there)."""
    try:
        return zarr.open(store, mode="r")
    except ArithmeticError as exc:   # ZeroDivisionError, OverflowError
        raise ValueError(f"{store}: zarr cannot read its metadata ({type(exc).__name__}: "
                         f"{exc}); was it edited by hand?") from exc
    except FileNotFoundError as exc:
        if not is_url(store):   # (zarr's own message names the path)
            raise
        raise FileNotFoundError(f"{store}: no zarr array or group there") from exc


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
    # (metadata edited by hand: zarr opens chunks of length 0, which cut nothing)
    if len(chunks) != len(array.shape) or min(chunks, default=1) < 1:
        raise ValueError(f"chunk shape {chunks} for an array of shape {tuple(array.shape)}: "
                         f"chunk lengths must be positive, one per axis")
    if shard_shape is not None and (len(shard_shape) != len(chunks) or any(
            s < 1 or s % c for s, c in zip(shard_shape, chunks))):
        raise ValueError(f"shard shape {shard_shape}: shards must be positive multiples of "
                         f"the chunk shape {chunks}")
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
