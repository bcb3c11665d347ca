"""Seed corpus for the fuzzers: real encoded chunks (every dtype, 1-D to 4-D,
lossless and lossy, colour) from crops of ../shared/data.  Generated, not
committed.  Usage: python fuzz/make_seeds.py OUTPUT_DIR (PJ2K_DATA: the corpus
folder, as for the tests)"""
import os
import sys
from pathlib import Path

import numpy as np

import progressive_j2k as pj

DATA = Path(os.environ.get("PJ2K_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def seeds():
    cam = np.load(DATA / "camera.npy")
    rgb = np.load(DATA / "astronaut.npy")
    mr = np.load(DATA / "mr2_uint16.npy")
    ct = np.load(DATA / "ct693_int16.npy")
    vol = np.load(DATA / "anatomical_int16_3d.npy")
    flt = np.load(DATA / "tlrc_float32_3d.npy")
    yield "u8", cam[100:140, 200:236], {}
    yield "i8", (cam[:24, :30].astype(np.int16) - 128).astype(np.int8), {"levels": 3}
    yield "u16", mr[400:432, 500:531], {}
    yield "i16", ct[200:233, 200:230], {"levels": 2}
    yield "u32", cam[:20, :20].astype(np.uint32) << 20, {}
    yield "i32", ct[:17, :19].astype(np.int32) * 9999, {}
    yield "rgb_rct", rgb[50:70, 80:101], {"colour_axis": 2}
    yield "rgb_ict", rgb[50:70, 80:101], {"colour_axis": 2, "reversible": False}
    yield "vol3d", vol[:12, :10, :9], {}
    yield "vol_planes", vol[:4, :16, :12], {"axes": (1, 2)}
    yield "f32_lossy", flt[10:22, 10:21, 10:19], {"reversible": False}
    yield "f64_lossy", flt[:9, :9, :9].astype(np.float64), {"reversible": False, "levels": 1}
    yield "u8_1d", cam[77, :100], {}
    yield "u16_4d", mr[:32, :36].reshape(2, 2, 16, 18), {"axes": (2, 3)}
    yield "u8_levels0", cam[:16, :16], {"levels": 0}
    yield "u8_layers", cam[300:332, 100:130], {"layers": 3}
    yield "i16_lossy_layers", ct[200:224, 200:220], {"reversible": False, "layers": [20, 8]}
    yield "rgb_tolerance_layers", rgb[50:66, 80:96], {"colour_axis": 2, "tolerance": 1.5,
                                                      "layers": 2}
    yield "u16_m97_mixed", mr[400:432, 500:531], {"m97_levels": 0b1011}
    yield "vol3d_m97", vol[:12, :10, :9], {"m97_levels": 0b11}
    yield "rgb_m97_layers", rgb[50:70, 80:101], {"colour_axis": 2, "m97_levels": 1, "layers": 2}
    # version 7's value gaps: a CT's padding beside air and tissue, with layers; colour
    yield "i16_gaps", ct[40:76, 60:96], {"close_gaps": True}
    yield "i16_gaps_layers", ct[40:76, 60:96], {"close_gaps": True, "layers": 2}
    yield "rgb_gaps", np.where(rgb[:20, :24] < 40, 0, rgb[:20, :24]).astype(np.uint8), {
        "colour_axis": 2, "close_gaps": True}
    # version 8's float32 reconstruction: 8-bit gray and planar colour, and
    # steps so fine that the int16-first decode widens to int32, then int64
    yield "u8_lossy_levels0", cam[:9, :13], {"reversible": False, "levels": 0, "step": 0.5}
    yield "rgb_planar_lossy", np.moveaxis(rgb[50:66, 80:96], 2, 0).copy(), {
        "colour_axis": 0, "reversible": False, "step": 2.0}
    yield "u8_lossy_wide", cam[100:116, 200:216], {"reversible": False, "step": 1e-9}
    yield "u16_lossy_wide", mr[400:416, 500:516], {"reversible": False, "step": 1e-9}


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, arr, options in seeds():
        (out / f"{name}.pj2k").write_bytes(pj.encode(np.ascontiguousarray(arr), **options))


if __name__ == "__main__":
    main(sys.argv[1])
