"""`export`: one JSON object per chunk, and with `--vectors` its vector and embedder input.

A vector is a thousand numbers or so, and `json.dumps` formats each one in a Python call:
42,000 rows took 20 s that way. Here the numbers of many rows are formatted at once by
numpy, as characters in a matrix, and only the rest of each record goes through `json`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ragidx.report.base import display_path
from ragidx.store import ChunkRow

__all__ = ["DECIMALS", "chunk_record", "export_lines", "location_fields", "vector_texts"]

DECIMALS = 7
"""Numbers are rounded to this many decimals, as `round(x, 7)` rounds them."""
_ROWS = 256  # rows formatted together: numpy's cost per call spread over them
_SCALE = 10**DECIMALS
# Beyond this, rounding to 7 decimals in float64 is no longer exact: such rows (no embedder
# sends them) go through `json`.
_LIMIT = 2.0**52 / _SCALE


def chunk_record(row: ChunkRow) -> dict[str, Any]:
    """One `export` line's fields, without the vector."""
    return {
        "path": display_path(row.path),
        "ordinal": row.ordinal,
        "text": row.text,
        "char_start": row.char_start,
        "char_end": row.char_end,
        "line_start": row.line_start,
        "line_end": row.line_end,
        "heading_path": list(row.heading_path),
        "tokens": row.tokens,
        **location_fields(row.unit, row.page_start, row.page_end),
    }


def location_fields(unit: str | None, start: int | None, end: int | None) -> dict[str, Any]:
    """`page_start`, `page_end` (or `slide_`, `sheet_`) where the document has them."""
    if unit is None or start is None:
        return {}
    return {f"{unit}_start": start, f"{unit}_end": end}


def export_lines(
    rows: Iterable[tuple[ChunkRow, bytes | None]], *, vectors: bool
) -> Iterator[bytes]:
    """The rows as UTF-8 JSON lines, in the order given, a group of lines at a time. With
    `vectors`, `vector` (little-endian float32 in the index) and, where it differs from the
    text, `input` follow the other fields."""
    it = iter(rows)
    dumps = json.dumps
    while group := list(itertools.islice(it, _ROWS)):
        if not vectors:
            yield "".join(
                f"{dumps(chunk_record(r), ensure_ascii=False)}\n" for r, _ in group
            ).encode()
            continue
        texts = _group_vectors([blob for _, blob in group])
        parts: list[bytes] = []
        for (row, _), vector in zip(group, texts, strict=True):
            line = dumps(chunk_record(row), ensure_ascii=False)
            if vector is None:
                parts.append(f"{line}\n".encode())  # a chunk without a vector: none made up
                continue
            parts += (line[:-1].encode(), b', "vector": [', vector, b"]")
            if row.input is not None:
                parts.append(f', "input": {dumps(row.input, ensure_ascii=False)}'.encode())
            parts.append(b"}\n")
        yield b"".join(parts)


def _group_vectors(blobs: list[bytes | None]) -> list[bytes | None]:
    """The vectors' texts; those of one length (all, in one index) are formatted together."""
    sizes = {len(b) for b in blobs if b is not None}
    if len(sizes) != 1 or (size := sizes.pop()) == 0 or size % 4:
        return [None if b is None else _vector_bytes(_floats([b]))[0] for b in blobs]
    present = [b for b in blobs if b is not None]
    texts = iter(_vector_bytes(_floats(present)))
    return [None if b is None else next(texts) for b in blobs]


def _floats(blobs: list[bytes]) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)


def vector_texts(matrix: np.ndarray[Any, Any]) -> list[str]:
    """Each row of `matrix` as the numbers of a JSON array, comma-separated: each number is
    `round(x, 7)`, written in plain decimals (`0.0000012`, where `repr` writes `1.2e-06`)."""
    return [text.decode("ascii") for text in _vector_bytes(matrix)]


def _vector_bytes(matrix: np.ndarray[Any, Any]) -> list[bytes]:
    n, dims = matrix.shape
    if n == 0 or dims == 0:
        return [b""] * n
    # x * 10**7 is exact for a float32 x, so rint rounds half to even as round() does.
    scaled = matrix.astype(np.float64)
    scaled *= _SCALE
    np.rint(scaled, out=scaled)
    size = np.abs(scaled)
    top = float(size.max())  # NaN or infinite where a number is
    if top < 10 * _SCALE:
        return _one_digit(scaled, size)
    if math.isfinite(top) and top < _LIMIT * _SCALE:
        return [", ".join(_number(x) for x in row).encode() for row in scaled.tolist()]
    return [
        ", ".join(json.dumps(round(float(x), DECIMALS)) for x in row).encode() for row in matrix
    ]


def _number(scaled: float) -> str:
    whole, fraction = divmod(int(abs(scaled)), _SCALE)
    decimals = f"{fraction:0{DECIMALS}d}".rstrip("0") or "0"
    return f"{'-' if math.copysign(1, scaled) < 0 else ''}{whole}.{decimals}"


# Numbers below 10 (those of unit vectors, and most others) are written by table lookups:
# each takes 12 bytes, `-d.ddddddd, `, as three 32-bit words, and the characters it does
# not show (a plus sign, trailing zeros) are `#`, which `bytes.translate` then deletes.


def _words(chars: list[bytes]) -> np.ndarray[Any, np.dtype[np.uint32]]:
    return np.frombuffer(b"".join(chars), dtype="<u4").copy()


def _fraction_tables() -> tuple[np.ndarray[Any, Any], ...]:
    """By the first 4 decimals (plus 10,000 where the last 3 are zeros, so the 4 lose their
    trailing zeros too): the words' parts they fill; by the last 3: theirs."""
    high: list[str] = [f"{h:04d}" for h in range(10_000)]
    stripped = [(d.rstrip("0") or "0").ljust(4, "#") for d in high]
    first = [b"\0\0\0" + d[0].encode() for d in high + stripped]
    second = [d[1:].encode() + b"\0" for d in high + stripped]
    low = [f"{x:03d}" for x in range(1000)]
    low = [d if x == 0 else d.rstrip("0").ljust(3, "#") for x, d in enumerate(low)]
    low[0] = "###"
    third = [b"\0\0\0" + d[0].encode() for d in low]
    fourth = [d[1:].encode() + b", " for d in low]
    return _words(first), _words(second), _words(third), _words(fourth)


_HIGH_FIRST, _HIGH_SECOND, _LOW_FIRST, _LOW_SECOND = _fraction_tables()
# The sign, the whole digit and the point: by whole + 10 for a negative number.
_LEAD = _words([sign + str(d).encode() + b".\0" for sign in (b"#", b"-") for d in range(10)])
_ROW_END = int.from_bytes(b"\0\0\n#", "little")  # in place of a row's last `, `


def _one_digit(scaled: np.ndarray[Any, Any], size: np.ndarray[Any, Any]) -> list[bytes]:
    n, dims = scaled.shape
    whole, fraction = np.divmod(size.ravel().astype(np.int32), np.int32(_SCALE))
    high, low = np.divmod(fraction, np.int32(1000))
    high += (low == 0) * np.int32(10_000)
    whole += np.signbit(scaled.ravel()) * np.int32(10)
    # Indices as np.take wants them, once: it would convert each on every call.
    whole, high, low = whole.astype(np.intp), high.astype(np.intp), low.astype(np.intp)
    words = np.empty((size.size, 3), np.uint32)
    take = np.take  # twice as fast as indexing with an array
    np.bitwise_or(take(_LEAD, whole), take(_HIGH_FIRST, high), out=words[:, 0])
    np.bitwise_or(take(_HIGH_SECOND, high), take(_LOW_FIRST, low), out=words[:, 1])
    take(_LOW_SECOND, low, out=words[:, 2])
    # A row's last number ends in a newline, not a comma: the group is split there.
    words[dims - 1 :: dims, 2] = (words[dims - 1 :: dims, 2] & 0xFFFF) | _ROW_END
    return words.tobytes().translate(None, b"#").split(b"\n")[:n]
