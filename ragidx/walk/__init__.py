"""Stage 1, walk: paths in, `WalkItem`s out (files to consider, directories visited, skips).

Ignore rules, symlink and mount policy, and helper processes for large trees live here.
"""

from __future__ import annotations

from ragidx.walk.walker import (
    MISSING,
    DirVisited,
    Skipped,
    WalkItem,
    absolute,
    walk,
    walk_listings,
)

__all__ = ["MISSING", "DirVisited", "Skipped", "WalkItem", "absolute", "walk", "walk_listings"]
