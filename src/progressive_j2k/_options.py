"""The codecs' options: normalised from what users pass (the one place
both codec classes and encode() take them from), checked against a chunk's
dtype and shape, and completed with the defaults that follow from those."""
from __future__ import annotations

import inspect
import math
import numbers
import operator
import sys
from collections.abc import Mapping

import numpy as np

from progressive_j2k import _core
from progressive_j2k._axes import (AUTO_COLOUR, default_axes, default_levels, normalise_axis,
                                   resolve_colour_axis)
from progressive_j2k._dtypes import DTYPE_CODES, DTYPES

#: The coding modes (docs/FORMAT.md 1 gives each wavelet code's).
MODES = ("lossless", "lossy", "tolerance")


#: The codec options, in the order both codec classes list them.
OPTION_NAMES = ("levels", "mode", "axes", "colour_axis", "step", "tolerance", "ratio",
                "bits_per_sample", "psnr", "layers", "layer_metric", "rdo", "nodata",
                "close_gaps")
#: Options a stored configuration leaves out while unset, so that arrays
#: which do not use them stay readable by releases that predate them.
OMITTED_WHEN_UNSET = ("nodata", "close_gaps")


def stored_options(options: dict) -> dict:
    """Codec options as both codecs store them (JSON): lists for tuples,
    OMITTED_WHEN_UNSET left out while unset."""
    return {name: list(value) if isinstance(value, tuple) else value
            for name, value in options.items()
            if not (name in OMITTED_WHEN_UNSET and value is None)}
#: The lossy mode's knobs, of which a chunk takes one: each implies mode "lossy".
LOSSY_KNOBS = ("step", "ratio", "bits_per_sample", "psnr")
LAYER_METRICS = ("ratio", "psnr")


def check_option_names(options: dict, caller: str) -> None:
    """TypeError naming the caller for options the codecs do not have (not
    normalise_options, which the caller's keywords reach)."""
    known = inspect.signature(normalise_options).parameters
    unknown = [name for name in options if name not in known]
    if unknown:
        raise TypeError(f"{caller}() got an unexpected keyword argument {unknown[0]!r} "
                        f"(the codec's options: {', '.join(known)})")


def normalise_options(levels=None, mode=None, axes=None, colour_axis=AUTO_COLOUR, step=None,
                      tolerance=None, ratio=None, bits_per_sample=None, psnr=None, layers=None,
                      layer_metric="ratio", rdo=None, nodata=None, reversible=None,
                      close_gaps=None) -> dict:
    """Codec options in canonical types (shared by the numcodecs and zarr v3
    codecs), with the mode resolved: given, or implied by the knobs
    (``tolerance`` -> "tolerance", a lossy knob -> "lossy", else
    "lossless").  ``reversible`` is the older spelling (True: lossless, or
    the tolerance mode where ``tolerance`` is given; False: lossy), still
    read from stored configurations; the canonical options hold ``mode``."""
    options = dict(levels=_optional(levels, integer_option, "levels"), mode=None,
                   axes=_optional(axes, _axes_option, "axes"),
                   colour_axis=_normalise_colour_option(colour_axis),
                   step=_optional(step, _number, "step"),
                   tolerance=_optional(tolerance, _number, "tolerance"),
                   ratio=_optional(ratio, _number, "ratio"),
                   bits_per_sample=_optional(bits_per_sample, _number, "bits_per_sample"),
                   psnr=_optional(psnr, _number, "psnr"),
                   layers=_normalise_layers(layers, layer_metric),
                   layer_metric=str(layer_metric),
                   rdo=None if rdo is None else _as_bool(rdo, "rdo"),
                   nodata=_optional(nodata, _number, "nodata"),
                   # (True or unset: False is unset, which stored configurations leave out)
                   close_gaps=True if close_gaps is not None and _as_bool(
                       close_gaps, "close_gaps") else None)
    if options["levels"] is not None and not 0 <= options["levels"] <= _core.MAX_LEVELS:
        raise ValueError(f"levels must be in 0..{_core.MAX_LEVELS}, got {levels}")
    knobs = [k for k in LOSSY_KNOBS if options[k] is not None]
    if options["ratio"] is not None and not (options["ratio"] >= 1 and math.isfinite(ratio)):
        raise ValueError(f"ratio must be a number >= 1, got {ratio}")
    if options["bits_per_sample"] is not None and not (
            options["bits_per_sample"] > 0 and math.isfinite(options["bits_per_sample"])):
        raise ValueError(f"bits_per_sample must be a positive number, got {bits_per_sample}")
    if options["step"] is not None and not (options["step"] > 0 and math.isfinite(step)):
        # (no stored array has one: every encode refused it)
        raise ValueError(f"step must be a positive number, got {step}")
    if options["psnr"] is not None and not math.isfinite(options["psnr"]):
        raise ValueError(f"psnr must be a finite number of dB, got {psnr}")
    if len(knobs) > 1:
        raise ValueError(f"choose one of step, ratio, bits_per_sample and psnr, got "
                         f"{' and '.join(knobs)}")
    if options["tolerance"] is not None and not (
            options["tolerance"] > 0 and math.isfinite(options["tolerance"])):
        raise ValueError(f"tolerance must be a positive number, got {tolerance}")
    if options["tolerance"] is not None and not math.isfinite(2 * options["tolerance"]):
        # (the grid's spacing is about twice the tolerance)
        raise ValueError(f"tolerance must be at most {sys.float_info.max / 2:g}, got {tolerance}")
    mode = options["mode"] = _resolve_mode(mode, reversible, options["tolerance"], knobs)
    if mode == "tolerance":
        if options["tolerance"] is None:
            raise ValueError("mode 'tolerance' needs tolerance= (the error bound)")
        if knobs:
            raise ValueError(f"tolerance is a mode of its own: leave {knobs[0]} unset")
    elif mode == "lossless" and knobs:
        raise ValueError(f"{knobs[0]} applies to lossy coding only (mode='lossy')")
    if options["rdo"] is not None and mode != "lossy":
        raise ValueError(f"rdo applies to lossy coding only, not mode {mode!r}")
    if options["close_gaps"] and mode == "tolerance":
        raise ValueError("close_gaps applies to lossless streams (mode 'lossless', or what a "
                         "lossy target stores losslessly), not mode 'tolerance'")
    if options["nodata"] is not None and not math.isfinite(options["nodata"]):
        raise ValueError(f"nodata must be a finite number, got {nodata} (NaN cells are nodata "
                         f"where NaN is the fill value: encode's, to_zarr's or a zarr v3 "
                         f"array's; the numcodecs codec, which never sees the fill value, "
                         f"needs a finite nodata, e.g. -999, in place of NaN)")
    return options


def check_targets(options: dict) -> None:
    """PSNR targets are positive, and layer targets come before the whole
    chunk: coarser than its own target of the same kind (a layer at 10:1 in
    a chunk at 20:1 cannot be).  Checked by encode() (and to_zarr) only:
    configurations stored before these were checked must still open."""
    layers, metric = options["layers"], options["layer_metric"]
    psnrs = ([options["psnr"]] if options["psnr"] is not None else []) + (
        list(layers) if metric == "psnr" and isinstance(layers, tuple) else [])
    if any(p <= 0 for p in psnrs):
        raise ValueError(f"psnr targets must be positive numbers of dB, got {psnrs}")
    if not isinstance(layers, tuple):
        return
    if metric == "ratio" and options["ratio"] is not None and layers[-1] <= options["ratio"]:
        raise ValueError(f"layer ratios must be above the chunk's ratio {options['ratio']:g} "
                         f"(the last layer completes the chunk), got {layers}")
    if metric == "psnr" and options["psnr"] is not None and layers[-1] >= options["psnr"]:
        raise ValueError(f"layer PSNRs must be below the chunk's psnr {options['psnr']:g} "
                         f"(the last layer completes the chunk), got {layers}")


def _resolve_mode(mode, reversible, tolerance, knobs) -> str:
    """normalise_options' mode: given (and agreeing with ``reversible``, if
    that is given too), else from ``reversible``, else implied by the knobs."""
    if mode is not None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        mode = str(mode)
        if tolerance is not None and mode != "tolerance":
            raise ValueError(f"tolerance is a mode of its own (mode='tolerance'), not {mode!r}")
    if reversible is not None:
        # (JSON holds true or false; "false", NaN or [] would read as truth values)
        if not (isinstance(reversible, (bool, np.bool_)) or (
                isinstance(reversible, (int, np.integer)) and reversible in (0, 1))):
            raise TypeError(f"reversible must be True or False, got {reversible!r}")
        reversible = bool(reversible)
        # (a stored tolerance-mode configuration says reversible=True)
        said = "lossy" if not reversible else "tolerance" if tolerance is not None else "lossless"
        if mode is not None and mode != said:
            raise ValueError(f"mode {mode!r} and reversible={reversible} disagree")
        if not reversible and tolerance is not None:
            raise ValueError("tolerance is a mode of its own (mode='tolerance'), not lossy")
        return said
    if mode is not None:
        return mode
    return "tolerance" if tolerance is not None else "lossy" if knobs else "lossless"


def lossy_ratio(options: dict, dtype) -> float | None:
    """The compression ratio a rate target asks of a chunk of ``dtype``:
    ``ratio``, or ``bits_per_sample`` as the ratio of the dtype's bits to it
    (ValueError where that is above the dtype's bits); None without one."""
    bits = options["bits_per_sample"]
    if bits is None:
        return options["ratio"]
    dtype_bits = 8 * np.dtype(dtype).itemsize
    if bits > dtype_bits:
        raise ValueError(f"bits_per_sample must be at most {dtype_bits} for {np.dtype(dtype)} "
                         f"data, got {bits:g}")
    return dtype_bits / bits


def _normalise_colour_option(colour_axis):
    if colour_axis is None:
        return None
    if isinstance(colour_axis, str) and colour_axis == AUTO_COLOUR:
        return AUTO_COLOUR
    try:
        if isinstance(colour_axis, (bool, np.bool_)):
            raise TypeError
        return operator.index(colour_axis)
    except TypeError:
        raise TypeError(f"colour_axis must be an axis, {AUTO_COLOUR!r} or None, "
                        f"got {colour_axis!r}") from None


def _optional(value, convert, name: str):
    return None if value is None else convert(value, name)


def _number(value, name: str) -> float:
    """A real number (not a bool or a string, which JSON may hold by mistake;
    numpy scalars and 0-d arrays serve)."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:   # (an integer beyond float64)
        raise ValueError(f"{name} is beyond float64's range: an integer of "
                         f"{len(str(abs(int(value))))} digits") from None


def integer_option(value, name: str) -> int:
    """value as an int (anything with __index__ but bools); TypeError naming `name` otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None


def _axes_option(value, name: str) -> tuple:
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a list of axes, got {value!r}")
    return tuple(integer_option(a, name) for a in value)


def _as_bool(value, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True, False or None, got {value!r}")


def _normalise_layers(layers, metric):
    """None, a layer count 1..16 (1: None), or the targets of the layers
    before the last: ratios (non-increasing) or PSNRs (non-decreasing)."""
    if metric not in LAYER_METRICS:
        raise ValueError(f"layer_metric must be one of {LAYER_METRICS}, got {metric!r}")
    if layers is None:
        return None
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        if not 1 <= layers <= _core.MAX_LAYERS:
            raise ValueError(f"layers must be 1..{_core.MAX_LAYERS}, got {layers}")
        return None if layers == 1 else int(layers)
    if isinstance(layers, (str, bytes, bool, float, Mapping)):
        raise TypeError(f"layers must be a count or a list of numbers, got {layers!r}")
    try:
        targets = tuple(_number(t, "layers") for t in layers)
    except TypeError:
        raise TypeError(f"layers must be a count or a list of numbers, got {layers!r}") from None
    if not 1 <= len(targets) < _core.MAX_LAYERS:
        raise ValueError(f"give 1..{_core.MAX_LAYERS - 1} layer targets (the last layer completes "
                         f"the chunk), got {len(targets)}")
    if not all(math.isfinite(t) for t in targets):
        raise ValueError(f"layer targets must be finite, got {targets}")
    if metric == "ratio":
        if not all(t > 1 for t in targets) or list(targets) != sorted(targets, reverse=True):
            raise ValueError(f"layer ratios must be > 1 and non-increasing, got {targets}")
    elif list(targets) != sorted(targets):
        raise ValueError(f"layer PSNRs must be non-decreasing, got {targets}")
    return targets


def layer_count(options: dict) -> int:
    """Number of quality layers a chunk coded with these options has."""
    layers = options["layers"]
    return 1 if layers is None else layers if isinstance(layers, int) else len(layers) + 1


def resolve_options(options: dict, chunk_shape, dtype) -> dict:
    """Fill in the defaults that depend on the chunk shape and dtype (colour
    axis, axes, levels)."""
    ndim = len(chunk_shape)
    colour_axis = resolve_colour_axis(options, chunk_shape, dtype)
    axes = options["axes"]
    axes = default_axes(ndim, colour_axis) if axes is None else tuple(
        sorted(normalise_axis(a, ndim) for a in axes))
    levels = options["levels"]
    if levels is None:
        levels = default_levels(chunk_shape, axes)
    return {**options, "axes": axes, "colour_axis": colour_axis, "levels": levels}


def dtype_code(dtype) -> int:
    """The format's code for ``dtype`` (either byte order); TypeError for
    dtypes it has none for."""
    dtype = np.dtype(dtype)
    code = DTYPE_CODES.get(dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            f"unsupported dtype {dtype}; supported: {', '.join(str(d) for d in DTYPES)}")
    return code


def check_dtype(dtype, options: dict) -> int:
    """The format's code for ``dtype``; TypeError if the mode cannot code it."""
    dtype = np.dtype(dtype)
    code = dtype_code(dtype)
    if options["mode"] == "lossless" and dtype.kind == "f":
        raise TypeError(f"lossless coding needs integer data, got {dtype}; for floating point "
                        "use mode='lossy' (or a lossy knob: step, ratio, bits_per_sample, psnr) "
                        "or tolerance=")
    lossy_ratio(options, dtype)   # a bits_per_sample target the dtype can hold
    nodata_in(options.get("nodata"), dtype)
    return code


def nodata_in(nodata, dtype) -> float | None:
    """``nodata`` as the ``dtype`` value it names (None: none): integers
    as given, whole and in range; floats rounded to the dtype, as xarray and
    netCDF store a float32 variable's _FillValue (CF's 1e20 is
    1.0000000200408773e20 in float32), and refused where that overflows or
    turns a non-zero value into 0 (which would name every 0 of the data)."""
    if nodata is None:
        return None
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if nodata != math.floor(nodata) or not info.min <= nodata <= info.max:
            raise ValueError(f"nodata {nodata:g} is not a {dtype} value "
                             f"({info.min} to {info.max}, whole numbers)")
        return nodata
    with np.errstate(over="ignore"):
        value = dtype.type(nodata)
    if not np.isfinite(value):
        raise ValueError(f"nodata {nodata!r} is beyond the range of {dtype}")
    if value == 0 and nodata != 0:
        raise ValueError(f"nodata {nodata!r} is below the precision of {dtype} (it rounds to 0)")
    return float(value)


def check_layout(shape, options: dict) -> None:
    """Raise ValueError unless resolved options fit a chunk of this shape."""
    axes, colour_axis, levels = options["axes"], options["colour_axis"], options["levels"]
    if len(shape) > _core.MAX_NDIM:
        raise ValueError(f"at most {_core.MAX_NDIM} dimensions are supported, got {len(shape)}")
    if not shape:
        raise ValueError("0-d arrays (scalars) are not supported: a wavelet needs an axis to "
                         "transform (store the value in an array of shape (1,))")
    if colour_axis is not None and shape[colour_axis] != 3:
        # (the axis counted from the front: a negative one given is named so)
        raise ValueError(f"colour_axis {colour_axis} must have length 3, has {shape[colour_axis]} "
                         f"(shape {tuple(shape)})")
    if not axes:
        raise ValueError("at least one axis must be transformed")
    if len(set(axes)) != len(axes) or len(axes) > _core.MAX_AXES:
        raise ValueError(f"axes must be 1 to {_core.MAX_AXES} distinct axes, got {axes}")
    if colour_axis in axes:
        raise ValueError("the colour axis cannot also be a transformed axis")
    if not 0 <= levels <= _core.MAX_LEVELS:
        raise ValueError(f"levels must be in 0..{_core.MAX_LEVELS}, got {levels}")
