"""Genuine JPEG 2000 for the imaging world: a progressive array's levels
written as a pyramidal TIFF of JPEG 2000 tiles, or one level as a .jp2 or
.j2k codestream (OpenJPEG through imagecodecs; tifffile for the TIFF).

    progressive_j2k.export_jpeg2000("slide.zarr", "slide.tif")     # lossless pyramid
    progressive_j2k.export_jpeg2000(levels, "thumb.jp2", level=4, psnr=45)

The samples are decoded from this package's codestreams and coded again:
JPEG 2000's own codestream orders and markers differ from ours (FORMAT.md),
so a stored chunk cannot be rewrapped byte for byte.
"""
from __future__ import annotations

import math
import numbers
import operator
import os
import stat
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from progressive_j2k import _jp2, _metrics
from progressive_j2k._optional import local_if_file_url, require
from progressive_j2k._ome import LENGTH_IN_METRES, OME_LENGTH_UNITS, omero_channel
from progressive_j2k.errors import PSNRPeakWarning

#: The sample types JPEG 2000 (OpenJPEG) round-trips exactly
EXPORT_DTYPES = ("uint8", "int8", "uint16", "int16")
#: Output suffixes: a codestream with its JP2 boxes, or a bare codestream
CODESTREAM_FORMATS = {".jp2": "jp2", ".j2k": "j2k", ".j2c": "j2k"}
TIFF_SUFFIXES = (".tif", ".tiff")
#: The largest TIFF tile side taken (tifffile pads every tile to full size)
MAX_TILE = 4096
#: OME-NGFF length unit names (ome_level0's) as OME-XML writes them: the
#: reverse of _ome's table, each name's first symbol
OME_UNITS = {name: symbol for symbol, name in reversed(OME_LENGTH_UNITS.items())}
#: A lossy codestream is decoded and measured: one more than PSNR_SLACK dB
#: below the target is coded again aiming RETRY_STEP dB higher, up to
#: RETRIES times, then losslessly.  OpenJPEG's rate allocation can miss far:
#: mr2 (0..595 in uint16) at 45 dB came back a constant image at 38.8 dB,
#: above 1.8 dB low on the real 8-bit images and their 8x and 32x reductions.
PSNR_SLACK = 3.0
RETRY_STEP = 3.0
RETRIES = 3


def export_jpeg2000(source, path, *, level: int = 0, psnr: float | None = None,
                    tile: int = 512, at: dict | None = None) -> None:
    """Write `source` as JPEG 2000 to `path`.

    ``source``: the levels open_multiscale gives, anything open_multiscale
    opens (a progressive zarr array, its path or URL), or a numpy array (one
    level).  Each level must be an image of 8- or 16-bit integers: 2-D,
    or 3-D with 3 or 4 samples (RGB, RGBA) last (or first, where the
    array records that axis as its colour axis: moved last), once the axes
    in ``at`` are read at one index each and its axes of length 1 are
    left out while more than two remain besides the colour axis (an
    OME-Zarr's t, c and z of one plane, wherever they stand; an RGB image
    one sample wide keeps its width).  ``at``: {axis:
    index} (or (axis, index) pairs) for the plane of a stack (slices,
    frames, channels), an axis by number or by the array's dimension name
    (Level.to_xarray's), as level-0 indices, negative ones from the end (a
    coarser level reads its sample at or before it; Level.positions).  ``path`` ending in .tif or
    .tiff: a tiled TIFF of levels ``level``, ``level`` + 1, ... as its
    pyramid (the finest as the main image, the others as its SubIFDs, as
    OME-TIFF and Bio-Formats read them), each tile (``tile`` samples square)
    a JPEG 2000 codestream, read from the source one row of tiles at a time;
    a .ome.tif(f) records the pixel size a level view knows (Level.scale,
    with units) and the name of the channel it shows (the omero block's
    label), and every TIFF each level's pixel size in its resolution tags
    (per centimetre); .jp2, .j2k or .j2c: level ``level`` as one codestream
    (read whole), with JPEG 2000's own resolution levels (a .jp2 with the
    level's pixel size in a capture resolution box).  ``psnr`` None: lossless (the
    reversible 5/3: every sample exact); else OpenJPEG's quality target in
    dB (lossy 9/7, peak 2**bits - 1), per tile or image: approximate, but
    each is decoded and checked, and one more than PSNR_SLACK dB below it
    coded again (aiming higher, at last losslessly).  A single Level is
    exported with the coarser levels below it.  The file is written under
    a temporary name beside ``path`` (a symlink's target) and renamed when
    complete, with the permissions of a file it replaces: a failed export
    leaves ``path`` as it was."""
    imagecodecs = require("imagecodecs", "cli", "export_jpeg2000")
    path = local_if_file_url(path)
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in CODESTREAM_FORMATS and suffix not in TIFF_SUFFIXES:
        raise ValueError(f"export_jpeg2000 writes .tif/.tiff (a pyramid of JPEG 2000 tiles) or "
                         f".jp2/.j2k/.j2c (one codestream): got {os.fspath(path)!r}")
    if psnr is not None and (isinstance(psnr, bool) or not isinstance(psnr, numbers.Real)
                             or not (np.isfinite(psnr) and psnr > 0)):
        raise ValueError(f"psnr must be a positive number of dB or None (lossless), got {psnr!r}")
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or not (
            16 <= tile <= MAX_TILE and tile % 16 == 0):
        raise ValueError(f"tile must be a multiple of 16 (TIFF's rule) up to {MAX_TILE}, "
                         f"got {tile!r}")
    if isinstance(level, bool):
        raise TypeError(f"level must be an integer, got {level!r}")
    level = operator.index(level)
    levels = _levels(source)
    if not 0 <= level < len(levels):
        raise ValueError(f"level {level}: the source has levels 0 to {len(levels) - 1}")
    images = _images(levels, level, at)
    # (one codestream holds one level: the coarser ones need not be images)
    for k, image in enumerate(images[:1] if suffix in CODESTREAM_FORMATS else images, level):
        _check_image(image, k, images[0])
    target = None if psnr is None else float(psnr)
    narrow = []   # (whether a lossy image's values span little of its dtype's peak)

    def encode(image, codecformat, extent=None):
        """`image` coded (_checked_encode); a lossy codestream checked on
        its first `extent` rows and columns (None: all), the rest padding."""
        real = image if extent is None else image[:extent[0], :extent[1]]
        if target is not None and not narrow and _metrics.narrow_for_psnr(real, target):
            narrow.append(True)
        return _checked_encode(imagecodecs, image, target, codecformat, real.shape)

    # written beside the file it replaces (a symlink's target), then renamed
    final = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(final)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no directory {directory!r} to write {os.fspath(path)!r} in")
    partial = os.path.join(directory, f".pj2k-export-{uuid.uuid4().hex[:12]}.partial")
    try:
        if suffix in CODESTREAM_FORMATS:
            data = encode(np.ascontiguousarray(images[0][...]), CODESTREAM_FORMATS[suffix])
            if suffix == ".jp2":
                _say_unwritten_pixel_size(images[0])
                data = _with_capture_resolution(data, images[0])
            with open(partial, "wb") as f:
                f.write(data)
        else:
            _say_unwritten_pixel_size(images[0])
            ome = os.fspath(path).lower().endswith((".ome.tif", ".ome.tiff"))
            ome_fields = {**_pixel_size(images[0]), **_channel_name(images[0], levels[0])} \
                if ome else {}
            _write_tiff(images, partial, int(tile), None if target is None else encode,
                        ome, ome_fields)
        with open(partial, "rb+") as f:   # (on disk before it takes the old file's place)
            os.fsync(f.fileno())
        if os.path.exists(final):   # (the permissions of the file it replaces)
            os.chmod(partial, stat.S_IMODE(os.stat(final).st_mode))
        if narrow:   # (as encode() warns for its own psnr; before: an error leaves path as it was)
            warnings.warn(_metrics.narrow_psnr_message(target, images[0].dtype,
                                                    "or export losslessly"),
                          PSNRPeakWarning, stacklevel=2)
        os.replace(partial, final)
    except BaseException:
        if os.path.exists(partial):   # (a partial file is no export)
            os.unlink(partial)
        raise


def _checked_encode(imagecodecs, image, target, codecformat, checked: tuple) -> bytes:
    """`image` as a JPEG 2000 codestream: lossless (target None), or lossy
    at OpenJPEG's PSNR target, checked over its first `checked` samples
    (those not padding)."""
    if target is not None:
        region = tuple(slice(n) for n in checked)
        real = np.ascontiguousarray(image[region])
        for attempt in range(RETRIES + 1):
            data = imagecodecs.jpeg2k_encode(image, level=target + attempt * RETRY_STEP,
                                             codecformat=codecformat, reversible=False)
            decoded = np.ascontiguousarray(imagecodecs.jpeg2k_decode(data)[region])
            if _metrics.psnr(decoded, real) >= target - PSNR_SLACK:
                return data
    return imagecodecs.jpeg2k_encode(image, codecformat=codecformat, reversible=True)


def _pixel_size(image) -> dict:
    """OME-XML's physical pixel size of a level whose array records its
    physical axes with a unit OME_UNITS knows (Level.scale, .units); else {}."""
    units = getattr(image, "units", None)
    if not units or len(units) < 2 or any(OME_UNITS.get(u) is None for u in units[:2]):
        return {}
    (y, x), (y_unit, x_unit) = image.scale[:2], units[:2]
    return {"PhysicalSizeY": float(y), "PhysicalSizeYUnit": OME_UNITS[y_unit],
            "PhysicalSizeX": float(x), "PhysicalSizeXUnit": OME_UNITS[x_unit]}


def _channel_name(image, source) -> dict:
    """OME-XML's name of the channel a gray image shows: the label the
    source array's omero block gives it (the channel picked on the axis
    named c, or the only one); else {}."""
    reader = getattr(source, "_reader", None)   # (a Level's array)
    if reader is None or len(image.shape) != 2:
        return {}
    attributes = dict(getattr(reader.metadata, "attributes", None) or {})
    # (the picks as the exported level's indices, against its shape)
    level, chosen = (image.level, image.chosen) if isinstance(image, _Plane) else (image, {})
    channel = omero_channel(attributes, axis_names(source), tuple(level.shape), chosen)
    label = channel.get("label") if channel is not None else None
    return {"Channel": {"Name": [label]}} if isinstance(label, str) and label else {}


def _plane_units(image) -> tuple:
    """The units a level records for its rows and columns (Level.units), or
    (None, None)."""
    units = getattr(image, "units", None)
    return tuple(units[:2]) if units and len(units) >= 2 else (None, None)


def _say_unwritten_pixel_size(image) -> None:
    """A warning where a level records physical axes whose rows' and
    columns' units are not both lengths TIFF can hold: its pixel size is
    then left out of the file (it was, without a word)."""
    units = _plane_units(image)
    if any(u is not None for u in units) and any(u not in LENGTH_IN_METRES for u in units):
        warnings.warn(f"the pixel size is not written: the rows' and columns' units, "
                      f"{units[0]!r} and {units[1]!r}, are not both lengths "
                      f"({', '.join(LENGTH_IN_METRES)})", stacklevel=3)


def _resolution(image) -> dict:
    """TIFF resolution tags, in pixels per centimetre, of a level whose array
    records its rows' and columns' physical size in a length unit
    (Level.scale, .units; as convert reads them back); else {}."""
    units = _plane_units(image)
    if any(u not in LENGTH_IN_METRES for u in units):
        return {}
    sizes = [float(v) * LENGTH_IN_METRES[u] * 100 for v, u in zip(image.scale[:2], units[:2])]
    # (pixels per cm as TIFF's rationals hold them: a pixel of 10 km down to 5 pm)
    if not all(math.isfinite(v) and 2.0**-31 < v < 1e6 for v in sizes):
        return {}
    return {"resolution": (1 / sizes[1], 1 / sizes[0]), "resolutionunit": "CENTIMETER"}


def _with_capture_resolution(data: bytes, image) -> bytes:
    """A .jp2 file ``data`` with the pixel size of a level that records it
    in length units (as _resolution, for TIFF) in a capture resolution box;
    else as given."""
    units = _plane_units(image)
    if any(u not in LENGTH_IN_METRES for u in units):
        return data
    sizes = tuple(float(v) * LENGTH_IN_METRES[u] for v, u in zip(image.scale[:2], units))
    return _jp2.with_capture_resolution(data, sizes)


def _write_tiff(pyramid: list, path, tile: int, encode, ome: bool, ome_fields: dict) -> None:
    """A tiled TIFF of `pyramid`: its first level the main image (an
    OME-TIFF's with `ome_fields`, pixel size and channel name, in its
    metadata), the others its SubIFDs;
    tiles no larger than a level needs.  encode None: lossless, by tifffile
    (in its threads); else each tile encode(tile, codecformat, extent), a
    row of tiles at a time in as many threads as tifffile would use."""
    tifffile = require("tifffile", "cli", "export_jpeg2000 to TIFF")
    with tifffile.TiffWriter(path, bigtiff=True, ome=ome) as tiff, \
            ThreadPoolExecutor(max(1, tifffile.TIFF.MAXWORKERS)) as pool:
        for k, image in enumerate(pyramid):
            side = min(tile, -(-max(image.shape[:2]) // 16) * 16)
            if encode is None:
                data, coding = _tiles(image, side), {"compressionargs": {"reversible": True}}
            else:
                data, coding = _coded_tiles(image, side, encode, pool), {}
            tiff.write(data, shape=image.shape, dtype=image.dtype,
                       tile=(side, side), photometric="rgb" if image.ndim == 3 else "minisblack",
                       compression="jpeg2000", **coding, **_resolution(image),
                       **({"subifds": len(pyramid) - 1, "metadata": {
                           "axes": "YXS" if image.ndim == 3 else "YX", **ome_fields}}
                          if k == 0 else {"subfiletype": 1}))


def _levels(source) -> list:
    """The source's levels: a list of them, one numpy array (or nested
    lists), a Level and the coarser ones, or open_multiscale's."""
    from progressive_j2k.multiscale import Level, levels_from, open_multiscale

    def array_like(s):
        return hasattr(s, "shape") and hasattr(s, "dtype")

    if isinstance(source, (list, tuple)):
        if any(map(array_like, source)):
            return [s if array_like(s) else np.asarray(s) for s in source]
        source = np.asarray(source)   # (nested lists: one image)
    if isinstance(source, np.ndarray):
        return [source]
    if isinstance(source, Level):
        return levels_from(source)
    return open_multiscale(source)


def _images(levels: list, finest: int, at) -> list:
    """Levels `finest`, finest + 1, ... as images (_Plane): the axes in `at`
    ({axis: level-0 index}) picked, then axes of length 1 left out beside
    more than two others, the colour axis aside (an OME-Zarr's t, c and z
    of one plane, wherever they stand) and the colour axis the array
    records, where it comes before the rows, moved last; all as the finest
    exported level's shape says, so that every level is read the same way.
    (An axis of 3 or 4 samples first is colour only where the array says
    so: three slices of a volume are no RGB image.)"""
    ndim = len(levels[finest].shape)
    reader = getattr(levels[0], "_reader", None)   # (a Level: its array's shape and options)
    full_shape = tuple(levels[0].shape if reader is None else reader.layout.shape)
    colour = None if reader is None else reader.layout.options["colour_axis"]
    picks = level0_picks(at, full_shape, axis_names=axis_names(levels[0]))
    shape = levels[finest].shape
    rest = [a for a in range(ndim) if a not in picks]
    # axes of length 1 left out while more than the image's rows and columns
    # remain besides its colour axis (the recorded one, or else a last axis
    # of 3 or 4 samples): an OME-Zarr's (t, c, z, y, x) keeps its z of one
    # plane between c and y, and an RGB image one sample wide keeps its width
    samples = colour if colour in rest else (
        rest[-1] if rest and colour is None and shape[rest[-1]] in (3, 4) else None)
    spatial = [a for a in rest if a != samples]
    dropped = []
    for a in list(spatial):
        if len(spatial) > 2 and shape[a] == 1:
            spatial.remove(a)
            dropped.append(a)
    rest = [a for a in rest if a not in dropped]
    if len(rest) == 3 and rest[0] == colour:
        rest = rest[1:] + rest[:1]   # channels first: last, as JPEG 2000 takes colour
    images = []
    for level in levels[finest:]:
        chosen = {a: _level_index(level, a, i, full_shape[a]) for a, i in picks.items()}
        chosen.update(dict.fromkeys(dropped, 0))
        images.append(level if not chosen and rest == list(range(ndim))
                      else _Plane(level, chosen, tuple(rest)))
    return images


def axis_names(source) -> tuple | None:
    """The dimension names of a zarr array or a Level's array (as
    Level.to_xarray names them), None for a plain array."""
    from progressive_j2k._xarray import _dimension_names
    reader = getattr(source, "_reader", None)
    metadata = reader.metadata if reader is not None else getattr(source, "metadata", None)
    if metadata is None:
        return None
    attributes = dict(getattr(metadata, "attributes", None) or {})
    return _dimension_names(metadata, attributes, len(source.shape))


def level0_picks(at, full_shape: tuple, name: str = "at", axis_names=None) -> dict:
    """`at` ({axis: index}, or (axis, index) pairs; None: none) checked
    against an array of `full_shape` (its level 0) as {axis: index}, the
    axes non-negative: an axis by number (negative from the last) or by
    its name in `axis_names`, an index negative from the end; `name` names
    `at` in errors."""
    ndim, picks = len(full_shape), {}
    for axis, index in (at.items() if hasattr(at, "items") else at or ()):
        if isinstance(axis, str):
            if axis not in (axis_names or ()):
                raise ValueError(f"{name}: no axis is named {axis!r} (" + (
                    f"the axes: {', '.join(axis_names)})" if axis_names else "the source "
                    "names none: give its number)"))
            axis = axis_names.index(axis)
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                   for v in (axis, index)):
            raise TypeError(f"{name}: axes (numbers or names) and indices are integers, got "
                            f"{axis!r}: {index!r}")
        a, i = int(axis), int(index)
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}: axis {a} is out of range for the source's {ndim} axes")
        a %= ndim
        if a in picks:
            raise ValueError(f"{name}: axis {a} is given twice")
        if not -full_shape[a] <= i < full_shape[a]:
            raise ValueError(f"{name}: axis {a} has indices 0 to {full_shape[a] - 1} (or "
                             f"{-full_shape[a]} to -1 from the end), got {i}")
        picks[a] = i % full_shape[a]
    return picks


def _level_index(level, axis: int, index: int, full: int) -> int:
    """The sample of `level` along `axis` at level-0 index `index` (or
    before it): by the level's positions where it knows them (a Level),
    else taking the level's samples 2**k apart, where its length is the
    level-0 length `full` divided by 2**k and rounded up (as one chunk's
    levels are), or else in proportion to that length."""
    positions = getattr(level, "positions", None)
    if positions is not None:
        return int(np.searchsorted(positions(axis), index, side="right")) - 1
    n = level.shape[axis]
    for k in range(max(full, 1).bit_length() + 1):
        if -(-full // 2**k) == n:
            return min(index >> k, n - 1)
    return index * n // full


class _Plane:
    """An image in a level: the axes in `chosen` read at one index each,
    the others in the order `order`; read lazily, indexed through to the
    level (integers and slices)."""

    def __init__(self, level, chosen: dict, order: tuple):
        self.level, self.chosen, self.order = level, chosen, order
        self.shape, self.dtype = tuple(level.shape[a] for a in order), level.dtype
        self.ndim = len(order)
        for name in ("scale", "units"):   # (a Level's physical axes: _pixel_size)
            value = getattr(level, name, None)
            setattr(self, name, None if value is None else tuple(tuple(value)[a] for a in order))

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            at = next(n for n, k in enumerate(key) if k is Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        full = [self.chosen.get(a, slice(None)) for a in range(len(self.level.shape))]
        for a, k in zip(self.order, key):
            full[a] = k
        region = np.asarray(self.level[tuple(full)])
        # the axes read, in the level's order, to this view's
        kept = [a for a, k in zip(self.order, key) if not isinstance(k, numbers.Integral)]
        stored = sorted(kept)
        return region.transpose([stored.index(a) for a in kept])


def _check_image(image, k: int, finest) -> None:
    """ValueError unless level `k` is an image JPEG 2000 takes exactly, of
    the finest level's dtype and samples and no larger."""
    shape, dtype = tuple(image.shape), np.dtype(image.dtype)
    # (the dtype first: no choice of plane mends it)
    if dtype.name not in EXPORT_DTYPES:
        raise ValueError(f"level {k} holds {dtype}: JPEG 2000 export takes "
                         f"{', '.join(EXPORT_DTYPES)} (samples OpenJPEG codes exactly)")
    if image is not finest and len(shape) == 3 and shape[2:] != tuple(finest.shape[2:]):
        raise ValueError(f"level {k} has shape {shape}, {shape[2]} samples where the finest "
                         f"exported level has {finest.shape[2]}: the array's transform halves "
                         f"its sample axis too, so its coarser levels are no images of those "
                         f"samples; export one level as .jp2, or write the array with "
                         f"axes=(0, 1)")
    if len(shape) < 2:
        raise ValueError(f"level {k} has shape {shape}: JPEG 2000 export takes images, 2-D or "
                         f"with 3 or 4 samples (RGB, RGBA)")
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (3, 4))):
        # named in the array's own axes: a plane's axes are some of them
        axes = image.order if isinstance(image, _Plane) else tuple(range(len(shape)))
        full = tuple(image.level.shape) if isinstance(image, _Plane) else shape
        seen = "" if full == shape else (f" (axes {', '.join(map(str, axes))} of it left, "
                                         f"shape {shape})")
        image_axes = 3 if len(shape) > 3 and shape[-1] in (3, 4) else 2
        spare = axes[:len(axes) - image_axes]
        spare = (f"axis {spare[0]}" if len(spare) == 1 else
                 f"each of axes {', '.join(map(str, spare))}")
        raise ValueError(f"level {k} has shape {full}{seen}: JPEG 2000 export takes images, 2-D "
                         f"or with 3 or 4 samples (RGB, RGBA); choose a plane with at={{axis: "
                         f"index}} (the command line's --at AXIS=INDEX) along {spare}")
    if 0 in shape:
        raise ValueError(f"level {k} is empty (shape {shape}): nothing to export")
    if image is not finest and (dtype != finest.dtype or shape[2:] != tuple(finest.shape[2:])
                                or any(a > b for a, b in zip(shape, finest.shape))):
        raise ValueError(f"level {k} ({dtype}, {shape}) does not belong to a pyramid under "
                         f"its finest level ({np.dtype(finest.dtype)}, {tuple(finest.shape)})")


def _tiles(image, tile: int):
    """The image's tiles in TIFF order, read a row of tiles at a time (those
    at its edges partial: tifffile pads them)."""
    for top in range(0, image.shape[0], tile):
        band = np.asarray(image[top:top + tile])
        for left in range(0, image.shape[1], tile):
            yield np.ascontiguousarray(band[:, left:left + tile])


def _coded_tiles(image, tile: int, encode, pool):
    """The image's tiles in TIFF order as codestreams, each padded with zeros
    to the whole tile as TIFF stores it, a row of tiles coded at a time."""
    def coded(part):
        whole = np.zeros((tile, tile) + part.shape[2:], part.dtype)
        whole[:part.shape[0], :part.shape[1]] = part
        return encode(whole, 0, part.shape[:2])   # (0: a bare J2K codestream, as TIFF holds)

    for top in range(0, image.shape[0], tile):
        band = np.asarray(image[top:top + tile])
        yield from pool.map(coded, (band[:, left:left + tile]
                                    for left in range(0, image.shape[1], tile)))
