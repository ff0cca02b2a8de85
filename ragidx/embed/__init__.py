"""Embedders behind one seam, and the registry that builds them by provider name."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ragidx.embed.base import (
    Embedder,
    EmbedStats,
    MinimalEmbedder,
    Offline,
    Probe,
    Server,
    Vectors,
    closing,
    complete,
    validate_vectors,
)
from ragidx.embed.defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ragidx.embed.options import EmbedOptions, HttpOptions
from ragidx.errors import ConfigError

if TYPE_CHECKING:
    from ragidx.embed.hashing import HashEmbedder
    from ragidx.embed.http import HttpEmbedder
    from ragidx.embed.ollama import OllamaEmbedder
    from ragidx.embed.openai import OpenAIEmbedder
    from ragidx.embed.tei import TEIEmbedder

# Providers load on first use: httpx, tenacity and numpy cost a third of a second to import,
# which a run with nothing to embed should not pay.
_LAZY = {
    "HashEmbedder": ".hashing",
    "HttpEmbedder": ".http",
    "HttpSettings": ".http",
    "OllamaEmbedder": ".ollama",
    "OpenAIEmbedder": ".openai",
    "TEIEmbedder": ".tei",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_PROVIDER",
    "DEFAULT_TIMEOUT",
    "PROVIDERS",
    "EmbedOptions",
    "EmbedStats",
    "Embedder",
    "HashEmbedder",
    "HttpEmbedder",
    "HttpOptions",
    "MinimalEmbedder",
    "Offline",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "Probe",
    "Server",
    "TEIEmbedder",
    "Vectors",
    "api_key_from_env",
    "closing",
    "complete",
    "create_embedder",
    "resolve_provider",
    "validate_vectors",
]

DEFAULT_PROVIDER = "hash"


Factory = Callable[[str | None, int | None, EmbedOptions], MinimalEmbedder]


def _hash(model: str | None, dims: int | None, options: EmbedOptions) -> Embedder:
    from ragidx.embed.hashing import DEFAULT_HASH_DIMS, HashEmbedder

    embedder = HashEmbedder(dims or DEFAULT_HASH_DIMS)
    if model not in (None, embedder.model):
        raise ConfigError(
            f"the hash embedder has one model, {embedder.model!r}; got --model {model!r}"
        )
    return embedder


def _http(module: str, name: str) -> Factory:
    def build(model: str | None, dims: int | None, options: EmbedOptions) -> Embedder:
        import httpx

        from ragidx.embed.http import HttpSettings
        from ragidx.settings import shown

        cls: type[HttpEmbedder] = getattr(importlib.import_module(module, __name__), name)
        if dims and cls.provider != "openai":
            raise ConfigError(
                f"--dimensions applies to the openai provider; {cls.provider} serves its "
                "model's own dimensions",
                hint="leave --dimensions out: ragidx asks the server",
            )
        settings = HttpSettings(
            **{
                **options.http_options(),
                "base_url": options.base_url or cls.default_base_url,
                "model": model or cls.default_model,
                "dims": dims,
            }
        )
        try:
            return cls(settings, transport=options.transport)
        except httpx.InvalidURL as exc:  # no ValueError: the URL got past `settings`' check
            raise ConfigError(
                f"--base-url {shown(settings.base_url)}: {shown(str(exc))}",
                hint="such as http://localhost:8000/v1",
            ) from exc

    return build


PROVIDERS: dict[str, Factory] = {
    "hash": _hash,
    "openai": _http(".openai", "OpenAIEmbedder"),
    "ollama": _http(".ollama", "OllamaEmbedder"),
    "tei": _http(".tei", "TEIEmbedder"),
}


def create_embedder(
    provider: str,
    *,
    model: str | None = None,
    dims: int | None = None,
    options: EmbedOptions | None = None,
) -> Embedder:
    """Build the embedder registered under `provider` (`complete`: a factory may give a
    `MinimalEmbedder`). Raises `ConfigError`."""
    try:
        factory = PROVIDERS[provider]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"unknown provider {provider!r}", hint=f"choose one of: {known}"
        ) from None
    try:
        return complete(factory(model, dims, options or EmbedOptions()))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def resolve_provider(provider: str | None, base_url: str | None) -> str:
    """The provider asked for; a base URL alone means an OpenAI-compatible server; else hash."""
    if provider:
        return provider
    return "openai" if base_url else DEFAULT_PROVIDER


def api_key_from_env(provider: str, environ: Mapping[str, str]) -> str | None:
    """`RAGIDX_API_KEY`, or `OPENAI_API_KEY` for the openai provider. Never from a flag or file.

    Whitespace around the key (a pasted key, a key file's newline) is dropped; a key that an
    HTTP header cannot carry is refused without being shown.
    """
    name = "RAGIDX_API_KEY"
    key = environ.get(name)
    if not key and provider == "openai":
        name, key = "OPENAI_API_KEY", environ.get("OPENAI_API_KEY")
    key = (key or "").strip()
    if key and not all(33 <= ord(c) <= 126 for c in key):
        raise ConfigError(
            f"{name} holds spaces or characters an HTTP header cannot carry",
            hint=f"check the value of {name} (it is not shown here)",
        )
    return key or None
