"""Before a run: which paths, which of them exist, and the vector space's dims."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .embed import Embedder, validate_vectors
from .errors import PathNotFound
from .store import SqliteStore

__all__ = ["check_named", "dedupe", "failed_under", "inside", "learn_dims", "missing"]


async def learn_dims(store: SqliteStore, embedder: Embedder) -> bool:
    """An HTTP model's dims, from the manifest when it names the same model, else by asking;
    True when they were learned from an answer (and so are provisional)."""
    manifest = await asyncio.to_thread(store.manifest)
    same = (manifest.get("provider"), manifest.get("model")) == (embedder.provider, embedder.model)
    if same and "dims" in manifest:
        embedder.dims = int(manifest["dims"])
        return False
    embedder.dims = validate_vectors(await embedder.embed(["dimensions"]), 1, 0).shape[1]
    return True


def failed_under(store: SqliteStore, roots: list[Path] | None) -> list[Path]:
    failed = [Path(path) for path, _ in store.failed_files()]
    if not roots:
        return failed
    return [p for p in failed if any(p == r or p.is_relative_to(r) for r in roots)]


def dedupe(paths: list[Path]) -> list[Path]:
    """Each path once, and none that lies inside a directory also given."""
    dirs = {str(p) for p in paths if os.path.isdir(p)}
    return [p for p in dict.fromkeys(paths) if not inside(str(p), dirs)]


def inside(path: str, directories: set[str]) -> bool:
    """Whether one of `directories` holds `path` (absolute and normalised, all of them)."""
    parent = os.path.dirname(path)
    while parent != path:
        if parent in directories:
            return True
        path, parent = parent, os.path.dirname(parent)
    return False


def missing(path: Path) -> bool:
    """No such path (a path that cannot be looked at is not missing)."""
    try:
        os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def check_named(store: SqliteStore, paths: list[Path]) -> None:
    for path in paths:
        if missing(path) and store.lookup(str(path)) is None and not store.dirs_under(str(path)):
            shown = os.path.relpath(path)
            shown = str(path) if shown.startswith("..") else shown
            raise PathNotFound(f"{shown}: no such file or directory", hint="check the path")
