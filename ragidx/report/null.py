"""A reporter that shows nothing (`--quiet` without `--json`)."""

from __future__ import annotations

from ragidx.events import Event

__all__ = ["NullReporter"]


class NullReporter:
    def __call__(self, event: Event) -> None:
        pass

    def close(self) -> None:
        pass
