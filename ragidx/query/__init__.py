"""Reading an index back: search (vector, keyword, hybrid) and export."""

from __future__ import annotations

from ragidx.query.search import SearchHit, SearchMode, search

__all__ = ["SearchHit", "SearchMode", "search"]
