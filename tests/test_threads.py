"""The GIL is released around C work; concurrent use is bit-identical to serial."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import progressive_j2k as pj


def test_concurrent_encode_decode_matches_serial(real):
    sources = [real("camera"), real("mr2_uint16")[:512, :512], real("astronaut"),
               real("ct693_int16"), real("anatomical_int16_3d")]
    jobs = []
    for i in range(24):
        arr = sources[i % len(sources)]
        options = {"colour_axis": -1} if arr.ndim == 3 and arr.shape[-1] == 3 else {}
        if i % 4 == 3:
            options["reversible"] = False
        jobs.append((np.ascontiguousarray(np.roll(arr, i, axis=0)), options, i % 3))
    serial_enc = [pj.encode(a, **o) for a, o, _ in jobs]
    serial_dec = [pj.decode(e, level=k) for e, (_, _, k) in zip(serial_enc, jobs)]

    def work(index):
        arr, options, level = jobs[index]
        enc = pj.encode(arr, **options)
        return enc, pj.decode(enc, level=level)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(len(jobs))))
    for (enc, dec), e, d in zip(results, serial_enc, serial_dec):
        assert enc == e
        np.testing.assert_array_equal(dec, d)
