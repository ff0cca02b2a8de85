"""Sizes as people read them, in binary units (KiB, MiB, GiB): ragidx counts in powers of
1024 everywhere, and a "MB" beside a number of MiB would be off by 5% at 256 of them."""

from __future__ import annotations

__all__ = ["format_size"]

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_size(size: int | float) -> str:
    """`268845056` -> `256.4 MiB`; bytes below 1 KiB as `512 B`."""
    if abs(size) < 1024:
        return f"{size:.0f} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
