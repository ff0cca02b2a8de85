"""Embedders behind one seam, and the registry that builds them by provider name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from ..errors import ConfigError
from .base import Embedder, Vectors, validate_vectors
from .hashing import DEFAULT_HASH_DIMS, HashEmbedder
from .http import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    HttpEmbedder,
    HttpSettings,
)
from .ollama import OllamaEmbedder
from .openai import OpenAIEmbedder
from .tei import TEIEmbedder

__all__ = [
    "DEFAULT_PROVIDER",
    "PROVIDERS",
    "EmbedOptions",
    "Embedder",
    "HashEmbedder",
    "HttpEmbedder",
    "OllamaEmbedder",
    "OpenAIEmbedder",
    "TEIEmbedder",
    "Vectors",
    "api_key_from_env",
    "create_embedder",
    "resolve_provider",
    "validate_vectors",
]

DEFAULT_PROVIDER = "hash"


@dataclass(frozen=True, kw_only=True)
class EmbedOptions:
    """How to reach an embedding server; the hash embedder needs none of it."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    concurrency: int = DEFAULT_CONCURRENCY
    max_inputs: int | None = None
    max_tokens: int | None = None
    rpm: float | None = None
    tpm: float | None = None
    transport: httpx.AsyncBaseTransport | None = None


Factory = Callable[[str | None, int | None, EmbedOptions], Embedder]


def _hash(model: str | None, dims: int | None, options: EmbedOptions) -> Embedder:
    embedder = HashEmbedder(dims or DEFAULT_HASH_DIMS)
    if model not in (None, embedder.model):
        raise ConfigError(
            f"the hash embedder has one model, {embedder.model!r}; got --model {model!r}"
        )
    return embedder


def _http(cls: type[HttpEmbedder]) -> Factory:
    def build(model: str | None, dims: int | None, options: EmbedOptions) -> Embedder:
        if dims and cls is not OpenAIEmbedder:
            raise ConfigError(
                f"--dimensions applies to the openai provider; {cls.provider} serves its "
                "model's own dimensions",
                hint="leave --dimensions out: ragidx asks the server",
            )
        settings = HttpSettings(
            base_url=options.base_url or cls.default_base_url,
            model=model or cls.default_model,
            api_key=options.api_key,
            dims=dims,
            timeout=options.timeout,
            max_retries=options.max_retries,
            concurrency=options.concurrency,
            max_inputs=options.max_inputs,
            max_tokens=options.max_tokens,
            rpm=options.rpm,
            tpm=options.tpm,
        )
        return cls(settings, transport=options.transport)

    return build


PROVIDERS: dict[str, Factory] = {
    "hash": _hash,
    "openai": _http(OpenAIEmbedder),
    "ollama": _http(OllamaEmbedder),
    "tei": _http(TEIEmbedder),
}


def create_embedder(
    provider: str,
    *,
    model: str | None = None,
    dims: int | None = None,
    options: EmbedOptions | None = None,
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
        return factory(model, dims, options or EmbedOptions())
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
