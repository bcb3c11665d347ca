"""Frozen codestreams of format versions 1, 2 (quality layers), 3 (new
context rules), 4 (the model carried across pieces), 5 (zero runs), 6
(9/7-M levels; v6r_*: the rounded 5/3 of wavelets 3 and 4), 7 (the
value gaps of lossless streams), 8 (lossy 8- and 16-bit samples
reconstructed in float32), 9 (zarr's padding restored as the fill
value) and 10 (nodata samples inside the data, restored from a mask): any
change that stops them decoding to the stored arrays breaks reading old data,
and fails here."""
import re
from pathlib import Path

import numpy as np
import pytest

import progressive_j2k as pj

from helpers import with_version

GOLDEN = Path(__file__).parent / "golden"
NAMES = sorted(p.stem for p in GOLDEN.glob("*.pj2k"))


def test_golden_set_is_complete():
    assert len(NAMES) >= 15
    versions = {pj.read_header((GOLDEN / f"{n}.pj2k").read_bytes()).version for n in NAMES}
    assert versions == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
    wavelets = {pj.read_header((GOLDEN / f"{n}.pj2k").read_bytes()).wavelet for n in NAMES}
    assert wavelets == {0, 1, 2, 3, 4}
    # version 6: a stream of the encoder's own choice of 9/7-M, and fixed mixes
    masks = {n: pj.read_header((GOLDEN / f"{n}.pj2k").read_bytes()).m97_levels for n in NAMES}
    assert masks["v6_u8_gray_chosen"] == 1 and masks["v6_u8_gray_mixed"] == 0b10101
    assert all(m == 0 for n, m in masks.items() if not n.startswith(("v6", "v7", "v8", "v9", "v10")))
    # version 7: value gaps (closed on request), with layers and in 3-D
    gaps = {n: pj.read_header((GOLDEN / f"{n}.pj2k").read_bytes()).gaps for n in NAMES}
    assert gaps["v7_i16_ct_gaps"] == ((-2000, 2021),) and gaps["v7_u8_gray"] == ()
    assert gaps["v7_u16_gaps_layers"] and gaps["v7_u8_3d_gaps"]
    # version 9: padding along transformed and untransformed axes, NaN, layers
    fills = {n: pj.read_header((GOLDEN / f"{n}.pj2k").read_bytes()) for n in NAMES if n[:2] == "v9"}
    assert fills["v9_i16_planes_fill"].fill_extent == (3, 21, 14)
    assert fills["v9_i16_planes_fill"].colour_axis is None
    assert np.isnan(fills["v9_f32_3d_nan_tolerance"].fill_value)
    assert fills["v9_u8_rgb_lossy_layers"].layers == 3
    # version 10: nodata inside the data, with padding, NaN in 3-D, layers, planes
    nodata = {n: pj.read_header((GOLDEN / f"{n}.pj2k").read_bytes()) for n in NAMES if n[:3] == "v10"}
    assert all(h.mask_length > 0 for h in nodata.values()) and len(nodata) == 4
    assert nodata["v10_u16_nodata_lossless"].fill_extent == (33, 29)
    assert nodata["v10_f32_3d_nan_tolerance"].fill_extent == (13, 11, 9)
    assert nodata["v10_f32_lossy_layers"].layers == 3
    assert nodata["v10_i16_planes_nodata"].axes == (1, 2)


@pytest.mark.parametrize("name", ["v8_u16_offset_lossy", "v8_i16_3d_lossy"])
def test_version_8_reconstructs_lossy_samples_in_float32(name):
    """The version byte selects the arithmetic: the same stream read as
    version 7 (float64) decodes some samples one unit apart (a CT crop on a
    large offset; a 3-D chunk), and version 8 decodes the frozen float32
    result, which the spec decoder's float32 rules also give
    (test_spec_decoder.py)."""
    enc = (GOLDEN / f"{name}.pj2k").read_bytes()
    expected = np.load(GOLDEN / f"{name}.npz")["level0"]
    as_float64 = pj.decode(with_version(enc, 7)).astype(np.int64)
    apart = as_float64 != expected
    assert apart.any() and np.abs(as_float64 - expected).max() == 1
    np.testing.assert_array_equal(pj.decode(with_version(enc, 8)), expected)


@pytest.mark.parametrize("dtype, options, version", [
    ("u1", {"reversible": False}, 8), ("i1", {"reversible": False}, 8),
    ("u2", {"reversible": False}, 8), ("i2", {"reversible": False}, 8),
    ("u1", {}, 7), ("u2", {"layers": 2}, 7), ("i4", {"reversible": False}, 7),
    ("f4", {"reversible": False}, 7), ("f8", {"tolerance": 0.5}, 7), ("u1", {"tolerance": 1}, 7)])
def test_version_8_is_written_only_where_it_changes_the_decode(real, dtype, options, version):
    """Lossy 8- and 16-bit chunks are version 8; every other stream is
    version 7, which decoders before version 8 still read."""
    arr = real("camera")[100:140, 200:240].astype(dtype)
    assert pj.read_header(pj.encode(arr, **options)).version == version


def expected_version(name):
    digits = re.match(r"v(\d+)", name)
    return int(digits.group(1)) if digits else 1


@pytest.mark.parametrize("name", NAMES)
def test_golden_codestream_decodes_unchanged(name):
    enc = (GOLDEN / f"{name}.pj2k").read_bytes()
    expected = np.load(GOLDEN / f"{name}.npz")
    header = pj.read_header(enc)
    assert header.version == expected_version(name)
    for level in range(header.levels + 1):
        dec = pj.decode(enc[: header.prefix_length(level)], level=level)
        np.testing.assert_array_equal(dec, expected[f"level{level}"])
        for layer in range(header.layers if header.layers > 1 else 0):
            dec = pj.decode(enc[: header.prefix_length(level, layer)], level=level, layer=layer)
            np.testing.assert_array_equal(dec, expected[f"level{level}_layer{layer}"])
    if header.reversible:  # lossless golden files decode to their source exactly
        np.testing.assert_array_equal(pj.decode(enc), expected["source"])
    if header.mode == "tolerance":   # (NaN: the padding, restored exactly)
        decoded, source = pj.decode(enc).astype(float), expected["source"]
        np.testing.assert_array_equal(np.isnan(decoded), np.isnan(source))
        assert np.nanmax(np.abs(decoded - source)) <= header.tolerance
    if header.fill_extent is not None:   # the padding decodes as the fill value, bit for bit
        for level in range(header.levels + 1):
            decoded = pj.decode(enc, level=level)
            for a, end in enumerate(header.fill_extent):
                start = -(-end // 2**level) if a in header.axes else end
                slab = decoded[(slice(None),) * a + (slice(start, None),)]
                assert (slab.view(f"u{slab.itemsize}") ==
                        np.array(header.fill_value).view(f"u{slab.itemsize}")).all()
    if header.mask_length:   # and so do the nodata samples, at every level where a block is all nodata
        source = expected["source"]
        bits = f"u{source.itemsize}"
        nodata = source.view(bits) == np.array(header.fill_value).view(bits)
        for level in range(header.levels + 1):
            decoded = pj.decode(enc, level=level).view(bits)
            expected_fill = all_in_blocks(nodata, header.axes, level)
            assert ((decoded == np.array(header.fill_value).view(bits)) == expected_fill).all()


def all_in_blocks(mask, axes, level):
    """Where every sample of a level's block (2**level along each of
    ``axes``) is set: docs/FORMAT.md 2, "Nodata"."""
    for axis in axes:
        for _ in range(level):
            if mask.shape[axis] % 2:
                pad = [(0, 0)] * mask.ndim
                pad[axis] = (0, 1)
                mask = np.pad(mask, pad, constant_values=True)
            shape = mask.shape[:axis] + (mask.shape[axis] // 2, 2) + mask.shape[axis + 1:]
            mask = mask.reshape(shape).all(axis=axis + 1)
    return mask


@pytest.mark.parametrize("name", NAMES)
def test_golden_source_reencodes_decodably(name):
    """Today's encoder on the same source still gives the same decode (lossless)
    or one at least as close (lossy): catches silent encoder regressions."""
    expected = np.load(GOLDEN / f"{name}.npz")
    old = pj.read_header((GOLDEN / f"{name}.pj2k").read_bytes())
    source = expected["source"]
    mode = {"reversible": old.reversible} if old.mode != "tolerance" else {
        "tolerance": old.tolerance}
    steps = {"i8_lossy_step": 3.0, "v2_i16_lossy_layers": 20.0,   # as in make_golden.py
             "v8_u8_gray_lossy": 6.0, "v8_u8_rgb_ict_lossy_layers": 3.0, "v8_u8_rgb_planar_lossy": 4.0,
             "v8_u16_offset_lossy": 8.0, "v8_i16_3d_lossy": 30.0, "v9_u8_rgb_lossy_layers": 3.0,
             "v10_f32_lossy_layers": 2.0}
    nodata = {"nodata": old.fill_value} if old.mask_length and not np.isnan(old.fill_value) else {}
    enc = pj.encode(source, levels=old.levels, axes=old.axes, colour_axis=old.colour_axis,
                    step=steps.get(name), layers=old.layers, fill_value=old.fill_value, **mode,
                    **nodata)
    assert pj.read_header(enc).fill_extent == old.fill_extent
    dec = pj.decode(enc)
    if old.reversible:
        np.testing.assert_array_equal(dec, source)
    elif old.mode == "tolerance":
        np.testing.assert_array_equal(np.isnan(dec), np.isnan(source))
        assert np.nanmax(np.abs(dec.astype(float) - source)) <= old.tolerance
    else:
        # the band steps may be retuned (DESIGN.md 14), moving the error by a
        # fraction of a percent either way; a regression moves it by more
        old_err = np.abs(expected["level0"].astype(float) - source).mean()
        assert np.abs(dec.astype(float) - source).mean() <= old_err * 1.01 + 1e-12


def test_header_length_is_the_decoders_for_every_version():
    """header_length (the C core's one definition, which readers use to
    fetch a header without its bytes) gives every frozen stream's own
    header length, and refuses geometry no stream has."""
    for name in NAMES:
        h = pj.read_header((GOLDEN / f"{name}.pj2k").read_bytes())
        assert pj._core.header_length(h.version, len(h.shape), len(h.axes), h.levels, h.wavelet,
                                      h.layers, len(h.gaps)) == h.header_length, name
        # (and by mode, as the reader asks before it holds a header)
        assert pj._api.header_length(len(h.shape), len(h.axes), h.levels, h.mode, h.layers,
                                     version=h.version, gaps=len(h.gaps)) == h.header_length, name
    for bad in [(0, 2, 2, 5, 4, 1, 0), (11, 2, 2, 5, 4, 1, 0), (8, 0, 1, 5, 4, 1, 0),
                (8, 2, 4, 5, 4, 1, 0), (8, 2, 2, 11, 4, 1, 0), (8, 2, 2, 5, 5, 1, 0),
                (8, 2, 2, 5, 4, 17, 0), (1, 2, 2, 5, 0, 2, 0), (6, 2, 2, 5, 4, 1, 1),
                (8, 2, 2, 5, 1, 1, 1), (8, 2, 2, 5, 4, 1, 5), (8, 1, 3, 5, 0, 1, 0),
                (5, 2, 2, 5, 4, 1, 0), (2, 2, 2, 5, 0, 1, 0)]:
        with pytest.raises(ValueError, match="no stream has"):
            pj._core.header_length(*bad)
    assert [pj._core.max_exponent(code, wavelet) for code, wavelet in
            [(0, 4), (3, 0), (5, 4), (6, 3), (0, 1), (7, 2)]] == [18, 26, 42, 52, 60, 52]
    for bad in [(8, 0), (0, 5), (6, 0), (7, 4)]:   # (floats are never lossless)
        with pytest.raises(ValueError, match="unknown"):
            pj._core.max_exponent(*bad)
