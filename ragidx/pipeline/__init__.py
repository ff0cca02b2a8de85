"""The run: walk, read, chunk, embed and store wired together as stages over bounded queues."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragidx.pipeline.run import index, run_index

__all__ = ["index", "run_index"]


def __getattr__(name: str) -> Any:
    # The run loads on first use: importing one piece of the package (the stop signal, the
    # planner) does not load every stage, so commands that never index start sooner.
    if name in __all__:
        from ragidx.pipeline import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
