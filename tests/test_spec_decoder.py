"""docs/FORMAT.md against the C core: a decoder written from the document
alone (spec_decoder.py) must give exactly the C decoder's arrays, at every
level and quality layer, for the frozen codestreams of every format version
and for fresh encodes of real data.  Lossless and error-bounded streams only
(the 9/7 path is not in the spec decoder; test_golden.py pins it), and valid
streams only (the spec decoder does not verify the CRCs)."""
from pathlib import Path

import numpy as np
import pytest

import progressive_j2k as pj
import spec_decoder

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_NAMES = sorted(p.stem for p in GOLDEN.glob("*.pj2k")
                      if pj.read_header(p.read_bytes()).wavelet != 1)


def reads(header):
    """Every (level, layer) a reader may ask for (None: all layers)."""
    layers = [None] + list(range(header.layers - 1))
    return [(level, layer) for level in range(header.levels + 1) for layer in layers]


def assert_same_as_c(enc: bytes):
    header = pj.read_header(enc)
    for level, layer in reads(header):
        expected = pj.decode(enc, level=level, layer=layer)
        got = spec_decoder.decode(enc, level=level, layer=layer)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8),
                                      err_msg=f"level {level}, layer {layer}")


def test_golden_set_covers_every_version():
    versions = {pj.read_header((GOLDEN / f"{n}.pj2k").read_bytes()).version for n in GOLDEN_NAMES}
    assert versions == {1, 2, 3, 4, 5, 6}


def test_version_5_golden_files_exercise_every_run_path():
    """The version-5 frozen streams take each rule of FORMAT.md 6.4: bands
    with and without runs, zero runs and broken runs."""
    stats = {}
    for name in GOLDEN_NAMES:
        enc = (GOLDEN / f"{name}.pj2k").read_bytes()
        if pj.read_header(enc).version == 5:
            spec_decoder.decode(enc, stats=stats)
    assert min(stats.get(k, 0) for k in ("run_bands", "plain_bands", "runs", "broken")) > 0, stats


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_spec_decoder_matches_golden(name):
    assert_same_as_c((GOLDEN / f"{name}.pj2k").read_bytes())


CASES = {
    "gray_odd": (lambda r: r("camera")[300:329, 100:123], {}),
    "rgb": (lambda r: r("astronaut")[200:217, 240:255], {"colour_axis": -1}),
    "u16_layers": (lambda r: r("mr2_uint16")[400:424, 380:400], {"layers": 3}),
    "i16_3d": (lambda r: r("anatomical_int16_3d")[10:19, 12:22, 6:13], {}),
    "f32_tolerance": (lambda r: r("tlrc_float32_3d")[20:28, 22:31, 20:27], {"tolerance": 1e-5}),
    "planes": (lambda r: r("ect_uint16_2x512x512")[:, 250:262, 250:263].reshape(2, 1, 12, 13),
               {"axes": (2, 3)}),
    "rgb_tolerance_layers": (lambda r: r("coffee")[150:163, 250:266],
                             {"colour_axis": 2, "tolerance": 1, "layers": 2}),
    "u32_1d": (lambda r: r("camera")[70, :61].astype("u4") * 16777216, {}),
    "rgb_layers": (lambda r: r("astronaut")[300:319, 100:117], {"colour_axis": -1, "layers": 3}),
    # version 5's zero runs: sparse bands from a coarse tolerance, in colour and 3-D
    "gray_runs": (lambda r: r("moon")[60:101, 200:237], {"tolerance": 5}),
    "rgb_runs_layers": (lambda r: r("hubble_deep_field")[100:133, 80:121],
                        {"colour_axis": -1, "tolerance": 4, "layers": 2}),
    "3d_runs": (lambda r: r("mni152_t1_uint8_3d")[0:13, 0:22, 30:51], {}),
    # version 6's 9/7-M levels: mixed with 5/3, on short lines, in colour, 3-D
    # and tolerance mode, with layers
    "gray_m97_mixed": (lambda r: r("camera")[300:329, 100:123], {"m97_levels": 0b101}),
    "short_m97": (lambda r: r("coins")[100:103, 50:57], {"m97_levels": 0b11}),
    "rgb_m97_layers": (lambda r: r("chelsea")[100:119, 200:221],
                       {"colour_axis": -1, "m97_levels": 1, "layers": 2}),
    "3d_m97": (lambda r: r("anatomical_int16_3d")[10:19, 12:22, 6:13], {"m97_levels": 0b111}),
    "f32_tolerance_m97": (lambda r: r("tlrc_float32_3d")[20:28, 22:31, 20:27],
                          {"tolerance": 1e-5, "m97_levels": 1}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_spec_decoder_matches_fresh_encodes(real, case):
    make, options = CASES[case]
    assert_same_as_c(pj.encode(np.ascontiguousarray(make(real)), **options))


def test_spec_decoder_matches_refined_low_band_with_colour(real):
    """Layer tables that shift every band, the low band included: its later
    layers refine values with the colour terms (magnitude and, in version 4,
    sign), which the encoder's own layer placement rarely exercises."""
    from progressive_j2k import _core
    arr = np.ascontiguousarray(real("chelsea")[120:141, 200:219])
    prepared = _core.Prepared(arr.reshape(-1).view(np.uint8), 0, arr.shape, (0, 1), 2, 3, 0, 0.0)
    bands = 1 + 3 * 3
    for tables in (((5,) * bands, (2,) * bands, (0,) * bands), ((3,) * bands, (0,) * bands)):
        enc = prepared.encode(0.0, tables)
        assert pj.read_header(enc).layers == len(tables)
        np.testing.assert_array_equal(pj.decode(enc), arr)
        assert_same_as_c(enc)
