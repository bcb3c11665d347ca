"""docs/FORMAT.md against the C core: a decoder written from the document
alone (spec_decoder.py) must give exactly the C decoder's arrays, at every
level and quality layer, for the frozen codestreams of every format version
and for fresh encodes of real data: lossless, error-bounded and lossy (9/7)
streams.  Valid streams only (the spec decoder does not verify the CRCs),
besides forged quantisation steps that reach the inverse passes' clamp."""
import struct
from pathlib import Path

import numpy as np
import pytest

import progressive_j2k as pj
import spec_decoder
from helpers import with_version

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_NAMES = sorted(p.stem for p in GOLDEN.glob("*.pj2k"))


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
    assert versions == {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}


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
    # version 7's value gaps: a CT's padding beside its air and tissue, a
    # volume's background, colour (gaps closed before the RCT), layers
    "i16_gaps": (lambda r: r("ct693_int16")[50:79, 75:101], {"close_gaps": True}),
    "3d_gaps": (lambda r: r("mni152_t1_uint8_3d")[60:69, 30:41, 60:71], {"close_gaps": True}),
    "rgb_gaps_layers": (lambda r: np.where(r("astronaut")[0:19, 0:23] < 40, 0,
                                           r("astronaut")[0:19, 0:23]).astype(np.uint8),
                        {"colour_axis": -1, "close_gaps": True, "layers": 2}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_spec_decoder_matches_fresh_encodes(real, case):
    make, options = CASES[case]
    enc = pj.encode(np.ascontiguousarray(make(real)), **options)
    assert bool(pj.read_header(enc).gaps) == ("gaps" in case)
    assert_same_as_c(enc)


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


# The lossy 9/7 path (wavelet 1): float output shows every rounding of the
# lifting and the ICT; levels=0 with step 1 makes every value an exact half
# (section 7's rounding); forged steps reach the passes' clamp.
LOSSY_CASES = {
    "u8_step": (lambda r: r("camera")[300:324, 100:140], {"step": 4}),
    "u8_odd_ratio": (lambda r: r("camera")[200:233, 50:67], {"ratio": 6}),
    "u8_psnr": (lambda r: r("moon")[60:84, 200:240], {"psnr": 38}),
    "u8_layers3": (lambda r: r("coins")[100:124, 50:90], {"step": 1, "layers": 3}),
    "u8_rdo_layers": (lambda r: r("camera")[10:43, 10:27], {"step": 2, "rdo": True, "layers": 3}),
    "u8_layer_ratios": (lambda r: r("camera")[300:324, 100:140], {"step": 0.5, "layers": [40, 10]}),
    "u8_saturated": (lambda r: np.where(r("camera")[100:124, 0:40] > 128, 255, 0).astype(np.uint8),
                     {"step": 8, "layers": 2}),
    "i8_levels0_halves": (lambda r: (r("camera")[300:309, 100:113].astype(np.int16) - 128)
                          .astype(np.int8), {"step": 1, "levels": 0}),
    "rgb_psnr_layers": (lambda r: r("chelsea")[100:120, 200:228], {"psnr": 35, "layers": 3}),
    "rgb_ratio": (lambda r: r("coffee")[150:167, 250:283], {"ratio": 8}),
    "rgb_no_ict": (lambda r: r("astronaut")[200:212, 240:260], {"step": 3, "colour_axis": None}),
    "rgb_planes": (lambda r: np.stack([r("hubble_deep_field")[100:112, 80:98],
                                       r("hubble_deep_field")[140:152, 80:98]]),
                   {"step": 4, "axes": (1, 2), "colour_axis": 3, "layers": 2}),
    "u8_3d_layers": (lambda r: r("mni152_t1_uint8_3d")[40:49, 50:62, 40:50],
                     {"psnr": 40, "layers": 3}),
    "u16_layers": (lambda r: r("mr2_uint16")[300:333, 300:317], {"ratio": 5, "layers": 3}),
    "i16_ct": (lambda r: r("ct693_int16")[200:224, 200:240], {"step": 10}),
    "i16_3d": (lambda r: r("anatomical_int16_3d")[10:19, 12:22, 6:13], {"step": 5, "layers": 2}),
    "u32_1d": (lambda r: r("camera")[70, :61].astype("u4") * 16777216, {"step": 2.0 ** 26}),
    "i32": (lambda r: r("ct693_int16")[200:220, 200:230].astype("i4") * 3000, {"ratio": 4}),
    "f32_2d_rdo": (lambda r: r("tlrc_float32_3d")[24, 10:34, 10:50], {"ratio": 6, "rdo": True}),
    "f32_huge": (lambda r: (r("camera")[0:16, 0:20] / 255.0 * 3.4e38).astype(np.float32),
                 {"step": 1e36}),
    "f64_3d_layers": (lambda r: r("tlrc_float32_3d")[20:29, 22:34, 20:30].astype(np.float64),
                      {"psnr": 70, "layers": 3}),
    "f64_rgb_ict": (lambda r: r("astronaut")[200:220, 240:268] / 255.0,
                    {"step": 1e-3, "colour_axis": 2, "layers": 2}),
    # tiny chunks: the decoder fills its float32 buffer in place over the
    # int16 values (8-bit samples) or the int32 ones (16-bit), and re-stamped
    # as version 7 (test_spec_decoder_matches_version_7_lossy_streams) its
    # float64 one over the int32 values (quantise.c pj2k_dequantise_in_place):
    # the last value covers its own, and chunks of a few values end in
    # pieces of one
    "u8_one": (lambda r: r("camera")[256:257, 256:257], {"step": 0.5}),
    "u8_two_1d": (lambda r: r("camera")[100, 7:9], {"step": 0.25}),
    "u16_3x1x4": (lambda r: r("mr2_uint16")[300:306, 300:302].reshape(3, 1, 4), {"step": 0.5}),
    "u8_3d_odd": (lambda r: r("mni152_t1_uint8_3d")[60:65, 70:73, 80:87], {"step": 0.5}),
    "rgb_one_row": (lambda r: r("astronaut")[200:201, 240:251], {"step": 0.5}),
    "f64_rgb_ict_3d": (lambda r: np.stack([r("chelsea")[100:109, 200:212] / 7.0,
                                           r("chelsea")[110:119, 200:212] / 7.0]),
                       {"step": 0.05, "colour_axis": 3, "axes": (0, 1, 2)}),
    # 8-bit samples whose values need int32: float32 results where those go
    "u8_beyond_int16": (lambda r: r("camera")[200:237, 300:329], {"step": 0.004}),
    "naxes1_planes": (lambda r: r("camera")[300:306, 100:140], {"step": 2, "axes": (1,)}),
    # a head's edge: lines of zeros (the inverse passes skip them) beside tissue
    "u8_3d_background": (lambda r: r("mni152_t1_uint8_3d")[70:91, 0:37, 30:75], {"ratio": 20}),
    "f64_3d_background": (lambda r: r("mni152_t1_uint8_3d")[70:91, 0:37, 30:75] / 7.0,
                          {"step": 0.01, "layers": 2}),
    # quantised values up to 2**55 (int64 coefficients): |q| rounds as it
    # becomes a float64 before the 0.5 is added
    "f64_3d_q_beyond_2_53": (lambda r: r("mni152_t1_uint8_3d")[60:76, 60:76, 60:76] * (1e6 / 255),
                             {"step": 1e6 / 2**49.5, "levels": 4}),
}


@pytest.mark.filterwarnings("ignore::progressive_j2k.PSNRPeakWarning")
@pytest.mark.parametrize("case", sorted(LOSSY_CASES))
def test_spec_decoder_matches_lossy_encodes(real, case):
    make, options = LOSSY_CASES[case]
    enc = pj.encode(np.ascontiguousarray(make(real)), mode="lossy", **options)
    assert pj.read_header(enc).wavelet == 1
    assert_same_as_c(enc)


def crc32c(data: bytes) -> int:
    """FORMAT.md section 1, bit by bit (headers are small)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def with_steps_times(enc: bytes, factor: float) -> bytes:
    """A forged stream: every quantisation step multiplied, the header's CRC redone."""
    h, buf = pj.read_header(enc), bytearray(enc)
    nbands, pieces = len(h.steps), len(h.piece_ends) * len(h.layer_shifts)
    at = h.header_length - 4 - 12 * pieces - 4 * nbands
    steps = struct.unpack_from(f"<{nbands}f", buf, at)
    assert np.allclose(steps, h.steps)
    struct.pack_into(f"<{nbands}f", buf, at, *[min(s * factor, 3e38) for s in steps])
    struct.pack_into("<I", buf, h.header_length - 4, crc32c(bytes(buf[:h.header_length - 4])))
    return bytes(buf)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 9])
def test_spec_decoder_matches_lossy_short_lines(real, n):
    """The inverse 9/7's sweep along the first two axes reads rows mirrored
    at any distance from a line's ends: lines of n samples along each."""
    vol = real("mni152_t1_uint8_3d")[60:, 70:, 40:]
    for shape in ((n, 6, 5), (4, n, 7)):
        arr = np.ascontiguousarray(vol[:shape[0], :shape[1], :shape[2]])
        assert arr.all()   # tissue: no line is all zeros (those are skipped)
        assert_same_as_c(pj.encode(arr, reversible=False, step=2.0, levels=2))


@pytest.mark.parametrize("factor", [1e9, 1e13, 1e30])
def test_spec_decoder_matches_forged_steps_at_the_pass_bound(real, factor):
    """Section 4's clamp of every inverse pass to [-1e12, 1e12] (integer
    dtypes): huge steps drive coefficients past it, and both decoders clamp
    alike."""
    assert crc32c(b"123456789") == 0xE3069283
    for a in (real("ct693_int16")[200:224, 200:240], real("astronaut")[200:212, 240:260]):
        enc = pj.encode(np.ascontiguousarray(a), mode="lossy", step=4)
        assert_same_as_c(with_steps_times(enc, factor))


@pytest.mark.parametrize("options", [{"levels": 0}, {"levels": 2, "layers": [40, 10]}])
def test_spec_decoder_matches_forged_steps_beyond_float32(real, options):
    """Version 8's float32 reconstruction of forged steps near float32's
    largest value: values that become infinite before any inverse pass can
    clamp them (levels 0), their inverse ICT's inf - inf (NaN: the dtype's
    lowest value), and a layer's 2**s * step beyond float32 (its largest
    finite value): both decoders alike."""
    a = np.ascontiguousarray(real("astronaut")[200:212, 240:260])
    enc = with_steps_times(pj.encode(a, mode="lossy", step=4, **options), 1e38)
    assert pj.read_header(enc).version == 8
    decoded = pj.decode(enc)
    assert (decoded == 0).any() and (decoded == 255).any()
    assert_same_as_c(enc)


@pytest.mark.filterwarnings("ignore::progressive_j2k.PSNRPeakWarning")
@pytest.mark.parametrize("case", ["u8_one", "u8_two_1d", "u16_3x1x4", "u8_3d_odd", "rgb_one_row",
                                  "u8_layers3", "rgb_psnr_layers", "i16_3d"])
def test_spec_decoder_matches_version_7_lossy_streams(real, case):
    """8- and 16-bit lossy streams of version 7 (these with their version
    byte set to 7) keep the float64 rules, and the decoder's float64 buffer
    filled in place over the int32 values."""
    make, options = LOSSY_CASES[case]
    enc = pj.encode(np.ascontiguousarray(make(real)), mode="lossy", **options)
    assert pj.read_header(enc).version == 8
    assert_same_as_c(with_version(enc, 7))
