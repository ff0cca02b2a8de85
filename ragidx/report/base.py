"""The reporter seam, and how paths are shown."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from ragidx.events import Event

__all__ = ["Reporter", "Reporters", "display_path"]


class Reporter(Protocol):
    """Takes every event of a run; `close` is called once, after the last."""

    def __call__(self, event: Event) -> None: ...

    def close(self) -> None: ...


class Reporters:
    """Several reporters as one, each seeing every event in order."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def __call__(self, event: Event) -> None:
        for reporter in self.reporters:
            reporter(event)

    def close(self) -> None:
        for reporter in self.reporters:
            reporter.close()


def display_path(path: str | Path, cwd: str | None = None) -> str:
    """The path relative to the working directory when it lies below it, else absolute.

    Bytes of a file name that are not UTF-8 are shown as `\\xff` escapes, so that the
    name can be printed and written as JSON.
    """
    here = cwd or os.getcwd()
    text = str(path)
    if text == here:
        return "."
    prefix = here.rstrip(os.sep) + os.sep
    shown = text[len(prefix) :] if text.startswith(prefix) else text
    try:
        shown.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(shown).decode("utf-8", "backslashreplace")
    return shown
