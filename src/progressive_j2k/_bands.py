"""A chunk's subbands: how many, and their 9/7 synthesis norms."""
from __future__ import annotations

import functools

from progressive_j2k import _core


def band_count(levels: int, naxes: int) -> int:
    """Subbands of a chunk: the low band and 2**naxes - 1 per level."""
    return 1 + levels * (2**naxes - 1)


@functools.lru_cache(maxsize=256)
def band_norms(lengths: tuple, levels: int) -> tuple:
    """Each band's 9/7 synthesis norm, in coding order, for transformed axes
    of these lengths (a pure function of the geometry, asked several times
    per lossy encode: 15 us each, a twentieth of a 128^2 chunk's ratio
    search)."""
    return tuple(_core.band_norms(lengths, levels))
