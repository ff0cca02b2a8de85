"""The command line: parse options, build a config, call the library, map the outcome to an
exit code. 0: all done; 1: finished, some files failed; 2: usage or configuration error;
130: interrupted (Ctrl-C); 143: terminated (SIGTERM)."""

# No `from __future__ import annotations` here: typer would evaluate every command's
# annotations from strings at each start, 10 ms of a re-run that has nothing to do.

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand

from ragidx.config import (
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_TOKENS,
    DEFAULT_EMBED_WORKERS,
    DEFAULT_MAX_FILE_SIZE,
    DEFAULT_READERS,
    Budget,
    ChunkConfig,
    IndexConfig,
    LongChunkPolicy,
    WalkConfig,
    db_path,
    default_db_path,
    missing_db_dir,
)
from ragidx.embed import (
    DEFAULT_PROVIDER,
    PROVIDERS,
    Embedder,
    EmbedOptions,
    api_key_from_env,
    as_http,
    create_embedder,
    resolve_provider,
)
from ragidx.embed.defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ragidx.errors import ConfigError, Interrupted, RagidxError, StoreError
from ragidx.maintenance.gc import collect_garbage
from ragidx.pipeline.interrupt import StopSignal
from ragidx.pipeline.run import run_index
from ragidx.query.search import SearchMode, search
from ragidx.report import (
    JsonLinesReporter,
    Reporter,
    Reporters,
    RichReporter,
    display_path,
    markup_escape,
)
from ragidx.settings import SETTINGS, conflict, from_env, from_file, from_flag, load_settings, shown
from ragidx.sizes import format_size
from ragidx.store import Footprint, SqliteStore

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["app", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
T = TypeVar("T")

app = typer.Typer(
    name="ragidx",
    help="Index documents for retrieval-augmented generation: walk, chunk, embed, store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _setting_name(param: Any) -> str | None:
    """The `SETTINGS` name of an option: its long name (`--chunk-tokens`: chunk_tokens)."""
    if getattr(param, "param_type_name", None) != "option":
        return None
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0][2:].replace("-", "_") if longs else None


def _checked(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """A flag's or environment variable's text, held to the rules a settings file is held to
    (`SETTINGS`), in the same words; the file's values were checked when it was read."""
    source = ctx.get_parameter_source(param.name or "")
    name = _setting_name(param)
    if ctx.resilient_parsing or value is None or name is None or source is None:
        return value
    if source.name not in ("COMMANDLINE", "ENVIRONMENT"):
        return value
    setting = SETTINGS[name]
    texts = list(value) if setting.many else [value]
    checked = []
    for text in texts:
        try:
            parsed = setting.parse(str(text))
            checked.append(text if isinstance(text, Path) else parsed)  # typer made the Path
        except ConfigError as exc:
            if source.name == "ENVIRONMENT" and isinstance(param.envvar, str):
                where = from_env(param.envvar, os.environ.get(param.envvar, str(text)))
            else:
                where = from_flag(f"--{name.replace('_', '-')}", str(text))
            _fail(ConfigError(f"{where}: {exc.message}", hint=exc.hint))
    return checked if setting.many else checked[0]


def _as_given(text: str) -> str:
    # Text goes to `_checked` untouched, so a bad number is reported as every other bad value.
    return text


def _option(*names: str, help: str, **extra: Any) -> Any:
    """A `typer.Option` whose value, from a flag or a variable, `_checked` holds to its setting."""
    long = next(n for n in names if n.startswith("--")).split("/")[0]
    setting = SETTINGS[long[2:].replace("-", "_")]
    if setting.bounds:
        help = f"{help} {setting.bounds}"
    if setting.kind.name in ("INT", "NUMBER", "SIZE", "CHOICE"):
        extra.setdefault("parser", _as_given)
        extra.setdefault("metavar", setting.metavar)
    return typer.Option(*names, help=help, callback=_checked, **extra)


def _db_file(text: str) -> Path:
    # From the text as given: typer's own Path would drop a trailing slash.
    return db_path(text)


DbOption = Annotated[
    Path | None,
    _option(
        "--db",
        envvar="RAGIDX_DB",
        help="Index database, or a directory (DIR/ or one that exists) to hold index.db."
        " \\[default: .ragidx/index.db]",
        show_default=False,
        parser=_db_file,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Write JSON lines to stdout.")]


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            shown = version("ragidx")
        except PackageNotFoundError:  # run from a source tree on PYTHONPATH, not installed
            from ragidx import __version__ as shown
        print(f"ragidx {shown}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _settings_file(
    ctx: typer.Context,
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Index documents for retrieval-augmented generation: walk, chunk, embed, store."""
    try:
        path, settings = load_settings(Path.cwd())  # every value checked against SETTINGS
    except RagidxError as exc:
        _fail(exc)
    if path is None:
        return
    commands = getattr(ctx.command, "commands", {})
    ctx.default_map = {
        command_name: {
            p.name: settings[name] for p in command.params if (name := _setting_name(p)) in settings
        }
        for command_name, command in commands.items()
    }
    ctx.meta["settings_file"] = path


def _stderr() -> "Console":
    return _console(stderr=True)


def _console(*, stderr: bool = False, soft_wrap: bool = True) -> "Console":
    # rich loads where something is printed: a quiet run that prints nothing does without.
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap)


def _fail(exc: RagidxError) -> NoReturn:
    from ragidx.redact import Redactor

    redact = Redactor.of()  # the message may quote a server, an exception or a URL
    console = _stderr()
    console.print(f"[bold red]error[/]: {markup_escape(redact(exc.message))}")
    if exc.hint:
        console.print(f"[bold cyan]hint[/]: {markup_escape(redact(exc.hint))}")
    raise typer.Exit(EXIT_USAGE)


def _stdin_paths(null: bool) -> Iterator[str]:
    if null:
        buffer = ""
        while block := sys.stdin.read(65536):
            *complete, buffer = (buffer + block).split("\0")
            yield from (p for p in complete if p)
        if buffer:
            yield buffer
    else:
        for line in sys.stdin:
            if path := line.rstrip("\r\n"):
                yield path


def _embedder(
    provider: str | None, model: str | None, dims: int | None, http: EmbedOptions, quiet: bool
) -> Embedder:
    chosen = resolve_provider(provider, http.base_url)
    options = dataclasses.replace(http, api_key=api_key_from_env(chosen, os.environ))
    embedder = create_embedder(chosen, model=model, dims=dims, options=options)
    if chosen == DEFAULT_PROVIDER and provider is None and not quiet:
        _stderr().print(
            f"note: no embedding server configured; using the offline hash embedder "
            f"({embedder.model}, {embedder.dims} dims)"
        )
    settings = client.settings if (client := as_http(embedder)) is not None else None
    if settings is not None and settings.login and settings.auth == "bearer" and not quiet:
        # One Authorization header: the key wins, and the URL's login must not go unnoticed.
        _stderr().print(
            "note: the API key is sent (Authorization: Bearer); the user and password in"
            " --base-url are not"
        )
    return embedder


ProviderOption = Annotated[
    str | None,
    _option(
        "--provider",
        envvar="RAGIDX_PROVIDER",
        help=f"Embedder: {', '.join(PROVIDERS)} (default: openai with --base-url, else hash).",
        show_default=False,
    ),
]
BaseUrlOption = Annotated[
    str | None,
    _option("--base-url", envvar="RAGIDX_BASE_URL", help="Embedding server.", show_default=False),
]
ModelOption = Annotated[
    str | None,
    _option("--model", envvar="RAGIDX_MODEL", help="Embedding model.", show_default=False),
]
DimensionsOption = Annotated[
    int | None,
    _option("--dimensions", help="Vector dimensions (openai).", show_default=False),
]
NormalizeOption = Annotated[
    bool,
    typer.Option(
        "--normalize/--no-normalize",
        help="Store unit-length vectors, whatever the server returns (queries likewise).",
    ),
]
TimeoutOption = Annotated[float, _option("--timeout", help="Seconds one request may take.")]


@app.command("index")
def index_command(
    ctx: typer.Context,
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files and directories to index; - reads paths from stdin.", show_default=False
        ),
    ] = None,
    db: DbOption = None,
    null: Annotated[
        bool, typer.Option("--null", "-0", help="Paths on stdin are NUL-separated.")
    ] = False,
    covers: Annotated[
        list[Path] | None,
        _option(
            "--covers",
            help="The paths given are every file to index under DIR: remove the others.",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    include: Annotated[
        list[str] | None, _option("--include", help="Only files matching this glob.")
    ] = None,
    exclude: Annotated[
        list[str] | None, _option("--exclude", help="Leave out paths matching this glob.")
    ] = None,
    max_file_size: Annotated[
        int,
        _option(
            "--max-file-size",
            help="Skip larger files (10MiB, 512KiB, bytes)."
            f" \\[default: {DEFAULT_MAX_FILE_SIZE // 1024**2}MiB]",
            show_default=False,
        ),
    ] = DEFAULT_MAX_FILE_SIZE,
    follow_symlinks: Annotated[
        bool, typer.Option("--follow-symlinks", help="Follow symbolic links (loops are cut).")
    ] = False,
    hidden: Annotated[
        bool, typer.Option("--hidden", help="Index hidden files and directories too.")
    ] = False,
    chunk_tokens: Annotated[
        int, _option("--chunk-tokens", help="Token budget of one chunk (estimated).")
    ] = DEFAULT_CHUNK_TOKENS,
    chunk_overlap: Annotated[
        int | None,
        _option(
            "--chunk-overlap",
            help=f"Tokens a chunk repeats from the one before. [default: {DEFAULT_CHUNK_OVERLAP},"
            " or an eighth of --chunk-tokens if less]",
            show_default=False,
        ),
    ] = None,
    provider: ProviderOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    max_retries: Annotated[
        int, _option("--max-retries", help="Retries of one request.")
    ] = DEFAULT_MAX_RETRIES,
    concurrency: Annotated[
        int, _option("--concurrency", help="Requests in flight at most.")
    ] = DEFAULT_CONCURRENCY,
    on_long_chunk: Annotated[
        str, _option("--on-long-chunk", help="A chunk the model refuses as too long.")
    ] = LongChunkPolicy.SPLIT.value,
    rpm: Annotated[
        float | None,
        _option("--rpm", help="Requests per minute at most.", show_default=False),
    ] = None,
    tpm: Annotated[
        float | None,
        _option("--tpm", help="Tokens per minute at most.", show_default=False),
    ] = None,
    normalize: NormalizeOption = True,
    batch_size: Annotated[
        int | None, _option("--batch-size", help="Inputs per embedding request.")
    ] = None,
    max_batch_tokens: Annotated[
        int | None, _option("--max-batch-tokens", help="Tokens per embedding request.")
    ] = None,
    readers: Annotated[
        int, _option("--readers", help="Files read and chunked at once.")
    ] = DEFAULT_READERS,
    reset: Annotated[
        bool, typer.Option("--reset", help="Empty the index first, cached vectors too.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read and chunk only: report what would be sent, the time under --rpm/--tpm"
            " and the cost; embed and write nothing.",
        ),
    ] = False,
    price_per_mtok: Annotated[
        float | None,
        _option(
            "--price-per-mtok",
            help="Price per million tokens, for --dry-run's cost.",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait", help="Wait while another ragidx writes the index, or refuse."
        ),
    ] = True,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed", help="Index again only the files that failed (under PATHS, if given)."
        ),
    ] = False,
    json_out: JsonOption = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only errors and failed files.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="A line for every file that changed.")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal)."),
    ] = None,
) -> None:
    """Index files and directories into the SQLite index."""
    if chunk_overlap is None:
        chunk_overlap = min(DEFAULT_CHUNK_OVERLAP, chunk_tokens // 8)
    if db is not None and not dry_run and (parent := missing_db_dir(db)) is not None:
        _fail(
            ConfigError(
                f"{_source(ctx, 'db', _given_db(ctx, db))}: no directory {parent}"
                " to hold the index",
                hint="create it first; only the default .ragidx/ is made for you",
            )
        )
    clash = conflict(chunk_tokens, chunk_overlap, max_batch_tokens)
    if clash is not None:
        name, reason = clash
        value = chunk_overlap if name == "chunk_overlap" else max_batch_tokens
        _fail(ConfigError(f"{_source(ctx, name, value)}: {reason}"))
    try:
        config = IndexConfig(
            db_path=db or default_db_path(),
            walk=WalkConfig(
                include=tuple(include or ()),
                exclude=tuple(exclude or ()),
                max_file_size=max_file_size,
                follow_symlinks=follow_symlinks,
                hidden=hidden,
            ),
            chunk=ChunkConfig(chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap),
            readers=readers,
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
            # A size given (flag or settings file) stays; the default fits the model.
            fit_chunks=_defaulted(ctx, "chunk_tokens"),
        )
        http = EmbedOptions(
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            concurrency=concurrency,
            max_inputs=batch_size,
            max_tokens=max_batch_tokens,
            rpm=rpm,
            tpm=tpm,
            normalize=normalize,
        )
        sources = _sources(paths or [], null=null, retry_failed=retry_failed)
        embedder = _embedder(provider, model, dimensions, http, quiet)
        if as_http(embedder) is None:
            # The offline embedder is CPU work: more workers only hold more batches in memory.
            config = dataclasses.replace(config, embed_workers=DEFAULT_EMBED_WORKERS)
    except RagidxError as exc:
        _fail(exc)
    if verbose and not quiet:
        _stderr().print(_effective(embedder, config, http, ctx.meta.get("settings_file")))
    reporter = _reporter(json_out, quiet, verbose, progress)
    stop = StopSignal()
    work = run_index(sources, embedder, config, reporter, retry_failed=retry_failed, stop=stop)
    # A run that fails before it stores anything leaves no index, lock or directory behind.
    footprint = None if dry_run else Footprint.before(config.db_path)
    try:
        with _stop_on_signals(stop, reporter):
            summary = asyncio.run(_run(embedder, work))
    except Interrupted as exc:
        _take_back(footprint, reporter)
        _stderr().print(f"{_stopped_by(stop)}: {exc.message}")
        raise typer.Exit(stop.exit_code) from None
    except RagidxError as exc:
        _take_back(footprint, reporter)
        _fail(exc)
    except KeyboardInterrupt:
        _take_back(footprint, reporter)
        _stderr().print("interrupted: files already committed stay in the index")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    reporter.close()
    if summary.interrupted:
        if footprint is not None:
            footprint.take_back()
        raise typer.Exit(stop.exit_code)
    raise typer.Exit(EXIT_OK if summary.ok else EXIT_FAILED)


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


def _take_back(footprint: Footprint | None, reporter: Reporter) -> None:
    reporter.close()
    if footprint is not None:
        footprint.take_back()


@contextlib.contextmanager
def _stop_on_signals(stop: StopSignal, reporter: Reporter) -> Iterator[None]:
    """The first Ctrl-C or SIGTERM (what `timeout`, systemd and Kubernetes send first) asks
    the run to stop cleanly; a second of either quits at once. Either way the index stays
    whole: every commit is one SQLite transaction."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread (CliRunner in a thread, say)
        return

    def on_signal(signum: int, frame: object) -> None:
        if not stop.requested:
            stop.request(signum)
            return
        # Only the JSON lines of committed files go out: closing the progress display from
        # inside a signal handler could wait on the lock its own thread holds.
        for each in getattr(reporter, "reporters", (reporter,)):
            if isinstance(each, JsonLinesReporter):
                each.close()
        again = "terminated" if signum == signal.SIGTERM else "interrupted"
        os.write(2, f"\n{again} again: quitting now; committed files stay in the index\n".encode())
        os._exit(128 + signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped_by(stop: StopSignal) -> str:
    return "terminated" if stop.signum == signal.SIGTERM else "interrupted"


def _effective(
    embedder: Embedder, config: IndexConfig, http: EmbedOptions, settings_file: Path | None
) -> str:
    """The settings in force, for --verbose. The API key is only said to be set or not."""
    http_embedder = as_http(embedder)
    parts = {
        "provider": embedder.provider,
        "model": embedder.model,
        "dims": embedder.dims or "(from the server)",
        "base_url": shown(http_embedder.settings.base_url, 500) if http_embedder else None,
        "api_key": "set" if http_embedder and http_embedder.settings.api_key else None,
        "auth": http_embedder.settings.auth if http_embedder else None,
        "batch_size": config.batch_inputs or embedder.max_inputs,
        "max_batch_tokens": config.batch_tokens or embedder.max_tokens,
        "concurrency": http.concurrency,
        "rpm": http.rpm,
        "tpm": http.tpm,
        "timeout": http.timeout,
        "max_retries": http.max_retries,
        "chunk_tokens": config.chunk.chunk_tokens,
        "chunk_overlap": config.chunk.chunk_overlap,
        "on_long_chunk": config.on_long_chunk.value,
        "db": config.db_path,
        "settings_file": settings_file,
    }
    return "settings: " + " ".join(f"{k}={v}" for k, v in parts.items() if v is not None)


async def _run(embedder: Embedder, work: Awaitable[T]) -> T:
    """Await `work`, then release the embedder's connections, whatever happened."""
    try:
        return await work
    finally:
        await embedder.aclose()


def _sources(paths: list[str], *, null: bool, retry_failed: bool) -> Iterable[str]:
    """The paths to index: the arguments, or a lazy stream of paths from stdin for `-`."""
    if not paths and not retry_failed:
        raise ConfigError("give at least one PATH, or - to read paths from stdin")
    if "-" in paths and len(paths) > 1:
        raise ConfigError("`-` (paths from stdin) cannot be combined with other paths")
    if null and paths != ["-"]:
        raise ConfigError("--null applies to paths read from stdin", hint="ragidx index --null -")
    return _stdin_paths(null) if paths == ["-"] else paths


def _reporter(json_out: bool, quiet: bool, verbose: bool, progress: bool | None) -> Reporter:
    reporters: list[Reporter] = []
    if json_out:
        reporters.append(JsonLinesReporter(sys.stdout))
    console: Console | Callable[[], Console] = _stderr
    show = False
    if not quiet and progress is not False:
        console = _stderr()
        show = progress or console.is_terminal
    reporters.append(RichReporter(console, progress=show, verbose=verbose, summary=not quiet))
    return Reporters(*reporters)


def _open(db: Path | None) -> SqliteStore:
    # Read-only where the index cannot be written (a CI artifact, an image, a shared mount).
    return SqliteStore.open_for_reading(db or default_db_path())


@app.command("stats")
def stats_command(
    db: DbOption = None,
    json_out: JsonOption = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="List failed files and reasons.")
    ] = False,
) -> None:
    """Describe the index: files by status, chunks, vectors, embedder, last run."""
    try:
        store = _open(db)
        try:
            stats = store.stats()
            failures = store.failed_files() if failed else []
        finally:
            store.close()
    except RagidxError as exc:
        _fail(exc)
    if json_out:
        if failed:
            stats["failed_files"] = [{"path": display_path(p), "reason": r} for p, r in failures]
        print(json.dumps(stats, ensure_ascii=False))
        return
    from ragidx.report.text import render_stats

    render_stats(
        _console(soft_wrap=False), stats, [(display_path(p), r) for p, r in failures], failed
    )


class _QueryCommand(TyperCommand):
    """A command whose one argument may start with `-`: `search -sTCP:LISTEN` searches for
    the flag. What is not one of the command's options is the query, wherever it stands."""

    # Any: typer's Context subclasses the parser's, which typer does not export.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _query_last(ctx, self.get_params(ctx), args))


def _query_last(ctx: Any, params: list[Any], args: list[str]) -> list[str]:
    """`args` with a first argument that looks like an option but is none moved behind `--`,
    after every option, so the parser takes it as the argument it is."""
    options = {n: p for p in params if p.param_type_name == "option" for n in _names(p)}
    i = 0
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return args  # the parser sees the argument for what it is
        if (param := options.get(name)) is not None:
            i += 2 if name == arg and _takes_value(param) else 1
        elif (param := options.get(arg[:2])) is not None and _takes_value(param):
            if not _converts(ctx, param, arg[2:]):  # `-k5` is an option, `-kill` a query
                return [*args[:i], *args[i + 1 :], "--", arg]
            i += 1
        else:
            return [*args[:i], *args[i + 1 :], "--", arg]
    return args


def _names(param: Any) -> list[str]:
    return [*param.opts, *param.secondary_opts]


def _takes_value(param: Any) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def _converts(ctx: Any, param: Any, value: str) -> bool:
    try:
        param.type(value, param, ctx)
    except typer.BadParameter:
        return False
    return True


@app.command("search", cls=_QueryCommand)
def search_command(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[
        int, typer.Option("-k", "--top", min=1, max=1000, help="How many chunks to return.")
    ] = 5,
    mode: Annotated[
        SearchMode, typer.Option("--mode", help="hybrid (BM25 + vectors), vector or text.")
    ] = SearchMode.HYBRID,
    db: DbOption = None,
    json_out: JsonOption = False,
    base_url: BaseUrlOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
) -> None:
    """Find the chunks that best match QUERY."""
    try:
        store = _open(db)
        try:
            embedder = _index_embedder(store, base_url, timeout)
            work = search(store, embedder, query, k=k, mode=mode, on_damaged=_damaged_notice)
            hits = asyncio.run(_run(embedder, work))
        finally:
            store.close()
    except RagidxError as exc:
        _fail(exc)
    from ragidx.report.text import hit_record, render_hits

    if json_out:
        for rank, hit in enumerate(hits, 1):
            print(json.dumps(hit_record(rank, hit), ensure_ascii=False))
    else:
        render_hits(_console(), hits)


def _damaged_notice(path: str, count: int) -> None:
    vectors = f"{count:,} vectors of" if count > 1 else "a vector of"
    are = "are" if count > 1 else "is"
    _stderr().print(
        f"warning: {vectors} {markup_escape(display_path(path))} {are} damaged; not ranked"
        " (`ragidx doctor --db INDEX` says more)"
    )


def _index_embedder(store: SqliteStore, base_url: str | None, timeout: float) -> Embedder:
    """The embedder the index was built with, to embed queries in the same space."""
    manifest = store.manifest()
    if "provider" not in manifest:
        raise StoreError(f"the index {store.path} is empty", hint="run `ragidx index PATH` first")
    provider = manifest["provider"]
    options = EmbedOptions(
        base_url=base_url or manifest.get("base_url"),
        api_key=api_key_from_env(provider, os.environ),
        timeout=timeout,
        normalize=manifest.get("normalize", "true") == "true",  # queries as the documents
    )
    return create_embedder(
        provider, model=manifest.get("model"), dims=int(manifest["dims"]), options=options
    )


@app.command("export")
def export_command(
    db: DbOption = None,
    vectors: Annotated[
        bool, typer.Option("--vectors", help="Include each chunk's vector.")
    ] = False,
) -> None:
    """Stream every chunk as JSON lines on stdout."""
    from ragidx.query.export import export_lines

    try:
        store = _open(db)
    except RagidxError as exc:
        _fail(exc)
    try:
        sys.stdout.flush()
        out = sys.stdout.buffer
        for lines in export_lines(store.iter_chunks(vectors=vectors), vectors=vectors):
            out.write(lines)
        out.flush()
    except BrokenPipeError:
        # The reader (head, a closed pipe) has what it wanted.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
    except RagidxError as exc:
        _fail(exc)
    finally:
        store.close()


@app.command("gc")
def gc_command(
    db: DbOption = None,
    vacuum: Annotated[
        bool, typer.Option("--vacuum/--no-vacuum", help="Shrink the database file afterwards.")
    ] = True,
    json_out: JsonOption = False,
) -> None:
    """Drop cached vectors that no chunk uses any more (those a file not yet indexed still
    needs stay)."""
    path = db or default_db_path()
    try:
        result = asyncio.run(collect_garbage(path, vacuum=vacuum, on_wait=_waiting_notice))
    except RagidxError as exc:
        _fail(exc)
    if json_out:
        print(json.dumps(dataclasses.asdict(result)))
        return
    kept = f" (kept {result.held:,} for files not yet indexed)" if result.held else ""
    size = format_size(result.bytes_after)
    if vacuum:
        freed = format_size(max(result.bytes_before - result.bytes_after, 0))
        where = f"the index is {size} ({freed} freed)"
    else:
        # Without a vacuum the file keeps its size: the pages freed are reused by later writes.
        where = f"the index is {size}, {format_size(result.free_bytes)} of it free pages"
    _stderr().print(f"dropped {result.vectors:,} unused vectors{kept}; {where}")


def _waiting_notice(holder: str | None) -> None:
    who = f" (pid {holder})" if holder else ""
    _stderr().print(f"waiting: another ragidx{who} is writing the index")


@app.command("doctor")
def doctor_command(
    provider: ProviderOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    normalize: NormalizeOption = True,
    json_out: JsonOption = False,
    check_db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Check this index instead: SQLite's integrity check, then every file's chunks"
            " and vectors.",
            show_default=False,
        ),
    ] = None,
    salvage: Annotated[
        bool,
        typer.Option(
            "--salvage",
            help="Replace the --db index by a fresh one that keeps its intact cached vectors"
            " (the old file is kept as FILE.damaged); then index again.",
        ),
    ] = False,
) -> None:
    """Send one small request to the embedder and report what it says, with hints; or, with
    --db, check an index."""
    from ragidx.maintenance.doctor import check_index, diagnose, salvage_index

    try:
        if check_db is not None or salvage:
            path = check_db or default_db_path()
            checks = salvage_index(path) if salvage else check_index(path)
        else:
            http = EmbedOptions(
                base_url=base_url, timeout=timeout, max_retries=0, normalize=normalize
            )
            embedder = _embedder(provider, model, dimensions, http, quiet=True)
            checks = asyncio.run(_run(embedder, diagnose(embedder)))
    except RagidxError as exc:
        _fail(exc)
    if json_out:
        for check in checks:
            print(json.dumps(dataclasses.asdict(check), ensure_ascii=False))
    else:
        console = _console()
        for check in checks:
            mark = "[green]ok[/]  " if check.ok else "[bold red]fail[/]"
            console.print(f"{mark} {check.name}: {markup_escape(check.detail)}")
            if check.hint:
                console.print(f"     [bold cyan]hint[/]: {markup_escape(check.hint)}")
    raise typer.Exit(EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED)


def main() -> None:
    app()
