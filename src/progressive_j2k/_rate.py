"""Lossy targets: choose the 9/7 base step that meets a size ratio or a PSNR.

The per-band steps stay `step / band norm` (the high-rate rate-distortion
optimum: every band at the same distortion-rate slope); this module only
searches the one base step per chunk.  log(size) and PSNR are close to linear
in log(step), so each next trial comes from the secant through the last two
(the first from the typical slope), kept inside the bracket once there is one
(else a point between interpolation and bisection, so that neither side stalls).  It stops
early when the result stops changing (flat chunks).  Each trial quantises and
codes the once-transformed chunk again (and decodes it for PSNR).  Both
searches return (codestream, step).
"""
from __future__ import annotations

import math

import numpy as np

MAX_TRIALS = 16
RATIO_TOLERANCE = 0.03      # aim inside +-3% so that +-5% holds
PSNR_MARGIN = 0.4           # aim in [target, target + 0.4] dB


def psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    """PSNR with peak 2**bits - 1 for integers, the value range for floats."""
    if original.dtype.kind == "f":
        peak = float(original.max()) - float(original.min()) if original.size else 0.0
    else:
        peak = float(2 ** (8 * original.dtype.itemsize) - 1)
    mse = float(np.mean((decoded.astype(np.float64) - original) ** 2)) if original.size else 0.0
    if mse == 0.0:
        return math.inf
    return 10 * math.log10(peak**2 / mse) if peak > 0 else -math.inf


MAX_JUMP = math.log(16.0)    # largest change of log(step) per trial
STEER_CAP = 100.0            # |value - aim| used for steering (PSNR may be infinite)


def _search(score, start: float, lo_limit: float, hi_limit: float, accept, aim: float,
            slope: float):
    """Find a step whose trial `accept`s.  score(step) -> (trial, value), where
    value falls roughly linearly in log(step) with about `slope` per e-fold
    (negative); `aim` is the value to steer for."""
    trials = []
    x = math.log(start)
    low = high = None                  # (log step, value - aim) on each side of the aim
    seen = lambda z: any(abs(z - math.log(t[0])) < 1e-9 for t in trials)  # noqa: E731
    for _ in range(MAX_TRIALS):
        trial, value = score(math.exp(x))
        trials.append((math.exp(x), trial, value))
        if accept(value):
            return trials[-1], trials
        if len(trials) >= 3 and trials[-1][2] == trials[-2][2] == trials[-3][2]:
            break                      # insensitive to the step: nothing to gain
        # steer with finite values (a lossless trial has infinite PSNR)
        gap = min(max(value - aim, -STEER_CAP), STEER_CAP)
        if gap > 0:                    # too good: the step may grow
            low = (x, gap)
        else:
            high = (x, gap)
        # secant through the last two trials (the first uses the typical slope)
        local = slope
        if len(trials) >= 2:
            x0 = math.log(trials[-2][0])
            v0 = min(max(trials[-2][2] - aim, -STEER_CAP), STEER_CAP)
            if x != x0 and (gap - v0) / (x - x0) < 0:
                local = (gap - v0) / (x - x0)
        nxt = x - gap / local
        nxt = min(max(nxt, x - MAX_JUMP), x + MAX_JUMP)
        if low and high:               # keep strictly inside the bracket
            middle = 0.5 * (low[0] + high[0])
            if not min(low[0], high[0]) < nxt < max(low[0], high[0]) or seen(nxt):
                falsi = low[0] + (high[0] - low[0]) * low[1] / (low[1] - high[1])
                nxt = 0.5 * (falsi + middle)   # between interpolation and bisection: no stalling
            if seen(nxt):
                nxt = middle
        nxt = min(max(nxt, math.log(lo_limit)), math.log(hi_limit))
        if seen(nxt):
            break                      # a limit reached, or the bracket closed: best effort
        x = nxt
    return None, trials


def encode_to_ratio(encode, arr: np.ndarray, ratio: float, start: float, limits) -> tuple:
    target = arr.nbytes / ratio

    def score(step):
        encoded = encode(step)
        return encoded, math.log(len(encoded))

    # size roughly halves when the step doubles at moderate rates: slope -1
    found, trials = _search(score, start, *limits,
                            accept=lambda v: abs(math.exp(v) / target - 1) <= RATIO_TOLERANCE,
                            aim=math.log(target), slope=-1.0)
    if found is None:   # out of reach: the closest
        found = min(trials, key=lambda t: abs(t[2] - math.log(target)))
    return found[1], found[0]


def encode_to_psnr(encode, decode, arr: np.ndarray, target: float, start: float, limits) -> tuple:
    def score(step):
        encoded = encode(step)
        return encoded, psnr(decode(encoded), arr)

    # MSE ~ step**2: -20 / ln(10) dB per e-fold of the step
    found, trials = _search(score, start, *limits,
                            accept=lambda p: target <= p <= target + PSNR_MARGIN,
                            aim=target + PSNR_MARGIN / 2, slope=-20 / math.log(10))
    if found is None:   # out of reach: the smallest meeting it
        meeting = [t for t in trials if t[2] >= target]
        found = max(meeting, key=lambda t: t[0]) if meeting else max(trials, key=lambda t: t[2])
    return found[1], found[0]
