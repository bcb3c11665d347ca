"""Level.to_xarray's names and coordinates: dimension names, attributes
xarray owns, and the coordinate arrays beside an array in its group."""
from __future__ import annotations

import base64
import numbers
import struct
import warnings
from pathlib import Path

import numpy as np

from progressive_j2k._optional import require_zarr
from progressive_j2k._ome import PHYSICAL_ATTRIBUTE


def _dimension_names(metadata, attributes: dict, ndim: int) -> tuple:
    """An array's dimension names (Level.to_xarray): zarr v3's, xarray's
    attribute (zarr v2), the OME axes' names, or dim_0, dim_1, ..."""
    physical = attributes.get(PHYSICAL_ATTRIBUTE)
    ome = physical.get("axes") if isinstance(physical, dict) else None
    for names in (getattr(metadata, "dimension_names", None), attributes.get("_ARRAY_DIMENSIONS"),
                  [a.get("name") if isinstance(a, dict) else None for a in ome or ()]):
        if names and len(names) == ndim:   # the first source naming each axis, unnamed ones dim_i
            names = tuple(n if isinstance(n, str) and n else f"dim_{i}"
                          for i, n in enumerate(names))
            if len(set(names)) == ndim and any(n != f"dim_{i}" for i, n in enumerate(names)):
                return names
    return tuple(f"dim_{i}" for i in range(ndim))


#: Attributes xarray writes for itself, which to_xarray leaves out
_XARRAY_OWN = ("_ARRAY_DIMENSIONS", "_FillValue", "coordinates")


def xarray_mask_value(attributes: dict, zarr_format: int, fill_value):
    """The _FillValue xarray.open_zarr masks a zarr array with, as stored:
    the attribute xarray writes to zarr v3 arrays (a float's as text,
    float_from_xarray), or, in arrays xarray wrote to zarr v2
    (_ARRAY_DIMENSIONS), the array's fill value, which stands for it there;
    else None."""
    value = attributes.get("_FillValue")
    if value is None and zarr_format == 2 and "_ARRAY_DIMENSIONS" in attributes:
        value = fill_value
    return value.item() if isinstance(value, np.generic) else value


def _cf_fill_value(attributes: dict, zarr_format: int, fill_value, dtype):
    """xarray_mask_value of an integer array (CF packing), which
    Level.to_xarray keeps, so decode_cf masks alike; else None.  Floats keep
    none: xarray's zarr v3 attribute of theirs is base64 text, and a copy
    written with a float one (NaN, its default) is one xarray cannot open."""
    if np.dtype(dtype).kind not in "iu":
        return None
    value = xarray_mask_value(attributes, zarr_format, fill_value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


#: CF's second mask value, which xarray masks as it masks _FillValue
MISSING_VALUE = "missing_value"


def cf_mask_value(*sources: dict) -> tuple:
    """(name, value) of the mask value CF and xarray read from the first of
    `sources` (an xarray variable's encoding, its attrs) that gives one:
    _FillValue, else missing_value (one number; CF allows a list, which
    is left out); (None, None) where none does.  The value is as stored (a
    float's may be float_for_xarray's text)."""
    for source in sources:
        for name in ("_FillValue", MISSING_VALUE):
            value = (source or {}).get(name)
            if isinstance(value, (list, tuple, np.ndarray)) and np.size(value) == 1:
                value = np.ravel(value)[0]
            if isinstance(value, np.generic):
                value = value.item()
            if float_from_xarray(value) is not None:
                return name, value
    return None, None


def same_value(a: float, b: float, dtype) -> bool:
    """Whether a and b are one value of `dtype` (float32's 1e20 is 1e20 given)."""
    if dtype.kind != "f":
        return a == b
    with np.errstate(over="ignore"):
        return bool(np.asarray(a).astype(dtype) == np.asarray(b).astype(dtype))


def without_other_missing_value(attributes: dict, nodata, dtype, say: bool = True,
                                stacklevel: int = 3) -> dict:
    """`attributes` less a MISSING_VALUE (one value, or CF's list) that
    holds another value than `nodata`, where there is a nodata (the output
    has one mask value, and the other value's cells are data to it, which
    lossy modes blur and levels blend: xarray masking the attribute would
    miss some), warned unless `say` is False; NaN on floats counts as
    nodata (NaN cells are stored as it).  Without nodata it stays as given."""
    given = attributes.get(MISSING_VALUE)
    if nodata is None or given is None:
        return attributes
    values = [float_from_xarray(v.item() if isinstance(v, np.generic) else v)
              for v in np.ravel(np.asarray(given, dtype=object))]
    others = [v for v in values if v is None or not (
        same_value(v, nodata, dtype) or (v != v and np.dtype(dtype).kind == "f"))]
    if not others:
        return attributes
    attributes = {k: v for k, v in attributes.items() if k != MISSING_VALUE}
    if say:
        warnings.warn(f"the input's missing_value {given!r} is not nodata {nodata:g}: its "
                      f"cells are kept as data and the attribute is not copied (an array has "
                      f"one mask value)", stacklevel=stacklevel)
    return attributes


def float_for_xarray(value: float) -> str:
    """A float _FillValue in the form xarray writes and reads in zarr v3
    attributes: the base64 of its little-endian float64 bytes."""
    return base64.standard_b64encode(struct.pack("<d", value)).decode()


def float_from_xarray(value) -> float | None:
    """A _FillValue as a number: a plain one, float_for_xarray's text, or
    zarr's JSON names ("NaN", "Infinity"); None where it is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:   # (binascii.Error)
        raw = b""
    if len(raw) == 8:
        return struct.unpack("<d", raw)[0]
    try:
        return float(value)
    except ValueError:
        return None


def _nodata_as_nan(block: np.ndarray, nodata) -> np.ndarray:
    """A float block with its nodata samples as NaN, as xarray masks its
    _FillValue (Level.to_xarray)."""
    return np.where(block == nodata, np.nan, block).astype(block.dtype, copy=False)


def _group_and_name(reader) -> tuple:
    """(store, path) of the group holding the reader's array, and the
    array's name in it: from its store path, or, for an array opened at the
    root of a local or fsspec store (open_multiscale("x.zarr/t")), the
    directory above where that is a zarr group; (None, None) where it has
    none."""
    parent, _, name = reader.path.rpartition("/")
    if name:
        return (reader.store, parent), name
    store = reader.store
    root = getattr(store, "root", None)   # a LocalStore opened at the array
    if isinstance(root, Path) and root.name:
        above, name = type(store)(root.parent, read_only=True), root.name
    elif hasattr(store, "fs") and isinstance(getattr(store, "path", None), str) and (
            store.path.strip("/").rpartition("/")[2]):   # an FsspecStore likewise
        up, _, name = store.path.rstrip("/").rpartition("/")
        above = type(store)(store.fs, read_only=True, path=up or "/")
    else:
        return None, None
    zarr = require_zarr("Level.to_xarray")
    try:
        zarr.open_group(store=above, mode="r")
    except (FileNotFoundError, KeyError, ValueError, TypeError, OSError):
        return None, None   # (a directory, not a group: its arrays are not this one's)
    return (above, ""), name


def _coordinate_array(group: tuple, dim: str, length: int):
    """(values, attributes) of the 1-D array named `dim` of `length` values
    in `group` (store, path), read whole; None if there is none."""
    zarr = require_zarr("Level.to_xarray")
    store, parent = group
    try:
        array = zarr.open_array(store=store, path=f"{parent}/{dim}" if parent else dim, mode="r")
    except (FileNotFoundError, KeyError, ValueError, TypeError):
        return None
    if array.shape != (length,):
        return None
    return np.asarray(array[:]), dict(array.attrs)
