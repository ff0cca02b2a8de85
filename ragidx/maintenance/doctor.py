"""`ragidx doctor`: one small request to the configured embedder, and what it tells; with
`--db`, what reading every part of an index finds, and `--salvage`."""

from __future__ import annotations

import dataclasses
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ragidx.embed import Embedder, HttpEmbedder, OpenAIEmbedder, Vectors, validate_vectors
from ragidx.embed.base import is_unit
from ragidx.embed.http import classify
from ragidx.errors import EmbedError, InvalidVectors, StoreError
from ragidx.redact import Redactor
from ragidx.report.base import display_path
from ragidx.store.damage import salvage_hint
from ragidx.store.repair import inspect_index, salvage

__all__ = ["Check", "check_index", "diagnose", "salvage_index"]

PROBE = "ragidx doctor: is this server embedding text?"


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: what was looked at, what was seen, and a hint when it is a problem."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None


async def diagnose(embedder: Embedder) -> list[Check]:
    """Send one request with `embedder` and report reachability, latency, dims, limits.
    What the server says is redacted (`ragidx.redact`): it may repeat the request's key."""
    checks = await _diagnose(embedder)
    redact = embedder.redact if isinstance(embedder, HttpEmbedder) else Redactor.of()
    return [
        dataclasses.replace(c, detail=redact(c.detail), hint=c.hint and redact(c.hint))
        for c in checks
    ]


async def _diagnose(embedder: Embedder) -> list[Check]:
    checks = [Check("provider", True, f"{embedder.provider}, model {embedder.model}")]
    if not isinstance(embedder, HttpEmbedder):
        vectors = await embedder.embed([PROBE])
        return [*checks, Check("dims", True, f"{vectors.shape[1]} (offline, no server needed)")]
    checks.append(Check("endpoint", True, embedder.url))
    checks.append(_auth(embedder))
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
    if 300 <= response.status_code < 400:
        redirect = classify(response)  # reported, never followed (the key would go along)
        return [*checks, Check("redirect", False, redirect.message, redirect.hint)]
    checks.append(
        Check("reachable", True, f"HTTP {response.status_code} in {latency * 1000:.0f} ms")
    )
    if response.status_code >= 400:
        return [*checks, _refusal(embedder, response)]
    try:
        vectors = validate_vectors(embedder.parse(response.json(), 1), 1, 0)
    except InvalidVectors as exc:  # the shape is right, the numbers are not (zeros, NaN)
        hint = "the server's model gives unusable vectors: check the model it serves"
        return [*checks, Check("answer", False, exc.message, hint)]
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


def _auth(embedder: HttpEmbedder) -> Check:
    """Which credential goes out: the API key, else the base URL's user and password."""
    settings = embedder.settings
    if settings.auth == "basic":
        return Check("auth", True, "Basic, the user and password in the base URL")
    if settings.auth == "none":
        return Check("auth", True, "none: no API key set")
    ignored = "; the user and password in the base URL are not sent" if settings.login else ""
    return Check("auth", True, f"Bearer, the API key{ignored}")


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


FILES_SHOWN = 20
"""Affected files named one by one; the rest are counted."""


def check_index(path: Path) -> list[Check]:
    """SQLite's integrity check of the index at `path`, then which files' chunks and vectors
    fail to read, and how much of the embedding cache is intact. Reads only."""
    _must_exist(path)
    report = inspect_index(path)
    if report.fatal:
        detail = f"{path} cannot be read: {report.fatal}"
        return [Check("index", False, detail, salvage_hint(path))]
    if report.ok:
        detail = (
            f"{path}: integrity check ok; {_count(report.files, 'file')},"
            f" {_count(report.cached, 'cached vector')}, all read back intact"
        )
        return [Check("index", True, detail)]
    checks = [Check("index", False, f"{path} is damaged", salvage_hint(path))]
    if report.problems:
        where = f" in {', '.join(report.damaged_tables)}" if report.damaged_tables else ""
        more = len(report.problems) - 1
        shown = report.problems[0] + (f" (and {_count(more, 'more problem')})" if more else "")
        checks.append(Check("integrity", False, f"SQLite finds damage{where}: {shown}"))
    for table, spans in report.unreadable.items():
        lost = (
            "no row can be read"
            if spans == ["every row"]
            else f"the rows with {', '.join(spans)} cannot be read"
        )
        checks.append(Check("rows", False, f"{table}: {lost}"))
    for file, what in list(report.affected.items())[:FILES_SHOWN]:
        checks.append(Check("file", False, f"{display_path(file)}: {what}"))
    if (more := len(report.affected) - FILES_SHOWN) > 0:
        checks.append(Check("file", False, f"and {more:,} more files"))
    if report.cache_damaged:
        detail = f"{report.cache_damaged:,} of {report.cached:,} cached vectors are damaged"
        checks.append(Check("cache", False, detail))
    return checks


def salvage_index(path: Path) -> list[Check]:
    """Replace the index by a fresh one with its intact cached vectors (see `salvage`)."""
    _must_exist(path)
    done = salvage(path)
    lost = f"; ids {', '.join(done.unreadable)} could not be read" if done.unreadable else ""
    detail = (
        f"a fresh index at {path} keeps {done.kept:,} cached vectors, dropped {done.dropped:,}"
        f" damaged{lost}; the damaged index is kept as {done.moved_to}"
    )
    again = " ".join(shlex.quote(display_path(r)) for r in done.roots) or "PATH"
    hint = f"now run `ragidx index {again} --db {path}`: only the lost vectors are embedded again"
    return [Check("salvage", True, detail, hint)]


def _must_exist(path: Path) -> None:
    if not path.exists():
        raise StoreError(f"no index at {path}", hint="pass the index file with --db")


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"
