"""Property tests over random shapes, dtypes, axes and levels."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import progressive_j2k as pj

from test_reference import reference_low_band

DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4"]


@st.composite
def arrays_and_options(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 13, 16, 31]),
                                min_size=ndim, max_size=ndim)))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    info = np.iinfo(dtype)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["uniform", "smooth", "extreme"]))
    if kind == "uniform":
        arr = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    elif kind == "smooth":
        ramp = np.indices(shape).sum(axis=0) * draw(st.integers(1, 50))
        arr = np.clip(ramp + int(info.min) // 2, info.min, info.max).astype(dtype)
    else:
        arr = rng.choice(np.array([info.min, info.max], dtype=dtype), shape)
    axes = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1,
                                     max_size=min(3, ndim)))))
    levels = draw(st.one_of(st.none(), st.integers(0, 5)))
    return arr, axes, levels


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_options())
def test_lossless_roundtrip_any_shape(case):
    arr, axes, levels = case
    enc = pj.encode(arr, axes=axes, levels=levels, colour_axis=None)  # the reference has none
    np.testing.assert_array_equal(pj.decode(enc), arr)
    header = pj.read_header(enc)
    for level in range(header.levels + 1):
        dec = pj.decode(enc[: header.prefix_length(level)], level=level)
        expected_shape = list(arr.shape)
        for a in axes:
            expected_shape[a] = -(-arr.shape[a] // 2 ** level)
        assert dec.shape == tuple(expected_shape)
        assert dec.dtype == arr.dtype
        # every level is the low band of the stated wavelets (clamped to the dtype)
        info = np.iinfo(arr.dtype)
        expected = np.clip(reference_low_band(arr, level, axes, header.m97_levels,
                                              rounded=header.wavelet == 4),
                           info.min, info.max)
        np.testing.assert_array_equal(dec, expected)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_and_options(), st.integers(0, 2**10 - 1))
def test_any_mix_of_53_and_m97_levels(case, mask):
    """Every level may lift with either wavelet: bit-exact round trips, and
    each reduced level is the reference low band of the stated mix."""
    arr, axes, levels = case
    levels = pj.read_header(pj.encode(arr, axes=axes, levels=levels)).levels
    mask &= (1 << levels) - 1
    enc = pj.encode(arr, axes=axes, levels=levels, m97_levels=mask,
                    colour_axis=None)   # the reference has no colour transform
    assert pj.read_header(enc).m97_levels == mask
    np.testing.assert_array_equal(pj.decode(enc), arr)
    info = np.iinfo(arr.dtype)
    for level in range(1, levels + 1):
        expected = np.clip(reference_low_band(arr, level, axes, mask, rounded=True),
                           info.min, info.max)
        np.testing.assert_array_equal(pj.decode(enc[: pj.read_header(enc).prefix_length(level)],
                                                level=level), expected)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from(["u1", "u2", "i4"]),
       st.integers(0, 2**32 - 1))
def test_rgb_colour_roundtrip(h, w, dtype, seed):
    info = np.iinfo(dtype)
    arr = np.random.default_rng(seed).integers(info.min, info.max, (h, w, 3), dtype=dtype,
                                               endpoint=True)
    np.testing.assert_array_equal(pj.decode(pj.encode(arr, colour_axis=2)), arr)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.floats(0.1, 50), st.integers(0, 2**32 - 1))
def test_lossy_error_bounded_by_step(h, w, step, seed):
    arr = np.random.default_rng(seed).normal(0, 100, (h, w))
    dec = pj.decode(pj.encode(arr, reversible=False, step=step))
    rms = np.sqrt(np.mean((dec - arr) ** 2))
    # the deadzone quantiser errs by up to one step per coefficient (values
    # below the step become 0), and the 9/7 synthesis is close to orthonormal
    assert rms <= step


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([1, 2, 3, 4, 5, 8, 17]), min_size=3, max_size=5),
       st.sampled_from(DTYPES + ["f4", "f8"]), st.sampled_from(["uniform", "huge", "specials"]),
       st.integers(0, 2**32 - 1))
def test_default_axes_any_shape_and_values(shape, dtype, kind, seed):
    """encode()'s own choice of axes (colour axis and frame test) on any
    shape, dtype and values: a subset of the default axes, no warning, and
    integers still round-trip exactly."""
    import warnings

    from progressive_j2k import _axes, _options
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        scale = {"uniform": 1.0, "huge": 1e307 if dtype.itemsize == 8 else 1e37}.get(kind, 1.0)
        arr = (rng.standard_normal(shape) * scale).astype(dtype)
        if kind == "specials" and arr.size:
            arr.flat[rng.integers(0, arr.size, 3)] = [np.inf, -np.inf, np.nan]
    else:
        info = np.iinfo(dtype)
        arr = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        colour = _axes.encoder_colour_axis(_options.normalise_options(), arr)
        chosen = _axes.choose_axes(arr, colour)
        default = _axes.default_axes(arr.ndim, colour)
        assert set(chosen) <= set(default)
        # axes of one sample are left out; of the others, at most one
        longer = [a for a in default if arr.shape[a] > 1]
        assert len(chosen) >= max(1, min(2, len(longer)))
        if dtype.kind != "f" and arr.ndim <= 5:
            enc = pj.encode(arr)
            assert pj.read_header(enc).axes == chosen
            np.testing.assert_array_equal(pj.decode(enc), arr)
