"""Lossy targets: choose the 9/7 base step that meets a size ratio or a PSNR.

The per-band steps stay `step / band norm` (the high-rate rate-distortion
optimum: every band at the same distortion-rate slope); this module only
searches the one base step per chunk.  log(size) and PSNR are close to linear
in log(step), so each next trial comes from the secant through the last two
(the first from the typical slope), kept inside the bracket once there is one
(else a point between interpolation and bisection, so that neither side stalls).  It stops
early when the result stops changing, when a ratio trial below its target
already decodes exactly, or when a PSNR trial that misses is no smaller than a
finer one that meets (flat chunks).  Each trial quantises and
codes the once-transformed chunk again (and decodes it for PSNR).  Both
searches return (codestream, step).

A model of size and error against the step (RateModel, from a histogram of
the chunk's coefficients) picks the first step and, corrected by the last
trial's real size or PSNR, the next ones; the secant takes over after
PREDICTED_TRIALS trials.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from progressive_j2k import _core
from progressive_j2k._metrics import data_quantum, peak_magnitude, psnr, psnr_of_mse, psnr_peak
from progressive_j2k.errors import PSNRTargetWarning

MAX_TRIALS = 16
#: A ratio search accepts sizes from target / (1 + RATIO_TOLERANCE) to
#: target * (1 + RATIO_TOLERANCE) (ratio_met): both the size and the ratio
#: then stay within 5% of the target (a window symmetric in log size; it
#: was +-4.5% in size, docs/DESIGN.md 40).
RATIO_TOLERANCE = 0.0499
#: A PSNR search accepts [target, target + PSNR_MARGIN] dB (the issue's 0.5
#: dB, as RATIO_TOLERANCE takes its 5%), and aims its trials PSNR_AIM above
#: the target: below the window's centre, as first trials land above their
#: aim more often and further than below it (per image, up to about 0.6 dB
#: above it and 0.4 below; docs/DESIGN.md 47).
PSNR_MARGIN = 0.49
PSNR_AIM = 0.2


#: A ratio search decodes a trial smaller than its target to see whether it is
#: exact only where the model's RMS error is below this fraction of the data
#: quantum: real chunks reached exactness from about 0.03 (camera, a label
#: image) and missed it at 0.07-0.1, and a decode costs about 0.7 trials.
EXACT_CHECK_RMS = 0.05

MAX_JUMP = math.log(16.0)    # largest change of log(step) per trial
PREDICTED_TRIALS = 3         # trials steered by a model before the secant takes over
FIRST_REACH = 2.0**16        # the model's first step stays within this of the default
STEER_CAP = 100.0            # |value - aim| used for steering (PSNR may be infinite)


#: The pilot (docs/DESIGN.md 24): a chunk with at least PILOT_MIN_AXES
#: transformed axes, each at least PILOT_MIN_AXIS long, first codes a mosaic
#: of every other PILOT_TILE-sample tile along each of them (an eighth of a
#: 3-D chunk); that mosaic's real size over its own model's estimate then
#: replaces the typical scale in the first aim.  Fewer axes would leave a
#: quarter or more of the chunk to code: more than the trial it saves.
PILOT_TILE = 32
PILOT_MIN_AXES = 3
PILOT_MIN_AXIS = 128


def pilot_mosaic(arr: np.ndarray, axes) -> np.ndarray | None:
    """Every other PILOT_TILE-sample tile of `arr` along each of `axes`, or
    None if the chunk does not qualify for a pilot."""
    if len(axes) < PILOT_MIN_AXES or any(arr.shape[a] < PILOT_MIN_AXIS for a in axes):
        return None
    for a in axes:
        arr = np.take(arr, np.nonzero(np.arange(arr.shape[a]) // PILOT_TILE % 2 == 0)[0], axis=a)
    return np.ascontiguousarray(arr)


#: The context estimate (docs/DESIGN.md 26): at the first aim, the plain
#: quantiser's values are counted by band, neighbourhood context and bit
#: length (_core.Prepared.context_counts), every CONTEXT_ROW_STRIDE-th row of
#: large bands; the entropy of the bit lengths per context over their
#: zero-order entropy (context_gain) then scales RateModel's estimate.
CONTEXT_CLASSES = 32
CONTEXT_EXPONENTS = 40
CONTEXT_ROW_STRIDE = 8


def context_gain(counts: np.ndarray) -> float | None:
    """Estimated bits with the bit lengths coded per neighbourhood context
    over the same with one distribution per band (both plus one bit per
    mantissa bit below the leading one and per sign), from counts of shape
    (bands, contexts, bit lengths); None if no value is non-zero
    (pj2k_context_gain; tests/test_lossy.py keeps the numpy reference)."""
    return _core.context_gain(np.ascontiguousarray(counts, np.uint64))


#: Eighth-octave bins of the coefficient histogram: 64 octaves below the
#: largest coefficient, then one bin for everything smaller.
HISTOGRAM_BINS = 8 * 64 + 1
#: A PSNR search's rate model bins every PSNR_HISTOGRAM_ROW_STRIDE-th row
#: of each band (of 32 or more rows), each counted that many times.
PSNR_HISTOGRAM_ROW_STRIDE = 2
#: Octaves of steps RateModel tabulates below its finest bin in use.
EXTENSION_OCTAVES = 64


def _model_tables(counts: np.ndarray, top_key: int, per_band: bool) -> tuple:
    """RateModel's tables: log steps (ascending), and at each the estimated
    bits and squared error, summed over the bands or (per_band) one row per
    band (pj2k_rate_tables in csrc/ratemodel.c; tests/test_lossy.py keeps
    the numpy reference it follows)."""
    rows = counts.shape[0] if per_band else 1
    room = counts.shape[1] + 8 + 8 * EXTENSION_OCTAVES
    log_step, bits, error = np.empty(room), np.empty((rows, room)), np.empty((rows, room))
    n = _core.rate_tables(np.ascontiguousarray(counts, np.uint64), top_key, EXTENSION_OCTAVES,
                          log_step, bits, error)
    if per_band:
        return log_step[:n], bits[:, :n], error[:, :n]
    return log_step[:n], bits[0, :n], error[0, :n]


class RateModel:
    """Estimated codestream bytes and squared error against the base step,
    from the prepared coefficients' histogram (_core.Prepared.histogram).
    Bytes: per band, the zero-order entropy of the exponents of
    floor(v / step), plus one bit per mantissa bit below the leading one and
    per sign, plus `overhead`.  The coder's contexts do better than zero order
    by a factor that drifts slowly with the step (about 0.86-0.98 on the test
    images), so the search scales the estimate by the real size of its last
    trial.  Error: v**2 for values quantised to 0, step**2 / 12 for the others;
    the band norms make these add up like sample errors, times the colour
    transform's gain for colour chunks (encode_to_psnr); the search corrects
    the PSNR by the offset of its last trial.

    Both are tabulated once, at the steps on the bins' edges (where every bin
    falls into one exponent: docs/DESIGN.md 25), and interpolated in log-log
    between them; solving for a step inverts the table."""

    def __init__(self, counts: np.ndarray, top_key: int, overhead: int):
        self.counts, self.top_key = counts, top_key   # for band_tables
        self.overhead = overhead
        self.log_step, bits, error = _model_tables(counts, top_key, per_band=False)
        with np.errstate(divide="ignore"):   # log(0): -inf, no overhead and no values
            self.log_bytes = np.log(overhead + bits / 8)
            self.log_error = np.log(error)
        self._bands = None

    def band_tables(self) -> tuple:
        """Per band (rows), at log_step: estimated bits and squared error."""
        if self._bands is None:
            self._bands = _model_tables(self.counts, self.top_key, per_band=True)[1:]
        return self._bands

    def band_values(self, step: float, max_shift: int) -> tuple:
        """Each band's estimated bits and squared error (rows) with its
        values cut at bit shift k = 0..max_shift (columns) of `step`: the
        same as quantising at step * 2**k, 8 grid points an octave."""
        bits, error = self.band_tables()
        x = math.log(step)
        i = int(np.clip(np.searchsorted(self.log_step, x) - 1, 0, self.log_step.size - 2))
        w = min(max((x - self.log_step[i]) / (self.log_step[i + 1] - self.log_step[i]), 0.0), 1.0)
        at = np.minimum(i + 8 * np.arange(max_shift + 1), self.log_step.size - 2)
        coarsest = i + 8 * np.arange(max_shift + 1) >= self.log_step.size - 1   # every value zero
        w = np.where(coarsest, 1.0, w)
        return tuple((1 - w) * table[:, at] + w * table[:, at + 1] for table in (bits, error))

    def bytes(self, step: float) -> float:
        return math.exp(_core.rate_interp(self.log_step, self.log_bytes, math.log(step)))

    def squared_error(self, step: float) -> float:
        """Sum of squared coefficient errors in base-step units (the
        histogram's last bin, 64 octaves below the largest value, counts as
        error-free)."""
        return math.exp(_core.rate_interp(self.log_step, self.log_error, math.log(step)))

    def step_for_bytes(self, value: float, limits, near: float | None = None) -> float:
        """The step at which bytes(step) = value: see _solve."""
        return _solve(self.log_step, self.log_bytes, math.log(value), limits, near)

    def coded_scale(self, size: float, step: float) -> float | None:
        """A real stream's coded bytes over the model's at its step (both
        less the overhead: the header and flushes are what they are), or None
        where either has none."""
        coded = size - self.overhead
        modelled = self.bytes(step) - self.overhead
        return coded / modelled if coded > 0 and modelled >= 1.0 else None

    def step_for_scaled_bytes(self, target: float, scale: float, limits,
                              near: float | None = None, learning: float = 0.0) -> float:
        """The step at which the model's coded bytes, times `scale`, plus
        `learning` * log2 of those, plus the overhead make `target` bytes.
        The overhead (header and flushes) is not scaled: scaling it too aimed
        small chunks' first trials 6% (256^2) to 16% (128^2) too large on
        average.  `learning`: see LEARNING_BYTES.  A target within the
        overhead gets the whole-size scaling (no step reaches it)."""
        x = _without_learning(target - self.overhead, learning)
        value = self.overhead + x / scale if x > 0 else target / scale
        return self.step_for_bytes(value, limits, near)

    def step_for_log_error(self, value: float, limits, near: float | None = None) -> float:
        """The step at which log(squared_error(step)) = value: see _solve."""
        return _solve(self.log_step, -self.log_error, -value, limits, near)


def _without_learning(coded: float, learning: float) -> float:
    """x with x + learning * log2(max(x, 2)) = coded (the left side grows
    with x), or a value <= 0 where no positive x has it.  Newton's method
    from x = coded: the left side is concave above 2, so the first step lands
    at or below the root and the next ones climb to it."""
    if coded <= 2.0 + learning:   # (below 2 the log term stays at `learning`)
        return coded - learning
    x = coded
    for _ in range(8):
        last, x = x, max(2.0, x - (x + learning * math.log2(x) - coded)
                         / (1 + learning / (x * math.log(2))))
        if x == last:   # a fixed point: the remaining iterations would keep it
            break
    return x


def _solve(xs: np.ndarray, ys: np.ndarray, y: float, limits, near: float | None) -> float:
    """exp(x) where the piecewise linear (xs, ys) first falls to y, within
    MAX_JUMP of log(near) if given (a trial's step: _search moves no
    further), else within the limits; the nearer end if y is not bracketed.
    ys falls overall (a zero-order estimate can rise a little between
    neighbouring points at a few hundred bytes: the finest crossing wins);
    an infinite point next to the crossing gives the finite one's x
    (pj2k_rate_solve: a small chunk's search calls this a few times, and
    numpy's per-call costs made it 10-14 us a call in Python)."""
    lo, hi = math.log(limits[0]), math.log(limits[1])
    if near is not None:
        lo, hi = max(lo, math.log(near) - MAX_JUMP), min(hi, math.log(near) + MAX_JUMP)
    return math.exp(_core.rate_solve(xs, ys, y, lo, hi))


def _search(score, start: float, lo_limit: float, hi_limit: float, accept, aim: float,
            slope: float, predict=None, settled=None, seed=None):
    """Find a step whose trial `accept`s: accept(step, trial, value).
    score(step) -> (trial, value), where value falls roughly linearly in
    log(step) with about `slope` per e-fold (negative); `aim` is the value to
    steer for.  predict(step, value) -> the next step or None, tried before
    the secant.  settled(trials) -> a trial to stop with, or None: asked after
    each trial not accepted.  seed: score(start), already made: the first
    trial."""
    trials = []
    x = math.log(start)
    low = high = None                  # (log step, value - aim) on each side of the aim
    seen = lambda z: any(abs(z - math.log(t[0])) < 1e-9 for t in trials)  # noqa: E731
    for _ in range(MAX_TRIALS):
        trial, value = seed if seed is not None and not trials else score(math.exp(x))
        trials.append((math.exp(x), trial, value))
        if accept(*trials[-1]):
            return trials[-1], trials
        done = settled(trials) if settled is not None else None
        if done is not None:
            return done, trials
        # steer with finite values (a lossless trial has infinite PSNR)
        gap = min(max(value - aim, -STEER_CAP), STEER_CAP)
        insensitive = len(trials) >= 3 and trials[-1][2] == trials[-2][2] == trials[-3][2]
        if insensitive and (gap >= 0 or low is not None):
            break                      # insensitive to the step: nothing to gain
        if insensitive:   # short of the aim, every trial so far too coarse (all zero): finer
            x_next = max(x - MAX_JUMP, math.log(lo_limit))
            if seen(x_next):
                break
            high, x = (x, gap), x_next
            continue
        if gap > 0:                    # too good: the step may grow
            low = (x, gap)
        else:
            high = (x, gap)
        guess = predict(math.exp(x), value) if predict and len(trials) <= PREDICTED_TRIALS else None
        if guess is not None:
            nxt = math.log(guess)
        else:   # secant through the last two trials (the first uses the typical slope)
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


#: Real size over RateModel's estimate, before any trial: the geometric mean
#: over 8 images x 4 ratios (0.79 for the plain quantiser, 0.74 with RD-optimised
#: quantisation, which codes fewer values; each case spans about +-15%).
TYPICAL_MODEL_SCALE = {False: 0.79, True: 0.74}
#: The same for colour chunks, relative: the coder's colour terms (the previous
#: component's magnitude and sign) take 10% more off than on gray chunks (mean
#: log error -0.10 with the gray scale over 6 RGB images x 4 ratios, both
#: quantisers; gray and 16-bit: +0.00 to +0.02).
COLOUR_MODEL_SCALE = 0.90
#: Real size over RateModel's estimate times context_gain (at the first aim):
#: the geometric mean over 15 images x 4 ratios, spread (sd of the log) 0.047,
#: against 0.08-0.13 for TYPICAL_MODEL_SCALE alone (docs/DESIGN.md 26).
CONTEXT_MODEL_SCALE = {False: 1.0, True: 0.965}
#: The same for colour chunks, relative (the coder's colour terms beyond
#: the colour term the context counts include: its colour sign context and
#: what the colour contexts learn), on chunks of COLOUR_LEARNED_PIXELS or
#: more per component.  With the colour term counted (docs/DESIGN.md 40) the
#: whole images' mean log error is -0.001 (fitted set) and -0.020 (held out)
#: at this scale, -0.033 and -0.056 without it: it stays.
CONTEXT_COLOUR_SCALE = 0.966
#: The colour terms' share of that grows with the chunk, as their contexts
#: learn: none up to COLOUR_UNLEARNED_PIXELS per component, all of it from
#: COLOUR_LEARNED_PIXELS, linear in log(pixels) between.  Fitted on 128^2,
#: 256^2 tiles and whole images of astronaut, coffee and chelsea (first
#: trials' mean log error +0.043 / +0.031 / +0.001 with the whole discount
#: everywhere); held out, immunohistochemistry, us1 and hubble: 128^2 +0.032
#: -> +0.004, encodes per chunk 1.35 -> 1.20, 256^2 1.03 -> 1.05, whole
#: images unchanged (docs/DESIGN.md 39).
COLOUR_UNLEARNED_PIXELS = 2**14
COLOUR_LEARNED_PIXELS = 2**18


def colour_context_scale(pixels: int) -> float:
    """CONTEXT_COLOUR_SCALE's discount, as far as a colour chunk of `pixels`
    per component learns it."""
    learnt = math.log(max(pixels, 1) / COLOUR_UNLEARNED_PIXELS) / math.log(
        COLOUR_LEARNED_PIXELS / COLOUR_UNLEARNED_PIXELS)
    return 1.0 - (1.0 - CONTEXT_COLOUR_SCALE) * min(max(learnt, 0.0), 1.0)


#: What an adaptive coder spends learning its contexts, beyond
#: CONTEXT_MODEL_SCALE: about LEARNING_BYTES * log2(x) bytes for x coded
#: bytes (each context's cost of learning grows with the log of what it
#: codes).  Fitted on first trials of 6 images in chunks of 64^2 to 512^2 at
#: 10:1 to 80:1; it takes their mean log error from +0.27 / +0.15 / +0.06 /
#: +0.00 (64^2 / 128^2 / 256^2 / 512^2) to +0.02 / +0.02 / +0.02 / -0.01
#: (docs/DESIGN.md 33).
LEARNING_BYTES = 8.4
#: Real PSNR minus RateModel's estimate before any trial: -0.22 dB plain
#: (the mean over 8 images x 3 targets), -0.29 dB with RD-optimised
#: quantisation, which trades error for bits (refitted in session 29, as
#: the median over images of each image's median: 15 images, their whole
#: chunk, four crops of 256^2 per 2-D image and three of 64^3 per volume,
#: at 4 targets; it was -0.39, fitted
#: before RDO priced only what differs).  Each image has its own offset,
#: stable across its crops and targets (-0.3 to +0.6 dB about these).
TYPICAL_PSNR_BIAS = {False: -0.22, True: -0.29}
#: Samples at their dtype's bounds (a black background, saturated
#: highlights) lose the half of their errors that the decoder's clamping
#: cuts: a chunk with a share f of them decodes about -10 log10(1 - CLAMP_SHARE
#: * f) dB above the model's aim (us1, 58% black: +0.5 dB).  Fitted on 226
#: crops (256^2 of the 2-D images, 64^3 of the volumes) at 4 targets each:
#: first trials outside the window 62 -> 48; held out, the 15 whole images'
#: 57 targets: 15 -> 9 (docs/DESIGN.md 52).  Bound samples inside a flat
#: background decode exactly, so the share is well below one half.
CLAMP_SHARE = 0.15


def clamped_gain(arr: np.ndarray) -> float:
    """The dB the decoder's clamping adds to an integer chunk's PSNR over
    the model's (CLAMP_SHARE); 0 for floats."""
    if arr.dtype.kind not in "iu" or not arr.size:
        return 0.0
    info = np.iinfo(arr.dtype)
    at_bounds = 0
    if arr.min() == info.min:
        at_bounds += arr.size - np.count_nonzero(arr) if info.min == 0 else np.count_nonzero(
            arr == info.min)
    if arr.max() == info.max:
        at_bounds += np.count_nonzero(arr == info.max)
    return -10 * math.log10(1 - CLAMP_SHARE * at_bounds / arr.size)


#: Integer samples round the decoder's values, and the original is an
#: integer: a value off by e before rounding is off by round(e) after it.
#: With e normal of variance v, that squares to sum over k >= 1 of
#: (2k - 1) P(|e| > k - 1/2) on average: v + 1/12 to within 1e-6 from v = 1
#: (Sheppard's correction), and far below v near lossless quality, where
#: most errors round away (nm_int16 at 115 dB: the model's first trial,
#: without it, decoded 19 dB above its aim).  Zero samples are taken to
#: decode exactly (a background of zeros has zero coefficients), the error
#: to fall on the others: taken as one normal law over all the samples, mni152
#: at 59 dB (78% zeros) landed 0.8 dB low.
EXACT_ROUNDING_BELOW = 1.0


def rounded_squared_error(v: float, active: float = 1.0) -> float:
    """The mean of round(e)**2 for e normal with variance v (above), or
    with variance v / active in a share `active` of the samples, 0 in the others."""
    if active < 1.0:
        return active * rounded_squared_error(v / active) if active > 0.0 else 0.0
    if v >= EXACT_ROUNDING_BELOW:
        return v + 1.0 / 12.0
    if not v > 0.0:
        return 0.0
    return _rounded_terms(v)[0]


def _rounded_terms(v: float) -> tuple:
    """(rounded_squared_error(v), its derivative in v) for 0 < v < 1: the
    sum over k of (2k - 1) erfc(a_k), a_k = (k - 1/2) / sqrt(2 v), whose
    derivative is (2k - 1) (2 / sqrt(pi)) exp(-a_k**2) a_k / (2 v)."""
    scale = 1.0 / math.sqrt(2.0 * v)
    total = slope = 0.0
    # (the terms fall faster than geometrically from k = 2; erfc is 0 in
    # double beyond 27, so at most 40 of them count, and none after the
    # first that is 0)
    for k in range(1, 41):
        a = (k - 0.5) * scale
        term = math.erfc(a)
        if term == 0.0:
            break
        total += (2 * k - 1) * term
        slope += (2 * k - 1) * math.exp(-a * a) * a
    return total, slope / (v * math.sqrt(math.pi))


def unrounded_squared_error(target: float, active: float = 1.0) -> float:
    """The v whose rounded_squared_error is `target` (it grows with v): below
    EXACT_ROUNDING_BELOW, Newton's method on the log error against 1 / v
    (nearly a line where erfc's tail leads: log erfc(a) ~ -a**2), kept
    within a bracket that is bisected where a step would leave it (1-7
    sums where bisection took 48)."""
    if active < 1.0:
        return active * unrounded_squared_error(target / active) if active > 0.0 else target
    if target >= EXACT_ROUNDING_BELOW + 1.0 / 12.0:
        return target - 1.0 / 12.0
    # in w = 1 / v, from 1 / EXACT_ROUNDING_BELOW up to 1e4 (0 there: erfc(50))
    lo, hi = 1.0 / EXACT_ROUNDING_BELOW, 1e4
    if not target > 0.0:
        return 1.0 / hi
    goal = math.log(target)
    # (the first term's tail, erfc(a) ~ exp(-a**2), a**2 = w / 8, inverted)
    w = min(max(-8.0 * goal, lo), hi)
    for _ in range(60):
        value, slope = _rounded_terms(1.0 / w)
        if not value > 0.0:            # far below: no term left in double
            hi, step = w, None
        else:
            miss = math.log(value) - goal
            if miss < 0.0:
                hi = w
            else:
                lo = w
            # d log(value) / dw = value'(v) dv/dw / value, dv/dw = -v**2
            gain = -slope / (w * w * value)
            step = -miss / gain if gain < 0.0 else None
        if step is not None and abs(step) < 1e-13 * w:
            return 1.0 / (w + step)
        following = w + step if step is not None else None
        if following is None or not lo < following < hi:
            following = 0.5 * (lo + hi)
        if hi - lo < 1e-13 * w:
            return 1.0 / following
        w = following
    return 1.0 / w


#: Sample error over component error for the inverse ICT: the mean squared
#: column norm of its matrix (3, 3.26 and 2.48 for Y, Cb and Cr; csrc/transform.c).
ICT_ERROR_GAIN = (3.0 + (0.34413**2 + 1.772**2) + (1.402**2 + 0.71414**2)) / 3


#: Integer chunks whose target ends near lossless quality (the model's RMS
#: error under this many data units) or near the smallest lossy stream
#: (within NEAR_FLOOR times its header and flushes) are also coded losslessly,
#: and take that stream where lossless_is_better.  Measured (5 real images):
#: the lossy stream grows past the lossless one below an RMS of 0.25-0.3.
NEAR_LOSSLESS_RMS = 0.5
NEAR_FLOOR = 2.0


def ratio_met(size: int, raw: int, ratio: float, tolerance: float = RATIO_TOLERANCE) -> bool:
    """Whether a stream of `size` bytes meets a ratio target: within a
    factor 1 + tolerance of the target size either way."""
    target = raw / ratio
    return target / (1 + tolerance) <= size <= target * (1 + tolerance)


#: The lossless stream over RateModel's estimate at base step 1 (data
#: units, the typical scale): at least 0.67 over 1161 real chunks and images
#: (64^2 tiles to whole images; gray, RGB, 16-bit, 3-D).  Where this share
#: of the estimate is already too large to be taken, no lossless encode is
#: tried (docs/DESIGN.md 33).
LOSSLESS_ESTIMATE_SHARE = 0.5


def lossless_cap(lossy: int, raw: int, options: dict) -> int:
    """The longest lossless stream lossless_is_better can take over a lossy
    one of `lossy` bytes: a ratio target takes it only within its budget or
    below the lossy size, a PSNR target only below the lossy size.  (The
    encoder stops a lossless encode as soon as it is longer: max_length.)"""
    if options["ratio"] is None:
        return lossy
    return max(lossy, math.floor(raw / options["ratio"] * (1 + RATIO_TOLERANCE)))


def lossless_out_of_reach(model: RateModel | None, lossy: int, raw: int, options: dict) -> bool:
    """Whether the lossless stream is surely longer than lossless_cap."""
    if model is None:
        return False
    estimate = model.overhead + TYPICAL_MODEL_SCALE[True] * (model.bytes(1.0) - model.overhead)
    return LOSSLESS_ESTIMATE_SHARE * estimate > lossless_cap(lossy, raw, options)


def lossless_first(model: RateModel, arr: np.ndarray, options: dict, limits, rdo: bool,
                   colour: bool) -> bool:
    """Whether a ratio search on an integer chunk without layers should try
    the lossless stream first: where the model's aim for the target (at the
    typical scale) ends near lossless quality, as where encode() checks the
    lossless stream after a search, and that stream may fit the target.
    Where it fits (lossless_cap(0, ...): the target's window or below it),
    it is the result without a search: a lossy stream that meets the target
    is no smaller than the window's floor, so lossless_is_better would take
    this one over it unless the search found an exact lossy stream smaller
    still (a finer step than lossless coding needs: the lossy stream grows
    past the lossless one below an RMS of 0.25-0.3).  Not the same results
    as a search and the check after it, which is made only where the step
    found ends near lossless quality (a 64^2 tile of us1 at 6:1: its exact
    2028-byte stream, not a 1998-byte lossy one at an RMS of 0.66).  Where
    it does not fit, its encode stopped at the budget, and the check after
    the search knows the answer.  (With layers the lossless stream is made
    whole, by encode(): left to the check after the search.)"""
    if arr.dtype.kind not in "iu" or options["layers"] is not None:
        return False
    target = arr.nbytes / options["ratio"]
    scale = TYPICAL_MODEL_SCALE[rdo] * (COLOUR_MODEL_SCALE if colour else 1.0)
    aim = model.step_for_scaled_bytes(target, scale, limits)
    return (model.squared_error(aim) <= NEAR_LOSSLESS_RMS ** 2 * arr.size
            and not lossless_out_of_reach(model, 0, arr.nbytes, options))


def lossless_is_better(lossless: int, lossy: int, raw: int, options: dict, lossy_exact) -> bool:
    """Whether the lossless stream (exact) serves a ratio or PSNR target at
    least as well as the lossy one the search found (sizes in bytes): a PSNR
    target when it is no larger; a ratio target when it fits the target's
    size (within the tolerance) and is no larger or the lossy one is not
    exact (lossy_exact() says), or when neither fits and it is no larger."""
    if options["ratio"] is None:
        return lossless <= lossy
    budget = raw / options["ratio"] * (1 + RATIO_TOLERANCE)
    if lossless <= budget:
        return lossless <= lossy or not lossy_exact()
    return lossy > budget and lossless <= lossy


def encode_to_ratio(encode, arr: np.ndarray, ratio: float, start: float, limits,
                    model: RateModel | None = None, rdo: bool = False, colour: bool = False,
                    tolerance: float = RATIO_TOLERANCE, pilot=None, context=None,
                    exact=None, seed=None) -> tuple:
    """encode(step, rdo) -> codestream; rdo: try RD-optimised quantisation;
    colour: the chunk has a colour axis (the first step's model scale);
    tolerance: sizes within a factor 1 + tolerance of the target either
    way are accepted (ratio_met); pilot(step, rdo) -> the
    real over modelled coded bytes of a pilot mosaic at that step (or None), which
    then aims the first trial instead of the typical scale; else
    context(step) -> the chunk's context_gain at that step (or None), which
    then scales the model for the first aim; exact(codestream) -> whether it
    decodes to `arr` exactly: a trial smaller than the target that does is
    the result (no finer step adds fidelity; asked only where the model's
    error is below EXACT_CHECK_RMS); seed: encode(start, rdo), already
    made: the first trial, and the first aim's scale (e.g. a search again
    with quality layers, from the step a search without them found).
    Returns (codestream, step, rdo used).  A target out of reach (every
    trial too large) gives the closest plain-quantiser result: RD-optimised
    quantisation reaches its smallest streams by zeroing values, which keeps
    no fidelity."""
    target = arr.nbytes / ratio
    if is_constant_float(arr) and seed is None:   # one trial, where it fits
        step = constant_step(arr, limits)
        encoded = encode(step, rdo)
        if len(encoded) <= target * (1 + tolerance):
            return encoded, step, rdo
    if model is not None and seed is None and target * (1 + tolerance) < model.overhead:
        # (the overhead is the header and flushes: no stream is smaller)
        encoded, step = _below_floor(encode, model, limits, tolerance)
        return encoded, step, False
    typical = TYPICAL_MODEL_SCALE[rdo] * (COLOUR_MODEL_SCALE if colour else 1.0)
    given_start = start
    exact_error = (EXACT_CHECK_RMS * data_quantum(arr)) ** 2 * arr.size

    def accept(step, encoded, log_size):
        if ratio_met(len(encoded), arr.nbytes, ratio, tolerance):
            return True
        return (log_size < math.log(target) and exact is not None and model is not None
                and model.squared_error(step) <= exact_error and exact(encoded))

    def score(step):
        encoded = encode(step, rdo)
        return encoded, math.log(len(encoded))

    predict = None
    reach = (max(limits[0], start / FIRST_REACH), min(limits[1], start * FIRST_REACH))
    if seed is not None:
        seed = (seed, math.log(len(seed)))
        if model is not None:
            predict = _scaled_model_step(model, target, limits)
    elif model is not None and typical * model.bytes(reach[1]) < target:
        # (else even the coarsest step misses: the target is out of reach,
        # and the default start keeps the closest result a faithful one)
        start = model.step_for_scaled_bytes(target, typical, reach)
        scale = pilot(start, rdo) if pilot is not None else None
        if scale is None and context is not None:
            gain = context(start)
            if gain is not None:
                colour_scale = colour_context_scale(arr.size // 3) if colour else 1.0
                scale = CONTEXT_MODEL_SCALE[rdo] * colour_scale * gain
                start = model.step_for_scaled_bytes(target, scale, reach, learning=LEARNING_BYTES)
        elif scale is not None:   # the pilot's scale: its mosaic learnt its contexts too
            start = model.step_for_scaled_bytes(target, scale, reach)

        predict = _scaled_model_step(model, target, limits)

    # size roughly halves when the step doubles at moderate rates: slope -1
    found, trials = _search(score, start, *limits, accept=accept, aim=math.log(target),
                            slope=-1.0, predict=predict, seed=seed)
    if found is None:   # out of reach: the closest (of equals, the finest step)
        if rdo and all(t[2] > math.log(target) for t in trials):
            return encode_to_ratio(encode, arr, ratio, given_start, limits, model, rdo=False,
                                   colour=colour, tolerance=tolerance, pilot=pilot,
                                   context=context, exact=exact)
        found = _finest_of_closest(score, trials, math.log(target), math.log1p(tolerance))
    return found[1], found[0], rdo


#: Trials of _below_floor: each halves the bracket (in log step) or widens it.
BELOW_FLOOR_TRIALS = 6


def _below_floor(encode, model: RateModel, limits, tolerance: float) -> tuple:
    """(codestream, step) for a ratio target below the smallest lossy stream,
    which no step reaches: about the finest step whose stream stays within
    `tolerance` of that floor, with the plain quantiser (RD-optimised
    quantisation reaches small streams by zeroing values), but never the
    floor's own stream where a trial kept something (it zeroes every value):
    then the smallest that did.  The floor is measured (the coarsest step's
    stream: the model's overhead, header and flushes, is 1-2 bytes short of
    it for colour, plane and 3-D chunks); then the model aims, and the step
    is bracketed and bisected in log step: 7 trials where a search for the
    target itself took 15-23 (64^2 chunks at 20:1 and 40:1)."""
    zeroed = encode(limits[1], False)
    floor = len(zeroed)
    ceiling = floor * (1 + tolerance)
    fine = coarse = None   # (step, stream): the coarsest too large; the finest within (or zeroed)
    closest = None         # the smallest stream that keeps something (of equals, the finest)
    step = model.step_for_scaled_bytes(ceiling, TYPICAL_MODEL_SCALE[False], limits)
    for _ in range(BELOW_FLOOR_TRIALS):
        encoded = encode(step, False)
        kept = len(encoded) > floor
        if kept and (closest is None or (len(encoded), step) < (len(closest[1]), closest[0])):
            closest = (step, encoded)
        if kept and len(encoded) > ceiling:
            if fine is None or step > fine[0]:
                fine = (step, encoded)
        elif coarse is None or step < coarse[0]:
            coarse = (step, encoded)
        if coarse is None:     # widen towards coarser steps
            step = min(fine[0] * 16.0, limits[1])
        elif fine is None:     # towards finer ones
            step = max(coarse[0] / 16.0, limits[0])
        else:
            step = math.sqrt(fine[0] * coarse[0])
        if (fine is not None and step <= fine[0]) or (coarse is not None and step >= coarse[0]):
            break              # a limit reached, or the bracket closed
    if coarse is not None and len(coarse[1]) > floor:
        return coarse[1], coarse[0]
    if closest is not None:
        return closest[1], closest[0]
    return zeroed, limits[1]   # every trial zeroed everything


def _scaled_model_step(model: RateModel, target: float, limits):
    """predict(step, log_size) for _search: the model, scaled to the last trial."""
    def predict(step, log_size):
        scale = model.coded_scale(math.exp(log_size), step)
        if scale is None:   # an all-zero trial, or a model of nothing: whole sizes
            return model.step_for_bytes(
                target * max(model.bytes(step), 1.0) / math.exp(log_size), limits, near=step)
        return model.step_for_scaled_bytes(target, scale, limits, near=step)
    return predict


def _finest_of_closest(score, trials, aim: float, slack: float, rounds: int = 6) -> tuple:
    """About the finest step whose value is within `slack` of the closest
    trial's distance to `aim`: bisected (in log step) against the next finer
    trial, which was further away.  For chunks that no step brings to the
    target: the smallest stream comes from a range of steps, the coarsest of
    which have zeroed everything (a 64 x 64 chunk's all-zero stream is 236
    bytes, one that keeps its low band 238), so the size tolerance buys
    back what a finer step keeps."""
    def distance(t):
        return abs(t[2] - aim)

    limit = min(distance(t) for t in trials) + slack
    best = min((t for t in trials if distance(t) <= limit), key=lambda t: t[0])
    finer = [t for t in trials if t[0] < best[0]]
    if not finer:
        return best
    lo = max(finer, key=lambda t: t[0])[0]
    for _ in range(rounds):
        middle = math.sqrt(lo * best[0])
        trial, value = score(middle)
        if abs(value - aim) <= limit:
            best = (middle, trial, value)
        else:
            lo = middle
    return best


#: A constant float chunk's step with a target, relative to its value: fine
#: enough for float32 to come back exact (float64 within 2**-31 of the
#: value), coarse enough that the transform's rounding noise in the high
#: bands quantises to zero.
CONSTANT_STEP = 2.0**-30


def is_constant_float(arr: np.ndarray) -> bool:
    """A float chunk of one value: no value range for a PSNR, and a size that
    hardly depends on the step (a search would only walk)."""
    return arr.dtype.kind == "f" and arr.size > 0 and float(arr.max()) == float(arr.min())


def constant_step(arr: np.ndarray, limits) -> float:
    """The step a constant float chunk is coded with (CONSTANT_STEP)."""
    return min(max(limits[0], peak_magnitude(arr) * CONSTANT_STEP), limits[1])


def encode_to_psnr(encode, decode, arr: np.ndarray, target: float, start: float, limits,
                   model: RateModel | None = None, error_gain: float = 1.0,
                   rdo: bool = False, trial_error=None) -> tuple:
    """encode(step, rdo) -> codestream; decode(codestream) -> its samples;
    trial_error(codestream) -> None, or the squared error of its decode
    (Prepared.trial_error, without decoding); error_gain: sample
    error over coefficient error (ICT_ERROR_GAIN for colour chunks, else 1);
    rdo: use RD-optimised quantisation.  Returns (codestream, step, rdo
    used)."""
    peak = psnr_peak(arr)

    def score(step):
        encoded = encode(step, rdo)
        squared = trial_error(encoded) if trial_error is not None else None
        if squared is None:
            return encoded, psnr(decode(encoded), arr, peak)
        return encoded, psnr_of_mse(squared / arr.size, peak)

    if is_constant_float(arr):   # every inexact decode reads -inf dB: one trial
        step = constant_step(arr, limits)
        return encode(step, rdo), step, rdo
    aim = target + PSNR_AIM
    predict = None
    if model is not None:
        # log of the samples' mean squared error (before rounding) over the
        # model's squared error, summed over the coefficients
        per_sample = math.log(error_gain) - math.log(arr.size)
        # (a target above one sample one unit off is met by exact decodes
        # only: the unrounded model aims at those, where the rounded one
        # steered between exact and inexact trials up to MAX_TRIALS)
        rounded = arr.dtype.kind in "iu" and target <= 10 * math.log10(peak ** 2 * arr.size)
        active = np.count_nonzero(arr) / arr.size if rounded else 1.0

        def model_psnr(step):
            error = model.squared_error(step)
            if not error > 0:
                return math.inf
            log_mse = math.log(error) + per_sample
            if rounded:
                mse = rounded_squared_error(math.exp(log_mse), active)
                if not mse > 0:
                    return math.inf
                log_mse = math.log(mse)
            return (2 * math.log(peak) - log_mse) * 10 / math.log(10)

        def log_error_for(psnr_value):
            log_mse = 2 * math.log(peak) - psnr_value * math.log(10) / 10
            if rounded:
                log_mse = math.log(unrounded_squared_error(math.exp(log_mse), active))
            return log_mse - per_sample

        bias = TYPICAL_PSNR_BIAS[rdo] + clamped_gain(arr)
        start = model.step_for_log_error(
            log_error_for(aim - bias),
            (max(limits[0], start / FIRST_REACH), min(limits[1], start * FIRST_REACH)))

        def model_predict(step, measured):   # the model, offset to the last trial
            offset = measured - model_psnr(step)
            if not math.isfinite(offset):
                return None
            return model.step_for_log_error(log_error_for(aim - offset), limits, near=step)

        predict = model_predict

    def settled(trials):
        """The smallest trial meeting the target, once a coarser trial that
        misses it is no smaller (chunks whose size hardly depends on the
        step, e.g. constant ones: finer steps are no smaller, and coarser
        ones are taken to miss too)."""
        meeting = [t for t in trials if t[2] >= target]
        if not meeting:
            return None
        best = min(meeting, key=lambda t: (len(t[1]), -t[2]))
        closed = any(t[2] < target and t[0] > best[0] and len(t[1]) >= len(best[1])
                     for t in trials)
        return best if closed else None

    # MSE ~ step**2: -20 / ln(10) dB per e-fold of the step
    found, trials = _search(score, start, *limits,
                            accept=lambda step, encoded, p: target <= p <= target + PSNR_MARGIN,
                            aim=aim, slope=-20 / math.log(10), predict=predict, settled=settled)
    if found is None:   # out of reach: the smallest meeting it
        meeting = [t for t in trials if t[2] >= target]
        found = max(meeting, key=lambda t: t[0]) if meeting else max(trials, key=lambda t: t[2])
        if not meeting:   # (integers reach exact decodes at the finest steps: floats only)
            warnings.warn(psnr_out_of_reach(arr, target, found[2], peak), stacklevel=4)
    return found[1], found[0], rdo


#: Float values whose magnitude passes this many times their range are far
#: from zero for it: a PSNR target they miss asks for their offset removed.
FAR_FROM_ZERO = 1024.0


def psnr_out_of_reach(arr: np.ndarray, target: float, reached: float,
                      peak: float) -> PSNRTargetWarning:
    """The warning for a chunk no step brings to `target` dB (`peak`: the
    PSNR's, a float chunk's value range), with the PSNR it `reached` as an
    attribute: its text is the same for every chunk of a target and dtype,
    so a write of many chunks says it once."""
    far = peak_magnitude(arr) > FAR_FROM_ZERO * peak
    why = ("values far from zero for their range (lossy coding's precision follows the "
           "values' magnitude, not their range: subtract their offset first)" if far else
           "values: beyond the precision lossy coding keeps at their magnitude")
    warning = PSNRTargetWarning(f"psnr={target:g} dB is out of reach for chunks of {arr.dtype} "
                                f"{why}; such chunks are coded as close as they come (the "
                                f"warning's .reached)")
    warning.target, warning.reached = target, reached
    return warning
