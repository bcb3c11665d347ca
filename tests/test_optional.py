"""Optional dependencies: a missing or too old one is named with the extra
that installs it, at the feature that needs it, and leaves nothing behind."""
import importlib.metadata
import sys
import types

import numpy as np
import pytest

import progressive_j2k as pj
from progressive_j2k._optional import require, require_zarr
from progressive_j2k.cli import main
from progressive_j2k.errors import MissingDependencyError


@pytest.fixture
def without(monkeypatch):
    """without(name): importing `name` (and its submodules) raises ImportError."""
    def hide(name):
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, key)
        monkeypatch.setitem(sys.modules, name, None)   # import of None raises ImportError
    return hide


def test_missing_module_names_the_extra(without):
    without("tqdm")
    with pytest.raises(MissingDependencyError,
                       match=r"to_zarr\(progress=True\) needs tqdm: pip install 'progressive_j2k\[cli\]'"):
        require("tqdm", "cli", "to_zarr(progress=True)")


def test_zarr_2_is_refused_by_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", types.SimpleNamespace(__version__="2.18.3"))
    with pytest.raises(MissingDependencyError, match=r"open_multiscale needs zarr>=3 \(found 2\.18\.3"):
        require_zarr("open_multiscale")
    # the v3 codec's module checks at import (zarr imports it through its entry point)
    monkeypatch.delitem(sys.modules, "progressive_j2k.zarr3", raising=False)
    with pytest.raises(MissingDependencyError, match=r"zarr v3 codec.*found 2\.18\.3"):
        import progressive_j2k.zarr3  # noqa: F401


def test_a_dependency_that_fails_inside_is_not_called_missing(monkeypatch, tmp_path):
    """An installed module whose own import fails (a broken install, a missing
    shared library, a bug) raises its own error, not 'pip install ...'."""
    (tmp_path / "brokenmod.py").write_text("import no_such_module_inside\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_module_inside") as info:
        require("brokenmod", "cli", "a feature")
    assert not isinstance(info.value, MissingDependencyError)


def test_features_without_zarr_say_so(without, tmp_path):
    without("zarr")
    with pytest.raises(MissingDependencyError, match=r"open_multiscale needs zarr: .*\[zarr\]"):
        pj.open_multiscale(str(tmp_path / "absent.zarr"))
    with pytest.raises(MissingDependencyError, match=r"to_zarr needs zarr"):
        pj.to_zarr(np.zeros((8, 8), np.uint8), str(tmp_path / "new.zarr"))
    # the codec itself needs no zarr
    a = np.arange(64, dtype=np.uint16).reshape(8, 8)
    np.testing.assert_array_equal(pj.decode(pj.encode(a)), a)


def test_urls_without_fsspec_or_aiohttp_name_the_http_extra(without, tmp_path):
    """A URL needs fsspec (and aiohttp for HTTP), which zarr imports only
    as it opens one: named with the [http] extra, before anything is
    opened or made; local paths and file:// URLs need neither."""
    without("aiohttp")
    with pytest.raises(MissingDependencyError,
                       match=r"open_multiscale over HTTPS needs aiohttp: .*\[http\]"):
        pj.open_multiscale("https://example.invalid/x.zarr")
    with pytest.raises(MissingDependencyError, match=r"to_zarr over HTTP needs aiohttp"):
        pj.to_zarr(np.zeros((8, 8), np.uint8), "http://example.invalid/new.zarr")
    without("fsspec")
    with pytest.raises(MissingDependencyError,
                       match=r"open_multiscale from a URL needs fsspec: .*\[http\]"):
        pj.open_multiscale("s3://bucket/x.zarr")
    pj.to_zarr(np.zeros((8, 8), np.uint8), str(tmp_path / "local.zarr"))
    assert pj.open_multiscale(str(tmp_path / "local.zarr"))[0].shape == (8, 8)


def test_cli_names_the_cli_extra(without, tmp_path, capsys):
    without("zarr")
    assert main(["info", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "progressive_j2k[cli]" in err and "Traceback" not in err


def test_to_zarr_checks_tqdm_before_creating_anything(without, tmp_path):
    without("tqdm")
    target = tmp_path / "out.zarr"
    with pytest.raises(MissingDependencyError, match="tqdm"):
        pj.to_zarr(np.zeros((8, 8), np.uint8), str(target), progress=True)
    assert not target.exists()


def test_version_matches_the_installed_metadata(capsys):
    assert pj.__version__ == importlib.metadata.version("progressive_j2k")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"progressive-j2k {pj.__version__}"
