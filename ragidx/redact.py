"""One redaction step for every text that comes from outside ragidx.

A server's error message, an exception's words and a URL can all carry a credential back
(a gateway that repeats the request's headers, `Incorrect API key provided: sk-...`). Every
such text goes through a `Redactor` before it is printed, put in an event or stored. It
masks, as `***`:

- each secret it was built with (the API key in use, a URL's password, the keys in
  `RAGIDX_API_KEY` and `OPENAI_API_KEY`), whole and any 8-character piece of it, also
  JSON-escaped, percent-encoded or base64'd as `user:password` (the forms a server may
  repeat it in); a secret shorter than 4 characters is masked only where it stands as a
  credential (below), as masking it everywhere would mask common words;
- the credential after `Bearer` or `Basic`;
- a URL's user-info (`http://***@host/`).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from ragidx.errors import RagidxError

E = TypeVar("E", bound="RagidxError")

__all__ = [
    "KEY_VARIABLES",
    "MASK",
    "Redactor",
    "redact_error",
    "url_credentials",
    "without_credentials",
]

MASK = "***"
KEY_VARIABLES = ("RAGIDX_API_KEY", "OPENAI_API_KEY")
"""Where API keys are read (`ragidx.embed.api_key_from_env`): always among the secrets."""

_PIECE = 8  # any run of this many characters of a secret gives it away
_SHORTEST = 4

_USERINFO = re.compile(r"(//)[^/?#\s]*@")
_SCHEME_TOKEN = re.compile(r"(?i)\b(bearer|basic)(\s+)([^\s\"'<>*]+)")


class Redactor:
    """Masks the secrets it was built with, and credentials of any kind, in a text."""

    __slots__ = ("_pieces", "_whole")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        forms = {form for secret in secrets if secret for form in _forms(secret)}
        whole = sorted((f for f in forms if len(f) >= _SHORTEST), key=len, reverse=True)
        self._whole = re.compile("|".join(map(re.escape, whole))) if whole else None
        pieces = {f[i : i + _PIECE] for f in forms for i in range(len(f) - _PIECE + 1)}
        # A lookahead finds every start of a piece, overlapping ones too.
        alternatives = "|".join(map(re.escape, sorted(pieces)))
        self._pieces = re.compile(f"(?=(?:{alternatives}))") if pieces else None

    @classmethod
    def of(
        cls,
        *,
        keys: Iterable[str | None] = (),
        urls: Iterable[str | None] = (),
        logins: Iterable[tuple[str, str] | None] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Redactor:
        """A redactor for these keys, the user names and passwords in these URLs and
        logins, and the keys in the environment (`KEY_VARIABLES`)."""
        env = os.environ if environ is None else environ
        secrets = [*keys, *(env.get(name, "").strip() for name in KEY_VARIABLES)]
        found = [url_credentials(url) for url in urls if url]
        for login in [*found, *logins]:
            if login is not None:
                user, password = login
                secrets += [password, f"{user}:{password}"]
                # A lone user name is the credential (`https://TOKEN@host`); beside a
                # password it is a name, often a common word, masked only in the URL.
                if not password and len(user) >= _PIECE:
                    secrets.append(user)
        return _cached(tuple(sorted(s for s in secrets if s)))

    def __call__(self, text: str) -> str:
        if self._whole is not None:
            text = self._whole.sub(MASK, text)
        if self._pieces is not None:
            text = _mask_pieces(text, self._pieces)
        text = _USERINFO.sub(rf"\1{MASK}@", text)
        return _SCHEME_TOKEN.sub(_mask_token, text)


@functools.lru_cache(maxsize=16)
def _cached(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact_error(error: E, redact: Redactor) -> E:
    """`error` with its message and hint redacted (the same object: its class, kind and
    retry-after stay)."""
    error.message = redact(error.message)
    error.args = (error.message, *error.args[1:])
    if error.hint is not None:
        error.hint = redact(error.hint)
    return error


def url_credentials(url: str) -> tuple[str, str] | None:
    """The user name and password (decoded; the password may be empty) in `url`'s
    user-info, or None where it has none or cannot be read."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    if "@" not in netloc:
        return None
    user, _, password = netloc.rpartition("@")[0].partition(":")
    return unquote(user), unquote(password)


def without_credentials(url: str) -> str:
    """`url` without user-info: what may be shown or stored of it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub(rf"\1{MASK}@", url)  # not a URL to rebuild, but nothing shows
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _forms(secret: str) -> set[str]:
    """`secret` as a server may repeat it: as is, JSON-escaped, percent-encoded; a
    `user:password` pair base64'd too, as in `Authorization: Basic`."""
    forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}
    if ":" in secret:
        encoded = base64.b64encode(secret.encode()).decode()
        forms |= {encoded, encoded.rstrip("=")}
    return forms


def _mask_pieces(text: str, pieces: re.Pattern[str]) -> str:
    covered = bytearray(len(text))
    for match in pieces.finditer(text):
        start = match.start()
        covered[start : start + _PIECE] = b"\1" * len(covered[start : start + _PIECE])
    if not any(covered):
        return text
    out: list[str] = []
    for i, ch in enumerate(text):
        if not covered[i]:
            out.append(ch)
        elif i == 0 or not covered[i - 1]:
            out.append(MASK)
    return "".join(out)


def _mask_token(match: re.Match[str]) -> str:
    scheme, space, token = match.groups()
    word = token.rstrip(".,;:!?)]}")
    if word.isalpha() and (word.islower() or word.istitle()):  # "Basic authentication"
        return match.group(0)
    return f"{scheme}{space}{MASK}"
