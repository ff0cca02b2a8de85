"""Reporters render pipeline events and plain values: Rich on stderr, JSON lines on stdout.

This package and `cli.py` are the only places that import rich.
"""

from __future__ import annotations

from ragidx.report.base import Reporter, Reporters, display_path
from ragidx.report.jsonl import JsonLinesReporter
from ragidx.report.rich import RichReporter, markup_escape

__all__ = [
    "JsonLinesReporter",
    "Reporter",
    "Reporters",
    "RichReporter",
    "display_path",
    "markup_escape",
]
