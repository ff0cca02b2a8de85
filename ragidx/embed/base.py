"""The embedder seam: a batch of texts in, validated vectors out, and what the pipeline,
search and `ragidx doctor` may ask of any embedder besides, so that none of them needs to
know whether it talks to a server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

from ragidx.errors import InvalidVectors

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ragidx.embed.adaptive import Adaptive
    from ragidx.errors import EmbedError

__all__ = [
    "Auth",
    "EmbedStats",
    "Embedder",
    "MinimalEmbedder",
    "Offline",
    "Probe",
    "Server",
    "Vectors",
    "closing",
    "complete",
    "is_unit",
    "is_vector",
    "matrix",
    "stack",
    "unit_rows",
    "validate_vectors",
]

T = TypeVar("T")

# numpy is imported where vectors are made, not here: a run with nothing to embed (and
# `ragidx --help`) starts without it.
Vectors: TypeAlias = "npt.NDArray[np.float32]"
"""One row per input text, `dims` columns, float32."""

Auth: TypeAlias = Literal["bearer", "basic", "none"]


@dataclass(frozen=True, slots=True)
class Server:
    """Where an embedder's requests go and what authenticates them; nothing here is secret."""

    base_url: str
    """The server as given, without user:password: the manifest records it, and a search
    of the index reaches the server there."""
    url: str
    """Where each request goes (the base URL and the provider's path)."""
    auth: Auth
    """`bearer` (the API key), `basic` (the user and password in the base URL, where no key
    is set) or `none`."""
    unsent_login: bool = False
    """The base URL holds a user and password that are not sent: the API key is."""


@dataclass(slots=True)
class EmbedStats:
    """What a client did, for progress and summaries."""

    requests: int = 0
    """Requests sent, retries included."""
    retries: int = 0
    rate_limited: int = 0


@dataclass(frozen=True, kw_only=True)
class Probe:
    """What one request of one text found, for `ragidx doctor`: an answer (`status`, and
    `vectors`, `error` or `unreadable`), or no answer (`error` alone). Not every message is
    redacted yet: pass what is shown through `Embedder.redact`."""

    notes: tuple[tuple[str, str], ...] = ()
    """What the embedder learned on the way, as (name, detail): `("encoding", ...)`."""
    status: int | None = None
    """The answer's HTTP status; None where no answer came, or no server is asked."""
    seconds: float = 0.0
    """How long the answer took."""
    error: EmbedError | None = None
    """No answer (`unreachable`, `timeout`, `invalid_response`...); a redirect or refusal,
    as a run classifies it; or the answer's vectors are unusable (`InvalidVectors`)."""
    unreadable: str | None = None
    """The answer is not the provider's shape: what reading it raised."""
    vectors: Vectors | None = None
    """The answer's vector, as the server sent it (one row, finite, not zero)."""
    rate_limits: dict[str, str] = field(default_factory=dict)
    """The answer's `x-ratelimit-*` headers."""


@runtime_checkable
class MinimalEmbedder(Protocol):
    """The least an embedder can be: vectors for texts, and what identifies them. The entry
    points (`ragidx.index`, `ragidx.search`, `create_embedder`) take one and `complete` it.

    `provider`, `model` and `dims` identify the vector space and go into the index manifest
    (`dims` 0: not bound yet; a run binds it, `ragidx.pipeline.prepare.learn_dims`).
    `max_inputs` and `max_tokens` bound one request; the batcher respects both.
    """

    provider: str
    model: str
    dims: int
    max_inputs: int
    max_tokens: int

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """Return one vector per text, in order. Texts are never empty. Raises `EmbedError`:
        `TransientError` after the retries, `RejectedError` for this batch (split it),
        `FatalEmbedError` to stop the run."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads. An HTTP client's belong to the event loop it
        first ran in: close it before that loop ends."""
        ...


@runtime_checkable
class Embedder(MinimalEmbedder, Protocol):
    """What the pipeline, search and `ragidx doctor` ask of an embedder, so that none of
    them needs to know whether it talks to a server. `Offline` has the answers of one that
    does not; `ragidx.embed.http.HttpEmbedder` those of one that does."""

    @property
    def server(self) -> Server | None:
        """The server asked; None for an embedder that computes vectors itself."""
        ...

    @property
    def binding(self) -> dict[str, str]:
        """Settings that change the vectors (`normalize`), recorded with the vector space and
        held to it: an index is only ever added to with the same."""
        ...

    @property
    def adaptive(self) -> Adaptive | None:
        """Batch sizes and requests in flight that follow the server's latency; None: the
        batches are as large as the limits allow."""
        ...

    @property
    def stats(self) -> EmbedStats | None:
        """Requests, retries and refusals so far; None where nothing is requested (a run
        counts its calls to `embed` instead)."""
        ...

    def redact(self, text: str) -> str:
        """`text` (an error's message, a server's words) fit to show and store: without the
        secrets this embedder sends, nor those in the environment."""
        ...

    async def input_limit(self) -> int | None:
        """Tokens the model reads of one input, where the server says; None where not."""
        ...

    async def probe(self, text: str) -> Probe:
        """Embed `text` once, without retrying, and report what happened (`Probe`); raises
        only what `embed` would raise where there is no server to report on."""
        ...


class Offline:
    """What an embedder without a server answers for `Embedder`: nothing to reach, pace,
    count or learn from. A base class for such providers (`HashEmbedder`)."""

    server: Server | None = None
    adaptive: Adaptive | None = None
    stats: EmbedStats | None = None

    @property
    def binding(self) -> dict[str, str]:
        return {}  # no setting changes its vectors

    def redact(self, text: str) -> str:
        from ragidx.redact import Redactor

        return Redactor.of()(text)  # the keys in the environment, credentials in URLs

    async def embed(self, texts: Sequence[str]) -> Vectors:
        raise NotImplementedError

    async def input_limit(self) -> int | None:
        return None

    async def probe(self, text: str) -> Probe:
        return Probe(vectors=await self.embed([text]))

    def offload(self) -> tuple[Callable[..., Vectors], tuple[Any, ...]] | None:
        """A module-level function and its first arguments that make `embed`'s vectors in
        another process, `fn(*args, texts)`, so a run's worker processes share the work;
        None: only here."""
        return None


def complete(embedder: MinimalEmbedder) -> Embedder:
    """`embedder` itself where it is a whole `Embedder` (every provider of ragidx is); else
    it with the rest of one, as `Offline` answers it."""
    return embedder if isinstance(embedder, Embedder) else _Completed(embedder)


class _Completed(Offline):
    """A `MinimalEmbedder` with the rest of `Embedder`; what it has stays its own, the dims
    a run binds included."""

    def __init__(self, embedder: MinimalEmbedder) -> None:
        self.embedder = embedder
        self.provider = embedder.provider
        self.model = embedder.model
        self.max_inputs = embedder.max_inputs
        self.max_tokens = embedder.max_tokens

    @property
    def dims(self) -> int:
        return self.embedder.dims

    @dims.setter
    def dims(self, value: int) -> None:
        self.embedder.dims = value

    async def embed(self, texts: Sequence[str]) -> Vectors:
        return await self.embedder.embed(texts)

    async def aclose(self) -> None:
        await self.embedder.aclose()


async def closing(embedder: MinimalEmbedder, work: Awaitable[T]) -> T:
    """Await `work`, then release the embedder's connections (`aclose`), whatever happened."""
    try:
        return await work
    finally:
        await embedder.aclose()


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
