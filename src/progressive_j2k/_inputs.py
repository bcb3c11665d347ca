"""The inputs a conversion reads: .npy, TIFF (tile by tile, read-only,
with its pixel sizes and channel names), JPEG 2000 files (whole, with a
.jp2's pixel size) and zarr arrays or OME-Zarr groups (level 0)."""
from __future__ import annotations

import contextlib
import math
import os
import re
import struct
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from progressive_j2k import _jp2
from progressive_j2k._ome import (LENGTH_IN_METRES, OMERO_ATTRIBUTE, PHYSICAL_ATTRIBUTE,
                                  _OME_UNITS, _list, _physical_axes, ome_level0, ome_metadata)
from progressive_j2k._optional import (is_url, local_if_file_url, require, require_zarr,
                                       zarr_store)
from progressive_j2k._guards import ZARR_METADATA
from progressive_j2k._options import nodata_in
from progressive_j2k._xarray import (MISSING_VALUE, _XARRAY_OWN, cf_mask_value,
                                     float_from_xarray, same_value, without_other_missing_value,
                                     xarray_mask_value)
from progressive_j2k._zarr_layout import open_zarr_node


#: xarray's mask value among the attributes open_input gives a zarr input's
#: conversion (as xarray reads it: a float's as zarr v3 stores it, base64),
#: which input_nodata turns into the output's nodata
FILL_VALUE = "_FillValue"
#: convert's --nodata none: no nodata, and the input's mask value is data
NO_NODATA = "none"

#: An OME-Zarr group's own blocks, which are not copied to the output array
#: as they are: "multiscales" names the input's levels (level 0's axes and
#: transformations are carried as PHYSICAL_ATTRIBUTE; the output's levels
#: are the codec's), "omero" is carried as OMERO_ATTRIBUTE, and 0.5's "ome"
#: holds the two
_OME_GROUP_BLOCKS = ("multiscales", "omero", "ome")


def open_input(path: str, series: int | None = None) -> tuple:
    """A lazily sliceable array from a .npy, TIFF (its series `series`; None:
    the first, warning where there are more), zarr array or OME-Zarr group
    (its level 0), its dimension names (a zarr v3 array's, xarray's
    _ARRAY_DIMENSIONS of a zarr v2 one, or the OME axes'; else None) and
    the attributes to give its conversion: a zarr array's own
    (_zarr_attributes; an OME group's too, less its OME blocks), an OME
    input's physical axes, PHYSICAL_ATTRIBUTE, and its omero block,
    OMERO_ATTRIBUTE; a TIFF's physical axes and channel names.  A zarr
    input's may hold xarray's mask value, FILL_VALUE, which input_nodata
    settles before they are written.  A URL
    (http://, s3://, ...) names a zarr array or group: zarr opens it
    through fsspec."""
    path = local_if_file_url(path)
    url = is_url(path)
    p = Path(urlparse(path).path if url else path)   # (Path would fold the URL's //)
    suffix = p.suffix.lower()
    if url and suffix in (".tif", ".tiff", ".npy", *JPEG2000_SUFFIXES):
        raise ValueError(f"{path}: TIFF, JPEG 2000 and .npy inputs are read from local files only; "
                         f"download it first (a zarr array or OME-Zarr group can be a URL)")
    if suffix in (".tif", ".tiff"):
        return _open_tiff(p, series)
    if series is not None:
        raise ValueError(f"{path}: a series is picked from a TIFF only")
    if suffix == ".npy":
        return np.load(p, mmap_mode="r"), None, {}
    if suffix in JPEG2000_SUFFIXES:
        return _open_jpeg2000(p)
    if not url and (p.is_file() or p.is_dir() and not any(
            (p / name).exists() for name in ZARR_METADATA)):
        kind = "a file" if p.is_file() else "a directory without zarr metadata"
        raise ValueError(f"{path}: not an input convert reads ({kind}): it reads .npy, TIFF "
                         f"(.tif, .tiff) and JPEG 2000 ({', '.join(JPEG2000_SUFFIXES)}) files, "
                         f"zarr arrays and OME-Zarr groups")
    zarr = require_zarr("reading zarr input")
    node = open_zarr_node(zarr, zarr_store(path, "reading zarr input") if url else str(p))
    if isinstance(node, zarr.Array):
        if not url:
            _warn_if_an_ome_level(zarr, p)
        return node, _dimension_names(node), _zarr_attributes(node)
    attrs = node.attrs.asdict()
    multiscales = ome_metadata(attrs, "multiscales")
    if multiscales:
        array, multiscale = ome_level0(node, multiscales)
        axes = _list(multiscale.get("axes"))
        names = [a.get("name") if isinstance(a, dict) else a for a in axes]
        if len(names) != array.ndim or not all(isinstance(n, str) for n in names):
            names = _dimension_names(array)
        # the group is the image: its attributes describe level 0 as much as
        # the array's do (those the group's OME blocks say are carried below)
        group = {k: v for k, v in attrs.items() if k not in _OME_GROUP_BLOCKS}
        carried = {**_zarr_attributes(array), **_json_attributes(group),
                   **_physical_axes(multiscale, array.ndim)}
        omero = ome_metadata(attrs, "omero")
        if isinstance(omero, dict):
            carried[OMERO_ATTRIBUTE] = omero
        return array, names, carried
    arrays = sorted(node.array_keys())
    # (a plain group's attributes are the whole group's, a Dataset's say: not this array's)
    if len(arrays) == 1:
        return node[arrays[0]], _dimension_names(node[arrays[0]]), _zarr_attributes(
            node[arrays[0]])
    raise ValueError(f"{path}: a zarr group without OME multiscales metadata; name one of its "
                     f"arrays ({', '.join(f'{path}/{a}' for a in arrays)})")


def _warn_if_an_ome_level(zarr, path: Path) -> None:
    """Warns where a local zarr array is a level its parent OME-Zarr group's
    multiscales name: read as a plain array, it has none of the group's
    axes, units, scale or channel names."""
    path = path.absolute()   # (not resolved: a level linked in names the group it is in)
    parent = path.parent
    try:
        group = open_zarr_node(zarr, str(parent))
        multiscales = ome_metadata(group.attrs.asdict(), "multiscales") \
            if isinstance(group, zarr.Group) else None
        named = {str(d.get("path")) for m in _list(multiscales) if isinstance(m, dict)
                 for d in _list(m.get("datasets")) if isinstance(d, dict)}
    except Exception:   # (no group there, or one zarr cannot read: nothing to say)
        return
    if path.name in named:
        warnings.warn(f"{path} is a level of the OME-Zarr group {parent}: read as a plain array, "
                      f"without the group's axes, units, scale and channel names; convert "
                      f"{parent} to keep them", stacklevel=4)


def _dimension_names(array) -> tuple | None:
    """A zarr array's dimension names: zarr v3's, else xarray's
    _ARRAY_DIMENSIONS attribute (zarr v2 has no such field) where it names
    every axis; None where neither does."""
    names = getattr(array.metadata, "dimension_names", None)
    if names is not None:
        return names
    given = array.attrs.get("_ARRAY_DIMENSIONS")
    if (isinstance(given, list) and len(given) == array.ndim
            and all(isinstance(n, str) for n in given)):
        return tuple(given)
    return None


def _zarr_attributes(array) -> dict:
    """A zarr array input's attributes for its conversion: its own, less
    those xarray writes for itself (_XARRAY_OWN), which say how the input
    is stored and would be wrong on the output: _ARRAY_DIMENSIONS (the
    output, zarr v3, records them as its dimension_names:
    _dimension_names), "coordinates" (it names coordinate arrays beside
    the input, which are not converted) and _FillValue, kept as FILL_VALUE
    for input_nodata: the attribute, or the fill value of an array xarray
    wrote to zarr v2 (_ARRAY_DIMENSIONS), which stands for it there."""
    attrs = array.attrs.asdict()
    kept = _json_attributes({k: v for k, v in attrs.items() if k not in _XARRAY_OWN})
    mask = xarray_mask_value(attrs, array.metadata.zarr_format, array.metadata.fill_value)
    if mask is not None:   # (None: xarray masks nothing)
        kept[FILL_VALUE] = mask
    return kept


def _json_attributes(attrs: dict) -> dict:
    """`attrs` as to_zarr can store them (those JSON cannot hold left out,
    warned); zarr's own attributes are JSON, but a store's may not be."""
    from progressive_j2k.convert import _json_attributes
    return _json_attributes(attrs, "the input's", "")


def input_nodata(attributes: dict, nodata, dtype) -> tuple:
    """(attributes, nodata, the attribute it came from or None) for
    converting an input whose attributes (open_input's) may hold xarray's
    mask value, FILL_VALUE, or CF's other one, MISSING_VALUE, which xarray
    masks too (FILL_VALUE first).  The mask value is never written as it
    came: to_zarr writes the output's _FillValue from nodata, so that the
    two cannot disagree.  With `nodata` given, that is the output's; a mask
    value other than it is warned of (its cells are data to the output),
    but for NaN on floats, whose cells are stored as nodata.  Without, a
    mask value the dtype holds becomes nodata: masked cells then decode
    exactly, stay out of reduced levels and read as missing in xarray, in
    every mode (the attribute alone was blurred by lossy modes and blended
    into reduced levels); NaN has nothing to carry (NaN cells need a
    nodata, as ever); other values are left out, warned.  A MISSING_VALUE
    that is not the nodata chosen is not copied, warned: the output has one
    mask value.  `nodata` NO_NODATA asks for none: the mask values' cells
    are data, and neither attribute is written (xarray would mask them)."""
    attributes = dict(attributes)
    if nodata is NO_NODATA:
        attributes.pop(FILL_VALUE, None)
        attributes.pop(MISSING_VALUE, None)
        return attributes, None, None
    name, given = FILL_VALUE, attributes.pop(FILL_VALUE, None)
    mask = None if given is None else float_from_xarray(given)
    # CF's other mask value, where it is one number: where there is no
    # _FillValue, or a NaN one on floats (NaN cells need a finite nodata)
    if given is None or (dtype.kind == "f" and mask is not None and math.isnan(mask)):
        other = cf_mask_value({MISSING_VALUE: attributes.get(MISSING_VALUE)})
        if other[1] is not None:
            name, given = other
    chosen = nodata if given is None else _chosen_nodata(name, given, nodata, dtype)
    if name == MISSING_VALUE and chosen is None and nodata is None:   # (left out, warned)
        attributes.pop(MISSING_VALUE, None)
    # (where it came from missing_value, _chosen_nodata said so)
    attributes = without_other_missing_value(attributes, chosen, dtype, say=name != MISSING_VALUE,
                                             stacklevel=4)
    return attributes, chosen, (name if chosen is not None and nodata is None else None)


def _chosen_nodata(name: str, given, nodata, dtype):
    """input_nodata's nodata where the input's attribute `name` gives the
    mask value `given`."""
    mask = float_from_xarray(given)
    if nodata is not None:
        if mask is not None and not same_value(mask, nodata, dtype) and not (
                math.isnan(mask) and dtype.kind == "f"):
            warnings.warn(f"the input's {name} {mask:g} is not --nodata {nodata:g}: cells of "
                          f"{mask:g} are kept as data, no longer masked", stacklevel=4)
        return nodata
    if mask is not None and math.isnan(mask):
        return None
    reason = "not a number"
    if mask is not None:
        try:
            return nodata_in(mask, dtype)
        except ValueError as exc:
            reason = str(exc)
    warnings.warn(f"the input's {name} {given!r} cannot be nodata ({reason}): left out; "
                  f"give --nodata to mask cells", stacklevel=4)
    return None


def _open_tiff(path, series: int | None = None) -> tuple:
    """open_input for a TIFF's series `series` (None: the first, warning
    where the file holds more; its full-resolution level): a memory map
    where its data is stored contiguously, else a zarr view of its tiles or
    strips (decoded as read: a tiled slide is never held whole), with an
    OME-TIFF's axes and physical pixel sizes."""
    tifffile = require("tifffile", "cli", "reading TIFF")
    with _tifffile_damage(path), _tiff_structure_damage(path, tifffile), \
            tifffile.TiffFile(path) as tif:
        index = _tiff_series(tif, series, path)
        chosen = tif.series[index]
        _check_tiff_extent(chosen, path)
        contiguous = chosen.dataoffset is not None
        # (a single compressed segment per page would be decoded whole for
        # every row of chunks read from it: read it once)
        whole = len(chosen.pages) == 1 and len(chosen.keyframe.dataoffsets) == 1
        names, carried = _tiff_axes(tif, index)
    if contiguous:
        try:   # read-only: an archive's files are never written
            return tifffile.memmap(path, mode="r", series=index), names, carried
        except ValueError as exc:   # (numpy: "mmap length is greater than file size")
            raise ValueError(f"{path}: the file ends before its image data does "
                             f"(truncated?): {exc}") from None
    if whole:
        return tifffile.imread(path, series=index), names, carried
    zarr = require_zarr("reading a tiled or compressed TIFF")
    return zarr.open_array(tifffile.imread(path, aszarr=True, series=index, level=0),
                           mode="r"), names, carried


#: The file names convert reads as JPEG 2000: JP2 files and raw codestreams
#: (HTJ2K's too, which OpenJPEG decodes)
JPEG2000_SUFFIXES = (".jp2", ".j2k", ".j2c", ".jpc", ".jhc")
#: The share of the machine's memory a JPEG 2000 input's decode may take:
#: it is decoded whole, and a damaged size marker must not claim it all
JPEG2000_MEMORY_SHARE = 0.5
#: OpenJPEG's working bytes per sample beside the output: its components
#: as int32 (an 8-bit decode peaked at 5.5 times its output)
JPEG2000_WORKING_BYTES = 4.5
#: Length units for a .jp2's pixel size, largest first: it takes the first
#: in which the smaller of its sizes is at least _JP2_UNIT_LEAST (a slide's
#: 0.25 micrometres, a CT's 0.6 millimetres, a satellite's 10 metres)
_JP2_UNITS = ("meter", "millimeter", "micrometer", "nanometer")
_JP2_UNIT_LEAST = 0.1


def _open_jpeg2000(path) -> tuple:
    """open_input for a JPEG 2000 file (OpenJPEG, through imagecodecs,
    decodes it whole): (H, W) or (H, W, components), with the pixel size of
    a .jp2's capture resolution box as PHYSICAL_ATTRIBUTE (y and x, and c
    for components)."""
    imagecodecs = require("imagecodecs", "cli", "reading JPEG 2000")
    data = Path(path).read_bytes()
    try:
        rows, columns, components, itemsize = _jp2.declared_size(data)
        pixel_size = _jp2.capture_pixel_size(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    needed = rows * columns * components * (itemsize + JPEG2000_WORKING_BYTES)
    if needed > JPEG2000_MEMORY_SHARE * _memory():
        raise ValueError(f"{path}: the JPEG 2000 image declares {rows} x {columns} x {components} "
                         f"samples, whose decode needs about {needed / 2**30:.1f} GiB, more than "
                         f"half this machine's memory (it is decoded whole): damaged, or too "
                         f"large to convert here")
    try:
        _jp2.check_tile_parts(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        image = imagecodecs.jpeg2k_decode(data, numthreads=os.cpu_count() or 1)
    except imagecodecs.Jpeg2kError as exc:
        raise ValueError(f"{path}: the JPEG 2000 data does not decode (truncated or damaged): "
                         f"{exc}") from None
    except NotImplementedError as exc:   # (subsampled or unlike components, say)
        raise ValueError(f"{path}: a JPEG 2000 file imagecodecs does not decode to an array: "
                         f"{exc}") from None
    if image.shape[:2] != (rows, columns):
        raise ValueError(f"{path}: decoded {image.shape[:2]}, its size marker declares "
                         f"{(rows, columns)} (damaged)")
    if pixel_size is None:
        return image, None, {}
    unit = next((u for u in _JP2_UNITS
                 if min(pixel_size) / LENGTH_IN_METRES[u] >= _JP2_UNIT_LEAST), _JP2_UNITS[-1])
    axes = [{"name": name, "type": "space", "unit": unit} for name in "yx"]
    scale = [float(f"{size / LENGTH_IN_METRES[unit]:.6g}") for size in pixel_size]   # (the box's precision)
    if image.ndim == 3:
        axes.append({"name": "c", "type": "channel"})
        scale.append(1.0)
    names = [axis["name"] for axis in axes]
    return image, names, {PHYSICAL_ATTRIBUTE: {"axes": axes, "scale": scale,
                                               "translation": [0.0] * len(axes)}}


def _memory() -> int:
    """The bytes of memory this process may use: the machine's, or its
    cgroup's limit where that is lower (a container)."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            memory = min(memory, int(Path(limit).read_text().strip()))   # ("max": none)
    return memory


def _tiff_series(tif, series: int | None, path) -> int:
    """The index of the series to read: `series`, checked; None: the first,
    with a warning naming the others where there are more (separate images
    in one file, or a slide's label and macro images)."""
    def described(i):
        s = tif.series[i]
        return f"{i}: {'x'.join(map(str, s.shape))} {s.dtype}" + (f" {s.name!r}" if s.name else "")

    count = len(tif.series)
    if not count:
        raise ValueError(f"{path}: the TIFF holds no image (a header without pages: "
                         f"truncated or damaged)")
    listing = "; ".join(map(described, range(count)))
    if series is None:
        if count > 1:
            warnings.warn(f"{path} holds {count} images (series {listing}): series 0 is read; "
                          f"pick another with --series", stacklevel=4)
        return 0
    if isinstance(series, bool) or not isinstance(series, int) or not 0 <= series < count:
        raise ValueError(f"{path}: series {series!r} is not one of its {count} ({listing})")
    return series


#: tifffile's log messages for a series it could not read whole (a
#: truncated stack): it then reads the pages it found, as a smaller image.
#: (Not "invalid page offset" alone: a complete file can end with a bad
#: pointer past its last page.)
_TIFF_DAMAGE = ("failed to reshape", "ImageJ series metadata invalid or corrupted file",
                "corrupted tag list")
#: The ImageDescription tag's value past the end: a file cut short after
#: its pixels (an OME-TIFF's description, written last), whose metadata
#: or later pages tifffile then leaves out (_tifffile_damage)
_TIFF_CUT = ("TiffTag 270 ", "invalid value offset")


@contextlib.contextmanager
def _tifffile_damage(path):
    """ValueError where tifffile logs, inside, that a series is cut short
    (tifffile warns and goes on with fewer pages)."""
    import logging

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    messages, handler, logger = [], Collect(logging.WARNING), logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    damage = [m for m in messages if any(d in m for d in _TIFF_DAMAGE)]
    # a file cut after its pixels: tifffile finds no description (an
    # OME-TIFF's, written last) and reads one plane of the stack, or all of
    # them without their axes and sizes (a broken private tag is no sign)
    damage += [m for m in messages if all(sign in m for sign in _TIFF_CUT)]
    if damage:
        raise ValueError(f"{path}: a series is cut short (truncated or damaged): "
                         f"{damage[0]}")


@contextlib.contextmanager
def _tiff_structure_damage(path, tifffile):
    """ValueError for what tifffile raises on page directories that are cut
    short or hold impossible values (a size, a strip's rows or a tile's side
    of 0, no samples, an OME description without an axis's size)."""
    try:
        yield
    except (tifffile.TiffFileError, struct.error, IndexError, EOFError, ZeroDivisionError,
            KeyError, RuntimeError) as exc:   # (RuntimeError: "incompatible keyframe")
        raise ValueError(f"{path}: the TIFF's page directories are cut short or damaged: "
                         f"{type(exc).__name__}: {exc}") from None


def _check_tiff_extent(series, path) -> None:
    """ValueError where a page of `series` is missing, lacks some of the
    strips or tiles its size needs, or one of them runs past the end of its
    file (a truncated copy; a multi-file OME-TIFF's pages lie in several):
    tifffile reads those as zeros.  A segment with neither offset nor
    length is one a sparse writer (GDAL) left out on purpose, and kept.
    Uncompressed pixels stored in one run are read from their offset and
    the image's size whatever the strips say (a byte count of 0, a wrong
    RowsPerStrip: writers' slips that tifffile reads through; a run cut
    short is refused when it is mapped)."""
    for index, page in enumerate(series.pages):
        if page is None:
            raise ValueError(f"{path}: page {index} of the image is missing: the file is "
                             f"truncated or damaged")
        size, segments = page.parent.filehandle.size, list(zip(page.dataoffsets,
                                                                 page.databytecounts))
        if any(offset + count > size for offset, count in segments):
            raise ValueError(f"{path}: page {index} of the image ends past the end of its "
                             f"file: the file is truncated or damaged")
        if page.keyframe.compression == 1 and page.is_contiguous:
            continue
        needed = math.prod(page.keyframe.chunked)
        if min(len(page.dataoffsets), len(page.databytecounts)) < needed:
            raise ValueError(f"{path}: page {index} of the image lists {len(segments)} strips "
                             f"or tiles where its size needs {needed}: the file is truncated "
                             f"or damaged")
        if any((offset == 0) != (count == 0) for offset, count in segments):
            raise ValueError(f"{path}: page {index} of the image has a strip or tile without "
                             f"an offset or without a length: the file is damaged")


#: A TIFF series axis (tifffile's letters): its OME pixel size attribute and default unit
_OME_SIZES = {"X": ("PhysicalSizeX", "µm"), "Y": ("PhysicalSizeY", "µm"),
              "Z": ("PhysicalSizeZ", "µm"), "T": ("TimeIncrement", "s")}


_OME_TYPES = {"X": "space", "Y": "space", "Z": "space", "T": "time", "C": "channel",
              "S": "channel"}


def _tiff_axes(tif, index: int = 0) -> tuple:
    """(dimension names, carried attributes) of a TIFF's series `index`: its
    axes as OME-Zarr names them (x, y, z, t, c; RGB samples c, or s beside
    a channel axis) and PHYSICAL_ATTRIBUTE with the pixel sizes that its
    OME-XML, its ImageJ metadata or its resolution tags in centimetres give
    (tags in inches, mostly a screen's 72 or 96 dpi, are left out, warned),
    and an OME-TIFF's channel names as OMERO_ATTRIBUTE; (None, {}) where it
    gives no sizes (or OME-XML that does not parse, warned)."""
    sizes, channels = _tiff_pixel_sizes(tif, index)
    if sizes is None:
        return None, {}
    letters = tif.series[index].axes
    axes, scale = [], []
    for letter in letters:
        name = letter.lower()
        if letter == "S":   # RGB samples: OME-Zarr's channel axis, unless the TIFF has one
            name = "s" if "C" in letters else "c"
        axis = {"name": name}
        if letter in _OME_TYPES:
            axis["type"] = _OME_TYPES[letter]
        size = 1.0
        if letter in sizes:   # (no size: unit spacing and no unit)
            given, unit = sizes[letter]
            size = _float(given)
            if not (math.isfinite(size) and size > 0):
                warnings.warn(f"the TIFF's pixel size along {name}, {given!r}, is not a size: "
                              f"unit spacing", stacklevel=4)
                size = 1.0
            axis["unit"] = _OME_UNITS.get(unit, unit)
        axes.append(axis)
        scale.append(size)
    names = [a["name"] for a in axes]
    carried = {PHYSICAL_ATTRIBUTE: {"axes": axes, "scale": scale,
                                    "translation": [0.0] * len(axes)}}
    channel = "C" if "C" in letters else "S"
    # (OME-Zarr viewers label channels from omero; an image of one channel
    # has no channel axis, and its one name)
    if channels and len(channels) == (tif.series[index].shape[letters.index(channel)]
                                       if channel in letters else 1):
        carried[OMERO_ATTRIBUTE] = {"channels": [{"label": c} for c in channels]}
    return (names if len(set(names)) == len(names) else None), carried


#: ImageJ's units of an uncalibrated image
_IMAGEJ_UNCALIBRATED = ("pixel", "pixels")
#: ImageJ's time units (its tunit) as OME's symbols
_IMAGEJ_TIME_UNITS = {"s": "s", "sec": "s", "second": "s", "seconds": "s", "ms": "ms",
                      "msec": "ms", "us": "µs", "usec": "µs", "µs": "µs", "\u03bcs": "µs",
                      "min": "min", "minute": "min", "minutes": "min", "h": "h", "hour": "h",
                      "hours": "h", "hr": "h", "d": "d", "day": "d", "days": "d"}
#: TIFF's ResolutionUnit codes in micrometres: centimetre (3), and
#: tifffile's millimetre (4) and micrometre (5)
_RESOLUTION_UNIT_MICROMETRES = {3: 1e4, 4: 1e3, 5: 1.0}


def _imagej_unit(unit):
    """ImageJ's unit text as written: Fiji escapes characters beyond ASCII
    (its micrometre reads "\\u00B5m"), which tifffile leaves as they are."""
    if not isinstance(unit, str):
        return None
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), unit).strip()


def _tiff_pixel_sizes(tif, index: int = 0) -> tuple:
    """({axis letter: (size as given, unit)}, OME channel names) of a TIFF's
    series `index`: from its OME-XML (the image stored from the series'
    first page), else its ImageJ metadata, else its first page's resolution
    tags in centimetres; (None, []) where it has none of them."""
    if tif.is_ome:
        import xml.etree.ElementTree as ElementTree

        try:
            root = ElementTree.fromstring(tif.ome_metadata)
        except ElementTree.ParseError as exc:
            warnings.warn(f"OME-XML not understood, physical axes left out: {exc}", stacklevel=4)
            return None, []
        pixels = _ome_pixels(root, tif.series[index], Path(tif.filehandle.path).name)
        if pixels is None:
            warnings.warn(f"the OME-XML's images could not be matched to series {index} (by "
                          f"their first IFD): physical axes left out", stacklevel=4)
            return None, []
        sizes = {}
        for letter, (attribute, unit) in _OME_SIZES.items():
            given = None if pixels is None else pixels.get(attribute)
            if given is not None:
                sizes[letter] = (given, pixels.get(attribute + "Unit", unit))
        channels = [] if pixels is None else [
            c.get("Name") or "" for c in pixels.findall("{*}Channel")]
        return sizes, channels if any(channels) else []
    imagej = tif.imagej_metadata if tif.is_imagej else None
    sizes = _tiff_resolution_sizes(tif, index, imagej)
    # ImageJ's frame interval, in seconds unless its tunit says: a time
    # calibration stands with or without a spatial one
    if imagej and "finterval" in imagej:
        tunit = _imagej_unit(imagej.get("tunit"))
        sizes = {**(sizes or {}),
                 "T": (imagej["finterval"], _IMAGEJ_TIME_UNITS.get(tunit or "s", tunit))}
    return sizes, []


def _tiff_resolution_sizes(tif, index: int, imagej) -> dict | None:
    """The pixel sizes of a TIFF series' first page without OME-XML: per
    ImageJ's unit (and its z spacing), or from resolution tags in
    centimetres (tifffile's millimetres and micrometres too); None where
    neither gives one (inches warned)."""
    page = tif.series[index].keyframe
    resolution = [page.tags.get(t) for t in ("YResolution", "XResolution")]
    if None in resolution:
        return None
    rationals = [tuple(map(_float, tag.value)) for tag in resolution]
    per_unit = [n / d if d else math.nan for n, d in rationals]
    unit = page.tags.get("ResolutionUnit")
    unit = unit.value if unit is not None else 2   # (TIFF's default: inches)
    imagej_unit = _imagej_unit(imagej.get("unit")) if imagej else None
    if imagej_unit in _IMAGEJ_UNCALIBRATED:   # (its resolution is no pixel size)
        return None
    if imagej_unit:   # ImageJ: pixels per its unit, and z spacing
        sizes = dict(zip("YX", ((1 / p if p else math.nan, imagej_unit) for p in per_unit)))
        if "spacing" in imagej:
            sizes["Z"] = (imagej["spacing"], imagej_unit)
        return sizes
    if unit in _RESOLUTION_UNIT_MICROMETRES:   # centimetres (and tifffile's mm and µm)
        micrometres = _RESOLUTION_UNIT_MICROMETRES[unit]
        return dict(zip("YX", ((micrometres / p if p else math.nan, "µm") for p in per_unit)))
    if unit == 2 and per_unit != [1.0, 1.0]:
        warnings.warn(f"the TIFF's resolution, {per_unit[1]:g} pixels per inch (a screen's, "
                      f"mostly), is not carried as a pixel size", stacklevel=5)
    return None


def _ome_pixels(root, series, filename: str):
    """The OME Pixels element of a TIFF series: the one image whose TiffData
    (those in this file) starts at the series' first page, or the only one
    in the document; None where neither holds (tifffile makes no series of
    images without data here, so images and series are not matched by
    position)."""
    all_pixels = root.findall(".//{*}Pixels")
    first = series.pages[0].index
    matches = []
    for pixels in all_pixels:
        ifds = []
        for data in pixels.findall("{*}TiffData"):
            uuid = data.find("{*}UUID")
            named = None if uuid is None else uuid.get("FileName")
            ifd = data.get("IFD", "0")
            if (named is None or named == filename) and ifd.isdigit():
                ifds.append(int(ifd))
        if ifds and min(ifds) == first:
            matches.append(pixels)
    if len(matches) == 1:
        return matches[0]
    return all_pixels[0] if len(all_pixels) == 1 else None


def _float(value) -> float:
    """`value` as a float, NaN where it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
