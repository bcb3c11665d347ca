"""OME metadata carried through a conversion: the attributes that hold it
(PHYSICAL_ATTRIBUTE, OMERO_ATTRIBUTE), reading it from OME-Zarr groups, and
level 0's physical axes as the levels read them."""
from __future__ import annotations

import math
import warnings

import numpy as np

from progressive_j2k._optional import require_zarr


#: The array attribute holding level 0's physical axes, from an OME-Zarr
#: input: OME's "axes" (names, types, units) and the scale and translation
#: its coordinate transformations give level 0 (open_multiscale's
#: Level.scale, .translation and .units read it).
PHYSICAL_ATTRIBUTE = "ome_level0"


#: An OME input's channel rendering metadata (names, colours, display
#: windows), kept as it is under its OME name: viewers read it from there.
OMERO_ATTRIBUTE = "omero"


def ome_metadata(attrs: dict, key: str):
    """An OME-Zarr group's `key` ("multiscales", "omero"): among the group's
    attributes (OME-NGFF 0.4) or under their "ome" (0.5); None if absent."""
    ome = attrs.get("ome")
    return attrs.get(key) or (ome.get(key) if isinstance(ome, dict) else None)


def ome_level0(group, multiscales) -> tuple:
    """(level 0's array, its multiscale entry) of an OME-Zarr group, from
    its multiscales metadata; ValueError where that names no array in it."""
    zarr = require_zarr("reading OME-Zarr")
    try:
        multiscale = multiscales[0]
        array = group[multiscale["datasets"][0]["path"]]
    except (KeyError, IndexError, TypeError) as exc:
        array = exc
    if not isinstance(array, zarr.Array):
        raise ValueError(f"an OME-Zarr group whose multiscales attribute names no level-0 "
                         f"array in it (multiscales[0].datasets[0].path: {array!r})")
    return array, multiscale


def _list(value) -> list:
    """An attribute's list, or [] where it holds something else."""
    return value if isinstance(value, list) else []


def _physical_axes(multiscale: dict, ndim: int) -> dict:
    """PHYSICAL_ATTRIBUTE for an OME multiscale's level 0: its axes, and the
    scale and translation of its dataset's transformations followed by the
    multiscale's own (OME-NGFF 0.4/0.5); {} where it gives neither."""
    axes = _list(multiscale.get("axes"))
    scale, translation = [1.0] * ndim, [0.0] * ndim
    found, skipped = False, []
    for transform in _list(multiscale["datasets"][0].get("coordinateTransformations")) + (
            _list(multiscale.get("coordinateTransformations"))):
        kind = transform.get("type") if isinstance(transform, dict) else None
        values = _numbers(transform.get(kind), ndim) if kind in ("scale", "translation") else None
        if values is None:
            if kind != "identity":
                skipped.append(kind if isinstance(kind, str) else repr(transform))
            continue
        found = True
        if kind == "scale":
            scale = [s * v for s, v in zip(scale, values)]
            translation = [t * v for t, v in zip(translation, values)]
        else:
            translation = [t + v for t, v in zip(translation, values)]
    if skipped:
        warnings.warn(f"OME coordinate transformations not understood, left out of the "
                      f"physical axes kept ({', '.join(map(str, skipped))}): check "
                      f"{PHYSICAL_ATTRIBUTE}'s scale and translation", stacklevel=3)
    if not found and len(axes) != ndim:
        return {}
    return {PHYSICAL_ATTRIBUTE: {"axes": axes if len(axes) == ndim else [],
                                 "scale": scale, "translation": translation}}


def _numbers(values, count: int) -> list | None:
    """`values` as `count` finite floats, or None if they are not that."""
    if not isinstance(values, list) or len(values) != count or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values):
        return None
    return [float(v) for v in values]


def physical_axes(attributes: dict, ndim: int) -> tuple:
    """(scale, translation, units) of level 0 from an array's
    PHYSICAL_ATTRIBUTE: unit spacing, no offset and None where it is absent
    or malformed (warned), units None where no axis names one."""
    physical = attributes.get(PHYSICAL_ATTRIBUTE)
    default = ((1.0,) * ndim, (0.0,) * ndim, None)
    if physical is None:
        return default
    scale = _numbers(physical.get("scale"), ndim) if isinstance(physical, dict) else None
    translation = None
    if scale:   # (no translation given: no offset)
        given = physical.get("translation")
        translation = default[1] if given is None else _numbers(given, ndim)
    if translation is None:
        warnings.warn(f"{PHYSICAL_ATTRIBUTE} is malformed (scale, and translation if given, "
                      f"must be {ndim} finite numbers each): unit spacing assumed", stacklevel=3)
        return default
    axes = _list(physical.get("axes"))
    units = tuple(a.get("unit") if isinstance(a, dict) else None for a in axes) \
        if len(axes) == ndim else ()
    return tuple(scale), tuple(translation), units if any(u is not None for u in units) else None


#: OME-NGFF 0.3's axes, named only (0.4 on may leave an axis's type out)
_TYPE_BY_NAME = {"x": "space", "y": "space", "z": "space", "c": "channel", "t": "time"}


def _axis_type(axis) -> str | None:
    """An OME axis's type (lower case): as given, else by its name (x, y,
    z, c, t, as OME-NGFF 0.3 names axes with strings); None if neither."""
    if isinstance(axis, dict):
        given, name = axis.get("type"), axis.get("name")
        if isinstance(given, str) and given:
            return given.lower()
    else:
        name = axis
    return _TYPE_BY_NAME.get(name.lower()) if isinstance(name, str) else None


def _level0_axes(attributes) -> list:
    """PHYSICAL_ATTRIBUTE's OME axes, or [] where it has none."""
    physical = attributes.get(PHYSICAL_ATTRIBUTE) if isinstance(attributes, dict) else None
    return _list(physical.get("axes")) if isinstance(physical, dict) else []


def space_axes(attributes: dict, ndim: int) -> tuple | None:
    """The axes PHYSICAL_ATTRIBUTE's OME axes call space, where every axis
    has a type (_axis_type) and some other is channel or time: OME-Zarr
    pyramids downsample the space axes only; else None."""
    types = [_axis_type(a) for a in _level0_axes(attributes)]
    if len(types) != ndim or None in types or all(t == "space" for t in types) or \
            "space" not in types:
        return None
    return tuple(a for a, t in enumerate(types) if t == "space")


def channel_labels(attributes: dict, axis: int, ndim: int, length: int) -> np.ndarray | None:
    """The OME channel names of `axis` (of `length` samples), for
    coordinates: where PHYSICAL_ATTRIBUTE's axes call it the channel axis
    and OMERO_ATTRIBUTE names each of its channels, once; else None."""
    axes = _level0_axes(attributes)
    if len(axes) != ndim or _axis_type(axes[axis]) != "channel":
        return None
    omero = attributes.get(OMERO_ATTRIBUTE)
    channels = _list(omero.get("channels")) if isinstance(omero, dict) else []
    labels = [c.get("label") if isinstance(c, dict) else None for c in channels]
    if len(labels) != length or not all(isinstance(v, str) and v for v in labels) or \
            len(set(labels)) != length:
        return None
    return np.array(labels)


#: OME-XML's length units as OME-Zarr names them (UDUNITS-2), each name's
#: OME-XML symbol first (export writes it; µm: the micro sign or the Greek
#: mu, both in use)
OME_LENGTH_UNITS = {"Å": "angstrom", "nm": "nanometer", "µm": "micrometer", "μm": "micrometer",
                    "um": "micrometer", "micron": "micrometer", "mm": "millimeter",
                    "cm": "centimeter", "m": "meter", "in": "inch", "inch": "inch"}


def omero_channel(attributes: dict, names, shape: tuple, picked: dict) -> dict | None:
    """The channel of an array's omero block (its attributes') that a
    picture of one channel shows, in a level of `shape`: the one `picked`
    ({axis: the level's index}) on the axis named c where the level has
    every channel, or the only one where there is no c axis of more than
    one; None where there is none."""
    omero = attributes.get(OMERO_ATTRIBUTE)
    channels = omero.get("channels") if isinstance(omero, dict) else None
    if not isinstance(channels, list) or not channels:
        return None
    axis = names.index("c") if names and "c" in names else None
    if axis is not None and axis in picked and len(channels) == shape[axis]:
        channel = channels[picked[axis]]
    elif len(channels) == 1 and (axis is None or shape[axis] == 1):
        channel = channels[0]
    else:
        return None
    return channel if isinstance(channel, dict) else None


#: Each OME-Zarr length unit in metres (export's TIFF resolution tags)
LENGTH_IN_METRES = {"angstrom": 1e-10, "nanometer": 1e-9, "micrometer": 1e-6,
                    "millimeter": 1e-3, "centimeter": 1e-2, "meter": 1.0, "inch": 0.0254}


#: and its time units
_OME_UNITS = {**OME_LENGTH_UNITS, "µs": "microsecond", "ms": "millisecond", "s": "second",
              "min": "minute", "h": "hour", "d": "day"}
