"""Command line: ``progressive-j2k convert | info | preview | export``."""
from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import math
import os
import re
import shutil
import signal
import sys
import threading
import warnings
from pathlib import Path

import numpy as np

from progressive_j2k import __version__
from progressive_j2k._optional import require
from progressive_j2k._guards import (consolidate_enclosing_groups, local_metadata,
                                     settle_zarr_writes, staging_beside, swap_in)
from progressive_j2k.errors import MissingDependencyError, WholeChunkWarning


def _ints(text):
    """--chunks, --shards, --axes: comma-separated integers."""
    try:
        return tuple(int(v) for v in text.split(",")) if text else None
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, "
                                         f"got {text!r}") from None


def _layers(text):
    """--layers: a count (2-16), or the targets of the layers before the
    last, comma-separated or with a decimal point (80,40 or 40.0; ratios, or
    PSNRs with --layer-metric psnr, where a single number is always a target)."""
    try:
        if "," in text or "." in text:
            return tuple(float(v) for v in text.split(",") if v)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or comma-separated targets, "
                                         f"got {text!r}") from None


def _colour_axis(text):
    """--colour-axis: an axis number, "auto" or "none"."""
    if text in ("auto", "none"):
        return None if text == "none" else text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an axis, auto or none, got {text!r}") from None


def _nodata(text):
    """--nodata: a number, or "none" (no nodata, whatever the input's
    _FillValue says)."""
    from progressive_j2k._inputs import NO_NODATA
    if text.strip().lower() == NO_NODATA:
        return NO_NODATA
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, nan or none, got {text!r}")
    return value


def _names(text):
    """--dimension-names: comma-separated names, each given once."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, each once, got "
                                         f"{text!r}")
    return names


def _is_nan(value) -> bool:
    """Whether `value` is a NaN number (a zarr array's fill value, say)."""
    try:
        return math.isnan(value)
    except TypeError:
        return False


def _picks(text):
    """--at: AXIS=INDEX pairs, comma-separated (0=90, z=90 or -3=10,1=-1):
    an axis by number or by the array's name for it."""
    def axis(name):
        name = name.strip()
        return int(name) if re.fullmatch(r"[+-]?\d+", name) else name

    try:
        pairs = [item.split("=") for item in text.split(",") if item]
        picks = tuple((axis(a), int(index)) for a, index in pairs)
    except ValueError:
        picks = ()
    if not picks or any(a == "" for a, _ in picks):
        raise argparse.ArgumentTypeError(f"expected AXIS=INDEX pairs (e.g. 0=90 or z=90), "
                                         f"got {text!r}")
    return picks


# the Python options' names in error messages, as the flags that set them
# (not inside quotes or paths: mode='lossy' is a value; only the first
# mention, as in "axes must be 1 to 3 distinct axes")
_OPTION_FLAGS = re.compile(r"(?<![\w'/.-])(step|ratio|bits_per_sample|psnr|tolerance|levels|axes|"
                           r"colour_axis|layers|layer_metric|rdo|nodata|close_gaps|chunks|shards)"
                           r"(?![\w'/])")


#: a Python spelling of a tuple option's value, e.g. "chunks=(1, 256, 256)"
_TUPLE_VALUE = re.compile(r"(?<![\w'/.-])(axes|chunks|shards)=\(([-\d, ]*)\)")


def _as_flags(message: str) -> str:
    # ("chunks=(1, 256, 256)" as the flag is typed: "--chunks 1,256,256")
    message = _TUPLE_VALUE.sub(
        lambda m: f"--{m.group(1)} " + ",".join(v.strip() for v in m.group(2).split(",") if v.strip()),
        message)
    seen = set()

    def flag(match):
        name = match.group(1)
        if name in seen:
            return name
        seen.add(name)
        return "--" + name.replace("_", "-")

    return _OPTION_FLAGS.sub(flag, message)


def convert(args):
    from progressive_j2k.errors import NonFiniteError
    try:
        _convert(args)
    except NonFiniteError as exc:   # (the encoder's advice is the Python API's)
        held = ", ".join([f"{exc.nan} NaN"] * bool(exc.nan) +
                         [f"{exc.inf} infinite"] * bool(exc.inf))
        raise ValueError(
            f"the input holds values the codec cannot take (found: {held})"
            + ("" if isinstance(args.nodata, float) or not exc.nan else
                         ". For masked cells give --nodata nan (NaN cells kept as NaN) or "
                         "--nodata VALUE (e.g. -999: NaN cells stored as it); either way they "
                         "decode exactly and stay out of every reduced level") +
            ("; replace infinite values in the input" if exc.inf else "")) from None
    except (ValueError, TypeError) as exc:
        # the package's own option checks raise these two exactly (their
        # subclasses, e.g. a JSON or decoding error of the input, say other
        # things): the same exception, its message in flags
        if type(exc) in (ValueError, TypeError) and len(exc.args) == 1 and isinstance(
                exc.args[0], str):
            exc.args = (_as_flags(exc.args[0]),)
        raise


#: output names convert refuses: files of other kinds
_FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy", ".jp2", ".j2k", ".j2c", ".jpc",
                  ".jph", ".jhc", ".npz")


def _convert(args):
    from progressive_j2k._guards import (refuse_a_v2_group, refuse_to_overwrite_input,
                                         warn_unnamed_in_a_dataset)
    from progressive_j2k._inputs import FILL_VALUE, NO_NODATA, input_nodata, open_input
    from progressive_j2k._xarray import MISSING_VALUE
    from progressive_j2k._options import dtype_code
    from progressive_j2k.convert import to_zarr
    if args.lossy and args.tolerance is not None:
        raise ValueError("--tolerance is a mode of its own: leave out --lossy")
    if args.overwrite:   # (a .npy, TIFF or JPEG 2000 input too)
        refuse_to_overwrite_input(args.input, args.output)
    if os.path.splitext(str(args.output))[1].lower() in _FILE_SUFFIXES:
        raise ValueError(f"convert writes a zarr array (a directory): name the output "
                         f"*.zarr, got {args.output} (export writes TIFF and JPEG 2000, "
                         f"preview PNG)")
    data, names, attributes = open_input(args.input, args.series)
    if args.dimension_names is not None:
        if len(args.dimension_names) != len(data.shape):
            raise ValueError(f"--dimension-names gives {len(args.dimension_names)} names, the "
                             f"input has {len(data.shape)} axes {tuple(data.shape)}")
        names = args.dimension_names
    # what to_zarr checks of the output's group, checked here too: --overwrite
    # writes it first beside the outermost group, where it is in none
    refuse_a_v2_group(args.output)
    knobs = (args.step, args.ratio, args.bits_per_sample, args.psnr)
    lossy = args.lossy or any(v is not None for v in knobs)
    dtype_code(data.dtype)   # (an unsupported dtype named before any mode advice)
    if _is_nan(args.nodata) and np.dtype(data.dtype).kind != "f":
        raise ValueError(f"--nodata nan needs float data (NaN cells), the input is {data.dtype}: "
                         f"give a value of it, e.g. --nodata -9999")
    if np.dtype(data.dtype).kind == "f" and not lossy and args.tolerance is None:
        raise ValueError(f"{data.dtype} data cannot be coded losslessly: give --lossy (or "
                         f"--ratio, --bits-per-sample, --psnr, --step) or --tolerance")
    if args.layer_metric == "psnr" and args.layers is None:   # (as the Python options take it)
        warnings.warn("--layer-metric psnr says how --layers are counted: without --layers it "
                      "changes nothing")
    layers = args.layers
    if args.layer_metric == "psnr" and isinstance(layers, int):   # a PSNR, not a count
        layers = (float(layers),)
    # a zarr input's mask value (xarray's _FillValue, or CF's missing_value) as nodata
    masks = [f"{name} {attributes[name]!r}" for name in (FILL_VALUE, MISSING_VALUE)
             if attributes.get(name) is not None]
    attributes, nodata, source = input_nodata(attributes, args.nodata, np.dtype(data.dtype))
    if source is not None:
        print(f"nodata {nodata:g}: the input's {source} (xarray's mask value)")
    elif args.nodata is NO_NODATA and masks:
        print(f"no nodata: cells of the input's {' and '.join(masks)} are data")
    # NaN as the mask (to_zarr's NaN fill value): asked for, or a float zarr
    # input's own fill value (xarray's default) where nothing else is the mask
    fill_value = None
    if nodata is not None and math.isnan(nodata):
        nodata, fill_value = None, math.nan
    elif (nodata is None and args.nodata is None and np.dtype(data.dtype).kind == "f"
          and _is_nan(getattr(data, "fill_value", None))):
        fill_value = math.nan
        print("NaN cells as nodata, kept as NaN: the input's fill value")
    options = dict(levels=args.levels, mode="lossy" if args.lossy else None,
                   axes=args.axes, colour_axis=args.colour_axis, step=args.step,
                   ratio=args.ratio, bits_per_sample=args.bits_per_sample, psnr=args.psnr,
                   tolerance=args.tolerance, nodata=nodata,
                   layers=layers, layer_metric=args.layer_metric, rdo=args.rdo,
                   close_gaps=args.close_gaps or None, fill_value=fill_value)
    metadata = local_metadata(args.output)
    staging = staging_beside(args.output, metadata) if args.overwrite else None
    if staging is not None:   # the old array stays until the new one is whole
        warn_unnamed_in_a_dataset(args.output, names, "give --dimension-names")
        _convert_staged(args, data, staging, metadata.parent, names, attributes, options)
        return
    before = _stat(metadata)
    existed = metadata is not None and metadata.parent.exists()
    # what the output directory holds is all this run's once it wrote zarr.json
    # there: it was empty (or absent), or overwrite deleted what was there
    ours = args.overwrite or not existed or (
        metadata.parent.is_dir() and not any(metadata.parent.iterdir()))
    try:
        z = to_zarr(data, args.output, chunks=args.chunks, shards=args.shards,
                    overwrite=args.overwrite, progress=not args.quiet, dimension_names=names,
                    attributes=attributes, **options)
    except BaseException:
        # an array this run created and did not finish is no conversion (where
        # nothing was created yet, what was there stays)
        if ours and _stat(metadata) not in (None, before):
            settle_zarr_writes()
            metadata.unlink(missing_ok=True)   # (first: its chunks alone are no array)
            shutil.rmtree(metadata.parent / "c", ignore_errors=True)
            if not existed:
                with contextlib.suppress(OSError):
                    metadata.parent.rmdir()
            print(f"{args.output}: the unfinished output was removed", file=sys.stderr)
        raise
    print(f"wrote {args.output}: shape {z.shape}, chunks {z.chunks}, dtype {z.dtype}")


def _convert_staged(args, data, staging: Path, target: Path, names, attributes, options):
    """convert --overwrite of a local array or group: written to `staging`,
    which then takes the place of `target`.  The old array is read, deleted
    and replaced only once the new one is whole: a failed or interrupted
    run leaves it as it was, and an input that aliases it (a URL served
    from it, a link) is read in full before it goes."""
    from progressive_j2k.convert import to_zarr
    try:
        z = to_zarr(data, str(staging), chunks=args.chunks, shards=args.shards,
                    progress=not args.quiet, dimension_names=names, attributes=attributes,
                    **options)
    except BaseException:
        settle_zarr_writes()
        written = any(staging.iterdir())   # (an option refused before writing: nothing)
        shutil.rmtree(staging, ignore_errors=True)
        if written:
            print(f"{args.output}: the unfinished output was removed; what was there is kept",
                  file=sys.stderr)
        raise
    try:
        replaced = swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        print(f"{args.output}: the new array could not take the old one's place, and was "
              f"removed; what was there is kept", file=sys.stderr)
        raise
    try:
        shutil.rmtree(replaced, ignore_errors=True)
    except BaseException:   # (interrupted: the new array is in place)
        print(f"{args.output}: written; the old array, being deleted, is left in {replaced}",
              file=sys.stderr)
        raise
    import zarr   # (the groups holding it list it as it now is)
    consolidate_enclosing_groups(zarr, target)
    print(f"wrote {args.output}: shape {z.shape}, chunks {z.chunks}, dtype {z.dtype}")


def _stat(path: Path | None):
    """(inode, size, mtime) of `path`, None where it does not exist."""
    if path is None:
        return None
    try:
        result = os.stat(path)
    except FileNotFoundError:
        return None
    return result.st_ino, result.st_size, result.st_mtime_ns


def info(args):
    from progressive_j2k.multiscale import (codec_options, open_multiscale, progressive_array,
                                            stored_headers)
    z = progressive_array(args.path)
    with warnings.catch_warnings():   # (said below, in the table's terms)
        warnings.simplefilter("ignore", WholeChunkWarning)
        levels = open_multiscale(z)
    reader, headers, count = stored_headers(z)
    options = codec_options(z)
    layers = min((h.layers for h in headers), default=1)

    def needed(k, j=None):   # bytes a reader of level k (layers 0..j) fetches
        if reader.layout.compressors:   # compressed again: whole chunks
            return sum(reader.stored_sizes.values())
        return sum(h.prefix_length(k, j) for h in headers)

    nbytes = [needed(k) for k in range(len(levels))]
    raw = z.nbytes
    inner = "" if z.name in (None, "/") else f" ({z.name.lstrip('/')})"   # found in a group
    print(f"{args.path}{inner}: shape {z.shape}, dtype {z.dtype}, chunks {z.chunks}"
          + (f", shards {z.shards}" if z.shards else ""))
    print(_describe_codec(options, headers, count))
    grid = math.prod(reader.layout.grid)
    stored = nbytes[0] + reader.layout.trailer * count   # (checksums after the codec)
    if count == grid:
        print(f"stored {stored} bytes of chunk data; raw {raw} bytes; "
              f"compression ratio {raw / max(stored, 1):.2f}")
    else:   # the chunks never written hold nothing: the ratio is the stored ones'
        written = count * math.prod(reader.layout.chunks) * z.dtype.itemsize
        ratio = f"{written / stored:.2f}" if count else "none"
        print(f"stored {stored} bytes of chunk data in {count} of {grid} chunks "
              f"(the rest unwritten: fill value); raw {raw} bytes; compression ratio of the "
              f"stored chunks {ratio}")
    if reader.layout.compressors:
        names = ", ".join(reader.layout.compressors)
        print(f"chunks compressed again after the codec ({names}): every level reads whole "
              f"chunks (write with compressors=None to read levels by prefix)")
    # layered arrays: also the bytes a reader of quality layers 0..j needs
    print("level  shape                chunks               bytes needed    % of level 0"
          + "".join(f"  layers 0..{j}" for j in range(layers - 1)))
    for k, (level, n) in enumerate(zip(levels, nbytes)):
        print(f"{level.level:5d}  {str(level.shape):20s} {str(level.chunks):20s} {n:12d}"
              f"    {100 * n / max(nbytes[0], 1):6.2f}"
              + "".join(f"  {needed(k, j):11d}" for j in range(layers - 1)))


def _describe_codec(options: dict, headers, count: int) -> str:
    """The codec's mode and knob as the array records them, and the modes
    its chunks were coded in (a lossy target may store a chunk losslessly
    where that is smaller): of `headers`, those of `count` stored chunks or
    of a sample of them."""
    knob = next(((k, options[k]) for k in ("ratio", "bits_per_sample", "psnr", "step",
                                            "tolerance") if options[k] is not None), None)
    setting = options["mode"] + ("" if knob is None else f", {knob[0]} {knob[1]:g}")
    if options["nodata"] is not None:
        setting += f", nodata {options['nodata']:g} kept exactly"
    if options["close_gaps"]:
        setting += ", value gaps closed"
    layers = options["layers"]
    if layers is not None:
        setting += f", layers {list(layers) if isinstance(layers, tuple) else layers}" + (
            f" ({options['layer_metric']})" if isinstance(layers, tuple) else "")
    counts = {}
    for h in headers:
        counts[h.mode] = counts.get(h.mode, 0) + 1
    coded = ", ".join(f"{n} {mode}" for mode, n in sorted(counts.items()))
    if len(headers) < count:   # (compressed again: each header costs a whole chunk)
        coded += f" in a sample of {len(headers)} of the {count} read whole"
    return (f"codec progressive_j2k: {setting}; levels {options['levels']}, axes "
            f"{options['axes']}; stored chunks: {coded or 'none'}")


#: The most memory a preview's picture may take (read, and scaled to 8 bits).
PREVIEW_MAX_BYTES = 1 << 30


def preview(args):
    imagecodecs = require("imagecodecs", "cli", "preview")
    from progressive_j2k._optional import local_if_file_url
    args.output = local_if_file_url(args.output)
    if os.path.splitext(args.output)[1].lower() != ".png":
        raise ValueError(f"preview writes PNG images: name the output *.png, got {args.output}")

    from progressive_j2k.export import _level_index, axis_names, level0_picks
    from progressive_j2k.multiscale import codec_options, open_multiscale, progressive_array
    array = progressive_array(args.path)
    try:
        levels = open_multiscale(array, layer=args.layer)
    except ValueError as exc:   # (named as the flag that set it)
        if args.layer is not None and str(exc).startswith("layer must be"):
            raise ValueError(f"--{exc}") from None
        raise
    if not 0 <= args.level < len(levels):
        raise ValueError(f"--level {args.level}: {args.path} has levels 0 to {len(levels) - 1}")
    level = levels[args.level]
    if level.ndim < 2:
        raise ValueError(f"preview writes an image: {args.path} is {level.ndim}-D "
                         f"(read its levels with progressive_j2k.open_multiscale)")
    # the image plane: the last two transformed axes that are not short
    # (bands coded in 3-D are; or else the last two axes), of those --at
    # leaves (--at y=100 on a volume shows z and x); a last axis of 3 or 4
    # outside it is RGB(A) as PNG takes it (16-bit and float: RGB of the
    # first three, a fourth being a band such as NIR, which as alpha washed
    # the picture out); every other axis (frames, bands, slices) at its
    # middle, or where --at says
    options = codec_options(array)
    picks = level0_picks([pair for picks in args.at or () for pair in picks], array.shape,
                         "--at", axis_names(array))
    # the colour axis as coded (channels first too), or a last axis of 3 or 4
    colour = options["colour_axis"]
    last = level.ndim - 1
    if colour is None and last not in options["axes"] and level.shape[last] in (3, 4):
        colour = last
    if colour in picks:   # one channel, in gray
        colour = None
    transformed = [a for a in options["axes"] if a not in picks]
    longest = max((array.shape[a] for a in transformed), default=0)
    axes = [a for a in transformed if 4 * array.shape[a] >= longest][-2:]
    if len(axes) < 2:
        free = [a for a in range(level.ndim) if a not in picks and a != colour]
        axes = sorted(set(axes) | set(free[-2:]))[-2:]
    if len(axes) < 2:
        raise ValueError(f"--at picks {len(picks)} of the {level.ndim} axes: the picture needs "
                         f"two left")
    # full-resolution indices, to the level's samples at or before them
    at = {a: _level_index(level, a, index, array.shape[a]) for a, index in picks.items()}
    key = tuple(slice(None) if a in axes or a == colour else at.get(a, level.shape[a] // 2)
                for a in range(level.ndim))
    pixels = math.prod(level.shape[a] for a in range(level.ndim) if a in axes or a == colour)
    # (read, then scaled to 8 bits through float64 unless already 8-bit)
    if pixels * (level.dtype.itemsize + (0 if level.dtype == np.uint8 else 16)) > PREVIEW_MAX_BYTES:
        raise ValueError(f"--level {args.level} is {' x '.join(str(level.shape[a]) for a in axes)} "
                         f"pixels, more than a preview reads ({PREVIEW_MAX_BYTES >> 30} GiB): "
                         f"choose a coarser level (up to {len(levels) - 1})")
    image = level[key]
    left_out = ""
    if colour is not None:   # to the end, where PNG wants it
        image = np.ascontiguousarray(np.moveaxis(image, sum(a in axes for a in range(colour)), -1))
        if image.shape[-1] == 4 and image.dtype != np.uint8:   # a band (NIR), not alpha
            image, left_out = image[..., :3], " (channel 3 left out: pick it with --at)"
    if image.dtype != np.uint8 or args.range is not None:
        picked = {a: k for a, k in enumerate(key) if isinstance(k, int)}
        # (as the dtype's value: a float32 array's 1e20 is 1.0000000200408773e20)
        nodata = None if options["nodata"] is None else image.dtype.type(options["nodata"])
        # a colour picture: each channel by its own window, where every one has one
        windows = [args.range] if args.range is not None else [
            _omero_window(array, level.shape, picked if colour is None else
                          {**picked, colour: c})
            for c in range(1 if colour is None else image.shape[-1])]   # (the channels shown)
        if None in windows:   # the values' range, nodata left out
            valid = image if nodata is None else image[image != nodata]
            windows = [(float(np.nanmin(valid)), float(np.nanmax(valid))) if valid.size
                       else (0.0, 1.0)]
        lo, hi = (np.array([w[i] for w in windows]) for i in (0, 1))
        scaled = np.clip((image.astype(float) - lo) / np.maximum(hi - lo, 1e-30) * 255, 0, 255)
        if nodata is not None:   # (black)
            scaled[image == nodata] = 0
        image = np.nan_to_num(scaled).astype(np.uint8)
    with open(args.output, "wb") as f:
        f.write(imagecodecs.png_encode(image))
    print(f"wrote {args.output}: level {args.level}, {image.shape}{left_out}")


def _display_range(text: str) -> tuple:
    """preview's --range LOW,HIGH."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (e.g. 250,300), "
                                         f"got {text!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise argparse.ArgumentTypeError(f"expected finite LOW < HIGH, got {text!r}")
    return low, high


def _omero_window(array, shape: tuple, picked: dict) -> tuple | None:
    """The display window (start, end) the array's omero block gives the
    channel a preview shows (`picked`: {axis: index} in a level of `shape`),
    None where it gives none."""
    from progressive_j2k._ome import omero_channel
    from progressive_j2k.export import axis_names
    channel = omero_channel(array.attrs.asdict(), axis_names(array), shape, picked)
    window = channel.get("window") if channel is not None else None
    start, end = (window.get("start"), window.get("end")) if isinstance(window, dict) else (0, 0)
    real = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in (start, end))
    return (float(start), float(end)) if real and end > start else None


def export(args):
    from progressive_j2k.export import axis_names, export_jpeg2000, level0_picks
    from progressive_j2k.multiscale import open_multiscale
    levels = open_multiscale(args.path)
    # (export's own check, with the flag's name)
    at = level0_picks([pair for picks in args.at or () for pair in picks], levels[0].shape,
                      "--at", axis_names(levels[0]))
    export_jpeg2000(levels, args.output, level=args.level, psnr=args.psnr, tile=args.tile,
                    at=at)
    print(f"wrote {args.output}: JPEG 2000 from level {args.level}, "
          + ("lossless" if args.psnr is None else f"lossy at {args.psnr:g} dB"))


#: options taking comma-separated integers, which may start with a minus
_INTEGER_LISTS = ("--axes", "--chunks", "--shards")


def _lists_joined(argv: list) -> list:
    """``--axes -2,-1`` as ``--axes=-2,-1``: argparse takes a value
    starting with a minus for an option unless it is one number."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--":   # (the rest are positional)
            return out + argv[i:]
        if argv[i] in _INTEGER_LISTS and i + 1 < len(argv) and \
                re.fullmatch(r"-\d+(,\s*-?\d+)*,?", argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="progressive-j2k", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("convert", help="TIFF, JPEG 2000, .npy or zarr/OME-Zarr level 0 -> "
                                       "progressive zarr v3")
    p.add_argument("input", help="a .tif/.tiff, .jp2/.j2k/.j2c/.jpc/.jhc, .npy, zarr array or OME-Zarr "
                                  "group (a zarr one may be a URL: http(s)://, s3://, ...)")
    p.add_argument("output")
    p.add_argument("--series", type=int,
                   help="TIFF: which of its images (series) to convert (default: the first, "
                        "warning where there are more)")
    p.add_argument("--chunks", type=_ints, help="comma-separated chunk shape (-1: an axis whole)")
    p.add_argument("--dimension-names", type=_names,
                   help="comma-separated names of the axes (e.g. time,lat,lon), as xarray "
                        "needs them (default: the input's, where it names them)")
    p.add_argument("--shards", type=_ints, help="comma-separated shard shape (optional)")
    p.add_argument("--levels", type=int)
    p.add_argument("--axes", type=_ints, help="comma-separated axes to transform (e.g. -2,-1)")
    p.add_argument("--colour-axis", type=_colour_axis, default="auto",
                   help="axis of length 3 to decorrelate as RGB, auto (default: the last "
                        "of an integer colour image) or none")
    p.add_argument("--lossy", action="store_true", help="9/7 lossy instead of lossless")
    p.add_argument("--step", type=float, help="lossy (implies --lossy): quantisation step in data units")
    p.add_argument("--ratio", type=float, help="lossy: make each chunk this many times smaller")
    p.add_argument("--bits-per-sample", type=float,
                   help="lossy: the same as a rate, coded bits per sample")
    p.add_argument("--psnr", type=float, help="lossy: the smallest chunks with this PSNR (dB)")
    p.add_argument("--tolerance", type=float, help="error-bounded: max |decoded - original|")
    p.add_argument("--nodata", type=_nodata,
                   help="a value that marks no data (e.g. -9999): kept exactly, and out of "
                        "reduced levels; nan: NaN cells, kept as NaN; a zarr input's _FillValue "
                        "or missing_value is taken where none is given (a float array's NaN "
                        "fill value: nan), 'none' takes no value (its cells are then data)")
    p.add_argument("--layers", type=_layers,
                   help="quality layers per resolution: a count (1-16), or the targets of "
                        "the layers before the last, comma-separated or with a decimal point "
                        "(ratios: 80,40,20 or 40.0; with --layer-metric psnr, PSNRs: 35,40 "
                        "or 38)")
    p.add_argument("--layer-metric", choices=("ratio", "psnr"), default="ratio",
                   help="what --layers targets are (default: ratio)")
    p.add_argument("--rdo", action=argparse.BooleanOptionalAction, default=None,
                   help="lossy: RD-optimised quantisation (default: on with --ratio/--psnr, "
                        "off with --step)")
    p.add_argument("--close-gaps", action="store_true",
                   help="lossless 8/16-bit chunks: close runs of unused values (e.g. a CT's "
                        "padding far from its data) before the transform: smaller, but reduced "
                        "levels average on the closed scale")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a zarr array or group at the output (a directory holding "
                        "other files is refused either way)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=convert)
    p = sub.add_parser("info", help="shape, chunks, levels and bytes per level")
    p.add_argument("path")
    p.set_defaults(run=info)
    p = sub.add_parser("preview", help="write one level as a PNG")
    p.add_argument("path")
    p.add_argument("--level", type=int, default=0)
    p.add_argument("--layer", type=int, help="read only quality layers 0..LAYER")
    p.add_argument("--at", type=_picks, action="append", metavar="AXIS=INDEX[,...]",
                   help="the slice, frame or band to show along axes outside the picture, as "
                        "full-resolution indices (default: the middle of each); an axis by "
                        "number or by the array's name for it (z=120), an index from the end "
                        "if negative (negative axes as --at=-3=10)")
    p.add_argument("--range", type=_display_range, metavar="LOW,HIGH",
                   help="the values shown as black and white (default: the omero window "
                        "convert kept, else the picture's range, nodata left out; a "
                        "negative LOW as --range=-5,5)")
    p.add_argument("-o", "--output", default="preview.png")
    p.set_defaults(run=preview)
    p = sub.add_parser("export", help="JPEG 2000 for other software: a pyramidal TIFF of "
                                      "JPEG 2000 tiles (.tif), or one level as .jp2/.j2k")
    p.add_argument("path")
    p.add_argument("output", help="*.tif or *.tiff (*.ome.tif: OME-TIFF), or *.jp2, *.j2k, *.j2c")
    p.add_argument("--level", type=int, default=0,
                   help="the finest level written (a .jp2/.j2k: the level written)")
    p.add_argument("--psnr", type=float, help="lossy, at this PSNR (dB; default: lossless)")
    p.add_argument("--tile", type=int, default=512, help="TIFF tile size (a multiple of 16, up to 4096)")
    p.add_argument("--at", type=_picks, action="append", metavar="AXIS=INDEX[,...]",
                   help="the plane of a stack (slice, frame, channel) to export, as "
                        "full-resolution indices along the axes outside the image; an axis by "
                        "number or by the array's name for it (z=120), an index from the end "
                        "if negative (negative axes as --at=-3=10)")
    p.set_defaults(run=export)
    args = parser.parse_args(_lists_joined(sys.argv[1:] if argv is None else argv))
    terminated = []

    def on_sigterm(signum, frame):   # as Ctrl-C: the clean-ups in finally blocks run
        terminated.append(signum)
        raise KeyboardInterrupt

    handles_signals = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_sigterm) if handles_signals else None
    formatwarning = warnings.formatwarning   # warnings as the errors are: one line, no source
    warnings.formatwarning = lambda message, category, *_, **__: (
        f"{parser.prog} {args.command}: {category.__name__}: {message}\n")
    abandoned_reads = False
    try:
        args.run(args)
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 128 + (terminated[0] if terminated else signal.SIGINT)
    except RuntimeError as exc:   # a codec's error reading convert's input (a damaged tile)
        if args.command != "convert" or type(exc).__module__.partition(".")[0] != "imagecodecs":
            raise
        print(f"{parser.prog} {args.command}: error: the input does not decode: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        abandoned_reads = True
        return 2
    except BrokenPipeError:   # the reader stopped early (| head): not an error
        sys.stderr.close()    # (and no second report when Python flushes stdout at exit)
        return 0
    except (ValueError, TypeError, OSError) as exc:   # bad input, not a bug: no traceback
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        # (a URL that failed, e.g. https:// to a plain server: its connection's
        # futures would be reported again as Python exits)
        abandoned_reads = isinstance(exc, OSError) and "zarr" in sys.modules
        return 2
    except MemoryError as exc:   # (numpy's names the allocation: chunks or a level too large)
        print(f"{parser.prog} {args.command}: error: out of memory: {exc or 'an allocation failed'}",
              file=sys.stderr)
        return 2
    except MissingDependencyError as exc:   # the command line's extra has them all
        hint = "" if "[cli]" in str(exc) or "progressive_j2k[" not in str(exc) else \
            " (the command line's dependencies: pip install 'progressive_j2k[cli]')"
        print(f"{parser.prog} {args.command}: error: {exc}{hint}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = formatwarning
        if abandoned_reads:
            _collect_abandoned_reads()
        if handles_signals:   # (None: a handler Python did not install; the default)
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
    return 0


def _collect_abandoned_reads() -> None:
    """Finish and collect zarr's reads of a TIFF's other tiles, left running
    by one that failed, or a failed URL's connection attempts, quietly: as
    Python exits each would be reported again (a pending task, a coroutine
    never awaited)."""
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            settle_zarr_writes()
            gc.collect()
    finally:
        asyncio_log.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
