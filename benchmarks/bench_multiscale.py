"""Multiscale reads over HTTP: one progressive array versus a stored pyramid.

    python benchmarks/bench_multiscale.py [--size 16384] [--chunk 1024]

Builds a size x size uint16 image tiled from random 256 x 256 crops (random
offset, rotation, flip) of the real 16-bit images in ../shared/data, and stores it
three ways under a temporary folder served by a local HTTP server with Range
support (127.0.0.1):

- progressive_j2k: one zarr v3 array, lossless; level k is read with
  ``open_multiscale`` (only the chunks' prefixes are fetched);
- pyramid + zstd: level 0 and 2x2-mean levels 1..L as separate zarr arrays
  with zstd (the usual OME-Zarr layout);
- pyramid + JPEG 2000: the same pyramid with imagecodecs' Jpeg2k (OpenJPEG)
  lossless.

For each level it reports the time and the bytes the server sent to read the
whole level, and the storage of each layout.  Writes its RESULTS.md section.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from http_server import RangeServer  # noqa: E402

import zarr  # noqa: E402
from zarr.storage import FsspecStore  # noqa: E402

import progressive_j2k as pj  # noqa: E402
from _report import write_section  # noqa: E402

DATA = HERE.parents[1] / "shared" / "data"


def tiles():
    mr = np.load(DATA / "mr2_uint16.npy")
    ct = (np.load(DATA / "ct693_int16.npy").astype(np.int32) + 2000).astype(np.uint16)
    ect = np.load(DATA / "ect_uint16_2x512x512.npy")
    nm = (np.load(DATA / "nm_int16.npy").astype(np.int32) + 30).astype(np.uint16)
    out = [ct, ect[0], ect[1], np.hstack([nm[:512], nm[512:]])]
    return out + [mr]


def build_image(size, seed=0, tile=256):
    """Random crops (random offset, rotation, flip) of the real images, so that
    no two tiles repeat (a repetitive mosaic would flatter zstd's matcher)."""
    rng = np.random.default_rng(seed)
    pool = tiles()
    image = np.empty((size, size), np.uint16)
    for i in range(0, size, tile):
        for j in range(0, size, tile):
            src = pool[rng.integers(len(pool))]
            y, x = (int(rng.integers(n - tile + 1)) for n in src.shape)
            t = np.rot90(src[y:y + tile, x:x + tile], rng.integers(4))
            if rng.integers(2):
                t = t[:, ::-1]
            image[i:i + tile, j:j + tile] = t
    return image


def downsample(a):
    h, w = a.shape
    a = a[: h - h % 2, : w - w % 2].astype(np.uint32)
    return ((a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2] + 2) // 4).astype(np.uint16)


def folder_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--levels", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print, do not update RESULTS.md")
    args = parser.parse_args()
    import imagecodecs
    from imagecodecs.numcodecs import Jpeg2k
    import numcodecs

    levels = args.levels
    image = build_image(args.size)
    chunk = (args.chunk, args.chunk)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        pj.to_zarr(image, str(root / "progressive.zarr"), chunks=chunk, levels=levels)
        t_prog = time.perf_counter() - t
        pyramid = [image]
        for _ in range(levels):
            pyramid.append(downsample(pyramid[-1]))
        t = time.perf_counter()
        for k, level in enumerate(pyramid):
            z = zarr.create_array(str(root / "zstd.zarr" / str(k)), shape=level.shape,
                                  chunks=tuple(min(c, n) for c, n in zip(chunk, level.shape)),
                                  dtype=level.dtype,
                                  compressors=zarr.codecs.ZstdCodec(level=3))
            z[:] = level
        t_zstd = time.perf_counter() - t
        t = time.perf_counter()
        for k, level in enumerate(pyramid):
            z = zarr.create(shape=level.shape, dtype=level.dtype, zarr_format=2,
                            chunks=tuple(min(c, n) for c, n in zip(chunk, level.shape)),
                            compressor=Jpeg2k(level=0, numthreads=1),
                            store=str(root / "j2k.zarr" / str(k)))
            z[:] = level
        t_j2k = time.perf_counter() - t
        numcodecs.register_codec(Jpeg2k)

        storage = {
            "progressive_j2k (one array)": folder_bytes(root / "progressive.zarr"),
            "pyramid + zstd": folder_bytes(root / "zstd.zarr"),
            "pyramid + JPEG 2000": folder_bytes(root / "j2k.zarr"),
        }
        level0 = {
            "pyramid + zstd": folder_bytes(root / "zstd.zarr" / "0"),
            "pyramid + JPEG 2000": folder_bytes(root / "j2k.zarr" / "0"),
        }
        rows = []
        with RangeServer(root) as server:
            def timed(read):
                server.log.clear()
                t = time.perf_counter()
                data = read()
                elapsed = time.perf_counter() - t
                return data, elapsed, sum(n for _, _, n in server.log)

            for k in range(levels, -1, -1):
                store = FsspecStore.from_url(f"{server.url}/progressive.zarr", read_only=True)
                ms = pj.open_multiscale(zarr.open_array(store, mode="r"))
                ours, t_ours, b_ours = timed(lambda: ms[k][:])
                zs = FsspecStore.from_url(f"{server.url}/zstd.zarr/{k}", read_only=True)
                ref, t_z, b_z = timed(lambda: zarr.open_array(zs, mode="r")[:])
                js = FsspecStore.from_url(f"{server.url}/j2k.zarr/{k}", read_only=True)
                ref2, t_j, b_j = timed(lambda: zarr.open_array(js, mode="r")[:])
                assert ours.shape == ref.shape == ref2.shape
                if k == 0:
                    assert np.array_equal(ours, image)
                rows.append((k, ours.shape, t_ours, b_ours, t_z, b_z, t_j, b_j))
                print(f"level {k}: ours {t_ours:.2f}s {b_ours} B, zstd {t_z:.2f}s {b_z} B, "
                      f"j2k {t_j:.2f}s {b_j} B", file=sys.stderr)

    raw = image.nbytes
    lines = [
        "## Multiscale reads over HTTP: one progressive array vs a stored pyramid", "",
        f"Produced by `python benchmarks/bench_multiscale.py --size {args.size} --chunk "
        f"{args.chunk}` on {platform.machine()}, Python {platform.python_version()}, zarr "
        f"{zarr.__version__}, imagecodecs {imagecodecs.__version__}, {time.strftime('%Y-%m-%d')}. "
        f"Image: {args.size}x{args.size} uint16 ({raw / 2**20:.0f} MiB) tiled from random crops "
        f"(256 x 256, random offset, rotation and flip) of the real 16-bit images; chunks {chunk}; {levels} reduced levels. Served by a local Python HTTP server "
        "with Range support on 127.0.0.1 and read through zarr's FsspecStore; a fresh store "
        "and reader per read (no cached headers); times include decoding.", "",
        "### Storage", "",
        "| layout | total bytes | levels 1.. add | write time s |", "|---|---|---|---|",
        f"| progressive_j2k (one array) | {storage['progressive_j2k (one array)']} | 0 (in the chunks) | {t_prog:.1f} |",
        f"| pyramid + zstd | {storage['pyramid + zstd']} | "
        f"{100 * (storage['pyramid + zstd'] / level0['pyramid + zstd'] - 1):.1f}% | {t_zstd:.1f} |",
        f"| pyramid + JPEG 2000 | {storage['pyramid + JPEG 2000']} | "
        f"{100 * (storage['pyramid + JPEG 2000'] / level0['pyramid + JPEG 2000'] - 1):.1f}% | {t_j2k:.1f} |",
        "", "### Reading one whole level", "",
        "| level | shape | ours s | ours bytes | zstd pyramid s | zstd bytes | JPEG 2000 pyramid s | "
        "JPEG 2000 bytes |", "|---|---|---|---|---|---|---|---|",
    ]
    for k, shape, t_o, b_o, t_z, b_z, t_j, b_j in rows:
        lines.append(f"| {k} | {shape} | {t_o:.3f} | {b_o} | {t_z:.3f} | {b_z} | {t_j:.3f} | {b_j} |")
    lines += ["", "Level k of the progressive array is the 5/3 low band (a smoothed, decimated "
              "image), the pyramids hold 2x2 means: both are valid previews, not identical pixels."]
    text = "\n".join(lines)
    if args.no_write:
        print(text)
    else:
        write_section("multiscale", text)
        print("updated benchmarks/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
