"""Before a run: which paths, which of them exist, and the vector space's dims."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ragidx.embed import Embedder, Vectors, validate_vectors
from ragidx.errors import EmbedError, FatalEmbedError, InvalidVectors, PathNotFound
from ragidx.pipeline.remote import server_url
from ragidx.store import SqliteStore

__all__ = [
    "agreed_dims",
    "check_named",
    "dedupe",
    "failed_under",
    "inside",
    "learn_dims",
    "missing",
]


DIMS_ASKS = 4
"""Answers asked for at most to find two that agree on the width of the model's vectors."""


async def learn_dims(store: SqliteStore, embedder: Embedder) -> None:
    """Bind an HTTP model's dims: from the manifest when it names the same model, else from
    the server (`agreed_dims`). The manifest records them once a file stores vectors."""
    manifest = await asyncio.to_thread(store.manifest)
    same = (manifest.get("provider"), manifest.get("model")) == (embedder.provider, embedder.model)
    if same and "dims" in manifest:
        embedder.dims = int(manifest["dims"])
        return
    embedder.dims = await agreed_dims(embedder)


async def agreed_dims(embedder: Embedder, asks: int = DIMS_ASKS) -> int:
    """The width of the model's vectors, once two answers agree on it.

    Each answer has passed the embedder's checks (as many vectors as texts, all finite, all
    one width; an answer that failed them was retried there), but one answer can still be
    wrong in a way no check sees: every vector a number short. A second answer, to other
    texts (no cache can replay the first), that agrees binds the width; one that disagrees
    is a vote for its own width, and the server is asked again. This runs before any batch
    is sent, so every batch, every cache key and the manifest see the bound width, and an
    answer of another width later is invalid and retried like any other.
    """
    seen: list[int] = []
    for ask in range(asks):
        texts = [f"dimensions {ask}", f"width {ask}"][: max(embedder.max_inputs, 1)]
        width = int(validate_vectors(await _ask(embedder, texts), len(texts), 0).shape[1])
        if width in seen:
            return width
        seen.append(width)
    shown = ", ".join(map(str, seen))
    raise InvalidVectors(
        f"the server's answers disagree on the width of its vectors: {shown} numbers",
        hint="check the server and its model (`ragidx doctor`)",
    )


async def _ask(embedder: Embedder, texts: list[str]) -> Vectors:
    """An answer, or an error that says which server failed to give one, and when."""
    try:
        return await embedder.embed(texts)
    except FatalEmbedError:
        raise  # says what is wrong and what to do (a key, a server that is not there)
    except EmbedError as exc:
        url = server_url(embedder)
        where = f" from {url}" if url is not None else ""
        raise EmbedError(
            f"no usable answer{where} to learn the width of its vectors: {exc.message}",
            kind=exc.kind,
            hint="check the server and --model (`ragidx doctor`); the index is unchanged",
        ) from None


def failed_under(store: SqliteStore, roots: list[Path] | None) -> list[Path]:
    if store.resetting:
        return []  # the index they failed in is on its way out
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
