"""Exceptions raised for codestreams that cannot be decoded, the warnings of
the encoder, and the error for a missing optional dependency.

The decoding exceptions are ``ValueError`` subclasses, so ``except
ValueError`` catches every problem with the bytes themselves;
``MissingDependencyError`` is an ``ImportError``.
"""


class DecodeError(ValueError):
    """The bytes are not a valid progressive_j2k codestream."""


class TruncatedError(DecodeError):
    """The buffer is shorter than what was asked for; ``needed`` says how long it must be."""

    def __init__(self, message, needed=None):
        super().__init__(message)
        self.needed = needed


class ChecksumError(DecodeError):
    """A CRC-32C did not match: the bytes were corrupted."""


class CorruptDataError(DecodeError):
    """The entropy-coded data is inconsistent with the header."""


class TooLargeError(DecodeError):
    """Decoding would exceed the configured maximum decoded size."""


class NonFiniteError(ValueError):
    """NaN or infinite samples in a chunk whose mode needs finite ones (NaN
    named as nodata aside); ``nan`` and ``inf`` count them."""

    # (defaults: unpickling calls the class with the message alone, then
    # restores the counts; a process pool or dask worker re-raises it so)
    def __init__(self, message: str, nan: int = 0, inf: int = 0):
        super().__init__(message)
        self.nan, self.inf = nan, inf


class OutDtypeError(TypeError, ValueError):
    """decode's ``out`` of a dtype the chunk does not decode to (nor raw
    bytes): a TypeError, as numcodecs codecs raise for such buffers, and a
    ValueError, as releases before it raised."""


class MissingDependencyError(ImportError):
    """An optional dependency a feature needs is not installed (or too old);
    the message names the extra of this package that installs it."""


class PSNRPeakWarning(UserWarning):
    """A ``psnr`` target on integer data that fills a small part of its
    dtype's range: the PSNR's peak is the dtype's, so the errors it allows can
    be as large as the values."""


class PSNRTargetWarning(UserWarning):
    """A ``psnr`` target that no step reaches for a chunk (float values far
    from zero, whose detail lies below the precision lossy coding keeps at
    their magnitude): the chunk is coded as close to it as it comes, whose
    PSNR the warning's ``reached`` holds (its text is the same for every
    chunk of a target and dtype, so a write of many says it once)."""


class WholeChunkWarning(UserWarning):
    """open_multiscale on an array whose chunks are compressed again after
    progressive_j2k (e.g. zarr.create_array's default zstd): its levels are
    read as whole chunks, not by prefix."""
