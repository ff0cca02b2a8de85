"""What every command shares: options held to their settings' rules, the options of the
embedder, `error: ...` / `hint: ...` on stderr, and the exit codes."""

# No `from __future__ import annotations`: typer reads the option types below at each start.

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from ragidx.config import db_path, default_db_path
from ragidx.embed import (
    DEFAULT_PROVIDER,
    PROVIDERS,
    Embedder,
    EmbedOptions,
    api_key_from_env,
    create_embedder,
    resolve_provider,
)
from ragidx.errors import ConfigError, RagidxError
from ragidx.report import markup_escape
from ragidx.settings import SETTINGS, from_env, from_flag
from ragidx.store import Store
from ragidx.store.locate import is_postgres_url, open_for_reading

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "BaseUrlOption",
    "DbOption",
    "DimensionsOption",
    "JsonOption",
    "ModelOption",
    "NormalizeOption",
    "ProviderOption",
    "TimeoutOption",
    "console",
    "db_location",
    "embedder_for",
    "fail",
    "open_store",
    "option",
    "setting_name",
    "stderr",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def setting_name(param: Any) -> str | None:
    """The `SETTINGS` name of an option: its long name (`--chunk-tokens`: chunk_tokens)."""
    if getattr(param, "param_type_name", None) != "option":
        return None
    longs = [o for o in param.opts if o.startswith("--")]
    return longs[0][2:].replace("-", "_") if longs else None


def _checked(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """A flag's or environment variable's text, held to the rules a settings file is held to
    (`SETTINGS`), in the same words; the file's values were checked when it was read."""
    source = ctx.get_parameter_source(param.name or "")
    name = setting_name(param)
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
            fail(ConfigError(f"{where}: {exc.message}", hint=exc.hint))
    return checked if setting.many else checked[0]


def _as_given(text: str) -> str:
    # Text goes to `_checked` untouched, so a bad number is reported as every other bad value.
    return text


def option(*names: str, help: str, **extra: Any) -> Any:
    """A `typer.Option` whose value, from a flag or a variable, `_checked` holds to its setting."""
    long = next(n for n in names if n.startswith("--")).split("/")[0]
    setting = SETTINGS[long[2:].replace("-", "_")]
    if setting.bounds:
        help = f"{help} {setting.bounds}"
    if setting.kind.name in ("INT", "NUMBER", "SIZE", "CHOICE"):
        extra.setdefault("parser", _as_given)
        extra.setdefault("metavar", setting.metavar)
    return typer.Option(*names, help=help, callback=_checked, **extra)


def _db_location(text: str) -> str:
    # From the text as given: typer's own Path would drop a trailing slash, and a URL's "//".
    return text if is_postgres_url(text) else str(db_path(text))


DbOption = Annotated[
    str | None,
    option(
        "--db",
        envvar="RAGIDX_DB",
        help="Index database, or a directory (DIR/ or one that exists) to hold index.db, or a"
        " Postgres URL (postgresql://user@host:5432/dbname). \\[default: .ragidx/index.db]",
        show_default=False,
        parser=_db_location,
    ),
]


def db_location(db: str | None) -> str | Path:
    """What `--db` names: a Postgres URL as given, else the SQLite file (the default where
    none is given)."""
    if db is None:
        return default_db_path()
    return db if is_postgres_url(db) else Path(db)


JsonOption = Annotated[bool, typer.Option("--json", help="Write JSON lines to stdout.")]

# The embedder's options, for `index` and `doctor`. One that reaches the HTTP client is
# also a field of `ragidx.embed.HttpOptions`, by the same name.
ProviderOption = Annotated[
    str | None,
    option(
        "--provider",
        envvar="RAGIDX_PROVIDER",
        help=f"Embedder: {', '.join(PROVIDERS)} (default: openai with --base-url, else hash).",
        show_default=False,
    ),
]
BaseUrlOption = Annotated[
    str | None,
    option("--base-url", envvar="RAGIDX_BASE_URL", help="Embedding server.", show_default=False),
]
ModelOption = Annotated[
    str | None,
    option("--model", envvar="RAGIDX_MODEL", help="Embedding model.", show_default=False),
]
DimensionsOption = Annotated[
    int | None,
    option("--dimensions", help="Vector dimensions (openai).", show_default=False),
]
NormalizeOption = Annotated[
    bool,
    typer.Option(
        "--normalize/--no-normalize",
        help="Store unit-length vectors, whatever the server returns (queries likewise).",
    ),
]
TimeoutOption = Annotated[float, option("--timeout", help="Seconds one request may take.")]


def stderr() -> "Console":
    return console(stderr=True)


def console(*, stderr: bool = False, soft_wrap: bool = True) -> "Console":
    # rich loads where something is printed: a quiet run that prints nothing does without.
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap)


def fail(exc: RagidxError) -> NoReturn:
    """`error: ...` and any `hint: ...` on stderr, redacted; exit with `EXIT_USAGE`."""
    from ragidx.redact import Redactor

    redact = Redactor.of()  # the message may quote a server, an exception or a URL
    out = stderr()
    out.print(f"[bold red]error[/]: {markup_escape(redact(exc.message))}")
    if exc.hint:
        out.print(f"[bold cyan]hint[/]: {markup_escape(redact(exc.hint))}")
    raise typer.Exit(EXIT_USAGE)


def embedder_for(
    provider: str | None, model: str | None, dims: int | None, http: EmbedOptions, quiet: bool
) -> Embedder:
    """The embedder the options ask for, with the API key from the environment; notes on
    stderr (unless `quiet`) where the choice is easy to miss. Raises `ConfigError`."""
    chosen = resolve_provider(provider, http.base_url)
    options = dataclasses.replace(http, api_key=api_key_from_env(chosen, os.environ))
    embedder = create_embedder(chosen, model=model, dims=dims, options=options)
    if chosen == DEFAULT_PROVIDER and provider is None and not quiet:
        stderr().print(
            f"note: no embedding server configured; using the offline hash embedder "
            f"({embedder.model}, {embedder.dims} dims)"
        )
    if (server := embedder.server) is not None and server.unsent_login and not quiet:
        # One Authorization header: the key wins, and the URL's login must not go unnoticed.
        stderr().print(
            "note: the API key is sent (Authorization: Bearer); the user and password in"
            " --base-url are not"
        )
    return embedder


def open_store(db: str | None) -> Store:
    """The index at `db` (or the default), read-only where it cannot be written (a CI
    artifact, an image, a shared mount). Raises `StoreError`."""
    return open_for_reading(db_location(db))
