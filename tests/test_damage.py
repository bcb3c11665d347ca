"""Exhaustive damage on real chunks (see damage.py): never wrong data."""
import pytest

from conftest import load
from damage import campaign, real_chunks

CHUNKS = dict(real_chunks(load))


@pytest.mark.parametrize("name", sorted(CHUNKS))
def test_exhaustive_damage(name):
    enc = CHUNKS[name]
    counts = campaign(enc)
    assert counts["truncations"] == len(enc)
    assert counts["bit_flips"] == 8 * len(enc)
    assert counts["errors"] > 0 and counts["intact_decodes"] > 0
