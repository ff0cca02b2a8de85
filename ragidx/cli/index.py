"""`ragidx index`: its options parsed into an `IndexConfig` and the embedder's options, the
run (`ragidx.cli.running.execute`), and its outcome as the exit code."""

# No `from __future__ import annotations` here: typer would evaluate every command's
# annotations from strings at each start, 10 ms of a re-run that has nothing to do.

import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ragidx.cli.common import (
    BaseUrlOption,
    DbOption,
    DimensionsOption,
    JsonOption,
    ModelOption,
    NormalizeOption,
    ProviderOption,
    TimeoutOption,
    db_location,
    embedder_for,
    fail,
    option,
    stderr,
)
from ragidx.cli.running import effective_settings, execute, paths_to_index, reporter_for
from ragidx.config import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_EMBED_WORKERS,
    DEFAULT_MAX_DOCUMENT_SIZE,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_PARSE_MEMORY,
    DEFAULT_PARSE_TIMEOUT,
    DEFAULT_READERS,
    TOKENIZER_NAMES,
    Budget,
    ChunkConfig,
    IndexConfig,
    LongChunkPolicy,
    Shard,
    WalkConfig,
    default_db_path,
    missing_db_dir,
)
from ragidx.embed import EmbedOptions
from ragidx.embed.defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ragidx.errors import ConfigError, RagidxError
from ragidx.settings import conflict, from_env, from_file, from_flag

__all__ = ["index_command"]

PathsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Files and directories to index; - reads paths from stdin.", show_default=False
    ),
]
NullOption = Annotated[bool, typer.Option("--null", "-0", help="Paths on stdin are NUL-separated.")]
CoversOption = Annotated[
    list[Path] | None,
    option(
        "--covers",
        help="The paths given are every file to index under DIR: remove the others.",
        metavar="DIR",
        show_default=False,
    ),
]
ShardOption = Annotated[
    str | None,
    option(
        "--shard",
        help="Index only part K of N of the files (by a hash of each path), and remove only"
        " its files: N runs, on any machines, split the tree.",
        metavar="K/N",
        show_default=False,
    ),
]
RayOption = Annotated[
    str | None,
    option(
        "--ray",
        help="Read, embed and commit in Ray tasks (pip install 'ragidx\\[ray]'; needs a Postgres"
        " --db): local starts a Ray here, auto joins `ray start`'s, or a head's address"
        " (host:6379, ray://host:10001). --rpm/--tpm are shared by the tasks running at once.",
        metavar="local|auto|ADDRESS",
        show_default=False,
    ),
]
IncludeOption = Annotated[
    list[str] | None, option("--include", help="Only files matching this glob.")
]
ExcludeOption = Annotated[
    list[str] | None, option("--exclude", help="Leave out paths matching this glob.")
]
MaxFileSizeOption = Annotated[
    int,
    option(
        "--max-file-size",
        help="Skip larger files (10MiB, 512KiB, bytes); for PDF, Office and EPUB files,"
        " --max-document-size."
        f" \\[default: {DEFAULT_MAX_FILE_SIZE // 1024**2}MiB]",
        show_default=False,
    ),
]
MaxDocumentSizeOption = Annotated[
    int,
    option(
        "--max-document-size",
        help="Skip larger PDF, Office and EPUB files."
        f" \\[default: {DEFAULT_MAX_DOCUMENT_SIZE // 1024**2}MiB]",
        show_default=False,
    ),
]
FollowSymlinksOption = Annotated[
    bool, typer.Option("--follow-symlinks", help="Follow symbolic links (loops are cut).")
]
HiddenOption = Annotated[
    bool, typer.Option("--hidden", help="Index hidden files and directories too.")
]
ChunkTokensOption = Annotated[
    int, option("--chunk-tokens", help="Token budget of one chunk, its heading path included.")
]
ChunkOverlapOption = Annotated[
    int | None,
    option(
        "--chunk-overlap",
        help=f"Tokens a chunk repeats from the one before. [default: {DEFAULT_CHUNK_OVERLAP},"
        " or an eighth of --chunk-tokens if less]",
        show_default=False,
    ),
]
PackOption = Annotated[
    bool | None,
    option(
        "--pack/--one-section-per-chunk",
        help="Pack short sections together up to --chunk-tokens, or start a chunk at every"
        " heading. [default: packed for OpenAI's models (cl100k, o200k), one section a chunk"
        " otherwise]",
        show_default=False,
    ),
]
TokenizerOption = Annotated[
    str | None,
    option(
        "--tokenizer",
        help="Count tokens with cl100k_base, o200k_base, a tokenizer.json (PATH), or the"
        " estimate. [default: the model's encoding where known, else the estimate]",
        metavar="NAME|PATH",
        show_default=False,
    ),
]
MaxRetriesOption = Annotated[int, option("--max-retries", help="Retries of one request.")]
ConcurrencyOption = Annotated[int, option("--concurrency", help="Requests in flight at most.")]
OnLongChunkOption = Annotated[
    str, option("--on-long-chunk", help="A chunk the model refuses as too long.")
]
RpmOption = Annotated[
    float | None,
    option(
        "--rpm",
        help="Requests per minute at most, for the API key: with --shard K/N each part"
        " paces at 1/N of it.",
        show_default=False,
    ),
]
TpmOption = Annotated[
    float | None,
    option(
        "--tpm",
        help="Tokens per minute at most, for the API key: with --shard K/N each part"
        " paces at 1/N of it.",
        show_default=False,
    ),
]
BatchSizeOption = Annotated[
    int | None, option("--batch-size", help="Inputs per embedding request.")
]
MaxBatchTokensOption = Annotated[
    int | None, option("--max-batch-tokens", help="Tokens per embedding request.")
]
ReadersOption = Annotated[int, option("--readers", help="Files read and chunked at once.")]
ParseTimeoutOption = Annotated[
    float,
    option(
        "--parse-timeout",
        help="Seconds a worker process may take to read and chunk one file; past them the"
        " file fails (parse_timeout).",
    ),
]
ParseMemoryOption = Annotated[
    int,
    option(
        "--parse-memory",
        help="Memory a worker process may take to read and chunk one file (2GiB, 512MiB);"
        " past it the file fails (too_large)."
        f" \\[default: {DEFAULT_PARSE_MEMORY // 1024**3}GiB]",
        show_default=False,
    ),
]
WorkersOption = Annotated[
    int | None,
    option(
        "--workers",
        help="Processes that read, chunk and hash (default: the cores this process may use;"
        " 0: none, a thread does it).",
        show_default=False,
    ),
]
ResetOption = Annotated[
    bool, typer.Option("--reset", help="Empty the index first, cached vectors too.")
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Read and chunk only: report what would be sent, the time under --rpm/--tpm"
        " and the cost; embed and write nothing.",
    ),
]
PricePerMtokOption = Annotated[
    float | None,
    option(
        "--price-per-mtok",
        help="Price per million tokens, for --dry-run's cost.",
        show_default=False,
    ),
]
WaitOption = Annotated[
    bool,
    typer.Option("--wait/--no-wait", help="Wait while another ragidx writes the index, or refuse."),
]
RetryFailedOption = Annotated[
    bool,
    typer.Option(
        "--retry-failed", help="Index again only the files that failed (under PATHS, if given)."
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only errors and failed files.")
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", help="A line for every file that changed.")
]
ProgressOption = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
]


def index_command(
    ctx: typer.Context,
    paths: PathsArgument = None,
    db: DbOption = None,
    null: NullOption = False,
    covers: CoversOption = None,
    shard: ShardOption = None,
    ray: RayOption = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    max_file_size: MaxFileSizeOption = DEFAULT_MAX_FILE_SIZE,
    max_document_size: MaxDocumentSizeOption = DEFAULT_MAX_DOCUMENT_SIZE,
    follow_symlinks: FollowSymlinksOption = False,
    hidden: HiddenOption = False,
    chunk_tokens: ChunkTokensOption = DEFAULT_CHUNK_TOKENS,
    chunk_overlap: ChunkOverlapOption = None,
    pack: PackOption = None,
    tokenizer: TokenizerOption = None,
    provider: ProviderOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_retries: MaxRetriesOption = DEFAULT_MAX_RETRIES,
    concurrency: ConcurrencyOption = DEFAULT_CONCURRENCY,
    on_long_chunk: OnLongChunkOption = LongChunkPolicy.SPLIT.value,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    normalize: NormalizeOption = True,
    batch_size: BatchSizeOption = None,
    max_batch_tokens: MaxBatchTokensOption = None,
    readers: ReadersOption = DEFAULT_READERS,
    workers: WorkersOption = None,
    parse_timeout: ParseTimeoutOption = DEFAULT_PARSE_TIMEOUT,
    parse_memory: ParseMemoryOption = DEFAULT_PARSE_MEMORY,
    reset: ResetOption = False,
    dry_run: DryRunOption = False,
    price_per_mtok: PricePerMtokOption = None,
    wait: WaitOption = True,
    retry_failed: RetryFailedOption = False,
    json_out: JsonOption = False,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    progress: ProgressOption = None,
) -> None:
    """Index files and directories into the SQLite index."""
    if chunk_overlap is None:
        chunk_overlap = min(DEFAULT_CHUNK_OVERLAP, chunk_tokens // 8)
    where = db_location(db)
    if isinstance(where, Path) and db is not None and not dry_run:
        _db_dir_exists(ctx, where)
    _agree(ctx, chunk_tokens, chunk_overlap, max_batch_tokens)
    try:
        part = Shard.parse(shard) if shard is not None else None
        # A budget is the API key's: N parts indexing at once each take 1/N of it.
        parts = part.count if part else 1
        rpm, tpm = _share(rpm, parts), _share(tpm, parts)
        config = IndexConfig(
            db_path=where if isinstance(where, Path) else default_db_path(),
            db_url=where if isinstance(where, str) else None,
            walk=WalkConfig(
                include=tuple(include or ()),
                exclude=tuple(exclude or ()),
                max_file_size=max_file_size,
                max_document_size=max_document_size,
                follow_symlinks=follow_symlinks,
                hidden=hidden,
            ),
            chunk=ChunkConfig(
                chunk_tokens=chunk_tokens,
                chunk_overlap=chunk_overlap,
                pack=pack,
                tokenizer=tokenizer,
            ),
            readers=readers,
            workers=workers,
            parse_timeout=parse_timeout,
            parse_memory=parse_memory,
            embed_workers=concurrency,
            batch_inputs=batch_size,
            batch_tokens=max_batch_tokens,
            reset=reset,
            on_long_chunk=LongChunkPolicy(on_long_chunk),
            dry_run=dry_run,
            budget=Budget(rpm=rpm, tpm=tpm, price_per_mtok=price_per_mtok),
            wait=wait,
            grace=timeout,
            covers=tuple(covers or ()),
            shard=part,
            ray=ray,
            # A size given (flag or settings file) stays; the default fits the model.
            fit_chunks=_defaulted(ctx, "chunk_tokens"),
        )
        if tokenizer is not None and tokenizer not in TOKENIZER_NAMES:
            from ragidx.chunk.tokens import counter

            counter(tokenizer)  # a file that is no tokenizer stops the run here, not per file
        # Every option of the HTTP client, by its name (`HttpOptions`).
        http = EmbedOptions.from_settings(ctx.params, rpm=rpm, tpm=tpm)
        sources = paths_to_index(paths or [], null=null, retry_failed=retry_failed)
        embedder = embedder_for(provider, model, dimensions, http, quiet)
        if embedder.server is None:
            # The offline embedder is CPU work: more workers only hold more batches in memory.
            config = dataclasses.replace(config, embed_workers=DEFAULT_EMBED_WORKERS)
    except RagidxError as exc:
        fail(exc)
    if verbose and not quiet:
        stderr().print(effective_settings(embedder, config, http, ctx.meta.get("settings_file")))
    reporter = reporter_for(json_out, quiet, verbose, progress)
    # Ray prints its notes (a worker lost, a task retried) on the driver's stdout, which is
    # for data: they go to stderr, while the reporter keeps writing to stdout.
    notes = contextlib.redirect_stdout(sys.stderr) if ray else contextlib.nullcontext()
    with notes:
        code = execute(sources, embedder, config, reporter, retry_failed=retry_failed)
    raise typer.Exit(code)


def _share(budget: float | None, parts: int) -> float | None:
    return budget / parts if budget is not None else None


def _db_dir_exists(ctx: typer.Context, db: Path) -> None:
    """`fail` where the directory `--db` names for the index does not exist."""
    if (parent := missing_db_dir(db)) is not None:
        fail(
            ConfigError(
                f"{_source(ctx, 'db', _given_db(ctx, db))}: no directory {parent}"
                " to hold the index",
                hint="create it first; only the default .ragidx/ is made for you",
            )
        )


def _agree(
    ctx: typer.Context, chunk_tokens: int, chunk_overlap: int, max_batch_tokens: int | None
) -> None:
    """`fail` where one size rules out another (`ragidx.settings.conflict`)."""
    clash = conflict(chunk_tokens, chunk_overlap, max_batch_tokens)
    if clash is not None:
        name, reason = clash
        value = chunk_overlap if name == "chunk_overlap" else max_batch_tokens
        fail(ConfigError(f"{_source(ctx, name, value)}: {reason}"))


def _source(ctx: typer.Context, name: str, value: object) -> str:
    """Where the value of option `name` came from, in the words of a message."""
    source = ctx.get_parameter_source(name)
    option = f"--{name.replace('_', '-')}"
    if source is not None and source.name == "DEFAULT_MAP" and "settings_file" in ctx.meta:
        return from_file(ctx.meta["settings_file"], name.replace("_", "-"), value)
    envvar = next((p.envvar for p in ctx.command.params if p.name == name), None)
    if source is not None and source.name == "ENVIRONMENT" and isinstance(envvar, str):
        return from_env(envvar, str(value))
    return from_flag(option, str(value))


def _given_db(ctx: typer.Context, db: Path) -> object:
    """`--db` as it was written, where that is still at hand."""
    source = ctx.get_parameter_source("db")
    if source is not None and source.name == "ENVIRONMENT":
        return os.environ.get("RAGIDX_DB", db)
    if source is not None and source.name == "DEFAULT_MAP":
        return (ctx.default_map or {}).get("db", db)
    return db


def _defaulted(ctx: typer.Context, name: str) -> bool:
    """Whether an option has its default value, neither given nor from a settings file."""
    source = ctx.get_parameter_source(name)
    return source is None or source.name == "DEFAULT"
