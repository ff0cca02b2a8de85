"""The options of the HTTP embedders, one value object from the command line to the client.

`HttpOptions` holds every option with its named default (`ragidx.embed.defaults`).
`EmbedOptions` is what a user gives (checked as a flag would be, the server optional);
`ragidx.embed.http.HttpSettings` is what one client is built with (the server and model
resolved). Both carry every field of `HttpOptions`: a new option is one field here, and
one command line option of the same name (`setting` in the field's metadata where the
names differ), which `EmbedOptions.from_settings` picks up.

No httpx here: the command line builds these before it knows whether it needs a server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragidx.embed.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["EmbedOptions", "HttpOptions"]

_OWN = {"setting": None}  # a field no command line option sets


@dataclass(frozen=True, kw_only=True)
class HttpOptions:
    """How to talk to an embedding server. The API key never shows in `repr`."""

    base_url: str | None = None
    """None: the provider's default server."""
    api_key: str | None = field(default=None, repr=False, metadata=_OWN)
    """Only ever from the environment (`ragidx.embed.api_key_from_env`), never a flag."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds one attempt may take, its answer's body included."""
    max_retries: int = DEFAULT_MAX_RETRIES
    deadline: float = field(default=DEFAULT_DEADLINE, metadata=_OWN)
    """Seconds all attempts at one request may take together."""
    concurrency: int = DEFAULT_CONCURRENCY
    """Requests in flight at most."""
    max_inputs: int | None = field(default=None, metadata={"setting": "batch_size"})
    """Inputs per request at most; None: the provider's own limit."""
    max_tokens: int | None = field(default=None, metadata={"setting": "max_batch_tokens"})
    """Estimated tokens per request at most; None: the provider's own limit."""
    rpm: float | None = None
    tpm: float | None = None
    normalize: bool = True
    """Scale every vector to unit length (some servers return them unnormalised)."""

    def http_options(self) -> dict[str, Any]:
        """The fields of `HttpOptions`, by name: what passes on to a client's settings."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(HttpOptions)}


@dataclass(frozen=True, kw_only=True)
class EmbedOptions(HttpOptions):
    """How to reach an embedding server, as a user gives it; the hash embedder needs none of
    it. Every value is held to its command line option's rules (`ragidx.settings.SETTINGS`):
    `ConfigError` names the option."""

    transport: httpx.AsyncBaseTransport | None = field(default=None, metadata=_OWN)
    """Tests pass `httpx.MockTransport` here."""

    def __post_init__(self) -> None:
        from ragidx.settings import SETTINGS, require

        for f in dataclasses.fields(self):
            name, value = _setting(f), getattr(self, f.name)
            if name in SETTINGS and value is not None:
                require(name, value)

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], **given: Any) -> EmbedOptions:
        """The options found in `values` (a command's options, by their setting names:
        `batch_size`, `timeout`) and `given` (by field name, which win); the rest default."""
        from ragidx.settings import SETTINGS

        taken = {
            f.name: values[name]
            for f in dataclasses.fields(cls)
            if (name := _setting(f)) in SETTINGS and name in values
        }
        return cls(**{**taken, **given})


def _setting(f: dataclasses.Field[Any]) -> str | None:
    """The name of the command line option (and settings-file key) that sets field `f`."""
    return f.metadata.get("setting", f.name)  # type: ignore[no-any-return]
