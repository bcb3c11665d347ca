"""Multiscale reads: every level of one stored array, fetching only prefixes."""
import json
import math
import os
import warnings
from itertools import product

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
from zarr.storage import LocalStore, MemoryStore  # noqa: E402

import progressive_j2k as pj  # noqa: E402
from progressive_j2k._reader import SPECULATIVE_MARGIN, _Reader, _stored_chunks  # noqa: E402
from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3  # noqa: E402

from http_server import RangeServer  # noqa: E402
from stores import CountingStore, Slow, Unlisted  # noqa: E402


class Prefixes(list):
    """The prefix length of each chunk of a level."""

    @property
    def exact(self) -> int:
        return sum(self)

    @property
    def speculative(self) -> int:
        """The most a first read of the level fetches: a chunk's first request
        reads its header and a guess of at most SPECULATIVE_MARGIN times the
        longest prefix (_reader._Reader._guess), or its exact prefix."""
        guess = SPECULATIVE_MARGIN * max(self, default=0)
        return sum(max(p, guess) for p in self)


def chunk_grid(shape, chunks):
    return list(product(*(range(math.ceil(n / c)) for n, c in zip(shape, chunks))))


def reference_level(arr, chunks, options, level, layer=None, fill_value=0):
    """Level `level` assembled chunk by chunk from independently encoded chunks
    (zarr pads edge chunks with the fill value 0, which the zarr v3 codec
    gives the encoder: `fill_value`, None for the numcodecs codec), plus the
    chunks' prefix lengths (a Prefixes)."""
    axes = set(pj.read_header(pj.encode(np.zeros(chunks, arr.dtype), **options)).axes)
    options = {"axes": tuple(sorted(axes)), **options}   # the codecs' fixed rule, not the data's
    blocks, prefixes = {}, Prefixes()
    for coords in chunk_grid(arr.shape, chunks):
        region = tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, chunks))
        block = np.zeros(chunks, arr.dtype)
        part = arr[region]
        block[tuple(slice(0, n) for n in part.shape)] = part
        enc = pj.encode(block, fill_value=fill_value, **options)
        prefixes.append(pj.read_header(enc).prefix_length(level, layer))
        dec = pj.decode(enc, level=level, layer=layer)
        valid = tuple((-(-n // 2**level) if a in axes else n) for a, n in enumerate(part.shape))
        blocks[coords] = dec[tuple(slice(0, v) for v in valid)]
    grid = [math.ceil(n / c) for n, c in zip(arr.shape, chunks)]
    def assemble(prefix):
        axis = len(prefix)
        if axis == arr.ndim:
            return blocks[tuple(prefix)]
        return np.concatenate([assemble(prefix + [i]) for i in range(grid[axis])], axis=axis)
    return assemble([]), prefixes


def write(kind, store, arr, chunks, options):
    if kind == "v2":
        z = zarr.create(shape=arr.shape, chunks=chunks, dtype=arr.dtype, store=store,
                        compressor=pj.ProgressiveJ2K(**options), zarr_format=2, fill_value=0)
    elif kind == "v3":
        z = zarr.create_array(store, shape=arr.shape, chunks=chunks, dtype=arr.dtype,
                              serializer=ProgressiveJ2KV3(**options), compressors=None, fill_value=0)
    else:  # sharded: 2 x 2 progressive chunks per shard
        z = zarr.create_array(store, shape=arr.shape, chunks=chunks,
                              shards=tuple(2 * c if i < 2 else c for i, c in enumerate(chunks)),
                              dtype=arr.dtype, serializer=ProgressiveJ2KV3(**options),
                              compressors=None, fill_value=0)
    z[...] = arr
    return z


CASES = [
    ("camera", (200, 160), {}),                              # edge chunks, odd level sizes
    ("tlrc_float32_3d", (24, 27, 22), {"tolerance": 1e-6}),  # 3-D, error-bounded floats
    ("coins", (128, 128), {"reversible": False}),            # lossy: per-band steps in header
    ("astronaut", (256, 192, 3), {"colour_axis": 2}),       # RGB
    ("chelsea", (128, 200, 3), {}),                          # RGB by default ("auto")
    ("mr2_uint16", (256, 256), {"levels": 4}),
]


@pytest.mark.parametrize("kind", ["v2", "v3", "sharded"])
@pytest.mark.parametrize("name,chunks,options", CASES, ids=[c[0] for c in CASES])
def test_levels_match_reference_and_fetch_only_prefixes(real, tmp_path, kind, name, chunks,
                                                        options):
    arr = real(name)
    write(kind, LocalStore(tmp_path / "a.zarr"), arr, chunks, options)
    nchunks = len(chunk_grid(arr.shape, chunks))
    for level in range(0, 5):
        store = CountingStore(LocalStore(tmp_path / "a.zarr", read_only=True))
        levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
        expected, prefixes = reference_level(arr, chunks, options, level,
                                             fill_value=None if kind == "v2" else 0)
        got = levels[level][...]
        assert got.shape == levels[level].shape == expected.shape
        np.testing.assert_array_equal(got, expected)
        reads = store.chunk_reads()
        fetched = sum(r[2] for r in reads)
        index_bytes = 0
        if kind == "sharded":
            shard_reads = [r for r in reads if r[1] is not None and type(r[1]).__name__ ==
                           "SuffixByteRequest"]
            index_bytes = sum(r[2] for r in shard_reads)
            shards = [2 * c if i < 2 else c for i, c in enumerate(chunks)]
            assert len(shard_reads) == len(chunk_grid(arr.shape, shards))  # each index once
        per_chunk = len(reads) - (len(shard_reads) if kind == "sharded" else 0)
        if level == 0:
            assert fetched - index_bytes <= 1.02 * prefixes.exact
            assert per_chunk == nchunks  # each chunk fetched once, whole
        else:   # header and a guess of the prefix, then the rest if longer
            assert fetched - index_bytes <= 1.02 * prefixes.speculative
            assert per_chunk <= 2 * nchunks


def test_quality_layers_read_shorter_prefixes(real, tmp_path):
    arr, chunks, options = real("camera"), (200, 160), {"layers": 3}
    write("v3", LocalStore(tmp_path / "l.zarr"), arr, chunks, options)
    fetched = {}
    for layer in (0, 1, None):
        store = CountingStore(LocalStore(tmp_path / "l.zarr", read_only=True))
        levels = pj.open_multiscale(zarr.open_array(store, mode="r"), layer=layer)
        for level in (0, 2):
            expected, prefixes = reference_level(arr, chunks, options, level, layer)
            np.testing.assert_array_equal(levels[level][...], expected)
        fetched[layer] = sum(r[2] for r in store.chunk_reads())
    assert fetched[0] < fetched[1] < fetched[None]
    np.testing.assert_array_equal(pj.open_multiscale(str(tmp_path / "l.zarr"))[0][...], arr)
    with pytest.raises(ValueError, match="layer"):
        pj.open_multiscale(str(tmp_path / "l.zarr"), layer=3)


def test_region_reads_touch_only_needed_chunks(real, tmp_path):
    arr = real("mr2_uint16")
    write("v3", LocalStore(tmp_path / "a.zarr"), arr, (128, 128), {})
    store = CountingStore(LocalStore(tmp_path / "a.zarr", read_only=True))
    levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
    level = levels[2]  # 256 x 256, chunks 32 x 32
    region = level[40:70, 100:120]
    np.testing.assert_array_equal(region, level[:][40:70, 100:120])
    keys = {r[0] for r in store.chunk_reads()}
    assert len(keys) == 64  # the full read above touched all; check the region alone:
    store.reads.clear()
    levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
    levels[2][40:70, 100:120]
    assert {r[0] for r in store.chunk_reads()} == {"c/1/3", "c/2/3"}
    # a cached header makes the next level a single request per chunk
    store.reads.clear()
    levels[1][80:140, 200:240]
    assert len(store.chunk_reads()) == 2


def test_first_read_of_a_level_takes_one_request_per_chunk(real, tmp_path):
    """A fresh reader reads its first chunk of a level exactly (header, then
    the prefix) and every other chunk's header and prefix in one request,
    guessed from the longest prefix so far, over-reading at most the margin;
    chunks absent from the store (the first one read included) are no
    obstacle."""
    arr = np.tile(real("camera")[:128, :128], (4, 4))   # 16 identical chunks
    write("v3", LocalStore(tmp_path / "a.zarr"), arr, (128, 128), {})
    for level in (1, 3):
        store = CountingStore(LocalStore(tmp_path / "a.zarr", read_only=True))
        levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
        expected, prefixes = reference_level(arr, (128, 128), {}, level)
        np.testing.assert_array_equal(levels[level][:], expected)
        reads = store.chunk_reads()
        assert len(reads) == 16 + 1
        assert prefixes.exact <= sum(r[2] for r in reads) <= prefixes[0] * (1 + 15 * SPECULATIVE_MARGIN)
    sparse = zarr.create_array(LocalStore(tmp_path / "s.zarr"), shape=(512, 512), chunks=(128, 128),
                               dtype=np.uint8, serializer=ProgressiveJ2KV3(), compressors=None,
                               fill_value=7)
    sparse[256:384, 128:256] = arr[:128, :128]
    sparse[0:128, 384:512] = arr[:128, :128]
    levels = pj.open_multiscale(zarr.open_array(str(tmp_path / "s.zarr"), mode="r"))
    got = levels[2][:]
    level2 = pj.decode(pj.encode(arr[:128, :128]), level=2)
    np.testing.assert_array_equal(got[64:96, 32:64], level2)
    np.testing.assert_array_equal(got[0:32, 96:128], level2)
    assert (got == 7).sum() == got.size - 2 * level2.size


def test_basic_indexing_semantics(real, tmp_path):
    arr = real("coins")
    z = write("v3", MemoryStore(), arr, (64, 96), {})
    level = pj.open_multiscale(z)[1]
    full = level[:]
    for key in [(5,), (-1,), (slice(3, 40, 3),), (Ellipsis, 7), (slice(None), slice(10, 2)),
                (10, slice(None, None, 5)), (Ellipsis,), (None,), (slice(None, None, -1),),
                (slice(40, 3, -7), None, Ellipsis, -2), (None, 3, None, slice(-1, None, -1)),
                (slice(None, None, -1000),), (slice(5, 50, -1),), (Ellipsis, None),
                (np.array(4),), (np.array(-2, np.int8), slice(3, 9))]:   # 0-d: integers
        assert level[key].shape == full[key].shape
        np.testing.assert_array_equal(level[key], full[key])
    with pytest.raises(IndexError):
        level[level.shape[0]]
    with pytest.raises(IndexError):
        level[1, 2, 3]
    with pytest.raises(IndexError):
        level[..., 1, ...]
    with pytest.raises(IndexError, match="got list"):
        level[[1, 2]]
    with pytest.raises(IndexError, match="got ndarray$"):   # not the whole mask in the message
        level[full > 100]
    np.testing.assert_array_equal(np.asarray(level), full)
    assert level.ndim == 2 and level.dtype == arr.dtype and len(level) == level.shape[0]


def test_strided_reads_visit_only_the_chunks_they_select():
    """A step longer than a chunk visits the selected indices' chunks, not
    every chunk of the span: 10**10 one-row chunks, ten rows read."""
    n = 10**10
    z = zarr.create_array(MemoryStore(), shape=(n, 4), chunks=(1, 4), dtype=np.uint8,
                          serializer=ProgressiveJ2KV3(), compressors=None, fill_value=5)
    z[n // 2] = [1, 2, 3, 4]
    level = pj.open_multiscale(z)[0]
    rows = level[0:n:n // 10, 1:3]
    expected = np.full((10, 2), 5, np.uint8)
    expected[5] = [2, 3]
    np.testing.assert_array_equal(rows, expected)


def test_v2_fill_value_none_and_missing_chunks():
    z = zarr.create(shape=(64, 64), chunks=(32, 32), dtype="u1", zarr_format=2,
                    compressor=pj.ProgressiveJ2K(), fill_value=None, store=MemoryStore())
    z[:32, :32] = 9
    low = pj.open_multiscale(z)[1][:]
    np.testing.assert_array_equal(low[:16, :16], 9)
    np.testing.assert_array_equal(low[16:], 0)  # zarr reads a missing chunk as 0 too
    np.testing.assert_array_equal(z[32:, :], 0)


def test_stretched_levels_warn_at_open(real):
    """An array made with zarr directly, whose chunks are not multiples of
    2**levels, has levels whose shapes do not halve (camera in 200^2 chunks:
    33, 18 and 10 at levels 4-6): open_multiscale says so, as to_zarr does
    when it picks levels; aligned chunks open quietly."""
    zarr = pytest.importorskip("zarr")
    import warnings
    from progressive_j2k.zarr3 import ProgressiveJ2K as V3
    image = real("camera")
    shapes = {}
    for chunks in ((200, 200), (256, 128)):
        z = zarr.create_array(zarr.storage.MemoryStore(), shape=image.shape, chunks=chunks,
                              dtype="u1", serializer=V3(), compressors=None)
        z[:] = image
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            shapes[chunks] = [level.shape for level in pj.open_multiscale(z)]
        messages = [str(w.message) for w in caught]
        if chunks == (200, 200):
            assert len(messages) == 1 and "levels 4 to 6 of this array are stretched" in messages[0]
        else:
            assert messages == []
    assert shapes[(200, 200)][4:] == [(33, 33), (18, 18), (10, 10)]
    assert shapes[(256, 128)][4:] == [(32, 32), (16, 16), (8, 8)]


def test_memory_store_and_missing_chunks(tmp_path):
    z = zarr.create_array(MemoryStore(), shape=(300, 300), chunks=(100, 100), dtype="u2",
                          serializer=ProgressiveJ2KV3(), compressors=None, fill_value=7)
    z[:100, :100] = np.arange(10000, dtype="u2").reshape(100, 100)
    levels = pj.open_multiscale(z)
    low = levels[2][:]
    assert low.shape == (75, 75)
    assert (low[25:, :] == 7).all() and (low[:, 25:] == 7).all()


def test_http_store_fetches_only_prefixes(real, tmp_path):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    from zarr.storage import FsspecStore
    arr = real("mr2_uint16")
    write("v3", LocalStore(tmp_path / "a.zarr"), arr, (256, 256), {})
    with RangeServer(tmp_path) as server:
        for level in (0, 2, 4):
            server.log.clear()
            store = FsspecStore.from_url(f"{server.url}/a.zarr", read_only=True)
            levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
            np.testing.assert_array_equal(levels[level][:],
                                          reference_level(arr, (256, 256), {}, level)[0])
            chunk_bytes = sum(n for path, _, n in server.log if "/c/" in path)
            prefixes = reference_level(arr, (256, 256), {}, level)[1]
            assert chunk_bytes <= 1.02 * (prefixes.speculative if level else prefixes.exact)
            if level > 0:
                assert chunk_bytes < arr.nbytes / 4


def test_obstore_local_and_http(real, tmp_path):
    obstore = pytest.importorskip("obstore")
    from zarr.storage import ObjectStore
    arr = real("camera")
    write("v3", LocalStore(tmp_path / "a.zarr"), arr, (128, 128), {})
    store = ObjectStore(obstore.store.LocalStore(str(tmp_path / "a.zarr")), read_only=True)
    levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
    np.testing.assert_array_equal(levels[0][:], arr)
    np.testing.assert_array_equal(levels[3][:], reference_level(arr, (128, 128), {}, 3)[0])
    with RangeServer(tmp_path) as server:
        http = obstore.store.HTTPStore.from_url(f"{server.url}/a.zarr",
                                                client_options={"allow_http": True})
        levels = pj.open_multiscale(zarr.open_array(ObjectStore(http, read_only=True), mode="r"))
        expected, prefixes = reference_level(arr, (128, 128), {}, 2)
        server.log.clear()
        np.testing.assert_array_equal(levels[2][:], expected)
        assert sum(n for path, _, n in server.log if "/c/" in path) <= 1.02 * prefixes.speculative


def test_memory_store_byte_counts(real):
    arr = real("moon")
    inner = MemoryStore()
    write("v3", inner, arr, (128, 128), {})
    for level in (0, 1, 3):
        store = CountingStore(inner)
        levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
        expected, prefixes = reference_level(arr, (128, 128), {}, level)
        np.testing.assert_array_equal(levels[level][:], expected)
        assert sum(r[2] for r in store.chunk_reads()) <= 1.02 * (
            prefixes.speculative if level else prefixes.exact)


def test_dask_view_matches(real, tmp_path):
    """to_dask's blocks are whole chunks of the level covering a stored
    chunk's extent (2**k of them per transformed axis: a block per chunk of
    a coarse level was a task per few samples), or the chunks given."""
    da = pytest.importorskip("dask.array")
    arr = real("camera")[:, :500]
    z = write("v3", MemoryStore(), arr, (128, 128), {})
    for level in pj.open_multiscale(z)[:4]:
        d = level.to_dask()
        k = level.level
        assert d.shape == level.shape
        assert d.chunks[0][0] == min(level.shape[0], level.chunks[0] * 2**k) and \
            d.chunks[1][0] == min(level.shape[1], level.chunks[1] * 2**k)
        np.testing.assert_array_equal(d.compute(), level[:])
        assert level.to_dask(chunks=level.chunks).chunks[1][0] == level.chunks[1]
        np.testing.assert_array_equal(da.from_array(level, chunks=level.chunks)[5:50].compute(),
                                      level[5:50])


def test_xarray_view_of_each_level(real, tmp_path):
    """Level.to_xarray: a lazy DataArray with the array's dimension names,
    its name and attributes, and coordinates taken from the coordinate arrays
    xarray wrote beside it at the level-0 positions of each level's samples
    (per chunk where chunks are not multiples of 2**k); opened through the
    group or at the array's own path; without coordinate arrays, dim_i names
    and the positions along transformed axes."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("dask.array")
    ct = real("ct693_int16")[:300, :250]
    lat, lon = np.linspace(60, 30, ct.shape[0]), np.linspace(-10, 15, ct.shape[1])
    ds = xr.Dataset({"ct": (("lat", "lon"), ct, {"units": "HU"})},
                    coords={"lat": ("lat", lat, {"units": "degrees_north"}), "lon": lon})
    ds.to_zarr(tmp_path / "x.zarr", zarr_format=3, consolidated=False, encoding={"ct": {
        "serializer": ProgressiveJ2KV3(), "compressors": None, "chunks": (100, 128)}})
    with pytest.warns(UserWarning, match="stretched"):   # (100-row chunks)
        by_path = pj.open_multiscale(str(tmp_path / "x.zarr" / "ct"))
        by_group = pj.open_multiscale(zarr.open_group(tmp_path / "x.zarr", mode="r")["ct"])
    for levels in (by_path, by_group):
        for k, level in enumerate(levels[:4]):
            view = level.to_xarray()
            assert view.name == "ct" and view.dims == ("lat", "lon") and view.shape == level.shape
            assert view.attrs == {"units": "HU"} and view["lat"].attrs == {"units": "degrees_north"}
            rows = np.concatenate([np.arange(s, min(s + 100, 300), 2**k) for s in (0, 100, 200)])
            np.testing.assert_array_equal(view["lat"].values, lat[rows])
            np.testing.assert_array_equal(view["lon"].values, lon[::2**k])
            np.testing.assert_array_equal(view.values, level[:])
    np.testing.assert_array_equal(by_path[0].to_xarray().sel(lat=lat[100]).values, ct[100])
    plain = pj.open_multiscale(write("v3", MemoryStore(), real("camera"), (128, 128), {}))
    view = plain[2].to_xarray()
    assert view.dims == ("dim_0", "dim_1") and view.name is None
    np.testing.assert_array_equal(view["dim_1"].values, np.arange(0, 512, 4))
    np.testing.assert_array_equal(view.values, plain[2][:])
    physical = {"scale": [0.5, 0.25], "translation": [10, 20],
                "axes": [{"name": "y", "unit": "micrometer"}, {"name": "x", "unit": "micrometer"}]}
    ome = pj.to_zarr(real("camera"), MemoryStore(), chunks=(128, 128),
                     attributes={"ome_level0": physical})
    view = pj.open_multiscale(ome)[1].to_xarray()   # no coordinate arrays: the physical axes
    assert view.dims == ("y", "x")
    np.testing.assert_allclose(view["y"].values, 10 + 0.5 * np.arange(0, 512, 2))
    np.testing.assert_allclose(view["x"].values, 20 + 0.25 * np.arange(0, 512, 2))
    # its attributes describe level 1's grid: a copy of it records that
    assert view.attrs["ome_level0"]["scale"] == [1.0, 0.5]
    copy = pj.open_multiscale(pj.to_zarr(view, MemoryStore(), chunks=(128, 128)))
    assert copy[0].scale == (1.0, 0.5) and copy[0].translation == (10, 20)
    # opened at its own fsspec URL: the group above; a plain directory above
    # is not a group, and its arrays are not coordinates; partial names
    pytest.importorskip("fsspec")
    ds.to_zarr("memory://x34.zarr", zarr_format=3, consolidated=False, encoding={"ct": {
        "serializer": ProgressiveJ2KV3(), "compressors": None, "chunks": (100, 128)}})
    with pytest.warns(UserWarning, match="stretched"):
        view = pj.open_multiscale("memory://x34.zarr/ct")[1].to_xarray()
    assert view.name == "ct" and view.dims == ("lat", "lon")
    np.testing.assert_array_equal(view["lon"].values, lon[::2])
    (tmp_path / "plain").mkdir()
    pj.to_zarr(real("camera"), str(tmp_path / "plain" / "img.zarr"), chunks=(128, 128))
    zarr.create_array(str(tmp_path / "plain" / "dim_0"), data=np.arange(512) * 7)
    view = pj.open_multiscale(str(tmp_path / "plain" / "img.zarr"))[1].to_xarray()
    assert view.name is None
    np.testing.assert_array_equal(view["dim_0"].values, np.arange(0, 512, 2))
    named = zarr.create_array(MemoryStore(), shape=(64, 64), dtype="u1", compressors=None,
                              serializer=ProgressiveJ2KV3(), dimension_names=("y", None))
    assert pj.open_multiscale(named)[1].to_xarray().dims == ("y", "dim_1")
    np.testing.assert_array_equal(pj.open_multiscale(named)[1].positions(-1), np.arange(0, 64, 2))
    for axis in (2, -3):
        with pytest.raises(IndexError, match=f"axis {axis} is out of range for a 2-d level"):
            pj.open_multiscale(named)[1].positions(axis)



def test_xarray_view_keeps_the_cf_fill_value_of_packed_integers(real, tmp_path):
    """CF packing (int16 with scale_factor, add_offset and _FillValue), as
    xarray writes a float field losslessly: each level's view keeps the
    _FillValue xarray masks with (zarr v3: an attribute; v2: the array's
    fill value), so decode_cf of a level reads its masked cells as NaN, as
    xarray.open_zarr does (they read -47.68 K).  Coarser levels blend the
    fill value into the data at the mask's edge: nodata= keeps it apart."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("dask.array")
    field = real("tlrc_float32_3d")
    field = (field / field.max() * 30 + 270).astype(np.float32)
    field[:, :5, :7] = np.nan
    for fmt, codec in ((3, {"serializer": ProgressiveJ2KV3(), "compressors": None}),
                       (2, {"compressors": [pj.ProgressiveJ2K()]})):
        path = str(tmp_path / f"v{fmt}.zarr")
        xr.Dataset({"t": (("z", "y", "x"), field)}).to_zarr(
            path, mode="w", zarr_format=fmt, consolidated=False, encoding={"t": {
                **codec, "chunks": (16, 32, 32), "dtype": "int16", "scale_factor": 0.01,
                "add_offset": 280.0, "_FillValue": -32768}})
        expected = xr.open_zarr(path, consolidated=False)["t"].values
        assert np.isnan(expected).sum() == np.isnan(field).sum()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # (stretched levels)
            levels = pj.open_multiscale(f"{path}/t")
        decoded = xr.decode_cf(levels[0].to_xarray().to_dataset())["t"].values
        np.testing.assert_allclose(decoded, expected, equal_nan=True)
        assert levels[1].to_xarray().attrs["_FillValue"] == -32768, fmt


def test_scale_keeps_the_grid_of_axes_chunked_one_sample_at_a_time(real):
    """A stack of frames in chunks of one frame (the usual (1, Y, X) layout)
    is transformed along all three axes by the fixed rule, but its chunks
    of one sample are never divided: every level keeps all the frames, on
    their own grid, so only the image axes' scale grows (it grew along t
    too, and a copy of level 3 recorded frames 40 s apart for 5)."""
    frames = real("ect_uint16_2x512x512")
    physical = {"scale": [5.0, 0.5, 0.5], "axes": [
        {"name": "t", "unit": "second"}, {"name": "y", "unit": "millimeter"},
        {"name": "x", "unit": "millimeter"}]}
    z = zarr.create_array(MemoryStore(), shape=frames.shape, chunks=(1, 256, 256),
                          dtype=frames.dtype, serializer=ProgressiveJ2KV3(), compressors=None,
                          attributes={"ome_level0": physical})
    z[:] = frames
    levels = pj.open_multiscale(z)
    assert levels[0]._reader.layout.options["axes"] == (0, 1, 2)   # (1 sample along axis 0)
    for k in (1, 3):
        assert levels[k].shape == (2, 512 >> k, 512 >> k)
        assert levels[k].scale == (5.0, 0.5 * 2**k, 0.5 * 2**k)
        np.testing.assert_array_equal(levels[k].positions(0), [0, 1])
        pytest.importorskip("xarray")
        view = levels[k].to_xarray()
        np.testing.assert_allclose(view["t"].values, [0.0, 5.0])
        assert view.attrs["ome_level0"]["scale"] == [5.0, 0.5 * 2**k, 0.5 * 2**k]
    # chunks shorter than 2**k but longer than one sample: one sample at
    # each chunk's start, a chunk apart (positions), where scale said 2**k
    head = real("mni152_t1_uint8_3d")[:64, :64, :64]
    z = zarr.create_array(MemoryStore(), shape=head.shape, chunks=(8, 64, 64), dtype=head.dtype,
                          serializer=ProgressiveJ2KV3(levels=5), compressors=None)
    z[:] = head
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # (levels 4 and 5 are stretched)
        levels = pj.open_multiscale(z)
    for k, spacing in ((2, 4), (3, 8), (4, 8), (5, 8)):
        assert levels[k].scale == (spacing, 2**k, 2**k)
        assert set(np.diff(levels[k].positions(0))) == {spacing}

def test_levels_pickle_after_reads(real, tmp_path):
    """dask distributed pickles a level to send it to workers; after a read
    the level's header cache holds tasks of the event loop that filled it,
    which cannot be pickled (a review's distributed to_dask failed so): a
    copy starts with empty caches and reads the same."""
    import pickle
    arr = real("camera")
    z = write("v3", LocalStore(str(tmp_path / "p.zarr")), arr, (128, 128), {"layers": 2})
    for levels in (pj.open_multiscale(z), pj.open_multiscale(z, layer=0)):
        first = levels[2][:]
        copy = pickle.loads(pickle.dumps(levels[2]))
        np.testing.assert_array_equal(copy[:], first)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(levels[1]))[10:90], levels[1][10:90])


def test_not_a_progressive_array():
    z = zarr.create_array(MemoryStore(), shape=(10, 10), chunks=(5, 5), dtype="u1")
    with pytest.raises(ValueError, match="progressive_j2k"):
        pj.open_multiscale(z)


@pytest.mark.parametrize("sharded", [False, True])
def test_arrays_compressed_again_read_whole_chunks(real, tmp_path, sharded):
    """zarr.create_array adds zstd after the serializer unless given
    compressors=None: such an array's levels (after a WholeChunkWarning, which
    an array without them does not raise) are those of the same array without
    it, each read fetching every stored chunk it needs once, whole;
    level_nbytes counts those.  Chains (gzip then crc32c) are undone in
    reverse; blosc too."""
    arr = real("astronaut")
    common = dict(shape=arr.shape, chunks=(200, 160, 3), dtype=arr.dtype,
                  shards=(400, 320, 3) if sharded else None, fill_value=0)
    plain = zarr.create_array(LocalStore(tmp_path / "plain.zarr"),
                              serializer=ProgressiveJ2KV3(), compressors=None, **common)
    again = {"zstd": None, "chain": [zarr.codecs.GzipCodec(), zarr.codecs.Crc32cCodec()],
             "blosc": [zarr.codecs.BloscCodec()]}
    arrays = [zarr.create_array(LocalStore(tmp_path / f"{name}.zarr"), serializer=ProgressiveJ2KV3(),
                                **({} if codecs is None else {"compressors": codecs}), **common)
              for name, codecs in again.items()]   # (None: zarr's default, zstd)
    for z in (plain, *arrays):
        z[:] = arr
    with warnings.catch_warnings():
        warnings.simplefilter("error", pj.WholeChunkWarning)
        expected = pj.open_multiscale(plain)
    for z in arrays:
        store = CountingStore(LocalStore(z.store_path.store.root, read_only=True))
        with pytest.warns(pj.WholeChunkWarning, match="compressors=None"):
            levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
        for k in (0, 2, len(levels) - 1):
            np.testing.assert_array_equal(levels[k][:], expected[k][:])
        np.testing.assert_array_equal(levels[1][30:170, 50:90], expected[1][30:170, 50:90])
        root = tmp_path / z.store_path.store.root.name
        stored = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and f.name != "zarr.json")
        if sharded:   # less each shard's index: 16 bytes per chunk and a CRC
            stored -= sum(16 * 2 * 2 + 4 for f in root.rglob("*") if f.is_file() and f.name != "zarr.json")
        store.reads.clear()   # sizes from the store or the shards' indices, no chunk read
        assert pj.level_nbytes(zarr.open_array(store, mode="r")) == [stored] * len(levels)
        objects = sum(1 for f in root.rglob("*") if f.is_file() and f.name != "zarr.json")
        assert all(r[2] == 16 * 2 * 2 + 4 for r in store.chunk_reads()) and (
            len(store.chunk_reads()) == (objects if sharded else 0))
        store.reads.clear()
        levels[3][:]
        assert sum(r[2] for r in store.chunk_reads()) == stored   # each chunk once, whole


@pytest.mark.parametrize("sharded", [False, True])
def test_checksums_after_the_codec_keep_prefix_reads(real, tmp_path, capsys, sharded):
    """crc32c after progressive_j2k appends 4 bytes and leaves every prefix
    in place: such an array is read by prefix (no WholeChunkWarning), its
    levels those of the same array without it, a reduced level fetching a
    small part of the stored bytes, level_nbytes the same as without it (the
    checksums are not needed); a whole chunk read alone has its checksum
    checked; damage within the codestream is caught by the codestream's own
    checksums."""
    arr = real("camera")
    common = dict(shape=arr.shape, chunks=(128, 128), dtype=arr.dtype,
                  shards=(256, 256) if sharded else None, fill_value=0)
    plain = zarr.create_array(LocalStore(tmp_path / "plain.zarr"),
                              serializer=ProgressiveJ2KV3(), compressors=None, **common)
    checked = zarr.create_array(LocalStore(tmp_path / "crc.zarr"), serializer=ProgressiveJ2KV3(),
                                compressors=[zarr.codecs.Crc32cCodec()], **common)
    plain[:] = arr
    checked[:] = arr
    expected = pj.open_multiscale(plain)
    store = CountingStore(LocalStore(tmp_path / "crc.zarr", read_only=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", pj.WholeChunkWarning)
        levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
    assert pj.level_nbytes(checked) == pj.level_nbytes(plain)
    stored = sum(f.stat().st_size for f in (tmp_path / "crc.zarr").rglob("*")
                 if f.is_file() and f.name != "zarr.json")
    for k in (len(levels) - 1, 2, 0):
        store.reads.clear()
        np.testing.assert_array_equal(levels[k][:], expected[k][:])
        fetched = sum(r[2] for r in store.chunk_reads())
        assert fetched < stored / 4 if k == 2 else fetched <= stored
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "crc.zarr", mode="r")[:], arr)
    if sharded:   # damage in chunk (1, 0): the error names it and its shard
        shard = tmp_path / "crc.zarr" / "c" / "0" / "0"
        data = bytearray(shard.read_bytes())
        index = np.frombuffer(bytes(data[-(16 * 4 + 4):-4]), "<u8").reshape(2, 2, 2)
        offset = int(index[1, 0, 0])
        header = pj.read_header(bytes(data[offset:offset + int(index[1, 0, 1])]))
        data[offset + header.prefix_length(1) - 10] ^= 1
        shard.write_bytes(bytes(data))
        with pytest.raises(pj.ChecksumError, match=r"^chunk \(1, 0\) \(in shard 'c/0/0'\): "):
            pj.open_multiscale(str(tmp_path / "crc.zarr"))[1][64:128, :64]
        return
    from progressive_j2k.cli import main   # (info: the bytes stored, checksums and all)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "crc.zarr")]) == 0
    assert f"stored {stored} bytes of chunk data;" in capsys.readouterr().out
    chunk = tmp_path / "crc.zarr" / "c" / "1" / "0"
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 1   # the checksum itself: the whole chunk is refused, a prefix reads
    chunk.write_bytes(bytes(data))
    levels = pj.open_multiscale(str(tmp_path / "crc.zarr"))
    with pytest.raises(pj.DecodeError, match="crc32c checksum does not match"):
        levels[0][128:256, :128]
    np.testing.assert_array_equal(levels[2][32:64, :32], expected[2][32:64, :32])
    data[-1] ^= 1
    header = pj.read_header(bytes(data))
    data[header.prefix_length(1) - 10] ^= 1   # within level 1's prefix, past level 2's
    assert header.prefix_length(2) < header.prefix_length(1) - 10
    chunk.write_bytes(bytes(data))
    levels = pj.open_multiscale(str(tmp_path / "crc.zarr"))
    with pytest.raises(pj.DecodeError, match="crc32c checksum does not match"):
        levels[0][128:256, :128]
    with pytest.raises(pj.ChecksumError, match=r"^chunk \(1, 0\) \(key 'c/1/0'\): "):   # which one
        levels[1][64:128, :64]
    np.testing.assert_array_equal(levels[3][16:32, :16], expected[3][16:32, :16])
    chunk.write_bytes(bytes(data[:10]))   # a header cut short: the sizes' reads name it too
    with pytest.raises(pj.TruncatedError, match=r"^chunk \(1, 0\) \(key 'c/1/0'\): "):
        pj.level_nbytes(str(tmp_path / "crc.zarr"))


@pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr version 3:UserWarning",
                            "ignore:Combining a `sharding_indexed` codec:UserWarning")
def test_compressors_that_cannot_be_undone_are_refused_and_damage_is_an_error(real, tmp_path):
    """A codec after progressive_j2k that the reader cannot undo, or
    compressors over whole shards, are refused when opened; a damaged
    compressed chunk is a DecodeError when read: its compression, a chunk
    that claims to decompress to more than the array's chunks can take
    (refused before it is decompressed), or the codestream within (the
    pieces' checksums, where a level reads them)."""
    numcodecs = pytest.importorskip("numcodecs")
    numcodecs_zarr3 = pytest.importorskip("zarr.codecs.numcodecs")   # (zarr >= 3.1.3)
    z = zarr.create_array(MemoryStore(), shape=(64, 64), chunks=(32, 32), dtype="u1",
                          serializer=ProgressiveJ2KV3(), compressors=[numcodecs_zarr3.BZ2()])
    with pytest.raises(ValueError, match="cannot undo: numcodecs.bz2"):
        pj.open_multiscale(z)
    outer = zarr.create_array(MemoryStore(), shape=(64, 64), chunks=(64, 64), dtype="u1",
                              serializer=zarr.codecs.ShardingCodec(
                                  chunk_shape=(32, 32), codecs=[ProgressiveJ2KV3()]),
                              compressors=[zarr.codecs.ZstdCodec()])
    with pytest.raises(ValueError, match="whole shards"):
        pj.open_multiscale(outer)
    # codecs before ours, or shards inside shards: said so, not "not encoded with it"
    transposed = zarr.create_array(MemoryStore(), shape=(64, 64), chunks=(32, 32), dtype="u1",
                                   filters=[zarr.codecs.TransposeCodec(order=(1, 0))],
                                   serializer=ProgressiveJ2KV3(), compressors=None)
    with pytest.raises(ValueError, match=r"codecs before progressive_j2k \(transpose\)"):
        pj.open_multiscale(transposed)
    nested = zarr.create_array(MemoryStore(), shape=(64, 64), chunks=(64, 64), dtype="u1",
                               serializer=zarr.codecs.ShardingCodec(
                                   chunk_shape=(32, 32), codecs=[zarr.codecs.ShardingCodec(
                                       chunk_shape=(16, 16), codecs=[ProgressiveJ2KV3()])]),
                               compressors=None)
    with pytest.raises(ValueError, match="shards inside shards"):
        pj.open_multiscale(nested)
    camera = real("camera")
    layered = zarr.create_array(MemoryStore(), shape=camera.shape, chunks=(256, 256),
                                dtype=camera.dtype, serializer=ProgressiveJ2KV3(layers=[40, 10]))
    layered[:] = camera
    with pytest.raises(ValueError, match="layer must be in 0..2"):
        pj.level_nbytes(layered, layer=3)
    with pytest.raises(TypeError, match="layer must be an integer"):
        pj.open_multiscale(layered, layer=True)
    z = zarr.create_array(LocalStore(tmp_path / "a.zarr"), shape=camera.shape, chunks=(256, 256),
                          dtype=camera.dtype, serializer=ProgressiveJ2KV3())
    z[:] = camera
    chunk = tmp_path / "a.zarr" / "c" / "1" / "0"   # damage within the codestream
    stream = numcodecs.Zstd().decode(chunk.read_bytes())
    damaged = bytearray(stream)
    damaged[len(damaged) - 100:len(damaged) - 96] = bytes(4)   # (in the finest resolution)
    chunk.write_bytes(numcodecs.Zstd().encode(bytes(damaged)))
    magic = tmp_path / "a.zarr" / "c" / "0" / "1"              # the zstd frame's magic number
    magic.write_bytes(bytes(4) + magic.read_bytes()[4:])
    bomb = tmp_path / "a.zarr" / "c" / "1" / "1"   # a valid stream and 4 MiB of zeros
    bomb.write_bytes(numcodecs.Zstd().encode(bytes(stream) + bytes(2**22)))
    with pytest.warns(pj.WholeChunkWarning):
        levels = pj.open_multiscale(str(tmp_path / "a.zarr"))
    np.testing.assert_array_equal(levels[0][:256, :256], camera[:256, :256])
    np.testing.assert_array_equal(levels[2][64:, :64], expected_level(camera, 2)[64:, :64])
    with pytest.raises(pj.ChecksumError):
        levels[0][256:, :256]
    with pytest.raises(pj.DecodeError, match="zstd compression after progressive_j2k cannot"):
        levels[2][:64, 64:]
    with pytest.raises(pj.DecodeError, match=r"states 4\d+ decompressed bytes, where this "
                                             r"array's chunks take at most"):
        levels[2][64:, 64:]


def test_hostile_lengths_are_refused_before_anything_is_fetched(real, tmp_path):
    """Lengths that no chunk of the array can have are DecodeErrors, not
    requests for them (a store would allocate what they say): a header whose
    last piece ends at 2**40 (its CRC mended), a shard index entry of 2**62
    bytes, and a zstd chunk that is two frames (the first states a small
    size; a decoder goes on into the second, which could hold gigabytes).
    An index entry a byte short of its stream fails level_nbytes, as it
    fails a read."""
    numcodecs = pytest.importorskip("numcodecs")
    from progressive_j2k import _core
    camera = real("camera")
    for shards in (None, (256, 256)):
        z = zarr.create_array(LocalStore(tmp_path / f"a{shards is None}.zarr"), shape=camera.shape,
                              chunks=(128, 128), shards=shards, dtype=camera.dtype,
                              serializer=ProgressiveJ2KV3(), compressors=None)
        z[:] = camera
        path = tmp_path / f"a{shards is None}.zarr" / "c" / "0" / "0"
        data = bytearray(path.read_bytes())
        if shards is None:   # the last piece's end (8 bytes), then its CRC, then the header's
            n = pj.read_header(bytes(data)).header_length
            data[n - 16:n - 8] = (2**40).to_bytes(8, "little")
            data[n - 4:n] = _core.crc32c(bytes(data[:n - 4])).to_bytes(4, "little")
        else:   # the index at the end: chunk (0, 0)'s length
            index = np.frombuffer(bytes(data[-(16 * 4 + 4):-4]), "<u8").copy()
            index[1] = 2**62
            data[-(16 * 4 + 4):] = index.tobytes() + _core.crc32c(index.tobytes()).to_bytes(
                4, "little")
        path.write_bytes(bytes(data))
        levels = pj.open_multiscale(z)
        for k in (0, 3):
            with pytest.raises(pj.DecodeError, match="stream, where|gives this chunk 4611"):
                levels[k][:16, :16]
        np.testing.assert_array_equal(levels[0][256:, 256:], camera[256:, 256:])
    # an index length that is not its stream's: level_nbytes refuses it, as a read does
    z = zarr.create_array(LocalStore(tmp_path / "s.zarr"), shape=camera.shape, chunks=(128, 128),
                          shards=(256, 256), dtype=camera.dtype, serializer=ProgressiveJ2KV3(),
                          compressors=None)
    z[:] = camera
    shard = tmp_path / "s.zarr" / "c" / "0" / "0"
    data = bytearray(shard.read_bytes())
    index = np.frombuffer(bytes(data[-(16 * 4 + 4):-4]), "<u8").copy()
    index[1] -= 1
    data[-(16 * 4 + 4):] = index.tobytes() + _core.crc32c(index.tobytes()).to_bytes(4, "little")
    shard.write_bytes(bytes(data))
    with pytest.raises(pj.DecodeError, match="where its shard's index gives"):
        pj.level_nbytes(z)
    data[-1] ^= 1   # the index's CRC: a damaged index, named with its shard once
    shard.write_bytes(bytes(data))
    with pytest.raises(pj.DecodeError, match=r"in shard 'c/0/0'\): the shard's index is "
                       "damaged") as raised:
        pj.open_multiscale(z)[0][:8, :8]
    assert str(raised.value).count("c/0/0") == 1
    z = zarr.create_array(LocalStore(tmp_path / "z.zarr"), shape=camera.shape, chunks=(256, 256),
                          dtype=camera.dtype, serializer=ProgressiveJ2KV3())   # (zstd after it)
    z[:] = camera
    chunk = tmp_path / "z.zarr" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes() + bytes(numcodecs.Zstd().encode(bytes(2**20))))
    with pytest.warns(pj.WholeChunkWarning):
        levels = pj.open_multiscale(z)
    with pytest.raises(pj.DecodeError, match="states no decompressed bytes"):
        levels[2][:8, :8]
    np.testing.assert_array_equal(levels[0][256:, :256], camera[256:, :256])


def test_hand_edited_metadata_is_a_value_error(real, tmp_path, capsys):
    """Metadata edited by hand that zarr still opens (a chunk length of 0:
    Level divided by it) or that zarr's own checks trip over (a shard's
    chunk length of 0, a fill value beyond the dtype: ZeroDivisionError and
    OverflowError inside zarr) is a ValueError naming what is wrong, and
    the command line's one-line error."""
    from progressive_j2k.cli import main
    image = real("camera")[:64, :64]
    for name, shards in (("v3", None), ("sharded", (32, 32))):
        pj.to_zarr(image, str(tmp_path / f"{name}.zarr"), chunks=(16, 16), shards=shards)
    z = zarr.create(shape=image.shape, chunks=(16, 16), dtype=image.dtype, zarr_format=2,
                    compressor=pj.ProgressiveJ2K(), store=str(tmp_path / "v2.zarr"))
    z[:] = image

    def edit(name, file, change):
        path = tmp_path / name / file
        metadata = json.loads(path.read_text())
        change(metadata)
        path.write_text(json.dumps(metadata))

    edit("v3.zarr", "zarr.json",
         lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[16, 0]))
    edit("v2.zarr", ".zarray", lambda m: m.update(chunks=[16, 0]))
    edit("sharded.zarr", "zarr.json",
         lambda m: m["codecs"][0]["configuration"].update(chunk_shape=[16, 0]))
    cases = [("v3.zarr", "chunk lengths must be positive"),
             ("v2.zarr", "chunk lengths must be positive"),
             ("sharded.zarr", r"zarr cannot read its metadata \(ZeroDivisionError")]
    pj.to_zarr(image, str(tmp_path / "fill.zarr"))
    edit("fill.zarr", "zarr.json", lambda m: m.update(fill_value=-1))   # (uint8)
    cases.append(("fill.zarr", r"zarr cannot read its metadata \(OverflowError"))
    for name, message in cases:
        with pytest.raises(ValueError, match=message):
            pj.open_multiscale(str(tmp_path / name))
        capsys.readouterr()
        assert main(["info", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.count("\n") == 1, err


def test_a_chunk_from_another_array_is_named(real, tmp_path, capsys):
    """A chunk copied in from an array of other levels: reads, level_nbytes
    and info name it and say what differs (level_nbytes and info summed its
    prefixes by level, and one of fewer levels failed as 'level must be in
    0..3, got 4', naming no chunk)."""
    from progressive_j2k.cli import main
    small, image = real("camera")[200:264, 200:264], real("mr2_uint16")[400:464, 400:464]
    for name, source, chunks in (("small", small, (8, 8)), ("image", image, (16, 16))):
        zarr.create_array(LocalStore(tmp_path / f"{name}.zarr"), shape=source.shape,
                          chunks=chunks, dtype=source.dtype, serializer=ProgressiveJ2KV3(),
                          compressors=None)[:] = source
    (tmp_path / "image.zarr" / "c" / "1" / "2").write_bytes(
        (tmp_path / "small.zarr" / "c" / "2" / "1").read_bytes())
    message = (r"chunk \(1, 2\) \(key 'c/1/2'\): a chunk has 3 levels over axes \(0, 1\), the "
               r"array's codec options say 4 over \(0, 1\)")
    with pytest.raises(pj.DecodeError, match=message):
        pj.level_nbytes(str(tmp_path / "image.zarr"))
    with pytest.raises(pj.DecodeError, match=message):
        pj.open_multiscale(str(tmp_path / "image.zarr"))[1][...]
    capsys.readouterr()
    assert main(["info", str(tmp_path / "image.zarr")]) == 2
    assert "a chunk has 3 levels" in capsys.readouterr().err


def test_a_failed_listing_leaves_no_fetch_pending(real, tmp_path):
    """level_nbytes (info) stops at a damaged shard index, cancelling its
    other workers; the fetches they shared (the other shards' indices, here
    answered late) finish before the error is raised: a program exiting on
    it reported them ("Task was destroyed but it is pending!", "Task
    exception was never retrieved")."""
    image = real("camera")
    pj.to_zarr(image, str(tmp_path / "s.zarr"), chunks=(32, 32), shards=(64, 64))
    shard = tmp_path / "s.zarr" / "c" / "0" / "1"
    data = bytearray(shard.read_bytes())
    data[-2] ^= 0x40   # the index's checksum
    shard.write_bytes(bytes(data))
    store = Slow(LocalStore(tmp_path / "s.zarr", read_only=True),
                 lambda key: key.startswith("c/") and key != "c/0/1")
    reader = _Reader(zarr.open_array(store, mode="r"))
    with pytest.raises(pj.DecodeError, match="the shard's index is damaged"):
        _stored_chunks(reader, reader.header)
    tasks = list(reader._indices.values()) + list(reader._headers.values())
    assert tasks and all(t.done() for t in tasks)


@pytest.mark.parametrize("layout", ["v2", "v3", "sharded"])
def test_level_nbytes_of_a_vast_sparse_array_asks_only_for_listed_chunks(real, tmp_path, capsys,
                                                                         monkeypatch, layout):
    """An array whose grid has more cells than _LISTING_CELLS (here one
    edited to 2**24 x 2**24 samples, 2**34 chunks, three of them written)
    has its chunks found from the store's listing: level_nbytes and info
    answer at once, and as probing every cell would on a grid small enough.
    A stray object whose name holds a chunk's numbers is not a chunk; a
    store that says it lists but cannot (plain HTTP) is probed instead."""
    from progressive_j2k import _reader
    from progressive_j2k.cli import main
    camera = real("camera")
    kwargs = (dict(compressors=pj.ProgressiveJ2K(), zarr_format=2) if layout == "v2" else
              dict(serializer=ProgressiveJ2KV3(), compressors=None,
                   shards=(256, 256) if layout == "sharded" else None))
    root = tmp_path / "a.zarr"
    z = zarr.create_array(LocalStore(root), shape=(1024, 1024), chunks=(128, 128),
                          dtype=camera.dtype, fill_value=0, **kwargs)
    z[:128, :128] = camera[:128, :128]
    z[640:768, 384:512] = camera[384:, :128]
    z[896:, 896:] = camera[:128, 384:]
    first = next(f for f in root.rglob("*") if f.is_file() and f.name[0].isdigit())
    (first.parent / (first.name + ".bak")).write_bytes(first.read_bytes())   # (a stray copy)
    monkeypatch.setattr(_reader, "_LISTING_CELLS", 16)   # listed: 64 cells
    listed = pj.level_nbytes(z)
    unlisted = Unlisted(LocalStore(root, read_only=True))   # says it lists: probed, the same
    assert unlisted.supports_listing
    assert pj.level_nbytes(zarr.open_array(unlisted, mode="r")) == listed
    if layout != "v2":   # over HTTP, which cannot list: probed, the same
        pytest.importorskip("aiohttp")
        from zarr.storage import FsspecStore
        with RangeServer(tmp_path) as server:
            store = FsspecStore.from_url(f"{server.url}/a.zarr", read_only=True)
            assert store.supports_listing
            assert pj.level_nbytes(zarr.open_array(store, mode="r")) == listed
    monkeypatch.setattr(_reader, "_LISTING_CELLS", 4096)   # probed
    assert pj.level_nbytes(z) == listed and listed[0] > listed[-1] > 0
    metadata = root / ("zarr.json" if layout != "v2" else ".zarray")
    fields = json.loads(metadata.read_text())
    fields["shape"] = [2**24, 2**24]
    metadata.write_text(json.dumps(fields))
    vast = zarr.open_array(str(root), mode="r")
    assert vast.shape == (2**24, 2**24) and pj.level_nbytes(vast) == listed
    capsys.readouterr()
    assert main(["info", str(root)]) == 0
    assert f"stored {listed[0]} bytes of chunk data in 3 of {2**34} chunks" in (
        capsys.readouterr().out)


def test_a_lossy_arrays_lossless_chunk_with_four_gaps_has_the_longest_header():
    """A lossy target stores a chunk of five values losslessly, with
    close_gaps its four gaps: with one level its header (82 bytes) is longer
    than a lossy one (81), and the reader's first request reads it whole."""
    values = np.array([0, 100, 200, 300, 400], np.uint16)
    arr = values[np.random.default_rng(1).integers(0, 5, (16, 16))]
    z = zarr.create_array(MemoryStore(), shape=arr.shape, chunks=(16, 16), dtype=arr.dtype,
                          serializer=ProgressiveJ2KV3(ratio=1.2, levels=1, close_gaps=True),
                          compressors=None)
    z[:] = arr
    header = pj.read_header(pj.encode(arr, ratio=1.2, levels=1, close_gaps=True))
    assert header.mode == "lossless" and len(header.gaps) == 4
    assert header.header_length > pj._api.header_length(2, 2, 1, "lossy")
    levels = pj.open_multiscale(z)
    np.testing.assert_array_equal(levels[1][:], pj.decode(pj.encode(arr, ratio=1.2, levels=1,
                                                                     close_gaps=True), level=1))
    np.testing.assert_array_equal(levels[0][:], arr)


def expected_level(arr, level):
    """Level `level` of `arr` stored in 256^2 chunks, each decoded alone."""
    return reference_level(arr, (256, 256), {}, level)[0]


def test_napari_multiscale_layer_without_window(real):
    napari_layers = pytest.importorskip("napari.layers")
    arr = real("astronaut")
    z = write("v3", MemoryStore(), arr, (256, 256, 3), {"colour_axis": 2})
    levels = pj.open_multiscale(z)
    layer = napari_layers.Image(levels, multiscale=True, rgb=True)
    assert layer.multiscale and layer.rgb
    assert [tuple(int(n) for n in s) for s in layer.level_shapes] == [lv.shape[:2] for lv in levels]
    np.testing.assert_array_equal(np.asarray(layer.data[3]), levels[3][:])


@pytest.mark.parametrize("shards", [None, (512, 1024)])
def test_lossy_array_with_lossless_chunks(real, shards):
    """A ratio target gives a constant chunk its exact lossless stream (its
    header is shorter than a lossy one): the levels of such a mixed array
    read as each chunk decodes, sharded or not."""
    camera = real("camera")
    image = np.concatenate([camera, np.full((512, 512), 240, np.uint8)], axis=1)
    z = zarr.create_array(MemoryStore(), shape=image.shape, chunks=(512, 512), shards=shards,
                          dtype=image.dtype, compressors=None,
                          serializer=ProgressiveJ2KV3(reversible=False, ratio=10))
    z[:] = image
    lossy = pj.encode(camera, reversible=False, ratio=10)
    assert pj.read_header(lossy).mode == "lossy"
    assert pj.read_header(pj.encode(image[:, 512:], reversible=False, ratio=10)).mode == "lossless"
    levels = pj.open_multiscale(z)
    for k in range(4):
        n = 512 >> k
        np.testing.assert_array_equal(levels[k][:, :n], pj.decode(lossy, level=k))
        assert (levels[k][:, n:] == 240).all()


def test_strided_reads_allocate_the_selection_only(real):
    """A strided read allocates its result, not the span it covers, and reads
    only chunks holding a selected element (it once allocated 1.6 GB for a
    79 x 79 result); its values are the full read's, strided."""
    import tracemalloc
    arr = real("camera")
    z = write("v3", MemoryStore(), arr, (128, 96), {})
    levels = pj.open_multiscale(z)
    for level in levels[:3]:
        full = level[:]
        for key in [(slice(None, None, 7), slice(3, None, 5)), (slice(5, 200, 64), slice(None, None, 100)),
                    (slice(1, None, 128), 17), (slice(None, None, 1000), slice(None, None, 3))]:
            np.testing.assert_array_equal(level[key], full[key])
    empty = zarr.create_array(MemoryStore(), shape=(40000, 40000), chunks=(1024, 1024), dtype="u1",
                              serializer=ProgressiveJ2KV3(), compressors=None, fill_value=7)
    tracemalloc.start()
    thumbnail = pj.open_multiscale(empty)[0][::512, ::512]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert thumbnail.shape == (79, 79) and (thumbnail == 7).all()
    assert peak < 50e6


@pytest.mark.parametrize("sharded", [False, True])
def test_a_view_follows_rewrites_and_new_chunks(real, tmp_path, sharded):
    """Levels opened before the array is rewritten read the new data: a
    cached header that no longer fits fails its checksum and the chunk is read
    again; chunks (and shards) absent at first are looked up again."""
    camera, moon = real("camera"), real("moon")[:512, :512]
    z = zarr.create_array(LocalStore(tmp_path / "a.zarr"), shape=(512, 512), chunks=(128, 128),
                          shards=(256, 256) if sharded else None, dtype=np.uint8,
                          serializer=ProgressiveJ2KV3(), compressors=None, fill_value=3)
    z[:256, :256] = camera[:256, :256]
    levels = pj.open_multiscale(zarr.open_array(str(tmp_path / "a.zarr"), mode="r"))
    before = levels[2][:]
    assert (before[64:] == 3).all()
    z[:] = moon
    for level in (2, 0, 1):
        expected = moon if level == 0 else pj.open_multiscale(z)[level][:]
        np.testing.assert_array_equal(levels[level][:], expected)
    assert not np.array_equal(levels[2][:], before)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_view_follows_rewrites_of_chunks_shorter_than_the_first_request(real, tmp_path,
                                                                          zarr_format):
    """A lossy target stores a constant chunk losslessly in fewer bytes than
    the reader's first request (the longest header the options allow), so
    the header it keeps holds the whole old stream.  After the array is
    rewritten an open view reads the new chunks at every level, not the kept
    bytes; a chunk rewritten to the fill value (deleted) reads as fill."""
    camera = real("camera")
    kwargs = (dict(serializer=ProgressiveJ2KV3(ratio=20), compressors=None) if zarr_format == 3
              else dict(compressors=pj.ProgressiveJ2K(ratio=20), zarr_format=2))
    z = zarr.create_array(LocalStore(tmp_path / "a.zarr"), shape=(512, 512), chunks=(256, 256),
                          dtype=np.uint8, fill_value=0, **kwargs)
    z[:] = 255
    levels = pj.open_multiscale(zarr.open_array(str(tmp_path / "a.zarr"), mode="r"))
    header = pj.read_header((tmp_path / "a.zarr" / ("c/0/0" if zarr_format == 3 else "0.0"))
                            .read_bytes())
    assert header.nbytes <= levels[0]._reader.header_length   # the whole stream, kept
    for k in (0, 3):
        assert (levels[k][:] == 255).all()
    z[:] = camera
    z[256:, 256:] = 0   # the fill value: zarr deletes the chunk
    fresh = pj.open_multiscale(z)
    np.testing.assert_array_equal(levels[0][:], z[:])
    np.testing.assert_array_equal(levels[3][:], fresh[3][:])
    assert (levels[3][32:, 32:] == 0).all() and (levels[3][:32, :32] != 255).any()


def test_a_stale_shard_index_pointing_at_another_chunk_is_read_again(real, tmp_path):
    """A view caches each shard's index.  Where the shard is rewritten and a
    chunk's old place now holds the start of another whole chunk (whose own
    checksums hold), the stream's length, which its header gives, differs
    from the old index entry's: the read fails, the index is fetched again,
    and the chunk reads right (not as the other chunk)."""
    from progressive_j2k import _core
    camera, moon = real("camera")[:256, :256], real("moon")[:256, :256]
    root = tmp_path / "a.zarr"
    z = zarr.create_array(LocalStore(root), shape=(256, 256), chunks=(128, 128),
                          shards=(256, 256), dtype=np.uint8, serializer=ProgressiveJ2KV3(),
                          compressors=None)
    z[:] = camera
    views = [pj.open_multiscale(zarr.open_array(str(root), mode="r")) for _ in range(2)]
    for levels in views:   # each caches the shard's index
        np.testing.assert_array_equal(levels[2][:32, :32], pj.open_multiscale(z)[2][:32, :32])
    shard = root / "c" / "0" / "0"
    old = np.frombuffer(shard.read_bytes()[-(16 * 4 + 4):-4], "<u8").reshape(2, 2, 2)
    stale_offset, stale_length = (int(v) for v in old[0, 1])   # chunk (0, 1), as cached
    # the new shard (moon): chunk (1, 0) placed where (0, 1) was, the rest after it
    streams = {(i, j): pj.encode(np.ascontiguousarray(moon[128 * i:128 * (i + 1),
                                                            128 * j:128 * (j + 1)]))
               for i in range(2) for j in range(2)}
    assert len(streams[1, 0]) != stale_length
    body = bytearray(streams[0, 0].ljust(stale_offset, b"\0"))
    index = np.zeros((2, 2, 2), "<u8")
    for coords in ((0, 0), (1, 0), (0, 1), (1, 1)):
        at = 0 if coords == (0, 0) else len(body)
        body += b"" if coords == (0, 0) else streams[coords]
        index[coords] = (at, len(streams[coords]))
    assert index[1, 0, 0] == stale_offset
    raw_index = index.tobytes()
    shard.write_bytes(bytes(body) + raw_index + _core.crc32c(raw_index).to_bytes(4, "little"))
    np.testing.assert_array_equal(zarr.open_array(str(root), mode="r")[:], moon)
    fresh = pj.open_multiscale(zarr.open_array(str(root), mode="r"))
    for levels, k in zip(views, (0, 2)):   # a whole chunk, a prefix: through the stale index
        np.testing.assert_array_equal(levels[k][:, :], fresh[k][:, :])


@pytest.mark.parametrize("kind", ["v3", "sharded"])
def test_a_server_that_ignores_range_requests(real, tmp_path, kind):
    """python -m http.server answers a range request with the whole file:
    the reader takes the range it asked for (a shard's index and chunks at
    offsets within the shard included)."""
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    import http.server
    import threading
    from functools import partial
    from zarr.storage import FsspecStore
    arr = real("camera")
    write(kind, LocalStore(tmp_path / "a.zarr"), arr, (128, 128), {})
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        store = FsspecStore.from_url(f"http://127.0.0.1:{server.server_port}/a.zarr",
                                     read_only=True)
        levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
        for level in (3, 0, 1):
            np.testing.assert_array_equal(levels[level][:],
                                          reference_level(arr, (128, 128), {}, level)[0])
    finally:
        server.shutdown()
        server.server_close()


def test_groups_open_their_progressive_array(real, tmp_path):
    """open_multiscale (and the CLI's info) given a group: its one
    progressive_j2k array, or an OME-Zarr group's level 0; otherwise a
    message naming the arrays to choose from."""
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    # (a store that cannot list shows none: the message says so, and what to pass)
    with pytest.raises(ValueError, match=r"a zarr group, not an array, and no arrays were "
                       r"found in it \(a store that cannot list.*pass the array's own path"):
        pj.open_multiscale(group)
    nested = zarr.open_group(str(tmp_path / "n.zarr"), mode="w")   # an array in a sub-group
    nested.create_array("sub/img", data=np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"no arrays directly in it: pass an array's own path "
                                         r"in its groups \(sub\)"):
        pj.open_multiscale(nested)
    np.save(tmp_path / "image.npy", real("camera"))   # (zarr would say "no group found")
    with pytest.raises(ValueError, match=r"image\.npy' is a file, not a zarr array"):
        pj.open_multiscale(str(tmp_path / "image.npy"))
    group.create_array("coords", data=np.arange(512.0))
    with pytest.raises(ValueError, match=r"its arrays \(.*g\.zarr/coords\)"):   # a path: paths
        pj.open_multiscale(str(tmp_path / "g.zarr"))
    image = group.create_array("image", shape=(512, 512), chunks=(256, 256), dtype=np.uint8,
                               serializer=ProgressiveJ2KV3(), compressors=None)
    image[:] = real("camera")
    np.testing.assert_array_equal(pj.open_multiscale(str(tmp_path / "g.zarr"))[0][:],
                                  real("camera"))
    second = group.create_array("second", shape=(64, 64), dtype=np.uint8,
                                serializer=ProgressiveJ2KV3(), compressors=None)
    second[:] = 1
    with pytest.raises(ValueError, match=r"progressive_j2k arrays \(group\['image'\], "
                                         r"group\['second'\]\)"):   # a Group: its keys
        pj.open_multiscale(group)
    group.attrs["multiscales"] = [{"datasets": [{"path": "second"}]}]
    assert pj.open_multiscale(group)[0].shape == (64, 64)
    group.create_group("sub")
    for bad in ([{"datasets": []}], [{}], {"a": 1}, [{"datasets": [{"path": 5}]}],
                [{"datasets": [{"path": "nope"}]}], [{"datasets": [{"path": "sub"}]}]):
        group.attrs["multiscales"] = bad   # a ValueError that names the attribute
        with pytest.raises(ValueError, match="multiscales attribute names no level-0 array"):
            pj.open_multiscale(group)


def test_warm_tile_reads_of_a_sharded_array_take_one_request(real, tmp_path):
    """A viewer reading tile by tile (dask, napari: one read per chunk)
    fetches each shard's index once, not once per tile; moving to another
    level with every header cached costs one request per chunk and no
    round trip for a first exact read."""
    arr = real("mr2_uint16")
    write("sharded", LocalStore(tmp_path / "a.zarr"), arr, (128, 128), {})
    store = CountingStore(LocalStore(tmp_path / "a.zarr", read_only=True))
    levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
    level = levels[2]
    for i in range(8):
        for j in range(8):
            level[32 * i:32 * (i + 1), 32 * j:32 * (j + 1)]
    assert len(store.chunk_reads()) <= 64 + 16 + 1 + 8   # chunks, indices once, the first exact
    store.reads.clear()
    np.testing.assert_array_equal(levels[3][:], reference_level(arr, (128, 128), {}, 3)[0])
    assert len(store.chunk_reads()) == 64


class SlowStore(CountingStore):
    """A CountingStore whose reads take a while, recording how many overlap."""

    def __init__(self, store):
        super().__init__(store)
        self.in_flight = 0
        self.alone = 0   # reads that started with no other in flight

    async def get(self, key, prototype=None, byte_range=None):
        import asyncio
        self.in_flight += 1
        self.alone += self.in_flight == 1
        try:
            await asyncio.sleep(0.002)
            return await super().get(key, prototype, byte_range)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("sharded", [False, True])
def test_sparse_arrays_are_read_in_parallel(real, tmp_path, sharded):
    """Where the chunk a level's guesses start from is absent, the others
    read exactly, side by side (not one probe after another); an absent
    shard is asked for once per read."""
    z = zarr.create_array(LocalStore(tmp_path / "a.zarr"), shape=(512, 512), chunks=(32, 32),
                          shards=(256, 256) if sharded else None, dtype=np.uint8,
                          serializer=ProgressiveJ2KV3(), compressors=None, fill_value=9)
    z[256:288, 256:288] = real("camera")[:32, :32]   # one chunk, half way through
    expected = pj.decode(pj.encode(real("camera")[:32, :32]), level=2)
    for read in range(2):
        store = SlowStore(LocalStore(tmp_path / "a.zarr", read_only=True))
        got = pj.open_multiscale(zarr.open_array(store, mode="r"))[2][:]
        np.testing.assert_array_equal(got[64:72, 64:72], expected)
        assert (got[:64] == 9).all()
        reads = store.chunk_reads()
        if sharded:   # 3 absent shards once each; the index and the chunk of the 4th
            assert len(reads) <= 3 + 1 + 2
        else:   # the first read alone, then the rest side by side (one by one: 112)
            assert len(reads) <= 256 + 1 and store.alone <= 16, store.alone


def test_guesses_start_from_a_typical_chunk(real, tmp_path):
    """mr2's corner chunks are black background: guesses started from the
    first chunk in grid order sent most tissue chunks back for a second
    request (85-96 requests for 64 chunks); from the middle chunk, a few."""
    arr = real("mr2_uint16")
    write("v3", LocalStore(tmp_path / "a.zarr"), arr, (128, 128), {})
    for level in (2, 3, 4):
        store = CountingStore(LocalStore(tmp_path / "a.zarr", read_only=True))
        levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
        np.testing.assert_array_equal(levels[level][:],
                                      reference_level(arr, (128, 128), {}, level)[0])
        assert len(store.chunk_reads()) <= 64 + 8


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_during_a_read_reads_the_level(real, tmp_path):
    """A child forked while a thread of its parent was fetching a level's
    headers inherited those fetches, tasks of the parent's event loop that
    never finish in the child: every read of the level failed there
    ("attached to a different loop"). The child now drops them."""
    import threading
    import time
    pj.to_zarr(real("mr2_uint16"), str(tmp_path / "a.zarr"), chunks=(256, 256))
    expected = pj.open_multiscale(str(tmp_path / "a.zarr"))[2][...]
    store = Slow(LocalStore(str(tmp_path / "a.zarr"), read_only=True), lambda k: "c/" in k,
                 delay=1.0)
    levels = pj.open_multiscale(zarr.open_array(store, mode="r"))
    reading = threading.Thread(target=lambda: levels[2][...])
    reading.start()
    deadline = time.monotonic() + 10
    while not levels[2]._reader.in_flight() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert levels[2]._reader.in_flight()   # (the fork below comes mid-fetch)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:   # (the child reports through the pipe, and never returns to pytest)
        try:
            os.write(write_end, b"same" if np.array_equal(levels[2][...], expected) else b"diff")
        except BaseException as exc:
            os.write(write_end, repr(exc).encode()[:500])
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 60
    while os.waitpid(child, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(child, 9)
            os.waitpid(child, 0)
            pytest.fail("the forked child's read hung")
        time.sleep(0.05)
    said = os.read(read_end, 600)
    os.close(read_end)
    reading.join()
    assert said == b"same", said
