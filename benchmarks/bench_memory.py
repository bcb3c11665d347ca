"""Peak working memory of one chunk's encode and decode in the lossy and
error-bounded modes, over the chunk's raw size (the lossless modes' are in
bench_lossless.py, beside issue 3's target).  Each figure comes from a
fresh process (VmHWM), so it includes what numpy and the allocator keep.

    python benchmarks/bench_memory.py      (about a minute; writes RESULTS.md)
"""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

import progressive_j2k as pj
from _report import DATA, RESULTS, peak_memory, write_section

#: (image, mode label, encode options)
CASES = [
    ("camera", "ratio=20", {"ratio": 20}),
    ("camera", "psnr=40", {"psnr": 40}),
    ("camera", "tolerance=2", {"tolerance": 2}),
    ("astronaut", "ratio=20", {"ratio": 20}),
    ("astronaut", "psnr=35", {"psnr": 35}),
    ("mr2_uint16", "ratio=20", {"ratio": 20}),
    ("mr2_uint16", "psnr=80", {"psnr": 80}),
    ("mni152_t1_uint8_3d", "ratio=20", {"ratio": 20}),
    ("mni152_t1_uint8_3d", "psnr=40", {"psnr": 40}),
    ("tlrc_float32_3d", "tolerance=1e-4", {"tolerance": 1e-4}),
    ("tlrc_float32_3d", "ratio=10", {"ratio": 10}),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    lines = ["## Peak memory per chunk: lossy and error-bounded modes", "",
             f"Produced by `python benchmarks/bench_memory.py` on {platform.machine()}, Python "
             f"{platform.python_version()}, progressive_j2k {pj.__version__}. Extra resident "
             "memory at the peak of one whole-image encode or decode, over its raw size (a fresh "
             "process each, VmHWM; the decode into a preallocated output, the encode's output "
             "included). Lossless figures are in the lossless section above.", "",
             "| image | dtype | shape | mode | encode | decode |", "|---|---|---|---|---|---|"]
    for image, label, options in CASES:
        path = DATA / f"{image}.npy"
        a = np.load(path, mmap_mode="r")
        peak = peak_memory(path, options)
        lines.append(f"| {image} | {a.dtype} | {'x'.join(map(str, a.shape))} | {label} | "
                     f"{peak['encode']:.2f} x | {peak['decode']:.2f} x |")
        print(lines[-1], file=sys.stderr)
    write_section("memory", "\n".join(lines), Path(args.output))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
