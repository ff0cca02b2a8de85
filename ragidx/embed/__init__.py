"""Embedders behind one seam, and the registry that builds them by provider name."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .base import Embedder, Vectors, validate_vectors
from .hashing import DEFAULT_HASH_DIMS, HashEmbedder

__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDERS",
    "Embedder",
    "HashEmbedder",
    "Vectors",
    "create_embedder",
    "validate_vectors",
]

DEFAULT_PROVIDER = "hash"


def _hash(model: str | None, dims: int | None) -> Embedder:
    embedder = HashEmbedder(dims or DEFAULT_HASH_DIMS)
    if model not in (None, embedder.model):
        raise ConfigError(
            f"the hash embedder has one model, {embedder.model!r}; got --model {model!r}"
        )
    return embedder


PROVIDERS: dict[str, Callable[[str | None, int | None], Embedder]] = {"hash": _hash}


def create_embedder(
    provider: str, *, model: str | None = None, dims: int | None = None
) -> Embedder:
    """Build the embedder registered under `provider`."""
    try:
        factory = PROVIDERS[provider]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"unknown provider {provider!r}", hint=f"choose one of: {known}"
        ) from None
    try:
        return factory(model, dims)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
