"""What a server's answer says beyond its vectors: the error an HTTP failure stands for
(retry it, give up on the input, or stop the run), how long it asks to wait, and the rate
budgets it reports (`x-ratelimit-*`)."""

from __future__ import annotations

import contextlib
import email.utils
import math
import re
import time

import httpx

from ragidx.embed.limiter import Reading
from ragidx.errors import FatalEmbedError, RejectedError, TransientError

__all__ = ["classify", "parse_duration", "reading", "retry_after"]

_SIZE_WORDS = (
    "too many inputs",
    "batch size",
    "max_client_batch_size",
    "too large",
    "payload too large",
    "request entity too large",
    "must have less than",
    "maximum request size",
)
_LENGTH_WORDS = (
    "maximum context length",
    "context length",
    "too long",
    "input length",
    "exceeds the maximum",
    "max_input_length",
    "longer than",
)


def classify(response: httpx.Response) -> TransientError | RejectedError | FatalEmbedError:
    """The error an HTTP failure stands for: retry it, give up on the input, or stop the run."""
    status = response.status_code
    message = f"HTTP {status}: {_error_message(response)}"
    lowered = message.lower()
    should = response.headers.get("x-should-retry")
    if 300 <= status < 400:
        return _redirected(response)
    if status in (401, 403):
        return FatalEmbedError(
            message, kind="auth", hint="check the API key (RAGIDX_API_KEY) and the base URL"
        )
    if status == 429 and "insufficient_quota" in lowered:
        return FatalEmbedError(message, kind="quota", hint="the account has no quota left")
    wait = retry_after(response.headers)
    if should == "false":  # the server says a retry would not help, nor would splitting
        return RejectedError(message, kind="server_error")
    if status == 500 and "input is too large" in lowered:  # llama.cpp: not transient
        return RejectedError(message, kind="too_large")
    if status == 429:
        return TransientError(message, kind="rate_limited", retry_after=wait)
    if should == "true" or status in (408, 409) or status >= 500:
        kind = "timeout" if status == 408 else "server_error"
        return TransientError(message, kind=kind, retry_after=wait)
    if status == 413 or any(w in lowered for w in _SIZE_WORDS):
        return RejectedError(message, kind="too_large")
    if any(w in lowered for w in _LENGTH_WORDS):
        return RejectedError(message, kind="too_long")
    return RejectedError(message, kind="rejected_input")


def _redirected(response: httpx.Response) -> FatalEmbedError:
    """A redirect stops the run: following it would send the key to another address, and
    every request would be redirected alike."""
    status = response.status_code
    where = _redirect_target(response)
    message = f"HTTP {status}: the server redirects to {where or 'an address it does not give'}"
    hint = (
        "set --base-url (RAGIDX_BASE_URL) to the server that answers (where it redirects, if"
        " you trust that address); ragidx follows no redirect, so the API key goes only to"
        " the address you give"
    )
    return FatalEmbedError(message, kind="redirect", hint=hint)


def _redirect_target(response: httpx.Response) -> str | None:
    """Where a redirect points, made absolute, without user:password, query or fragment (a
    signed address can hold a token there); None when it does not say."""
    location = response.headers.get("location", "").strip()
    if not location:
        return None
    try:
        url = httpx.URL(location)
        with contextlib.suppress(RuntimeError):  # a response built without its request
            url = response.request.url.join(url)
        url = url.copy_with(username=None, password=None, query=None, fragment=None)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "an address that is not a URL"
    shown = str(url)
    return shown if len(shown) <= 200 else shown[:200] + "..."


_DURATION = re.compile(
    r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?"
)


def parse_duration(text: str | None) -> float | None:
    """Seconds in an OpenAI reset header: `1s`, `6m0s`, `250ms`, `1h2m3.5s`; None if unreadable."""
    if not text:
        return None
    m = _DURATION.fullmatch(text.strip())
    if not m or not any(m.groups()):
        return None
    h, mins, sec, ms = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + sec + ms / 1000


def reading(headers: httpx.Headers, unit: str) -> Reading | None:
    """One budget from OpenAI's `x-ratelimit-{limit,remaining,reset}-{unit}`; None if absent."""
    remaining = _number(headers.get(f"x-ratelimit-remaining-{unit}"))
    reset = parse_duration(headers.get(f"x-ratelimit-reset-{unit}"))
    if remaining is None or reset is None:
        return None
    return Reading(remaining, reset, _number(headers.get(f"x-ratelimit-limit-{unit}")))


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds the server asked to wait: `retry-after-ms`, else `Retry-After` (seconds or date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error.get(k)) for k in ("message", "code", "type") if error.get(k)]
            return "; ".join(parts) or str(error)[:300]
        text = str(error)
        if "error_type" in body:
            text += f"; {body['error_type']}"
        return text[:300]
    return str(body)[:300]
