"""What the benchmarks share.  Each owns one section of RESULTS.md, between
markers, so the scripts can be rerun independently without clobbering each
other; `best` times a call as the best of a few runs; DATA is the real
corpus (PJ2K_DATA, as for the tests, or ../shared/data)."""
import os
import re
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
