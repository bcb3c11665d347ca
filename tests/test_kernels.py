"""The per-sample loops built for AVX2 against the portable build, bit for bit.

Both builds compile the same C (csrc/kernels_impl.h); the AVX2 one is picked at
run time, and PJ2K_SIMD=portable forces the other.  Every path they serve is
run both ways on real data: the 5/3 and 9/7-M transforms on int16, int32
and int64 buffers, the 9/7 transform (float64 buffers, and float32 ones
for 8- and 16-bit samples), both colour transforms, the error-bounded
prequantisation, the lossy quantisation (int32 and int64) and dequantisation,
the rate model's histogram, and the conversions to and from every dtype
(contiguous and strided), at full and reduced resolution and per layer.
"""
import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import _core

pytestmark = pytest.mark.skipif(_core.kernels() != "avx2",
                                reason="this CPU has no AVX2: only the portable build runs")


def both_ways(monkeypatch, work):
    """work() under the portable build, then under AVX2."""
    monkeypatch.setenv("PJ2K_SIMD", "portable")
    assert _core.kernels() == "portable"
    portable = work()
    monkeypatch.delenv("PJ2K_SIMD")
    assert _core.kernels() == "avx2"
    return portable, work()


def crop(a, size=96):
    return a[tuple(slice(0, size) if n != 3 else slice(None) for n in a.shape)]


def cases(real):
    gray = crop(real("camera"), 200)[:173, :190]          # odd sizes: boundary lanes
    rgb = crop(real("astronaut"), 160)[:131]
    mr2 = crop(real("mr2_uint16"), 160)
    ct = crop(real("ct693_int16"), 160)
    vol = real("mni152_t1_uint8_3d")[40:73, 50:90, 60:97]
    flt = real("tlrc_float32_3d")[10:40, 20:60, 20:61]
    wide = (ct.astype(np.int64) * 70001).astype(np.int32)   # 32-bit: int64 coefficients
    return [
        ("8-bit lossless", gray, {}),
        ("8-bit lossless, 9/7-M at every level", gray, {"m97_levels": 0b111111}),
        ("8-bit lossless, 5/3 only", gray, {"m97_levels": 0}),
        ("8-bit lossy", gray, {"reversible": False, "ratio": 12}),
        ("RGB lossless (RCT, strided)", rgb, {"colour_axis": -1}),
        ("RGB lossy (ICT, interleaved: loaded with it)", rgb, {"colour_axis": -1, "reversible": False, "psnr": 38}),
        ("16-bit lossless", mr2, {}),
        ("16-bit lossless, 9/7-M at levels 1, 2 and 5", mr2, {"m97_levels": 0b10011}),
        ("16-bit lossy with layers", mr2, {"reversible": False, "ratio": 20, "layers": 3}),
        ("int16 lossless with layers", ct, {"layers": [40, 10]}),
        ("3-D lossless", vol, {}),
        ("3-D lossless, 9/7-M at levels 1 and 3", vol, {"m97_levels": 0b101}),
        ("3-D lossy", vol, {"reversible": False, "step": 3.0}),
        ("int32 lossless", wide, {}),
        ("int32 lossless, 9/7-M at every level", wide, {"m97_levels": 0b111111}),
        ("int32 lossy, quantised values beyond int32", wide, {"reversible": False, "step": 0.01}),
        ("float32 error-bounded", flt, {"tolerance": 0.01}),
        ("float32 error-bounded, 9/7-M", flt, {"tolerance": 0.01, "m97_levels": 0b11}),
        ("float32 lossy", flt, {"reversible": False, "ratio": 15}),
        ("uint8 along chosen axes", np.ascontiguousarray(np.moveaxis(vol, 0, -1)), {"axes": (0, 1)}),
    ]


def test_avx2_and_portable_builds_agree_bit_for_bit(monkeypatch, real):
    for name, arr, options in cases(real):
        def work():
            enc = pj.encode(arr, **options)
            h = pj.read_header(enc)
            decodes = [pj.decode(enc, level=k) for k in range(h.levels + 1)]
            decodes += [pj.decode(enc, layer=j) for j in range(len(h.layer_shifts))]
            return enc, decodes

        (enc_p, dec_p), (enc_v, dec_v) = both_ways(monkeypatch, work)
        assert enc_p == enc_v, name
        for a, b in zip(dec_p, dec_v):
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert a.tobytes() == b.tobytes(), name   # NaN-proof, bit for bit
        if options.get("reversible", True) and "tolerance" not in options:
            np.testing.assert_array_equal(dec_v[0], arr, err_msg=name)


def test_both_builds_measure_psnr_trials_alike(monkeypatch, real):
    """A PSNR trial's error (the float32 dequantisation, inverse 9/7 and
    inverse ICT, the comparison with every 8- and 16-bit dtype, clamped at
    their ends) in both builds."""
    from progressive_j2k import _dtypes
    gray = np.ascontiguousarray(crop(real("camera"), 200)[:173, :190])
    rgb = np.ascontiguousarray(crop(real("astronaut"), 160)[:131])
    vol = np.ascontiguousarray(real("mni152_t1_uint8_3d")[40:73, 50:90, 60:97])
    for arr, axes, colour in [(gray, (0, 1), -1), ((gray.astype(np.int16) - 128).astype(np.int8), (0, 1), -1),
                              (rgb, (0, 1), 2), (np.ascontiguousarray(np.moveaxis(rgb, 2, 0)), (1, 2), 0),
                              (np.ascontiguousarray(crop(real("mr2_uint16"), 160)), (0, 1), -1),
                              (np.ascontiguousarray(crop(real("ct693_int16"), 160)), (0, 1), -1),
                              (vol, (0, 1, 2), -1)]:
        def work():
            prepared = _core.Prepared(arr.reshape(-1).view(np.uint8), _dtypes.DTYPE_CODES[arr.dtype],
                                      arr.shape, axes, colour, 4, 1, 1.0, 0.0)
            made = []
            for step in (1.0, 6.0) if arr.itemsize == 1 else (30.0, 300.0):
                prepared.encode(step, (), _core.RDO_DEFAULT)
                made.append(prepared.trial_error(arr.reshape(-1).view(np.uint8)))
            return made

        portable, avx2 = both_ways(monkeypatch, work)
        assert portable == avx2, (arr.dtype, arr.shape)
        assert all(squared is not None and squared > 0 for squared in avx2)


def test_every_dtype_converts_alike(monkeypatch, real):
    """Loads and stores of every dtype, with values at and beyond its range
    (lossy overshoot is clamped, never wrapped)."""
    base = crop(real("moon"), 64).astype(np.float64)
    for dtype in ("u1", "i1", "u2", "i2", "u4", "i4", "f4", "f8"):
        dt = np.dtype(dtype)
        if dt.kind == "f":
            arr = ((base - 128) * 1e3).astype(dt)
        else:
            info = np.iinfo(dt)
            span = min(float(info.max) - float(info.min), 2.0 ** 24)
            arr = np.clip(info.min + base / 255 * span, info.min, info.max).astype(dt)
            arr.flat[::7] = info.max
            arr.flat[3::11] = info.min

        def work():
            lossless = pj.encode(arr) if dt.kind != "f" else pj.encode(arr, tolerance=1.0)
            lossy = pj.encode(arr, reversible=False, ratio=30)
            return lossless, lossy, pj.decode(lossless), pj.decode(lossy), pj.decode(lossy, level=1)

        portable, avx2 = both_ways(monkeypatch, work)
        for a, b in zip(portable, avx2):
            assert (a if isinstance(a, bytes) else a.tobytes()) == (b if isinstance(b, bytes) else b.tobytes()), dtype


def test_both_builds_agree_on_the_older_floor_53(monkeypatch, real):
    """Wavelets 0 and 2 (JPEG 2000's 5/3, rounding its predict down: what
    streams before the rounded 5/3 hold) still encode and decode alike in
    both builds, at every level (int16, int32 and int64 lifting)."""
    from progressive_j2k import _dtypes
    gray, mr2 = crop(real("camera"), 200)[:173, :190], crop(real("mr2_uint16"), 160)
    flt = real("tlrc_float32_3d")[10:40, 20:60, 20:61]
    for arr, wavelet, scale, tolerance in [(gray, 0, 0.0, 0.0), (mr2, 0, 0.0, 0.0),
                                           (flt, 2, 0.02, 0.01)]:
        axes = tuple(range(arr.ndim))

        def work():
            prepared = _core.Prepared(arr.reshape(-1).view(np.uint8), _dtypes.DTYPE_CODES[arr.dtype],
                                      arr.shape, axes, -1, 4, wavelet, scale, tolerance)
            enc = prepared.encode(0.0)
            assert pj.read_header(enc).wavelet == wavelet
            return enc, [pj.decode(enc, level=k).tobytes() for k in range(5)]

        (enc_p, dec_p), (enc_v, dec_v) = both_ways(monkeypatch, work)
        assert enc_p == enc_v and dec_p == dec_v
        if wavelet == 0:
            np.testing.assert_array_equal(pj.decode(enc_v), arr)


def test_both_builds_sum_squared_errors_alike(monkeypatch, real):
    """pj2k_squared_error (the PSNR searches' measure) in both builds, on a
    real image and its lossy decode in every dtype."""
    from progressive_j2k import _metrics
    arr = crop(real("moon"), 200)
    decoded = pj.decode(pj.encode(arr, reversible=False, ratio=30))
    for dtype in ("u1", "i1", "u2", "i2", "u4", "i4", "f4", "f8"):
        a, b = arr.astype(dtype) * 3, decoded.astype(dtype) * 3
        portable, avx2 = both_ways(monkeypatch, lambda: _metrics.squared_error(a, b))
        assert portable == avx2, dtype


@pytest.mark.parametrize("name, dtype", [("camera", None), ("mr2_uint16", None),
                                         ("mni152_t1_uint8_3d", None), ("moon", "f8")])
def test_both_builds_bin_the_rate_model_alike(monkeypatch, real, name, dtype):
    """The rate model's histogram (the kernels' histogram_bins) in both
    builds: float32 coefficients (8- and 16-bit samples, 2-D and 3-D) and
    float64 ones (float64 samples)."""
    from progressive_j2k import _dtypes, _rate
    from progressive_j2k._api import band_count
    arr = real(name)
    arr = np.ascontiguousarray(arr[:60, :70, :80] if arr.ndim == 3 else arr[:250, :230])
    if dtype is not None:
        arr = arr.astype(dtype) * 0.37
    axes = tuple(range(arr.ndim))
    prepared = _core.Prepared(arr.reshape(-1).view(np.uint8), _dtypes.DTYPE_CODES[arr.dtype],
                              arr.shape, axes, -1, 4, 1, 1.0, 0.0)

    def histogram():
        counts = np.empty((band_count(4, len(axes)), _rate.HISTOGRAM_BINS), np.uint64)
        return prepared.histogram(counts), counts

    (top_p, counts_p), (top_v, counts_v) = both_ways(monkeypatch, histogram)
    assert top_p == top_v > 0 and counts_p.sum() == arr.size
    np.testing.assert_array_equal(counts_p, counts_v)


def test_both_builds_quantise_to_the_same_limits(monkeypatch, real):
    """The quantiser's fit checks (int16, then int32, then int64 values, and
    a refusal past 2**60): both builds widen and refuse at the same steps,
    and the widened streams are the same bytes."""
    from progressive_j2k import _dtypes
    gray = np.ascontiguousarray(crop(real("camera"), 64))
    scaled = gray.astype(np.float64) * 1e3

    def outcomes():
        made = []
        for arr, steps in ((gray, (1.0, 1e-3, 1e-6)), (scaled, (1e3, 1e-9, 1e-12, 1e-14))):
            prepared = _core.Prepared(arr.reshape(-1).view(np.uint8),
                                      _dtypes.DTYPE_CODES[arr.dtype], arr.shape, (0, 1), -1, 2,
                                      1, 1.0, 0.0)
            for step in steps:
                try:
                    made.append(prepared.encode(step, (), 0.0))
                except ValueError:
                    made.append(None)
        return made

    portable, avx2 = both_ways(monkeypatch, outcomes)
    assert portable == avx2
    # 8-bit values at 1e-6 steps need int64 (255 / 1e-6 > 2**31); 1e5 / 1e-14
    # is beyond 2**60: refused
    assert all(made is not None for made in avx2[:6]) and avx2[6] is None
    np.testing.assert_allclose(pj.decode(avx2[2]), gray, atol=1e-5)
