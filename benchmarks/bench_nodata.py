"""Nodata inside the data (format version 10, docs/DESIGN.md 59): stream
sizes and coarse levels with the mask, against the nodata value coded as
data ("plain") and against the data's mean in its place (no mask); on real
fields with masks of real shapes.  Writes the "nodata" section of
RESULTS.md.

    python benchmarks/bench_nodata.py
"""
import platform
import sys
from datetime import date

import numpy as np

import progressive_j2k as pj
from _report import DATA, best, write_section


def smooth(values, width=9):
    """A box mean along every axis (a mask's outline without its noise)."""
    out = values.astype(np.float64)
    for axis in range(out.ndim):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (width // 2, width // 2)
        total = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
        total = np.concatenate([np.zeros_like(np.take(total, [0], axis=axis)), total], axis=axis)
        n = out.shape[axis]
        out = (np.take(total, range(width, width + n), axis=axis)
               - np.take(total, range(n), axis=axis)) / width
    return out


def block_means(values, valid, axes, level):
    """The mean of the valid samples in each block of a level (NaN: none)."""
    sums, counts = np.where(valid, values, 0.0).astype(np.float64), valid.astype(np.float64)
    for axis in axes:
        for _ in range(level):
            if sums.shape[axis] % 2:
                pad = [(0, 1) if a == axis else (0, 0) for a in range(sums.ndim)]
                sums, counts = np.pad(sums, pad), np.pad(counts, pad)
            shape = sums.shape[:axis] + (sums.shape[axis] // 2, 2) + sums.shape[axis + 1:]
            sums, counts = sums.reshape(shape).sum(axis + 1), counts.reshape(shape).sum(axis + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def cases():
    mr2 = np.load(DATA / "mr2_uint16.npy")[256:768, 256:768].astype(np.float32)
    tlrc = np.load(DATA / "tlrc_float32_3d.npy")
    ct = np.load(DATA / "ct693_int16.npy")
    yield ("mr2 512², head outline, -999", np.where(smooth(mr2) < 60, -999, mr2).astype(np.float32),
           -999.0, [{"tolerance": 0.5}, {"tolerance": 5}, {"mode": "lossy", "psnr": 50}])
    yield ("mr2 512², noisy threshold, NaN", np.where(mr2 < 60, np.nan, mr2).astype(np.float32),
           np.nan, [{"tolerance": 0.5}, {"mode": "lossy", "psnr": 50}])
    low = np.percentile(tlrc, 30)
    yield ("tlrc 3-D statistic, low 30% NaN", np.where(smooth(tlrc, 3) < low, np.nan, tlrc)
           .astype(np.float32), np.nan, [{"tolerance": 1e-6}, {"mode": "lossy", "psnr": 60}])
    yield ("ct693 int16, outside the scan -32768", np.where(ct < -1500, -32768, ct).astype(np.int16),
           -32768, [{}, {"tolerance": 2}])


def main():
    rows = []
    for name, arr, fill, option_sets in cases():
        nodata = np.isnan(arr) if np.isnan(fill) else arr == fill
        data = ~nodata
        finite_fill = float(arr[data].mean()) if np.isnan(fill) else fill
        plain_arr = np.where(nodata, finite_fill if np.isnan(fill) else fill, arr).astype(arr.dtype)
        mean_arr = np.where(nodata, arr[data].mean(), arr).astype(arr.dtype)
        for options in option_sets:
            named = {"fill_value": fill} if np.isnan(fill) else {"nodata": fill}
            enc, t_enc = best(lambda: pj.encode(arr, **named, **options))
            header = pj.read_header(enc)
            plain = pj.encode(plain_arr, **options)
            mean = pj.encode(mean_arr, **options)
            _, t_plain = best(lambda: pj.encode(mean_arr, **options))
            _, t_dec = best(lambda: pj.decode(enc))
            distances = []
            for level in (1, 2, 3):
                if level > header.levels:
                    break
                reference = block_means(arr, data, header.axes, level)
                got = []
                for stream in (enc, plain, mean):
                    decoded = pj.decode(stream, level).astype(np.float64)
                    cells = np.isfinite(reference) & (decoded != fill)
                    got.append(np.abs(decoded - reference)[cells].mean())
                distances.append(" / ".join(f"{d:.3g}" for d in got))
            label = ", ".join(f"{k}={v}" for k, v in options.items()) or "lossless"
            rows.append(f"| {name} | {nodata.mean():.0%} | {label} | v{header.version} | "
                        f"{len(enc):,} ({header.mask_length:,}) | {len(plain):,} | {len(mean):,} | "
                        + " | ".join(distances) + f" | {t_enc * 1e3:.1f} / {t_plain * 1e3:.1f} | "
                        f"{t_dec * 1e3:.1f} |")
            print(rows[-1], flush=True)
    body = [
        "## Nodata inside the data (format version 10)",
        "",
        f"Produced by `python benchmarks/bench_nodata.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, {date.today()}. Real fields with masks of real shapes. "
        "Bytes: the stream with the nodata mask (its mask's bytes in brackets), the nodata value "
        "coded as data (plain; NaN, which no mode codes, as the data's mean), and the data's "
        "mean in its place without a mask. Levels 1-3: the mean distance of the data cells "
        "(not the fill value) to the mean of the data in their block, with the mask / plain / "
        "mean fill, in the field's units. Encode ms: with the mask / the mean-filled array "
        "without one; decode ms: full resolution, with the mask.",
        "",
        "| field | nodata | options | version | bytes (mask) | plain | mean fill | level 1 | "
        "level 2 | level 3 | encode ms | decode ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    write_section("nodata", "\n".join(body))


if __name__ == "__main__":
    sys.exit(main())
