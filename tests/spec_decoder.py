"""A second decoder, written from docs/FORMAT.md alone (format versions 1-10,
wavelets 0, 2, 3 and 4: lossless and error-bounded, and wavelet 1: the lossy
9/7 with quantisation, ICT and quality layers), in plain Python and numpy.

It shares no code with the C core: test_spec_decoder.py decodes real chunks
with both and requires identical arrays, so the document and the code cannot
drift apart.  Slow (pure Python, per coefficient): small chunks only.
Section numbers below are those of FORMAT.md.
"""
from __future__ import annotations

import struct

import numpy as np

DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.float32, np.float64]
DTYPE_BITS = [8, 8, 16, 16, 32, 32, 32, 64]


class Corrupt(ValueError):
    pass


def ceil_shift(a: int, k: int) -> int:
    return (a + (1 << k) - 1) >> k


def parse_header(buf: bytes) -> dict:
    """Section 1."""
    if buf[:4] != b"PJ2K":
        raise Corrupt("magic")
    h = {"version": buf[4], "dtype": buf[5], "wavelet": buf[6], "colour": buf[7],
         "header_length": struct.unpack_from("<I", buf, 8)[0],
         "ndim": buf[12], "naxes": buf[13], "levels": buf[14],
         "colour_axis": None if buf[15] == 0xFF else buf[15]}
    if h["wavelet"] > 4 or (h["wavelet"] in (3, 4) and h["version"] < 6):
        raise Corrupt("wavelet")    # (the rounded 5/3 came with version 6)
    p = 16
    h["shape"] = list(struct.unpack_from(f"<{h['ndim']}Q", buf, p))
    p += 8 * h["ndim"]
    h["axes"] = list(buf[p:p + h["naxes"]])
    p += h["naxes"]
    nbands = 1 + h["levels"] * ((1 << h["naxes"]) - 1)
    layers = 1
    if h["version"] >= 2:
        layers = buf[p]
        p += 1
    shifts = [[0] * nbands for _ in range(layers)]
    if layers > 1:
        for j in range(layers):
            shifts[j] = list(buf[p:p + nbands])
            p += nbands
    h["layers"], h["shifts"] = layers, shifts
    h["m97_levels"] = 0
    if h["version"] >= 6:
        h["m97_levels"] = struct.unpack_from("<H", buf, p)[0]
        p += 2
    h["gaps"] = []
    if h["version"] >= 7 and h["wavelet"] in (0, 4):   # section 2: value gaps
        count = buf[p]
        p += 1
        if count > 4 or (count and DTYPE_BITS[h["dtype"]] > 16):
            raise Corrupt("value gaps")
        closed = 0
        for _ in range(count):   # (8- and 16-bit integers)
            info = np.iinfo(DTYPES[h["dtype"]])
            after, length = struct.unpack_from("<HH", buf, p)
            after += info.min
            closed += length
            if length < 1 or (h["gaps"] and after <= h["gaps"][-1][0]) or (
                    after + 1 + closed > info.max):
                raise Corrupt("value gaps")
            h["gaps"].append((after, length))
            p += 4
    h["fill_extent"] = None
    if h["version"] >= 9:               # section 1: the data's extent, the fill sample
        h["fill_extent"] = list(struct.unpack_from(f"<{h['ndim']}Q", buf, p))
        p += 8 * h["ndim"]
        size = np.dtype(DTYPES[h["dtype"]]).itemsize
        h["fill_value"] = np.frombuffer(buf, DTYPES[h["dtype"]], 1, p)[0]
        if any(buf[p + size:p + 8]) or (h["fill_extent"] == h["shape"] and h["version"] < 10) \
                or not all(1 <= e <= n for e, n in zip(h["fill_extent"], h["shape"])):
            raise Corrupt("fill field")
        p += 8
    h["mask_length"] = 0
    if h["version"] >= 10:              # section 1: the nodata mask's length
        h["mask_length"] = struct.unpack_from("<Q", buf, p)[0]
        p += 8
        if h["mask_length"] < 1:
            raise Corrupt("mask length")
    if h["wavelet"] in (2, 3):         # error-bounded (3: the rounded 5/3)
        h["scale"] = struct.unpack_from("<d", buf, p)[0]
        p += 16
    if h["wavelet"] == 1:             # f32 quantisation steps, one per band
        h["steps"] = [float(v) for v in struct.unpack_from(f"<{nbands}f", buf, p)]
        p += 4 * nbands
    h["piece_ends"] = [struct.unpack_from("<Q", buf, p + 12 * i)[0]
                       for i in range((h["levels"] + 1) * layers)]
    p += 12 * (h["levels"] + 1) * layers
    if p + 4 != h["header_length"]:
        raise Corrupt("header length")
    if h["piece_ends"][0] - h["header_length"] < h["mask_length"]:
        raise Corrupt("mask length")
    return h


class RangeDecoder:
    """Section 6 (versions 1-2) and 6.2 item 1 (version 3)."""

    def __init__(self, data: bytes, version: int):
        self.data, self.pos, self.legacy = data, 0, version < 3
        self.range = 0xFFFFFFFF
        if self._byte() != 0:
            raise Corrupt("first byte")
        self.code = 0
        for _ in range(4):
            self.code = (self.code << 8) | self._byte()

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise Corrupt("read past the piece")
        self.pos += 1
        return self.data[self.pos - 1]

    def _normalise(self):
        while self.range < 1 << 24:
            self.range = (self.range << 8) & 0xFFFFFFFF
            self.code = ((self.code << 8) | self._byte()) & 0xFFFFFFFF

    def bit(self, context: list) -> int:
        """context = [p, k]: probability of a 0 and (version 3) the rate."""
        bits = 12 if self.legacy else 16
        bound = (self.range >> bits) * context[0]
        shift = 5 if self.legacy else context[1]
        if self.code < bound:
            self.range = bound
            context[0] += ((1 << bits) - context[0]) >> shift
            bit = 0
        else:
            self.code -= bound
            self.range -= bound
            context[0] -= context[0] >> shift
            bit = 1
        if not self.legacy and context[1] < 6:
            context[1] += 1
        self._normalise()
        return bit

    def raw(self, n: int) -> int:
        value = 0
        for _ in range(n):
            self.range >>= 1
            bit = int(self.code >= self.range)
            if bit:
                self.code -= self.range
            value = (value << 1) | bit
            self._normalise()
        return value


# Section 6.3: version 4's first exponent probabilities, for d = -11..11.
EXPONENT_PRIOR = [1024, 1179, 1743, 2567, 3757, 5451, 7812, 11009, 15170, 20318, 26300, 32768,
                  39236, 45218, 50366, 54527, 57724, 60085, 61779, 62969, 63793, 64357, 64512]


# Section 6.4: version 5's first run probabilities (run: by prev = 0, 1).
RUN_PRIORS = {"run": (40000, 63000), "run_first": 40000, "band_runs": 30000}


class Model(dict):
    """Every probability of a piece (version 4: of the stream), created at its
    initial value on first use."""

    def __init__(self, version: int):
        super().__init__()
        self.version = version
        self.start = 2048 if version < 3 else 32768

    def __missing__(self, key):
        if self.version >= 4 and key[0] == "exponent":
            _, _, c, i = key
            d = max(-11, min(11, 2 * i - c + 6))
            value = self[key] = [EXPONENT_PRIOR[d + 11], 3]
        elif self.version >= 5 and key[0] in RUN_PRIORS:   # section 6.4
            first = RUN_PRIORS[key[0]]
            value = self[key] = [first[key[2]] if key[0] == "run" else first, 3]
        else:
            value = self[key] = [self.start, 1]
        return value

    def next_piece(self):
        """Section 6.3: the rates of a new piece (version 4)."""
        for context in self.values():
            context[1] = min(context[1], 3)


def magnitude_context(s: int) -> int:
    if s == 0:
        return 0
    b = s.bit_length() - 1
    h = (s >> (b - 1)) & 1 if b else 0
    return min(31, 2 * b + h + 1)


def sign_class(v: int) -> int:
    return 0 if v < 0 else (2 if v > 0 else 1)


def decode_value(rc, model, version, cls, c, sign_ctx, max_exp, first=0) -> int:
    """Steps 2-4 of section 6, with 6.2 items 3-4 in version 3; the unary
    exponent from decision `first` (6.4: 1 for a broken run's first non-zero)."""
    e = first
    if e > max_exp:
        raise Corrupt("exponent")
    while rc.bit(model["exponent", cls, c, min(e, 23)]):
        e += 1
        if e > max_exp:
            raise Corrupt("exponent")
    if e == 0:
        return 0
    m = 1 << (e - 1)
    if e >= 2 and version < 3:
        m |= rc.bit(model["mantissa", cls, e]) << (e - 2)
        m |= rc.raw(e - 2)
    elif e >= 2:
        octave = (c >> 1) - e - 2
        first = rc.bit(model["mantissa", cls, e, 0 if octave < 0 else (1 if octave == 0 else 2)])
        m |= first << (e - 2)
        if e >= 3:
            m |= rc.bit(model["mantissa2", cls, e, first]) << (e - 3)
            m |= rc.raw(e - 3)
    return -m if rc.bit(model["sign", cls, sign_ctx]) else m


def decode(buf: bytes, level: int = 0, layer: int | None = None, stats: dict | None = None) -> np.ndarray:
    """stats, if given, counts the version-5 paths taken: bands with and
    without zero runs, runs, and broken runs (for tests of coverage)."""
    out = decode_samples(buf, level, layer, stats)
    h = parse_header(buf)
    if h["fill_extent"] is not None:   # section 7: the padding is the fill sample
        for a, extent in enumerate(h["fill_extent"]):
            start = ceil_shift(extent, level) if a in h["axes"] else extent
            out[(slice(None),) * a + (slice(start, None),)] = h["fill_value"]
    if h["mask_length"]:               # and the nodata samples (section 6.5)
        box = tuple(slice(0, n) for n in box_at(h, level))
        out[box][nodata_mask(buf, h, level)] = h["fill_value"]
    return out


def box_at(h: dict, level: int) -> list:
    """Section 6.5: the data's box at a level."""
    return [ceil_shift(e, level) if a in h["axes"] else e for a, e in enumerate(h["fill_extent"])]


class Runs:
    """Section 6.5: the mask's bits, as runs."""

    def __init__(self, rc: "RangeDecoder"):
        self.rc, self.kind, self.left, self.started = rc, 0, 0, False
        self.previous = [0, 0]
        self.contexts = {}

    def _context(self, key) -> list:
        return self.contexts.setdefault(key, [32768, 1])

    def bit(self) -> int:
        while self.left == 0:
            if self.started:
                self.kind ^= 1
            history = min(15, self.previous[self.kind])
            b = 0
            while b < 56 and self.rc.bit(self._context(("unary", self.kind, history, b))):
                b += 1
            if b >= 56:
                raise Corrupt("mask run")
            v = 1
            if b:
                v = 2 | self.rc.bit(self._context(("first", self.kind, b)))
                v = (v << (b - 1)) | self.rc.raw(b - 1)
            self.previous[self.kind] = b
            self.left = v - (0 if self.started else 1)
            self.started = True
        self.left -= 1
        return self.kind


def nodata_mask(buf: bytes, h: dict, level: int) -> np.ndarray:
    """Section 6.5: the nodata cells of the data's box at ``level``."""
    start = h["header_length"]
    runs = Runs(RangeDecoder(buf[start:start + h["mask_length"]], h["version"]))
    top = box_at(h, h["levels"])
    cells = np.array([runs.bit() for _ in range(int(np.prod(top)))], bool).reshape(top)
    for lev in range(h["levels"] - 1, level - 1, -1):
        finer = np.ones(box_at(h, lev), bool)
        for index in np.ndindex(*finer.shape):
            parent = tuple(i >> 1 if a in h["axes"] else i for a, i in enumerate(index))
            if not cells[parent]:
                finer[index] = runs.bit()
        cells = finer
    return cells


def decode_samples(buf: bytes, level: int = 0, layer: int | None = None,
                   stats: dict | None = None) -> np.ndarray:
    """decode() before the padding's fill (section 7)."""
    stats = {} if stats is None else stats
    h = parse_header(buf)
    version, layers, naxes = h["version"], h["layers"], h["naxes"]
    levels = h["levels"] - level
    last_layer = layers - 1 if layer is None else layer
    last = [layers - 1] * levels + [last_layer]          # coarser segments: every layer

    # section 2: planes x components x box
    shape = list(h["shape"])
    for a in h["axes"]:
        shape[a] = ceil_shift(shape[a], level)
    plane_axes = [a for a in range(h["ndim"]) if a not in h["axes"] and a != h["colour_axis"]]
    perm = plane_axes + ([h["colour_axis"]] if h["colour_axis"] is not None else []) + h["axes"]
    planes = int(np.prod([shape[a] for a in plane_axes])) if plane_axes else 1
    ncomp = 3 if h["colour_axis"] is not None else 1
    dims = [1, 1, 1]
    for i, a in enumerate(h["axes"]):
        dims[3 - naxes + i] = shape[a]
    box = dims[0] * dims[1] * dims[2]
    dtype = DTYPES[h["dtype"]]
    if planes * ncomp * box == 0:
        return np.zeros(shape, dtype)
    first_axis = 3 - naxes
    max_exp = {0: DTYPE_BITS[h["dtype"]] + 10, 4: DTYPE_BITS[h["dtype"]] + 10, 1: 60}.get(h["wavelet"], 52)
    low_bound = 1 << max_exp
    comps = [[0] * box for _ in range(planes * ncomp)]

    def at(z, y, x):
        return (z * dims[1] + y) * dims[2] + x

    def orientation_band(made_by, o):
        """Section 5: (start, extent, class) of orientation o at a level, or None if empty."""
        start, extent, cls = [], [], 0
        for a in range(3):
            e = ceil_shift(dims[a], made_by - 1)
            low = (e + 1) // 2
            high = a >= first_axis and (o >> (a - first_axis)) & 1
            start.append(low if high else 0)
            extent.append(e - low if high else low)
            cls += 1 if high else 0
        return None if min(extent) == 0 else (start, extent, cls)

    def segment_bands(r):
        """(start, extent, class, step index, parent or None) per band of segment r."""
        if r == 0:
            return [([0, 0, 0], [ceil_shift(dims[a], levels) for a in range(3)], 0, 0, None)]
        bands, made_by = [], levels - r + 1
        for o in range(1, 1 << naxes):
            band = orientation_band(made_by, o)
            if band is not None:
                parent = orientation_band(made_by + 1, o) if version >= 3 and r >= 2 else None
                bands.append((*band, 1 + (r - 1) * ((1 << naxes) - 1) + (o - 1), parent))
        return bands

    def code_band(rc, model, c, band, shift, values=None, refine_bits=0, low_layer0=False):
        """Layer 0 of a band (section 6; into `values`, flat over the band, for
        the low band's residuals) or, with refine_bits, a refinement (6.1)."""
        start, extent, cls, _, parent = band
        comp = comps[c]
        colour = comps[c - 1] if version >= 3 and c % ncomp and not low_layer0 else None

        def get(z, y, x):
            if values is not None:
                return values[(z * extent[1] + y) * extent[2] + x]
            return comp[at(start[0] + z, start[1] + y, start[2] + x)]

        def put(z, y, x, v):
            if values is not None:
                values[(z * extent[1] + y) * extent[2] + x] = v
            else:
                comp[at(start[0] + z, start[1] + y, start[2] + x)] = v

        def neighbour(z, y, x):
            inside = 0 <= z < extent[0] and 0 <= y < extent[1] and 0 <= x < extent[2]
            return get(z, y, x) if inside else 0

        def parent_magnitude(pz, py, px):
            pstart, pextent, _ = parent
            py, px = min(py, pextent[1] - 1), min(px, pextent[2] - 1)
            return abs(comp[at(pstart[0] + pz, pstart[1] + py, pstart[2] + px)]) >> shift

        def contexts(z, y, x):
            """Step 1 of section 6 with 6.2 item 2 and 6.3 item 3: (s, sign context)."""
            w, n = neighbour(z, y, x - 1), neighbour(z, y - 1, x)
            s = (2 * abs(w) + 2 * abs(n) + abs(neighbour(z, y - 1, x - 1))
                 + abs(neighbour(z, y - 1, x + 1)) + 2 * abs(neighbour(z - 1, y, x)))
            if parent is not None:     # section 6.2, item 2
                q = [min((v >> 1) if a >= first_axis else v, parent[1][a] - 1)
                     for a, v in enumerate((z, y, x))]
                term = parent_magnitude(*q) + (parent_magnitude(q[0], q[1], q[2] + 1)
                                               + parent_magnitude(q[0], q[1] + 1, q[2])) // 2
                s += min(term, 65535)
            if colour is not None:
                s += abs(colour[at(start[0] + z, start[1] + y, start[2] + x)])
            sign_ctx = 3 * sign_class(w) + sign_class(n)
            if version >= 4:           # section 6.3, item 3
                sign_ctx += 9 * (1 if colour is None else sign_class(
                    colour[at(start[0] + z, start[1] + y, start[2] + x)]))
            return s, sign_ctx

        limit = refine_bits if refine_bits else max_exp - shift
        runs = (version >= 5 and not refine_bits and extent[2] >= 16
                and rc.bit(model["band_runs", cls]))   # 6.4, item 1
        if version >= 5 and not refine_bits and extent[2] >= 16:
            key = "run_bands" if runs else "plain_bands"
            stats[key] = stats.get(key, 0) + 1
        for z in range(extent[0]):
            for y in range(extent[1]):
                prev_run, x = 1, 0
                while x < extent[2]:
                    if runs and x % 4 == 0 and x + 4 <= extent[2] and all(
                            contexts(z, y, x + k)[0] == 0 for k in range(4)):   # 6.4, item 2
                        broken = rc.bit(model["run", cls, prev_run])
                        prev_run = 1 - broken
                        stats["broken" if broken else "runs"] = stats.get("broken" if broken else "runs", 0) + 1
                        found = False
                        for k in range(4):
                            v = 0
                            if broken:
                                s, sign_ctx = contexts(z, y, x + k)
                                if found:
                                    v = decode_value(rc, model, version, cls, magnitude_context(s),
                                                     sign_ctx, limit)
                                elif k == 3 or rc.bit(model["run_first", cls, k]):
                                    v = decode_value(rc, model, version, cls, magnitude_context(s),
                                                     sign_ctx, limit, first=1)
                                    found = True
                            put(z, y, x + k, v)
                        x += 4
                        continue
                    u = get(z, y, x) if refine_bits else 0
                    if u:
                        bits = rc.bit(model["refine", cls, min(abs(u).bit_length(), 15)])
                        bits = (bits << (refine_bits - 1)) | rc.raw(refine_bits - 1)
                        m = (abs(u) << refine_bits) | bits
                        put(z, y, x, -m if u < 0 else m)
                    else:
                        s, sign_ctx = contexts(z, y, x)
                        put(z, y, x, decode_value(rc, model, version, cls, magnitude_context(s),
                                                  sign_ctx, limit))
                    x += 1

    def median_edge(comp, z, y, x):
        """Section 5, low band prediction."""
        if x and y:
            w, n, nw = comp[at(z, y, x - 1)], comp[at(z, y - 1, x)], comp[at(z, y - 1, x - 1)]
            if nw >= max(w, n):
                return min(w, n)
            if nw <= min(w, n):
                return max(w, n)
            return w + n - nw
        if x:
            return comp[at(z, y, x - 1)]
        if y:
            return comp[at(z, y - 1, x)]
        return comp[at(z - 1, 0, 0)] if z else 0

    for r in range(levels + 1):
        bands = segment_bands(r)
        for j in range(last[r] + 1):
            i = r * layers + j
            begin = h["piece_ends"][i - 1] if i else h["header_length"] + h["mask_length"]
            rc = RangeDecoder(buf[begin:h["piece_ends"][i]], version)
            if i == 0 or version < 4:
                model = Model(version)
            else:
                model.next_piece()
            for c in range(planes * ncomp):
                for band in bands:
                    shift = h["shifts"][j][band[3]]
                    before = h["shifts"][j - 1][band[3]] if j else 0
                    if j and before == shift:
                        continue
                    if j:
                        code_band(rc, model, c, band, shift, refine_bits=before - shift)
                    elif r == 0:
                        extent = band[1]
                        residuals = [0] * (extent[0] * extent[1] * extent[2])
                        code_band(rc, model, c, band, shift, values=residuals, low_layer0=True)
                        bound, k = low_bound >> shift, 0
                        for z in range(extent[0]):
                            for y in range(extent[1]):
                                for x in range(extent[2]):
                                    v = residuals[k] + median_edge(comps[c], z, y, x)
                                    comps[c][at(z, y, x)] = max(-bound, min(bound, v))
                                    k += 1
                    else:
                        code_band(rc, model, c, band, shift)
            if rc.pos != len(rc.data):
                raise Corrupt("unread bytes in a piece")

    if h["wavelet"] == 1:             # the lossy path: sections 5, 6.1, 4, 3 and 7
        bands = [(band, r) for r in range(levels + 1) for band in segment_bands(r)]
        return finish_97(h, comps, bands, dims, planes, ncomp, shape, perm, dtype,
                         last_layer, levels)

    if last_layer < layers - 1:       # section 6.1, reconstruction of a partial segment
        for start, extent, _, index, _ in segment_bands(levels):
            s = h["shifts"][last_layer][index]
            for comp in comps if s else []:
                for z in range(extent[0]):
                    for y in range(extent[1]):
                        for x in range(extent[2]):
                            u = comp[at(start[0] + z, start[1] + y, start[2] + x)]
                            m = (abs(u) << s) + (((1 << s) - 1) >> 1)
                            comp[at(start[0] + z, start[1] + y, start[2] + x)] = (
                                0 if u == 0 else (-m if u < 0 else m))

    rounded = 1 if h["wavelet"] in (3, 4) else 0   # the rounded 5/3 (section 4)
    for comp in comps:                # section 4: inverse 5/3 or 9/7-M, x then y then z per level
        for made_by in range(levels, 0, -1):
            m97 = h["m97_levels"] >> (made_by + level - 1) & 1   # bit l - 1 of level l
            extent = [ceil_shift(dims[a], made_by - 1) for a in range(3)]
            for axis in (2, 1, 0):
                n = extent[axis]
                if n < 2:
                    continue
                others = [a for a in range(3) if a != axis]
                for i0 in range(extent[others[0]]):
                    for i1 in range(extent[others[1]]):
                        pos = [0, 0, 0]
                        pos[others[0]], pos[others[1]] = i0, i1
                        line = []
                        for t in range(n):
                            pos[axis] = t
                            line.append(at(*pos))
                        ns, nd = (n + 1) // 2, n // 2
                        low, high = [comp[q] for q in line[:ns]], [comp[q] for q in line[ns:]]
                        out = [0] * n
                        for k in range(ns):
                            left = high[k - 1] if k >= 1 else high[0]
                            right = high[k] if k < nd else high[k - 1]
                            out[2 * k] = low[k] - ((left + right + 2) >> 2)
                        def sample(t):    # whole-sample symmetric extension, repeated
                            t %= 2 * (n - 1)
                            return out[t if t < n else 2 * (n - 1) - t]
                        for k in range(nd):
                            t = 2 * k + 1
                            if m97:
                                p = (9 * (sample(t - 1) + sample(t + 1))
                                     - (sample(t - 3) + sample(t + 3)) + 8) >> 4
                            else:             # wavelets 3 and 4 round the 5/3's predict
                                p = (sample(t - 1) + sample(t + 1) + rounded) >> 1
                            out[t] = high[k] + p
                        for q, v in zip(line, out):
                            comp[q] = v

    if h["colour"] == 1:              # section 3: inverse RCT
        for p in range(planes):
            y_, cb, cr = comps[3 * p], comps[3 * p + 1], comps[3 * p + 2]
            for q in range(box):
                g = y_[q] - ((cb[q] + cr[q]) >> 2)
                y_[q], cb[q], cr[q] = cr[q] + g, g, cb[q] + g

    flat = [v for comp in comps for v in comp]
    if h["wavelet"] in (2, 3):        # samples were multiples of `scale`
        values = np.array(flat, dtype=np.float64) * h["scale"]
        if np.issubdtype(dtype, np.floating):
            top = np.finfo(dtype).max
            values = np.clip(values, -top, top).astype(dtype)
        else:
            info = np.iinfo(dtype)
            values = np.clip(np.floor(values + 0.5), info.min, info.max).astype(dtype)
    else:
        info = np.iinfo(dtype)
        # section 2: each value opens the gaps it is above (v compared as decoded)
        flat = [v + sum(length for after, length in h["gaps"] if v > after) for v in flat]
        values = np.clip(np.array(flat, dtype=object), info.min, info.max).astype(dtype)
    work = values.reshape([shape[a] for a in perm])
    return np.ascontiguousarray(np.transpose(work, np.argsort(perm)))


# ---------------------------------------------------------------- wavelet 1

# Section 4: the irreversible 9/7 lifting constants.
ALPHA, BETA = -1.586134342059924, -0.052980118572961
GAMMA, DELTA = 0.882911075530934, 0.443506852043971
K = 1.230174104914001


def float32_reconstruction(h, dtype) -> bool:
    """Section 4: version 8 reconstructs lossy 8- and 16-bit integer samples
    in float32 (every other lossy stream in float64)."""
    dtype = np.dtype(dtype)
    return h["version"] >= 8 and dtype.kind in "iu" and dtype.itemsize <= 2


def dequantise(q: np.ndarray, shift: int, step: float, real=np.float64) -> np.ndarray:
    """Sections 5 and 6.1: 0 stays 0, else sign(u) * (|u| + 0.5) * 2**s * step,
    in `real` (float32: the factor 2**s * step at most float32's largest)."""
    factor = float(2 ** shift) * step
    if real is np.float32:
        factor = min(factor, float(np.finfo(np.float32).max))
    with np.errstate(over="ignore"):
        magnitude = (np.abs(q).astype(real) + real(0.5)) * real(factor)
    return np.where(q == 0, real(0.0), np.where(q < 0, -magnitude, magnitude))


def inverse_97_lines(lines: np.ndarray) -> np.ndarray:
    """Section 4: inverse 9/7 of every line (last axis, Mallat order, n >= 2),
    in the lines' float type: the constants rounded to it."""
    real = lines.dtype.type
    n = lines.shape[-1]
    ns, nd = (n + 1) // 2, n // 2
    s = lines[..., :ns] * real(K)
    d = lines[..., ns:] * real(2 / K)

    def from_d(d):       # (d_left + d_right) around each s[i]: d[-1] = d[0], d[nd] = d[nd - 1]
        left = np.concatenate([d[..., :1], d[..., :ns - 1]], axis=-1)
        right = d[..., :ns] if nd == ns else np.concatenate([d, d[..., nd - 1:]], axis=-1)
        return left + right

    def from_s(s):       # (s_left + s_right) around each d[i]: s[ns] = s[ns - 1]
        right = s[..., 1:nd + 1] if ns > nd else np.concatenate([s[..., 1:], s[..., ns - 1:]], axis=-1)
        return s[..., :nd] + right

    s = s - real(DELTA) * from_d(d)
    d = d - real(GAMMA) * from_s(s)
    s = s - real(BETA) * from_d(d)
    d = d - real(ALPHA) * from_s(s)
    out = np.empty_like(lines)
    out[..., 0::2], out[..., 1::2] = s, d
    return out


def finish_97(h, comps, bands, dims, planes, ncomp, shape, perm, dtype, last_layer, levels):
    """Dequantise (5, 6.1), undo the 9/7 levels (4), the ICT (3) and store (7),
    in float64, or float32 (float32_reconstruction)."""
    real = np.float32 if float32_reconstruction(h, dtype) else np.float64
    work = np.array(comps, dtype=np.int64).reshape(planes * ncomp, *dims)
    coeffs = np.zeros(work.shape, dtype=real)
    for (start, extent, _, index, _), r in bands:
        shift = h["shifts"][last_layer][index] if r == levels else 0
        region = (slice(None),) + tuple(slice(a, a + e) for a, e in zip(start, extent))
        coeffs[region] = dequantise(work[region], shift, h["steps"][index], real)

    bound = real(1e300 if np.issubdtype(dtype, np.floating) else 1e12)
    for made_by in range(levels, 0, -1):          # x, then y, then z
        extent = [ceil_shift(dims[a], made_by - 1) for a in range(3)]
        corner = coeffs[:, :extent[0], :extent[1], :extent[2]]
        for axis in (3, 2, 1):
            if corner.shape[axis] < 2:
                continue
            lines = np.moveaxis(corner, axis, -1)
            with np.errstate(over="ignore", invalid="ignore"):   # forged steps: inf, then NaN
                lines = inverse_97_lines(lines)
            lines = np.where(np.isnan(lines), -bound, np.clip(lines, -bound, bound))
            corner[...] = np.moveaxis(lines, -1, axis)

    if h["colour"] == 2:                          # section 3: inverse ICT, in float64
        y, cb, cr = (coeffs.reshape(planes, 3, -1)[:, i].astype(np.float64) for i in range(3))
        with np.errstate(invalid="ignore"):       # (forged steps: inf - inf)
            rgb = np.stack([y + 1.402 * cr, y - 0.34413 * cb - 0.71414 * cr, y + 1.772 * cb], axis=1)
        with np.errstate(over="ignore"):          # (float32: beyond its range, infinite)
            coeffs = rgb.reshape(coeffs.shape).astype(real)

    values = coeffs.reshape(-1).astype(np.float64)
    if np.issubdtype(dtype, np.floating):         # section 7
        top = float(np.finfo(dtype).max)
        values = np.clip(values, -top, top).astype(dtype)
    else:                                         # (NaN, from forged steps: the lowest)
        info = np.iinfo(dtype)
        values = np.where(np.isnan(values), info.min,
                          np.clip(np.floor(values + 0.5), info.min, info.max)).astype(dtype)
    work = values.reshape([shape[a] for a in perm])
    return np.ascontiguousarray(np.transpose(work, np.argsort(perm)))
