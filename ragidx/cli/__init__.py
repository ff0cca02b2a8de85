"""The command line: parse options, build a config, call the library, map the outcome to an
exit code. 0: all done; 1: finished, some files failed; 2: usage or configuration error;
130: interrupted (Ctrl-C); 143: terminated (SIGTERM).

One module per command group: `index` (with `running`, what happens around a run),
`query` (search, export), `maintain` (stats, gc, doctor); `common` holds what they share.
This module is the `app` they are registered on, and its settings file."""

# No `from __future__ import annotations` here: typer would evaluate every command's
# annotations from strings at each start, 10 ms of a re-run that has nothing to do.

from pathlib import Path
from typing import Annotated

import typer

from ragidx.cli.common import EXIT_OK, fail, setting_name
from ragidx.cli.index import index_command
from ragidx.cli.maintain import doctor_command, gc_command, stats_command
from ragidx.cli.query import QueryCommand, export_command, search_command
from ragidx.errors import RagidxError
from ragidx.settings import load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="ragidx",
    help="Index documents for retrieval-augmented generation: walk, chunk, embed, store.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
        fail(exc)
    if path is None:
        return
    commands = getattr(ctx.command, "commands", {})
    ctx.default_map = {
        command_name: {
            p.name: settings[name] for p in command.params if (name := setting_name(p)) in settings
        }
        for command_name, command in commands.items()
    }
    ctx.meta["settings_file"] = path


# In this order in `ragidx --help`.
app.command("index")(index_command)
app.command("stats")(stats_command)
app.command("search", cls=QueryCommand)(search_command)
app.command("export")(export_command)
app.command("gc")(gc_command)
app.command("doctor")(doctor_command)


def main() -> None:
    app()
