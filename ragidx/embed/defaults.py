"""Defaults of the HTTP embedders, apart from them so the CLI can show them without httpx."""

from __future__ import annotations

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_DEADLINE", "DEFAULT_MAX_RETRIES", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 6
DEFAULT_CONCURRENCY = 4
DEFAULT_DEADLINE = 600.0
