"""`ragidx search` and `ragidx export`: what the index holds, read back."""

# No `from __future__ import annotations`: typer reads the command's annotations.

import asyncio
import json
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from ragidx.cli.common import (
    BaseUrlOption,
    DbOption,
    JsonOption,
    TimeoutOption,
    console,
    fail,
    open_store,
    stderr,
)
from ragidx.embed import closing
from ragidx.embed.defaults import DEFAULT_TIMEOUT
from ragidx.errors import RagidxError
from ragidx.query.search import SearchMode, index_embedder, search
from ragidx.report import display_path, markup_escape

__all__ = ["QueryCommand", "export_command", "search_command"]


class QueryCommand(TyperCommand):
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
        store = open_store(db)
        try:
            embedder = index_embedder(store, base_url, timeout, os.environ)
            work = search(store, embedder, query, k=k, mode=mode, on_damaged=_damaged_notice)
            hits = asyncio.run(closing(embedder, work))
        finally:
            store.close()
    except RagidxError as exc:
        fail(exc)
    from ragidx.report.text import hit_record, render_hits

    if json_out:
        for rank, hit in enumerate(hits, 1):
            print(json.dumps(hit_record(rank, hit), ensure_ascii=False))
    else:
        render_hits(console(), hits)


def _damaged_notice(path: str, count: int) -> None:
    vectors = f"{count:,} vectors of" if count > 1 else "a vector of"
    are = "are" if count > 1 else "is"
    stderr().print(
        f"warning: {vectors} {markup_escape(display_path(path))} {are} damaged; not ranked"
        " (`ragidx doctor --db INDEX` says more)"
    )


def export_command(
    db: DbOption = None,
    vectors: Annotated[
        bool, typer.Option("--vectors", help="Include each chunk's vector.")
    ] = False,
) -> None:
    """Stream every chunk as JSON lines on stdout."""
    from ragidx.query.export import export_lines

    try:
        store = open_store(db)
    except RagidxError as exc:
        fail(exc)
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
        fail(exc)
    finally:
        store.close()
