"""zarr's padding (format version 9): zarr completes edge chunks, and parts
of chunks never written, with the array's fill value.  The zarr v3 codec
gives encode() that value; trailing slices of it that stand out from the
data are coded as the data's continuation and decode as the fill value
again, at every level (docs/FORMAT.md 1 and 7, docs/DESIGN.md 58)."""
import struct

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k import _edges

from helpers import padded_like_zarr as padded
from helpers import reseal


def test_fill_extent_finds_trailing_slices_bit_for_bit():
    a = np.arange(1, 21, dtype=np.uint16).reshape(4, 5)
    assert _edges.fill_extent(a, 0) is None                      # last sample is data
    assert _edges.fill_extent(padded(a, (3, 5), 0), 0) == (3, 5)
    assert _edges.fill_extent(padded(a, (2, 3), 0), np.uint16(0)) == (2, 3)
    assert _edges.fill_extent(padded(a, (2, 3), 0), 1) is None   # another value
    assert _edges.fill_extent(padded(a, (2, 3), 7), -1) is None  # no uint16 is -1
    assert _edges.fill_extent(padded(a, (2, 3), 0), 0.5) is None
    for odd in ("0", [0, 0], None, 1j):                          # not a sample's value
        assert _edges.fill_extent(padded(a, (2, 3), 0), odd) is None
    assert _edges.fill_extent(np.zeros((3, 3), np.int8), 0) is None   # fill throughout
    b = padded(a, (4, 5), 0)
    b[3, 0] = 9                                                  # a row not wholly fill
    b[:, 4] = 0
    assert _edges.fill_extent(b, 0) == (4, 4)
    f = padded(np.ones((4, 6), np.float32), (3, 4), np.nan)
    assert _edges.fill_extent(f, np.nan) == (3, 4)
    assert _edges.fill_extent(f, np.float64("nan")) == (3, 4)
    z = padded(np.ones((4, 6), np.float32), (3, 6), -0.0)
    assert _edges.fill_extent(z, 0.0) is None                    # -0.0 is not 0.0's bits
    assert _edges.fill_extent(z, -0.0) == (3, 6)
    # along an untransformed axis too (frames of a stack), not a colour axis
    s = padded(np.ones((3, 4, 4), np.int16), (2, 4, 4), -5)
    assert _edges.fill_extent(s, -5) == (2, 4, 4)
    rgb = np.ones((4, 4, 3), np.uint8) * 200
    rgb[..., 2] = 0                                              # a colour image without blue
    assert _edges.fill_extent(rgb, 0) == (4, 4, 2)
    assert _edges.fill_extent(rgb, 0, keep=(2,)) is None
    assert pj.read_header(pj.encode(rgb, fill_value=0, colour_axis=2)).version == 7


@pytest.mark.parametrize("name, crop, extent, fill, options", [
    ("camera", (slice(0, 64), slice(0, 80)), (50, 61), 0, {}),
    ("mr2_uint16", (slice(300, 364), slice(300, 364)), (40, 64), 65535, {"layers": 3}),
    ("ct693_int16", (slice(100, 164), slice(100, 148)), (64, 30), 3000, {"ratio": 10}),
    ("astronaut", (slice(0, 48), slice(0, 64)), (40, 50, 3), 255, {"psnr": 40}),
    ("tlrc_float32_3d", (slice(10, 30), slice(10, 40), slice(10, 40)), (20, 17, 25), np.nan,
     {"tolerance": 1e-6}),
])
def test_padding_decodes_as_the_fill_value_and_the_data_as_before(real, name, crop, extent, fill,
                                                                   options):
    """Lossless chunks decode bit for bit, padding included; lossy and
    tolerance chunks keep their error on the data, and the padding decodes
    as the fill value, NaN included, at every level and layer."""
    source = np.ascontiguousarray(real(name)[crop])
    arr = padded(source, extent, fill)
    enc = pj.encode(arr, fill_value=fill, **options)
    header = pj.read_header(enc)
    assert header.version == 9 and header.fill_extent == extent
    assert np.array_equal(np.array(header.fill_value, arr.dtype), np.array(fill, arr.dtype),
                          equal_nan=True)
    # a header equals itself read again (a NaN fill value by its bits), and one that differs does not
    again = pj.read_header(enc)
    assert header == again and hash(header) == hash(again) and len({header, again}) == 1
    assert header != pj.read_header(pj.encode(source, **options))
    data = tuple(slice(0, n) for n in extent)
    decoded = pj.decode(enc)
    for slab in _edges.padding(extent):
        np.testing.assert_array_equal(decoded[slab], arr[slab])
    error = np.abs(decoded[data].astype(float) - arr[data])
    if header.mode == "lossless":
        np.testing.assert_array_equal(decoded, arr)
    elif header.mode == "tolerance":
        assert error.max() <= 1e-6
    else:
        assert error.mean() < 0.05 * np.ptp(source)
    for level in range(1, header.levels + 1):
        for layer in range(header.layers):
            low = pj.decode(enc[:header.prefix_length(level, layer)], level=level, layer=layer)
            for axis, end in enumerate(extent):
                start = -(-end // 2**level) if axis in header.axes else end
                np.testing.assert_array_equal(low[(slice(None),) * axis + (slice(start, None),)],
                                              np.full((), fill, arr.dtype))
            inside = low[tuple(slice(0, -(-n // 2**level) if a in header.axes else n)
                               for a, n in enumerate(extent))]
            assert np.isfinite(inside.astype(float)).all()


def test_a_fill_value_like_the_datas_edge_is_left_as_it_is(real):
    """A zero background next to a zero fill value: blending it into coarse
    levels does no harm, and the data's continuation would cost bytes
    (stands_out), so the chunk is coded as it is, as version 7."""
    volume = real("mni152_t1_uint8_3d")
    chunk = np.zeros((64, 64, 64), volume.dtype)
    chunk[:, :, :61] = volume[64:128, 64:128, 128:189]   # an edge chunk: background at its edge
    assert _edges.fill_extent(chunk, 0) == (64, 64, 27)
    assert pj.read_header(pj.encode(chunk, fill_value=0)).version == 7
    bright = padded(np.ascontiguousarray(real("camera")[:64, :64]), (40, 64), 0)
    bright[:40] |= 0xC0                       # 192..255 next to the fill value 0
    assert pj.read_header(pj.encode(bright, fill_value=0)).version == 9


def test_zarr_edge_chunks_round_trip_and_their_levels_do_not_blend_the_fill(real, tmp_path):
    """Through zarr (plain chunks and shards) with chunks that do not divide
    the array: reads are exact (lossless) or within the bound, and the
    coarse levels' last rows and columns keep the data's values (a fill
    value of 0 next to 240..249, and NaN, which zarr v3 arrays of floats
    take from xarray, and which was refused before)."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K
    image = np.ascontiguousarray(real("camera")[:300, :330])
    bright = (240 + image // 26).astype(np.uint8)
    field = np.ascontiguousarray(real("tlrc_float32_3d")[:, :50, :40])
    for data, fill, options, shards in ((bright, 0, {}, None), (bright, 0, {}, (256, 256)),
                                        (field, np.nan, {"tolerance": 1e-6}, None),
                                        (field, np.nan, {"tolerance": 1e-6}, (16, 32, 32))):
        chunks = (128, 128) if data.ndim == 2 else (8, 16, 16)
        z = zarr.create_array(str(tmp_path / "a.zarr"), shape=data.shape, chunks=chunks,
                              shards=shards, dtype=data.dtype,
                              serializer=ProgressiveJ2K(**options), compressors=None,
                              fill_value=fill, overwrite=True)
        z[...] = data
        back = z[...]
        if options:
            assert np.abs(back - data).max() <= 1e-6
        else:
            np.testing.assert_array_equal(back, data)
        for k, level in enumerate(pj.open_multiscale(z)[1:], 1):
            values = level[...]
            assert np.isfinite(values).all()
            assert values.min() >= (235 if data is bright else data.min() - 0.2 * np.ptp(data)), k


def test_forged_fill_fields_are_refused(real):
    """The fill field's checks (docs/FORMAT.md 1): every extent within 1 ..
    its axis's length, the fill sample's unused bytes zero."""
    arr = padded(np.ascontiguousarray(real("camera")[:32, :40]), (20, 40), 0)
    enc = pj.encode(arr, fill_value=0, levels=2)
    header = pj.read_header(enc)
    assert header.version == 9
    # the field follows the value gaps (lossless: a count byte, 0 here)
    at = 16 + 8 * 2 + 2 + 1 + 2 + 1
    assert struct.unpack_from("<2Q", enc, at) == (20, 40)
    # extents 0 and beyond the chunk, unused fill bytes set, and a field
    # that pads nothing (extents of the whole chunk: one stream, one encoding)
    for offset, value in ((at, 0), (at, 33), (at + 8, 41), (at, 32), (at + 16 + 1, 1),
                          (at + 16 + 7, 1)):
        forged = bytearray(enc)
        if offset < at + 16:
            struct.pack_into("<Q", forged, offset, value)
        else:
            forged[offset] = value
        with pytest.raises(pj.DecodeError, match="invalid codestream header"):
            pj.decode(reseal(bytes(forged), 2))
    # an older version byte leaves the field's bytes unread: the length is wrong
    from helpers import with_version
    with pytest.raises(pj.DecodeError):
        pj.read_header(with_version(enc, 8))


def test_targets_of_padded_chunks_hold_for_their_data(real):
    """A chunk with zarr's padding gets the targets to_zarr gives its edge
    chunks (edge_chunk_options): through a plain zarr write, every chunk of
    coins (303 x 384 in 128² chunks) meets psnr=40 on its data (35.9 dB on
    the last row of chunks before), as to_zarr's do; a tiny chunk's ratio
    budget is not spent on the fill field (a 15 x 32 float32 crop at 8.7:1
    lost its data to those 24 bytes)."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K
    coins = real("coins")
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=coins.shape, chunks=(128, 128),
                          dtype=coins.dtype, serializer=ProgressiveJ2K(psnr=40),
                          compressors=None, fill_value=0)
    z[...] = coins
    for i in range(0, coins.shape[0], 128):
        for j in range(0, coins.shape[1], 128):
            data = coins[i:i + 128, j:j + 128]
            mse = np.mean((z[i:i + 128, j:j + 128].astype(float) - data) ** 2)
            assert 10 * np.log10(255.0 ** 2 / mse) >= 39.5, (i, j)
    ct = np.ascontiguousarray(real("ct693_int16")[200:215, 300:313]).astype(np.float32)
    chunk = padded(np.pad(ct, ((0, 0), (0, 19))), (15, 13), 0.0)
    errors = []
    for fill in (0.0, None):
        enc = pj.encode(chunk, fill_value=fill, ratio=8.7)
        assert pj.read_header(enc).version == (9 if fill is not None else 7)
        errors.append(np.sqrt(np.mean((pj.decode(enc)[:, :13] - ct) ** 2)))
    assert errors[0] <= errors[1]


def test_a_constant_float64_chunk_pads_within_its_value(tmp_path):
    """A float64 mean of a constant can land an ulp beside it: the padded
    chunk then spanned an ulp, whose default lossy step the encoder refused
    (any float64 edge chunk of a constant, through zarr or to_zarr)."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K
    constant = np.full((16, 21), 41.525)
    assert (_edges.pad_chunk(constant[:, :5], (16, 16)) == 41.525).all()
    assert (_edges.pad_chunk(constant[:, :5], (16, 16), hold=True) == 41.525).all()
    for fill in (np.nan, 0.0, -999.0):
        for options in ({"ratio": 10}, {"reversible": False}, {"tolerance": 0.1}):
            z = zarr.create_array(zarr.storage.MemoryStore(), shape=constant.shape,
                                  chunks=(16, 16), dtype="f8", serializer=ProgressiveJ2K(**options),
                                  compressors=None, fill_value=fill)
            z[...] = constant
            assert np.abs(z[...] - constant).max() <= 0.1
    pj.to_zarr(constant, str(tmp_path / "t.zarr"), chunks=(16, 16), ratio=10)


def test_a_padded_chunks_psnr_warning_judges_the_target_as_given(real):
    """The narrow-data warning looks at the target the user gave: the
    target scaled to a padded chunk's data would allow less error, and an
    edge chunk of such data went unwarned."""
    mr = real("mr2_uint16")[200:264, 200:216].astype(np.float64)
    data = (1000 + 600 * (mr - mr.min()) / np.ptp(mr)).astype(np.uint16)   # spans 600 of 65535
    chunk = np.zeros((64, 64), np.uint16)
    chunk[:, :16] = data
    with pytest.warns(pj.PSNRPeakWarning, match="psnr=68"):
        enc = pj.encode(chunk, fill_value=0, psnr=68)
    assert pj.read_header(enc).fill_extent == (64, 16)


def test_an_infinite_fill_value_pads_and_is_refused_inside_the_data(real):
    """zarr pads edge chunks with an infinite fill value too: restored as
    such (refused from session 44's finiteness check before the padding was
    replaced until mended); an infinity inside the data is refused."""
    field = np.ascontiguousarray(real("tlrc_float32_3d")[:, :40, :40])
    for fill in (np.inf, -np.inf):
        padded = field.copy()
        padded[-7:] = fill
        for options in ({"tolerance": 1e-4}, {"mode": "lossy", "psnr": 50}):
            decoded = pj.decode(pj.encode(padded, fill_value=fill, **options))
            assert (decoded[-7:] == fill).all()
            assert np.abs(decoded[:-7] - field[:-7]).max() <= 1e-4 * (1 if "tolerance" in options else 10)
        padded[3, 5, 5] = fill
        with pytest.raises(ValueError, match="0 NaN and 1 infinite values"):
            pj.encode(padded, fill_value=fill, tolerance=1e-4)
