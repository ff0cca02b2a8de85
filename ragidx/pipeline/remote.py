"""What the run asks of an embedder beyond the `Embedder` seam, when it is an HTTP one.

Every `as_http` look-up of the pipeline is here, so that the seam's next shape changes one
module: the redaction of what servers say, the adaptive batch size, the request figures
the client keeps, the model's input limit, and the settings recorded with the vector space.
Each answers something sensible for an embedder that is not an HTTP one (the hash
embedder, a dry run's counting embedder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragidx.embed import Embedder, as_http
from ragidx.redact import Redactor, without_credentials

if TYPE_CHECKING:
    from ragidx.embed.adaptive import Adaptive

__all__ = [
    "Requests",
    "adaptive",
    "binding",
    "input_limit",
    "manifest_settings",
    "redactor",
    "requests",
    "server_url",
]


@dataclass(frozen=True, slots=True)
class Requests:
    """Requests sent (retries included), retries, and answers that said slow down."""

    requests: int
    retries: int = 0
    rate_limited: int = 0


def redactor(embedder: Embedder) -> Redactor:
    """The step every reason passes before it is stored or reported: reasons quote servers
    and exceptions, which can carry the key back."""
    http = as_http(embedder)
    return http.redact if http is not None else Redactor.of()


def adaptive(embedder: Embedder) -> Adaptive | None:
    """The batch size that follows the server's latency, if the embedder has one."""
    http = as_http(embedder)
    return http.adaptive if http is not None else None


def requests(embedder: Embedder, calls: int) -> Requests:
    """Requests as the HTTP client counts them (retries included), else the `calls` made."""
    http = as_http(embedder)
    if http is None:
        return Requests(calls)
    stats = http.stats
    return Requests(stats.requests, stats.retries, stats.rate_limited)


async def input_limit(embedder: Embedder) -> int | None:
    """The most tokens the model reads, where the server says (TEI's `/info`)."""
    http = as_http(embedder)
    return await http.input_limit() if http is not None else None


def manifest_settings(embedder: Embedder) -> dict[str, int | str]:
    """Settings recorded with the vector space for people to read (the server's address,
    without credentials)."""
    http = as_http(embedder)
    return {"base_url": without_credentials(http.settings.base_url)} if http is not None else {}


def binding(embedder: Embedder) -> dict[str, str]:
    """Settings that change the vectors, recorded with the vector space and held to it."""
    http = as_http(embedder)
    if http is None:
        return {}
    return {"normalize": "true" if http.settings.normalize else "false"}


def server_url(embedder: Embedder) -> str | None:
    """Where requests go, for messages; None for an embedder with no server."""
    http = as_http(embedder)
    return http.url if http is not None else None
