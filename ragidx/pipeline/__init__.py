"""The run: walk, read, chunk, embed and store wired together as stages over bounded queues."""

from __future__ import annotations

from ragidx.pipeline.run import index, run_index

__all__ = ["index", "run_index"]
