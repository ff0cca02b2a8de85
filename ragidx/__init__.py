"""ragidx: a batch indexer for retrieval-augmented generation.

The library under the `ragidx` command: walk and chunk documents, embed them, store them in
SQLite, and search the result.
"""

from __future__ import annotations

from .chunker import chunk_document, chunk_text
from .config import ChunkConfig, IndexConfig, WalkConfig
from .embed import Embedder, HashEmbedder, create_embedder
from .errors import (
    ConfigError,
    EmbedError,
    InvalidVectors,
    ManifestMismatch,
    PathNotFound,
    RagidxError,
    StoreError,
)
from .events import BatchEmbedded, Event, FileDiscovered, FileDone, RunFinished, RunStarted
from .models import Chunk, Document, FileStatus, RunSummary
from .pipeline import index, run_index
from .reader import read_document
from .search import SearchHit, SearchMode, search
from .store import SqliteStore
from .tokens import estimate_tokens
from .walker import walk

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
