"""ragidx: a batch indexer for retrieval-augmented generation.

The library under the `ragidx` command: walk and chunk documents, embed them, store them in
SQLite, and search the result.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragidx.chunk import chunk_document, chunk_text, estimate_tokens
    from ragidx.config import ChunkConfig, IndexConfig, WalkConfig
    from ragidx.embed import Embedder, HashEmbedder, create_embedder
    from ragidx.errors import (
        ConfigError,
        EmbedError,
        InvalidVectors,
        ManifestMismatch,
        PathNotFound,
        RagidxError,
        StoreError,
    )
    from ragidx.events import (
        BatchEmbedded,
        Event,
        FileDiscovered,
        FileDone,
        FilesUnchanged,
        RunFinished,
        RunStarted,
        WalkFinished,
    )
    from ragidx.models import Chunk, Document, FileStatus, RunSummary
    from ragidx.pipeline import index, run_index
    from ragidx.query import SearchHit, SearchMode, search
    from ragidx.read import read_document
    from ragidx.store import SqliteStore
    from ragidx.walk import walk

# The public names load with their modules on first use, so `import ragidx.cli` (every
# command) pays only for what it runs.
_LAZY = {
    **dict.fromkeys(("chunk_document", "chunk_text"), ".chunk"),
    **dict.fromkeys(("ChunkConfig", "IndexConfig", "WalkConfig"), ".config"),
    **dict.fromkeys(("Embedder", "HashEmbedder", "create_embedder"), ".embed"),
    **dict.fromkeys(
        (
            "ConfigError",
            "EmbedError",
            "InvalidVectors",
            "ManifestMismatch",
            "PathNotFound",
            "RagidxError",
            "StoreError",
        ),
        ".errors",
    ),
    **dict.fromkeys(
        (
            "BatchEmbedded",
            "Event",
            "FileDiscovered",
            "FileDone",
            "FilesUnchanged",
            "RunFinished",
            "RunStarted",
            "WalkFinished",
        ),
        ".events",
    ),
    **dict.fromkeys(("Chunk", "Document", "FileStatus", "RunSummary"), ".models"),
    **dict.fromkeys(("index", "run_index"), ".pipeline"),
    "read_document": ".read",
    **dict.fromkeys(("SearchHit", "SearchMode", "search"), ".query"),
    "SqliteStore": ".store",
    "estimate_tokens": ".chunk",
    "walk": ".walk",
}


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "BatchEmbedded",
    "Chunk",
    "ChunkConfig",
    "ConfigError",
    "Document",
    "EmbedError",
    "Embedder",
    "Event",
    "FileDiscovered",
    "FileDone",
    "FileStatus",
    "FilesUnchanged",
    "HashEmbedder",
    "IndexConfig",
    "InvalidVectors",
    "ManifestMismatch",
    "PathNotFound",
    "RagidxError",
    "RunFinished",
    "RunStarted",
    "RunSummary",
    "SearchHit",
    "SearchMode",
    "SqliteStore",
    "StoreError",
    "WalkConfig",
    "WalkFinished",
    "__version__",
    "chunk_document",
    "chunk_text",
    "create_embedder",
    "estimate_tokens",
    "index",
    "read_document",
    "run_index",
    "search",
    "walk",
]
