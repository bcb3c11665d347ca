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


def test_eight_threads_thousands_of_mixed_chunks(real):
    """8 threads, 2,000 chunks of mixed dtypes, layouts and levels, encoding and
    decoding at the same time: every result identical to the serial one."""
    rng = np.random.default_rng(7)
    sources = {
        "u1": real("camera"), "rgb": real("astronaut"), "u2": real("mr2_uint16"),
        "i2": real("ct693_int16"), "vol": real("anatomical_int16_3d"),
        "f4": real("tlrc_float32_3d"),
    }
    jobs = []
    for _ in range(2000):
        kind = rng.choice(list(sources))
        src = sources[kind]
        size = [min(int(rng.integers(4, 40)), n) for n in src.shape]
        if kind == "rgb":
            size[-1] = 3
        start = [int(rng.integers(0, n - s + 1)) for n, s in zip(src.shape, size)]
        arr = np.ascontiguousarray(src[tuple(slice(a, a + s) for a, s in zip(start, size))])
        if kind == "i2" and rng.integers(2):
            arr = arr.astype(np.int32) * 1000  # 32-bit path
        options = {"colour_axis": -1} if kind == "rgb" else {}
        if kind == "f4" or rng.integers(5) == 0:
            options["reversible"] = False
        jobs.append((arr, options, int(rng.integers(0, 3))))

    def run(job):
        arr, options, level = job
        enc = pj.encode(arr, **options)
        header = pj.read_header(enc)
        level = min(level, header.levels)
        return enc, pj.decode(enc[: header.prefix_length(level)], level=level)

    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(run, jobs))
    for (enc_s, dec_s), (enc_c, dec_c), (arr, options, _) in zip(serial, concurrent, jobs):
        assert enc_s == enc_c
        np.testing.assert_array_equal(dec_s, dec_c)
        if options.get("reversible", True):
            np.testing.assert_array_equal(pj.decode(enc_s), arr)
