"""Exhaustive damage campaign on one codestream: every truncation point,
every single-bit flip, and bursts in every piece.  For each damaged copy
and each level (and each quality layer of a layered chunk): if the damage
lies beyond the prefix that read needs, the decode must equal the pristine one; otherwise it must raise ValueError.  The
checksums decide: wrong data is never returned."""
import numpy as np

import progressive_j2k as pj


def _reads(header):
    """Every (level, layer) a reader may ask for (layer None: all layers)."""
    layers = [None] + (list(range(header.layers - 1)) if header.layers > 1 else [])
    return [(level, layer) for level in range(header.levels + 1) for layer in layers]


def _check(damaged: bytes, first_damaged: int, header, pristine, counts):
    for level, layer in _reads(header):
        if first_damaged >= header.prefix_length(level, layer):
            np.testing.assert_array_equal(pj.decode(damaged, level=level, layer=layer),
                                          pristine[level, layer])
            counts["intact_decodes"] += 1
        else:
            try:
                pj.decode(damaged, level=level, layer=layer)
            except ValueError:
                counts["errors"] += 1
            else:
                raise AssertionError(f"damage at byte {first_damaged} decoded at level {level}, "
                                     f"layer {layer}")


def campaign(enc: bytes, bursts_per_segment: int = 20, seed: int = 0) -> dict:
    header = pj.read_header(enc)
    pristine = {(k, j): pj.decode(enc, level=k, layer=j) for k, j in _reads(header)}
    counts = {"truncations": 0, "bit_flips": 0, "bursts": 0, "intact_decodes": 0, "errors": 0}
    for n in range(len(enc)):               # every truncation point
        _check(enc[:n], n, header, pristine, counts)
        counts["truncations"] += 1
    data = bytearray(enc)
    for i in range(len(enc)):               # every single-bit flip
        for bit in range(8):
            data[i] ^= 1 << bit
            _check(bytes(data), i, header, pristine, counts)
            data[i] ^= 1 << bit
            counts["bit_flips"] += 1
    rng = np.random.default_rng(seed)
    ends = [e for per_resolution in header.piece_ends for e in per_resolution]
    starts = [header.header_length] + ends[:-1]
    for start, end in zip(starts, ends):   # bursts inside every piece
        for _ in range(bursts_per_segment if end > start else 0):
            at = int(rng.integers(start, end))
            n = int(rng.integers(2, 33))
            burst = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            damaged = bytearray(enc)
            damaged[at:at + n] = burst[: len(enc) - at]
            first = next((j for j in range(at, min(at + n, len(enc))) if damaged[j] != enc[j]),
                         None)
            if first is None:
                continue
            _check(bytes(damaged), first, header, pristine, counts)
            counts["bursts"] += 1
    return counts


def real_chunks(load):
    """The real chunks the campaign runs on (kept small: ~0.5-2 KB each)."""
    yield "gray8", pj.encode(np.ascontiguousarray(load("camera")[240:272, 250:280]))
    yield "rgb8", pj.encode(np.ascontiguousarray(load("astronaut")[200:224, 200:220]),
                            colour_axis=-1)
    yield "int16_3d", pj.encode(np.ascontiguousarray(load("anatomical_int16_3d")[8:16, 8:16, 6:12]))
    yield "float32_lossy", pj.encode(np.ascontiguousarray(load("tlrc_float32_3d")[15:25, 15:25, 15:23]),
                                     reversible=False)
    yield "uint16", pj.encode(np.ascontiguousarray(load("mr2_uint16")[500:530, 480:512]), levels=3)
    yield "gray8_layers", pj.encode(np.ascontiguousarray(load("moon")[200:232, 150:180]),
                                    layers=3, levels=4)
    # sparse bands at least 16 wide: version 5's zero runs and broken runs
    yield "gray8_runs", pj.encode(np.ascontiguousarray(load("camera")[40:104, 300:364]), tolerance=4)
