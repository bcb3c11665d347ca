"""How encode()'s choice of axes fares on masked volumes and stacks
(docs/DESIGN.md 61): for each masked real volume, each mask and each nodata
value, the stream with each of the three choices (planes along the first
axis, along the last, or 3-D), the smallest, and what the choice picks,
against the choice made on the values as they stand (the nodata value as
data, as before session 45).  A study, not a benchmark section (a few
minutes):

    python benchmarks/nodata_axes_study.py
"""
import warnings

import numpy as np

import progressive_j2k as pj
from progressive_j2k import _axes
from _report import DATA

CHOICES = ((1, 2), (0, 1), (0, 1, 2))


def volumes():
    mni = np.load(DATA / "mni152_t1_uint8_3d.npy")
    field = np.load(DATA / "tlrc_float32_3d.npy")
    yield "tlrc", field
    yield "tlrc transposed", np.ascontiguousarray(field.transpose(2, 1, 0))
    yield "mni152 halved", mni[::2, ::2, ::2].copy()
    yield "mni152[:40]", mni[:40].copy()
    yield "mni152[60:100]", mni[60:100].copy()
    yield "mni152 coronal", np.ascontiguousarray(mni.transpose(1, 0, 2)[60:100])
    yield "mni152 sagittal", np.ascontiguousarray(mni.transpose(2, 0, 1)[60:100])
    yield "anatomical", np.load(DATA / "anatomical_int16_3d.npy")
    yield "ect frames", np.load(DATA / "ect_uint16_2x512x512.npy")


def masks(volume):
    for share in (10, 30):
        yield f"below p{share}", volume < np.percentile(volume, share)
    yield "above p95", volume > np.percentile(volume, 95)
    noise = np.random.default_rng(1).standard_normal(volume.shape)
    for axis in range(volume.ndim):   # blobs: smoothed noise, thresholded
        if volume.shape[axis] >= 9:
            noise = np.apply_along_axis(lambda r: np.convolve(r, np.ones(9) / 9, mode="same"),
                                        axis, noise)
    yield "blobs", noise > np.percentile(noise, 70)
    grid = np.ogrid[tuple(slice(0, n) for n in volume.shape)]
    yield "outside a ball", sum(((g - n / 2) / (n / 2)) ** 2
                                for g, n in zip(grid, volume.shape)) > 0.8


def nodata_values(volume):
    if volume.dtype.kind == "f":
        return (0.0, -1.0)
    info = np.iinfo(volume.dtype)
    return tuple(sorted({0, int(info.max), int(info.min)}))


def main():
    warnings.simplefilter("ignore")
    tally = {"as data": [], "encode()": []}
    for name, volume in volumes():
        for mask_name, mask in masks(volume):
            if mask.all() or not mask.any():
                continue
            for nodata in nodata_values(volume):
                arr = np.where(mask, nodata, volume).astype(volume.dtype)
                options = {"tolerance": 1e-6} if arr.dtype.kind == "f" else {}
                sizes = {axes: len(pj.encode(arr, nodata=nodata, axes=axes, **options))
                         for axes in CHOICES}
                best = min(sizes.values())
                picks = {"as data": _axes.choose_axes(arr, None),
                         "encode()": pj.read_header(pj.encode(arr, nodata=nodata,
                                                              **options)).axes}
                for rule, axes in picks.items():
                    tally[rule].append(sizes[axes] / best)
                print(f"{name:16s} {mask_name:14s} nodata={nodata:<7g} "
                      + " ".join(f"{a}:{s}" for a, s in sizes.items())
                      + " | " + " ".join(f"{r} {a} +{sizes[a] / best - 1:.1%}"
                                         for r, a in picks.items()))
    for rule, excess in tally.items():
        excess = np.array(excess)
        print(f"{rule}: the smallest in {np.sum(excess == 1)} of {len(excess)}, "
              f"{excess.mean() - 1:.2%} over it on average, at most {excess.max() - 1:.1%}")


if __name__ == "__main__":
    main()
