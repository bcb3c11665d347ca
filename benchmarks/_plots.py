"""PNG figures for the benchmark reports (matplotlib, Agg backend).

matplotlib is an optional benchmark dependency: ``available()`` says whether
it can be imported, and the scripts skip their figures when it cannot.
"""
from __future__ import annotations

from pathlib import Path

OURS = dict(color="tab:red", marker="*", s=220, zorder=3)
DPI = 100


def available() -> bool:
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    return True


def _grid(n, width=4.4, height=3.4):
    import matplotlib.pyplot as plt
    cols = min(n, 2)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _save(fig, path: Path, layout=True) -> Path:
    import matplotlib.pyplot as plt
    if layout:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, pil_kwargs={"optimize": True})
    plt.close(fig)
    return path


def size_speed(summary: dict, ours: str, path: Path) -> Path:
    """summary: {class: {codec: {"bps", "dec", ...}}}.  One panel per class:
    decode MB/s (log x) against bits/sample, one point per codec (a marker and
    colour each, named in the shared legend; ours a large red star)."""
    import matplotlib.pyplot as plt
    names = list(dict.fromkeys(n for codecs in summary.values() for n in codecs))
    peers = [n for n in names if n != ours]
    colours = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 3]  # red is ours
    style = {n: dict(color=colours[i % 9], marker="osD^vP<>Xh"[i % 10], s=40, zorder=2)
             for i, n in enumerate(peers)}
    style[ours] = OURS
    fig, axes = _grid(len(summary))
    for ax, (cls, codecs) in zip(axes, summary.items()):
        for name, m in codecs.items():
            ax.scatter(m["dec"], m["bps"], label=name, **style[name])
        ax.set_xscale("log")
        ax.margins(x=0.08, y=0.08)
        ax.set_title(f"{cls} (geometric mean)", fontsize=10)
        ax.set_xlabel("decode MB/s (single thread, log)")
        ax.set_ylabel("bits / sample (lower is better)")
        ax.grid(True, which="both", alpha=0.3)
    handles = {h.get_label(): h for ax in axes for h in ax.collections}
    fig.legend([handles[n] for n in names], names, loc="lower center", ncol=5, fontsize=8,
               frameon=False)
    fig.suptitle("Lossless: size against decode speed", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(fig, path, layout=False)


def level_k(rows, image: str, path: Path) -> Path:
    """rows: (level, shape, prefix bytes, byte fraction, time ms, target ms) per level,
    level 0 first (the full decode).  Left: fractions of the full chunk per
    level; right: time fraction against byte fraction with the ideal y = x."""
    import matplotlib.pyplot as plt
    levels = [r[0] for r in rows]
    byte_frac = [r[3] for r in rows]
    full_ms = rows[0][4]
    time_frac = [r[4] / full_ms for r in rows]
    target_frac = [r[5] / full_ms for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.2, 3.6))
    left.plot(levels, byte_frac, "o-", color="tab:blue", label="bytes fetched (prefix)")
    left.plot(levels, time_frac, "s-", color="tab:red", label="decode time")
    left.plot(levels, target_frac, ":", color="0.4", label="target 1.2 x bytes + 0.2 ms")
    left.set_yscale("log")
    left.set_xlabel("level k (1 / 2**k per axis)")
    left.set_ylabel("fraction of full decode")
    left.set_xticks(levels)
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    lo = min(byte_frac + time_frac) / 1.5
    right.plot([lo, 1], [lo, 1], "--", color="0.4", label="ideal: time fraction = byte fraction")
    right.scatter(byte_frac, time_frac, color="tab:red", zorder=3)
    for k, x, y in zip(levels, byte_frac, time_frac):
        right.annotate(f"k={k}", (x, y), textcoords="offset points", xytext=(5, -9), fontsize=8)
    right.set_xscale("log")
    right.set_yscale("log")
    right.margins(0.12)
    right.set_xlabel("bytes fetched / full chunk")
    right.set_ylabel("decode time / full decode")
    right.legend(fontsize=8, loc="upper left")
    right.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"Level-k decode from a prefix ({image}; full decode {full_ms:.2f} ms)",
                 fontsize=11)
    return _save(fig, path)


def rd_curves(curves: dict, ours: str, path: Path) -> Path:
    """curves: {panel title: {codec: [(bits/sample, PSNR dB), ...]}}.  One panel
    per class: PSNR against bits/sample (log x), a line per codec."""
    from matplotlib.ticker import FuncFormatter
    fig, axes = _grid(len(curves), 4.2, 3.3)
    for ax, (title, codecs) in zip(axes, curves.items()):
        for name, points in codecs.items():
            points = sorted(points)
            x, y = [p[0] for p in points], [p[1] for p in points]
            if name == ours:
                ax.plot(x, y, "*-", color="tab:red", markersize=11, lw=2, label=name, zorder=3)
            else:
                ax.plot(x, y, "o-", markersize=3.5, lw=1.2, label=name)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(  # label the 2s, 3s and 5s only
            lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "235" else ""))
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("bits / sample (log)")
        ax.set_ylabel("PSNR dB (peak 2**bits - 1)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Lossy: rate-distortion", fontsize=11)
    return _save(fig, path)
