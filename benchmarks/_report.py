"""What the benchmarks share.  Each owns one section of RESULTS.md, between
markers, so the scripts can be rerun independently without clobbering each
other; `best` times a call as the best of a few runs; `peak_memory` measures a
chunk's encode and decode in fresh processes; DATA is the real corpus
(PJ2K_DATA, as for the tests, or ../shared/data)."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "RESULTS.md"
DATA = Path(os.environ.get("PJ2K_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
TITLE = "# Benchmark results\n\nEach section names the command that produced it.\n"


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else TITLE
    if not text.startswith(TITLE):
        text = TITLE
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    path.write_text(text.rstrip() + "\n")


def best(fn, repeats=3):
    """(fn()'s result, its shortest time in seconds over `repeats` runs)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, min(times)


PEAK_SCRIPT = """
import json, sys, numpy as np, progressive_j2k as pj
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
a = np.load(sys.argv[1])
options = json.loads(sys.argv[4])
pj.decode(pj.encode(a[:8, :8], **options))                # warm up
if sys.argv[2] == "encode":
    before = hwm(); pj.encode(a, **options)
else:                                                      # a chunk the parent encoded
    enc = open(sys.argv[3], "rb").read(); out = np.empty_like(a); out[...] = 0
    before = hwm(); pj.decode(enc, out=out)
print((hwm() - before) / a.nbytes)
"""


def peak_memory(path: Path, options: dict | None = None) -> dict:
    """Peak resident memory the encode (with `options`) or the decode of the
    array in the .npy `path` adds, over its raw size: {"encode": x,
    "decode": x}, each in a fresh process (VmHWM; the decode's output is
    preallocated, the encode's output bytes are included)."""
    import numpy as np
    import progressive_j2k as pj
    options = options or {}
    enc = pj.encode(np.load(path), **options)
    result = {}
    with tempfile.NamedTemporaryFile(suffix=".pj2k") as f:
        f.write(enc)
        f.flush()
        for op in ("encode", "decode"):
            run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path), op, f.name,
                                  json.dumps(options)], capture_output=True, text=True, check=True)
            result[op] = float(run.stdout.strip())
    return result
