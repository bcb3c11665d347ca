"""Lossless benchmark: progressive_j2k side by side with the field's codecs.

    python benchmarks/bench_lossless.py [--quick] [--output benchmarks/RESULTS.md]

Every codec runs in this one process, single-threaded, on the real images in
../shared/data.  Reports bits/sample and encode/decode MB/s of raw data per
image, the geometric means per class, and ours / peer ratios; then level-k
decode cost and two-thread scaling.  Writes the markdown report and, when
matplotlib is installed, lossless_size_speed.png and level_k.png beside it.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imagecodecs
import numcodecs
import numpy as np

import progressive_j2k as pj
import _plots
from _report import DATA, RESULTS, peak_memory, write_section

CLASSES = {
    "8-bit gray": ["camera", "moon", "coins"],
    "RGB 8-bit": ["astronaut", "immunohistochemistry", "us1_rgb8", "chelsea", "coffee",
                  "hubble_deep_field"],
    "16-bit": ["mr2_uint16", "ct693_int16", "nm_int16", "ect_uint16_2x512x512"],
    "3D volume": ["anatomical_int16_3d", "mni152_t1_uint8_3d"],
}


def as_unsigned(a):
    """Lossless signed -> unsigned shift for codecs without signed support."""
    if a.dtype.kind == "i":
        u = np.dtype(a.dtype.str.replace("i", "u"))
        return (a.astype(np.int64) - np.iinfo(a.dtype).min).astype(u)
    return a


def planes(a):
    """2-D codecs see volumes and frame stacks as a list of 2-D (or RGB) images."""
    if a.ndim == 3 and a.shape[-1] != 3:
        return list(a)
    return [a]


#: A stack of independent frames: our default (encode() without axes) codes
#: it as planes; the note beside the tables gives the forced 3-D transform.
FRAME_STACK = "ect_uint16_2x512x512"


class Ours:
    name = "progressive_j2k"

    def __init__(self, a, **options):
        self.options = options   # the defaults: RGB images get the colour transform

    def encode(self, a):
        return pj.encode(a, **self.options)

    def decode(self, e, a):
        return pj.decode(e)


class PlaneCodec:
    """A 2-D image codec applied per plane; its encoded size is the sum."""

    def __init__(self, name, enc, dec, unsigned=False):
        self.name, self._enc, self._dec, self.unsigned = name, enc, dec, unsigned

    def __call__(self, a):
        return self

    def encode(self, a):
        src = as_unsigned(a) if self.unsigned else a
        return [self._enc(p) for p in planes(src)]

    def decode(self, e, a):
        return [self._dec(p) for p in e]


class BytesCodec:
    def __init__(self, name, enc, dec):
        self.name, self._enc, self._dec = name, enc, dec

    def __call__(self, a):
        return self

    def encode(self, a):
        return self._enc(a)

    def decode(self, e, a):
        return self._dec(e)


def peers():
    zstd = numcodecs.Zstd(level=3)
    return [
        PlaneCodec("JPEG 2000 (OpenJPEG)", lambda p: imagecodecs.jpeg2k_encode(p, level=0, numthreads=1),
                   lambda e: imagecodecs.jpeg2k_decode(e, numthreads=1)),
        PlaneCodec("HTJ2K (OpenJPH)", lambda p: imagecodecs.htj2k_encode(p, level=0),
                   imagecodecs.htj2k_decode),
        PlaneCodec("JPEG-LS (CharLS)", imagecodecs.jpegls_encode, imagecodecs.jpegls_decode,
                   unsigned=True),
        PlaneCodec("JPEG XL e1", lambda p: imagecodecs.jpegxl_encode(p, lossless=True, effort=1, numthreads=1),
                   lambda e: imagecodecs.jpegxl_decode(e, numthreads=1), unsigned=True),
        PlaneCodec("JPEG XL e3", lambda p: imagecodecs.jpegxl_encode(p, lossless=True, effort=3, numthreads=1),
                   lambda e: imagecodecs.jpegxl_decode(e, numthreads=1), unsigned=True),
        PlaneCodec("JPEG XL e7", lambda p: imagecodecs.jpegxl_encode(p, lossless=True, effort=7, numthreads=1),
                   lambda e: imagecodecs.jpegxl_decode(e, numthreads=1), unsigned=True),
        PlaneCodec("PNG", imagecodecs.png_encode, imagecodecs.png_decode, unsigned=True),
        BytesCodec("zstd 3", zstd.encode, zstd.decode),
        BytesCodec("blosc2 zstd+shuffle", lambda a: imagecodecs.blosc2_encode(
            a, level=5, compressor="zstd", shuffle=1, typesize=a.itemsize, numthreads=1),
            lambda e: imagecodecs.blosc2_decode(e, numthreads=1)),
    ]


def best_time(fn, min_total=0.3, max_runs=20):
    times = []
    start = time.perf_counter()
    while len(times) < max_runs and (time.perf_counter() - start < min_total or len(times) < 2):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def size_of(e):
    return sum(len(p) for p in e) if isinstance(e, list) else len(e)


def measure(codec, a, min_total):
    e = codec.encode(a)
    t_enc = best_time(lambda: codec.encode(a), min_total)
    t_dec = best_time(lambda: codec.decode(e, a), min_total)
    return {"bps": 8 * size_of(e) / a.size, "enc": a.nbytes / t_enc / 1e6,
            "dec": a.nbytes / t_dec / 1e6}


def geomean(values):
    return float(np.exp(np.mean(np.log(values))))


def frame_stack_note(results, all_images, min_total):
    """The frame stack with the 3-D transform forced (axes=(0, 1, 2)) beside
    our default, which codes its frames as planes, and what the 3-D figure
    would make of the size ratio to OpenJPEG."""
    a = np.load(DATA / f"{FRAME_STACK}.npy")
    forced = measure(Ours(a, axes=(0, 1, 2)), a, min_total)
    peer = "JPEG 2000 (OpenJPEG)"
    ratio = {i: results[i, Ours.name]["bps"] / results[i, peer]["bps"] for i in all_images}
    default = ratio[FRAME_STACK]
    ratio[FRAME_STACK] = forced["bps"] / results[FRAME_STACK, peer]["bps"]
    per_class = {c: geomean([ratio[i] for i in imgs]) for c, imgs in CLASSES.items()}
    return ["", f"{FRAME_STACK} holds two independent frames; by default (`axes=None`) "
            f"encode() codes them as planes ({default:.3f} x OpenJPEG's size). Forced "
            f"to the 3-D transform (`axes=(0, 1, 2)`, the codecs' fixed rule) it takes "
            f"{forced['bps']:.3f} bps ({ratio[FRAME_STACK]:.3f} x OpenJPEG); with that, "
            f"ours / OpenJPEG would be {geomean(list(ratio.values())):.3f} over all images "
            f"and {per_class['16-bit']:.3f} for the 16-bit class."]


def close_gaps_note(results, all_images, min_total):
    """The images where close_gaps=True (off by default: it changes what
    reduced levels show across a gap) closes value gaps: their sizes and
    speeds beside the default's, and the size ratios to OpenJPEG with it."""
    peer = "JPEG 2000 (OpenJPEG)"
    ratio = {i: results[i, Ours.name]["bps"] / results[i, peer]["bps"] for i in all_images}
    rows = []
    for image in all_images:
        a = np.load(DATA / f"{image}.npy")
        if not pj.read_header(pj.encode(a, close_gaps=True)).gaps:
            continue
        closed, default = measure(Ours(a, close_gaps=True), a, min_total), results[image, Ours.name]
        ratio[image] = closed["bps"] / results[image, peer]["bps"]
        rows.append(f"| {image} | {closed['bps']:.3f} | {closed['bps'] / default['bps']:.3f} | "
                    f"{ratio[image]:.3f} | {closed['enc'] / default['enc']:.2f} | "
                    f"{closed['dec'] / default['dec']:.2f} |")
    per_class = {c: geomean([ratio[i] for i in imgs]) for c, imgs in CLASSES.items()}
    return ["", "### With `close_gaps=True`", "",
            "Lossless 8- and 16-bit chunks may close their runs of unused values (a padding or "
            "background value far from the data) before the transform; off by default, since "
            "reduced levels then average on the closed scale (docs/DESIGN.md 42). The images "
            "where it closes a gap (on the others it changes nothing but one header byte):", "",
            "| image | bps | size / default | size / OpenJPEG | encode speed / default | "
            "decode speed / default |", "|---|---|---|---|---|---|", *rows, "",
            f"With it, ours / OpenJPEG would be {geomean(list(ratio.values())):.3f} over all "
            "images; per class " + ", ".join(f"{c} {v:.3f}" for c, v in per_class.items()) + "."]


def level_costs(a, min_total):
    enc = Ours(a).encode(a)
    header = pj.read_header(enc)
    full = best_time(lambda: pj.decode(enc), min_total)
    rows = []
    for level in range(header.levels + 1):
        prefix = enc[: header.prefix_length(level)]
        t = best_time(lambda: pj.decode(prefix, level=level), min_total)
        frac = len(prefix) / len(enc)
        bound = 1.2 * frac * full + 0.2e-3
        rows.append((level, header.level_shape(level), len(prefix), frac, t * 1e3, bound * 1e3))
    return rows


def thread_scaling(arrays, repeats=4):
    chunks = [Ours(a).encode(a) for a in arrays] * repeats

    def run(n):
        with ThreadPoolExecutor(n) as pool:
            t = time.perf_counter()
            list(pool.map(pj.decode, chunks))
            return time.perf_counter() - t

    run(2)
    one = min(run(1) for _ in range(3))
    two = min(run(2) for _ in range(3))
    return one, two


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="shorter timings")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    min_total = 0.05 if args.quick else 0.3
    codecs = [Ours] + peers()
    names = [c.name for c in codecs]
    results = {}  # (image, codec) -> metrics
    for cls, images in CLASSES.items():
        for image in images:
            a = np.load(DATA / f"{image}.npy")
            for codec in codecs:
                instance = codec(a)
                try:
                    results[image, codec.name] = measure(instance, a, min_total)
                except Exception as exc:  # a peer that cannot take this dtype/shape
                    results[image, codec.name] = None
                    print(f"  {codec.name} on {image}: {exc}", file=sys.stderr)
            ours = results[image, Ours.name]
            print(f"{image:22s} ours {ours['bps']:.3f} bps  enc {ours['enc']:6.1f}  "
                  f"dec {ours['dec']:6.1f} MB/s", file=sys.stderr)

    lines = ["## Lossless: size and speed against the field", "",
             "Produced by `python benchmarks/bench_lossless.py` "
             f"on {platform.machine()}, Python {platform.python_version()}, "
             f"imagecodecs {imagecodecs.__version__}, numcodecs {numcodecs.__version__}, "
             f"{time.strftime('%Y-%m-%d')}. Single thread, one process, real images from "
             "`../shared/data`. Lossless everywhere. MB/s are of raw (decoded) bytes; "
             "bps = bits per sample. Ours uses encode()'s defaults: the colour transform for "
             "RGB, 3-D for volumes, ect's two unlike frames as planes (see the note after "
             "the tables). "
             "2-D codecs code volumes slice by slice; codecs without "
             "signed support get a lossless offset to unsigned.", ""]
    output = Path(args.output)
    plots = _plots.available()
    if plots:
        lines += ["![bits/sample against decode speed per class](lossless_size_speed.png)", ""]
    summary = {}  # class -> codec -> geometric means, for the figure
    lines += ["### Per class: geometric means", "",
              "| class | codec | bps | encode MB/s | decode MB/s | size ours/peer | "
              "encode ours/peer | decode ours/peer |", "|---|---|---|---|---|---|---|---|"]
    for cls, images in CLASSES.items():
        for name in names:
            ok = [i for i in images if results.get((i, name)) and results[i, Ours.name]]
            if not ok:
                continue
            g = {k: geomean([results[i, name][k] for i in ok]) for k in ("bps", "enc", "dec")}
            summary.setdefault(cls, {})[name] = g
            r = {k: geomean([results[i, Ours.name][k] / results[i, name][k] for i in ok])
                 for k in ("bps", "enc", "dec")}
            lines.append(f"| {cls} | {name} | {g['bps']:.3f} | {g['enc']:.1f} | {g['dec']:.1f} | "
                         f"{r['bps']:.3f} | {r['enc']:.2f} | {r['dec']:.2f} |")
    if plots:
        _plots.size_speed(summary, Ours.name, output.parent / "lossless_size_speed.png")
    all_images = [i for imgs in CLASSES.values() for i in imgs]
    lines += ["", "### All images: ours / peer (geometric mean)", "",
              "| peer | size | encode speed | decode speed |", "|---|---|---|---|"]
    for name in names[1:]:
        ok = [i for i in all_images if results.get((i, name))]
        r = {k: geomean([results[i, Ours.name][k] / results[i, name][k] for i in ok])
             for k in ("bps", "enc", "dec")}
        lines.append(f"| {name} | {r['bps']:.3f} | {r['enc']:.2f} | {r['dec']:.2f} |")
    lines += frame_stack_note(results, all_images, min_total)
    lines += close_gaps_note(results, all_images, min_total)
    lines += ["", "### Per image (bps / encode MB/s / decode MB/s)", "",
              "| image | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for image in all_images:
        cells = []
        for name in names:
            m = results.get((image, name))
            cells.append("n/a" if m is None else f"{m['bps']:.2f} / {m['enc']:.0f} / {m['dec']:.0f}")
        lines.append(f"| {image} | " + " | ".join(cells) + " |")

    lines += ["", "### Level-k decode from a prefix (camera, 512x512 uint8)", "",
              "Target (issue 3): time <= 1.2 x (prefix/total) x full decode + 0.2 ms.", ""]
    levels = level_costs(np.load(DATA / "camera.npy"), min_total)
    if plots:
        _plots.level_k(levels, "camera", output.parent / "level_k.png")
        lines += ["![level-k bytes and decode time as fractions of full](level_k.png)", ""]
    lines += ["| level | shape | prefix bytes | fraction | time ms | target ms |",
              "|---|---|---|---|---|---|"]
    for level, shape, nbytes, frac, t, bound in levels:
        lines.append(f"| {level} | {shape} | {nbytes} | {frac:.4f} | {t:.3f} | {bound:.3f} |")
    arrays = [np.load(DATA / f"{i}.npy") for i in ("camera", "mr2_uint16", "astronaut", "ct693_int16")]
    one, two = thread_scaling(arrays)
    lines += ["", "### Thread scaling (decode of many chunks, GIL released)", "",
              f"1 thread {one * 1e3:.1f} ms, 2 threads {two * 1e3:.1f} ms: speed-up {one / two:.2f}x "
              "(machine has 2 cores).", ""]
    lines += ["### Peak memory per chunk (issue 3 target: <= 3 x raw)", "",
              "Extra resident memory at the peak of one encode or decode, over the chunk's "
              "raw size (fresh process, VmHWM; decode into a preallocated output).", "",
              "| image | dtype | encode | decode |", "|---|---|---|---|"]
    for image in ("camera", "astronaut", "mr2_uint16", "mni152_t1_uint8_3d"):
        peak = peak_memory(DATA / f"{image}.npy")
        dtype = np.load(DATA / f"{image}.npy", mmap_mode="r").dtype
        lines.append(f"| {image} | {dtype} | {peak['encode']:.2f} x | {peak['decode']:.2f} x |")
    write_section("lossless", "\n".join(lines), output)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
