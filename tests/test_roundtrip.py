"""Lossless round trips: every dtype, real images of every class, ND layouts."""
import warnings

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import ProgressiveJ2K, _core

from conftest import GRAY8, GRAY16, RGB8, VOLUMES
from helpers import buffer_variants, check_levels_consistent, check_roundtrip_lossless

INT_DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4"]


def extreme_array(dtype, shape, seed=0):
    """Random values including the dtype's extremes (worst case for overflow)."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    arr = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    arr.flat[::7] = info.max
    arr.flat[::11] = info.min
    # checkerboard of extremes maximises the 5/3 high-pass swing
    arr[..., ::2, ::2] = info.min
    arr[..., 1::2, 1::2] = info.max
    return arr


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("shape", [(37, 29), (64, 64), (9, 8, 7)])
def test_every_integer_dtype_bit_exact(dtype, shape):
    arr = extreme_array(np.dtype(dtype), shape)
    for variant in buffer_variants(arr):
        check_roundtrip_lossless(ProgressiveJ2K(), variant)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_every_integer_dtype_with_colour(dtype):
    arr = extreme_array(np.dtype(dtype), (21, 18, 3), seed=1)
    check_roundtrip_lossless(ProgressiveJ2K(colour_axis=-1), arr)


@pytest.mark.parametrize("name", GRAY8 + GRAY16)
def test_real_gray_images_bit_exact(real, name):
    arr = real(name)
    enc = check_roundtrip_lossless(ProgressiveJ2K(), arr)
    assert len(enc) < arr.nbytes  # real images compress
    check_levels_consistent(enc, arr)


@pytest.mark.parametrize("name", RGB8)
def test_real_rgb_images_bit_exact(real, name):
    arr = real(name)
    enc_rct = check_roundtrip_lossless(ProgressiveJ2K(colour_axis=-1), arr)
    enc_planes = pj.encode(arr, axes=(0, 1), colour_axis=None)  # channels as planes
    np.testing.assert_array_equal(pj.decode(enc_planes), arr)
    assert len(enc_rct) < len(enc_planes)  # the colour transform pays off on real photos
    check_levels_consistent(enc_rct, arr)


@pytest.mark.parametrize("name", VOLUMES)
def test_real_volumes_bit_exact_3d(real, name):
    arr = real(name)
    enc3d = pj.encode(arr)
    assert pj.read_header(enc3d).axes == (0, 1, 2)
    np.testing.assert_array_equal(pj.decode(enc3d), arr)
    check_levels_consistent(enc3d, arr)


def test_3d_transform_beats_slices_on_brain_volume(real):
    arr = real("mni152_t1_uint8_3d")
    assert len(pj.encode(arr)) < len(pj.encode(arr, axes=(1, 2)))


def test_two_frame_ct_as_planes(real):
    arr = real("ect_uint16_2x512x512")
    enc = pj.encode(arr, axes=(1, 2))
    header = pj.read_header(enc)
    assert header.level_shape(2) == (2, 128, 128)
    np.testing.assert_array_equal(pj.decode(enc), arr)


def test_reduced_resolution_looks_like_downsampled_image(real):
    arr = real("camera").astype(float)
    enc = pj.encode(real("camera"))
    for level in (1, 2, 3):
        low = pj.decode(enc, level=level).astype(float)
        f = 2 ** level
        box = arr.reshape(arr.shape[0] // f, f, arr.shape[1] // f, f).mean(axis=(1, 3))
        # the 5/3 low band is a smoothed, decimated image in the input's range
        # (it is centred on even samples, half a sample off the box mean)
        assert np.corrcoef(low.ravel(), box.ravel())[0, 1] > 0.94
        assert abs(low.mean() - box.mean()) < 3.0


@pytest.mark.parametrize("shape,axes", [
    ((1,), None), ((2,), None), ((3,), None), ((5,), None), ((1000,), None),
    ((1, 1), None), ((1, 7), None), ((3, 1), None), ((2, 2), None), ((5, 3), None),
    ((4, 5, 6, 7), None), ((3, 4, 5, 6, 2), (0, 2)), ((6, 1, 5), (1,)), ((7, 9), (0,)),
])
def test_odd_tiny_and_nd_shapes(shape, axes):
    arr = extreme_array(np.dtype("i2"), shape, seed=3) if len(shape) > 1 else \
        np.random.default_rng(0).integers(-999, 999, shape).astype("i2")
    enc = pj.encode(arr, axes=axes)
    np.testing.assert_array_equal(pj.decode(enc), arr)
    check_levels_consistent(enc, arr)


@pytest.mark.parametrize("levels", [0, 1, 2, 6, 10])
def test_explicit_levels(real, levels):
    arr = real("coins")[:100, :90]
    enc = pj.encode(arr, levels=levels)
    header = pj.read_header(enc)
    assert header.levels == levels
    assert header.level_shape(levels) == (-(-100 // 2 ** levels), -(-90 // 2 ** levels))
    np.testing.assert_array_equal(pj.decode(enc), arr)


def test_empty_and_zero_size_arrays():
    # (four and five axes: encode() judges stacks and channels-first colour
    # from planes, which an empty array does not have: an IndexError before)
    for shape in [(0,), (0, 5), (4, 0, 3), (0, 4, 5, 6), (2, 0, 3, 40, 40), (0, 3, 40, 40)]:
        arr = np.zeros(shape, "u2")
        for options in ({}, {"mode": "lossy"}, {"tolerance": 1.0}):
            dec = pj.decode(pj.encode(arr, **options))
            assert dec.shape == shape and dec.dtype == arr.dtype


def test_default_levels_and_axes():
    assert pj.read_header(pj.encode(np.zeros((1024, 1024), "u1"))).levels == 6
    assert pj.read_header(pj.encode(np.zeros((5, 3), "u1"))).levels == 3
    header = pj.read_header(pj.encode(np.zeros((2, 3, 8, 9, 10), "u1")))
    assert header.axes == (2, 3, 4)
    header = pj.read_header(pj.encode(np.zeros((8, 9, 3), "u1"), colour_axis=2))
    assert header.axes == (0, 1) and header.colour_axis == 2


def test_colour_images_get_the_colour_transform_by_default(real):
    """colour_axis="auto" (the default) takes the last axis of an integer
    colour image; the stream is the one colour_axis=-1 gives, smaller than
    the 3-D transform across the channels that colour_axis=None leaves."""
    arr = real("astronaut")
    enc = pj.encode(arr)
    header = pj.read_header(enc)
    assert header.colour_axis == 2 and header.axes == (0, 1)
    assert enc == pj.encode(arr, colour_axis=-1)
    np.testing.assert_array_equal(pj.decode(enc), arr)
    plain = pj.encode(arr, colour_axis=None)
    assert pj.read_header(plain).colour_axis is None and pj.read_header(plain).axes == (0, 1, 2)
    assert len(enc) < 0.97 * len(plain)
    lossy = pj.read_header(pj.encode(arr, reversible=False, ratio=20))
    assert lossy.colour_axis == 2
    # shapes and dtypes that are not taken for colour images
    for shape, dtype, options in [((16, 16, 3), "f4", {"reversible": False}),  # floats
                                  ((16, 16, 4), "u1", {}),                     # RGBA
                                  ((16, 3), "u1", {}),                         # 2-D
                                  ((16, 3, 3), "u1", {}),                      # a short axis
                                  ((16, 16, 3), "u1", {"axes": (0, 1, 2)})]:   # given axes
        header = pj.read_header(pj.encode(np.ones(shape, dtype), **options))
        assert header.colour_axis is None, (shape, dtype, options)
    for shape, dtype, colour in [((4, 16, 16, 3), "u2", 3), ((16, 16, 3), "i2", 2)]:
        assert pj.read_header(pj.encode(np.ones(shape, dtype))).colour_axis == colour
    header = pj.read_header(pj.encode(np.ones((16, 16, 3), "u1"), axes=(0, 1)))
    assert header.colour_axis == 2 and header.axes == (0, 1)
    for bad in ("rgb", 2.0, True, np.bool_(True), np.float32(2.0), [2]):
        with pytest.raises(TypeError, match="colour_axis"):
            pj.encode(arr, colour_axis=bad)
    assert pj.encode(arr, colour_axis=np.int64(-1)) == enc
    assert pj.encode(arr, colour_axis=np.str_("auto")) == enc


def test_default_axes_leave_a_stack_of_unlike_frames_as_planes(real):
    """encode() without axes codes the two ect frames (their edges differ:
    docs/DESIGN.md 28) as planes, which is smaller than
    the 3-D transform, and keeps 3-D for real volumes, even two slices thick;
    the numcodecs codec keeps the fixed rule so that all chunks of an array
    share their axes."""
    from progressive_j2k.codec import ProgressiveJ2K
    frames = real("ect_uint16_2x512x512")
    chosen = pj.encode(frames)
    assert pj.read_header(chosen).axes == (1, 2)
    np.testing.assert_array_equal(pj.decode(chosen), frames)
    assert len(chosen) < 0.9 * len(pj.encode(frames, axes=(0, 1, 2)))
    assert pj.read_header(ProgressiveJ2K().encode(frames)).axes == (0, 1, 2)
    volume = real("mni152_t1_uint8_3d")
    for slab in (volume[100:102], volume[60:64], volume):
        assert pj.read_header(pj.encode(slab, levels=1)).axes == (0, 1, 2)
    edge = volume[:40]   # the edge of the head: cross-sections change fast, planes win
    chosen = pj.encode(edge)
    assert pj.read_header(chosen).axes == (1, 2)
    assert len(chosen) < 0.9 * len(pj.encode(edge, axes=(0, 1, 2)))
    steps = np.random.default_rng(3).integers(-1, 2, (3, 64, 64))
    walks = np.cumsum(np.cumsum(steps, axis=1), axis=2).astype(np.int32)  # alike within only
    assert pj.read_header(pj.encode(walks)).axes == (1, 2)
    assert pj.read_header(pj.encode(walks, axes=(0, 1, 2))).axes == (0, 1, 2)   # as asked
    assert pj.read_header(pj.encode(np.zeros((4, 8, 8), "u1"))).axes == (0, 1, 2)
    with pytest.raises(TypeError, match="unsupported dtype"):   # before any axis choice
        pj.encode(np.full((3, 4, 4), "a"))
    coronal = np.ascontiguousarray(volume.transpose(1, 0, 2))   # one edge pair does not
    assert pj.read_header(pj.encode(coronal, levels=1)).axes == (0, 1, 2)   # decide
    rows = np.ascontiguousarray(np.moveaxis(volume, 1, -1)[..., 201:213])   # thin planes
    assert pj.read_header(pj.encode(rows, levels=1)).axes != (1, 2)   # rows are not frames
    gray = real("camera")[..., None]   # H x W x 1: an axis of one sample is not transformed
    assert pj.read_header(pj.encode(gray)).axes == (0, 1)
    ome = real("camera")[None, None, None]   # OME-Zarr's t, c, z of a 2-D image
    assert pj.read_header(pj.encode(ome)).axes == (3, 4)
    assert pj.read_header(pj.encode(volume[:, :, 90:94])).axes == (0, 1, 2)   # thin slab
    huge = volume[60:64].astype(np.float64) * 6e305   # alike slices near the float64 limit,
    huge[:, ::2] *= -1                                # whose differences overflow
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pj.read_header(pj.encode(huge, tolerance=1e300)).axes == (0, 1, 2)
        huge[:, 0] = np.inf   # inf - inf in the test: left out, no warning
        with pytest.raises(ValueError, match="finite"):
            pj.encode(huge, reversible=False)


def test_the_axis_choice_judges_nodata_as_coded(real, tmp_path):
    """The axis and colour judgements see nodata filled in as the reversible
    modes may code it, whatever value marks it: a float volume masked with
    -1 was judged a stack of frames (with 0, or unmasked, a volume), coded
    slice by slice 5% larger and never halved along z.  Leaving the nodata
    samples out instead (a first mend) took two unlike frames for a volume
    where one was all nodata or their outside was masked (twice the
    planes' size), and gave an RGB image with an empty channel the colour
    transform (nodata is whole pixels there: that channel is colour)."""
    volume = real("tlrc_float32_3d")
    mask = volume < np.percentile(volume, 10)
    assert pj.read_header(pj.encode(volume, tolerance=1e-6)).axes == (0, 1, 2)
    for nodata in (0.0, -1.0, -9999.0):
        masked = np.where(mask, nodata, volume).astype(np.float32)
        assert pj.read_header(pj.encode(masked, tolerance=1e-6, nodata=nodata)).axes == (0, 1, 2)
    anatomical = real("anatomical_int16_3d")
    low = anatomical < np.percentile(anatomical, 5)
    chosen = {pj.read_header(pj.encode(np.where(low, nodata, anatomical).astype(np.int16),
                                       nodata=nodata)).axes for nodata in (32767, -32768, 0)}
    assert len(chosen) == 1   # (as data, 0 and 32767 were judged apart)
    stored = pj.to_zarr(np.where(mask, -1.0, volume).astype(np.float32), tmp_path / "v.zarr",
                        tolerance=1e-6, nodata=-1.0)
    assert pj.open_multiscale(tmp_path / "v.zarr")[1].shape[0] < volume.shape[0]   # z halves
    assert stored.shape == volume.shape
    # two unlike frames: one all nodata, or both with their outside masked
    frames = real("ect_uint16_2x512x512").copy()
    grid = np.ogrid[:512, :512]
    outside = ((grid[0] - 256) / 256.0) ** 2 + ((grid[1] - 256) / 256.0) ** 2 > 0.8
    missing = frames.copy()
    missing[0] = 65535
    cut = np.where(outside, 65535, frames).astype(np.uint16)
    for stack in (missing, cut):
        chosen = pj.encode(stack, nodata=65535)
        assert pj.read_header(chosen).axes == (1, 2)
        assert len(chosen) < 0.8 * len(pj.encode(stack, nodata=65535, axes=(0, 1, 2)))
    photo = real("astronaut")[:256, :256].copy()
    photo[..., 2] = 0                                  # an empty channel: colour data
    photo[photo.max(axis=-1) < 20] = 0                 # and dark pixels as nodata
    header = pj.read_header(pj.encode(photo, nodata=0))
    assert header.colour_axis is None and header.axes == (0, 1)
    holed = real("astronaut").copy()
    holed[100:300:7, :, :] = 0   # whole-pixel nodata rows
    assert pj.read_header(pj.encode(holed, nodata=0)).colour_axis == 2


def test_unaligned_arrays_and_buffers(real):
    """The C core reads and writes whole values: an array at an odd address
    is copied before encoding (the same stream), and a raw out= buffer at an
    odd address is filled through an aligned decode (the same bytes)."""
    arr = np.ascontiguousarray(real("mr2_uint16")[:100, :90])
    raw = bytearray(arr.nbytes + 1)
    odd = np.frombuffer(raw, arr.dtype, count=arr.size, offset=1).reshape(arr.shape)
    np.frombuffer(raw, np.uint8)[1:] = arr.reshape(-1).view(np.uint8)
    assert not odd.flags.aligned
    for options in ({}, {"reversible": False, "ratio": 20}, {"reversible": False, "step": 8.0}):
        assert pj.encode(odd, **options) == pj.encode(arr, **options)
    encoded = pj.encode(arr)
    out = bytearray(arr.nbytes + 1)
    pj.decode(encoded, out=memoryview(out)[1:])
    assert bytes(out[1:]) == arr.tobytes()


def _likeness_grid(block):
    """The points the axis choice samples, chosen independently: along every
    axis LIKENESS_SAMPLES evenly spaced positions (all where fewer fit),
    each followed by its next neighbour."""
    from progressive_j2k import _axes
    grid = [np.unique(np.linspace(0, n - 2, min(n - 1, _axes.LIKENESS_SAMPLES)).round()
                      .astype(np.intp)) for n in block.shape]
    return block[np.ix_(*[np.stack((g, g + 1), axis=-1).reshape(-1) for g in grid])]


def _plain_pair_detail(pairs, finite_data):
    """A loop over each sampled point's differences to its next sampled
    neighbour along axes 1 and 2, per pair of sampled planes: integer samples
    as they are, float ones in units of their largest finite value read,
    non-finite differences left out."""
    read = np.zeros(pairs.shape[1:], bool)
    read[0::2, :], read[1::2, 0::2] = True, True
    values = pairs[:, read]
    finite = values[np.isfinite(values)]
    scale = 1.0 if finite_data else np.abs(finite).max(initial=0.0)
    if not scale > 0:
        return np.zeros(pairs.shape[0] // 2), np.zeros(pairs.shape[0] // 2)
    p = pairs.astype(np.float64)
    mixed, within = [], []
    for k in range(p.shape[0] // 2):
        change = size = count = 0.0
        for y in range(0, p.shape[1], 2):
            for x in range(0, p.shape[2], 2):
                for dy, dx in ((1, 0), (0, 1)):
                    here = p[2 * k, y + dy, x + dx] / scale - p[2 * k, y, x] / scale
                    there = p[2 * k + 1, y + dy, x + dx] / scale - p[2 * k + 1, y, x] / scale
                    c, s = abs(there - here), 0.5 * (abs(here) + abs(there))
                    if np.isfinite(c) and np.isfinite(s):
                        change, size, count = change + c, size + s, count + 1
        mixed.append(change / max(count, 1))
        within.append(size / max(count, 1))
    return np.array(mixed), np.array(within)


def test_axis_choice_pair_detail_against_a_plain_loop(real):
    """_pair_detail (C, reading the samples where they are) per pair of
    sampled planes, against a loop over the grid's points gathered by
    np.ix_: contiguous blocks, views with the last axis first, an unaligned
    copy, big-endian samples, every format dtype, floats with NaN and
    infinities and near the largest float64."""
    from progressive_j2k import _axes
    volume = real("mni152_t1_uint8_3d")
    floats = volume[60:70, 80:92, 70:84].astype(np.float64) * 1e300
    floats[1, 2, 3], floats[4, 0, 0], floats[6] = np.nan, np.inf, -np.inf
    raw = bytearray(volume[40:80, 60:100, 50:90].astype(np.int16).nbytes + 1)
    unaligned = np.frombuffer(raw, np.uint8)[1:].view(np.int16).reshape(40, 40, 40)
    unaligned[...] = volume[40:80, 60:100, 50:90].astype(np.int16) - 300
    assert not unaligned.flags.aligned
    blocks = [volume[:32, :32, :32], volume[3:5, 40:77, 10:150], volume[60:68, 80:90, 70:82],
              np.moveaxis(volume[20:60, 30:70, 40:90], 2, 0), np.moveaxis(volume, 1, 0),
              floats, unaligned, volume[30:70, 100:140, 90:130].astype(">u2") * 200,
              volume[30:40, 100:112, 90:104].astype(np.float32) - 100,
              np.zeros((4, 33, 35), np.float32), volume[::-3, 200:20:-2, ::-1],   # negative strides
              np.broadcast_to(volume[50, 60:100, 70:110], (6, 40, 40))]   # a stride of 0
    blocks += [volume[50:90, 70:110, 60:100].astype(t) for t in ("i1", "u4", "i4", "f8")]
    for block in blocks:
        finite_data = block.dtype.kind in "biu"
        with np.errstate(invalid="ignore"):   # (the loop's inf - inf)
            expected = _plain_pair_detail(_likeness_grid(block), finite_data)
        got = _axes._pair_detail(block)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-300)


def test_pair_detail_refuses_what_it_cannot_read():
    """The binding checks the buffer's dims and dtype (as its buffer states
    them), even position counts and room; the core checks every position
    against the shape."""
    block = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)
    at = [np.arange(n, dtype=np.uint64) for n in block.shape]
    mixed, within = np.empty((2, 2))
    _core.pair_detail(block, *at, mixed, within)   # (accepted as it is)
    cases = [(block[0], at), (block.astype(np.int64), at), (block.astype(np.float16), at),
             (block, [at[0][:3], at[1], at[2]]), (block, [at[0][:0], at[1], at[2]]),
             (block, [at[0] + 1, at[1], at[2]]), (block, [at[0], at[1], at[2] * 2]),
             (block, [at[0], at[1], at[2] + 2**63])]
    for arr, positions in cases:
        with pytest.raises(ValueError):
            _core.pair_detail(arr, *positions, mixed, within)
    with pytest.raises(ValueError):   # no room for a value per pair
        _core.pair_detail(block, *at, mixed[:1], within)
    # the buffer's own layout and dtype decide, whatever the object says
    expected = mixed.copy(), within.copy()
    _core.pair_detail(memoryview(block), *at, mixed, within)
    np.testing.assert_array_equal((mixed, within), expected)

    class ThreeD(bytearray):   # a 1-D buffer claiming to be a 3-D uint8 array
        dtype, ndim = np.dtype(np.uint8), 3

    class Wider(np.ndarray):   # uint8 samples claiming to be float64
        dtype = property(lambda self: np.dtype(np.float64))

    with pytest.raises(ValueError):
        _core.pair_detail(ThreeD(64), *at, mixed, within)
    narrow = block.astype(np.uint8)
    _core.pair_detail(narrow, *at, mixed, within)
    expected = mixed.copy(), within.copy()
    _core.pair_detail(narrow.view(Wider), *at, mixed, within)   # read as the uint8 it is
    np.testing.assert_array_equal((mixed, within), expected)


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_default_axes_keep_colour_channels_first_and_drop_a_flat_alpha(real, name):
    """Channels first (3 x H x W): encode() takes the first axis as the
    colour axis (its colour transform keeps the channels whole at every
    level, and is smaller than the 3-D transform, which in turn beats
    planes); with an opaque alpha plane after them (4 x H x W, or H x W x 4)
    that plane shares nothing, and planes are smaller (docs/DESIGN.md 28,
    32)."""
    channels = np.ascontiguousarray(real(name).transpose(2, 0, 1))
    enc = pj.encode(channels)
    header = pj.read_header(enc)
    assert (header.colour_axis, header.axes) == (0, (1, 2))
    three_d = pj.encode(channels, axes=(0, 1, 2))
    assert len(enc) < 0.97 * len(three_d) < 0.97 * len(pj.encode(channels, axes=(1, 2),
                                                                 colour_axis=None))
    np.testing.assert_array_equal(pj.decode(enc), channels)
    assert pj.decode(enc, level=2).shape == (3, -(-channels.shape[1] // 4), -(-channels.shape[2] // 4))
    # three unrelated frames are no colour image: planes, smaller than colour
    frames = np.stack([real(n)[:300, :300] for n in ("camera", "coins", "moon")])
    enc = pj.encode(frames)
    assert (pj.read_header(enc).colour_axis, pj.read_header(enc).axes) == (None, (1, 2))
    assert len(enc) < 0.9 * len(pj.encode(frames, colour_axis=0))
    rgba = np.concatenate([channels, np.full((1,) + channels.shape[1:], 255, np.uint8)])
    rgba_last = np.ascontiguousarray(rgba.transpose(1, 2, 0))   # H x W x 4: channels last
    for arr, chosen, other in [(rgba, (1, 2), (0, 1, 2)), (rgba_last, (0, 1), (0, 1, 2))]:
        enc = pj.encode(arr)
        assert pj.read_header(enc).axes == chosen
        assert len(enc) < 0.95 * len(pj.encode(arr, axes=other))
        np.testing.assert_array_equal(pj.decode(enc), arr)


def test_big_endian_input_is_accepted():
    arr = np.arange(300, dtype=">u2").reshape(15, 20)
    enc = pj.encode(arr)
    np.testing.assert_array_equal(pj.decode(enc), arr)
    out = np.zeros_like(arr)                    # a big-endian out gets the values
    assert pj.decode(enc, out=out) is out
    np.testing.assert_array_equal(out, arr)
    assert out.tobytes() == arr.tobytes()
    with pytest.raises(ValueError, match="dtype"):   # of its own dtype only
        pj.decode(enc, out=np.zeros(arr.shape, ">i2"))
