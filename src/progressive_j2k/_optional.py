"""Optional dependencies, imported where a feature needs them: a missing (or
too old) one raises MissingDependencyError naming the extra that installs
it, not a traceback from deep inside the package.  A dependency that is
there but fails to import raises as it does (its own cause, not ours)."""
from __future__ import annotations

import importlib

from progressive_j2k.errors import MissingDependencyError

#: zarr 3 is the first with the codec and store APIs the package uses; it
#: needs Python 3.11 or later (the core codec runs on 3.10)
ZARR_MAJOR = 3


def require(module: str, extra: str, feature: str):
    """`module`, imported; if it is not installed, MissingDependencyError
    saying that `feature` needs it and which extra of this package installs
    it."""
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in (module, top):   # something it imports is missing: its problem
            raise
        raise MissingDependencyError(
            f"{feature} needs {top}: pip install 'progressive_j2k[{extra}]'") from exc


def require_zarr(feature: str):
    """zarr, at least version 3 (zarr 2 has no zarr.abc or array.metadata)."""
    zarr = require("zarr", "zarr", feature)
    version = str(getattr(zarr, "__version__", ""))
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = ZARR_MAJOR   # no or an unusual version string: let it try
    if major < ZARR_MAJOR:
        raise MissingDependencyError(
            f"{feature} needs zarr>={ZARR_MAJOR} (found {version}; zarr 3 needs Python 3.11 or "
            f"later): pip install 'progressive_j2k[zarr]'. The numcodecs codec works with zarr 2 "
            f"(zarr.create(..., compressor=ProgressiveJ2K())).")
    return zarr


#: URL schemes zarr opens through fsspec with a filesystem of fsspec's own
#: that needs another package (others, such as s3:// or gs://, name their
#: package in fsspec's own error).
_FSSPEC_SCHEMES = {"http": "aiohttp", "https": "aiohttp"}


def is_url(store) -> bool:
    """Whether `store` is a URL string (scheme://...; file:// too)."""
    return isinstance(store, str) and "://" in store


def require_url_support(store, feature: str) -> None:
    """Where `store` is a URL other than file://, the packages zarr needs to
    open it (fsspec; aiohttp for HTTP), or MissingDependencyError naming
    the extra that installs them."""
    if not is_url(store):
        return
    scheme = store.split("://", 1)[0].lower()
    if scheme == "file":
        return
    require("fsspec", "http", f"{feature} from a URL")
    if scheme in _FSSPEC_SCHEMES:
        require(_FSSPEC_SCHEMES[scheme], "http", f"{feature} over {scheme.upper()}")
