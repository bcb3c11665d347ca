"""The fills of nodata in the reversible modes (docs/DESIGN.md 61): each
masked chunk's stream with the smooth fill only, with flat block means only,
and as encode() makes it (the smaller of the two), on real images and
volumes with masks of real shapes (a rotated footprint, the corners outside
an ellipse or ball, the lowest values).  A study, not a benchmark section:

    python benchmarks/nodata_fill_study.py
"""
import warnings

import numpy as np

import progressive_j2k as pj
from progressive_j2k import _edges
from _report import DATA

FILL = _edges.inpaint


def only(block_means):
    """encode() with one fill (None: both, as it chooses)."""
    _edges.inpaint = FILL if block_means is None else \
        (lambda data, mask, axes, _=False: FILL(data, mask, axes, block_means))


def footprint(shape, angle=20, share=0.38):
    """Outside a rotated rectangle: a satellite scene's nodata."""
    height, width = shape[:2]
    y, x = np.mgrid[:height, :width]
    t = np.deg2rad(angle)
    u = (x - width / 2) * np.cos(t) + (y - height / 2) * np.sin(t)
    v = -(x - width / 2) * np.sin(t) + (y - height / 2) * np.cos(t)
    return ~((np.abs(u) < width * share) & (np.abs(v) < height * share))


def outside(shape, radius2):
    """Outside the ellipse (ball) touching the faces, at that radius**2."""
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((g - n / 2) / (n / 2)) ** 2 for g, n in zip(grid, shape)) > radius2


def cases():
    for name in ("moon", "coins", "camera", "mr2_uint16", "ct693_int16", "hubble_deep_field"):
        image = np.load(DATA / f"{name}.npy")
        image = image[..., 1].copy() if image.ndim == 3 else image
        scaled = (image / np.abs(image).max()).astype(np.float32)
        for mask_name, mask in (("footprint", footprint(image.shape)),
                                ("ellipse", outside(image.shape, 0.75))):
            yield "lossless 2-D", f"{name} {mask_name}", image, mask, {}
            yield "tolerance 2-D", f"{name} f32 {mask_name}", scaled, mask, {"tolerance": 1e-3}
    ct = np.load(DATA / "ct693_int16.npy")
    yield "lossless 2-D", "ct693 air", ct, ct < -900, {}
    mni = np.load(DATA / "mni152_t1_uint8_3d.npy")
    for name, volume in (("mni152[60:100]", mni[60:100].copy()),
                         ("mni152[::2]", mni[::2, ::2, ::2].copy()),
                         ("anatomical", np.load(DATA / "anatomical_int16_3d.npy"))):
        yield "lossless 3-D", f"{name} ball", volume, outside(volume.shape, 0.8), {}
        yield "lossless 3-D", f"{name} low 20%", volume, volume <= np.percentile(volume, 20), {}
    field = np.load(DATA / "tlrc_float32_3d.npy")
    yield "tolerance 3-D", "tlrc ball", field, outside(field.shape, 0.8), {"tolerance": 1e-6}
    yield "tolerance 3-D", "tlrc low 10%", field, field < np.percentile(field, 10), \
        {"tolerance": 1e-6}


def main():
    warnings.simplefilter("ignore")
    results = {}
    print("| class | chunk | masked | smooth | block means | chosen / smooth |")
    print("|---|---|---|---|---|---|")
    for kind, name, data, mask, options in cases():
        if data.dtype.kind == "f":
            nodata = -1.0
        else:   # a value the data does not hold
            info = np.iinfo(data.dtype)
            nodata = info.max if not (data == info.max).any() else info.min
        arr = np.where(mask, nodata, data).astype(data.dtype)
        sizes = []
        for block_means in (False, True, None):
            only(block_means)
            sizes.append(len(pj.encode(arr, nodata=nodata, **options)))
        only(None)
        smooth, blocks, chosen = sizes
        results.setdefault(kind, []).append((chosen / smooth, blocks / smooth))
        print(f"| {kind} | {name} | {mask.mean():.0%} | {smooth:,} | {blocks:,} | "
              f"{chosen / smooth:.3f} |")
    print()
    for kind, ratios in results.items():
        r = np.array(ratios)
        print(f"{kind}: {len(r)} chunks, chosen / smooth geometric mean "
              f"{np.exp(np.log(r[:, 0]).mean()):.3f} (least {r[:, 0].min():.3f}); block means "
              f"alone {np.exp(np.log(r[:, 1]).mean()):.3f} (most {r[:, 1].max():.3f})")


if __name__ == "__main__":
    main()
