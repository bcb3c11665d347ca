"""Quality layers: choose each layer's per-band bit-plane shifts from the targets.

Layer j carries band b's coefficients down to bit shift[j][b] (docs/FORMAT.md,
section 6).  All shifts of a layer come from one real threshold t:

    shift_b(t) = max(0, ceil(t - g_b - f_b))

g_b = log2 of the band's synthesis norm (how much a unit of error there costs
in the image; 0 for 9/7, whose quantisation steps already carry the norms),
and f_b in (0, 1) staggers the bands inside a bit plane, coarse bands first,
so that lowering t refines one band at a time: layer sizes can be placed at a
fraction of a bit plane instead of factors of ~3.

A probe encode with a layer at each of 15 evenly spaced thresholds gives the
bytes of layers 0..j over all resolutions (JPEG 2000's meaning of a layer's
rate) or, by decoding, the PSNR a full-resolution reader of layer j gets;
targets are placed by interpolating in t between probe layers (log bytes, or
dB), refined (for explicit targets) by a second probe over the bracketing
range, and a last encode writes the chosen layers.  A chunk always gets
exactly the number of layers asked for (readers rely on it to know the header
length): layers that would coincide are pushed one band step apart.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from progressive_j2k._bands import band_count, band_norms
from progressive_j2k._metrics import psnr, psnr_peak

PROBE_LAYERS = 16


class Thresholds:
    """Maps a threshold t to a table of per-band shifts.  whole_low: the low
    band (band 0) is complete in every layer (shift 0): its later layers
    would refine values with raw bits (docs/FORMAT.md 6.1), which a flat
    low band, coded whole as residuals, needs few of (RAW_LOW_BAND_GROWTH)."""

    def __init__(self, lengths: tuple, levels: int, weighted: bool, max_shift: int,
                 whole_low: bool = False):
        nbands = band_count(levels, len(lengths))
        gains = ([math.log2(n) for n in band_norms(lengths, levels)] if weighted
                 else [0.0] * nbands)
        self.offsets = [g + 1 - (b + 0.5) / nbands for b, g in enumerate(gains)]
        self.max_shift = max_shift
        self.whole = 1 if whole_low else 0   # bands at shift 0 throughout
        #: at or below it every shift is 0
        self.lowest = -max(self.offsets[self.whole:] or self.offsets)

    def shifts(self, t: float) -> tuple:
        return (0,) * self.whole + tuple(min(self.max_shift, max(0, math.ceil(t - o)))
                                         for o in self.offsets[self.whole:])

    def distinct_thresholds(self, hi: float, lo: float) -> np.ndarray:
        """One threshold per distinct table between hi and lo, falling: the
        middles between the points where a band's shift drops."""
        offsets = np.array(self.offsets[self.whole:])
        if not offsets.size:   # (one band, whole: one table)
            return np.array([0.5 * (hi + lo)])
        planes = np.arange(math.floor(lo - offsets.max()), math.ceil(hi - offsets.min()) + 1)
        drops = np.unique((offsets[:, None] + planes[None, :]).ravel())
        drops = drops[(drops > lo) & (drops < hi)]
        edges = np.concatenate(([hi], drops[::-1], [lo]))
        return 0.5 * (edges[:-1] + edges[1:])

    def shift_array(self, ts: np.ndarray) -> np.ndarray:
        """shifts(t) for each t, as rows."""
        table = np.clip(np.ceil(ts[:, None] - np.array(self.offsets)), 0, self.max_shift)
        table[:, :self.whole] = 0
        return table.astype(np.intp)

    def next_below(self, t: float) -> float:
        """The largest threshold below t whose table differs from t's."""
        table = self.shifts(t)
        # a band's shift drops when t - offset passes an integer
        drops = [math.ceil(t - o) - 1 + o for o, s in zip(self.offsets, table) if s > 0]
        return max(drops) - 1e-9 if drops else -math.inf


#: A layered stream more than RAW_LOW_BAND_GROWTH times its single-layer
#: stream, plus RAW_LOW_BAND_SLACK bytes (the layers' header and flushes in
#: the smallest chunks), is made again with its low band whole (Thresholds)
#: and the smaller kept: a flat or flatly quantised low band's refinement
#: goes raw, where its residuals cost nothing (four layers: 101 -> 49,542
#: bytes on a flat 512 x 512 chunk at levels=1; real images' layers cost
#: 1.5-16%, docs/DESIGN.md 30 and 56)
RAW_LOW_BAND_GROWTH = 2.0
RAW_LOW_BAND_SLACK = 1024


def by_size(layers, metric: str) -> bool:
    """Whether these layers are placed by size (a count, or ratio targets)."""
    return isinstance(layers, int) or metric == "ratio"


def choose_shifts(encode, decode, arr, layers, metric: str, lengths: tuple, levels: int,
                  weighted: bool, data_bits: float, max_shift: int,
                  estimate=None, whole_low: bool = False) -> "LayerPlan":
    """The plan of the layers `layers` asks for (a count of at least 2, or
    the targets of the layers before the last: compression ratios, or PSNRs
    in dB with metric "psnr").  encode(tables) ->
    codestream; decode(codestream, layer) -> full-resolution array;
    data_bits: log2 of the largest |sample| in coefficient units (the
    transform adds a few bits, and up to the largest band norm's in t).
    estimate: a LayerEstimate (ratio targets and counts) or a
    LayerPsnrEstimate (PSNR targets), which then stands in for the probe
    encodes.  whole_low: see Thresholds."""
    from progressive_j2k._api import read_header

    count = layers if isinstance(layers, int) else len(layers) + 1
    th = Thresholds(lengths, levels, weighted, max_shift, whole_low)
    lowest = th.lowest
    if arr.size == 0:       # nothing to place: any valid tables
        return LayerPlan(th, [lowest + count - 1 - j for j in range(count - 1)])
    sized = by_size(layers, metric)
    top = data_bits + 3 + max(th.offsets)

    def goals(final):   # a count: each layer about doubles the bytes of the one before
        if isinstance(layers, int):
            return [final - math.log(2) * (count - 1 - j) for j in range(count - 1)]
        return [math.log(arr.nbytes / r) for r in layers] if sized else list(layers)

    if estimate is not None:
        # every distinct table between top and lowest: the nearest to each
        # goal (sizes: layer j's bytes with j + 1 layers' flushes)
        ts = th.distinct_thresholds(top, lowest)
        shifts = th.shift_array(ts)
        final = float(estimate(th.shift_array(np.array([lowest])), count)[0])
        return LayerPlan(th, [float(ts[np.argmin(np.abs(estimate(shifts, j + 1) - g))])
                              for j, g in enumerate(goals(final))])

    peak = None if sized else psnr_peak(arr)   # (a float chunk's is two scans)

    def measure(hi: float, lo: float):
        ts = [hi - (hi - lo) * i / (PROBE_LAYERS - 2) for i in range(PROBE_LAYERS - 1)]
        probe = encode(tuple(th.shifts(t) for t in ts + [lowest]))
        if sized:
            values = [math.log(max(n, 1)) for n in cumulative_layer_bytes(read_header(probe))]
        else:
            values = [min(max(psnr(decode(probe, j), arr, peak), -400.0), 400.0)
                      for j in range(len(ts) + 1)]
        return ts, values[:-1], values[-1]

    ts, values, final = measure(top, lowest)
    targets = goals(final)
    # a second, finer probe between the probe layers that bracket the goals
    chosen = [_interpolate(ts, values, g) for g in targets]
    step = ts[0] - ts[1]
    hi, lo = min(max(chosen) + step, ts[0]), max(min(chosen) - step, lowest)
    if not isinstance(layers, int) and hi - lo < step * (PROBE_LAYERS - 2) / 2:
        ts, values, _ = measure(hi, lo)
        chosen = [_interpolate(ts, values, g) for g in targets]
    return LayerPlan(th, chosen)


#: A piece's range-coder flush: the bytes even an empty layer costs per
#: resolution (measured: a second empty layer adds 5 per piece).
PIECE_FLUSH_BYTES = 5


class LayerEstimate:
    """The estimated log bytes of layers 0..j for each row of a (tables,
    bands) array of shifts: RateModel's per-band bits at the chunk's step
    (base step for 9/7, 1 for the reversible modes' integers), scaled to the
    real single-layer stream's coded bytes, plus each piece's flush: no
    probe encodes.  Against real layered streams, within 15% at layer ratios
    up to about 150:1 (docs/DESIGN.md 30)."""

    def __init__(self, model, step: float, max_shift: int, coded_bytes: int, pieces: int):
        self.bits = model.band_values(step, max_shift)[0]
        self.bands = np.arange(self.bits.shape[0])
        self.flush = PIECE_FLUSH_BYTES * pieces   # per layer
        coded = max(coded_bytes - self.flush, 1)
        self.scale = coded * 8 / max(float(self.bits[:, 0].sum()), 1.0)

    def __call__(self, shifts: np.ndarray, layers: int = 1) -> np.ndarray:
        """For layers 0..j where these shifts are layer j's and j = layers - 1."""
        bits = self.bits[self.bands, shifts].sum(axis=1) * self.scale
        return np.log(np.maximum(bits / 8 + self.flush * layers, 1.0))


class LayerPsnrEstimate:
    """The estimated PSNR of a full-resolution decode of layers 0..j for each
    row of a (tables, bands) array of shifts (9/7 chunks): such a decode has
    every coarser resolution complete, so only the finest resolution's
    bands (the last `finest`) are cut; RateModel's per-band squared errors,
    offset to the real PSNR of the single-layer stream.  Within 0.2 dB of
    real decodes on four images (docs/DESIGN.md 30)."""

    def __init__(self, model, step: float, max_shift: int, finest: int, final_psnr: float):
        self.error = model.band_values(step, max_shift)[1]
        self.bands = np.arange(self.error.shape[0])
        self.coarser = self.bands < self.bands.size - finest
        total = float(self.error[:, 0].sum())
        self.offset = final_psnr + 10 * math.log10(total) if total > 0 else math.inf

    def __call__(self, shifts: np.ndarray, layers: int = 1) -> np.ndarray:
        """(layers: as LayerEstimate's; a decode's PSNR does not depend on it)"""
        error = self.error[self.bands, np.where(self.coarser, 0, shifts)].sum(axis=1)
        with np.errstate(divide="ignore"):
            return np.clip(self.offset - 10 * np.log10(error), -400.0, 400.0)


class LayerPlan:
    """The thresholds of the layers before the last, chosen at one
    quantisation step."""

    def __init__(self, th: Thresholds, thresholds: list):
        self.th, self.thresholds = th, thresholds

    def tables(self, raise_by: int = 0) -> tuple:
        """The shift tables, every band's shift raised by `raise_by` bit
        planes (where it stays in 0..max_shift): round(log2(old step / new
        step)) keeps each layer's cuts in data units where the step changes
        (a finer step puts the same data in higher planes), to half a plane.
        The last layer completes the chunk; the tables decrease strictly
        while they can (coinciding targets are pushed one band step apart)."""
        th, lowest = self.th, self.th.lowest
        thresholds = []
        for t in self.thresholds:
            t += operator.index(raise_by)   # whole planes: the bands keep their order in t
            if thresholds and (t > thresholds[-1] or th.shifts(t) == th.shifts(thresholds[-1])):
                t = max(th.next_below(thresholds[-1]), lowest)
            thresholds.append(t)
        return tuple(th.shifts(t) for t in thresholds) + ((0,) * len(th.offsets),)


def _interpolate(ts, values, goal: float) -> float:
    """The threshold at which `values` (non-decreasing as t falls) reaches
    `goal`, linear between probe points; the ends when out of range."""
    for i in range(1, len(ts)):
        if values[i] >= goal:
            lo, hi = values[i - 1], values[i]
            w = 1.0 if hi <= lo else (goal - lo) / (hi - lo)
            return ts[i - 1] + min(max(w, 0.0), 1.0) * (ts[i] - ts[i - 1])
    return ts[-1]


def cumulative_layer_bytes(header) -> list:
    """Bytes of layers 0..j summed over all resolutions, for each j."""
    starts = [header.header_length] + [ends[-1] for ends in header.piece_ends[:-1]]
    return [sum(ends[j] - start for start, ends in zip(starts, header.piece_ends))
            for j in range(header.layers)]
