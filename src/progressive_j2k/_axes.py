"""Which axes a chunk's transforms take: its colour axis ("auto" and
channels first), the wavelet's default axes and levels, and encode()'s
test for stacks of unlike frames, whose planes are coded one by one."""
from __future__ import annotations

import functools
import math

import numpy as np

from progressive_j2k import _core
from progressive_j2k._dtypes import DTYPE_CODES

#: Default levels cap: 1/64 of each axis is the coarsest default resolution.
DEFAULT_MAX_LEVELS = 6


def normalise_axis(axis: int, ndim: int) -> int:
    """axis as a non-negative index; ValueError outside -ndim..ndim - 1."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} out of range for {ndim} dimensions")
    return axis % ndim


#: colour_axis="auto" (the default) takes the last axis as RGB where a chunk
#: looks like an integer colour image: three or more dimensions, the last of
#: length 3 after two longer ones, and not itself a given transformed axis
#: (docs/DESIGN.md 28).  None: no colour axis.
AUTO_COLOUR = "auto"


def auto_colour_axis(shape, dtype, axes) -> int | None:
    """The colour axis colour_axis="auto" stands for (the last, or None)."""
    ndim = len(shape)
    if ndim < 3 or shape[-1] != 3 or min(shape[-3], shape[-2]) <= 3:
        return None
    if np.dtype(dtype).kind not in "iu":
        return None
    if axes is not None and ndim - 1 in (normalise_axis(a, ndim) for a in axes):
        return None
    return ndim - 1


def channels_first_colour_axis(shape, dtype, axes) -> int | None:
    """encode()'s and to_zarr's colour axis where "auto" finds none at the
    end: an integer colour image with its channels first, (3, H, W) or
    OME-Zarr's (t, c, z, y, x) with z = 1 -- an axis of length 3 before the
    last two, with only axes of one sample between.  Its colour transform
    keeps the channels whole at every level, where the 3-D transform halves
    them, and is 4-28% smaller on real photos (docs/DESIGN.md 32).  Not the
    codecs' rule: arrays stored with "auto" keep their meaning."""
    ndim = len(shape)
    if ndim < 3 or np.dtype(dtype).kind not in "iu" or min(shape[-2], shape[-1]) <= 3:
        return None
    candidate = next((a for a in range(ndim - 3, -1, -1) if shape[a] != 1), None)
    if candidate is None or shape[candidate] != 3:
        return None
    if axes is not None and candidate in (normalise_axis(a, ndim) for a in axes):
        return None
    return candidate


def colour_image_axes(ndim: int, colour_axis: int) -> list:
    """The two image axes of a colour axis's planes: the last two others."""
    return [a for a in range(ndim) if a != colour_axis][-2:]


def encoder_colour_axis(options: dict, arr: np.ndarray) -> int | None:
    """"auto"'s colour axis where the three planes along it share their
    detail (three unrelated channels are smaller as planes: _unlike_share):
    the codecs' channels-last axis (resolve_colour_axis), else
    channels_first_colour_axis; a colour axis given is taken as it is.  The
    colour axis of encode(), and of to_zarr, which judges a block at the
    array's centre and records it.  (Three unrelated 16-bit channels stored
    channels last were 25% larger with the colour transform.)  Nodata is
    filled in first (_as_coded)."""
    colour_axis = resolve_colour_axis(options, arr.shape, arr.dtype)
    if options["colour_axis"] != AUTO_COLOUR:
        return colour_axis
    candidate = colour_axis if colour_axis is not None else \
        channels_first_colour_axis(arr.shape, arr.dtype, options["axes"])
    if candidate is None or not arr.size:   # (an empty array: no planes to judge)
        return colour_axis
    return candidate if _channels_share_detail(arr, candidate, options["nodata"]) else None


def codec_colour_axis(options: dict, resolved: int | None, arr: np.ndarray) -> int | None:
    """The codecs' colour axis for one chunk: the fixed rule's (`resolved`,
    resolve_colour_axis of the chunk's shape) where the three planes along
    it share their detail, as encoder_colour_axis judges them; else None,
    the planes coded apart along the same axes (the rule's, which leave the
    colour axis out), so that every chunk keeps the array's levels and
    shapes.  Three fluorescence channels of unlike brightness stored
    channels last went through the colour transform by their shape alone,
    and a dim one took the others' error: 5x its own span at 20:1
    (docs/DESIGN.md 69).  A colour axis given is kept as it is."""
    if options["colour_axis"] != AUTO_COLOUR or resolved is None or not arr.size:
        return resolved
    return resolved if _channels_share_detail(arr, resolved, options["nodata"]) else None


def _channels_share_detail(arr: np.ndarray, candidate: int, nodata) -> bool:
    """Whether the three planes along `candidate` (at the first index of
    every axis but it and its two image axes) share their detail: as a
    colour image's channels do, and unrelated or unlike-scaled channels do
    not (_unlike_share, nodata filled in first: _as_coded)."""
    ndim = arr.ndim
    kept = sorted([candidate] + colour_image_axes(ndim, candidate))
    block = arr[tuple(slice(None) if a in kept else 0 for a in range(ndim))]
    mask = _nodata_mask(block, nodata, kept.index(candidate))   # (of the planes judged only)
    planes, mask = (None if m is None else np.moveaxis(m, kept.index(candidate), 0)
                    for m in (block, mask))
    return _unlike_share(_as_coded(planes, mask)) < UNLIKE_SHARE


def resolve_colour_axis(options: dict, shape, dtype) -> int | None:
    """The colour axis of a chunk of this shape and dtype (normalised), or None."""
    colour_axis = options["colour_axis"]
    if colour_axis == AUTO_COLOUR:
        return auto_colour_axis(shape, dtype, options["axes"])
    return None if colour_axis is None else normalise_axis(colour_axis, len(shape))


def default_axes(ndim: int, colour_axis: int | None) -> tuple:
    """The last (up to) three axes that are not the colour axis."""
    candidates = [a for a in range(ndim) if a != colour_axis]
    return tuple(candidates[-_core.MAX_AXES:])


#: encode() with axes=None leaves the first (else the last) of three axes
#: untransformed, its planes coded one by one, where neighbouring planes
#: along it do not share their detail.  Per sampled pair of neighbouring
#: planes: the mean |change across the pair of a within-plane difference|
#: over the mean |within-plane difference| -- near 0 for planes with the same
#: edges (slices of a volume, the channels of a photo), about 1.4-1.5 for
#: unrelated frames, 2 beside a flat plane (an alpha channel, or the empty
#: slices at the edge of an object).  A pair is unlike above
#: FRAME_DETAIL_LIMIT; the axis is a stack where its unlike pairs carry at
#: least UNLIKE_SHARE of the sampled detail (one pair at an object's edge
#: does not decide for a whole volume).  Axes whose planes are thinner than
#: THIN_PLANE along either side are not judged: too few samples, and a thin
#: slab's edge pairs mislead (docs/DESIGN.md 27, 28).  Sampled at up to
#: LIKENESS_SAMPLES evenly spaced positions per axis.
FRAME_DETAIL_LIMIT = 1.3
UNLIKE_SHARE = 0.1
THIN_PLANE = 32
LIKENESS_SAMPLES = 16


@functools.lru_cache(maxsize=64)
def _pair_positions(n: int) -> np.ndarray:
    """Up to LIKENESS_SAMPLES evenly spaced positions along an axis of n >= 2,
    each followed by its next neighbour."""
    grid = np.unique(np.linspace(0, n - 2, min(n - 1, LIKENESS_SAMPLES)).round().astype(np.uint64))
    positions = np.stack((grid, grid + 1), axis=-1).reshape(-1)
    positions.flags.writeable = False   # (shared by every call)
    return positions


def _pair_detail(block: np.ndarray) -> tuple:
    """Per sampled pair of neighbouring planes along axis 0 of a 3-D block
    (_pair_positions along every axis, each at least 2 long): the mean
    |change across the pair| of the within-plane differences (each sampled
    point's to the next sampled point along axis 1 and along axis 2), and
    the mean |within-plane difference|: _core.pair_detail, read where the
    samples are (numpy's gathers and float64 temporaries took 0.2-0.35 ms,
    a sixth of a 32^3 chunk's encode: docs/DESIGN.md 68).  Integer samples
    of the format's dtypes as they are, float ones in units of their largest
    finite value read (no difference overflows), non-finite differences
    left out.  Other dtypes (which encode() refuses) are judged as float64,
    and big-endian samples (a TIFF's, in convert's block) in native order:
    copies of the whole block."""
    if block.dtype not in DTYPE_CODES:
        native = block.dtype.newbyteorder("=")
        block = block.astype(native if native in DTYPE_CODES else np.float64)
    mixed, within = np.empty((2, _pair_positions(block.shape[0]).size // 2))
    _core.pair_detail(block, *(_pair_positions(n) for n in block.shape), mixed, within)
    return mixed, within


def _unlike_share(block: np.ndarray) -> float:
    """The share of the sampled detail in unlike pairs of neighbouring
    planes along axis 0 of a 3-D block (FRAME_DETAIL_LIMIT); 0 where the
    planes are thin or there is nothing to compare."""
    if block.shape[0] < 2 or min(block.shape[1:]) < THIN_PLANE:
        return 0.0
    mixed, within = _pair_detail(block)
    total = within.sum()
    if not total > 0:   # flat planes: nothing to tell them apart by
        return 0.0
    return float(within[mixed > FRAME_DETAIL_LIMIT * within].sum() / total)


def _as_coded(block: np.ndarray, mask: np.ndarray | None, plane=(1, 2)) -> np.ndarray:
    """A 3-D block to judge, its nodata samples (`mask`: the codec's, whole
    pixels of a colour chunk) filled in along the axes of the planes judged
    as the reversible modes may fill them (block means), so that the value marking
    nodata does not decide and its outline counts as coded: a float volume
    masked with -1 (values near 1e-4) was judged a stack of frames, with 0
    a volume, and leaving the nodata samples out instead judged two unlike
    frames with their outside masked, or one of them all nodata, a volume
    (twice the planes' size).  Over 71 masked volumes and stacks this picks
    the smaller coding in 60, 0.5% over the best on average (docs/DESIGN.md
    61).  A plane all nodata is filled flat: a frame apart."""
    if mask is None or not mask.any() or mask.all():
        return block
    from progressive_j2k._edges import inpaint   # (_edges is imported after this module)
    return inpaint(block, mask, plane, block_means=True)


def _nodata_mask(arr: np.ndarray, nodata, colour_axis: int | None) -> np.ndarray | None:
    """The samples encode() takes for nodata (whole pixels along a colour
    axis: a channel of the nodata value is colour data), or None."""
    from progressive_j2k._edges import matches, sample_of, whole_pixels
    sample = sample_of(nodata, arr.dtype)   # (None: none, or no value of the dtype)
    if sample is None or not arr.size:
        return None
    return whole_pixels(matches(arr, sample), colour_axis)


def choose_axes(arr: np.ndarray, colour_axis: int | None, nodata=None) -> tuple:
    """default_axes less the axes of one sample (OME-Zarr's z of a 2-D
    image: nothing to transform, and a third axis would shrink the default
    chunks), then less the first of three (a stack of frames) or else the
    last (channels last, e.g. RGBA) where neighbouring planes along it do
    not share their detail (FRAME_DETAIL_LIMIT, UNLIKE_SHARE, THIN_PLANE),
    nodata filled in first (_as_coded)."""
    axes = default_axes(arr.ndim, colour_axis)
    if arr.size and any(arr.shape[a] == 1 for a in axes):
        return tuple(a for a in axes if arr.shape[a] > 1) or axes[-1:]
    if len(axes) < 3 or not arr.size:   # (an empty array: no planes to judge)
        return axes
    # the three axes at the first index of every other axis
    at = tuple(slice(None) if a in axes else 0 for a in range(arr.ndim))
    mask = _nodata_mask(arr, nodata, colour_axis)
    block, mask = arr[at], None if mask is None else mask[at]
    if _unlike_share(_as_coded(block, mask)) >= UNLIKE_SHARE:
        return axes[1:]
    if _unlike_share(np.moveaxis(_as_coded(block, mask, (0, 1)), 2, 0)) >= UNLIKE_SHARE:
        return axes[:2]
    return axes


def default_levels(shape, axes) -> int:
    """Halvings until the longest transformed axis is one sample, at most 6."""
    longest = max((shape[a] for a in axes), default=1)
    return min(DEFAULT_MAX_LEVELS, max(0, math.ceil(math.log2(longest))) if longest > 1 else 0)
