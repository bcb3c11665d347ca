"""zarr v3: the codec as serializer, sharded inner codec, registration."""
import json
import subprocess
import sys

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
from zarr.storage import MemoryStore  # noqa: E402

import progressive_j2k as pj  # noqa: E402
from progressive_j2k.zarr3 import ProgressiveJ2K  # noqa: E402


def test_v3_roundtrip_and_metadata_describes_codec(real, tmp_path):
    arr = real("immunohistochemistry")
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=arr.shape, chunks=(200, 256, 3),
                          dtype=arr.dtype, serializer=ProgressiveJ2K(colour_axis=-1),
                          compressors=None)
    z[:] = arr
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"))[:], arr)
    meta = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())
    (codec,) = meta["codecs"]
    assert codec == {"name": "progressive_j2k", "configuration": {
        "levels": None, "mode": "lossless", "axes": [0, 1], "colour_axis": 2, "step": None,
        "tolerance": None, "ratio": None, "bits_per_sample": None, "psnr": None, "layers": None,
        "layer_metric": "ratio", "rdo": None}}


@pytest.mark.parametrize("options", [{"step": 4.0}, {"mode": "lossy"}, {}, {"tolerance": 2.0}])
def test_arrays_written_before_mode_still_open(real, tmp_path, options):
    """Arrays written before the mode option store reversible= (and no
    bits_per_sample): they read, and open as multiscale levels, as before."""
    arr = real("camera")[:256, :192]
    path = tmp_path / "old.zarr"
    z = zarr.create_array(str(path), shape=arr.shape, chunks=(128, 96), dtype=arr.dtype,
                          serializer=ProgressiveJ2K(**options), compressors=None)
    z[:] = arr
    expected, expected_level = z[:], pj.open_multiscale(z)[1][:]
    meta = json.loads((path / "zarr.json").read_text())
    configuration = meta["codecs"][0]["configuration"]
    mode = configuration.pop("mode")
    del configuration["bits_per_sample"]
    configuration["reversible"] = mode != "lossy"
    (path / "zarr.json").write_text(json.dumps(meta))
    old = zarr.open_array(str(path))
    assert old.metadata.codecs[0].mode == mode
    np.testing.assert_array_equal(old[:], expected)
    if mode == "lossless":
        np.testing.assert_array_equal(expected, arr)
    np.testing.assert_array_equal(pj.open_multiscale(old)[1][:], expected_level)


def test_colour_axis_auto_is_resolved_per_chunk_shape(real):
    """"auto" stays in zarr.json and is resolved from each chunk's shape:
    RGB chunks get the colour transform, chunks that split the channels
    code them as planes; an explicit None is resolved when the array is
    created, as before."""
    arr = real("chelsea")
    for chunks, colour in [((128, 160, 3), 2), ((128, 160, 1), None)]:
        store = MemoryStore()
        z = zarr.create_array(store, shape=arr.shape, chunks=chunks, dtype=arr.dtype,
                              serializer=ProgressiveJ2K(), compressors=None)
        z[:] = arr
        np.testing.assert_array_equal(z[:], arr)
        configuration = z.metadata.codecs[0].to_dict()["configuration"]
        assert configuration["colour_axis"] == "auto" and configuration["axes"] is None
        prototype = zarr.core.buffer.default_buffer_prototype()
        header = pj.read_header(zarr.core.sync.sync(store.get("c/0/0/0", prototype)).to_bytes())
        assert header.colour_axis == colour
        assert header.axes == ((0, 1) if colour else (0, 1, 2))
    z = zarr.create_array(MemoryStore(), shape=arr.shape, chunks=(128, 160, 3),
                          dtype=arr.dtype, serializer=ProgressiveJ2K(colour_axis=None),
                          compressors=None)
    configuration = z.metadata.codecs[0].to_dict()["configuration"]
    assert configuration["colour_axis"] is None and configuration["axes"] == [0, 1, 2]


def test_levels_follow_the_chunk_shape_not_the_array_shape(real, tmp_path):
    arr = real("camera")
    z = zarr.create_array(str(tmp_path / "l.zarr"), shape=arr.shape, chunks=(32, 48),
                          dtype=arr.dtype, serializer=ProgressiveJ2K(), compressors=None)
    z[:] = arr
    chunk = (tmp_path / "l.zarr" / "c" / "0" / "0").read_bytes()
    assert pj.read_header(chunk).levels == 6  # ceil(log2 48); the array's 512 would also say 6
    z = pj.to_zarr(arr, str(tmp_path / "t.zarr"), chunks=(32, 32))
    meta = json.loads((tmp_path / "t.zarr" / "zarr.json").read_text())
    assert meta["codecs"][0]["configuration"]["levels"] == 5  # resolved and recorded
    assert len(pj.open_multiscale(z)) == 6


def test_v3_sharded_roundtrip(real, tmp_path):
    arr = real("ct693_int16")
    z = zarr.create_array(str(tmp_path / "s.zarr"), shape=arr.shape, chunks=(64, 64),
                          shards=(256, 256), dtype=arr.dtype, serializer=ProgressiveJ2K(),
                          compressors=None)
    z[:] = arr
    again = zarr.open_array(str(tmp_path / "s.zarr"))
    np.testing.assert_array_equal(again[:], arr)
    np.testing.assert_array_equal(again[10:100, 300:420], arr[10:100, 300:420])


def test_v3_lossy_float_volume(real):
    arr = real("tlrc_float32_3d")
    z = zarr.create_array(MemoryStore(), shape=arr.shape, chunks=(24, 27, 22), dtype=arr.dtype,
                          serializer=ProgressiveJ2K(reversible=False), compressors=None)
    z[:] = arr
    span = float(arr.max() - arr.min())
    assert np.abs(z[:] - arr).max() < 0.05 * span


def test_open_in_fresh_interpreter_without_import(real, tmp_path):
    arr = real("camera")[:100, :120]
    z = zarr.create_array(str(tmp_path / "f.zarr"), shape=arr.shape, chunks=(64, 64),
                          dtype=arr.dtype, serializer=ProgressiveJ2K(), compressors=None)
    z[:] = arr
    np.save(tmp_path / "expected.npy", arr)
    code = (
        "import sys, zarr, numpy as np\n"
        f"z = zarr.open_array({str(tmp_path / 'f.zarr')!r}, mode='r')\n"
        f"assert (z[:] == np.load({str(tmp_path / 'expected.npy')!r})).all()\n"
        "print(type(z.metadata.codecs[0]).__module__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "progressive_j2k.zarr3"


def test_codec_dict_roundtrip():
    codec = ProgressiveJ2K(levels=3, reversible=False, axes=(0, 2), step=0.5)
    again = ProgressiveJ2K.from_dict(json.loads(json.dumps(codec.to_dict())))
    assert again == codec
    assert ProgressiveJ2K.from_dict({"name": "progressive_j2k"}) == ProgressiveJ2K()
    gaps = ProgressiveJ2K(close_gaps=True)   # stored only when set
    assert ProgressiveJ2K.from_dict(json.loads(json.dumps(gaps.to_dict()))) == gaps
    assert "close_gaps" not in ProgressiveJ2K(close_gaps=False).to_dict()["configuration"]
    # mode's older spelling is read; an option this release does not know is named as such
    assert ProgressiveJ2K.from_dict({"name": "progressive_j2k", "configuration": {
        "reversible": False}}) == ProgressiveJ2K(mode="lossy")
    with pytest.raises(ValueError, match=r"configuration holds options this release does not "
                                         r"know: 'future', 'unknown' \(known: 'levels', 'mode'"):
        ProgressiveJ2K.from_dict({"name": "progressive_j2k", "configuration": {
            "levels": 3, "unknown": 1, "future": 2}})


def test_invalid_configurations_fail_at_creation():
    with pytest.raises(TypeError):
        zarr.create_array(MemoryStore(), shape=(10, 10), chunks=(5, 5), dtype="f4",
                          serializer=ProgressiveJ2K(), compressors=None)
    with pytest.raises(ValueError):
        zarr.create_array(MemoryStore(), shape=(10, 10, 4), chunks=(5, 5, 4), dtype="u1",
                          serializer=ProgressiveJ2K(colour_axis=2), compressors=None)
    with pytest.raises(TypeError):
        zarr.create_array(MemoryStore(), shape=(10,), chunks=(5,), dtype="c8",
                          serializer=ProgressiveJ2K(), compressors=None)
    # inside shards too (zarr checks inner codecs only as it evolves them:
    # these were refused at the first write, after zarr.json was written)
    for dtype, options, error in (("i8", {}, TypeError), ("bool", {}, TypeError),
                                  ("f4", {}, TypeError), ("u1", {"axes": (5,)}, ValueError)):
        with pytest.raises(error):
            zarr.create_array(MemoryStore(), shape=(64, 64), chunks=(16, 16), shards=(32, 32),
                              dtype=dtype, serializer=ProgressiveJ2K(**options),
                              compressors=None)


def test_chunk_bytes_are_progressive(real):
    arr = real("moon")
    store = MemoryStore()
    z = zarr.create_array(store, shape=arr.shape, chunks=(256, 256), dtype=arr.dtype,
                          serializer=ProgressiveJ2K(), compressors=None)
    z[:] = arr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync
    raw = sync(store.get("c/1/0", prototype=default_buffer_prototype())).to_bytes()
    np.testing.assert_array_equal(pj.decode(raw), arr[256:, :256])


def test_chunks_read_whatever_max_bytes_allows(real, monkeypatch, tmp_path):
    """Chunks of an array are decoded with the working memory their shape
    needs (the array's owner chose it): decode()'s default guard, meant for
    untrusted headers, once made large lossy chunks writable but not
    readable (a 16384 x 16384 uint8 chunk needs 4.3 GiB).  Here the guard is
    lowered to 1 MiB instead; a header that disagrees with the array's chunk
    shape is still refused."""
    from progressive_j2k import _api
    image = real("camera")
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=image.shape, chunks=(512, 512),
                          dtype=image.dtype, compressors=None,
                          serializer=ProgressiveJ2K(reversible=False, ratio=10))
    z[:] = image
    chunk = (tmp_path / "a.zarr" / "c" / "0" / "0").read_bytes()
    monkeypatch.setitem(_api.decode.__kwdefaults__, "max_bytes", 1 << 20)
    with pytest.raises(pj.TooLargeError):
        pj.decode(chunk)
    expected = pj.decode(chunk, max_bytes=1 << 30)
    np.testing.assert_array_equal(z[:], expected)
    np.testing.assert_array_equal(pj.open_multiscale(z)[0][:], expected)
    np.testing.assert_array_equal(pj.open_multiscale(z)[1][:], pj.decode(chunk, 1, max_bytes=1 << 30))
    with pytest.raises(pj.DecodeError, match=r"the array's chunks are \(512, 256\) .*: open it again"):
        _api.decode_chunk(chunk, (512, 256), np.uint8)


def test_chunks_that_do_not_match_the_array_are_refused(real, tmp_path):
    """A chunk of another dtype or shape (copied from another array, or
    metadata edited since) raises DecodeError through zarr and level reads,
    instead of reading as wrong values."""
    image = real("camera")
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=(256, 256), chunks=(128, 128),
                          dtype=np.uint8, serializer=ProgressiveJ2K(), compressors=None)
    z[:] = image[:256, :256]
    chunk = tmp_path / "a.zarr" / "c" / "0" / "1"
    for foreign in (pj.encode(np.full((128, 128), -1234.5, np.float32), step=0.5),
                    pj.encode(np.full((128, 128), 40000, np.uint16)),
                    pj.encode(image[:128, :127])):
        chunk.write_bytes(foreign)
        with pytest.raises(pj.DecodeError, match="array"):
            z[:]
        for level in (0, 2):
            with pytest.raises(pj.DecodeError, match="array"):
                pj.open_multiscale(str(tmp_path / "a.zarr"))[level][:]
    chunk.write_bytes(pj.encode(image[:128, 128:256]))
    meta = tmp_path / "a.zarr" / "zarr.json"
    meta.write_text(meta.read_text().replace('"uint8"', '"int8"'))   # the dtype edited
    with pytest.raises(pj.DecodeError, match="chunk holds uint8 values, the array is int8"):
        zarr.open_array(str(tmp_path / "a.zarr"))[:]


def test_nan_fill_value_pads_edge_chunks_and_marks_nodata(real):
    """Lossy and tolerance modes refuse NaN; zarr pads edge chunks with the
    array's fill_value, NaN being xarray's default for floats.  The zarr v3
    codec takes trailing slices of the fill value for padding: coded from
    the data, decoded as NaN again (version 9).  NaN elsewhere in a chunk
    (a part never written, before the data) is nodata: filled in from the
    data, decoded as NaN again (version 10)."""
    field = np.ascontiguousarray(real("tlrc_float32_3d")[0])           # 54 x 43: one edge chunk
    for options in ({"tolerance": 1e-5}, {"reversible": False, "step": 1e-5}):
        z = zarr.create_array(MemoryStore(), shape=field.shape, chunks=(64, 64), dtype=field.dtype,
                              serializer=ProgressiveJ2K(**options), compressors=None,
                              fill_value=np.nan)
        z[:] = field
        error = np.abs(z[:] - field)
        assert (error.max() if "tolerance" in options else np.sqrt(np.mean(error**2))) <= 1e-5
        level = pj.open_multiscale(z)[1][:]    # no NaN blended into the last rows
        assert np.isfinite(level).all() and level.max() <= 1.05 * field.max()
        z = zarr.create_array(MemoryStore(), shape=field.shape, chunks=(64, 64), dtype=field.dtype,
                              serializer=ProgressiveJ2K(**options), compressors=None,
                              fill_value=np.nan)
        z[10:, :] = field[10:]    # the chunk's first rows: never written, NaN
        assert pj.read_header(z.store_path.store._store_dict["c/0/0"].to_bytes()).version == 10
        assert np.isnan(z[:10]).all()
        error = np.abs(z[10:] - field[10:])
        assert (error.max() if "tolerance" in options else np.sqrt(np.mean(error**2))) <= 1e-5
        level = pj.open_multiscale(z)[1][:]
        assert np.isnan(level[:5]).all() and np.isfinite(level[5:]).all()
        z = zarr.create_array(MemoryStore(), shape=field.shape, chunks=(64, 64), dtype=field.dtype,
                              serializer=ProgressiveJ2K(**options), compressors=None, fill_value=0)
        z[:] = field
        error = np.abs(z[:] - field)
        assert (error.max() if "tolerance" in options else np.sqrt(np.mean(error**2))) <= 1e-5


def test_filters_that_reshape_or_retype_chunks_round_trip(real):
    """numcodecs filters through zarr's wrappers hand the serializer their
    output as it comes (Delta flattened, BitRound as integers), and take
    back bytes on decode: such chunks are coded in the array's chunk shape
    and dtype, so they read back (they were written, then refused by every
    read); a filter that changed the chunk's size is refused as it writes."""
    from zarr.codecs.numcodecs import BitRound, Delta
    from progressive_j2k.zarr3 import _as_chunk
    image = real("camera")[:256, :256].astype(np.int16)
    z = zarr.create_array(MemoryStore(), shape=image.shape, chunks=(128, 128), dtype="i2",
                          filters=[Delta(dtype="i2")], serializer=ProgressiveJ2K(),
                          compressors=None)
    z[:] = image
    np.testing.assert_array_equal(z[:], image)
    field = real("tlrc_float32_3d")
    numcodecs = pytest.importorskip("numcodecs")
    rounded = numcodecs.BitRound(keepbits=10)
    z = zarr.create_array(MemoryStore(), shape=field.shape, chunks=(24, 27, 22), dtype="f4",
                          filters=[BitRound(keepbits=10)],
                          serializer=ProgressiveJ2K(tolerance=1e-3), compressors=None)
    z[:] = field
    expected = rounded.decode(rounded.encode(field)).reshape(field.shape)
    assert np.abs(z[:] - expected).max() <= 1e-3

    class Spec:   # (the two fields _as_chunk reads of zarr's ArraySpec)
        shape, dtype = (4, 4), np.dtype("i2")
    with pytest.raises(ValueError, match="changed the chunk's size"):
        _as_chunk(np.zeros(16, np.int32), Spec)
    with pytest.raises(ValueError, match="changed the chunk's size"):
        _as_chunk(np.zeros(15, np.int16), Spec)
    np.testing.assert_array_equal(_as_chunk(np.arange(16, dtype=np.uint16), Spec),
                                  np.arange(16, dtype=np.int16).reshape(4, 4))
