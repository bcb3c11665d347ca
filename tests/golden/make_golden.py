"""Generate golden codestreams.  Existing ones are frozen: the committed
files are what old data looks like, and tests/test_golden.py must keep
decoding them.  Generate only new cases (e.g. for a new format version):

    python tests/golden/make_golden.py NAME [NAME ...]
"""
import sys
from pathlib import Path

import numpy as np

import progressive_j2k as pj

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from conftest import load  # noqa: E402
from helpers import padded_like_zarr as padded  # noqa: E402
from helpers import with_nodata  # noqa: E402

CASES = {
    "u8_gray_lossless": (lambda: load("camera")[200:232, 300:324], {}),
    "u8_rgb_rct": (lambda: load("astronaut")[100:120, 150:167], {"colour_axis": -1}),
    "u16_levels3": (lambda: load("mr2_uint16")[500:524, 500:524], {"levels": 3}),
    "i16_3d": (lambda: load("anatomical_int16_3d")[10:19, 10:20, 8:15], {}),
    "i32_wide": (lambda: load("ct693_int16")[250:270, 250:266].astype("i4") * 100000, {}),
    "u32_1d": (lambda: load("camera")[50, :50].astype("u4") * 16777216, {}),
    "u16_4d_planes": (lambda: load("ect_uint16_2x512x512")[:, 200:216, 200:216].reshape(2, 1, 16, 16),
                      {"axes": (2, 3)}),
    "f32_3d_lossy": (lambda: load("tlrc_float32_3d")[20:30, 20:29, 20:28], {"reversible": False}),
    "u8_rgb_ict_lossy": (lambda: load("coffee")[100:116, 200:216], {"colour_axis": 2,
                                                                    "reversible": False}),
    "i8_lossy_step": (lambda: (load("moon")[100:124, 100:124].astype("i2") - 128).astype("i1"),
                      {"reversible": False, "step": 3.0}),
    "f32_3d_tolerance": (lambda: load("tlrc_float32_3d")[20:30, 20:29, 20:28],
                         {"tolerance": 1e-6}),
    "u8_rgb_tolerance": (lambda: load("coffee")[150:166, 250:270], {"colour_axis": 2,
                                                                    "tolerance": 2}),
    # format version 2: quality layers
    "v2_u8_gray_layers": (lambda: load("camera")[100:140, 60:100], {"layers": 3}),
    "v2_i16_lossy_layers": (lambda: load("ct693_int16")[250:282, 250:274],
                            {"reversible": False, "step": 20.0, "layers": [30, 10]}),
    "v2_u8_rgb_tolerance_layers": (lambda: load("coffee")[150:166, 250:270],
                                   {"colour_axis": 2, "tolerance": 1, "layers": 2}),
    # format version 3: parent and colour contexts, counted adaptation; odd
    # shapes exercise the parent clamping at band edges
    "v3_u8_gray": (lambda: load("camera")[100:137, 60:89], {}),
    "v3_u8_rgb_rct": (lambda: load("astronaut")[100:133, 150:181], {"colour_axis": -1}),
    "v3_u16_layers": (lambda: load("mr2_uint16")[480:520, 480:515], {"layers": 3}),
    "v3_i16_3d": (lambda: load("anatomical_int16_3d")[5:22, 8:25, 4:17], {}),
    "v3_u8_rgb_ict_lossy_layers": (lambda: load("coffee")[100:132, 200:236],
                                   {"colour_axis": 2, "reversible": False, "layers": [30, 10]}),
    "v3_f32_3d_tolerance": (lambda: load("tlrc_float32_3d")[20:33, 20:31, 20:29],
                            {"tolerance": 1e-6}),
    "v3_u16_4d_planes": (lambda: load("ect_uint16_2x512x512")[:, 200:220, 200:220].reshape(2, 1, 20, 20),
                         {"axes": (2, 3)}),
    # format version 4: the model carried from piece to piece, prior exponent
    # probabilities; RD-optimised quantisation (targets) is encoder-only
    "v4_u8_gray": (lambda: load("camera")[300:341, 200:233], {}),
    "v4_u8_rgb_rct": (lambda: load("chelsea")[100:131, 150:177], {"colour_axis": -1}),
    "v4_u16_layers": (lambda: load("mr2_uint16")[400:436, 380:419], {"layers": 3}),
    "v4_i16_3d": (lambda: load("anatomical_int16_3d")[3:20, 10:27, 6:19], {}),
    "v4_u8_lossy_ratio": (lambda: load("moon")[200:248, 100:140], {"reversible": False,
                                                                  "ratio": 8}),
    "v4_u8_rgb_ict_lossy_layers": (lambda: load("coffee")[120:152, 220:256],
                                   {"colour_axis": 2, "reversible": False, "ratio": 10,
                                    "layers": [40, 20]}),
    "v4_f32_3d_tolerance_layers": (lambda: load("tlrc_float32_3d")[18:31, 19:30, 21:30],
                                   {"tolerance": 1e-6, "layers": 2}),
    # format version 5: zero runs in quiet groups of four (bands with at least
    # half zeros); coarse tolerances and low rates give runs and broken runs
    "v5_u8_gray": (lambda: load("camera")[310:351, 190:229], {}),
    "v5_u8_gray_tolerance": (lambda: load("camera")[40:89, 300:345], {"tolerance": 6}),
    "v5_u8_rgb_rct": (lambda: load("coffee")[60:93, 120:151], {"colour_axis": -1}),
    "v5_u16_layers": (lambda: load("mr2_uint16")[380:420, 360:401], {"layers": 3}),
    "v5_i16_3d": (lambda: load("anatomical_int16_3d")[0:17, 0:27, 2:21], {}),
    "v5_u8_lossy_ratio": (lambda: load("moon")[150:214, 80:128], {"reversible": False,
                                                                 "ratio": 30}),
    "v5_u8_rgb_ict_lossy_layers": (lambda: load("chelsea")[100:140, 180:220],
                                   {"colour_axis": 2, "reversible": False, "ratio": 20,
                                    "layers": [80, 40]}),
    "v5_f32_3d_tolerance_layers": (lambda: load("tlrc_float32_3d")[16:31, 17:30, 19:32],
                                   {"tolerance": 0.05, "layers": 2}),
    # format version 6: 9/7-M levels (the encoder's choice, and fixed mixes);
    # small chunks of smooth data, where the encoder picks 9/7-M
    "v6_u8_gray_chosen": (lambda: load("immunohistochemistry")[100:141, 150:193, 0], {}),
    "v6_u8_gray_mixed": (lambda: load("camera")[300:341, 200:233], {"m97_levels": 0b10101}),
    "v6_u8_rgb_rct": (lambda: load("chelsea")[100:131, 150:177], {"colour_axis": -1,
                                                                   "m97_levels": 1}),
    "v6_u16_layers": (lambda: load("mr2_uint16")[400:436, 380:419], {"layers": 3,
                                                                      "m97_levels": 0b11}),
    "v6_i16_3d": (lambda: load("anatomical_int16_3d")[3:20, 10:27, 6:19], {"m97_levels": 0b111}),
    "v6_i32_short": (lambda: load("ct693_int16")[250:253, 250:259].astype("i4") * 100000,
                     {"m97_levels": 0b11}),
    "v6_f32_3d_tolerance": (lambda: load("tlrc_float32_3d")[18:31, 19:30, 21:30],
                            {"tolerance": 1e-6, "m97_levels": 1}),
    "v6_u8_lossy_ratio": (lambda: load("moon")[150:214, 80:128], {"reversible": False,
                                                                 "ratio": 30}),
    # still version 6: the rounded 5/3 (wavelets 4 lossless and 3 error-bounded)
    "v6r_u8_gray": (lambda: load("camera")[240:281, 100:137], {"m97_levels": 0}),
    "v6r_u8_rgb_rct_layers": (lambda: load("astronaut")[60:93, 200:229], {"colour_axis": -1,
                                                                          "layers": 2}),
    "v6r_u16_m97": (lambda: load("mr2_uint16")[300:337, 420:451], {"m97_levels": 1}),
    "v6r_i16_3d": (lambda: load("anatomical_int16_3d")[5:22, 12:29, 4:17], {"m97_levels": 0}),
    "v6r_u8_tolerance": (lambda: load("moon")[200:245, 60:98], {"tolerance": 3.0,
                                                                 "m97_levels": 0}),
    "v6r_f32_3d_tolerance_layers": (lambda: load("tlrc_float32_3d")[17:30, 20:31, 20:29],
                                    {"tolerance": 1e-5, "layers": 2}),
    # format version 7: lossless streams state their value gaps (none unless
    # close_gaps): a CT's field-of-view edge (padding -2000 beside air), a
    # volume's background, two frames with layers
    "v7_u8_gray": (lambda: load("camera")[140:181, 220:253], {}),
    "v7_i16_ct_gaps": (lambda: load("ct693_int16")[45:86, 60:101], {"close_gaps": True}),
    "v7_u8_3d_gaps": (lambda: load("mni152_t1_uint8_3d")[60:77, 30:47, 60:75],
                      {"close_gaps": True}),
    "v7_u16_gaps_layers": (lambda: load("ect_uint16_2x512x512")[:, 200:231, 200:237],
                           {"close_gaps": True, "layers": 3}),
    # format version 8: lossy 8- and 16-bit samples reconstructed in float32
    # (a CT crop on a large offset rounds apart from float64 in many
    # samples); every other stream is still written as version 7
    "v8_u8_gray_lossy": (lambda: load("camera")[220:257, 140:181], {"reversible": False, "step": 6.0}),
    "v8_u8_rgb_ict_lossy_layers": (lambda: load("coffee")[120:153, 210:241],
                                   {"colour_axis": 2, "reversible": False, "step": 3.0,
                                    "layers": [40, 12]}),
    "v8_u8_rgb_planar_lossy": (lambda: np.moveaxis(load("astronaut")[60:89, 300:335], 2, 0),
                               {"colour_axis": 0, "reversible": False, "step": 4.0}),
    "v8_u16_offset_lossy": (lambda: (load("ct693_int16")[97:130, 72:109].astype(np.int64)
                                     + 32768).astype(np.uint16),
                            {"reversible": False, "step": 8.0}),
    "v8_i16_3d_lossy": (lambda: load("anatomical_int16_3d")[4:21, 9:26, 5:18],
                        {"reversible": False, "step": 30.0}),
    # format version 9: zarr's padding (trailing slices of the fill value)
    # coded from the data and restored on decode: along transformed and
    # other axes, NaN, lossy float32 reconstruction with layers
    "v9_u16_fill_lossless": (lambda: padded(load("mr2_uint16")[480:520, 480:517], (31, 29), 0),
                             {"fill_value": 0}),
    "v9_f32_3d_nan_tolerance": (lambda: padded(load("tlrc_float32_3d")[20:33, 20:31, 20:29],
                                               (13, 8, 6), np.nan),
                                {"tolerance": 1e-6, "fill_value": np.nan}),
    "v9_u8_rgb_lossy_layers": (lambda: padded(load("coffee")[120:153, 210:241], (26, 31, 3), 255),
                               {"colour_axis": 2, "reversible": False, "step": 3.0,
                                "layers": [40, 12], "fill_value": 255}),
    "v9_i16_planes_fill": (lambda: padded(load("ct693_int16")[90:174, 72:91].reshape(4, 21, 19),
                                          (3, 21, 14), -1024),
                           {"axes": (1, 2), "colour_axis": None, "fill_value": -1024}),
    # format version 10: nodata samples inside the data, restored from the
    # mask at every level: with padding, NaN in 3-D without padding, lossy
    # layers, planes
    "v10_u16_nodata_lossless": (lambda: padded(with_nodata(load("mr2_uint16")[384:424, 512:549],
                                                           80, 65535), (33, 29), 65535),
                                {"fill_value": 65535, "nodata": 65535}),
    "v10_f32_3d_nan_tolerance": (lambda: with_nodata(load("tlrc_float32_3d")[20:33, 20:31, 20:29],
                                                     4e-4, np.nan),
                                 {"tolerance": 1e-6, "fill_value": np.nan}),
    "v10_f32_lossy_layers": (lambda: with_nodata(load("mr2_uint16")[470:506, 300:333].astype(
                                 np.float32), 60, -999),
                             {"reversible": False, "step": 2.0, "layers": [40, 12],
                              "nodata": -999}),
    "v10_i16_planes_nodata": (lambda: with_nodata(load("ct693_int16")[0:84, 128:147].reshape(
                                  4, 21, 19), -900, -32768),
                              {"axes": (1, 2), "colour_axis": None, "nodata": -32768}),
}


def main(names):
    unknown = set(names) - set(CASES)
    if not names or unknown:
        sys.exit(f"name the cases to generate (unknown: {sorted(unknown)}); known: {list(CASES)}")
    for name in names:
        make, options = CASES[name]
        arr = np.ascontiguousarray(make())
        enc = pj.encode(arr, **options)
        header = pj.read_header(enc)
        (HERE / f"{name}.pj2k").write_bytes(enc)
        levels = {f"level{k}": pj.decode(enc, level=k) for k in range(header.levels + 1)}
        if header.layers > 1:
            levels.update({f"level{k}_layer{j}": pj.decode(enc, level=k, layer=j)
                           for k in range(header.levels + 1) for j in range(header.layers)})
        np.savez_compressed(HERE / f"{name}.npz", source=arr, **levels)
        print(name, arr.shape, arr.dtype, len(enc), "bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
