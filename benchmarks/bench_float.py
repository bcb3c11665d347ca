"""Error-bounded float compression: progressive_j2k(tolerance=) vs ZFP
(fixed accuracy), SZ3 (absolute bound) and SPERR (point-wise error), all from
imagecodecs, at the same absolute bound, on real float data.

    python benchmarks/bench_float.py

Every codec's result is checked: max |decoded - original| must be within the
bound (a violation is reported, not hidden).  Single thread, one process.
Writes its section of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import platform
import sys
import time

import imagecodecs
import numpy as np

import progressive_j2k as pj
from _report import DATA, best, write_section

FIELDS = {
    "tlrc_float32_3d (AFNI statistic, float32 3-D)": lambda: np.load(DATA / "tlrc_float32_3d.npy"),
    "mr2 as float32 (2-D)": lambda: np.load(DATA / "mr2_uint16.npy").astype(np.float32),
    "mni152 as float32 (3-D)": lambda: np.load(DATA / "mni152_t1_uint8_3d.npy")[40:168, 40:168, 40:168].astype(np.float32),
}
RELATIVE = (1e-2, 1e-3, 1e-4)


def codecs(tol):
    return {
        "progressive_j2k": (lambda a: pj.encode(a, tolerance=tol), lambda e, a: pj.decode(e)),
        "ZFP accuracy": (lambda a: imagecodecs.zfp_encode(a, level=tol, mode="a"),
                         lambda e, a: imagecodecs.zfp_decode(e)),
        "SZ3 abs": (lambda a: imagecodecs.sz3_encode(a, mode="abs", abs=tol),
                    lambda e, a: imagecodecs.sz3_decode(e, a.shape, a.dtype)),
        "SPERR pwe": (lambda a: imagecodecs.sperr_encode(a, level=tol, mode="pwe", numthreads=1),
                      lambda e, a: imagecodecs.sperr_decode(e, numthreads=1)),
    }


def main():
    lines = ["## Error-bounded floats: tolerance mode vs ZFP, SZ3, SPERR", "",
             f"Produced by `python benchmarks/bench_float.py` on {platform.machine()}, Python "
             f"{platform.python_version()}, imagecodecs {imagecodecs.__version__}, "
             f"{time.strftime('%Y-%m-%d')}. Absolute bound = relative x (max - min) of the field; "
             "ratio = raw / compressed; max err / bound must be <= 1. Single thread.", "",
             "| field | bound (rel.) | codec | ratio | max err / bound | encode MB/s | decode MB/s |",
             "|---|---|---|---|---|---|---|"]
    for name, load in FIELDS.items():
        field = np.ascontiguousarray(load())
        span = float(field.max() - field.min())
        for rel in RELATIVE:
            tol = rel * span
            for codec, (enc, dec) in codecs(tol).items():
                try:
                    encoded, t_enc = best(lambda: enc(field))
                    decoded, t_dec = best(lambda: dec(encoded, field))
                except Exception as exc:  # report, do not hide
                    lines.append(f"| {name} | {rel:g} | {codec} | failed: {exc} | | | |")
                    continue
                err = float(np.abs(decoded.astype(np.float64) - field).max()) / tol
                lines.append(f"| {name} | {rel:g} | {codec} | {field.nbytes / len(encoded):.2f} | "
                             f"{err:.3f} | {field.nbytes / t_enc / 1e6:.1f} | "
                             f"{field.nbytes / t_dec / 1e6:.1f} |")
                print(lines[-1], file=sys.stderr)
    lines += ["", "progressive_j2k additionally decodes every chunk at 1/2, 1/4, ... resolution "
              "from a prefix; the others decode only at full resolution."]
    write_section("float", "\n".join(lines))


if __name__ == "__main__":
    main()
