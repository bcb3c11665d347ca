"""The encoder's per-chunk choice between 5/3 and 9/7-M at the finest level
(docs/DESIGN.md 23): 9/7-M on smooth real images, 5/3 on noise, sparse and
edge-dominated data, and never far from the better of the two."""
import numpy as np
import pytest

import progressive_j2k as pj


def sizes(arr, **options):
    """(chosen mask, auto size, all-5/3 size, 9/7-M-at-level-1 size)."""
    auto = pj.encode(arr, **options)
    return (pj.read_header(auto).m97_levels, len(auto), len(pj.encode(arr, m97_levels=0, **options)),
            len(pj.encode(arr, m97_levels=1, **options)))


@pytest.mark.parametrize("name, crop, options, expected", [
    ("mr2_uint16", np.s_[256:768, 256:768], {}, 1),        # smooth MR: 9/7-M 2.7% smaller
    ("ct693_int16", np.s_[:, :], {}, 1),
    ("chelsea", np.s_[:, :], {"colour_axis": -1}, 1),
    ("nm_int16", np.s_[:, :], {}, 0),                        # sparse: 9/7-M 12% larger
    ("us1_rgb8", np.s_[:, :], {"colour_axis": -1}, 0),       # speckle: 9/7-M 4% larger
    ("camera", np.s_[:, :], {}, 0),
])
def test_choice_on_real_images(real, name, crop, options, expected):
    mask, auto, only53, m97 = sizes(np.ascontiguousarray(real(name)[crop]), **options)
    assert mask == expected
    assert auto == (m97 if expected else only53)
    # the choice is the smaller one by a clear margin on these images
    assert auto < min(only53, m97) * 1.0005 and auto < max(only53, m97) * 0.997


@pytest.mark.parametrize("dtype", ["u1", "u2", "i4"])
def test_noise_keeps_53(dtype):
    info = np.iinfo(dtype)
    noise = np.random.default_rng(3).integers(info.min, info.max, (192, 160), dtype=dtype,
                                              endpoint=True)
    mask, auto, only53, m97 = sizes(noise)
    assert mask == 0 and auto == only53 <= m97


def test_choice_is_per_chunk_and_lossless(real):
    """Chunks of one array may differ; each decodes exactly, at every level
    from its prefix, whatever was chosen."""
    zarr = pytest.importorskip("zarr")
    from progressive_j2k.zarr3 import ProgressiveJ2K
    smooth = real("mr2_uint16")[300:428, 300:428]
    noisy = np.random.default_rng(4).integers(0, 65535, (128, 128), dtype="u2")
    arr = np.concatenate([smooth, noisy], axis=1)
    z = zarr.create_array(zarr.storage.MemoryStore(), shape=arr.shape, chunks=(128, 128),
                          dtype=arr.dtype, compressors=None, serializer=ProgressiveJ2K())
    z[:] = arr
    np.testing.assert_array_equal(z[:], arr)
    masks = [pj.read_header(pj.encode(arr[:, i:i + 128])).m97_levels for i in (0, 128)]
    assert masks == [1, 0]
