"""Quality layers: a shorter prefix of a resolution gives a lower-quality
decode of it; all layers together give exactly the single-layer result."""
import json
import math

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import ProgressiveJ2K, _api, _dtypes, _options
from progressive_j2k._layers import (LayerEstimate, LayerPlan, LayerPsnrEstimate, Thresholds,
                                     choose_shifts, cumulative_layer_bytes)
from progressive_j2k._metrics import psnr
from progressive_j2k.errors import DecodeError, TruncatedError

from helpers import check_config, reseal


def mse(a, b):
    return float(np.mean((a.astype(np.float64) - b) ** 2))


def colour(arr):
    return {"colour_axis": -1} if arr.ndim == 3 and arr.shape[-1] == 3 else {}


@pytest.mark.parametrize("name, layers", [
    ("camera", 4), ("astronaut", [60, 20]), ("mr2_uint16", 3), ("ct693_int16", [40, 10, 5]),
    ("anatomical_int16_3d", 3), ("coins", 16)])
def test_lossless_with_layers_is_bit_exact_and_refines(real, name, layers):
    arr = real(name)
    if arr.ndim == 3 and arr.shape[-1] != 3:
        arr = arr[:40]
    enc = pj.encode(arr, layers=layers, **colour(arr))
    header = pj.read_header(enc)
    assert header.version == pj._core.FORMAT_VERSION_COMPAT   # (lossless: version 7)
    assert header.layers == _options.layer_count({"layers": layers})
    np.testing.assert_array_equal(pj.decode(enc), arr)
    errors = [mse(pj.decode(enc, layer=j), arr) for j in range(header.layers)]
    assert errors[-1] == 0
    assert all(a >= b for a, b in zip(errors, errors[1:])), errors
    assert errors[0] > errors[-2] or header.layers == 2


@pytest.mark.parametrize("options", [
    {"reversible": False, "step": 4.0}, {"reversible": False, "step": 3.0, "rdo": True},
    {"tolerance": 2.0}])
def test_all_layers_decode_exactly_like_the_single_layer_stream(real, options):
    arr = real("astronaut")[100:300, 50:350]
    single = pj.encode(arr, colour_axis=-1, **options)
    layered = pj.encode(arr, colour_axis=-1, layers=3, **options)
    assert pj.read_header(single).layers == 1
    for level in range(pj.read_header(single).levels + 1):
        np.testing.assert_array_equal(pj.decode(layered, level=level),
                                      pj.decode(single, level=level))


def test_every_level_and_layer_decodes_from_its_prefix(real):
    arr = real("moon")[:200, :260]
    enc = pj.encode(arr, layers=[50, 15], levels=4)
    header = pj.read_header(enc)
    ends = [e for per_resolution in header.piece_ends for e in per_resolution]
    assert ends == sorted(ends) and ends[-1] == len(enc) == header.nbytes
    assert header.segment_ends == tuple(r[-1] for r in header.piece_ends)
    for level in range(header.levels + 1):
        previous = np.inf
        for layer in range(header.layers):
            n = header.prefix_length(level, layer)
            dec = pj.decode(enc[:n], level=level, layer=layer)
            np.testing.assert_array_equal(dec, pj.decode(enc, level=level, layer=layer))
            with pytest.raises(TruncatedError):
                pj.decode(enc[: n - 1], level=level, layer=layer)
            reference = pj.decode(pj.encode(arr, levels=4), level=level)   # exact low-pass
            error = mse(dec, reference)
            assert error <= previous
            previous = error
        assert previous == 0   # all layers: the exact level
    assert header.prefix_length(0, 0) < header.prefix_length(0, 1) < header.prefix_length(0)


def test_header_length_is_known_from_the_options(real):
    arr = real("camera")[:64, :96]
    for layers, mode in [(2, {}), ([30, 10], {"reversible": False}), (5, {"tolerance": 1})]:
        opts = _options.normalise_options(layers=layers, **mode)
        enc = pj.encode(arr, **opts)
        header = pj.read_header(enc)
        mode_name = header.mode
        assert header.header_length == _api.header_length(2, 2, header.levels, mode_name,
                                                           _options.layer_count(opts))
    assert pj.MAX_HEADER_BYTES == _api.header_length(32, 3, 10, "lossy", 16,
                                                     version=pj._core.FORMAT_VERSION)


def test_ratio_targets_place_layers_near_the_requested_sizes(real):
    for name in ("camera", "astronaut", "mr2_uint16"):
        arr = real(name)
        enc = pj.encode(arr, layers=[40, 20], **colour(arr))
        header = pj.read_header(enc)
        sizes = cumulative_layer_bytes(header)
        achieved = [arr.nbytes / s for s in sizes[:2]]
        for got, want in zip(achieved, [40, 20]):
            assert want / 1.3 <= got <= want * 1.3, (name, achieved)


@pytest.mark.parametrize("name, ratio, layers", [
    ("camera", 40, 4), ("moon", 40, 4), ("astronaut", 20, [80, 40]), ("ct693_int16", 20, [80, 40]),
    ("coins", 30, [120, 60]), ("anatomical_int16_3d", 10, [80, 40, 20]),
    ("mni152_t1_uint8_3d", 30, [120, 60])])
def test_ratio_target_with_layers_is_met_within_5_percent(real, name, ratio, layers):
    arr = real(name)
    if name.startswith("mni152"):
        arr = np.ascontiguousarray(arr[60:124, 60:124, 60:124])
    enc = pj.encode(arr, reversible=False, ratio=ratio, layers=layers)
    header = pj.read_header(enc)
    assert header.layers == _options.layer_count({"layers": layers})
    assert abs(arr.nbytes / len(enc) / ratio - 1) <= 0.05, arr.nbytes / len(enc)
    if isinstance(layers, list):   # the search again with layers keeps their sizes
        achieved = [arr.nbytes / n for n in cumulative_layer_bytes(header)[:-1]]
        assert all(t / 1.3 <= a <= t * 1.3 for a, t in zip(achieved, layers)), achieved


@pytest.mark.parametrize("arr, options", [
    ("camera", {"ratio": 1.05}),                                  # near lossless
    (np.full((64, 64), 100, np.uint8), {"psnr": 40})])            # a flat chunk near its floor
def test_near_lossless_targets_with_layers_get_the_lossless_layered_stream(real, arr, options):
    """Where the lossless stream serves the target at least as well, a
    layered chunk gets it too (the floor to compare with is the layered
    stream's: its header and flushes grow with the layers)."""
    arr = real(arr) if isinstance(arr, str) else arr
    enc = pj.encode(arr, reversible=False, layers=3, **options)
    header = pj.read_header(enc)
    single = pj.encode(arr, reversible=False, **options)
    assert header.mode == "lossless" and header.layers == 3
    assert pj.read_header(single).mode == "lossless"
    np.testing.assert_array_equal(pj.decode(enc), arr)


@pytest.mark.parametrize("layers", [["a"], [None], [[1, 2]], {"a": 1}, "3"])
def test_bad_layer_specs_name_the_option(layers):
    with pytest.raises(TypeError, match="layers must be a count or a list of numbers"):
        ProgressiveJ2K(layers=layers)


def test_layer_plan_keeps_its_cuts_when_the_step_changes():
    th = Thresholds((64, 64), 3, weighted=False, max_shift=30)
    plan = LayerPlan(th, [6.2, 4.66, 4.64])
    tables = plan.tables()
    assert all(a != b for a, b in zip(tables, tables[1:])) and tables[-1] == (0,) * 10
    # a step half as large: every band's values one bit plane higher; twice
    # as large: one lower, down to 0
    assert plan.tables(1)[:-1] == tuple(tuple(s + 1 for s in t) for t in tables[:-1])
    assert plan.tables(-5)[:-1] == tuple(tuple(max(s - 5, 0) for s in t) for t in tables[:-1])
    with pytest.raises(TypeError):
        plan.tables(0.5)   # whole planes only: bands keep their order
    # thresholds with the same table are pushed one band step apart
    assert th.shifts(4.64) == th.shifts(4.63)
    pushed = LayerPlan(th, [4.64, 4.63]).tables()
    assert pushed[0] != pushed[1] and all(a >= b for a, b in zip(pushed[0], pushed[1]))


def _estimate_at(arr, step, axes=(0, 1), levels=6):
    """A Prepared chunk (lossy, plain quantiser) and its LayerEstimate at `step`."""
    colour_axis = 2 if arr.ndim == 3 else -1
    prepared = pj._core.Prepared(arr.reshape(-1).view(np.uint8), _dtypes.DTYPE_CODES[arr.dtype],
                                 arr.shape, axes, colour_axis, levels, 1, step, 0.0, 0)
    counts = np.zeros((_api.band_count(levels, len(axes)), pj._rate.HISTOGRAM_BINS), np.uint64)
    model = pj._rate.RateModel(counts, prepared.histogram(counts), 0)
    single = prepared.encode(step, (), 0.0)
    coded = len(single) - pj.read_header(single).header_length
    return prepared, LayerEstimate(model, step, 60, coded, pieces=levels + 1)


@pytest.mark.parametrize("name, ratios", [
    ("camera", [100, 40]), ("astronaut", [150, 60, 30]), ("mr2_uint16", [100, 40]),
    ("ct693_int16", [80, 30])])
def test_layer_estimate_matches_the_real_layer_sizes(real, name, ratios):
    # layers placed from the rate model's per-band bits (scaled to the
    # single-layer stream), against the real layers of that plan's stream
    arr = real(name)
    step = 6.0
    prepared, estimate = _estimate_at(arr, step)

    def no_probe(*args):
        raise AssertionError("a probe encode")

    plan = choose_shifts(no_probe, no_probe, arr, ratios, "ratio", arr.shape[:2], 6, False,
                         math.log2(np.abs(arr).max() / step + 1), 60, estimate=estimate)
    tables = plan.tables()
    layered = pj.read_header(prepared.encode(step, tables, 0.0))
    real_bytes = np.array(cumulative_layer_bytes(layered), np.float64)
    estimated = [float(np.exp(estimate(np.array([t]), j + 1))[0]) for j, t in enumerate(tables)]
    ratio = real_bytes / estimated
    assert np.all(np.abs(np.log(ratio)) < np.log(1.15)), ratio
    achieved = arr.nbytes / real_bytes[:-1]
    assert np.all(np.abs(np.log(achieved / ratios)) < np.log(1.3)), achieved


def test_sized_lossy_layers_are_placed_by_the_estimate(real):
    arr = real("moon")
    enc = pj.encode(arr, reversible=False, step=5.0, layers=[60, 25])
    _, estimate = _estimate_at(arr, 5.0)
    plan = choose_shifts(None, None, arr, [60, 25], "ratio", arr.shape, 6, False,
                         math.log2(arr.max() / 5.0 + 1), 60, estimate=estimate)
    assert pj.read_header(enc).layer_shifts == plan.tables()


@pytest.mark.parametrize("name, targets", [
    ("camera", [30, 35, 40]), ("astronaut", [32, 37]), ("mr2_uint16", [78, 85]),
    ("coins", [30, 35, 40])])
def test_layer_psnr_estimate_matches_real_decodes(real, name, targets):
    """PSNR layers of 9/7 chunks are placed by the rate model's per-band
    errors (only the finest resolution is cut for a full-resolution reader),
    offset to the real single-layer PSNR: no probe encodes, and each
    layer's real PSNR within 0.5 dB of its estimate."""
    arr = real(name)
    step = 4.0
    prepared, _ = _estimate_at(arr, step)
    single = prepared.encode(step, (), 0.0)
    final = psnr(pj.decode(single), arr)
    counts = np.zeros((19, pj._rate.HISTOGRAM_BINS), np.uint64)
    model = pj._rate.RateModel(counts, prepared.histogram(counts), 0)
    estimate = LayerPsnrEstimate(model, step, 60, 3, final)

    def no_probe(*args):
        raise AssertionError("a probe encode")

    plan = choose_shifts(no_probe, no_probe, arr, targets, "psnr", arr.shape[:2], 6, False,
                         math.log2(np.abs(arr).max() / step + 1), 60, estimate=estimate)
    tables = plan.tables()
    layered = prepared.encode(step, tables, 0.0)
    for j, table in enumerate(tables):
        got = psnr(pj.decode(layered, layer=j), arr)
        assert abs(got - float(estimate(np.array([table]))[0])) <= 0.5, (j, got)


@pytest.mark.parametrize("name, finest", [("camera", 3), ("astronaut", 3),
                                           ("anatomical_int16_3d", 7)])
def test_encode_places_lossy_psnr_layers_by_the_estimate(real, name, finest, monkeypatch):
    """encode() hands choose_shifts a LayerPsnrEstimate that cuts only the
    finest level's bands (2**naxes - 1 of them) for lossy PSNR layers."""
    from progressive_j2k import _layers
    seen = []
    original = _layers.choose_shifts

    def spy(*args, estimate=None, **kwargs):
        seen.append(estimate)
        return original(*args, estimate=estimate, **kwargs)

    monkeypatch.setattr(_layers, "choose_shifts", spy)
    arr = real(name)
    pj.encode(arr, reversible=False, step=4.0, layers=[30, 35], layer_metric="psnr")
    (estimate,) = seen
    assert isinstance(estimate, LayerPsnrEstimate)
    assert int((~estimate.coarser).sum()) == finest and not estimate.coarser[-finest:].any()


def test_unreachable_ratio_with_layers_is_not_searched_again(real, monkeypatch):
    """Where no step meets the ratio, the search with layers is skipped: the
    same searches run as without layers."""
    from progressive_j2k import _rate
    calls = []
    original = _rate.encode_to_ratio

    def counting(*args, **kwargs):
        calls.append(kwargs.get("seed") is not None)
        return original(*args, **kwargs)

    monkeypatch.setattr(_rate, "encode_to_ratio", counting)
    arr = real("camera")[:64, :64]
    pj.encode(arr, reversible=False, ratio=3000)
    plain = list(calls)
    calls.clear()
    pj.encode(arr, reversible=False, ratio=3000, layers=3)
    assert calls == plain and not any(calls)


def test_psnr_targets_place_layers_near_the_requested_quality(real):
    arr = real("camera")
    enc = pj.encode(arr, reversible=False, psnr=48, layers=[32, 40], layer_metric="psnr")
    got = [psnr(pj.decode(enc, layer=j), arr) for j in range(3)]
    assert abs(got[0] - 32) <= 1.5 and abs(got[1] - 40) <= 1.5, got
    assert 48 <= got[2] <= 48.5


def test_layer_count_is_exact_even_when_targets_coincide():
    arr = (np.arange(64 * 64) % 7).astype(np.uint8).reshape(64, 64)
    enc = pj.encode(arr, layers=[1000, 999, 998])
    header = pj.read_header(enc)
    assert header.layers == 4
    np.testing.assert_array_equal(pj.decode(enc), arr)


def test_flat_and_empty_chunks_with_layers():
    for arr in (np.full((33, 17), 200, np.uint8), np.zeros((0, 5), np.uint16)):
        for layers in (3, [10.0, 5.0]):
            enc = pj.encode(arr, layers=layers)
            assert pj.read_header(enc).layers == 3
            for j in range(3):
                dec = pj.decode(enc, layer=j)
                assert dec.shape == arr.shape
            np.testing.assert_array_equal(pj.decode(enc), arr)


@pytest.mark.parametrize("levels", [0, 1, 2, 3, None])
def test_flat_chunks_keep_their_low_band_whole_in_layers(levels):
    """A flat chunk (one value, one per colour component, or one value with
    a pixel off or noise below the step) keeps its low band whole in every
    layer: refined, its values' lower bits went raw, and four layers made a
    512 x 512 chunk of one value 49,542 bytes against 101 without layers
    (levels=1; 12,378 against 165 for 1000 x 1000 at levels=3; one pixel
    off: 164,278 against 86 at levels=0).  All layers decode as the
    single-layer stream does, and every layer of a constant chunk."""
    rng = np.random.default_rng(5)
    speck = np.full((512, 512), 200, np.uint8)
    speck[100, 100] = 201
    cases = [(np.full((512, 512), 200, np.uint8), {}), (np.full((1000, 1000), 200, np.uint8), {}),
             (speck, {}), (np.full((300, 300, 3), (10, 200, 30), np.uint8), {}),
             (np.full((128, 200), 40000, np.uint16), {"ratio": 20}),
             ((30000 + rng.integers(0, 3, (256, 256))).astype(np.uint16), {"step": 16.0}),
             (np.full((200, 200), 3.5, np.float32), {"tolerance": 0.01}),
             ((3.5 + rng.normal(0, 1e-5, (200, 200))).astype(np.float32), {"tolerance": 0.01})]
    for arr, options in cases:
        single = pj.encode(arr, levels=levels, **options)
        layered = pj.encode(arr, levels=levels, layers=4, **options)
        assert pj.read_header(layered).layers == 4
        assert len(layered) <= len(single) + 64 * (pj.read_header(layered).levels + 1) * 4, \
            (arr.shape, options, len(single), len(layered))
        np.testing.assert_array_equal(pj.decode(layered), pj.decode(single))
        if arr.min() == arr.max():   # (a constant low band, whole: every layer exact)
            for j in range(3):
                np.testing.assert_array_equal(pj.decode(layered, layer=j), pj.decode(single))


def test_error_bound_holds_with_layers_on_real_floats(real):
    field = real("tlrc_float32_3d")
    tol = 1e-3 * float(field.max() - field.min())
    enc = pj.encode(field, tolerance=tol, layers=[200, 50])
    assert np.abs(pj.decode(enc).astype(np.float64) - field).max() <= tol
    errors = [mse(pj.decode(enc, layer=j), field) for j in range(3)]
    assert errors[0] > errors[1] > errors[2]


def test_partial_layers_stay_in_the_dtype_range(real):
    arr = real("ct693_int16")
    enc = pj.encode(arr, layers=4)
    for j in range(4):
        dec = pj.decode(enc, layer=j)
        assert dec.dtype == arr.dtype
        assert psnr(dec, arr) > 40   # no wrap-around at the dtype's ends


@pytest.mark.parametrize("bad", [0, 17, [20, 40], [0.5], [], [np.nan], "4", [10] * 16])
def test_bad_layer_options_are_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        pj.encode(np.zeros((8, 8), np.uint8), layers=bad)


def test_bad_layer_metric_and_psnr_order_are_refused():
    with pytest.raises(ValueError, match="layer_metric"):
        ProgressiveJ2K(layers=[20], layer_metric="ssim")
    with pytest.raises(ValueError, match="non-decreasing"):
        ProgressiveJ2K(reversible=False, layers=[40, 30], layer_metric="psnr")


def test_layer_argument_is_checked(real):
    arr = real("camera")[:32, :32]
    enc = pj.encode(arr, layers=2)
    with pytest.raises(ValueError, match="layer"):
        pj.decode(enc, layer=2)
    with pytest.raises(ValueError, match="layer"):
        pj.decode(pj.encode(arr), layer=1)
    np.testing.assert_array_equal(pj.decode(pj.encode(arr), layer=0), arr)


def _with_shift(enc: bytes, layer: int, band: int, value: int) -> bytes:
    header = pj.read_header(enc)
    at = 16 + 8 * len(header.shape) + len(header.axes) + 1 + layer * len(header.layer_shifts[0]) + band
    forged = bytearray(enc)
    forged[at] = value
    return reseal(bytes(forged), header.levels, header.layers)


def test_forged_layer_tables_are_rejected(real):
    enc = pj.encode(real("camera")[:64, :64], layers=3)
    header = pj.read_header(enc)
    finest = len(header.layer_shifts[0]) - 1
    assert header.layer_shifts[0][finest] > 0
    for layer, value in [(2, 1),                                   # last layer not exact
                         (1, header.layer_shifts[0][finest] + 1),  # a shift that grows
                         (0, 200)]:                                # beyond any exponent
        with pytest.raises(DecodeError):
            pj.read_header(_with_shift(enc, layer, finest, value))
    pj.read_header(_with_shift(enc, 0, finest, header.layer_shifts[0][finest]))  # unchanged: fine
    forged = bytearray(enc)
    forged[16 + 8 * 2 + 2] = 1                                     # layer count 1, table for more
    with pytest.raises(DecodeError):
        pj.read_header(reseal(bytes(forged), header.levels, header.layers))


def test_codecs_carry_layers_through_their_config(real, tmp_path):
    import zarr
    from progressive_j2k.zarr3 import ProgressiveJ2K as V3

    codec = ProgressiveJ2K(layers=[40, 10])
    config = codec.get_config()
    assert json.loads(json.dumps(config))["layers"] == [40.0, 10.0]
    assert check_config(codec).get_config() == config
    arr = real("camera")[:256, :256]
    np.testing.assert_array_equal(codec.decode(codec.encode(arr)), arr)

    for name, serializer in (("l.zarr", V3(layers=3)), ("s.zarr", V3())):
        z = zarr.create_array(str(tmp_path / name), shape=arr.shape, chunks=(128, 128),
                              dtype=arr.dtype, serializer=serializer, compressors=None)
        z[:] = arr
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "l.zarr"))[:], arr)
    layered, single = (pj.open_multiscale(str(tmp_path / n)) for n in ("l.zarr", "s.zarr"))
    for level in range(len(single)):
        np.testing.assert_array_equal(layered[level][:], single[level][:])


def test_layered_encodes_reuse_the_last_rd_decisions_bit_for_bit(real):
    """A layered RD-optimised encode after one without layers at the same
    steps reuses its decisions; at other steps, or after another strength,
    it makes its own: the streams are those of a fresh Prepared either way."""
    arr = real("astronaut")[:256, :320]
    rdo = pj._core.RDO_DEFAULT

    def prepared():
        return pj._core.Prepared(arr.reshape(-1).view(np.uint8), 0, arr.shape, (0, 1), 2, 5, 1,
                                 4.0, 0.0, 0)

    tables = ((5,) * 16, (2,) * 16, (0,) * 16)
    fresh = {step: prepared().encode(step, tables, rdo) for step in (3.0, 6.0)}
    for before in [(6.0, (), rdo), (6.0, tables, rdo), (3.0, (), rdo), (6.0, (), 0.0),
                   (6.0, (), rdo / 2)]:
        for step in (3.0, 6.0):
            chunk = prepared()
            chunk.encode(*before)
            assert chunk.encode(step, tables, rdo) == fresh[step], (before, step)


def test_layer_targets_beyond_the_chunks_own_are_refused(real, tmp_path):
    """The last layer completes the chunk, so a layer target finer than the
    chunk's own (10:1 layers in a 20:1 chunk; a 45 dB layer in a 40 dB chunk)
    cannot be met: an encode refuses it (a codec with such a configuration
    is still made: arrays stored with one must open)."""
    arr = real("camera")[:128, :128]
    for options in ({"ratio": 20, "layers": [10]}, {"ratio": 20, "layers": [40, 20]},
                    {"psnr": 40, "layers": [45], "layer_metric": "psnr"}):
        codec = ProgressiveJ2K(**options)
        with pytest.raises(ValueError, match="completes the chunk"):
            codec.encode(arr)
    with pytest.raises(ValueError, match="completes the chunk"):
        pj.encode(arr, bits_per_sample=0.4, layers=[10])        # 0.4 bits of 8: 20:1
    assert pj.read_header(pj.encode(arr, bits_per_sample=0.4, layers=[40])).layers == 2
    assert pj.read_header(pj.encode(arr, psnr=40, layers=[30], layer_metric="psnr")).layers == 2
