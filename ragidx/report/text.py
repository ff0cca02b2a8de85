"""How `stats`, `search` and `export` present what they read: records and Rich tables."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ragidx.query.export import location_fields
from ragidx.report.base import display_path
from ragidx.sizes import format_size

if TYPE_CHECKING:
    from ragidx.models import StoreStats
    from ragidx.query.search import SearchHit

__all__ = ["hit_record", "page_label", "render_hits", "render_stats"]


def hit_record(rank: int, hit: SearchHit) -> dict[str, Any]:
    """A hit as `search --json` prints it: one object per line, best first."""
    return {
        "rank": rank,
        "score": round(hit.score, 6),
        "path": display_path(hit.path),
        "ordinal": hit.ordinal,
        "line_start": hit.line_start,
        "line_end": hit.line_end,
        "heading_path": list(hit.heading_path),
        **location_fields(hit.unit, hit.page_start, hit.page_end),
        "text_rank": hit.text_rank,
        "vector_rank": hit.vector_rank,
        "text": hit.text,
    }


_UNIT_LABELS = {"page": "p.", "slide": "slide", "sheet": "sheet"}


def page_label(unit: str, start: int, end: int | None) -> str:
    """Where in a paged document: `p. 12-13`, `slide 4`, `sheet 2`."""
    label = _UNIT_LABELS.get(unit, unit)
    return f"{label} {start}" if end is None or end == start else f"{label} {start}-{end}"


def render_hits(console: Console, hits: list[SearchHit]) -> None:
    """Hits for a person: where each is, its heading path and score, its first lines."""
    if not hits:
        console.print("no matches")
        return
    for rank, hit in enumerate(hits, 1):
        if hit.unit is not None and hit.page_start is not None:
            where = f"{display_path(hit.path)} {page_label(hit.unit, hit.page_start, hit.page_end)}"
        else:
            where = f"{display_path(hit.path)}:{hit.line_start}-{hit.line_end}"
        heading = f"  [dim]{escape(' > '.join(hit.heading_path))}[/]" if hit.heading_path else ""
        console.print(f"[bold]{rank}.[/] [cyan]{escape(where)}[/]{heading}  score {hit.score:.4f}")
        lines = hit.text.strip().splitlines()
        snippet = "\n".join(lines[:4]) + ("\n…" if len(lines) > 4 else "")
        console.print(escape(snippet), style="dim" if console.no_color else None)
        console.print()


def _render_workers(console: Console, stats: StoreStats) -> None:
    """Each run in progress (or died in it) and those ended in the last hour, when there is
    more to see than the last run line says."""
    workers = stats.workers
    live = any(w.status in ("running", "died") for w in workers)
    if not workers or (len(workers) == 1 and not live):
        return
    table = Table(title="workers", title_justify="left", box=None)
    for name in ("run", "worker", "shard", "status", "done", "failed", "in flight", "heard"):
        justify: Literal["left", "right"] = "left" if name in ("worker", "status") else "right"
        table.add_column(name, justify=justify, no_wrap=True)
    now = time.time()
    for w in workers:
        heard = f"{max(now - w.heartbeat_at, 0):.0f} s ago" if w.heartbeat_at else "-"
        table.add_row(
            f"#{w.run_id}",
            escape(w.worker or "-"),
            w.shard or "all",
            w.status,
            f"{w.files_done:,}",
            f"{w.files_failed:,}",
            f"{w.in_flight:,}",
            heard,
        )
    console.print()
    console.print(table)


def render_stats(
    console: Console, stats: StoreStats, failures: list[tuple[str, str | None]], failed: bool
) -> None:
    if not any(stats.files.values()):
        console.print(f"index {escape(stats.db)}: empty, no file indexed yet")
        if stats.provider:
            console.print(f"embedder {stats.provider} {stats.model} ({stats.dims} dims)")
        return
    table = Table(show_header=False, box=None, title=f"index {stats.db}", title_justify="left")
    table.add_column(justify="left", style="bold", no_wrap=True)
    table.add_column(justify="left", overflow="fold")
    for status, count in stats.files.items():
        more = ""
        if status == "failed" and (lost := stats.failed_not_stored):
            # The last run reported these, but they have no row: see its output.
            more = f" (+{lost:,} in the last run that the index cannot hold: see its output)"
        table.add_row(f"files {status}", f"{count:,}{more}")
    for key, value in (
        ("chunks", stats.chunks),
        ("tokens", stats.tokens),
        ("vectors", stats.vectors),
    ):
        table.add_row(key, f"{value:,}")
    unused, held = stats.unused_vectors, stats.held_vectors
    table.add_row(
        "vector cache",
        f"{stats.cached_vectors:,} distinct, {unused:,} used by no chunk"
        + (" (`ragidx gc` drops them)" if unused else "")
        + (f", {held:,} kept for files not yet indexed" if held else ""),
    )
    embedder = f"{stats.provider} {stats.model} ({stats.dims} dims)"
    table.add_row("embedder", embedder if stats.provider else "none yet (no vector stored)")
    table.add_row(
        "chunking", f"{stats.chunk_tokens} tokens, overlap {stats.chunk_overlap} (last run)"
    )
    table.add_row("database", format_size(stats.db_bytes))
    types = ", ".join(f"{ext} {n}" for ext, n in stats.file_types.items())
    table.add_row("file types", types or "-")
    last = stats.last_run
    if last:
        when = dt.datetime.fromtimestamp(last.started_at).isoformat(timespec="seconds")
        seconds = f", {last.seconds:.2f} s" if last.seconds is not None else ""
        summary = last.summary or {}
        counts = ", ".join(
            f"{summary[k]} {k}"
            for k in ("indexed", "unchanged", "removed", "skipped", "failed")
            if summary.get(k)
        )
        table.add_row("last run", f"#{last.id} {when} {last.status}{seconds}; {counts}")
        if "embedded" in summary:
            table.add_row(
                "last run chunks",
                f"{summary['embedded']:,} embedded, {summary['reused']:,} reused from the cache",
            )
    console.print(table)
    _render_workers(console, stats)
    if failed:
        console.print()
        if not failures:
            console.print("no failed files")
        for path, reason in failures:
            console.print(f"[bold red]failed[/] {escape(path)}: {escape(reason or '')}")
