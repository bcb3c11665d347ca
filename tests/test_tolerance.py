"""Error-bounded mode: max |decoded - original| <= tolerance on every element."""
import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import ProgressiveJ2K

from helpers import check_config


def max_error(a, b):
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.mark.parametrize("relative", [1e-1, 1e-2, 1e-3, 1e-4, 1e-5])
def test_real_float_volume_every_element_within_tolerance(real, relative):
    field = real("tlrc_float32_3d")
    tol = relative * float(field.max() - field.min())
    enc = pj.encode(field, tolerance=tol)
    dec = pj.decode(enc)
    assert dec.dtype == np.float32 and dec.shape == field.shape
    assert max_error(dec, field) <= tol
    header = pj.read_header(enc)
    assert header.mode == "tolerance" and header.tolerance == tol and not header.reversible


@pytest.mark.parametrize("name", ["tlrc_float32_3d", "mr2_uint16", "ct693_int16"])
def test_float64_fields_within_tolerance(real, name):
    field = real(name).astype(np.float64) * np.pi  # real data in float64 units
    for tol in (1e-9, 1e-3, 0.5, 7.0):
        tol = tol * float(np.abs(field).max())
        dec = pj.decode(pj.encode(field, tolerance=tol))
        assert max_error(dec, field) <= tol


@pytest.mark.parametrize("name,options", [("ct693_int16", {}), ("camera", {}),
                                          ("astronaut", {"colour_axis": -1}),
                                          ("mni152_t1_uint8_3d", {})])
def test_integer_images_within_tolerance(real, name, options):
    arr = real(name)
    previous = None
    for tol in (0.3, 1, 2, 5.5):
        enc = pj.encode(arr, tolerance=tol, **options)
        dec = pj.decode(enc)
        assert dec.dtype == arr.dtype and max_error(dec, arr) <= tol
        if previous is not None:
            assert len(enc) <= previous  # a looser bound never costs more
        previous = len(enc)
    assert previous < len(pj.encode(arr, **options)) / 1.5


def test_reduced_levels_are_a_faithful_low_pass(real):
    field = real("tlrc_float32_3d")
    span = float(field.max() - field.min())
    tol = 1e-3 * span
    enc = pj.encode(field, tolerance=tol)
    low = pj.decode(enc, level=1).astype(np.float64)
    exact = pj.decode(pj.encode((field / 1e-7).round().astype(np.int32)), level=1) * 1e-7
    # the 5/3 low band of the near-exact field: quantisation errors (<= tol)
    # pass through the low-pass (l1 gain 1.5 per axis, 3.4 in 3-D), and the
    # integer lifting at the coarser scale (2 tol) rounds by about a unit
    assert np.abs(low - exact).max() <= 8 * tol
    assert np.corrcoef(low.ravel(), exact.ravel())[0, 1] > 0.999


def float_low_band(arr: np.ndarray, levels: int, axes) -> np.ndarray:
    """The 5/3 low band of `arr` in exact arithmetic (no rounding): what a
    faithful reduced level approximates."""
    low = arr.astype(np.float64)
    for _ in range(levels):
        for axis in axes:
            if low.shape[axis] < 2:
                continue
            x = np.moveaxis(low, axis, 0)
            even, odd = x[0::2], x[1::2]
            right = np.concatenate([even[1:], even[-1:]])[:len(odd)]   # symmetric extension
            detail = odd - (even[:len(odd)] + right) / 2
            left_d = np.concatenate([detail[:1], detail])[:len(even)]
            right_d = np.concatenate([detail, detail[-1:]])[:len(even)]
            low = np.moveaxis(even + (left_d + right_d) / 4, 0, axis)
    return low


@pytest.mark.parametrize("name, tol", [("camera", 4.0), ("coins", 4.0), ("moon", 2.0),
                                       ("ct693_int16", 20.0)])
def test_reduced_levels_carry_no_rounding_bias(real, name, tol):
    """Error-bounded chunks lift with the rounded 5/3 (wavelet 3): the mean of
    every reduced level is the mean of the exact low band (clamped to the
    dtype, as decodes are) within a fraction of the tolerance, beyond what
    quantising the samples left at full resolution.  JPEG 2000's 5/3
    (wavelet 2, which older streams hold) adds about 0.2-0.4 quantisation
    steps per level: 8 to 16 grey levels at level 6 on camera at tolerance
    4.  Lossless chunks (wavelet 4) likewise, within a quarter of a unit."""
    from progressive_j2k import _api, _core, _dtypes
    arr = real(name)
    axes = (0, 1)
    enc = pj.encode(arr, tolerance=tol, m97_levels=0)
    assert pj.read_header(enc).wavelet == 3
    scale = _api.tolerance_scale(arr, tol)
    older = _core.Prepared(arr.reshape(-1).view(np.uint8), _dtypes.DTYPE_CODES[arr.dtype], arr.shape,
                           axes, -1, 6, 2, scale, tol, 0).encode(0.0)
    lossless = pj.encode(arr, m97_levels=0)
    assert pj.read_header(lossless).wavelet == 4
    quantised = float((pj.decode(enc).astype(np.float64) - arr).mean())
    info = np.iinfo(arr.dtype)
    for level in range(1, 7):
        exact = np.clip(float_low_band(arr, level, axes), info.min, info.max)
        bias = float((pj.decode(enc, level=level) - exact).mean()) - quantised
        assert abs(bias) <= 0.35 * tol, (level, bias)
        assert abs(float((pj.decode(lossless, level=level) - exact).mean())) <= 0.25
        if level == 6:   # the floor 5/3 drifts upwards
            assert float((pj.decode(older, level=level) - exact).mean()) >= 1.5 * tol


def test_non_finite_and_impossible_tolerances_are_refused():
    arr = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    for bad, counts in ((np.nan, "1 NaN and 0 infinite"), (np.inf, "0 NaN and 1 infinite"),
                        (-np.inf, "0 NaN and 1 infinite")):
        damaged = arr.copy()
        damaged[3, 3] = bad
        with pytest.raises(pj.NonFiniteError, match=f"finite values: this chunk holds {counts} "
                                                    f"values among its 64. Replace them in the data"
                           ) as caught:
            pj.encode(damaged, tolerance=0.1)
        assert (caught.value.nan, caught.value.inf) == ((1, 0) if np.isnan(bad) else (0, 1))
    with pytest.raises(ValueError, match="precision"):
        pj.encode(arr, tolerance=1e-12)  # below float32 resolution near 1
    with pytest.raises(ValueError, match="2\\*\\*40"):
        pj.encode(arr.astype(np.float64) * 1e12, tolerance=1e-3)
    with pytest.raises(ValueError):
        pj.encode(arr, tolerance=0)
    with pytest.raises(ValueError, match="mode of its own"):
        pj.encode(arr, tolerance=0.1, reversible=False)


def test_codec_config_with_tolerance(real):
    codec = check_config(ProgressiveJ2K(tolerance=0.25))
    arr = real("moon")
    assert max_error(codec.decode(codec.encode(arr)), arr) <= 0.25


@pytest.mark.parametrize("dtype, relative", [("f4", 1e-3), ("f4", 1e-4), ("f8", 1e-9)])
def test_partial_writes_keep_the_bound(real, dtype, relative):
    """zarr decodes a chunk, overwrites part of it and encodes it again: the
    values written before keep their error only if the scale stays put while
    the chunk's largest value grows (STABLE_SCALE_BITS). Written one time step
    at a time into one chunk, each larger than the last: every element stays
    within the tolerance of what was written."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3
    field = real("tlrc_float32_3d")[:16].astype(dtype)
    growing = (field * (1 + 0.25 * np.arange(16))[:, None, None]).astype(dtype)   # 4 binades
    tol = float(field.max()) * relative
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=growing.shape, chunks=growing.shape,
                          dtype=dtype, serializer=ProgressiveJ2KV3(tolerance=tol),
                          compressors=None, fill_value=0.0)
    for t in range(16):
        z[t] = growing[t]
    error = float(np.abs(z[:].astype(float) - growing).max())
    assert error <= tol


def test_partial_writes_beyond_the_stable_scale_drift_as_documented(real):
    """float32 values beyond 65536 tolerances: each write that raises the
    chunk's largest value past another power of two may move the kept values
    by one more tolerance (README); never more than that."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3
    image = (real("camera") * np.float32(0.37)).astype(np.float32)   # peak 94 > 65536 * tol
    tol = 0.001
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=image.shape, chunks=image.shape,
                          dtype="f4", serializer=ProgressiveJ2KV3(tolerance=tol),
                          compressors=None, fill_value=0.0)
    z[...] = image
    errors = []
    for crossings, peak in enumerate((200, 400, 800, 1600, 3200, 6400), start=1):
        z[0, 0] = peak
        errors.append(float(np.abs(z[1:].astype(float) - image[1:]).max()) / tol)
        assert errors[-1] <= 1 + crossings, errors
    assert errors[-1] > 2   # (the drift is real: this test must not pass vacuously)


@pytest.mark.parametrize("dtype, nodata", [("f4", -999.0), ("f4", -9999.0), ("f8", -999.0),
                                           ("f8", -1e6), ("f4", 3.5), ("i2", -9999), ("u2", 65535)])
@pytest.mark.parametrize("tol", [0.01, 0.3, 3.0])
def test_nodata_decodes_exactly(real, dtype, nodata, tol):
    """A fill value (a land mask, a nodata value) decodes exactly, not only
    within the tolerance, so that readers matching it (xarray's _FillValue)
    keep the mask; every other value keeps the bound."""
    field = real("mr2_uint16")[300:428, 300:428].astype(np.float64)
    if np.dtype(dtype).kind == "f":
        field = field / 7.3 + 250
    arr = field.astype(dtype)
    arr[:40, :50] = nodata
    arr[90:, 100:] = nodata
    if tol == 0.01 and np.dtype(dtype).kind in "iu":
        tol = 1.0   # (integers: a tolerance below 1 is lossless)
    decoded = pj.decode(pj.encode(arr, tolerance=tol, nodata=nodata))
    mask = arr == arr.dtype.type(nodata)
    assert (decoded[mask] == arr.dtype.type(nodata)).all()
    assert max_error(decoded, arr) <= tol
    if np.dtype(dtype).kind == "f" and nodata == -999.0 and tol == 0.3:
        # (without the option the mask is lost: the test is not vacuous)
        assert not (pj.decode(pj.encode(arr, tolerance=tol))[mask] == nodata).all()


def test_which_nodata_values_shape_the_grid(real):
    """A brain template (values near 1e-4) masked at a tolerance of 1e-6:
    -9999 (refused before format version 9's fill sample: beyond float32's
    precision at that tolerance), 0 and CF's fill code the same stream but
    for the fill sample; -1, whose ulp costs 1/17 of the scale, anchors the
    grid for partial writes (_api.ANCHOR_MARGIN_SHARE) for 1.4% more."""
    field = real("tlrc_float32_3d")
    low = field < np.percentile(field, 10)
    sizes = []
    for nodata in (-9999.0, 0.0, float(np.float32(9.96921e36)), -1.0):
        arr = np.where(low, nodata, field).astype(np.float32)
        stream = pj.encode(arr, tolerance=1e-6, nodata=nodata)
        decoded = pj.decode(stream)
        assert (decoded[low] == np.float32(nodata)).all()
        assert max_error(decoded[~low], field[~low]) <= 1e-6
        sizes.append(len(stream))
    assert sizes[0] == sizes[1] == sizes[2] < sizes[3] < 1.02 * sizes[0]


def test_nodata_options_are_checked_and_stored_only_when_set():
    ProgressiveJ2K(nodata=-999.0)                      # every mode (docs/DESIGN.md 59)
    ProgressiveJ2K(mode="lossy", nodata=-999.0)
    with pytest.raises(ValueError, match="finite"):
        ProgressiveJ2K(tolerance=0.1, nodata=float("nan"))
    for dtype, value in (("i2", -0.5), ("u1", -1), ("u2", 70000)):
        with pytest.raises(ValueError, match=f"nodata .* is not a {np.dtype(dtype)} value"):
            pj.encode(np.zeros((8, 8), dtype), tolerance=2, nodata=value)
    for value in (1e39, -1e39):   # (float32's nearest: infinity)
        with pytest.raises(ValueError, match="nodata .* is beyond the range of float32"):
            pj.encode(np.zeros((8, 8), np.float32), tolerance=2, nodata=value)
    with pytest.raises(ValueError, match="nodata is beyond float64's range: an integer of 401"):
        pj.encode(np.zeros((8, 8), np.float32), tolerance=2, nodata=10**400)
    with pytest.raises(ValueError, match="below the precision of float32"):   # (0: every 0 cell)
        pj.encode(np.zeros((8, 8), np.float32), tolerance=2, nodata=1e-50)
    # nodata is restored from the stream, not from the grid: a value near 0,
    # and CF's default fill, once refused (a grid 6x finer; beyond float32's
    # precision at tolerance 0.01), code the field as any other value does
    field = np.linspace(0, 50, 16 * 16, dtype=np.float32).reshape(16, 16)
    streams = []
    for nodata, tol in ((-1.0, 3.0), (float(np.float32(9.96921e36)), 3.0), (-9999.0, 3.0)):
        arr = field.copy()
        arr[:4, :5] = nodata
        streams.append(pj.encode(arr, tolerance=tol, nodata=nodata))
        decoded = pj.decode(streams[-1])
        assert (decoded[:4, :5] == np.float32(nodata)).all()
        assert max_error(decoded[4:], field[4:]) <= tol
    assert len({len(s) for s in streams}) == 1   # (only the fill sample's bytes differ)
    assert "nodata" not in ProgressiveJ2K(tolerance=0.1).get_config()   # older readers open it
    # the v3 codec checks the dtype when the array is created, not at its first write
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3
    with pytest.raises(ValueError, match="not a int16 value"):
        zarr.create_array(zarr.storage.MemoryStore(), shape=(8, 8), chunks=(8, 8), dtype="i2",
                          serializer=ProgressiveJ2KV3(tolerance=1, nodata=3.5), compressors=None)
    codec = check_config(ProgressiveJ2K(tolerance=0.1, nodata=-999.0))
    assert codec.nodata == -999.0


def test_float_nodata_is_the_dtypes_value_as_cf_gives_it(real, tmp_path):
    """CF's fill values as climate files give them (1e20, netCDF's
    9.96921e36) are no float32 values; like xarray and netCDF, nodata takes
    the float32 value they round to, in encode, the codecs and to_zarr."""
    field = real("tlrc_float32_3d")
    low = field < np.percentile(field, 20)
    for given in (1e20, 9.96921e36, 0.1):
        value = np.float32(given)
        assert float(value) != given   # (refused as no float32 value before)
        arr = np.where(low, value, field).astype(np.float32)
        stream = pj.encode(arr, tolerance=1e-6, nodata=given)
        assert stream == pj.encode(arr, tolerance=1e-6, nodata=float(value))
        decoded = pj.decode(stream)
        assert (decoded[low] == value).all()
        assert max_error(decoded[~low], field[~low]) <= 1e-6
    zarr = pytest.importorskip("zarr")
    arr = np.where(low, np.float32(1e20), field).astype(np.float32)
    z = zarr.create(shape=arr.shape, chunks=(24, 32, 32), dtype="f4", zarr_format=2,
                    compressor=ProgressiveJ2K(tolerance=1e-6, nodata=1e20))
    z[:] = arr
    assert (z[:][low] == np.float32(1e20)).all()
    xr = pytest.importorskip("xarray")
    zarr.open_group(tmp_path / "t.zarr", mode="w")
    pj.to_zarr(xr.DataArray(arr, dims=("z", "y", "x")), tmp_path / "t.zarr/t",
               chunks=(24, 32, 32), levels=3, tolerance=1e-6, nodata=1e20)
    assert zarr.open_array(tmp_path / "t.zarr/t").fill_value == np.float32(1e20)
    values = xr.open_zarr(tmp_path / "t.zarr", consolidated=False).t.values
    assert np.isnan(values[low]).all() and not np.isnan(values[~low]).any()
    # to_zarr's axis choice sees the rounded value too (1e20 as given judged
    # the masked cells as data and chose frames: (47, 54, 1) chunks)
    same = [pj.to_zarr(arr, tmp_path / f"a{i}.zarr", tolerance=0.01, nodata=given)
            for i, given in enumerate((1e20, float(np.float32(1e20))))]
    assert same[0].chunks == same[1].chunks and same[0].metadata.codecs[0].to_dict() == \
        same[1].metadata.codecs[0].to_dict()


def test_nodata_survives_partial_writes_and_xarray(real, tmp_path):
    """The recipe the README gives for masked fields: the zarr v3 codec with
    nodata equal to xarray's _FillValue and the array's fill_value; partial
    writes (one time step at a time) keep both the mask and the bound."""
    xr = pytest.importorskip("xarray")
    from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3
    mr = real("mr2_uint16").astype(np.float32) / 7.3 + 250
    field = np.stack([mr[:200, :300], mr[200:400, :300], mr[400:600, :300]])
    field[:, :50, :40] = np.nan                                    # land
    tol = 0.05
    ds = xr.Dataset({"t": (("time", "lat", "lon"), field)})
    codec = ProgressiveJ2KV3(tolerance=tol, nodata=-999.0, axes=(-2, -1))
    encoding = {"t": {"serializer": codec, "compressors": None, "_FillValue": -999.0,
                      "fill_value": -999.0, "chunks": (1, 128, 128)}}
    ds.isel(time=[0]).to_zarr(tmp_path / "t.zarr", mode="w", encoding=encoding, consolidated=False)
    for t in (1, 2):
        ds.isel(time=[t]).to_zarr(tmp_path / "t.zarr", append_dim="time", consolidated=False)
    back = xr.open_zarr(tmp_path / "t.zarr", consolidated=False).t.values
    np.testing.assert_array_equal(np.isnan(back), np.isnan(field))
    valid = ~np.isnan(field)
    assert np.abs(back[valid].astype(float) - field[valid]).max() <= tol


@pytest.mark.parametrize("dtype, nodata, tol", [("f8", 31049.0, 0.036), ("f8", -1987.5, 0.00218),
                                                ("u2", 65521, 3), ("i2", -32767, 3)])
def test_nodata_grids_that_a_first_search_missed(dtype, nodata, tol):
    """float64 products that no nearby k hits (a power of two then does), and
    prime integers (a fractional scale: no collapse to a grid of 1)."""
    field = np.linspace(0, 2000, 64 * 64).reshape(64, 64).astype(dtype)
    field[:8, :8] = nodata
    encoded = pj.encode(field, tolerance=tol, nodata=nodata)
    decoded = pj.decode(encoded)
    assert (decoded[:8, :8] == field.dtype.type(nodata)).all()
    assert max_error(decoded, field) <= tol
    if np.dtype(dtype).kind in "iu":   # about the default grid's size, not a lossless one's
        assert len(encoded) < 1.2 * len(pj.encode(field, tolerance=tol))


def test_nodata_far_from_the_data_keeps_partial_writes_in_bound(real):
    """float32 scales follow the chunk's peak above 65536 tolerances: a chunk
    first written partly (padded with the fill value) and then completed
    would move to another scale and drift (1.7 tolerances, found by a
    review); the array's nodata or fill value, where its margin is cheap,
    holds the scale up to its magnitude (_api.ANCHOR_MARGIN_SHARE)."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K as ProgressiveJ2KV3
    field = real("ct693_int16").astype(np.float32)
    field[:40, :40] = -9999.0
    tol = 0.01
    assert np.abs(field[field != -9999.0]).max() > 2**16 * tol   # (the drifting range)
    arrays = [zarr.create(shape=field.shape, chunks=(256, 256), dtype="f4", fill_value=-9999.0,
                          compressor=ProgressiveJ2K(tolerance=tol, nodata=-9999.0), zarr_format=2,
                          store=zarr.storage.MemoryStore())]
    for nodata in (-9999.0, None):   # v3 hands the codec the fill value: it anchors too
        arrays.append(zarr.create_array(zarr.storage.MemoryStore(), shape=field.shape,
                                        chunks=(256, 256), dtype="f4", fill_value=-9999.0,
                                        serializer=ProgressiveJ2KV3(tolerance=tol, nodata=nodata),
                                        compressors=None))
    for z, exact in zip(arrays, (True, True, False)):   # (without nodata: -9999 is data)
        z[:100] = field[:100]
        z[100:] = field[100:]
        back = z[:]
        assert (back[:40, :40] == -9999.0).all() == exact and max_error(back, field) <= tol
    # a chunk whose first write stays below 65536 tolerances and whose
    # second passes it keeps its grid too (1.93 tolerances when the anchor
    # held only beyond it; found by a second review)
    crossing = field[:256, :256].copy()
    crossing[128:] *= 2
    tol = 0.05
    assert np.abs(crossing[:128][crossing[:128] != -9999]).max() < 2**16 * tol \
        < crossing.max()
    z = zarr.create(shape=crossing.shape, chunks=crossing.shape, dtype="f4", fill_value=-9999.0,
                    compressor=ProgressiveJ2K(tolerance=tol, nodata=-9999.0), zarr_format=2,
                    store=zarr.storage.MemoryStore())
    z[:128] = crossing[:128]
    z[128:] = crossing[128:]
    assert max_error(z[:], crossing) <= tol
