"""Optional dependencies, imported where a feature needs them: a missing (or
too old) one raises MissingDependencyError naming the extra that installs
it, not a traceback from deep inside the package.  A dependency that is
there but fails to import raises as it does (its own cause, not ours)."""
from __future__ import annotations

import importlib
import os
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

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


def file_url_path(store) -> str | None:
    """The local path a file: URL names (file:///p, file://localhost/p or
    file:/p, %-escapes decoded), None for anything else; ValueError for a
    file URL naming another host."""
    if not isinstance(store, str) or store[:5].lower() != "file:":
        return None
    parts = urlparse(store)
    if parts.netloc.lower() not in ("", "localhost"):
        raise ValueError(f"{store}: a file URL on another host ({parts.netloc}); give a local "
                         f"path, or a URL the host serves")
    if parts.query or parts.fragment or store.endswith(("?", "#")):
        raise ValueError(f"{store}: a file URL with a query or fragment (? or #); give the "
                         f"path (%23 for a # in a name)")
    if not parts.path:
        raise ValueError(f"{store}: a file URL that names no path")
    if any(ord(c) < 32 or c == "\x7f" for c in store):   # (urlparse drops tabs and newlines)
        raise ValueError(f"{store!r}: a file URL with control characters; give the path")
    if os.name == "posix":   # %FF: the byte, as the filesystem names it
        return unquote(parts.path, errors="surrogateescape")
    return url2pathname(parts.path)


def local_if_file_url(store):
    """`store`, or the local path it names where it is a file: URL."""
    local = file_url_path(store)
    return store if local is None else local


def require_url_support(store, feature: str) -> None:
    """Where `store` is a URL other than file://, the packages zarr needs to
    open it (fsspec; aiohttp for HTTP; s3fs, gcsfs, ... as fsspec names
    them), or MissingDependencyError naming what installs them; ValueError
    for a scheme fsspec does not know."""
    if not is_url(store):
        return
    scheme = store.split("://", 1)[0].lower()
    if scheme == "file":
        return
    fsspec = require("fsspec", "http", f"{feature} from a URL")
    if "::" in scheme:   # a chained URL (simplecache::https://...): fsspec's to check
        return
    if scheme in _FSSPEC_SCHEMES:
        require(_FSSPEC_SCHEMES[scheme], "http", f"{feature} over {scheme.upper()}")
        return
    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError as exc:   # not one of this package's extras: named as fsspec names it
        missing = getattr(exc.__cause__, "name", None)   # (fsspec raises from the import's error)
        module = missing.split(".")[0] if missing else None
        if module is not None and module in str(exc):   # (its package has the module's name)
            raise MissingDependencyError(f"{feature} from {scheme}:// URLs needs {module} "
                                         f"({exc}): pip install {module}") from exc
        # (smb's module smbclient comes in smbprotocol: fsspec's words name it)
        raise MissingDependencyError(f"{feature} from {scheme}:// URLs needs what fsspec "
                                     f"names: {exc}" + (f" (no module {module})" if module
                                                        else "")) from exc
    except ValueError as exc:
        raise ValueError(f"{store}: fsspec knows no {scheme}:// filesystem") from exc


def zarr_store(store, feature: str):
    """`store` as zarr should be given it: a file: URL as its local path
    (zarr's fsspec store neither creates a new one's directory nor decodes
    %-escapes), another URL once require_url_support has passed it."""
    local = local_if_file_url(store)
    if local is not store:   # (a file URL: its path)
        return local
    require_url_support(store, feature)
    return store
