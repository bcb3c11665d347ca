"""Where a conversion's input and output keep their data, and the refusals
that protect them: an output that would delete its input, a directory that
holds no zarr array or group, an array or group already there; and an
overwrite that keeps the old array until the new one is whole."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import types
import warnings
from pathlib import Path, PurePosixPath

import numpy as np

from progressive_j2k._optional import local_if_file_url


#: The most entries of a group's consolidated metadata that are written
#: indented, as zarr writes them
INDENTED_ENTRIES = 64

#: _places' "where" for the local filesystem (compared by identity, as stores are)
_LOCAL = "local"


def _places(thing) -> list:
    """Where `thing` keeps its data, as (where, path) pairs: a local path,
    file:// URL, LocalStore or local FsspecStore, or a zarr array, group,
    StorePath or level view in one, as (_LOCAL, its resolved path); one in
    another store as (that store's dict or the store, its path in it); a
    dask array: its zarr sources' places (zarr arrays and level views, as
    Level.to_dask makes).  Nothing for a remote URL."""
    graph = thing.__dask_graph__() if hasattr(thing, "__dask_graph__") else None
    if graph is not None:
        # the arrays a dask array reads: from_zarr and from_array keep them in
        # a materialized layer, or (inline_array=True) as a blockwise layer's
        # literal argument; an optimised graph, or dask-expr's, holds them in
        # its tasks; other layers are not materialized (seconds for 10**5
        # chunks)
        nodes = _one_task_per_name(graph) if not hasattr(graph, "layers") else []
        if hasattr(graph, "layers"):
            from dask.blockwise import Blockwise
            from dask.highlevelgraph import MaterializedLayer
            for layer in graph.layers.values():
                if isinstance(layer, MaterializedLayer):
                    nodes.extend(_one_task_per_name(layer))
                elif isinstance(layer, Blockwise):
                    nodes.extend(value for value, index in layer.indices if index is None)
        sources = {id(source): source for node in nodes for source in _graph_sources(node)}
        return [p for source in sources.values() for p in _places(source)]
    reader = getattr(thing, "_reader", None)   # a multiscale Level
    store_path = getattr(thing, "store_path", None) or (   # an Array, Group or StorePath
        thing if hasattr(thing, "store") and hasattr(thing, "path") else None)
    store, path = ((reader.store, reader.path) if reader is not None else
                   (store_path.store, store_path.path) if store_path is not None else (thing, ""))
    if isinstance(store, (str, os.PathLike)):
        name = os.fspath(local_if_file_url(store))
        return [] if "://" in name else [(_LOCAL, (Path(name) / path).resolve())]
    root = getattr(store, "root", None)   # LocalStore
    if isinstance(root, Path):
        return [(_LOCAL, (root / path).resolve())]
    fs = getattr(store, "fs", None)   # FsspecStore
    if fs is not None and "file" in (getattr(fs, "protocol", None) or ()):
        return [(_LOCAL, (Path(store.path) / path).resolve())]
    # in memory: MemoryStores over one dict are one place
    return [(getattr(store, "_store_dict", store), PurePosixPath("/", path))]


#: What _graph_sources looks into, in dask's and xarray's own objects: a
#: task's arguments, a data node's value, and what lazy wrappers (xarray's
#: backend arrays and indexing adapters) hold
_HOLDERS = ("args", "kwargs", "value", "array", "_array")


#: What _graph_sources does not look into
_LEAVES = (str, bytes, int, float, slice, np.ndarray, np.generic, types.FunctionType,
           types.BuiltinFunctionType)


def _one_task_per_name(mapping) -> list:
    """A dask graph's (or layer's) tasks, the first and last of each output
    name: the chunks of one name come from one operation, mostly on the same
    sources (10**5 chunks' tasks searched whole take seconds).  An optimised
    graph that fuses a concatenation of three or more arrays into one name
    can hold a source in its middle tasks only: not seen."""
    first, last = {}, {}
    for key, task in mapping.items():
        name = key[0] if isinstance(key, tuple) and key else key
        first.setdefault(name, task)
        last[name] = task
    return list(first.values()) + [task for name, task in last.items() if task is not first[name]]


def _graph_sources(node, depth: int = 8) -> list:
    """The zarr arrays and level views a dask graph node reads: the node
    itself, or one within its task's arguments (old-style tuples, or Task
    and DataNode objects) or a lazy wrapper around it, such as xarray's
    open_zarr makes (up to `depth` steps in)."""
    import zarr
    from progressive_j2k.multiscale import Level   # (zarr is optional: imported here)
    if isinstance(node, (zarr.Array, Level)):
        return [node]
    if depth == 0 or node is None or isinstance(node, _LEAVES):
        return []
    if isinstance(node, (tuple, list)):
        children = node
    elif isinstance(node, dict):
        children = node.values()
    elif type(node).__module__.startswith(("dask.", "xarray.")):
        children = [getattr(node, name, None) for name in _HOLDERS]
    else:
        return []
    return [found for child in children for found in _graph_sources(child, depth - 1)]


#: The files that make a directory a zarr array or group (v3, v2)
ZARR_METADATA = ("zarr.json", ".zarray", ".zgroup")


def local_path(output) -> Path | None:
    """Where `output` (a path, file:// URL or local store) lies on the local
    filesystem, None for another store or a URL."""
    places = _places(output)
    return places[0][1] if places and places[0][0] is _LOCAL else None


def refuse_foreign_directory(output, overwrite: bool) -> None:
    """FileExistsError where `output` is a local directory holding files but
    no zarr array or group (zarr would write beside them, or with overwrite
    delete them all), or, without overwrite, a zarr v2 array or group (zarr
    3 looks for its own format's there, and would write beside it)."""
    path = local_path(output)
    if path is None or not path.is_dir() or not any(path.iterdir()):
        return
    if not any((path / name).exists() for name in ZARR_METADATA):
        raise FileExistsError(f"{output}: a directory that holds no zarr array or group "
                              f"(it is not empty); write to a new or empty one")
    if not overwrite and not (path / "zarr.json").exists():
        raise _already_there(output, "(v2) ")


def _already_there(output, kind: str = "") -> FileExistsError:
    """The refusal of an output that holds a zarr array or group, without overwrite."""
    return FileExistsError(f"{output}: a zarr {kind}array or group is already there; pass "
                           f"overwrite=True (command line: --overwrite) to replace it")


def refuse_to_overwrite_input(data, output) -> None:
    """ValueError where writing `output` with overwrite would delete `data`
    (a path, or an array read from one or from a store) before it is read:
    the same place, or one holding it."""
    for source in _places(data):
        for target in _places(output):
            if source[0] is target[0] and (source[1] == target[1]
                                           or target[1] in source[1].parents):
                raise ValueError(f"{output}: overwriting it would delete the input being "
                                 f"converted ({source[1]}) before it is read; write "
                                 f"elsewhere, then move it")


def staging_beside(output, metadata: Path | None) -> Path | None:
    """Where an overwrite of a local zarr array or group (to_zarr's,
    convert's) writes first: a new hidden directory beside it, or beside the
    outermost zarr group holding it (where zarr would list it as a member);
    the same filesystem, so renames swap them (swap_in).  None where there
    is nothing to keep or the directory cannot be made (zarr then
    overwrites in place).  A directory holding no zarr array or group is
    refused first.  `metadata`: local_metadata(output)."""
    if metadata is None or not metadata.parent.is_dir() or not any(metadata.parent.iterdir()):
        return None
    refuse_foreign_directory(output, True)
    target = metadata.parent
    place = target.parent
    while any((place / name).exists() for name in ZARR_METADATA):
        if place.parent == place:
            return None
        place = place.parent
    try:
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".converting", dir=place))
    except OSError:
        return None


def swap_in(new: Path, target: Path) -> Path:
    """`new` (a directory) in `target`'s place, with its permissions (mkdtemp
    makes 0700); returns where the old one now is, to delete.  Where this
    fails or is interrupted part-way, `target` is as it was (the old one
    put back)."""
    with contextlib.suppress(OSError):
        shutil.copymode(target, new)
    replaced = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".replaced",
                                     dir=new.parent))
    try:
        os.replace(target, replaced)   # (onto the empty directory mkdtemp made)
        try:
            os.replace(new, target)
        except BaseException:
            os.replace(replaced, target)
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            replaced.rmdir()
        raise
    return replaced


def zarr_tasks():
    """The tasks zarr's event loop runs now (weakly held): settle_zarr_writes
    leaves them to the calls that made them."""
    import asyncio
    import weakref

    from zarr.core.sync import sync

    async def running():
        return weakref.WeakSet(t for t in asyncio.all_tasks() if t is not asyncio.current_task())

    return sync(running())


def settle_zarr_writes(timeout: float = 60.0, before=()) -> None:
    """Wait for the tasks zarr's event loop still runs: a read or write call
    that failed, or was interrupted, leaves its other reads and writes going
    (writes would put chunks back after the unfinished output is removed);
    their errors are taken, as the call that made them cannot.  Tasks in
    `before` (zarr_tasks() as the call began: other threads' reads and
    writes) are not waited for: a failed write once waited up to a minute
    for another thread's slow reads."""
    import asyncio

    from zarr.core.sync import sync

    async def settled():
        others = [t for t in asyncio.all_tasks()
                  if t is not asyncio.current_task() and t not in before]
        if others:
            await asyncio.wait(others, timeout=timeout)
        for task in others:
            if task.done() and not task.cancelled():
                task.exception()

    sync(settled())


def enclosing_groups(output) -> list:
    """(directory, zarr format, whether it holds consolidated metadata) of
    each local zarr group that holds `output`, nearest first, up to the
    first directory that is none (xarray's Dataset is such a group, its
    variables arrays in it)."""
    path = local_path(output)
    groups = []
    here = None if path is None else path.absolute().parent
    while here is not None:
        if (here / ".zgroup").is_file():
            groups.append((here, 2, (here / ".zmetadata").is_file()))
        else:
            try:
                meta = json.loads((here / "zarr.json").read_text())
            except (OSError, ValueError):
                break
            if not isinstance(meta, dict) or meta.get("node_type") != "group":
                break
            groups.append((here, 3, meta.get("consolidated_metadata") is not None))
        here = here.parent if here.parent != here else None
    return groups


def refuse_a_v2_group(output) -> None:
    """ValueError where `output` lies in a zarr v2 group: a zarr v3 array
    there is one that zarr v2 readers, and xarray opening the group, never
    see."""
    groups = enclosing_groups(output)
    if groups and groups[0][1] == 2:
        raise ValueError(f"{output}: its group {groups[0][0]} is zarr v2, and a zarr v3 array "
                         f"(what to_zarr and convert write) in it is one that xarray and zarr "
                         f"v2 readers of the group never see; write into a zarr v3 group")


def consolidate_enclosing_groups(zarr, output) -> None:
    """Bring up to date the consolidated metadata of the local groups
    holding `output` that have it (xarray writes it by default and reads it
    first): else they would list the array as it was, or not at all.  A
    zarr v3 group's entry for the array is replaced by the array's own
    metadata, as zarr.consolidate_metadata writes it, without listing the
    group again: that cost grew with the group, and writing N variables one
    by one took O(N**2) (200 arrays: 14 s, against 1.2 s for zarr alone)."""
    path = local_path(output)
    try:
        own = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        own = None
    for directory, version, consolidated in enclosing_groups(output):
        if consolidated:
            try:
                if version == 3 and isinstance(own, dict) and _replace_consolidated_entry(
                        directory, PurePosixPath(*path.absolute().relative_to(directory).parts),
                        own):
                    continue
                with warnings.catch_warnings():   # (zarr: "not part of the v3 specification")
                    warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
                    zarr.consolidate_metadata(str(directory))
            except Exception as exc:   # (the array is whole: a neighbour's metadata failed)
                warnings.warn(f"{output} is written, but the consolidated metadata of the group "
                              f"{directory} could not be written again ({type(exc).__name__}: "
                              f"{exc}): readers of it (xarray, by default) list the group as it "
                              f"was; mend the group, then zarr.consolidate_metadata", stacklevel=3)


def _replace_consolidated_entry(group: Path, key: PurePosixPath, metadata: dict) -> bool:
    """Set the entry `key` of a zarr v3 group's inline consolidated metadata
    to an array's `metadata` (its zarr.json), entries in zarr's order, and
    write the group's zarr.json again whole (a new file renamed over it):
    False where the group holds no such block (then consolidate it whole)."""
    target = group / "zarr.json"
    document = json.loads(target.read_text(encoding="utf-8"))
    block = document.get("consolidated_metadata") if isinstance(document, dict) else None
    if not (isinstance(block, dict) and block.get("kind") == "inline"
            and isinstance(block.get("metadata"), dict)):
        return False
    # members under the key (an array written over a group), or a group on
    # the way to it that the block does not list (made since): the listing
    # itself changed, so the group is consolidated whole
    listed, name = block["metadata"], str(key)
    if any(other.startswith(name + "/") for other in listed) or any(
            str(parent) not in listed for parent in key.parents if str(parent) != "."):
        return False
    block["metadata"] = dict(sorted({**listed, name: metadata}.items(),
                                    key=lambda item: (item[0].count("/"), item[0])))
    # (indented as zarr writes it; compact in large groups, where json's
    # indenting encoder, pure Python, took 23 ms for 200 arrays)
    indent = 2 if len(block["metadata"]) <= INDENTED_ENTRIES else None
    handle, staged = tempfile.mkstemp(prefix=".zarr.json.", dir=group)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(json.dumps(document, indent=indent))
        os.chmod(staged, target.stat().st_mode & 0o7777)
        os.replace(staged, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    return True


def warn_unnamed_in_a_dataset(output, dimension_names, remedy: str) -> None:
    """A warning where an array without dimension names goes into a group
    whose other arrays name theirs (in_an_xarray_dataset)."""
    if dimension_names is None and in_an_xarray_dataset(output):
        warnings.warn(f"{output}: the group's other arrays name their dimensions, as xarray's "
                      f"do, and xarray opens no group with an array that does not: {remedy}",
                      stacklevel=3)


def in_an_xarray_dataset(output) -> bool:
    """Whether `output` lies in a local zarr v3 group whose other arrays
    name their dimensions, as xarray's do: xarray opens no such group with
    an array that does not."""
    groups = enclosing_groups(output)
    if not groups or groups[0][1] != 3:
        return False
    own = local_path(output).absolute()
    for child in groups[0][0].iterdir():
        if child == own:
            continue
        try:
            meta = json.loads((child / "zarr.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("node_type") == "array" and meta.get(
                "dimension_names"):
            return True
    return False


def local_metadata(output) -> Path | None:
    """The zarr.json a conversion to `output` writes, None for a URL."""
    path = local_path(output)
    return None if path is None else path / "zarr.json"
