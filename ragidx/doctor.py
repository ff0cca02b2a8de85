"""`ragidx doctor`: one small request to the configured embedder, and what it tells."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from .embed import Embedder, HttpEmbedder, OpenAIEmbedder, Vectors, validate_vectors
from .embed.base import is_unit
from .embed.http import classify
from .errors import EmbedError

__all__ = ["Check", "diagnose"]

PROBE = "ragidx doctor: is this server embedding text?"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was looked at, what was seen, and a hint when it is a problem."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None


async def diagnose(embedder: Embedder) -> list[Check]:
    """Send one request with `embedder` and report reachability, latency, dims, limits."""
    checks = [Check("provider", True, f"{embedder.provider}, model {embedder.model}")]
    if not isinstance(embedder, HttpEmbedder):
        vectors = await embedder.embed([PROBE])
        return [*checks, Check("dims", True, f"{vectors.shape[1]} (offline, no server needed)")]
    url = embedder.settings.base_url.rstrip("/") + embedder.path
    checks.append(Check("endpoint", True, url))
    started = time.perf_counter()
    try:
        response = await embedder._post(embedder.payload([PROBE]))
        if isinstance(embedder, OpenAIEmbedder) and _refuses_base64(response):
            embedder.base64 = False  # as indexing does: ask for floats instead
            checks.append(Check("encoding", True, "the server sends floats, not base64"))
            started = time.perf_counter()
            response = await embedder._post(embedder.payload([PROBE]))
    except EmbedError as exc:
        if exc.kind == "invalid_response":  # it answered, with a body not worth reading
            hint = "that is no embedding answer: check --base-url and --provider"
            return [*checks, Check("answer", False, exc.message, hint)]
        hint = f"is the server running and reachable at {embedder.settings.base_url}?"
        return [*checks, Check("reachable", False, exc.message, hint)]
    latency = time.perf_counter() - started
    checks.append(
        Check("reachable", True, f"HTTP {response.status_code} in {latency * 1000:.0f} ms")
    )
    if response.status_code >= 400:
        return [*checks, _refusal(embedder, response)]
    try:
        vectors = validate_vectors(embedder.parse(response.json(), 1), 1, 0)
    except (ValueError, KeyError, TypeError, EmbedError) as exc:
        hint = "the answer is not the provider's shape: is --provider right for this server?"
        return [*checks, Check("answer", False, f"{type(exc).__name__}: {exc}", hint)]
    wanted = embedder.settings.dims
    if wanted and vectors.shape[1] != wanted:
        hint = f"the server ignores --dimensions {wanted}: leave it out, or pick a model with it"
        return [*checks, Check("dims", False, f"{vectors.shape[1]}, not {wanted}", hint)]
    checks.append(Check("dims", True, str(vectors.shape[1])))
    checks.append(_length(embedder, vectors))
    limits = {k: v for k, v in response.headers.items() if k.startswith("x-ratelimit-")}
    if limits:
        shown = ", ".join(
            f"{k.removeprefix('x-ratelimit-')}={v}" for k, v in sorted(limits.items())
        )
        checks.append(Check("rate limits", True, shown))
    return checks


def _length(embedder: HttpEmbedder, vectors: Vectors) -> Check:
    """Whether the server's vectors are unit length (llama.cpp's, from some builds, are not)."""
    import numpy as np

    if is_unit(vectors):
        return Check("vectors", True, "unit length")
    length = float(np.linalg.norm(vectors[0]))
    done = "scales them to 1" if embedder.settings.normalize else "keeps them (--no-normalize)"
    return Check("vectors", True, f"length {length:.4g}, not 1: ragidx {done}")


def _refuses_base64(response: httpx.Response) -> bool:
    return response.status_code in (400, 422) and "encoding_format" in response.text.lower()


def _refusal(embedder: HttpEmbedder, response: httpx.Response) -> Check:
    error = classify(response)
    hints = {
        401: "set RAGIDX_API_KEY (or OPENAI_API_KEY for openai) to a valid key",
        403: "the key is not allowed to use this model or endpoint",
        404: "wrong base URL or provider: OpenAI-compatible servers usually want .../v1",
        429: "the server is rate limiting: lower --rpm/--tpm or --concurrency",
    }
    hint = hints.get(response.status_code, error.hint or f"check --model {embedder.model!r}")
    return Check("answer", False, error.message, hint)
