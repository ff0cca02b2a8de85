"""Before a run: which paths, which of them exist, the chunk size the model takes, the vector
space and its dims, and how many helpers the walk gets."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
from collections.abc import Awaitable
from pathlib import Path

from ragidx.config import MIN_CHUNK_TOKENS, IndexConfig
from ragidx.embed import Embedder, MinimalEmbedder, Vectors, validate_vectors
from ragidx.errors import EmbedError, FatalEmbedError, Interrupted, InvalidVectors, PathNotFound
from ragidx.events import ChunkLimit, EventSink
from ragidx.store import Store

__all__ = [
    "agreed_dims",
    "check_named",
    "dedupe",
    "failed_under",
    "fit_chunks",
    "inside",
    "learn_dims",
    "manifest_dims",
    "missing",
    "prepare",
    "unless_stopped",
    "usable_cores",
    "walk_workers",
]


_MAX_WALK_WORKERS = 4

DIMS_ASKS = 4
"""Answers asked for at most to find two that agree on the width of the model's vectors."""


async def learn_dims(store: Store, embedder: Embedder) -> None:
    """Bind an HTTP model's dims: from the manifest when it names the same model, else from
    the server (`agreed_dims`)."""
    embedder.dims = await manifest_dims(store, embedder) or await agreed_dims(embedder)


async def manifest_dims(store: Store, embedder: MinimalEmbedder) -> int | None:
    """The width the index records for `embedder`'s model, if it names that model. The
    manifest records it once a file stores vectors."""
    manifest = await asyncio.to_thread(store.manifest)
    same = (manifest.get("provider"), manifest.get("model")) == (embedder.provider, embedder.model)
    return int(manifest["dims"]) if same and "dims" in manifest else None


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
        where = f" from {embedder.server.url}" if embedder.server is not None else ""
        raise EmbedError(
            f"no usable answer{where} to learn the width of its vectors: {exc.message}",
            kind=exc.kind,
            hint="check the server and --model (`ragidx doctor`); the index is unchanged",
        ) from None


def failed_under(store: Store, roots: list[Path] | None) -> list[Path]:
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


def check_named(store: Store, paths: list[Path]) -> None:
    for path in paths:
        if missing(path) and store.lookup(str(path)) is None and not store.dirs_under(str(path)):
            shown = os.path.relpath(path)
            shown = str(path) if shown.startswith("..") else shown
            raise PathNotFound(f"{shown}: no such file or directory", hint="check the path")


async def fit_chunks(embedder: Embedder, config: IndexConfig, on_event: EventSink) -> IndexConfig:
    """Chunks no longer than the model reads, where the server says (TEI's `/info`), unless
    the chunk size was given: then it stays, with a warning if it is more. Some servers cut
    what is longer without a word (Infinity), others refuse it."""
    limit = await embedder.input_limit()
    if limit is None:
        return config
    chunk = config.chunk
    # The model's special tokens ([CLS], [SEP]) count against its limit.
    fits = max(limit - 2, MIN_CHUNK_TOKENS)
    if config.fit_chunks and chunk.chunk_tokens > fits:
        on_event(ChunkLimit(limit, chunk.chunk_tokens, fitted=True))
        overlap = min(chunk.chunk_overlap, fits // 8)
        fitted = dataclasses.replace(chunk, chunk_tokens=fits, chunk_overlap=overlap)
        return dataclasses.replace(config, chunk=fitted)
    if not config.fit_chunks and chunk.chunk_tokens > limit:
        on_event(ChunkLimit(limit, chunk.chunk_tokens, fitted=False))
    return config


# OpenAI's embedding models, all of which read cl100k_base tokens.
_CL100K_MODELS = frozenset(
    {"text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"}
)


def pick_tokenizer(embedder: MinimalEmbedder, config: IndexConfig) -> IndexConfig:
    """Chunks counted in the model's own tokens where it is known (OpenAI's models: cl100k),
    unless a tokenizer was given; else by the estimate. Chunks are cut, batches sized and
    `--tpm` paced by this one count."""
    chunk = config.chunk
    if chunk.tokenizer is not None:
        return config
    name = "estimate"
    if getattr(embedder, "provider", None) == "openai" and embedder.model in _CL100K_MODELS:
        name = "cl100k_base"
    return dataclasses.replace(config, chunk=dataclasses.replace(chunk, tokenizer=name))


async def unless_stopped(work: Awaitable[None], stopping: asyncio.Event) -> None:
    """`work`, unless stopping is asked first: then `Interrupted` (the dims probe can take
    as long as its retries)."""
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Interrupted("stopped before indexing began")
    task.result()


async def prepare(store: Store, embedder: Embedder, config: IndexConfig) -> None:
    """Settle the vector space (a reset waits for the run's first vectors, see
    `SqliteStore.reset`), and clear what a killed run left staged."""
    if config.reset:
        store.reset(defer=True)
    settings: dict[str, int | str] = {
        "chunk_tokens": config.chunk.chunk_tokens,
        "chunk_overlap": config.chunk.chunk_overlap,
    }
    if not embedder.dims:
        await learn_dims(store, embedder)
    if embedder.server is not None:
        settings["base_url"] = embedder.server.base_url  # for people to read; no login
    await asyncio.to_thread(
        functools.partial(
            store.claim_manifest,
            embedder.provider,
            embedder.model,
            embedder.dims,
            settings,
            binding=embedder.binding,
        )
    )
    await asyncio.to_thread(store.drop_staged)


def walk_workers(
    store: Store, roots: list[Path], fan_out_files: int, cores: int | None = None
) -> int:
    """Helper processes for the walk: one a core (`cores`, else those this process may run
    on; up to 4) where the index already holds `fan_out_files` files or more under the
    directories given, enough for the helpers' start (about 50 ms) to pay."""
    cores = min(usable_cores() if cores is None else cores, _MAX_WALK_WORKERS)
    if cores < 2:
        return 0
    held = 0
    for root in roots:
        held += store.count_under(str(root), fan_out_files - held)
        if held >= fan_out_files:
            return cores
    return 0


def usable_cores() -> int:
    # The cores this process may run on (a container's share), where the system says.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
