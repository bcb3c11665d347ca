"""progressive_j2k: JPEG 2000-class wavelet compression for zarr, with
multiscale reads built into every chunk."""
from progressive_j2k._api import (
    DEFAULT_MAX_DECODED_BYTES, FIXED_HEADER_BYTES, MAX_HEADER_BYTES, Header, decode, encode,
    read_header)
from progressive_j2k.codec import ProgressiveJ2K
from progressive_j2k.convert import to_zarr
from progressive_j2k.export import export_jpeg2000
from progressive_j2k.multiscale import Level, level_nbytes, open_multiscale
from progressive_j2k.errors import (
    ChecksumError, CorruptDataError, DecodeError, MissingDependencyError, NonFiniteError,
    OutDtypeError, PSNRPeakWarning, PSNRTargetWarning, TooLargeError, TruncatedError,
    WholeChunkWarning)

__version__ = "0.1.0"
__all__ = [
    "ProgressiveJ2K", "encode", "decode", "read_header", "Header", "DecodeError",
    "TruncatedError", "ChecksumError", "CorruptDataError", "TooLargeError", "PSNRPeakWarning",
    "PSNRTargetWarning",
    "WholeChunkWarning", "MissingDependencyError", "NonFiniteError", "OutDtypeError",
    "open_multiscale", "Level", "level_nbytes", "to_zarr", "export_jpeg2000", "DEFAULT_MAX_DECODED_BYTES", "MAX_HEADER_BYTES", "FIXED_HEADER_BYTES", "__version__",
]
