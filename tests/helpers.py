"""Shared checks, in the spirit of numcodecs' tests/common.py."""
import json

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import ProgressiveJ2K


def buffer_variants(arr):
    """The same array handed over as the buffer types codecs must accept
    (C-ordered, and a non-contiguous view)."""
    yield arr
    yield np.concatenate([arr, arr])[: len(arr)] if arr.ndim == 1 else arr[:, ::1]
    padded = np.zeros((arr.shape[0] * 2,) + arr.shape[1:], arr.dtype)
    padded[::2] = arr
    yield padded[::2]  # strided view: the codec must copy, not misread


def check_roundtrip_lossless(codec: ProgressiveJ2K, arr: np.ndarray) -> bytes:
    enc = codec.encode(arr)
    assert isinstance(enc, bytes)
    # decode from every byte container
    for buf in (enc, bytearray(enc), memoryview(enc), np.frombuffer(enc, np.uint8)):
        dec = codec.decode(buf)
        assert dec.dtype == arr.dtype and dec.shape == arr.shape
        np.testing.assert_array_equal(dec, arr)
    # decode into out= of the right size: a fresh array, and a flat byte buffer
    out = np.empty(arr.shape, arr.dtype)
    assert codec.decode(enc, out=out) is out
    np.testing.assert_array_equal(out, arr)
    flat = bytearray(arr.nbytes)
    codec.decode(enc, out=flat)
    np.testing.assert_array_equal(np.frombuffer(flat, arr.dtype).reshape(arr.shape), arr)
    if arr.ndim > 1:
        # the codec fills an F-ordered out= as memory in its own order, as
        # numcodecs' codecs do (zarr-python 2 passes one for order="F");
        # decode() takes values, and refuses it
        fortran = np.empty(arr.shape, arr.dtype, order="F")
        assert codec.decode(enc, out=fortran) is fortran
        assert fortran.tobytes(order="A") == arr.tobytes()
        with pytest.raises(ValueError, match="C-contiguous"):
            pj.decode(enc, out=np.empty(arr.shape, arr.dtype, order="F"))
    return enc


def check_config(codec: ProgressiveJ2K):
    config = codec.get_config()
    again = json.loads(json.dumps(config))
    assert again == config
    other = ProgressiveJ2K.from_config({k: v for k, v in again.items() if k != "id"})
    assert other.get_config() == config
    return other


def check_levels_consistent(enc: bytes, arr: np.ndarray):
    """Each level decodes from its prefix to the shape the header promises."""
    header = pj.read_header(enc)
    for level in range(header.levels + 1):
        prefix = enc[: header.prefix_length(level)]
        dec = pj.decode(prefix, level=level)
        assert dec.shape == header.level_shape(level)
        np.testing.assert_array_equal(dec, pj.decode(enc, level=level))


def reseal(buf: bytes, levels: int, layers: int = 1) -> bytes:
    """Recompute every CRC of a (possibly forged) codestream, so that tests can
    reach the checks behind the checksums.  Layout: docs/FORMAT.md."""
    import struct

    from progressive_j2k import _core

    data = bytearray(buf)
    header_length = struct.unpack_from("<I", data, 8)[0]
    table = header_length - 4 - 12 * (levels + 1) * layers
    start = header_length
    for r in range((levels + 1) * layers):
        end = struct.unpack_from("<Q", data, table + 12 * r)[0]
        segment = bytes(data[start:end])
        struct.pack_into("<I", data, table + 12 * r + 8, _core.crc32c(segment))
        start = end
    struct.pack_into("<I", data, header_length - 4, _core.crc32c(bytes(data[:header_length - 4])))
    return bytes(data)


def with_version(buf: bytes, version: int) -> bytes:
    """The same codestream with another version byte, the header's CRC redone
    (versions 7 and 8 share their layout)."""
    import struct

    from progressive_j2k import _core

    data = bytearray(buf)
    header_length = struct.unpack_from("<I", data, 8)[0]
    data[4] = version
    struct.pack_into("<I", data, header_length - 4, _core.crc32c(bytes(data[:header_length - 4])))
    return bytes(data)


def padded_like_zarr(arr, extent, fill):
    """`arr` with everything beyond `extent` (per axis) set to `fill`, as zarr
    completes an edge chunk."""
    import numpy as np

    from progressive_j2k import _edges

    out = np.array(arr)
    for slab in _edges.padding(extent):
        out[slab] = fill
    return out


def with_nodata(arr, below, fill):
    """`arr` with its samples below `below` set to `fill`: a nodata mask of a
    real shape (a head's outline, a field's low values), as a land mask is
    stored in a climate field."""
    import numpy as np

    out = np.array(arr)
    out[arr < below] = fill
    return out
