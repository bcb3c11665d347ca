"""JPEG 2000 files as other software writes them (ISO/IEC 15444-1): the JP2
boxes that carry a pixel size, and the image size a codestream declares.
export writes them; convert reads them.  The pixels themselves are coded
and decoded by OpenJPEG (imagecodecs)."""
from __future__ import annotations

import math
import struct
from fractions import Fraction

#: The JP2 signature box, first in every .jp2 (annex I.5.1)
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
#: A codestream's first marker, SOC, and the image and tile size marker
#: that follows it, SIZ (annex A.5.1)
SOC, SIZ = b"\xff\x4f", b"\xff\x51"
#: The markers that start a tile-part and end the codestream (annex A.4)
SOT, EOC = b"\xff\x90", b"\xff\xd9"
#: The fewest bytes of a tile-part: its SOT marker segment and SOD
SMALLEST_TILE_PART = 14
#: JP2 box types (annex I): the header, its resolution box and the capture
#: resolution inside that, and the contiguous codestream
JP2_HEADER, JP2_RESOLUTION, JP2_CAPTURE_RESOLUTION = b"jp2h", b"res ", b"resc"
JP2_CODESTREAM = b"jp2c"
#: A JP2 resolution is N / D * 10**E grid points per metre, N and D 16-bit
RESOLUTION_FIELD = 0xFFFF


def box(kind: bytes, content: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(content), kind) + content


def boxes(data: bytes, start: int = 0, end: int | None = None):
    """(type, box start, content start, box end) of each box in data[start:end],
    as annex I.4 lays them out (a 64-bit length where the 32-bit one is 1,
    to the end where it is 0); ValueError where a box runs past the end or
    is shorter than its own header."""
    end = len(data) if end is None else end
    while start < end:
        if end - start < 8:
            raise ValueError(f"a JP2 box header is cut short at byte {start}")
        length, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if length == 1:
            if end - start < 16:
                raise ValueError(f"a JP2 box header is cut short at byte {start}")
            length, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif length == 0:
            length = end - start
        if not header <= length <= end - start:
            raise ValueError(f"the JP2 box {kind!r} at byte {start} claims {length} bytes, "
                             f"{end - start} remain (truncated or damaged)")
        yield kind, start, start + header, start + length
        start += length


def find_box(data: bytes, kind: bytes, start: int = 0, end: int | None = None):
    """(content start, content end) of the first box `kind` in data[start:end], or None."""
    for found, _, first, last in boxes(data, start, end):
        if found == kind:
            return first, last
    return None


def codestream(data: bytes) -> bytes:
    """The codestream of a .jp2 file (its contiguous codestream box), or of
    a raw codestream (.j2k, .j2c) as given; ValueError for anything else."""
    if data.startswith(SOC):
        return data
    if not data.startswith(JP2_SIGNATURE):
        raise ValueError("not JPEG 2000: neither a JP2 file (signature box) nor a codestream "
                         "(SOC marker)")
    found = find_box(data, JP2_CODESTREAM)
    if found is None:
        raise ValueError("the JP2 file holds no codestream box (truncated?)")
    return data[found[0]:found[1]]


def declared_size(data: bytes) -> tuple:
    """(rows, columns, components, bytes per sample of the widest) that a
    codestream's SIZ marker declares: what its decode will hold."""
    stream = codestream(data)
    if len(stream) < 4 + 40 or stream[2:4] != SIZ:
        raise ValueError("the codestream's image size marker (SIZ) is missing or cut short")
    x, y, x0, y0 = struct.unpack_from(">IIII", stream, 8)
    components = struct.unpack_from(">H", stream, 40)[0]
    if len(stream) < 42 + 3 * components or components == 0 or x <= x0 or y <= y0:
        raise ValueError("the codestream's image size marker (SIZ) is damaged")
    bits = max((stream[42 + 3 * c] & 0x7F) + 1 for c in range(components))
    return y - y0, x - x0, components, 1 if bits <= 8 else 2 if bits <= 16 else 4


def check_tile_parts(data: bytes) -> None:
    """ValueError where a codestream lacks a tile its SIZ marker declares,
    or a part of one (annex A.4.2: each tile-part's SOT gives its tile, its
    length, its index within the tile and, where known, how many parts its
    tile has): OpenJPEG decodes a missing tile as zeros, a missing part at
    a lower quality, without a word (a file cut at a tile's end, a lost
    tile-part, a damaged image size).  A tile's last part, lost where its
    count is not given (TNsot 0), cannot be seen."""
    stream = codestream(data)
    columns, rows, x0, y0, tile_columns, tile_rows, tile_x0, tile_y0 = \
        struct.unpack_from(">8I", stream, 8)   # (declared_size has checked SIZ's length)
    if not (tile_columns and tile_rows and tile_x0 <= x0 and tile_y0 <= y0):
        raise ValueError("the codestream's image size marker (SIZ) is damaged: its tiles")
    tiles = -(-(columns - tile_x0) // tile_columns) * -(-(rows - tile_y0) // tile_rows)
    if tiles * SMALLEST_TILE_PART > len(stream):
        raise ValueError(f"the codestream declares {tiles} tiles, more than its "
                         f"{len(stream)} bytes can hold (damaged, or truncated)")
    at = 2   # the main header's marker segments, each with its length, up to the first SOT
    while stream[at:at + 2] != SOT:
        if at + 4 > len(stream) or stream[at] != 0xFF or \
                struct.unpack_from(">H", stream, at + 2)[0] < 2:
            raise ValueError("the codestream's main header is damaged or holds no tile")
        at += 2 + struct.unpack_from(">H", stream, at + 2)[0]
    parts, promised = {}, {}
    # (to EOC, or to the end: a box that cuts EOC's last byte leaves the data whole)
    while len(stream) - at >= 2 and stream[at:at + 2] != EOC:
        if stream[at:at + 2] != SOT or at + 12 > len(stream):
            raise ValueError(f"no tile-part starts where the one before ends (byte {at}): "
                             f"the codestream is damaged")
        tile, length, index, count = struct.unpack_from(">HIBB", stream, at + 4)
        end = len(stream) if length == 0 else at + length   # (0: the last, to EOC)
        if tile >= tiles or length and length < SMALLEST_TILE_PART or end > len(stream):
            raise ValueError(f"the tile-part at byte {at} is damaged or cut short")
        if index != parts.get(tile, 0):   # (a part lost before it: parts count from 0)
            raise ValueError(f"the tile-part at byte {at} is part {index} of tile {tile}, "
                             f"which has {parts.get(tile, 0)} before it: the codestream lacks "
                             f"a part (truncated or damaged)")
        parts[tile] = parts.get(tile, 0) + 1
        if count:
            promised[tile] = count
        at = end
    missing = tiles - len(parts)
    short = [tile for tile, count in promised.items() if parts[tile] < count]
    if missing or short:
        lacks = f"{missing} of its {tiles} tiles" if missing else \
            f"parts of {len(short)} of its {tiles} tiles"
        raise ValueError(f"the codestream lacks {lacks} (truncated or damaged): OpenJPEG "
                         f"would decode them as zeros")


def resolution_fields(per_metre: float) -> tuple | None:
    """(N, D, E) of a JP2 resolution of ``per_metre`` samples per metre,
    E >= 0 (Pillow reads E unsigned), or None where none holds it (a
    sample over 65 km)."""
    if not (math.isfinite(per_metre) and per_metre * RESOLUTION_FIELD >= 1):
        return None
    smallest = max(0, math.ceil(math.log10(per_metre / RESOLUTION_FIELD)))
    best = None
    # the closest fraction whose numerator and denominator both fit, over a
    # few exponents: the smallest leaves the numerator no room for a
    # denominator (0.3 micrometres: 33333 / 1 * 10**2, but 10000 / 3 * 10**3)
    for exponent in range(smallest, min(smallest + 5, 128)):
        scaled = per_metre / 10.0**exponent
        fraction = Fraction(scaled).limit_denominator(
            max(1, min(RESOLUTION_FIELD, int(RESOLUTION_FIELD / scaled))))
        if not 0 < fraction.numerator <= RESOLUTION_FIELD:
            continue
        error = abs(float(fraction) * 10.0**exponent / per_metre - 1)
        if best is None or error < best[0]:
            best = (error, fraction.numerator, fraction.denominator, exponent)
    return None if best is None else best[1:]


def with_capture_resolution(data: bytes, sizes: tuple) -> bytes:
    """A .jp2 file ``data`` with the pixel size (rows, columns, in metres)
    in a capture resolution box at the end of its header box (as Pillow and
    GDAL read it); as given where a size has no JP2 resolution."""
    if not all(math.isfinite(size) and size > 0 for size in sizes):   # (a scale of 0, say)
        return data
    fields = [resolution_fields(1 / size) for size in sizes]
    if None in fields:
        return data
    (rows_n, rows_d, rows_e), (columns_n, columns_d, columns_e) = fields
    capture = struct.pack(">HHHHbb", rows_n, rows_d, columns_n, columns_d, rows_e, columns_e)
    added = box(JP2_RESOLUTION, box(JP2_CAPTURE_RESOLUTION, capture))
    for kind, begin, first, last in boxes(data):
        if kind == JP2_HEADER:
            return data[:begin] + box(JP2_HEADER, data[first:last] + added) + data[last:]
    raise ValueError("the JPEG 2000 encoder wrote no JP2 header box")


def capture_pixel_size(data: bytes) -> tuple | None:
    """(rows, columns) pixel size in metres that a .jp2's capture
    resolution box gives, or None (no box, a raw codestream, or fields of
    zero)."""
    if not data.startswith(JP2_SIGNATURE):
        return None
    header = find_box(data, JP2_HEADER)
    resolution = header and find_box(data, JP2_RESOLUTION, *header)
    capture = resolution and find_box(data, JP2_CAPTURE_RESOLUTION, *resolution)
    if not capture or capture[1] - capture[0] != 10:
        return None
    rows_n, rows_d, columns_n, columns_d, rows_e, columns_e = struct.unpack_from(
        ">HHHHbb", data, capture[0])
    if 0 in (rows_n, rows_d, columns_n, columns_d):
        return None
    return (rows_d / rows_n * 10.0**-rows_e, columns_d / columns_n * 10.0**-columns_e)
