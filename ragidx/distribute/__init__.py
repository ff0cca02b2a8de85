"""Indexing on a Ray cluster (`ragidx index --ray`, the `ray` extra).

The run that `--ray` starts (`driver.RayRun`) walks, plans and removes as any run does, and
sends the files to read to Ray tasks in batches; each task (`task.index_part`) reads,
chunks, embeds and commits its files into the Postgres index as a part of that run. Ray is
imported only here, and only for `--ray` (`cluster`).
"""

from __future__ import annotations

__all__: list[str] = []
