"""Lossy targets: choose the 9/7 base step that meets a size ratio or a PSNR.

The per-band steps stay `step / band norm` (the high-rate rate-distortion
optimum: every band at the same distortion-rate slope); this module only
searches the one base step per chunk: steps of 4x until the target is
bracketed, then bisection in log space (size and MSE are close to power laws
of the step).  It stops early when the result stops changing (flat chunks).
Each trial is a full encode (and a decode for PSNR).  Both searches return
(codestream, step).
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


def _search(score, start: float, lo_limit: float, hi_limit: float, accept, too_good):
    """Find a step whose trial `accept`s.  score(step) -> (trial, value);
    too_good(value) says the step may grow (smaller output, more error)."""
    trials = []
    step = start
    low = high = None                       # (log step, value) on each side
    for _ in range(MAX_TRIALS):
        trial, value = score(step)
        trials.append((step, trial, value))
        if accept(value):
            return trials[-1], trials
        if too_good(value):
            low = (math.log(step), value)
        else:
            high = (math.log(step), value)
        if low and high:                    # interpolate inside the bracket
            mid = 0.5 * (low[0] + high[0])
            step = math.exp(mid)
        elif low:
            step = min(step * 4, hi_limit)
        else:
            step = max(step / 4, lo_limit)
        if step in (t[0] for t in trials):  # a limit reached: best effort
            break
        if len(trials) >= 3 and trials[-1][2] == trials[-2][2] == trials[-3][2]:
            break                           # insensitive to the step: nothing to gain
    return None, trials


def encode_to_ratio(encode, arr: np.ndarray, ratio: float, start: float, limits) -> bytes:
    target = arr.nbytes / ratio
    def score(step):
        encoded = encode(step)
        return encoded, len(encoded)

    found, trials = _search(score, start, *limits,
                            accept=lambda n: abs(n / target - 1) <= RATIO_TOLERANCE,
                            too_good=lambda n: n > target)
    if found is None:   # out of reach: the closest
        found = min(trials, key=lambda t: abs(math.log(t[2] / target)))
    return found[1], found[0]


def encode_to_psnr(encode, decode, arr: np.ndarray, target: float, start: float, limits) -> bytes:
    def score(step):
        encoded = encode(step)
        return encoded, psnr(decode(encoded), arr)

    found, trials = _search(score, start, *limits,
                            accept=lambda p: target <= p <= target + PSNR_MARGIN,
                            too_good=lambda p: p > target + PSNR_MARGIN)
    if found is None:   # out of reach: the smallest meeting it
        meeting = [t for t in trials if t[2] >= target]
        found = max(meeting, key=lambda t: t[0]) if meeting else max(trials, key=lambda t: t[2])
    return found[1], found[0]
