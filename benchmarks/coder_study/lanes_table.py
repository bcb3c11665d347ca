"""Summarise lanes_run.sh output: best (minimum) ns/coef over rounds per image, build and coder."""
import sys
from collections import defaultdict

best = defaultdict(lambda: 1e9)
size = {}
allv = defaultdict(list)
order, imgs = [], []
for line in open(sys.argv[1]):
    f = line.split()
    if "ns/coef" not in f:
        continue
    img, b, c = f[1], f[2], f[4]
    ns = float(f[f.index("ns/coef") + 1])
    assert f[f.index("ok") + 1] == "1", line
    size[img, c] = int(f[f.index("bytes") + 1])
    best[img, b, c] = min(best[img, b, c], ns)
    allv[img, b, c].append(ns)
    if c not in order:
        order.append(c)
    if img not in imgs:
        imgs.append(img)
for img in imgs:
    cur = size[img, "current"]
    print(f"\n{img}{' (PJQ=16)' if img == 'camera16' else ''}: current {cur} bytes")
    print(f"{'coder':10s} {'bytes':>8s} {'vs cur':>7s} {'gcc ns':>7s} {'clang ns':>8s}   (all gcc runs / all clang runs)")
    for c in order:
        s = size[img, c]
        g, k = best[img, "bench_avx2", c], best[img, "bench_clang", c]
        runs = " ".join(f"{v:.1f}" for v in allv[img, "bench_avx2", c]) + " / " + " ".join(f"{v:.1f}" for v in allv[img, "bench_clang", c])
        print(f"{c:10s} {s:8d} {100.0 * (s - cur) / cur:+6.2f}% {g:7.2f} {k:8.2f}   ({runs})")
