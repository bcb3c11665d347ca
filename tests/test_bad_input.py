"""Damaged, truncated, forged and misused input: always a clear exception."""
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import ProgressiveJ2K

from helpers import reseal

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def chunk(request):
    from conftest import load
    arr = np.ascontiguousarray(load("camera")[300:340, 200:236])
    return arr, pj.encode(arr)


def test_wrong_magic_and_version(chunk):
    _, enc = chunk
    with pytest.raises(pj.DecodeError, match="magic"):
        pj.decode(b"XXXX" + enc[4:])
    with pytest.raises(pj.DecodeError, match="version"):
        pj.decode(enc[:4] + bytes([99]) + enc[5:])


@pytest.mark.parametrize("offset, code", [(4, pj._core.FORMAT_VERSION + 1), (5, 8), (6, 5), (6, 255)])
def test_codes_from_a_newer_writer_are_named_as_such(chunk, offset, code):
    # a later version, dtype or wavelet code (wavelets 3 and 4 were added to
    # version 6): "newer", not "invalid header"
    _, enc = chunk
    forged = bytearray(enc)
    forged[offset] = code
    with pytest.raises(pj.DecodeError, match="newer progressive_j2k"):
        pj.read_header(bytes(forged))
    with pytest.raises(pj.DecodeError, match="newer progressive_j2k"):
        pj.decode(bytes(forged))
    if offset != 4:   # in an earlier version the same code is damage
        older = bytearray((GOLDEN / "v5_i16_3d.pj2k").read_bytes())
        older[offset] = code
        with pytest.raises(pj.DecodeError, match="invalid codestream header"):
            pj.read_header(bytes(older))
    with pytest.raises(ValueError):
        pj.decode(b"")
    with pytest.raises(ValueError):
        pj.decode(b"not a codestream at all, definitely not")


def test_every_single_byte_corruption_is_detected(chunk):
    arr, enc = chunk
    for i in range(len(enc)):
        for flip in (0x01, 0x80, 0xFF):
            damaged = bytearray(enc)
            damaged[i] ^= flip
            with pytest.raises(ValueError):
                pj.decode(bytes(damaged))


def test_burst_corruption_is_detected(chunk):
    _, enc = chunk
    rng = np.random.default_rng(0)
    for _ in range(300):
        start = int(rng.integers(0, len(enc) - 8))
        damaged = bytearray(enc)
        damaged[start:start + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        if bytes(damaged) == enc:
            continue
        with pytest.raises(ValueError):
            pj.decode(bytes(damaged))


def test_coarse_levels_survive_damage_to_fine_segments(chunk):
    _, enc = chunk
    header = pj.read_header(enc)
    damaged = bytearray(enc)
    damaged[-3] ^= 0x40  # inside the finest segment only
    with pytest.raises(pj.ChecksumError):
        pj.decode(bytes(damaged), level=0)
    for level in range(1, header.levels + 1):  # these never read the damaged bytes
        np.testing.assert_array_equal(pj.decode(bytes(damaged), level=level),
                                      pj.decode(enc, level=level))


def test_truncation_reports_needed_length(chunk):
    _, enc = chunk
    header = pj.read_header(enc)
    with pytest.raises(pj.TruncatedError) as info:
        pj.decode(enc[:-1])
    assert info.value.needed == len(enc)
    with pytest.raises(pj.TruncatedError) as info:
        pj.read_header(enc[:10])
    assert info.value.needed == pj.FIXED_HEADER_BYTES
    with pytest.raises(pj.TruncatedError) as info:
        pj.read_header(enc[:header.header_length - 1])
    assert info.value.needed == header.header_length


def forge_shape(enc: bytes, shape) -> bytes:
    header = pj.read_header(enc)
    data = bytearray(enc)
    for i, n in enumerate(shape):
        struct.pack_into("<Q", data, 16 + 8 * i, n)
    return reseal(bytes(data), header.levels)


def test_header_claiming_huge_shape_is_refused_without_allocating(chunk):
    _, enc = chunk
    with pytest.raises(pj.DecodeError):  # beyond the format's element limit
        pj.decode(forge_shape(enc, (1 << 40, 1 << 40)))
    with pytest.raises(pj.TooLargeError):  # plausible, but over max_bytes
        pj.decode(forge_shape(enc, (1 << 20, 1 << 20)))
    with pytest.raises(pj.TooLargeError):
        pj.decode(enc, max_bytes=100)
    # a forged larger shape within limits: the entropy data runs out -> error
    with pytest.raises(pj.CorruptDataError):
        pj.decode(forge_shape(enc, (400, 360)))


def test_forged_fields_are_rejected(chunk):
    _, enc = chunk
    header = pj.read_header(enc)
    cases = {5: 42, 6: 7, 7: 1, 12: 0, 13: 3, 14: 11, 15: 0}  # dtype, wavelet, colour, ...
    for offset, value in cases.items():
        data = bytearray(enc)
        data[offset] = value
        with pytest.raises(ValueError):
            pj.decode(reseal(bytes(data), header.levels) if offset != 14 else bytes(data))


def test_a_float_dtype_with_a_lossless_wavelet_is_a_bad_header(real):
    """A resealed header naming float32 for a lossless stream raised
    TypeError (the encoder's "wrong dtype" status) from read_header, decode
    and the codec: from a stream it is a DecodeError like any bad header."""
    enc = pj.encode(np.ascontiguousarray(real("camera")[200:216, 200:216]))
    header = pj.read_header(enc)
    data = bytearray(enc)
    data[5] = 6   # dtype code: float32
    forged = reseal(bytes(data), header.levels)
    for read in (pj.read_header, pj.decode, pj.ProgressiveJ2K().decode):
        with pytest.raises(pj.DecodeError, match="invalid codestream header"):
            read(forged)


def test_forged_m97_levels_are_rejected(chunk):
    """Version 6's 9/7-M levels: only levels that exist, and only in the
    reversible modes."""
    arr, _ = chunk
    enc = pj.encode(arr, m97_levels=1)
    header = pj.read_header(enc)
    at = 16 + 8 * arr.ndim + len(header.axes) + 1    # after the layer count (FORMAT.md 1)
    assert struct.unpack_from("<H", enc, at)[0] == 1
    for mask in (1 << header.levels, 0xFFFF):
        data = bytearray(enc)
        struct.pack_into("<H", data, at, mask)
        with pytest.raises(pj.DecodeError, match="header"):
            pj.decode(reseal(bytes(data), header.levels))
    lossy = pj.encode(arr, reversible=False, step=4.0)
    data = bytearray(lossy)
    struct.pack_into("<H", data, at, 1)
    with pytest.raises(pj.DecodeError, match="header"):
        pj.decode(reseal(bytes(data), header.levels))
    for bad in (-1, 1 << header.levels, 2.0):
        with pytest.raises((ValueError, TypeError)):
            pj.encode(arr, m97_levels=bad)
    for bad in (True, np.bool_(True)):   # (a mask is a number; True was taken as 1)
        with pytest.raises(TypeError, match="m97_levels must be an integer"):
            pj.encode(arr, m97_levels=bad)
    with pytest.raises(ValueError, match="reversible"):
        pj.encode(arr, reversible=False, m97_levels=1)
    # the C core's own check, behind the Python one
    from progressive_j2k import _core
    raw = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    for wavelet, mask in ((0, -2), (0, 1 << header.levels), (1, 1)):
        with pytest.raises(ValueError, match="invalid parameter"):
            _core.Prepared(raw, 0, arr.shape, (0, 1), -1, header.levels, wavelet, 1.0, 0.0, mask)


def test_forged_value_gaps_are_rejected(real):
    """Version 7's value gaps (FORMAT.md 1 and 2): at most four, each at
    least one value long, in increasing order, and every value they open
    within the dtype (the largest is fine); none for 32-bit dtypes nor
    outside the lossless wavelets (whose headers have no such field).  The
    spec decoder refuses the same."""
    import spec_decoder
    crop = np.ascontiguousarray(real("ct693_int16")[50:79, 75:101])
    enc = pj.encode(crop, close_gaps=True)
    header = pj.read_header(enc)
    assert header.gaps == ((-2000, 2021),)
    at = 16 + 8 * crop.ndim + len(header.axes) + 1 + 2   # after the 9/7-M levels
    assert enc[at] == 1 and struct.unpack_from("<HH", enc, at + 1) == (-2000 + 32768, 2021)
    lowest = -32768

    def refused(data):
        with pytest.raises(pj.DecodeError, match="header|dtype"):
            pj.decode(data)
        with pytest.raises(ValueError):
            spec_decoder.decode(data)

    for after, length in ((-2000, 0),                  # empty
                          (32767 - 10, 20),            # opens past the dtype's largest value
                          (-2000, 65535)):
        data = bytearray(enc)
        struct.pack_into("<HH", data, at + 1, after - lowest, length)
        refused(reseal(bytes(data), header.levels))
    data = bytearray(enc)
    struct.pack_into("<HH", data, at + 1, 32767 - 11 - lowest, 10)   # opens to 32767: valid
    assert pj.read_header(reseal(bytes(data), header.levels)).gaps == ((32767 - 11, 10),)
    for offset, value in ((5, 5),     # int32: no gaps beyond 16 bits
                          (6, 1),     # lossy: no gap field there (the lengths disagree)
                          (6, 3)):    # tolerance: the same
        data = bytearray(enc)
        data[offset] = value
        refused(reseal(bytes(data), header.levels))
    for count in (5, 255):      # more than four (and a length that disagrees)
        data = bytearray(enc)
        data[at] = count
        refused(reseal(bytes(data), header.levels))
    # two gaps out of order: a stream with two, forged
    middle = np.median(crop[crop > -2000])
    two = np.where(crop > middle, crop + 500, crop).astype(np.int16)
    enc2 = pj.encode(two, close_gaps=True)
    gaps = pj.read_header(enc2).gaps
    assert len(gaps) == 2
    data = bytearray(enc2)
    struct.pack_into("<HHHH", data, at + 1, gaps[1][0] - lowest, gaps[1][1],
                     gaps[0][0] - lowest, gaps[0][1])
    refused(reseal(bytes(data), header.levels))
    # the same bytes still decode as they were written (reseal changes nothing else)
    np.testing.assert_array_equal(pj.decode(reseal(enc2, header.levels)), two)
    with pytest.raises(ValueError, match="close_gaps applies to lossless"):
        pj.encode(crop, tolerance=2, close_gaps=True)
    with pytest.raises(TypeError, match="close_gaps must be True"):
        pj.encode(crop, close_gaps="yes")


def test_forged_entropy_data_never_crashes(chunk):
    """Random payloads behind valid checksums: an error or some array, never a crash."""
    arr, enc = chunk
    header = pj.read_header(enc)
    rng = np.random.default_rng(1)
    errors = 0
    for trial in range(300):
        data = bytearray(enc)
        start = header.header_length + int(rng.integers(0, len(enc) - header.header_length))
        n = int(rng.integers(1, 16))
        data[start:start + n] = rng.integers(0, 256, n, dtype=np.uint8).tobytes()[: len(data) - start]
        try:
            out = pj.decode(reseal(bytes(data), header.levels))
            assert out.shape == arr.shape and out.dtype == arr.dtype
        except ValueError:
            errors += 1
    assert errors > 100  # the range decoder's own checks catch most forgeries


def test_out_of_wrong_size_or_type(chunk):
    arr, enc = chunk
    with pytest.raises(ValueError, match="bytes"):
        pj.decode(enc, out=np.empty(arr.size - 1, arr.dtype))
    with pytest.raises(ValueError):
        pj.decode(enc, out=np.empty(arr.shape, arr.dtype)[:, ::2])
    with pytest.raises(ValueError):
        pj.decode(enc, out=bytes(arr.nbytes))  # read-only
    # an F-ordered buffer of the right size and dtype, as an array or behind
    # a memoryview (which was filled in memory order: the values transposed)
    fortran = np.zeros(arr.shape, arr.dtype, order="F")
    for out in (fortran, memoryview(fortran)):
        with pytest.raises(ValueError, match="C-contiguous"):
            pj.decode(enc, out=out)
    assert not fortran.any()


def test_vast_views_of_a_few_values_fail_at_once():
    """A view of 2**62 elements (stride 0) was scanned for its range in the
    lossy and error-bounded modes (hours) before anything refused it; it now
    fails as numpy's copy of it does, at once, in every mode."""
    vast = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (2**31, 2**31), (0, 0))
    for options in ({}, {"mode": "lossy"}, {"tolerance": 1.0}, {"ratio": 10}, {"psnr": 40}):
        with pytest.raises(MemoryError):
            pj.encode(vast, **options)


def test_bad_levels_and_options(chunk):
    _, enc = chunk
    header = pj.read_header(enc)
    for level in (-1, header.levels + 1):
        with pytest.raises(ValueError, match="level"):
            pj.decode(enc, level=level)
    arr = np.zeros((8, 8), "u1")
    with pytest.raises(ValueError):
        pj.encode(arr, levels=11)
    with pytest.raises(ValueError):
        pj.encode(arr, axes=(0, 5))
    with pytest.raises(ValueError):
        pj.encode(arr, axes=(0, 0))
    with pytest.raises(ValueError):
        pj.encode(np.zeros((8, 8, 4), "u1"), colour_axis=2)
    with pytest.raises(ValueError):
        pj.encode(np.zeros((8, 8, 3), "u1"), axes=(1, 2), colour_axis=2)
    with pytest.raises(ValueError):
        pj.encode(np.zeros((1,) * 33, "u1"))
    with pytest.raises(TypeError):
        ProgressiveJ2K().encode(np.zeros(4, "c16"))


def test_empty_array_with_huge_axis_encodes_without_allocating():
    """Regression: buffers sized by the longest axis were allocated even for 0 elements."""
    enc = pj.encode(np.empty((0, 2**33), np.uint8))
    assert pj.decode(enc).shape == (0, 2**33)


def test_an_empty_shape_is_judged_by_its_other_axes_in_any_order():
    """The element limit applies to the product of a shape's non-zero axes
    wherever its zero axis lies (a fuzz campaign's): (2**47, 2**47, 0) was
    refused, (0, 2**47, 2**47) read, and its decode met numpy's "array is
    too big", no DecodeError.  An empty array's other axes may multiply to
    what numpy can shape (its bytes below 2**63), in any order."""
    enc = pj.encode(np.zeros((0, 4, 4), np.uint8), levels=0)
    for shape in ((2**47, 2**47, 0), (0, 2**47, 2**47), (2**47, 0, 2**47)):
        forged = forge_shape(enc, shape)
        for read in (pj.read_header, pj.decode, pj.ProgressiveJ2K().decode):
            with pytest.raises(pj.DecodeError, match="invalid codestream header"):
                read(forged)
    # (empty arrays numpy can shape keep reading, as streams written before)
    for shape in ((0, 2**24, 2**24), (0, 2**30, 2**30), (2**30, 2**30, 0)):
        assert pj.decode(forge_shape(enc, shape)).shape == shape
    assert pj.decode(pj.encode(np.zeros((0, 2**30, 2**30), np.uint8))).shape == (0, 2**30, 2**30)


def test_max_bytes_counts_working_memory():
    enc = pj.encode(np.zeros((1024, 1024), np.uint8))  # tiny stream, 1 MiB output
    needed = pj.read_header(enc).decode_memory()
    assert needed > 5 * 2**20   # the output, and int32 values besides
    assert pj.decode(enc, max_bytes=needed).shape == (1024, 1024)
    with pytest.raises(pj.TooLargeError, match="working"):
        pj.decode(enc, max_bytes=needed - 1)


def test_max_bytes_counts_the_longest_line():
    """The entropy decoder's context rows and the transform's line buffer
    grow with a chunk's longest line: a 1-D chunk of 2**24 uint8 samples
    peaked at 9 bytes a sample, over the 5 its elements were budgeted, so a
    small forged stream could ask for about twice what max_bytes allowed."""
    from progressive_j2k._api import LINE_BYTES
    n = 1 << 16
    enc = pj.encode(np.arange(n, dtype=np.uint16).astype(np.uint8))
    assert pj.read_header(enc).decode_memory() >= n * (1 + 4) + LINE_BYTES * n
    with pytest.raises(pj.TooLargeError, match="working"):
        pj.decode(enc, max_bytes=n * (1 + 4) + LINE_BYTES * n - 1)
    assert pj.decode(enc, max_bytes=pj.read_header(enc).decode_memory()).shape == (n,)


MEASURE_DECODE = """
import sys, numpy as np, progressive_j2k as pj
def status(field):
    return int([l for l in open("/proc/self/status") if l.startswith(field)][0].split()[1]) * 1024
enc = open(sys.argv[1], "rb").read()
h = pj.read_header(enc)
level, layer = int(sys.argv[2]), int(sys.argv[3])
layer = min(layer, h.layers - 1)
bound = h.decode_memory(level)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:   # the resident peak, from now
    f.write("5")
pj.decode(enc, level, layer=layer)
print(status("VmHWM") - before, bound)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="reads Linux's VmHWM")
def test_max_bytes_bounds_what_a_decode_allocates(real, tmp_path):
    """What max_bytes is checked against bounds the memory a decode takes,
    measured in a fresh process (its resident peak): the coarsest level of a layered lossless
    chunk through its first layer takes int32 values and a copy of its low
    band (the entropy decoder's prediction), which the bound once left out
    (a fuzz run's forged headers reached 10-23% over it)."""
    cases = [  # (array, encode options, (level, layer) pairs)
        (np.resize(real("camera"), (2, 1 << 23)), {"layers": 3, "levels": 1},
         ((1, 0), (1, 2), (0, 0))),
        # narrow: the transform's strips are a float64 per element
        (np.resize(real("mr2_uint16"), (1 << 18, 16)), {}, ((0, 0),)),
        (np.resize(real("camera"), (1 << 19, 16)), {"layers": 3}, ((0, 0), (0, 2))),
        (real("ect_uint16_2x512x512"), {}, ((0, 0), (2, 0))),   # planes
        (real("astronaut"), {"ratio": 20}, ((0, 0), (1, 0))),   # lossy colour
    ]
    for i, (data, options, reads) in enumerate(cases):
        path = tmp_path / f"{i}.pj2k"
        path.write_bytes(pj.encode(data, **options))
        for level, layer in reads:
            run = subprocess.run([sys.executable, "-c", MEASURE_DECODE, str(path), str(level),
                                  str(layer)], capture_output=True, text=True, check=True)
            taken, bound = map(int, run.stdout.split())
            assert taken <= bound, (i, level, layer, taken, bound)


def test_review_regressions_on_edge_inputs():
    with pytest.raises(ValueError, match="0-d"):
        pj.encode(np.array(3, np.uint8))  # used to come back as shape (1,)
    for text in (b"abc", "abc"):   # 0-d arrays of strings: their dtype is what is wrong
        with pytest.raises(TypeError, match="unsupported dtype"):
            pj.encode(text)
    arr = np.zeros((16, 16), "i4")
    arr[3, 3] = -2**31  # np.abs wraps this: the range check must not
    with pytest.raises(ValueError, match="2\\*\\*50"):
        pj.encode(arr, reversible=False, step=1e-12)
    with pytest.raises(TypeError):
        pj.decode(pj.encode(np.zeros((4, 4), "u1")), level=1.5)
    assert pj.decode(pj.encode(np.zeros((0, 4), "u2"), reversible=False, ratio=2)).shape == (0, 4)


def test_overflowing_knobs_are_named():
    """A default step whose span overflows float64, and a tolerance whose
    grid spacing (twice it) would, are refused for what they are, not as
    "step must be a positive number, got inf" (no step was given) or "below
    the precision" (it is far above it)."""
    extremes = np.array([[1e308, -1e308], [-1e308, 1e308]])
    for knob, said in (({"ratio": 10}, "where the target's search starts"),
                       ({"psnr": 40}, "where the target's search starts"),
                       ({"reversible": False}, "the default")):
        with pytest.raises(ValueError, match=f"{said}: 1/256 of the span.*scale such values"):
            pj.encode(extremes, **knob)
    for dtype in (np.float64, np.float32, np.int32):
        with pytest.raises(ValueError, match="tolerance must be at most"):
            pj.encode(np.ones((4, 4), dtype), tolerance=9e307)
        assert pj.decode(pj.encode(np.ones((4, 4), dtype), tolerance=8e307)).shape == (4, 4)


def test_out_of_another_dtype_is_refused(chunk):
    """out= of another dtype would hold the values reinterpreted: refused.
    Raw bytes (the numcodecs convention) and the chunk's own dtype serve."""
    arr, enc = chunk   # uint8, 1440 values
    for dtype in (np.uint16, np.float32, np.int64):
        out = np.zeros(arr.nbytes // np.dtype(dtype).itemsize, dtype)
        with pytest.raises(ValueError, match=f"out has dtype {np.dtype(dtype)}"):
            pj.decode(enc, out=out)
        assert not out.any()
    # numcodecs' convention for such buffers is a TypeError (its
    # check_err_decode_object_buffer); OutDtypeError is both
    with pytest.raises(TypeError, match="out has dtype object"):
        pj.decode(enc, out=np.empty(arr.size, object))
    with pytest.raises(TypeError, match="out has dtype >f4"):
        pj.decode(enc, out=np.empty(arr.size // 4, ">f4"))
    # typed buffers other than numpy arrays, by their format (ctypes' char
    # buffers are bytes)
    import array
    import ctypes
    for out in (memoryview(np.zeros(arr.nbytes // 4, np.float32)), array.array("f", bytes(arr.nbytes)),
                array.array("h", bytes(arr.nbytes))):
        with pytest.raises(ValueError, match="out has dtype (float32|int16)"):
            pj.decode(enc, out=out)
        assert not any(memoryview(out).cast("B"))
    for out in (np.empty(arr.shape, np.uint8), np.empty(arr.size, np.int8),
                np.empty(arr.size, "V1"), bytearray(arr.nbytes), memoryview(bytearray(arr.nbytes)),
                array.array("B", bytes(arr.nbytes)), ctypes.create_string_buffer(arr.nbytes)):
        pj.decode(enc, out=out)
        assert bytes(memoryview(out)) == arr.tobytes()


@pytest.mark.parametrize("config, error", [
    ({"axes": "01"}, TypeError), ({"axes": {"0": 1}}, TypeError), ({"axes": [1.7, True]}, TypeError),
    ({"axes": 5}, TypeError), ({"levels": 2.9}, TypeError), ({"levels": "6"}, TypeError),
    ({"levels": float("inf")}, TypeError), ({"levels": 10**9}, ValueError),
    ({"levels": -1}, ValueError), ({"step": True}, TypeError), ({"ratio": "20"}, TypeError),
    ({"layers": ["20", "10"]}, TypeError), ({"reversible": float("nan")}, TypeError),
    ({"reversible": []}, TypeError), ({"reversible": "false"}, TypeError),
    ({"layer_metric": "psnr", "layers": [1e300, -1e300]}, ValueError),
])
def test_configurations_from_json_are_checked(config, error):
    """Codec options as JSON metadata may hold them (edited by hand, or by
    someone hostile): wrong types and absurd values are refused, never
    converted into something else (``"01"`` into axes 0 and 1, 2.9 levels
    into 2) or let through to hang a reader (10**9 levels)."""
    import numcodecs
    with pytest.raises(error):
        numcodecs.get_codec({"id": "progressive_j2k", **config})


def test_tampered_array_metadata_is_refused_when_opened(tmp_path):
    zarr = pytest.importorskip("zarr")
    import json
    z = zarr.create(shape=(64, 64), chunks=(32, 32), dtype=np.uint8, zarr_format=2,
                    compressor=ProgressiveJ2K(), store=str(tmp_path / "a.zarr"))
    z[:] = 7
    meta = tmp_path / "a.zarr" / ".zarray"
    config = json.loads(meta.read_text())
    for levels in (10**9, -1):
        config["compressor"]["levels"] = levels
        meta.write_text(json.dumps(config))
        with pytest.raises(ValueError, match="levels must be in 0..10"):
            pj.open_multiscale(str(tmp_path / "a.zarr"))
    config["compressor"]["levels"] = 3   # the chunks have 5
    meta.write_text(json.dumps(config))
    # (refused by the header's length where it exceeds any 3-level chunk's,
    # else by its levels)
    with pytest.raises(pj.DecodeError, match="header is|5 levels over axes"):
        pj.open_multiscale(str(tmp_path / "a.zarr"))[1][:]


def test_layers_edited_into_array_metadata_name_the_chunk(tmp_path):
    """Quality layers edited into zarr.json (chunks of one layer): a read of
    layer 1 names the chunk that has none, as other mismatches do."""
    zarr = pytest.importorskip("zarr")
    import json
    from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3
    path = tmp_path / "a.zarr"
    z = zarr.create_array(str(path), shape=(64, 64), chunks=(32, 32), dtype=np.uint8,
                          serializer=ProgressiveJ2KV3(), compressors=None)
    z[:] = 7
    meta = json.loads((path / "zarr.json").read_text())
    meta["codecs"][0]["configuration"]["layers"] = 3
    (path / "zarr.json").write_text(json.dumps(meta))
    levels = pj.open_multiscale(zarr.open_array(str(path)), layer=1)
    with pytest.raises(pj.DecodeError, match=r"chunk \(\d, \d\) .*1 quality layer"):
        levels[1][:]


def test_decode_arguments_are_checked(chunk):
    _, enc = chunk
    for max_bytes in (None, "1000000", True):   # not numbers
        with pytest.raises(TypeError, match="max_bytes must be a number"):
            pj.decode(enc, max_bytes=max_bytes)
    for max_bytes in (float("nan"), -1):   # numbers out of range
        with pytest.raises(ValueError, match="max_bytes must be >= 0"):
            pj.decode(enc, max_bytes=max_bytes)
    with pytest.raises(TypeError, match="level must be an integer"):
        pj.decode(enc, level=True)
    with pytest.raises(TypeError, match="layer must be an integer"):
        pj.decode(enc, layer=1.0)


def test_nonpositive_psnr_targets_are_refused_by_the_encoder_only(chunk):
    """A PSNR target at or below 0 dB means nothing: encode refuses it, but a
    configuration stored with one (before it was checked) still opens."""
    arr, _ = chunk
    for options in ({"psnr": -3}, {"psnr": 40, "layer_metric": "psnr", "layers": [-5, 30]}):
        codec = ProgressiveJ2K(**options)
        with pytest.raises(ValueError, match="psnr targets must be positive"):
            codec.encode(arr)


def test_errors_survive_pickling_and_name_what_is_wrong():
    """Exceptions cross process pools and dask workers pickled:
    NonFiniteError keeps its counts (it could not be unpickled, which broke
    the pool).  A 0-d array is refused as such through zarr (it was "at
    least one axis must be transformed")."""
    import pickle
    error = pickle.loads(pickle.dumps(pj.NonFiniteError("2 NaN values", 2, 0)))
    assert (str(error), error.nan, error.inf) == ("2 NaN values", 2, 0)
    truncated = pickle.loads(pickle.dumps(pj.TruncatedError("short", 99)))
    assert truncated.needed == 99
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3
    with pytest.raises(ValueError, match="0-d arrays"):
        zarr.create_array(zarr.storage.MemoryStore(), shape=(), dtype="u1",
                          serializer=ProgressiveJ2KV3(), compressors=None)
