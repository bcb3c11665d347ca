"""zarr v3 array-to-bytes codec.

    import zarr
    from progressive_j2k.zarr3 import ProgressiveJ2K
    z = zarr.create_array(store, shape=..., chunks=..., dtype="uint16",
                          serializer=ProgressiveJ2K(), compressors=None)

Registered under the name ``progressive_j2k`` through the ``zarr.codecs``
entry point, so ``zarr.open_array`` finds it without importing this package.
The chunk metadata stores the options with axes resolved (unless
``colour_axis`` is "auto", resolved per chunk shape); ``levels`` is
stored as given, ``null`` meaning the default for the chunk shape
(``min(6, ceil(log2(longest transformed chunk axis)))``); ``to_zarr`` always
writes the resolved number.
"""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, replace

import numpy as np

from progressive_j2k._optional import require_zarr

require_zarr("progressive_j2k.zarr3 (the zarr v3 codec)")
from zarr.abc.codec import ArrayBytesCodec  # noqa: E402 (zarr checked first)
from zarr.core.common import parse_named_configuration  # noqa: E402

from progressive_j2k import _api, _axes, _edges, _options  # noqa: E402

CODEC_NAME = "progressive_j2k"


def _native_dtype(dtype):
    """numpy's dtype of a zarr data type (zarr >= 3.1 wraps it)."""
    return dtype.to_native_dtype() if hasattr(dtype, "to_native_dtype") else np.dtype(dtype)


def _as_chunk(array, chunk_spec):
    """`array` as the chunk the decoder will be asked for (chunk_spec's shape
    and dtype).  A filter before this codec can hand it over in another
    shape or dtype of the same width without saying so (numcodecs' Delta
    flattens, BitRound returns integers, through zarr's wrappers); its
    decode reads back the bytes, so the chunk is coded as those bytes in
    the array's chunk shape and dtype, as zarr's bytes codec would store
    them.  Coded as handed over, such chunks were refused by every read."""
    shape, dtype = tuple(chunk_spec.shape), _native_dtype(chunk_spec.dtype)
    if array.shape == shape and array.dtype == dtype:
        return array
    if array.dtype.itemsize != dtype.itemsize or array.size != math.prod(shape):
        raise ValueError(
            f"{CODEC_NAME} was handed a chunk of shape {array.shape} and dtype {array.dtype} "
            f"for an array whose chunks are {shape} of {dtype}: a filter before it changed "
            f"the chunk's size (declare the filter's dtype, or drop the filter)")
    return np.ascontiguousarray(array).view(dtype).reshape(shape)


@dataclass(frozen=True)
class ProgressiveJ2K(ArrayBytesCodec):
    """Resolution-progressive wavelet codec as a zarr v3 serializer.

    Same options as :class:`progressive_j2k.ProgressiveJ2K` (the numcodecs
    codec).  ``colour_axis="auto"`` is stored as such and resolved from each
    chunk's shape and dtype (as are ``axes`` left as None with it), its
    colour transform kept where the chunk's channels share their detail
    (_axes.codec_colour_axis: else planes, along the same axes); with an
    explicit ``colour_axis``, ``axes`` left as None are resolved when the
    array is created and written to ``zarr.json``.  ``levels`` None means the
    default for the chunk shape.  ``step``
    None (lossy) means 1/256 of each chunk's value range.
    """

    is_fixed_size = False

    levels: int | None = None
    mode: str = "lossless"
    axes: tuple[int, ...] | None = None
    colour_axis: int | str | None = "auto"
    step: float | None = None
    tolerance: float | None = None
    ratio: float | None = None
    bits_per_sample: float | None = None
    psnr: float | None = None
    layers: int | tuple[float, ...] | None = None
    layer_metric: str = "ratio"
    rdo: bool | None = None
    nodata: float | None = None
    close_gaps: bool | None = None

    def __init__(self, *, levels=None, mode=None, axes=None, colour_axis="auto", step=None,
                 tolerance=None, ratio=None, bits_per_sample=None, psnr=None, layers=None,
                 layer_metric="ratio", rdo=None, nodata=None, reversible=None, close_gaps=None):
        # (reversible: the older spelling of mode, in arrays written before it)
        options = _options.normalise_options(
            levels=levels, mode=mode, axes=axes, colour_axis=colour_axis, step=step,
            tolerance=tolerance, ratio=ratio, bits_per_sample=bits_per_sample, psnr=psnr,
            layers=layers, layer_metric=layer_metric, rdo=rdo, nodata=nodata,
            reversible=reversible, close_gaps=close_gaps)
        for name, value in options.items():
            object.__setattr__(self, name, value)

    @property
    def options(self) -> dict:
        return {name: getattr(self, name) for name in _options.OPTION_NAMES}

    @classmethod
    def from_dict(cls, data):
        _, configuration = parse_named_configuration(data, CODEC_NAME,
                                                     require_configuration=False)
        # (reversible: mode's older spelling, in arrays written before it)
        unknown = sorted(set(configuration or {}) - {*_options.OPTION_NAMES, "reversible"})
        if unknown:   # (a newer release's option, or a hand edit)
            raise ValueError(f"the array's {CODEC_NAME} codec configuration holds options this "
                             f"release does not know: {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(map(repr, _options.OPTION_NAMES))})")
        return cls(**(configuration or {}))

    def to_dict(self):
        return {"name": CODEC_NAME, "configuration": _options.stored_options(self.options)}

    def evolve_from_array_spec(self, array_spec):
        # zarr hands the array shape here (the chunk shape only inside a
        # shard), so only the rank-dependent defaults are resolved; levels
        # None stays None: "the default for the chunk shape" (docs/FORMAT.md
        # rule, applied by the encoder and by open_multiscale alike).
        # colour_axis "auto" depends on the chunk shape (chunks may split
        # the channels), so it stays "auto", and the axes that follow from it
        # stay None, resolved alike per chunk and by open_multiscale.
        # The dtype and the options' axes against the rank are checked here
        # too: inside a shard zarr calls this, not validate, as the array
        # is created (an int64 array was refused only at its first write).
        dtype = _native_dtype(array_spec.dtype)
        _options.check_dtype(dtype, self.options)
        resolved = _options.resolve_options(self.options, array_spec.shape, dtype)
        if self.colour_axis == _axes.AUTO_COLOUR:
            return self
        return replace(self, axes=resolved["axes"], colour_axis=resolved["colour_axis"])

    def validate(self, *, shape, dtype, chunk_grid):
        _options.check_dtype(_native_dtype(dtype), self.options)
        chunk_shape = getattr(chunk_grid, "chunk_shape", None)
        if chunk_shape is not None:
            resolved = _options.resolve_options(self.options, chunk_shape, _native_dtype(dtype))
            _options.check_layout(chunk_shape, resolved)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        chunk = await asyncio.to_thread(_api.decode_chunk, chunk_bytes.as_array_like(),
                                        tuple(chunk_spec.shape), _native_dtype(chunk_spec.dtype))
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(chunk)

    async def _encode_single(self, chunk_array, chunk_spec):
        array = _as_chunk(chunk_array.as_ndarray_like(), chunk_spec)
        # axes and colour axis by the fixed rule on the chunk shape (or as
        # evolve_from_array_spec resolved them), never chosen from one
        # chunk's data: every chunk of an array has the same levels
        options = _options.resolve_options(self.options, array.shape, array.dtype)
        # zarr completes edge chunks (and chunks written in part) with the
        # array's fill value: coded as the data's continuation, restored on
        # decode, so that coarse levels do not blend it in (docs/DESIGN.md 58)
        fill_value = chunk_spec.fill_value

        def encode():   # (through a function of this module: a warning of encode() points here)
            # the colour transform only where the chunk's channels share
            # their detail, judged on its data (not zarr's padding)
            colour_axis = options["colour_axis"]
            extent = None if colour_axis is None else \
                _edges.fill_extent(array, fill_value, (colour_axis,))
            data = array if extent is None else array[tuple(slice(0, e) for e in extent)]
            colour_axis = _axes.codec_colour_axis(self.options, colour_axis, data)
            return _api.encode(array, fill_value=fill_value, **{**options, "colour_axis": colour_axis})

        encoded = await asyncio.to_thread(encode)
        return chunk_spec.prototype.buffer.from_bytes(encoded)

    def compute_encoded_size(self, input_byte_length, chunk_spec):
        raise NotImplementedError(f"{CODEC_NAME} has a data-dependent encoded size")
