"""Demo: one progressive codestream holds every resolution of an image.

    python examples/demo.py [IMAGE.npy] [-o demo_levels.png]

Encodes a real image losslessly, compares the size with zstd, PNG and
OpenJPEG's JPEG 2000, prints the bytes each resolution level needs, writes the
levels side by side as a PNG, then shows quality layers: the same lossless
chunk with three layers, whose shorter prefixes decode full resolution at
lower quality.
"""
import argparse
from pathlib import Path

import imagecodecs
import numcodecs
import numpy as np

import progressive_j2k as pj

DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "shared" / "data" / "astronaut.npy"


def side_by_side(levels):
    """Levels left to right, top-aligned, on a white canvas (8-bit for display)."""
    height = levels[0].shape[0]
    width = sum(lv.shape[1] for lv in levels) + 8 * (len(levels) - 1)
    canvas = np.full((height, width) + levels[0].shape[2:], 255, np.uint8)
    x = 0
    lo, hi = float(levels[0].min()), float(levels[0].max())
    for lv in levels:
        if lv.dtype != np.uint8:  # stretch other dtypes to 8 bits for display
            lv = (lv.astype(float) - lo) / max(hi - lo, 1) * 255
        canvas[: lv.shape[0], x: x + lv.shape[1]] = np.clip(lv, 0, 255).astype(np.uint8)
        x += lv.shape[1] + 8
    return canvas


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default=str(DEFAULT_IMAGE))
    parser.add_argument("-o", "--output", default="demo_levels.png")
    args = parser.parse_args()

    image = np.load(args.image)
    codec = pj.ProgressiveJ2K()   # an RGB image gets the colour transform by default
    encoded = codec.encode(image)
    assert np.array_equal(codec.decode(encoded), image), "lossless round trip failed"

    print(f"{Path(args.image).name}: shape {image.shape}, {image.dtype}, {image.nbytes} bytes raw")
    peers = {
        "progressive_j2k (lossless)": len(encoded),
        "zstd level 3": len(numcodecs.Zstd(level=3).encode(image)),
        "PNG": len(imagecodecs.png_encode(image)),
        "JPEG 2000 lossless (OpenJPEG)": len(imagecodecs.jpeg2k_encode(image, level=0)),
    }
    for name, size in peers.items():
        print(f"  {name:30s} {size:9d} bytes  {8 * size / image.size:5.2f} bits/sample"
              f"  ({size / len(encoded):.2f}x ours)")

    header = pj.read_header(encoded)
    print(f"\nresolution levels (header {header.header_length} bytes):")
    levels = []
    for level in range(header.levels, -1, -1):
        prefix = header.prefix_length(level)
        decoded = pj.decode(encoded[:prefix], level=level)  # only the prefix is read
        levels.append(decoded)
        print(f"  level {level}: shape {str(decoded.shape):16s} needs the first {prefix:8d} bytes"
              f" ({100 * prefix / len(encoded):5.1f}% of the chunk)")
    levels.reverse()
    Path(args.output).write_bytes(imagecodecs.png_encode(side_by_side(levels)))
    print(f"\nwrote {args.output}: levels 0..{header.levels} side by side")

    layered = pj.ProgressiveJ2K(layers=[40, 15]).encode(image)
    header = pj.read_header(layered)
    peak = 2.0 ** (8 * image.dtype.itemsize) - 1
    print(f"\nquality layers (layers=[40, 15]; {len(layered)} bytes, "
          f"{100 * (len(layered) / len(encoded) - 1):+.1f}% for the layering):")
    for layer in range(header.layers):
        prefix = header.prefix_length(0, layer)
        decoded = pj.decode(layered[:prefix], layer=layer)
        mse = float(np.mean((decoded.astype(float) - image) ** 2))
        quality = "lossless" if mse == 0 else f"{10 * np.log10(peak ** 2 / mse):.1f} dB PSNR"
        print(f"  full resolution, layers 0..{layer}: first {prefix:8d} bytes "
              f"({100 * prefix / len(layered):5.1f}%), {quality}")


if __name__ == "__main__":
    main()
