"""numcodecs codec: config, registration, zarr v2-format arrays."""
import json
import subprocess
import sys

import numcodecs
import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import ProgressiveJ2K

from helpers import check_config, check_roundtrip_lossless

CODECS = [
    ProgressiveJ2K(),
    ProgressiveJ2K(levels=3),
    ProgressiveJ2K(axes=(0, 1), colour_axis=2),
    ProgressiveJ2K(colour_axis=None),
    ProgressiveJ2K(reversible=False, step=2.5),
    ProgressiveJ2K(reversible=False, levels=2, axes=[-2, -1]),
    ProgressiveJ2K(reversible=False, step=4.0, rdo=True),
    ProgressiveJ2K(reversible=False, ratio=20, rdo=False),
    ProgressiveJ2K(close_gaps=True),
]


@pytest.mark.parametrize("codec", CODECS, ids=repr)
def test_config_roundtrip(codec):
    check_config(codec)
    assert codec.codec_id == "progressive_j2k"
    assert repr(codec).startswith("ProgressiveJ2K(")
    again = eval(repr(codec), {"ProgressiveJ2K": ProgressiveJ2K})   # repr names every change
    assert again.get_config() == codec.get_config()


def test_close_gaps_is_stored_only_when_set(real):
    """close_gaps=True is recorded (and round-trips through JSON); unset or
    False it is left out of the configuration, as arrays without it were
    written; a CT coded with it decodes exactly, smaller."""
    assert "close_gaps" not in ProgressiveJ2K().get_config()
    assert ProgressiveJ2K(close_gaps=False).get_config() == ProgressiveJ2K().get_config()
    codec = numcodecs.get_codec(json.loads(json.dumps(ProgressiveJ2K(close_gaps=True).get_config())))
    assert codec.get_config()["close_gaps"] is True
    ct = real("ct693_int16")
    check_roundtrip_lossless(codec, ct)
    assert len(codec.encode(ct)) < 0.9 * len(ProgressiveJ2K().encode(ct))


def test_codec_roundtrip_real_rgb(real):
    arr = real("chelsea")
    check_roundtrip_lossless(ProgressiveJ2K(colour_axis=-1), arr)


def test_colour_axis_auto_by_default_and_null_in_old_configs(real):
    """The default config says "auto" (RGB chunks get the colour transform);
    a config that says null, as every config did before "auto", still means
    no colour axis, so arrays written then keep their meaning."""
    arr = real("chelsea")
    codec = ProgressiveJ2K()
    assert codec.get_config()["colour_axis"] == "auto" and repr(codec) == "ProgressiveJ2K()"
    assert type(ProgressiveJ2K(colour_axis=np.str_("auto")).colour_axis) is str
    assert check_config(codec).colour_axis == "auto"
    assert pj.read_header(codec.encode(arr)).colour_axis == 2
    old = numcodecs.get_codec({**codec.get_config(), "colour_axis": None})
    header = pj.read_header(old.encode(arr))
    assert header.colour_axis is None and header.axes == (0, 1, 2)
    assert check_roundtrip_lossless(codec, arr) == pj.encode(arr, colour_axis=2)


def _fluorescence_channels_last(real):
    """Three channels of one field stored last, as fluorescence is: a
    bright one, a dim one (a span of about 400 in uint16) and one partly
    saturated, from slices of a real MR volume."""
    mni = real("mni152_t1_uint8_3d").astype(np.float64)
    bright = 500 + mni[88, 60:188, 30:158] * 180
    dim = 100 + mni[118, 40:168, 50:178] * 1.2
    saturated = np.minimum(200 + mni[48, 90:218, 40:168] * 400, 65535)
    return np.stack([bright, dim, saturated], -1).round().astype(np.uint16)


def test_codecs_keep_the_colour_transform_for_channels_that_share_detail(real, tmp_path):
    """colour_axis "auto" in the codecs: the shape rule names the last axis
    of an integer (H, W, 3) chunk, and the chunk's data decides whether its
    channels go through the colour transform (as encode() decides) or are
    coded as planes along the same axes: so unlike fluorescence channels
    keep their own errors, and every chunk keeps the array's levels."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K as V3
    cells = _fluorescence_channels_last(real)
    photo = np.ascontiguousarray(real("astronaut")[:128, :128])
    for knobs in ({}, {"ratio": 20}):
        for arr, colour in ((cells, None), (photo, 2)):
            same = pj.encode(arr, axes=(0, 1), colour_axis=colour, **knobs)
            assert pj.read_header(same).axes == (0, 1)
            assert ProgressiveJ2K(**knobs).encode(arr) == same            # zarr v2's codec
            z = zarr.create_array(zarr.storage.MemoryStore(), shape=arr.shape, chunks=arr.shape,
                                  dtype=arr.dtype, serializer=V3(**knobs), compressors=None)
            z[:] = arr
            assert z.store_path.store._store_dict["c/0/0/0"].to_bytes() == same
            assert [lv.shape for lv in pj.open_multiscale(z)][:3] == \
                [arr.shape, (64, 64, 3), (32, 32, 3)]
    # one array holding both kinds of chunk: its levels read each as decoded
    both = np.concatenate([cells, photo.astype(np.uint16) * 200], axis=1)
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=both.shape, chunks=(128, 128, 3),
                          dtype=both.dtype, serializer=V3(), compressors=None)
    z[:] = both
    chunks = [z.store_path.store._store_dict[f"c/0/{i}/0"].to_bytes() for i in (0, 1)]
    assert [pj.read_header(c).colour_axis for c in chunks] == [None, 2]
    np.testing.assert_array_equal(pj.open_multiscale(z)[1][...], np.concatenate(
        [pj.decode(c, level=1) for c in chunks], axis=1))
    # edge chunks are judged on their data, not zarr's padding
    photo = real("astronaut")
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=photo.shape, chunks=(100, 100, 3),
                          dtype=photo.dtype, serializer=V3(), compressors=None)
    z[:] = photo
    assert {pj.read_header(v.to_bytes()).colour_axis
            for k, v in z.store_path.store._store_dict.items() if k.startswith("c/")} == {2}
    # what the transform did to the dim channel at 20:1: the others' error
    def dim_rms(decoded):
        return np.sqrt(np.mean((decoded[..., 1].astype(np.float64) - cells[..., 1]) ** 2))
    apart = dim_rms(ProgressiveJ2K(ratio=20).decode(ProgressiveJ2K(ratio=20).encode(cells)))
    mixed = dim_rms(pj.decode(pj.encode(cells, colour_axis=2, ratio=20)))
    assert mixed > 3 * apart


def test_get_codec_in_fresh_interpreter():
    code = (
        "import sys, numcodecs, numpy as np\n"
        "codec = numcodecs.get_codec({'id': 'progressive_j2k', 'levels': 2})\n"
        "assert type(codec).__name__ == 'ProgressiveJ2K', codec\n"
        "assert codec.levels == 2\n"
        "a = np.arange(100, dtype='u2').reshape(10, 10)\n"
        "assert (codec.decode(codec.encode(a)) == a).all()\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_zarr_v2_format_roundtrip(real, tmp_path):
    zarr = pytest.importorskip("zarr")
    arr = real("mr2_uint16")
    z = zarr.create(shape=arr.shape, chunks=(256, 256), dtype=arr.dtype,
                    compressor=ProgressiveJ2K(), zarr_format=2, store=str(tmp_path / "a.zarr"))
    z[:] = arr
    again = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    np.testing.assert_array_equal(again[:], arr)
    np.testing.assert_array_equal(again[100:300, 700:1000], arr[100:300, 700:1000])
    meta = json.loads((tmp_path / "a.zarr" / ".zarray").read_text())
    assert meta["compressor"]["id"] == "progressive_j2k"
    # each stored chunk is a progressive codestream with its own levels
    chunk = (tmp_path / "a.zarr" / "1.2").read_bytes()
    np.testing.assert_array_equal(pj.decode(chunk), arr[256:512, 512:768])
    assert pj.decode(chunk, level=2).shape == (64, 64)


def test_zarr_v2_big_endian_array_is_refused_not_swapped(real):
    """zarr v2 reads a codec's decoded bytes as the array's dtype, and
    decoded chunks are little-endian: a big-endian array would read back
    byte-swapped, so the codec refuses it and names the dtype to use."""
    zarr = pytest.importorskip("zarr")
    arr = real("mr2_uint16")[:64, :64].astype(">u2")
    with pytest.raises(TypeError, match="'<u2'"):
        ProgressiveJ2K().encode(arr)
    z = zarr.create(shape=arr.shape, chunks=arr.shape, dtype=">u2", compressor=ProgressiveJ2K(),
                    zarr_format=2, store=zarr.storage.MemoryStore())
    with pytest.raises(TypeError, match="big-endian"):
        z[:] = arr
    little = ProgressiveJ2K().encode(arr.astype("<u2"))      # the values, stored little-endian
    assert bytes(ProgressiveJ2K().decode(little)) == arr.astype("<u2").tobytes()


def test_zarr_v2_chunks_too_large_to_read_back_are_refused_at_write():
    """The v2 codec decodes within decode()'s default max_bytes (it is given
    no chunk shape to trust a header against): a chunk it could not read
    back is refused when written, not after (a 16384^2 uint8 lossy chunk
    needs 4.6 GB to decode)."""
    big = np.zeros((16384, 16384), np.uint8)   # untouched pages: nothing is allocated
    with pytest.raises(ValueError, match="smaller chunks, or the zarr v3 codec"):
        ProgressiveJ2K(step=4).encode(big)
    with pytest.raises(ValueError, match="max_bytes"):
        ProgressiveJ2K(tolerance=1).encode(big)
    small = ProgressiveJ2K(step=4)
    assert small.decode(small.encode(big[:64, :64])).size == 64 * 64


def test_zarr_v2_edge_chunks_and_rgb(real, tmp_path):
    zarr = pytest.importorskip("zarr")
    arr = real("coffee")  # 400 x 600 x 3: edge chunks are padded by zarr
    z = zarr.create(shape=arr.shape, chunks=(128, 256, 3), dtype=arr.dtype,
                    compressor=ProgressiveJ2K(colour_axis=2), zarr_format=2,
                    store=str(tmp_path / "rgb.zarr"))
    z[:] = arr
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "rgb.zarr"))[:], arr)


def test_fortran_order_keeps_the_memory_layout(real, tmp_path):
    zarr = pytest.importorskip("zarr")
    arr = real("immunohistochemistry")
    fortran = np.asfortranarray(arr)
    codec = ProgressiveJ2K(colour_axis=2)
    dec = codec.decode(codec.encode(fortran))
    assert dec.shape == arr.shape[::-1]
    assert dec.tobytes() == fortran.tobytes(order="A")  # the same bytes in memory
    np.testing.assert_array_equal(dec.T, arr)
    # zarr-python 2 decodes such a chunk into an F-ordered out= (memory in its order)
    out = np.empty_like(fortran)
    assert codec.decode(codec.encode(fortran), out=out) is out
    np.testing.assert_array_equal(out, arr)
    # a layout error names the user's axis, not the transpose's
    with pytest.raises(ValueError, match="colour_axis 0 must have length 3, has 512"):
        ProgressiveJ2K(colour_axis=0).encode(fortran)
    for name, options in [("coins", {}), ("immunohistochemistry", {"colour_axis": 2})]:
        src = real(name)
        z = zarr.create(shape=src.shape, chunks=(100, 128) + src.shape[2:], dtype=src.dtype,
                        compressor=ProgressiveJ2K(**options), zarr_format=2, order="F",
                        store=str(tmp_path / f"{name}.zarr"))
        z[:] = src
        np.testing.assert_array_equal(zarr.open_array(str(tmp_path / f"{name}.zarr"))[:], src)
        levels = pj.open_multiscale(z)  # the level view undoes the transpose too
        np.testing.assert_array_equal(levels[0][:], src)
        assert levels[2].shape[:2] == (-(-src.shape[0] // 4), -(-src.shape[1] // 4))
        # level 2 is the C-order array's, up to rounding (the transform runs
        # over the axes in the other order)
        c_order = zarr.create(shape=src.shape, chunks=(100, 128) + src.shape[2:],
                              dtype=src.dtype, compressor=ProgressiveJ2K(**options),
                              zarr_format=2, store=str(tmp_path / f"{name}_c.zarr"))
        c_order[:] = src
        difference = levels[2][:].astype(int) - pj.open_multiscale(c_order)[2][:]
        assert np.abs(difference).mean() < 1 and np.abs(difference).max() <= 8   # not garbage


def test_unsupported_dtypes_raise_type_error():
    codec = ProgressiveJ2K()
    for dtype in ["?", "c8", "f2", "O", "u8", "i8"]:
        with pytest.raises(TypeError):
            codec.encode(np.zeros((4, 4), dtype=dtype))


def test_every_spelling_of_the_options_agrees():
    """The options are spelled out in normalise_options, both codecs'
    constructors, the zarr v3 codec's fields and encode(): each names
    OPTION_NAMES (and the older `reversible`) with the same defaults, so that
    an option added in one place and forgotten in another fails here."""
    import inspect
    zarr3 = pytest.importorskip("progressive_j2k.zarr3")
    from progressive_j2k import _options

    def defaults(fn, skip=()):
        return {name: p.default for name, p in inspect.signature(fn).parameters.items()
                if name not in ("self", *skip) and p.kind is not p.VAR_KEYWORD}

    reference = defaults(_options.normalise_options)
    assert set(reference) == set(_options.OPTION_NAMES) | {"reversible"}
    assert defaults(ProgressiveJ2K.__init__) == reference
    assert defaults(zarr3.ProgressiveJ2K.__init__) == reference
    # (encode()'s own: m97_levels, and the fill value the zarr v3 codec
    # passes per chunk from the array's metadata)
    assert defaults(pj.encode, skip=("data", "m97_levels", "fill_value")) == reference
    fields = zarr3.ProgressiveJ2K.__annotations__
    assert set(fields) - {"is_fixed_size"} == set(_options.OPTION_NAMES)
    # the fields' defaults are what the constructor stores for its defaults
    made = zarr3.ProgressiveJ2K()
    assert {n: getattr(zarr3.ProgressiveJ2K, n) for n in _options.OPTION_NAMES} == \
        {n: getattr(made, n) for n in _options.OPTION_NAMES}
