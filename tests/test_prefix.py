"""Every prefix length either decodes the levels it covers exactly like a full
decode at that level, or raises ValueError."""
import numpy as np
import pytest

import progressive_j2k as pj


def check_every_prefix(enc: bytes):
    header = pj.read_header(enc)
    full = {k: pj.decode(enc, level=k) for k in range(header.levels + 1)}
    for n in range(len(enc) + 1):
        prefix = enc[:n]
        for level in range(header.levels + 1):
            if n >= header.prefix_length(level):
                np.testing.assert_array_equal(pj.decode(prefix, level=level), full[level])
            else:
                with pytest.raises(ValueError):
                    pj.decode(prefix, level=level)
        if n < header.header_length:
            with pytest.raises(pj.TruncatedError) as info:
                pj.read_header(prefix)
            assert info.value.needed in (pj.FIXED_HEADER_BYTES, header.header_length)
        else:
            assert pj.read_header(prefix) == header


@pytest.mark.parametrize("name,crop,options", [
    ("camera", np.s_[200:248, 100:140], {}),
    ("astronaut", np.s_[100:132, 200:229], {"colour_axis": -1}),
    ("mr2_uint16", np.s_[400:440, 500:530], {"levels": 4}),
    ("anatomical_int16_3d", np.s_[5:20, 8:20, 3:14], {}),
    ("tlrc_float32_3d", np.s_[10:26, 10:30, 10:20], {"reversible": False}),
])
def test_every_prefix_of_real_chunks(real, name, crop, options):
    arr = np.ascontiguousarray(real(name)[crop])
    check_every_prefix(pj.encode(arr, **options))


def test_header_fits_in_first_bytes_and_prefix_lengths_grow(real):
    enc = pj.encode(real("camera"))
    header = pj.read_header(enc[: pj.MAX_HEADER_BYTES])
    assert header.header_length < 200
    lengths = [header.prefix_length(k) for k in range(header.levels, -1, -1)]
    assert lengths == sorted(lengths) and lengths[-1] == len(enc)
    # the coarse levels are a small fraction of the chunk
    assert header.prefix_length(3) < len(enc) / 20
