"""`ragidx doctor`: one small request to the configured embedder, and what it tells; with
`--db`, what reading every part of an index finds, and `--salvage`."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path

from ragidx.embed import Embedder, MinimalEmbedder, Probe, Server, Vectors, complete
from ragidx.embed.base import is_unit
from ragidx.errors import EmbedError, InvalidVectors, StoreError
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


async def diagnose(embedder: MinimalEmbedder) -> list[Check]:
    """Send one request with `embedder` and report reachability, latency, dims, limits.
    What the server says is redacted (`ragidx.redact`): it may repeat the request's key."""
    embedder = complete(embedder)
    checks = await _diagnose(embedder)
    redact = embedder.redact
    return [
        dataclasses.replace(c, detail=redact(c.detail), hint=c.hint and redact(c.hint))
        for c in checks
    ]


async def _diagnose(embedder: Embedder) -> list[Check]:
    checks = [Check("provider", True, f"{embedder.provider}, model {embedder.model}")]
    server = embedder.server
    if server is None:
        return [*checks, _offline(await embedder.probe(PROBE))]
    checks.append(Check("endpoint", True, server.url))
    checks.append(_auth(server))
    probe = await embedder.probe(PROBE)
    checks += [Check(name, True, detail) for name, detail in probe.notes]
    error = probe.error
    if probe.status is None:  # no answer: `error` says what stood in the way
        message = error.message if error is not None else "no answer"
        if error is not None and error.kind == "invalid_response":  # a body not worth reading
            hint = "that is no embedding answer: check --base-url and --provider"
            return [*checks, Check("answer", False, message, hint)]
        hint = f"is the server running and reachable at {server.base_url}?"
        return [*checks, Check("reachable", False, message, hint)]
    if error is not None and 300 <= probe.status < 400:  # reported, never followed
        return [*checks, Check("redirect", False, error.message, error.hint)]
    checks.append(Check("reachable", True, f"HTTP {probe.status} in {probe.seconds * 1000:.0f} ms"))
    if error is not None and probe.status >= 400:
        return [*checks, _refusal(embedder.model, probe.status, error)]
    if isinstance(error, InvalidVectors):
        hint = "the server's model gives unusable vectors: check the model it serves"
        return [*checks, Check("answer", False, error.message, hint)]
    if probe.vectors is None:
        hint = "the answer is not the provider's shape: is --provider right for this server?"
        return [*checks, Check("answer", False, probe.unreadable or "no vectors", hint)]
    vectors = probe.vectors
    wanted = embedder.dims  # --dimensions, where given: the probe binds nothing
    if wanted and vectors.shape[1] != wanted:
        hint = f"the server ignores --dimensions {wanted}: leave it out, or pick a model with it"
        return [*checks, Check("dims", False, f"{vectors.shape[1]}, not {wanted}", hint)]
    checks.append(Check("dims", True, str(vectors.shape[1])))
    checks.append(_length(embedder.binding.get("normalize") != "false", vectors))
    if probe.rate_limits:
        shown = ", ".join(
            f"{k.removeprefix('x-ratelimit-')}={v}" for k, v in sorted(probe.rate_limits.items())
        )
        checks.append(Check("rate limits", True, shown))
    return checks


def _offline(probe: Probe) -> Check:
    """An embedder without a server: the width of its vectors, or what kept it from one."""
    if probe.vectors is None:
        return Check("answer", False, probe.error.message if probe.error else "no vectors")
    return Check("dims", True, f"{probe.vectors.shape[1]} (offline, no server needed)")


def _auth(server: Server) -> Check:
    """Which credential goes out: the API key, else the base URL's user and password."""
    if server.auth == "basic":
        return Check("auth", True, "Basic, the user and password in the base URL")
    if server.auth == "none":
        return Check("auth", True, "none: no API key set")
    ignored = "; the user and password in the base URL are not sent" if server.unsent_login else ""
    return Check("auth", True, f"Bearer, the API key{ignored}")


def _length(normalize: bool, vectors: Vectors) -> Check:
    """Whether the server's vectors are unit length (llama.cpp's, from some builds, are not)."""
    import numpy as np

    if is_unit(vectors):
        return Check("vectors", True, "unit length")
    length = float(np.linalg.norm(vectors[0]))
    done = "scales them to 1" if normalize else "keeps them (--no-normalize)"
    return Check("vectors", True, f"length {length:.4g}, not 1: ragidx {done}")


def _refusal(model: str, status: int, error: EmbedError) -> Check:
    hints = {
        401: "set RAGIDX_API_KEY (or OPENAI_API_KEY for openai) to a valid key",
        403: "the key is not allowed to use this model or endpoint",
        404: "wrong base URL or provider: OpenAI-compatible servers usually want .../v1",
        429: "the server is rate limiting: lower --rpm/--tpm or --concurrency",
    }
    hint = hints.get(status, error.hint or f"check --model {model!r}")
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
