"""Errors raised by ragidx.

One base class; the CLI maps each branch to an exit code at the edge::

    RagidxError
    ├── ConfigError            bad option or setting (exit 2)
    │   └── PathNotFound       a path given on the command line does not exist
    ├── StoreError             the index database cannot be opened, read or written (exit 2)
    │   ├── ManifestMismatch   the index was built with another embedder, model or dims
    │   ├── IndexBusy          another process is writing the index (and we would not wait)
    │   └── IndexDamaged       the index file is corrupt (SQLite says so, or a vector does)
    ├── WalkError              a helper process walking part of the tree failed (exit 2)
    ├── Interrupted            stopping was asked before the run began (exit 130, 143)
    └── EmbedError             an embedder could not turn a batch into vectors
        ├── InvalidVectors     a response failed validation (count, index, dims, finite)
        ├── TransientError     worth retrying: 408/409/429/5xx, transport errors, timeouts
        ├── RejectedError      the server refused the input (other 4xx): retrying won't help
        └── FatalEmbedError    the run cannot go on: bad key (401/403), quota exhausted, no
                               server listening where none ever answered (exit 2)

Every `EmbedError` carries `kind`, the class of failure a file is reported with:
`rate_limited`, `server_error`, `timeout`, `network`, `unreachable` (no connection),
`invalid_response`, `too_long`, `too_large`, `rejected_input`, `auth`, `quota`.

A file that cannot be read or embedded is not an exception that ends the run: the pipeline
turns it into a ``failed`` file event and carries on.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EmbedError",
    "FatalEmbedError",
    "IndexBusy",
    "IndexDamaged",
    "Interrupted",
    "InvalidVectors",
    "ManifestMismatch",
    "PathNotFound",
    "RagidxError",
    "RejectedError",
    "StoreError",
    "TransientError",
    "WalkError",
]


class RagidxError(Exception):
    """Base class of every error ragidx raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(RagidxError):
    """An option or setting is invalid."""


class WalkError(RagidxError):
    """A helper process walking part of the tree failed; nothing was removed from the index."""


class PathNotFound(ConfigError):
    """A path given to index does not exist and nothing under it is indexed."""


class StoreError(RagidxError):
    """The index database cannot be opened, read or written."""


class ManifestMismatch(StoreError):
    """The index was built with another embedder, model or number of dimensions."""


class IndexBusy(StoreError):
    """Another process holds the index's writer lock."""


class IndexDamaged(StoreError):
    """The index file is corrupt: SQLite found it malformed, or stored data fails to read."""


class Interrupted(RagidxError):
    """Stopping was asked before the run began (while it waited for the index, say)."""


class EmbedError(RagidxError):
    """An embedder could not turn a batch of texts into vectors."""

    kind = "embed_error"

    def __init__(self, message: str, *, hint: str | None = None, kind: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if kind is not None:
            self.kind = kind


class InvalidVectors(EmbedError):
    """An embedder returned vectors that fail validation."""

    kind = "invalid_response"


class TransientError(EmbedError):
    """A failure that may pass: the request is worth retrying, after `retry_after` if set."""

    kind = "server_error"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        retry_after: float | None = None,
        retries: int | None = None,
    ) -> None:
        super().__init__(message, kind=kind)
        self.retry_after = retry_after
        self.retries = retries
        """How many retries such a failure earns at most (None: as many as the run allows)."""


class RejectedError(EmbedError):
    """The server refused this input; the same request would be refused again."""

    kind = "rejected_input"


class FatalEmbedError(EmbedError):
    """No request can succeed (bad credentials, no quota): the run stops."""

    kind = "auth"
