"""Run the exhaustive damage campaign of tests/damage.py on the real chunks and
print the counts (the figures in docs/RELIABILITY.md).

    python scripts/damage_report.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import load  # noqa: E402
from damage import campaign, real_chunks  # noqa: E402

totals = {}
for name, enc in real_chunks(load):
    counts = campaign(enc)
    print(f"{name:14s} {len(enc):5d} bytes  " + "  ".join(f"{k} {v}" for k, v in counts.items()))
    for k, v in counts.items():
        totals[k] = totals.get(k, 0) + v
print("total          " + "  ".join(f"{k} {v}" for k, v in totals.items()))
