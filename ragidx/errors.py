"""Errors raised by ragidx.

One base class; the CLI maps each branch to an exit code at the edge::

    RagidxError
    ├── ConfigError            bad option or setting (exit 2)
    │   └── PathNotFound       a path given on the command line does not exist
    ├── StoreError             the index database cannot be opened, read or written (exit 2)
    │   └── ManifestMismatch   the index was built with another embedder, model or dims
    └── EmbedError             an embedder could not turn a batch into vectors
        └── InvalidVectors     a response failed validation (count, index, dims, finite)

A file that cannot be read or embedded is not an exception that ends the run: the pipeline
turns it into a ``failed`` file event and carries on.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EmbedError",
    "InvalidVectors",
    "ManifestMismatch",
    "PathNotFound",
    "RagidxError",
    "StoreError",
]


class RagidxError(Exception):
    """Base class of every error ragidx raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(RagidxError):
    """An option or setting is invalid."""


class PathNotFound(ConfigError):
    """A path given to index does not exist and nothing under it is indexed."""


class StoreError(RagidxError):
    """The index database cannot be opened, read or written."""


class ManifestMismatch(StoreError):
    """The index was built with another embedder, model or number of dimensions."""


class EmbedError(RagidxError):
    """An embedder could not turn a batch of texts into vectors."""


class InvalidVectors(EmbedError):
    """An embedder returned vectors that fail validation."""
