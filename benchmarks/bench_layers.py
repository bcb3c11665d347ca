"""Quality layers: what a layered chunk costs and how well its layers land.

    python benchmarks/bench_layers.py

Per real image and mode, `layers=[80, 40, 20]` against the same encode
without layers: each layer's ratio (its bytes over all resolutions, JPEG
2000's convention) against the one asked, the PSNR of a full-resolution
decode of layers 0..j, the layers' size overhead, and encode and decode
times as ratios to the plain chunk.  No peer here offers layers in-process
(imagecodecs' OpenJPEG encoder writes one layer), so the comparison is with
our own single-layer chunk.  Single thread, one process; times are the best
of three.  Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import math
import platform
import time
import warnings

import numpy as np

import progressive_j2k as pj
from progressive_j2k._layers import cumulative_layer_bytes
from progressive_j2k._metrics import psnr
from _report import DATA, best, write_section

# PSNR here is against the dtype's peak, as every peer's is: targets on the
# 16-bit images that fill little of their range are meant as they are
warnings.simplefilter("ignore", pj.PSNRPeakWarning)

IMAGES = ["camera", "moon", "astronaut", "coffee", "mr2_uint16", "ct693_int16",
          "mni152_t1_uint8_3d"]
LAYERS = [80, 40, 20]
MODES = {"lossless": {}, "lossy ratio=10": {"reversible": False, "ratio": 10},
         "lossy step": {"reversible": False}}


def load(name):
    arr = np.load(DATA / f"{name}.npy")
    return arr[40:168, 40:168, 40:168] if arr.ndim == 3 and arr.shape[-1] != 3 else arr


def main():
    rows, errors, speed = [], [], []
    for name in IMAGES:
        arr = load(name)
        for mode, options in MODES.items():
            if mode == "lossy step":   # the step a 10:1 search found, given
                searched = pj.encode(arr, reversible=False, ratio=10)
                if pj.read_header(searched).mode != "lossy":
                    continue   # (the search returned the lossless stream)
                options = {"reversible": False, "step": _step_of(searched, arr)}
            plain, plain_time = best(lambda: pj.encode(arr, **options))
            layered, layered_time = best(lambda: pj.encode(arr, layers=LAYERS, **options))
            header = pj.read_header(layered)
            ratios = [arr.nbytes / n for n in cumulative_layer_bytes(header)]
            quality = [psnr(pj.decode(layered, layer=j), arr) for j in range(header.layers)]
            _, decode_plain = best(lambda: pj.decode(plain))
            _, decode_all = best(lambda: pj.decode(layered))
            _, decode_first = best(lambda: pj.decode(layered, layer=0))
            errors += [abs(math.log(r / t)) for r, t in zip(ratios, LAYERS)]
            speed.append(layered_time / plain_time)
            rows.append(
                f"| {name} | {mode} | "
                + " / ".join(f"{r:.1f}" for r in ratios) + " | "
                + " / ".join("exact" if math.isinf(q) else f"{q:.1f}" for q in quality) + " | "
                + f"{len(layered) / len(plain) - 1:+.1%} | {layered_time / plain_time:.2f} | "
                + f"{decode_all / decode_plain:.2f} | {decode_first / decode_plain:.2f} |")
    psnr_rows, psnr_errors = [], []
    for name in IMAGES:   # PSNR layers: 12 and 6 dB below a PSNR target
        arr = load(name)
        final = math.floor(psnr(pj.decode(pj.encode(arr, reversible=False, ratio=10)), arr))
        if not math.isfinite(final):
            continue
        targets = [final - 12.0, final - 6.0]
        options = {"reversible": False, "psnr": final}
        plain, plain_time = best(lambda: pj.encode(arr, **options))
        layered, layered_time = best(lambda: pj.encode(arr, layers=targets,
                                                        layer_metric="psnr", **options))
        got = [psnr(pj.decode(layered, layer=j), arr) for j in range(len(targets) + 1)]
        # the floor: a first layer asked far below it lands there (the
        # coarser resolutions complete, the finest cut away)
        lowest = pj.encode(arr, layers=[1e-3], layer_metric="psnr", **options)
        floor = psnr(pj.decode(lowest, layer=0), arr)
        psnr_errors += [abs(g - t) for g, t in zip(got, targets) if t >= floor]
        psnr_rows.append(
            f"| {name} | {final:.0f} | {floor:.1f} | " + " / ".join(f"{t:.0f}" for t in targets)
            + " | "
            + " / ".join(f"{g:.1f}" for g in got) + " | "
            + f"{len(layered) / len(plain) - 1:+.1%} | {layered_time / plain_time:.2f} |")
    errors = np.array(errors)
    lines = [
        "## Quality layers: cost and placement", "",
        f"Produced by `python benchmarks/bench_layers.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}. Each chunk coded with "
        f"`layers={LAYERS}` and without (3-D: a 128^3 crop). Modes: lossless; lossy with "
        "`ratio=10` (the layered chunk meets the ratio too); lossy with the step that "
        "search found, given. Ratios: bytes of layers 0..j over all resolutions; PSNR: "
        "full-resolution decode of layers 0..j (peak 2**bits - 1). Times: layered over "
        "plain, best of 3, single thread. No peer offers layers in-process (imagecodecs' "
        "OpenJPEG encoder writes one), so the reference is our own single-layer chunk.", "",
        "| image | mode | layer ratios (asked 80 / 40 / 20, then all) | PSNR per layer, dB | "
        "size vs no layers | encode time | decode all layers | decode layer 0 |",
        "|---|---|---|---|---|---|---|---|",
        *rows, "",
        f"Layer ratio against the one asked (layers 0-2, all rows): median error "
        f"{math.expm1(float(np.median(errors))):.1%}, largest {math.expm1(float(errors.max())):.1%}, "
        f"{float((errors < math.log(1.15)).mean()):.0%} within 15%. A layered encode takes "
        f"{float(np.median(speed)):.2f}x (median; {min(speed):.2f}-{max(speed):.2f}x) the "
        "time of the same encode without layers.", "",
        "PSNR layers (`layer_metric=\"psnr\"`, lossy: placed by the rate model's error "
        "estimate): `psnr=P` (P: the 10:1 chunk's PSNR, rounded down) with layers at P - 12 "
        "and P - 6 dB. A layer's PSNR cannot fall below the floor: what the complete "
        "coarser resolutions give a full-resolution reader (a first layer asked at -1000 dB).",
        "",
        "| image | P, dB | floor, dB | layers asked, dB | PSNR per layer, dB | "
        "size vs no layers | encode time |",
        "|---|---|---|---|---|---|---|",
        *psnr_rows, "",
        f"PSNR layer against the one asked, where that is above the floor: median error "
        f"{float(np.median(psnr_errors)):.2f} dB, largest {max(psnr_errors):.2f} dB."]
    write_section("layers", "\n".join(lines))
    print("\n".join(lines))


def _step_of(encoded, arr):
    """The base step of a lossy chunk: its low band's step times that band's norm."""
    header = pj.read_header(encoded)
    lengths = tuple(arr.shape[a] for a in header.axes)
    return float(header.steps[0]) * pj._core.band_norms(lengths, header.levels)[0]


if __name__ == "__main__":
    main()
