"""`ragidx stats`, `ragidx gc` and `ragidx doctor`: look after an index and its embedder."""

# No `from __future__ import annotations`: typer reads the commands' annotations.

import asyncio
import dataclasses
import json
from typing import Annotated

import typer

from ragidx.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    BaseUrlOption,
    DbOption,
    DimensionsOption,
    JsonOption,
    ModelOption,
    NormalizeOption,
    ProviderOption,
    TimeoutOption,
    console,
    db_location,
    embedder_for,
    fail,
    open_store,
    stderr,
)
from ragidx.config import db_path, default_db_path
from ragidx.embed import EmbedOptions, closing
from ragidx.embed.defaults import DEFAULT_TIMEOUT
from ragidx.errors import ConfigError, RagidxError
from ragidx.maintenance.gc import collect_garbage
from ragidx.report import display_path, markup_escape
from ragidx.sizes import format_size
from ragidx.store.locate import is_postgres_url

__all__ = ["doctor_command", "gc_command", "stats_command"]


def stats_command(
    db: DbOption = None,
    json_out: JsonOption = False,
    failed: Annotated[
        bool, typer.Option("--failed", help="List failed files and reasons.")
    ] = False,
) -> None:
    """Describe the index: files by status, chunks, vectors, embedder, last run."""
    try:
        store = open_store(db)
        try:
            stats = store.stats()
            failures = store.failed_files() if failed else []
        finally:
            store.close()
    except RagidxError as exc:
        fail(exc)
    if json_out:
        record = stats.as_dict()
        if failed:
            record["failed_files"] = [{"path": display_path(p), "reason": r} for p, r in failures]
        print(json.dumps(record, ensure_ascii=False))
        return
    from ragidx.report.text import render_stats

    render_stats(
        console(soft_wrap=False), stats, [(display_path(p), r) for p, r in failures], failed
    )


def gc_command(
    db: DbOption = None,
    vacuum: Annotated[
        bool, typer.Option("--vacuum/--no-vacuum", help="Shrink the database file afterwards.")
    ] = True,
    json_out: JsonOption = False,
) -> None:
    """Drop cached vectors that no chunk uses any more (those a file not yet indexed still
    needs stay)."""
    try:
        work = collect_garbage(db_location(db), vacuum=vacuum, on_wait=_waiting_notice)
        result = asyncio.run(work)
    except RagidxError as exc:
        fail(exc)
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
    stderr().print(f"dropped {result.vectors:,} unused vectors{kept}; {where}")


def _waiting_notice(holder: str | None) -> None:
    who = f" (pid {holder})" if holder else ""
    stderr().print(f"waiting: another ragidx{who} is writing the index")


def doctor_command(
    ctx: typer.Context,
    provider: ProviderOption = None,
    base_url: BaseUrlOption = None,
    model: ModelOption = None,
    dimensions: DimensionsOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    normalize: NormalizeOption = True,
    json_out: JsonOption = False,
    check_db: Annotated[
        str | None,
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
            if check_db is not None and is_postgres_url(check_db):
                raise ConfigError(
                    "doctor --db checks a SQLite index file, not a Postgres one",
                    hint="`ragidx stats --db URL` reads a Postgres index; its server checks"
                    " its own pages",
                )
            path = db_path(check_db) if check_db is not None else default_db_path()
            checks = salvage_index(path) if salvage else check_index(path)
        else:
            # Its HTTP options by name (`HttpOptions`); one request, not retried.
            http = EmbedOptions.from_settings(ctx.params, max_retries=0)
            embedder = embedder_for(provider, model, dimensions, http, quiet=True)
            checks = asyncio.run(closing(embedder, diagnose(embedder)))
    except RagidxError as exc:
        fail(exc)
    if json_out:
        for check in checks:
            print(json.dumps(dataclasses.asdict(check), ensure_ascii=False))
    else:
        out = console()
        for check in checks:
            mark = "[green]ok[/]  " if check.ok else "[bold red]fail[/]"
            out.print(f"{mark} {check.name}: {markup_escape(check.detail)}")
            if check.hint:
                out.print(f"     [bold cyan]hint[/]: {markup_escape(check.hint)}")
    raise typer.Exit(EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED)
