"""Rate-distortion benchmark: progressive_j2k lossy (9/7) against OpenJPEG 9/7,
HTJ2K (OpenJPH) and JPEG XL, on the real images in ../shared/data.

    python benchmarks/bench_lossy.py [--quick] [--ratios 10 20 40 80] [--output benchmarks/RESULTS.md]

For every image and compression ratio R, ours encodes with ``ratio=R`` (its own
step search) and, for speed, once more with the fixed step that search chose.
Each peer's quality knob (OpenJPEG: target PSNR; HTJ2K: quantisation step;
JPEG XL: distance) is searched until two of its encodes bracket our exact
size, and its PSNR at our bits/sample is interpolated linearly in log(rate)
between them; its speed is timed at the nearer of the two.  PSNR has peak
2**bits - 1 over the whole array.  Single thread, one process; speeds are
the best of TIMING_ROUNDS rounds over all cells.  Writes its
section of RESULTS.md and, when matplotlib is installed, rd_curves.png beside it.
"""
from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import imagecodecs
import numpy as np

import progressive_j2k as pj
from progressive_j2k._metrics import psnr

import _plots
from _report import RESULTS, write_section
from bench_lossless import CLASSES, DATA, FRAME_STACK, as_unsigned, best_time, geomean, planes

# PSNR here is against the dtype's peak, as every peer's is: targets on the
# 16-bit images that fill little of their range are meant as they are
warnings.simplefilter("ignore", pj.PSNRPeakWarning)

OURS = "progressive_j2k"
RATIOS = (10, 20, 40, 80)
#: The image whose curves the figure shows, per class.
SHOWN = {"8-bit gray": "camera", "RGB 8-bit": "astronaut", "16-bit": "mr2_uint16",
         "3D volume": "mni152_t1_uint8_3d"}
#: Every speed is the best of this many rounds of timings, each round over
#: every image and ratio in turn: this host's speed drifts by 10-40% over
#: seconds, and a cell timed once (ours, then its peers) could fall in a slow
#: phase for one codec and not the other.
TIMING_ROUNDS = 3
MATCHED = 0.1     # stop once the bracketing encodes are within 10% in size ...
CLOSE = 0.01      # ... or one of them is within 1% of ours
MAX_TRIALS = 12


def unwrap(decoded, original):
    """imagecodecs' htj2k_decode (OpenJPH) casts out-of-range reconstructions
    to the dtype without clamping (a 255 that comes back as 256 reads 0).
    Undo the wrap-around and clamp, as a clamping decoder would."""
    span = 2.0 ** (8 * original.dtype.itemsize)
    d = decoded.astype(np.float64)
    d -= span * np.round((d - original) / span)
    info = np.iinfo(original.dtype)
    return np.clip(d, info.min, info.max)


@dataclass
class Peer:
    """A 2-D codec with one quality knob, driven through x, a number that grows
    with the rate (knob = to_knob(x)); x is searched within [lo, hi] from
    start(ours), a guess from our result at the same size."""
    name: str
    encode: Callable      # (plane, knob) -> bytes
    decode: Callable      # bytes -> plane
    to_knob: Callable
    start: Callable
    lo: float
    hi: float
    dx: float             # the first moves while bracketing
    unsigned: bool = False
    fix: Callable | None = None


PEERS = [
    Peer("OpenJPEG 9/7", lambda p, k: imagecodecs.jpeg2k_encode(
             p, level=k, reversible=False, numthreads=1),
         lambda e: imagecodecs.jpeg2k_decode(e, numthreads=1),
         to_knob=lambda x: x, start=lambda o: o["psnr"],          # x = target PSNR, dB
         lo=10.0, hi=160.0, dx=3.0),
    Peer("HTJ2K (OpenJPH)", lambda p, k: imagecodecs.htj2k_encode(p, level=k, reversible=False),
         imagecodecs.htj2k_decode,
         to_knob=lambda x: 2.0**-x,                                # qstep, in units of 2**bits
         start=lambda o: -math.log2(o["step"] / 2.0 ** o["bits"]), lo=0.0, hi=16.5, dx=1.0,
         fix=unwrap),
    Peer("JPEG XL", lambda p, k: imagecodecs.jpegxl_encode(p, distance=k, numthreads=1),
         lambda e: imagecodecs.jpegxl_decode(e, numthreads=1),
         to_knob=lambda x: 2.0**-x, start=lambda o: 0.0,           # distance 25 .. 0.01
         lo=-4.6, hi=6.6, dx=1.0, unsigned=True),
]


def run_peer(peer, a, x):
    """Encode every plane at x; returns (bits/sample, PSNR, encoded planes)."""
    src = as_unsigned(a) if peer.unsigned else a
    knob = peer.to_knob(x)
    encoded = [peer.encode(p, knob) for p in planes(src)]
    decoded = np.stack([peer.decode(e) for e in encoded]).reshape(src.shape)
    if peer.fix:
        decoded = peer.fix(decoded, src)
    return 8 * sum(map(len, encoded)) / a.size, psnr(decoded, src), encoded


def match_rate(trial, target, x0, lo, hi, dx):
    """Search x (rate grows with x) for two trials bracketing the target rate.
    Returns (PSNR at target interpolated in log rate or None, x of the trial
    nearest the target, {x: (bps, psnr)})."""
    points = {}
    x = x0
    for _ in range(MAX_TRIALS):
        x = min(max(x, lo), hi)
        if x in points:
            break                                    # a limit reached
        points[x] = trial(x)
        below = [(bps, p, x_) for x_, (bps, p) in points.items() if bps <= target]
        above = [(bps, p, x_) for x_, (bps, p) in points.items() if bps >= target]
        if below and above:
            b, a = max(below), min(above)
            if (math.log(a[0] / b[0]) < MATCHED
                    or min(abs(math.log(b[0] / target)), abs(math.log(a[0] / target))) < CLOSE):
                break
            f = math.log(target / b[0]) / math.log(a[0] / b[0])   # secant in log rate
            x = b[2] + min(max(f, 0.1), 0.9) * (a[2] - b[2])
        elif below:
            x = max(t[2] for t in below) + dx
        else:
            x = min(t[2] for t in above) - dx
    nearest = min(points, key=lambda x_: abs(math.log(points[x_][0] / target)))
    below = [v for v in points.values() if v[0] <= target]
    above = [v for v in points.values() if v[0] >= target]
    if below and above:
        (b_bps, b_p), (a_bps, a_p) = max(below), min(above)
        f = math.log(target / b_bps) / math.log(a_bps / b_bps) if a_bps > b_bps else 0.0
        return b_p + f * (a_p - b_p), nearest, points
    bps, p = points[nearest]
    return (p if abs(math.log(bps / target)) < CLOSE else None), nearest, points


def ours(a, ratio, **options):
    def encode(**kw):   # the defaults: RGB images get the colour transform
        return pj.encode(a, reversible=False, **options, **kw)

    e = encode(ratio=ratio)
    if pj.read_header(e).mode == "lossless":   # the lossless stream fitted the target
        step = 1.0                             # (a start for HTJ2K's knob)

        def encode_fixed():
            return pj.encode(a, **options)
    else:
        # The base step the search chose: header steps are base / band norm,
        # so one probe encode at a known step gives the norm.
        probe = pj.read_header(encode(step=1.0)).steps[0]
        step = pj.read_header(e).steps[0] / probe

        def encode_fixed():   # as the search codes (docs/DESIGN.md 18)
            return encode(step=step, rdo=True)
    fixed = encode_fixed()
    quality = psnr(pj.decode(e), a)
    # a PSNR target at the quality the ratio search reached (OpenJPEG's knob here)
    target_db = math.floor(quality * 10) / 10 if math.isfinite(quality) else None
    timed = {"enc": lambda: encode(ratio=ratio), "enc_fixed": encode_fixed,
             "dec": lambda: pj.decode(e)}
    if target_db is not None:
        timed["enc_psnr"] = lambda: encode(psnr=target_db)
    return {"bps": 8 * len(e) / a.size, "psnr": quality, "step": step,
            "bits": 8 * a.itemsize, "fixed_size": len(fixed) / len(e),
            "enc": None, "enc_fixed": None, "enc_psnr": None, "dec": None,
            "timed": (a.nbytes, timed)}


def peer_at(peer, a, mine):
    value, x, points = match_rate(lambda x: run_peer(peer, a, x)[:2], mine["bps"],
                                  peer.start(mine), peer.lo, peer.hi, peer.dx)
    result = {"psnr": value, "trials": len(points), "curve": list(points.values()),
              "enc": None, "dec": None, "timed": (a.nbytes, {})}
    if value is not None:                  # timed only where it matches our size
        src = as_unsigned(a) if peer.unsigned else a
        knob = peer.to_knob(x)
        encoded = run_peer(peer, a, x)[2]
        result["timed"][1].update(enc=lambda: [peer.encode(p, knob) for p in planes(src)],
                                  dec=lambda: [peer.decode(e) for e in encoded])
    return result


def time_rounds(results, min_total, rounds=TIMING_ROUNDS):
    """Fill each result's speeds (MB/s of raw data) from its "timed"
    callables: the best time over `rounds` rounds, each over every result."""
    best = {}
    for _ in range(rounds):
        for i, result in enumerate(results):
            for key, fn in result["timed"][1].items():
                t = best_time(fn, min_total)
                best[i, key] = min(best.get((i, key), math.inf), t)
    for i, result in enumerate(results):
        nbytes, timed = result.pop("timed")
        for key in timed:
            result[key] = nbytes / best[i, key] / 1e6


def frame_stack_rows(ratios):
    """The frame stack with the 3-D transform forced (axes=(0, 1, 2)) against
    OpenJPEG, which codes it frame by frame; the rows above use our default,
    which codes its frames as planes."""
    a = np.load(DATA / f"{FRAME_STACK}.npy")
    lines = ["", f"{FRAME_STACK} with the 3-D transform forced (`axes=(0, 1, 2)`, the codecs' "
             "fixed rule; the rows above use encode()'s default, which codes these two unlike "
             "frames as planes):", "",
             "| ratio | bps | ours dB | OpenJPEG 9/7 dB | ours - OpenJPEG |", "|---|---|---|---|---|"]
    for ratio in ratios:
        mine = ours(a, ratio, axes=(0, 1, 2))
        mine.pop("timed")   # (sizes and PSNRs only)
        peer = peer_at(PEERS[0], a, mine)["psnr"]
        diff = "n/a" if peer is None else f"{mine['psnr'] - peer:+.2f}"
        lines.append(f"| {ratio:g} | {mine['bps']:.3f} | {mine['psnr']:.2f} | {fmt(peer)} | {diff} |")
    return lines


def fmt(v):
    return "n/a" if v is None else f"{v:.2f}"


def gmean(values, spec=".1f"):
    """Geometric mean of the values that exist, formatted."""
    values = [v for v in values if v is not None]
    return format(geomean(values), spec) if values else "n/a"


def over(r, key, peer):
    """Ours / peer speed for one result (key enc, enc_fixed, enc_psnr or dec;
    the peer's enc for the encodes), None where either has no value."""
    ours_value, peer_value = r[OURS][key], r[peer][key.split("_")[0]]
    return ours_value / peer_value if ours_value and peer_value else None


#: zarr-sized chunks: the 2-D images shown, cut into tiles of these sizes.
CHUNK_SIZES = (128, 256)


def chunk_rows(ratios, min_total):
    """Encode speed on zarr-sized chunks: each whole tile of the shown 2-D
    images coded on its own with ratio=R (a search per tile, as zarr's
    writes do), against OpenJPEG on the same tiles at the PSNR ours reached
    on each (rounded down to 0.1 dB; its knob)."""
    lines = ["", "### Chunks: encode speed on tiles", "",
             "Each whole tile of the shown 2-D images coded alone, as zarr writes chunks: ours "
             "with `ratio=R` (a search per tile); OpenJPEG with its PSNR knob at the PSNR ours "
             "reached on that tile (rounded down to 0.1 dB; lossless where ours stored the tile "
             "losslessly): its speed hardly depends on that knob (which it may undershoot, so "
             "its sizes are not compared here). "
             "Met: tiles within 5% of the target size (the rest take their lossless stream, "
             "which is smaller, or cannot reach it).", "",
             "| image | tile | ratio | met | encode ours MB/s | OpenJPEG MB/s | ours/OpenJPEG |",
             "|---|---|---|---|---|---|---|"]
    for cls in ("8-bit gray", "RGB 8-bit", "16-bit"):
        a = np.load(DATA / f"{SHOWN[cls]}.npy")
        for size in CHUNK_SIZES:
            tiles = [np.ascontiguousarray(a[y:y + size, x:x + size])
                     for y in range(0, a.shape[0] - size + 1, size)
                     for x in range(0, a.shape[1] - size + 1, size)]
            raw = sum(t.nbytes for t in tiles)
            for ratio in ratios:
                ours_tiles = [pj.encode(t, reversible=False, ratio=ratio) for t in tiles]
                met = np.mean([abs(t.nbytes / len(e) / ratio - 1) <= 0.05
                               for t, e in zip(tiles, ours_tiles)])
                # (a tile ours stored losslessly: OpenJPEG lossless too)
                levels = [psnr(pj.decode(e), t) for t, e in zip(tiles, ours_tiles)]
                levels = [math.floor(q * 10) / 10 if math.isfinite(q) else None for q in levels]

                def peer(t, q):
                    return imagecodecs.jpeg2k_encode(t, level=q, reversible=q is None)

                mine = raw / best_time(lambda: [pj.encode(t, reversible=False, ratio=ratio)
                                               for t in tiles], min_total) / 1e6
                theirs = raw / best_time(lambda: [peer(t, q) for t, q in zip(tiles, levels)],
                                         min_total) / 1e6
                lines.append(f"| {SHOWN[cls]} | {size}² | {ratio:g} | {met:.0%} | {mine:.1f} | "
                             f"{theirs:.1f} | {mine / theirs:.2f} |")
                print(f"tiles {SHOWN[cls]} {size} R {ratio:g}: ours {mine:.1f} MB/s, "
                      f"OpenJPEG {theirs:.1f}", file=sys.stderr)
    return lines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="shorter timings, ratios 10 and 40, two or three images per class")
    parser.add_argument("--ratios", type=float, nargs="+", default=None)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    min_total = 0.05 if args.quick else 0.2
    ratios = args.ratios or ((10, 40) if args.quick else RATIOS)
    classes = {c: [i for i in imgs if not args.quick or i in imgs[:2] or i == SHOWN[c]]
               for c, imgs in CLASSES.items()}
    names = [p.name for p in PEERS]
    results = {}   # (image, ratio) -> {OURS: ..., peer: ...}
    for images in classes.values():
        for image in images:
            a = np.load(DATA / f"{image}.npy")
            for ratio in ratios:
                r = results[image, ratio] = {OURS: ours(a, ratio)}
                for peer in PEERS:
                    r[peer.name] = peer_at(peer, a, r[OURS])
                print(f"{image:22s} R {ratio:g}: {r[OURS]['bps']:.3f} bps  ours "
                      f"{r[OURS]['psnr']:.2f} dB  " + "  ".join(
                          f"{n} {fmt(r[n]['psnr'])} ({r[n]['trials']})" for n in names),
                      file=sys.stderr)
    rounds = 1 if args.quick else TIMING_ROUNDS
    time_rounds([r[c] for r in results.values() for c in [OURS] + names], min_total, rounds)

    output = Path(args.output)
    command = "python benchmarks/bench_lossy.py" + (" --quick" if args.quick else "") + (
        " --ratios " + " ".join(f"{x:g}" for x in ratios) if args.ratios else "")
    lines = ["## Lossy: rate-distortion against the field", "",
             f"Produced by `{command}` on {platform.machine()}, Python "
             f"{platform.python_version()}, imagecodecs {imagecodecs.__version__} "
             f"({imagecodecs.jpeg2k_version()}, {imagecodecs.htj2k_version()}, "
             f"{imagecodecs.jpegxl_version()}), {time.strftime('%Y-%m-%d')}. "
             "Single thread, one process, real images from `../shared/data`; every speed "
             f"is the best of {rounds} round(s) of timings, each round over every image "
             "and ratio in turn (this host's speed drifts over seconds). "
             "Ours: `encode(a, reversible=False, ratio=R)` (default options: RGB gets the colour transform), "
             "which searches its quantisation step; \"fixed step\" re-encodes with the step "
             "that search chose (`step=s, rdo=True`: the same RD-optimised quantisation, so the "
             "same stream, one encode; where the search returned the lossless stream, which fits "
             "the target and is exact, a lossless encode); \"psnr=\" encodes with a PSNR target, the PSNR that search "
             "reached rounded down to 0.1 dB (a search that measures each trial's PSNR, as "
             "OpenJPEG's PSNR knob does). Each peer's knob (OpenJPEG: target "
             "PSNR, `jpeg2k_encode(level=dB)`; HTJ2K: `htj2k_encode(level=qstep)`; JPEG XL: "
             "`jpegxl_encode(distance=d)`, default effort) is searched until two of its "
             "encodes bracket our exact size; its PSNR at our bits/sample is interpolated "
             "linearly in log(rate) between them, and its speed is timed at the nearer one. "
             "PSNR: peak 2**bits - 1 (8 or 16 bits), over all samples. Ours uses encode()'s "
             "default axes, so volumes are coded in 3-D and ect's two unlike frames as "
             "planes (its rows with the 3-D transform forced are at the end); the 2-D codecs "
             "code them slice by slice. JPEG XL gets signed data offset to unsigned (same "
             "error). imagecodecs' `htj2k_decode` wraps out-of-range reconstructions (255 + 1 "
             "reads 0) instead of clamping; HTJ2K's PSNR is after undoing that (a clamping "
             "decoder). MB/s are of raw bytes.", ""]
    if _plots.available():
        curves = {}
        for cls, image in SHOWN.items():
            rs = [results[image, ratio] for ratio in ratios]
            curves[f"{cls}: {image}"] = {OURS: [(r[OURS]["bps"], r[OURS]["psnr"]) for r in rs]}
            lo, hi = min(r[OURS]["bps"] for r in rs) / 1.3, max(r[OURS]["bps"] for r in rs) * 1.3
            for n in names:
                curves[f"{cls}: {image}"][n] = [pt for r in rs for pt in r[n]["curve"]
                                                if lo <= pt[0] <= hi]
        _plots.rd_curves(curves, OURS, output.parent / "rd_curves.png")
        lines += ["![PSNR against bits/sample, one representative image per class]"
                  "(rd_curves.png)", "",
                  "The figure shows one representative image per class (" +
                  ", ".join(SHOWN.values()) + "): ours at each ratio and every peer encode "
                  "the rate search made in that range.", ""]

    lines += ["### PSNR at our size: ours - peer, dB (mean over the class)", "",
              "Positive: ours is better at the same bits/sample. Target: >= 0 against OpenJPEG. "
              "(k/n): only k of the class's n images have a value (see n/a below); ours dB "
              "leaves out lossless (infinite) reconstructions.",
              "", "| class | ratio | bps | ours dB | " + " | ".join(names) + " |",
              "|---|---|---|---|" + "---|" * len(names)]
    cells = {}   # (class, ratio) -> the per-image results
    for cls, images in classes.items():
        for ratio in ratios:
            rs = cells[cls, ratio] = [results[i, ratio] for i in images]
            finite = [r for r in rs if math.isfinite(r[OURS]["psnr"])]
            cols = [f"{np.mean([r[OURS]['bps'] for r in rs]):.3f}",
                    f"{np.mean([r[OURS]['psnr'] for r in finite]):.2f}"]
            for n in names:
                d = [r[OURS]["psnr"] - r[n]["psnr"] for r in finite if r[n]["psnr"] is not None]
                count = f" ({len(d)}/{len(rs)})" if len(d) < len(rs) else ""
                cols.append(f"{np.mean(d):+.2f}{count}" if d else "n/a")
            lines.append(f"| {cls} | {ratio:g} | " + " | ".join(cols) + " |")

    lines += ["", "### Speed (MB/s of raw data, geometric mean over the class)", "",
              "Target: ours encode >= 5 x OpenJPEG's.", "",
              "| class | ratio | encode ours (search) | ours (fixed step) | ours (psnr=) | " +
              " | ".join(names) + " | decode ours | " + " | ".join(names) +
              " | encode ours/OpenJPEG (search) | (fixed step) | (psnr=) |",
              "|---|---|" + "---|" * (2 * len(names) + 7)]
    all_rs = []
    oj = names[0]
    for (cls, ratio), rs in cells.items():
        all_rs += rs
        lines.append(
            f"| {cls} | {ratio:g} | " +
            " | ".join(gmean(r[c][k] for r in rs) for k, c in
                       [("enc", OURS), ("enc_fixed", OURS), ("enc_psnr", OURS)] +
                       [("enc", n) for n in names] +
                       [("dec", OURS)] + [("dec", n) for n in names]) + " | " +
            " | ".join(gmean((over(r, k, oj) for r in rs), ".2f")
                       for k in ("enc", "enc_fixed", "enc_psnr")) + " |")
    lines += ["", "All images and ratios (geometric mean): ours encodes "
              f"{gmean((over(r, 'enc', oj) for r in all_rs), '.2f')} x OpenJPEG's speed with "
              f"the ratio search, {gmean((over(r, 'enc_fixed', oj) for r in all_rs), '.2f')} "
              f"x with a fixed step and {gmean((over(r, 'enc_psnr', oj) for r in all_rs), '.2f')} "
              f"x with a PSNR target; decodes {gmean((over(r, 'dec', oj) for r in all_rs), '.2f')} "
              "x.", ""]

    lines += chunk_rows(ratios, min_total) + [""]
    lines += ["### Per image: bits/sample and PSNR (dB) of each codec at our size", "",
              "| image | ratio | bps | ours | " + " | ".join(names) + " |",
              "|---|---|---|---|" + "---|" * len(names)]
    for (image, ratio), r in results.items():
        lines.append(f"| {image} | {ratio:g} | {r[OURS]['bps']:.3f} | {r[OURS]['psnr']:.2f} | " +
                     " | ".join(fmt(r[n]["psnr"]) for n in names) + " |")
    if any(image == FRAME_STACK for image, _ in results):
        lines += frame_stack_rows(ratios)
    worst = max(abs(r[OURS]["fixed_size"] - 1) for r in results.values())
    lines += ["", "n/a: no setting of the peer's knob makes a file of our size (its finest "
              "setting is smaller, or its per-slice overhead alone is larger); such cells are "
              "left out of the class means and speeds. inf: ours reconstructed losslessly. The "
              f"fixed-step re-encodes match the searched sizes within {100 * worst:.3f}%."]
    write_section("lossy", "\n".join(lines), output)
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
