"""A long damage campaign through the Python API: tests/damage.py's campaign
(every truncation point, every single-bit flip and bursts in every piece;
each damaged copy decoded at every level and quality layer, which must give
the pristine decode where the damage lies beyond the prefix read, and
ValueError otherwise) on random crops of the real corpus, in every mode,
until a time budget runs out.  The test suite runs it on a few fixed chunks;
this runs it on many.

Usage: python scripts/damage_campaign.py [SECONDS] [SEED]   (default 600 s, seed 0)
PJ2K_DATA: the corpus folder, as for the tests.  Prints one line per chunk
and the totals; exits non-zero at the first wrong decode, or exception other
than the ValueError expected (with the chunk written to damage_failure.bin)."""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import DATA_DIR  # noqa: E402
from damage import campaign  # noqa: E402

import progressive_j2k as pj  # noqa: E402

#: Each crop's side: small chunks keep a campaign (8 decodes per byte per
#: read) to seconds.
SIDES = (4, 40)
#: The modes, by the options encode() takes (tolerance: a share of the range).
MODES = ({}, {"layers": 3}, {"reversible": False}, {"reversible": False, "ratio": 12},
         {"reversible": False, "psnr": 38.0}, {"reversible": False, "layers": [30, 10]},
         {"tolerance": 0.01}, {"tolerance": 0.02, "layers": 2})


def random_chunk(rng, arrays):
    """A crop of a random corpus array (2-D plane, RGB or 3-D box), its
    options and a description."""
    name = sorted(arrays)[rng.integers(len(arrays))]
    a = arrays[name]
    colour = a.ndim == 3 and a.shape[-1] == 3
    spatial = a.ndim - (1 if colour else 0)
    box = []
    for n in a.shape[:spatial]:
        side = int(rng.integers(SIDES[0], SIDES[1] + 1)) if spatial == 2 else int(rng.integers(2, 13))
        side = min(side, n)
        start = int(rng.integers(0, n - side + 1))
        box.append(slice(start, start + side))
    crop = np.ascontiguousarray(a[tuple(box)])
    options = dict(MODES[rng.integers(len(MODES))])
    if "tolerance" in options:
        options["tolerance"] *= max(float(crop.max()) - float(crop.min()), 1.0)   # (ptp wraps)
    if crop.dtype.kind == "f" and not options.get("tolerance"):
        options["reversible"] = False   # floats: lossy or error-bounded, never lossless
    return crop, options, f"{name}{crop.shape} {options}"


def main(seconds: float, seed: int) -> int:
    arrays = {p.stem: np.load(p) for p in sorted(DATA_DIR.glob("*.npy"))}
    rng = np.random.default_rng(seed)
    totals, chunks, refused, deadline = {}, 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        crop, options, what = random_chunk(rng, arrays)
        try:
            enc = pj.encode(crop, **options)
        except ValueError:   # an option this crop refuses (counted)
            refused += 1
            continue
        try:
            counts = campaign(enc, bursts_per_segment=10, seed=int(rng.integers(1 << 31)))
        except Exception as error:   # wrong data, or anything but the ValueError expected
            Path("damage_failure.bin").write_bytes(enc)
            print(f"FAILED on {what}: {type(error).__name__}: {error} (stream in "
                  f"damage_failure.bin)")
            return 1
        chunks += 1
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        print(f"{chunks}: {what}, {len(enc)} bytes: {counts}", flush=True)
    decodes = totals.get("intact_decodes", 0) + totals.get("errors", 0)
    print(f"{chunks} chunks ({refused} crops refused their options), {decodes} damaged "
          f"decodes, no wrong data: {totals}")
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]) if len(sys.argv) > 1 else 600.0,
                  int(sys.argv[2]) if len(sys.argv) > 2 else 0))
