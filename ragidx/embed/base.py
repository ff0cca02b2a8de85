"""The embedder seam: one async method, a batch of texts in, validated vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from ragidx.errors import InvalidVectors

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "Embedder",
    "Vectors",
    "is_unit",
    "is_vector",
    "matrix",
    "stack",
    "unit_rows",
    "validate_vectors",
]

# numpy is imported where vectors are made, not here: a run with nothing to embed (and
# `ragidx --help`) starts without it.
Vectors: TypeAlias = "npt.NDArray[np.float32]"
"""One row per input text, `dims` columns, float32."""


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from a provider.

    `provider`, `model` and `dims` identify the vector space and go into the index manifest.
    `max_inputs` and `max_tokens` bound one request; the batcher respects both.
    """

    provider: str
    model: str
    dims: int
    max_inputs: int
    max_tokens: int

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Return one vector per text, in order. Texts are never empty."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


def validate_vectors(vectors: object, count: int, dims: int) -> Vectors:
    """Check what an embedder returned before anything is stored; raise `InvalidVectors`.

    `dims` 0 accepts any width, one for all rows (a model whose dims are not bound yet).
    """
    import numpy as np

    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
        raise InvalidVectors(f"expected a {count}x{dims} matrix of vectors, got {type(vectors)}")
    if vectors.shape[1] == 0:
        raise InvalidVectors("vectors have no dimensions")
    if vectors.shape[0] != count:
        raise InvalidVectors(f"expected {count} vectors, got {vectors.shape[0]}")
    if dims and vectors.shape[1] != dims:
        raise InvalidVectors(f"expected vectors of {dims} dimensions, got {vectors.shape[1]}")
    matrix = vectors.astype(np.float32, copy=False)
    if not np.isfinite(matrix).all():
        raise InvalidVectors("vectors hold NaN or infinite values")
    # A vector with no direction (all zeros, or only numbers below float32's smallest normal
    # one, which have lost their precision) cannot be scaled to unit length, and no search
    # would ever find its chunk.
    flat = np.flatnonzero(np.abs(matrix).max(axis=1) < np.finfo(np.float32).tiny)
    if flat.size:
        what = "all zeros" if not matrix[flat[0]].any() else "too small to normalise"
        raise InvalidVectors(f"vector {flat[0] + 1} of {count} is {what}")
    return matrix


def matrix(rows: Sequence[Any]) -> Vectors:
    """An answer's rows of numbers as one float32 matrix; `InvalidVectors` when they are not
    all one length (numpy alone fails on that with a message about shapes no one can act on)."""
    import numpy as np

    arrays = [np.asarray(row, dtype=np.float32) for row in rows]
    if any(a.ndim != 1 for a in arrays):
        raise InvalidVectors("a vector in the answer is not a list of numbers")
    widths = sorted({a.shape[0] for a in arrays})
    if len(widths) > 1:
        shown = " and ".join(map(str, widths))
        raise InvalidVectors(f"vectors of different lengths in one answer: {shown} numbers")
    return np.vstack(arrays) if arrays else np.empty((0, 0), dtype=np.float32)


def unit_rows(vectors: Vectors) -> Vectors:
    """Each row scaled to length 1; a row of zeros stays zeros. Each row is first divided by
    its largest number: the squares of small ones (1e-25) would underflow to a length of 0."""
    import numpy as np

    peaks = np.abs(vectors).max(axis=1, keepdims=True) if vectors.size else 1
    scaled = vectors / np.where(peaks > 0, peaks, 1)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)
    return (scaled / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


def is_unit(vectors: Vectors) -> bool:
    """Whether `unit_rows` would leave every row as it is (length 1, or all zeros)."""
    import numpy as np

    lengths = np.linalg.norm(vectors, axis=1)
    return bool(np.all((np.abs(lengths - 1) <= 1e-3) | (lengths == 0)))


def is_vector(value: Any) -> bool:
    import numpy as np

    return isinstance(value, np.ndarray)


def stack(vectors: list[Any]) -> Vectors:
    """Rows into one float32 matrix (0 x 0 for none)."""
    import numpy as np

    matrix = np.vstack(vectors) if vectors else np.empty((0, 0), dtype=np.float32)
    return matrix.astype(np.float32, copy=False)
