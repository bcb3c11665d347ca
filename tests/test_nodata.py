"""Format version 10: samples of the fill value inside a chunk's data are
nodata: coded as a smooth fill from the data around them, restored from a
mask at every level, layer and prefix (docs/FORMAT.md 2 "Nodata" and 6.5;
docs/DESIGN.md 59)."""
import struct
import warnings

import numpy as np
import pytest
import zarr
from zarr.storage import MemoryStore

import progressive_j2k as pj
import spec_decoder
from progressive_j2k import _core, _edges
from progressive_j2k.codec import ProgressiveJ2K as V2Codec
from progressive_j2k.zarr3 import ProgressiveJ2K
from helpers import reseal, with_nodata
from test_golden import all_in_blocks


def bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b, a.dtype)
    return a.view(f"u{a.itemsize}") == b.view(f"u{a.itemsize}")


def nodata_options(fill):
    """How a caller names nodata: nodata= for a finite value, a NaN fill
    value for NaN."""
    return {"fill_value": fill} if np.isnan(fill) else {"nodata": fill}


def test_nodata_is_what_the_caller_names(real):
    """Samples of nodata= are nodata (any NaN, where NaN is the fill value);
    a fill value alone is zarr's padding, never nodata inside the data: a
    bright slide's black pen strokes at zarr's default fill 0 are data."""
    field = real("mr2_uint16")[384:512, 512:640].astype(np.float32)
    masked = with_nodata(field, 60, -999)
    np.testing.assert_array_equal(_edges.nodata_mask(masked, np.float32(-999)), field < 60)
    assert _edges.nodata_mask(field, np.float32(-999)) is None            # (none of it)
    nan = with_nodata(field, 60, np.nan)
    nan[0, 0] = -np.nan   # (other NaN bits than np.nan's: arithmetic makes them)
    expected = (field < 60) | (np.arange(field.size).reshape(field.shape) == 0)
    np.testing.assert_array_equal(_edges.nodata_mask(nan, np.float32("nan")), expected)
    # a colour channel of zeros is colour: nodata only where every channel is
    rgb = np.maximum(real("coffee")[:64, :64], 200)
    rgb[:10] = 0
    rgb[10:20, :, 1] = 0
    mask = _edges.nodata_mask(rgb, np.uint8(0), colour_axis=2)
    assert mask[:10].all() and not mask[10:].any()
    # zarr's fill value alone: no mask
    slide = np.array(real("immunohistochemistry")[:128, :128])
    slide[40, 10:120] = 0                                   # a pen stroke
    enc = pj.encode(slide, fill_value=0, colour_axis=2)
    assert pj.read_header(enc).version < 10
    assert pj.decode(enc, 1)[20].mean() < 0.6 * slide.mean()   # (the stroke, at level 1)
    enc = pj.encode(slide, nodata=0, colour_axis=2)          # named: kept out of the levels
    assert pj.read_header(enc).version == 10
    assert pj.decode(enc, 1)[20].mean() > 0.9 * slide.mean()


@pytest.mark.parametrize("name, crop, below, fill, options", [
    ("mr2_uint16", (slice(384, 640), slice(256, 512)), 60, 65535, {}),
    ("mr2_uint16", (slice(384, 640), slice(256, 512)), 60, -999.0, {"tolerance": 0.5}),
    ("mr2_uint16", (slice(384, 640), slice(256, 512)), 60, np.nan, {"mode": "lossy", "psnr": 50}),
    ("ct693_int16", (slice(0, 160), slice(96, 352)), -900, -32768, {"layers": 3}),
    ("tlrc_float32_3d", (slice(None),) * 3, 3e-4, np.nan, {"tolerance": 1e-6}),
    ("tlrc_float32_3d", (slice(None),) * 3, 3e-4, -1.0, {"mode": "lossy", "ratio": 8,
                                                          "layers": [40, 16]}),
])
def test_nodata_round_trips_and_stays_out_of_every_level(real, name, crop, below, fill, options):
    source = real(name)[crop]
    dtype = np.float32 if isinstance(fill, float) else source.dtype
    arr = with_nodata(source.astype(dtype), below, fill)
    nodata = bits_equal(arr, fill)
    assert 0.05 < nodata.mean() < 0.9
    enc = pj.encode(arr, **nodata_options(fill), **options)
    header = pj.read_header(enc)
    assert header.version == 10 and header.mask_length > 0
    data = ~nodata
    full = pj.decode(enc)
    assert bits_equal(full, fill)[nodata].all()
    if header.reversible:
        np.testing.assert_array_equal(full, arr)
    elif header.mode == "tolerance":
        assert np.abs(full[data].astype(float) - arr[data]).max() <= header.tolerance
    elif "psnr" in options:
        error = np.mean((full[data].astype(float) - arr[data]) ** 2)
        assert 10 * np.log10(float(np.max(arr[data])) ** 2 / error) >= options["psnr"] - 0.5
    lo, hi = float(arr[data].min()), float(arr[data].max())
    blended = pj.decode(pj.encode(np.where(nodata, arr[data].mean(), arr).astype(arr.dtype),
                                  **options))   # (the same data, nothing marked)
    assert blended.shape == full.shape
    for level in range(1, header.levels + 1):
        for layer in range(header.layers):
            prefix = enc[:header.prefix_length(level, layer)]
            decoded = pj.decode(prefix, level, layer=layer)
            np.testing.assert_array_equal(decoded.view(np.uint8),
                                          spec_decoder.decode(enc, level, layer).view(np.uint8)
                                          if arr.size <= 64 * 64 else decoded.view(np.uint8))
            fill_there = bits_equal(decoded, fill)
            np.testing.assert_array_equal(fill_there, all_in_blocks(nodata, header.axes, level))
            # the rest is a low-pass of the data: within its range, give or
            # take the wavelet's overshoot, never pulled to the fill value
            rest = decoded[~fill_there].astype(float)
            assert np.isfinite(rest).all()
            margin = 0.25 * (hi - lo)
            assert lo - margin <= rest.min() and rest.max() <= hi + margin, (level, layer)
    # without the mask, a finite fill value blends into coarse levels: the
    # check above would fail (it can)
    if np.isfinite(fill):
        plain = pj.decode(pj.encode(arr, axes=header.axes, **options), 2)   # (as data, -1
        # would make the volume look like unlike frames: _axes leaves nodata out)
        far = (plain < lo - 0.25 * (hi - lo)) | (plain > hi + 0.25 * (hi - lo))
        ringing = far & ~all_in_blocks(nodata, header.axes, 2)
        assert ringing.any()


def reference_inpaint(data, mask, axes, block_means=False):
    """pj2k_inpaint in numpy, written from its description (float64 values
    at the masked samples): push-pull along axes, linear interpolation at
    cell centres, or with block_means each cell without data its parent's
    value and each with data its data's mean; clipped to the data's range."""
    axes = [a for a in axes if data.shape[a] > 1]

    def halve(v):
        for a in axes:
            if v.shape[a] == 1:
                continue
            if v.shape[a] % 2:
                v = np.pad(v, [(0, 1) if b == a else (0, 0) for b in range(v.ndim)])
            v = v.reshape(v.shape[:a] + (v.shape[a] // 2, 2) + v.shape[a + 1:]).sum(a + 1)
        return v

    def double(v, shape):
        for a in axes:
            n, m = shape[a], v.shape[a]
            if n == m:
                continue
            if block_means:
                v = np.take(v, np.minimum(np.arange(n) // 2, m - 1), a)
                continue
            p = np.arange(n) / 2.0 - 0.25
            lo = np.floor(p).astype(int)
            w = (p - lo).reshape([-1 if b == a else 1 for b in range(v.ndim)])
            v = (np.take(v, np.clip(lo, 0, m - 1), a) * (1 - w)
                 + np.take(v, np.clip(lo + 1, 0, m - 1), a) * w)
        return v

    valid = ~mask
    sums = [np.where(mask, 0.0, data.astype(np.float64))]
    counts = [valid.astype(np.float64)]
    sizes = [np.ones(data.shape)]
    while any(sums[-1].shape[a] > 1 for a in axes):
        sums.append(halve(sums[-1]))
        counts.append(halve(counts[-1]))
        sizes.append(halve(sizes[-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(counts[-1] > 0, sums[-1] / counts[-1], data[valid].mean())
    for level in range(len(sums) - 2, -1, -1):
        up = double(estimate, sums[level].shape)
        if block_means:
            with np.errstate(invalid="ignore", divide="ignore"):
                estimate = np.where(counts[level] > 0, sums[level] / counts[level], up)
        else:
            estimate = (sums[level] + (sizes[level] - counts[level]) * up) / sizes[level]
    return np.clip(estimate[mask], data[valid].min(), data[valid].max())


@pytest.mark.parametrize("name, crop, axes", [
    ("mr2_uint16", (slice(256, 768), slice(256, 768)), (0, 1)),
    ("mr2_uint16", (slice(300, 333), slice(400, 437)), (1,)),
    ("tlrc_float32_3d", (slice(None),) * 3, (0, 1, 2)),
    ("ct693_int16", (slice(0, 84), slice(128, 147)), (0, 1)),
    ("ct693_int16", (slice(140, 141), slice(100, 107)), (0, 1)),   # one row (a fuzz case's)
])
@pytest.mark.parametrize("block_means", [False, True])
def test_the_c_fill_is_the_reference_push_pull(real, name, crop, axes, block_means):
    """The C core's fills (pj2k_inpaint, both styles) against a numpy
    reference of their description, on real data with masks of real
    shapes; odd shapes, one axis, 3-D."""
    arr = real(name)[crop].astype(np.float64)
    mask = arr < np.percentile(arr, 30)
    values = arr.copy().reshape(-1)
    _core.inpaint(values, mask.astype(np.uint8).reshape(-1), arr.shape, axes, block_means)
    filled = values.reshape(arr.shape)
    np.testing.assert_array_equal(filled[~mask], arr[~mask])
    np.testing.assert_allclose(filled[mask], reference_inpaint(arr, mask, axes, block_means),
                               rtol=1e-12, atol=1e-12 * np.abs(arr).max())


def outside(shape, share):
    """The corners of a box outside the ellipsoid that touches its faces
    (``share`` sets its size: the boundary at that normalised radius**2)."""
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - n / 2) / (n / 2)) ** 2 for g, n in zip(grid, shape)) > share


def fill_misfit(decoded, data, mask, level):
    """RMS over the level's cells that hold data and nodata of (the cell's
    decoded value - the mean of its data), in units of the data's spread."""
    sums, counts, size = np.where(mask, 0.0, data.astype(np.float64)), (~mask).astype(float), 1
    for _ in range(level):
        sums, counts = (v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2).sum(axis=(1, 3))
                        for v in (sums, counts))
        size *= 4
    partly = (counts > 0) & (counts < size)
    return np.sqrt(np.mean((decoded[partly] - sums[partly] / counts[partly]) ** 2)) / data[~mask].std()


def test_the_reversible_modes_take_the_smaller_fill(real, monkeypatch):
    """Lossless and tolerance chunks with nodata take the smaller stream of
    two fills: flat block means (a smooth fill's rounding costs bits in
    every masked sample: a CT's and an MR volume's masked corners 10-14%
    smaller, and the partly masked cells of coarse levels nearer their
    data's mean) and the smooth fill (a smooth field in tolerance mode, 8%
    smaller)."""
    fill = _edges.inpaint

    def with_fill(block_means, arr, **options):   # encode() with one fill only
        monkeypatch.setattr(_edges, "inpaint",
                            lambda d, m, a, block_means_=False: fill(d, m, a, block_means))
        try:
            return pj.encode(arr, **options)
        finally:
            monkeypatch.setattr(_edges, "inpaint", fill)

    ct = real("ct693_int16")
    volume = real("mni152_t1_uint8_3d")[60:100]
    field = real("tlrc_float32_3d")
    cases = [(ct, outside(ct.shape, 0.75), 32767, {}, "blocks"),
             (volume, outside(volume.shape, 0.8), 255, {}, "blocks"),
             (field, outside(field.shape, 0.8), -1.0, {"tolerance": 1e-6}, "smooth")]
    for data, mask, nodata, options, smaller in cases:
        arr = np.where(mask, nodata, data).astype(data.dtype)
        options = {**options, "axes": tuple(range(arr.ndim))}   # (no axis judgement)
        chosen = pj.encode(arr, nodata=nodata, **options)
        blocks, smooth = (with_fill(b, arr, nodata=nodata, **options) for b in (True, False))
        assert chosen == min(blocks, smooth, key=len)
        if smaller == "blocks":
            assert len(blocks) < 0.93 * len(smooth)
        else:
            assert len(smooth) < 0.95 * len(blocks)
        decoded = pj.decode(chosen)
        if "tolerance" in options:
            assert np.abs(decoded[~mask] - data[~mask]).max() <= options["tolerance"]
        else:
            np.testing.assert_array_equal(decoded, arr)
    # the block means keep partly masked cells of coarse levels near their data's mean
    arr = np.where(cases[0][1], 32767, ct).astype(ct.dtype)
    for level in (2, 3):
        misfits = [fill_misfit(pj.decode(with_fill(b, arr, nodata=32767), level).astype(float),
                               ct, cases[0][1], level) for b in (True, False)]
        assert misfits[0] < 0.9 * misfits[1], (level, misfits)   # (0.11 against 0.16, 0.27
        # against 0.32)


def test_the_spec_decoder_reads_nodata_masks(real):
    """Small chunks in every mode, levels and layers, against the C decoder
    (the golden files hold four more)."""
    cases = [(real("mr2_uint16")[400:448, 300:340].astype(np.float32), 60, -999.0,
              {"tolerance": 0.5}),
             (real("mr2_uint16")[400:448, 300:340], 60, 65535, {"layers": 2}),
             (real("ct693_int16")[0:84, 128:147].reshape(4, 21, 19), -900, -32768,
              {"mode": "lossy", "step": 8.0, "axes": (1, 2)}),
             (real("tlrc_float32_3d")[10:30, 12:30, 10:26], 4e-4, np.nan, {"tolerance": 1e-6})]
    for source, below, fill, options in cases:
        arr = with_nodata(source, below, fill)
        enc = pj.encode(arr, **nodata_options(fill), **options)
        header = pj.read_header(enc)
        assert header.version == 10
        for level in range(header.levels + 1):
            for layer in range(header.layers):
                np.testing.assert_array_equal(
                    pj.decode(enc, level, layer=layer).view(np.uint8),
                    spec_decoder.decode(enc, level, layer).view(np.uint8))


def test_nodata_costs_less_than_coding_the_fill_value(real):
    """The mask and the smooth fill against coding a far fill value as data:
    fewer bytes in the reversible modes, where the jump around every nodata
    region is paid for exactly."""
    arr = with_nodata(real("mr2_uint16")[256:768, 256:768].astype(np.float32), 60, -999)
    for options in ({"tolerance": 0.5}, {"tolerance": 5}):
        masked = pj.encode(arr, nodata=-999, **options)
        plain = pj.encode(arr, **options)
        assert pj.read_header(masked).version == 10
        assert len(masked) < 0.9 * len(plain), options


def test_nodata_through_zarr_and_the_numcodecs_codec(real, tmp_path):
    """The zarr v3 codec takes the array's fill value; the numcodecs codec
    (zarr v2) its nodata option.  Levels keep nodata out of the data."""
    field = with_nodata(real("mr2_uint16")[256:640, 256:600].astype(np.float32), 60, -999)
    z = zarr.create_array(MemoryStore(), shape=field.shape, chunks=(128, 128), dtype=field.dtype,
                          serializer=ProgressiveJ2K(tolerance=0.5, nodata=-999),
                          compressors=None, fill_value=-999)
    z[:] = field
    back = z[:]
    nodata = field == -999
    assert (back[nodata] == -999).all() and np.abs(back[~nodata] - field[~nodata]).max() <= 0.5
    level = pj.open_multiscale(z)[2][:]
    valid = level[level != -999]
    assert valid.min() > 0.5 * field[~nodata].min() - 10
    codec = V2Codec(tolerance=0.5, nodata=-999)
    chunk = np.ascontiguousarray(field[:128, :128])
    enc = codec.encode(chunk)
    assert pj.read_header(enc).version == 10
    assert (codec.decode(enc).reshape(chunk.shape)[chunk == -999] == -999).all()
    # (a NaN nodata: its message said NaN is nodata where it is the fill
    # value, which this codec never sees)
    with pytest.raises(ValueError, match="the numcodecs codec, which never sees the fill value, "
                                         "needs a finite nodata"):
        V2Codec(tolerance=0.5, nodata=np.nan)


def test_forged_nodata_masks_are_refused(real):
    arr = with_nodata(real("mr2_uint16")[400:448, 300:340], 60, 65535)
    enc = pj.encode(arr, nodata=65535)
    header = pj.read_header(enc)
    assert header.version == 10
    at = header.header_length - 4 - 12 * (header.levels + 1) - 8   # the mask length field
    assert struct.unpack_from("<Q", enc, at)[0] == header.mask_length
    for length in (0, header.piece_ends[0][0] - header.header_length + 1, 2**63):
        forged = bytearray(enc)
        struct.pack_into("<Q", forged, at, length)
        with pytest.raises(pj.DecodeError):
            pj.decode(reseal(bytes(forged), header.levels))
    # a damaged mask: the first piece's checksum covers it
    damaged = bytearray(enc)
    damaged[header.header_length + 1] ^= 0x20
    with pytest.raises(pj.DecodeError, match="checksum"):
        pj.decode(bytes(damaged))
    # resealed, it decodes to other nodata or is refused: never a crash
    outcomes = set()
    for i in range(header.mask_length):
        for flip in (0x01, 0x80):
            forged = bytearray(enc)
            forged[header.header_length + i] ^= flip
            try:
                out = pj.decode(reseal(bytes(forged), header.levels), 1)
                outcomes.add("decoded")
                assert out.shape == header.level_shape(1)
            except pj.DecodeError:
                outcomes.add("refused")
    assert "refused" in outcomes
    # the encoder refuses a mask without a fill field or without nodata
    flat = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    with pytest.raises(ValueError):
        _core.Prepared(flat, 2, arr.shape, (0, 1), -1, 2, 4, 0.0, 0.0, -1, False, (), b"",
                       np.zeros(arr.size, np.uint8))
    with pytest.raises(ValueError):
        _core.Prepared(flat, 2, arr.shape, (0, 1), -1, 2, 4, 0.0, 0.0, -1, False, arr.shape,
                       b"\xff\xff", np.zeros(arr.size, np.uint8))


def test_targets_count_nodata_in_the_rate_and_not_in_the_psnr(real):
    """Nodata samples are the array's: a ratio's budget counts them.  They
    decode exactly: a PSNR target is the data's."""
    arr = with_nodata(real("mr2_uint16")[256:768, 256:768].astype(np.float32), 60, -999)
    data = arr != -999
    enc = pj.encode(arr, nodata=-999, mode="lossy", ratio=20)
    assert pj.read_header(enc).version == 10
    assert 20 / 1.05 <= arr.nbytes / len(enc) <= 20 * 1.05
    for target in (40, 50):
        decoded = pj.decode(pj.encode(arr, nodata=-999, mode="lossy", psnr=target))
        error = np.mean((decoded[data].astype(float) - arr[data]) ** 2)
        peak = float(arr[data].max() - arr[data].min())
        assert target - 0.5 <= 10 * np.log10(peak ** 2 / error) <= target + 1.5, target


def test_to_zarr_pads_edge_chunks_from_the_data_around_nodata(real, tmp_path):
    """to_zarr completes edge chunks from their data; with nodata= it
    leaves the nodata out of that padding (it took -999 into its mean or
    held edge), and the codec keeps it out of coarse levels."""
    field = with_nodata(real("mr2_uint16")[256:556, 256:556].astype(np.float32), 60, -999)
    data = field != -999
    assert not data[-1].all() and not data[:, -1].all()   # (nodata reaches the edges)
    z = pj.to_zarr(field, str(tmp_path / "f.zarr"), chunks=(128, 128), tolerance=0.5,
                   nodata=-999.0)
    back = z[:]
    assert (back[~data] == -999).all() and np.abs(back[data] - field[data]).max() <= 0.5
    for level in (1, 2):
        decoded = pj.open_multiscale(z)[level][:]
        rest = decoded[decoded != -999]
        assert rest.min() >= 0 and rest.max() <= 1.25 * field[data].max(), level


def test_to_zarr_keeps_nodata_at_an_edge_out_of_coarse_levels(real, tmp_path):
    """An edge chunk whose last rows within the array are nodata (a
    field's masked pole): to_zarr pads it with nodata, so a coarse level's
    sample whose block within the array is nodata reads as nodata (padded
    with a continuation of the data, level 3's last row read ~280, made
    up); an array enlarged later reads nodata in the part uncovered."""
    field = real("mr2_uint16")[300:400, 300:400].astype(np.float32)
    field[90:] = np.nan
    for options in ({"tolerance": 0.5}, {"mode": "lossy", "ratio": 8}):
        z = pj.to_zarr(field, str(tmp_path / f"{len(options)}.zarr"), chunks=(64, 64),
                       nodata=-999.0, **options)
        back = z[:]
        assert (back[90:] == -999).all() and (back[:90] != -999).all()
        for level in (1, 2, 3):
            decoded = pj.open_multiscale(z)[level][:]
            first = -(-90 // 2 ** level)   # the first row whose block is all nodata
            assert (decoded[first:] == -999).all() and (decoded[:first] != -999).all(), level
        z.resize((128, 128))
        assert (z[100:, :] == -999).all() and (z[:, 100:] == -999).all()


def test_to_zarr_scales_the_targets_of_edge_chunks_padded_with_nodata_once(real, tmp_path):
    """Edge chunks padded with nodata have their targets scaled by the
    codec, which sees that padding, and not by to_zarr too (scaled twice,
    a ratio of 10 came out 14.7:1 on a 3-D field)."""
    field = real("tlrc_float32_3d") * 1e4
    z = pj.to_zarr(field, str(tmp_path / "f.zarr"), chunks=(32, 32, 32), nodata=-9999.0,
                   mode="lossy", ratio=10)
    stored = sum(f.stat().st_size for f in (tmp_path / "f.zarr" / "c").rglob("*") if f.is_file())
    assert 9.5 <= field.nbytes / stored <= 10.5
    assert np.sqrt(np.mean((z[:] - field) ** 2)) < 0.05 * field.std()
    # small edge chunks with a quality layer: no chunk far over a whole
    # one's budget, the one with nodata by its mask (the codec's floor of two
    # layered streams took 64 x 64 chunks at 10:1 to 530-917 bytes, not 410)
    camera = real("camera")[:200, :170].copy()
    camera[camera == 0] = 1
    camera[20:40, 20:40] = 0
    pj.to_zarr(camera, str(tmp_path / "c.zarr"), chunks=(64, 64), nodata=0, ratio=10, layers=[40])
    sizes = [f.stat().st_size for f in (tmp_path / "c.zarr" / "c").rglob("*") if f.is_file()]
    assert len(sizes) == 12 and max(sizes) <= 1.2 * 64 * 64 / 10, sizes


def test_levels_in_xarray_mask_nodata_as_xarray_does(real, tmp_path):
    """Level.to_xarray masks nodata as xarray.open_zarr does: a float
    level reads NaN there (it read -999, so a half-masked 280 K field's
    level 1 averaged -359.5 and decode_cf could not mend it), an integer
    level keeps the value as its _FillValue attribute for decode_cf."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("dask.array")
    field = real("mr2_uint16")[256:384, 256:384].astype(np.float32)
    field[:, 64:] = np.nan
    z = pj.to_zarr(field, str(tmp_path / "f.zarr"), tolerance=0.5, nodata=-999.0)
    for level in (0, 1, 2):
        view = pj.open_multiscale(z)[level].to_xarray()
        stored = pj.open_multiscale(z)[level][:]
        np.testing.assert_array_equal(np.isnan(view.values), stored == -999)
        assert np.isnan(view.values[:, 64 >> level:]).all() and view.dtype == np.float32
        assert view.encoding["_FillValue"] == -999 and "_FillValue" not in view.attrs
        assert float(view.mean()) == pytest.approx(float(stored[stored != -999].mean()), rel=1e-6)
    # a level written back: its NaN as the nodata its encoding records (to_zarr
    # refused the NaN part-way, after overwrite=True had deleted the old array)
    again = pj.to_zarr(view, str(tmp_path / "again.zarr"), tolerance=0.5, chunks=(16, 16))
    np.testing.assert_array_equal(again[:] == -999, np.isnan(view.values))
    assert pj.open_multiscale(again)[1].to_xarray().encoding["_FillValue"] == -999
    counts = np.where(np.isnan(field), -999, np.nan_to_num(field)).astype(np.int16)
    z = pj.to_zarr(counts, str(tmp_path / "i.zarr"), nodata=-999)
    view = pj.open_multiscale(z)[1].to_xarray()
    assert view.attrs["_FillValue"] == -999 and view.dtype == np.int16
    decoded = xr.decode_cf(view.to_dataset(name="t"))["t"].values
    np.testing.assert_array_equal(np.isnan(decoded), view.values == -999)


def test_to_zarr_keeps_nan_as_the_fill_value(real, tmp_path):
    """to_zarr(fill_value=NaN), xarray's default for floats: the data's
    NaN cells are nodata, decoded as NaN exactly, out of coarse levels, and
    edge chunks are completed from the data around them (padded with 0,
    NaN's stand-in, level 1's last rows were up to 92-96 off the data's
    block means, against 50-56)."""
    field = real("mr2_uint16")[300:600, 300:600].astype(np.float32)
    y, x = np.mgrid[:300, :300]
    field[(y - 280) ** 2 + (x - 150) ** 2 < 40 ** 2] = np.nan   # (in the edge chunks)
    data = ~np.isnan(field)
    for options in ({"tolerance": 0.5}, {"mode": "lossy", "psnr": 60}):
        z = pj.to_zarr(field, str(tmp_path / f"{len(options)}.zarr"), chunks=(128, 128),
                       fill_value=np.nan, **options)
        assert np.isnan(z.fill_value)
        back = z[:]
        np.testing.assert_array_equal(np.isnan(back), ~data)
        error = np.abs(back[data] - field[data])
        assert error.max() <= 0.5 if "tolerance" in options else error.mean() < 1.5, options
        level = pj.open_multiscale(z)[1][:]
        pairs = field.reshape(150, 2, 150, 2)
        with np.errstate(invalid="ignore"):   # (block means of the data: NaN where none)
            means = np.nansum(pairs, axis=(1, 3)) / (~np.isnan(pairs)).sum(axis=(1, 3))
        np.testing.assert_array_equal(np.isnan(level), np.isnan(means))   # (whole blocks)
        assert np.nanmax(np.abs(level - means)[-2:]) < 70, options


def test_a_chunk_of_nothing_but_nodata_decodes_as_it_at_every_level(real):
    """zarr writes empty chunks too (write_empty_chunks=True): all NaN with
    a NaN fill value, all nodata in a lossy mode; a full mask, any values
    coded under it."""
    for arr, options in ((np.full((48, 40), np.nan, np.float32), {"fill_value": np.nan,
                                                                   "tolerance": 0.1}),
                         (np.full((48, 40), -999.0, np.float32), {"nodata": -999, "mode": "lossy",
                                                                   "psnr": 40}),
                         (np.full((8, 20, 18), 65535, np.uint16), {"nodata": 65535})):
        enc = pj.encode(arr, **options)
        header = pj.read_header(enc)
        assert header.version == 10
        for level in range(header.levels + 1):
            assert bits_equal(pj.decode(enc, level), arr.reshape(-1)[0]).all()


def test_nodata_apart_from_the_fill_value_and_in_trailing_slices(real):
    """nodata= and a fill value that differ: NaN samples (xarray's fill
    value) are nodata too, decoded as nodata; a chunk without nodata pads
    with the fill value as before.  Named nodata in a chunk's trailing
    slices is padding restored exactly, however like the data's edge it is.
    A ratio target leaves the data room beside a costly mask."""
    field = real("mr2_uint16")[256:556, 256:556].astype(np.float32)
    nan = np.where(field < 60, np.nan, field).astype(np.float32)
    # (said as it happens: a reader masking the NaN fill value reads -999 as data)
    with pytest.warns(UserWarning, match="NaN samples, the fill value's, are coded as "
                                         "nodata=-999 and decode as -999"):
        enc = pj.encode(nan, fill_value=np.nan, nodata=-999, tolerance=0.05)
    decoded, data = pj.decode(enc), ~np.isnan(nan)
    assert (decoded[~data] == -999).all() and np.abs(decoded[data] - nan[data]).max() <= 0.05
    with warnings.catch_warnings():   # (no NaN inside the data: nothing to say)
        warnings.simplefilter("error")
        pj.encode(field, fill_value=np.nan, nodata=-999, tolerance=0.05)
    clean = np.ascontiguousarray(field[150:, 150:])
    padded = np.zeros((160, 160), np.float32)
    padded[:150, :150] = clean
    assert pj.read_header(pj.encode(padded, fill_value=0, nodata=-999, tolerance=0.05)).version == 9
    image = np.array(real("camera")[:128, :128])
    image[:, 112:] = 0
    enc = pj.encode(image, nodata=0, mode="lossy", psnr=35)
    assert pj.read_header(enc).fill_extent == (128, 112)
    assert (pj.decode(enc)[:, 112:] == 0).all() and (pj.decode(enc, 2)[:, 28:] == 0).all()
    moon = (80 + real("moon")[200:256, 200:288] // 4).astype(np.uint8)
    moon[np.random.default_rng(1).random(moon.shape) < 0.05] = 0
    data = moon != 0
    decoded = pj.decode(pj.encode(moon, nodata=0, ratio=20, levels=1))
    assert np.sqrt(np.mean((decoded[data].astype(float) - moon[data]) ** 2)) < 5
