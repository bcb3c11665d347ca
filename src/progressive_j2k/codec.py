"""numcodecs codec: ``ProgressiveJ2K``, usable as a zarr v2 compressor."""
from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_ndarray

from progressive_j2k import _api, _axes, _options
from progressive_j2k.errors import NonFiniteError


class ProgressiveJ2K(Codec):
    """Resolution-progressive wavelet codec (lossless 5/3 / 9/7-M or lossy 9/7).

    Every encoded chunk can be decoded at 1/2, 1/4, ... of its resolution from
    a prefix of its bytes (``progressive_j2k.decode(buf, level=k)``).

    Like other numcodecs codecs it preserves the memory layout: a
    Fortran-ordered array is coded as its C-ordered transpose, so ``decode``
    returns the same bytes with the reversed shape, and fills a
    Fortran-ordered ``out=`` in its memory order (what zarr v2's
    ``order="F"`` expects).

    For zarr v3 arrays use ``progressive_j2k.zarr3.ProgressiveJ2K`` (same
    name and options) as the ``serializer``: zarr v3 refuses this class
    there ("Expected an ArrayBytesCodec").

    Parameters
    ----------
    levels : int, optional
        Decomposition levels; default enough to bring the longest transformed
        axis to one sample, at most 6.
    mode : {"lossless", "lossy", "tolerance"}, optional
        "lossless": integer wavelet (5/3, or 9/7-M at the finest level where
        the encoder estimates it smaller), bit-exact; "lossy": 9/7;
        "tolerance": error-bounded.  Default: implied by the knobs below
        (``tolerance`` -> "tolerance", ``step``, ``ratio``,
        ``bits_per_sample`` or ``psnr`` -> "lossy", none -> "lossless"), so
        ``ProgressiveJ2K(ratio=20)`` is lossy.
    axes : sequence of int, optional
        Axes to transform (1 to 3); default the last three that are not the
        colour axis.  Other axes are coded as independent planes.
    colour_axis : int, "auto" or None
        An axis of length 3 (RGB) decorrelated by a colour transform first.
        "auto" (default): the last axis where chunks look like integer
        colour images (three or more dimensions, the last of length 3 after
        two longer ones, not among the given ``axes``), transformed where
        the chunk's three channels share their detail, else coded as
        planes along the same axes; None: none (the default axes then take
        the channel axis in: ``axes=(0, 1)`` keeps the channels apart).
    step : float, optional
        Lossy: quantisation step in data units; default 1/256 of each
        chunk's value range.
    tolerance : float, optional
        Error-bounded mode: every decoded sample is within ``tolerance`` of
        the original (any dtype, floats included; NaN/inf are refused).
    ratio, bits_per_sample, psnr : float, optional
        Lossy targets instead of ``step``: ``ratio`` times smaller than raw
        (within 5%), the same as coded bits per sample (the dtype's bits /
        ratio), or the smallest chunk with at least ``psnr`` dB.
    layers : int or list of float, optional
        Quality layers within each resolution: a count, or the compression
        ratios (or with ``layer_metric="psnr"`` the PSNRs) of the layers
        before the last, which completes the chunk.  See ``encode``.
    layer_metric : {"ratio", "psnr"}
        What the ``layers`` targets are.
    rdo : bool, optional
        Lossy only: rate-distortion optimised quantisation; default on with
        ``ratio`` and ``psnr``, off with a given or the default ``step``.
        See ``encode``.
    nodata : float, optional
        A value that marks no data (e.g. the array's fill_value, or
        xarray's ``_FillValue``), in any mode: it decodes exactly, and
        reduced levels keep it out of the data.  See ``encode``.
    reversible : bool, optional
        The older spelling of ``mode`` (True: lossless, or tolerance with
        ``tolerance``; False: lossy), read from stored configurations.
    close_gaps : bool, optional
        Lossless streams of 8- and 16-bit integers: close the runs of values
        no sample takes (a padding value far from the data) before the
        transform.  See ``encode``.
    """

    codec_id = "progressive_j2k"

    def __init__(self, levels=None, mode=None, axes=None, colour_axis="auto", step=None,
                 tolerance=None, ratio=None, bits_per_sample=None, psnr=None, layers=None,
                 layer_metric="ratio", rdo=None, nodata=None, reversible=None, close_gaps=None):
        self.__dict__.update(
            _options.normalise_options(levels=levels, mode=mode, axes=axes, colour_axis=colour_axis,
                                   step=step, tolerance=tolerance, ratio=ratio,
                                   bits_per_sample=bits_per_sample, psnr=psnr, layers=layers,
                                   layer_metric=layer_metric, rdo=rdo, nodata=nodata,
                                   reversible=reversible, close_gaps=close_gaps))

    def _options(self):
        return {name: getattr(self, name) for name in _options.OPTION_NAMES}

    def encode(self, buf):
        arr = ensure_ndarray(buf)
        if _api.is_big_endian(arr.dtype):
            # zarr v2 reads the decoded bytes as the array's dtype, and
            # decoded chunks are little-endian: refuse rather than swap bytes
            little = arr.dtype.newbyteorder("<").str
            raise TypeError(f"ProgressiveJ2K stores little-endian data, got big-endian "
                            f"{arr.dtype.str} (FITS, say): convert it with "
                            f"arr.astype({little!r}), or create a zarr v2 array with "
                            f"dtype={little!r}")
        # axes by the fixed rule, not chosen from each chunk's data: every
        # chunk of an array then has the same levels (open_multiscale)
        options = resolved = _options.resolve_options(self._options(), arr.shape, arr.dtype)
        _options.check_layout(arr.shape, resolved)   # (before any transpose: the user's axes)
        # (the colour transform only where the chunk's channels share their detail)
        options = resolved = {**resolved, "colour_axis": _axes.codec_colour_axis(
            self._options(), resolved["colour_axis"], arr)}
        # decode() bounds its memory by default, and zarr v2 gives this codec
        # no chunk shape to trust a header against: a chunk it would refuse
        # to read back is refused now, not after it is written
        _api.check_decodable(arr.shape, arr.dtype, resolved,
                             "which the zarr v2 codec keeps (it is given no chunk shape to check "
                             "a header against): use smaller chunks, or the zarr v3 codec")
        if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous:
            # Like other numcodecs codecs this one keeps the memory layout
            # (zarr v2 with order="F" relies on it): code the C-ordered
            # transpose, with the axis options mapped onto it.
            flip = arr.ndim - 1
            options = {**resolved, "axes": tuple(flip - a for a in resolved["axes"]),
                       "colour_axis": None if resolved["colour_axis"] is None
                       else flip - resolved["colour_axis"]}
            arr = arr.T
        try:
            return _api.encode(arr, **options)
        except NonFiniteError as exc:
            raise NonFiniteError(
                f"{exc} (not with this codec, which never sees the zarr array's fill value: "
                f"zarr completes a partly written chunk with it, so give a float array a "
                f"finite one, write whole chunks, and name masked cells as nodata=)",
                exc.nan, exc.inf) from None

    def decode(self, buf, out=None):
        if isinstance(out, np.ndarray) and out.ndim > 1 and out.flags.f_contiguous and not (
                out.flags.c_contiguous):
            # memory in its own order, as encode() keeps it: zarr-python 2
            # decodes an order="F" chunk into an F-contiguous array
            _api.decode(buf, out=out.T)
            return out
        return _api.decode(buf, out=out)

    def get_config(self):
        return {"id": self.codec_id, **_options.stored_options(self._options())}

    def __repr__(self):
        defaults = _options.normalise_options()
        options = ", ".join(f"{k}={v!r}" for k, v in self._options().items() if v != defaults[k])
        return f"{type(self).__name__}({options})"
