"""Every setting in one table, held to the same rules whatever its source, and the settings file.

A setting comes from a flag, an environment variable, `ragidx.toml` in the working directory,
or `[tool.ragidx]` in its `pyproject.toml` (flags win, then variables, then the file). Flags and
variables give text, which `Setting.parse` reads; a file gives a TOML value of any type, which
`Setting.check` takes only in the setting's own type: a bool is not a number, a float not a
whole number, a list only of strings. Both hold the value to the same bounds and raise
`ConfigError` with the reason alone; `from_flag`, `from_env` and `from_file` name the source for
the message: `ragidx.toml: concurrency = -1: must be between 1 and 256`.

API keys are never settings: they come from the environment only, and no message shows one.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragidx.errors import ConfigError

__all__ = [
    "MIN_CHUNK_TOKENS",
    "SECRET_KEYS",
    "SETTINGS",
    "Kind",
    "Setting",
    "conflict",
    "from_env",
    "from_file",
    "from_flag",
    "load_settings",
    "parse_size",
    "require",
    "shown",
]

SECRET_KEYS = frozenset({"api_key", "openai_api_key", "ragidx_api_key", "key", "token"})
# Below this budget a chunk cannot hold a heading path and a sentence.
MIN_CHUNK_TOKENS = 16
MAX_CHUNK_TOKENS = 100_000
MAX_FILE_SIZE = 1024**4


class Kind(enum.Enum):
    """What a setting holds; the value is what a message says it must be."""

    INT = "a whole number"
    NUMBER = "a number"
    BOOL = "true or false"
    TEXT = "a string"
    PATH = "a path (a string)"
    URL = "a URL (a string)"
    SIZE = "a size such as 10MiB, or a number of bytes"
    CHOICE = "one of the choices"
    GLOB = "a glob (a string)"


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One setting's type and bounds. `many`: a list (a flag given again adds to it)."""

    kind: Kind
    low: float | None = None
    high: float | None = None
    many: bool = False
    choices: Callable[[], Iterable[str]] | None = None

    @property
    def metavar(self) -> str:
        if self.choices is not None:
            return "<" + "|".join(self.choices()) + ">"
        return {Kind.INT: "<int>", Kind.NUMBER: "<float>"}.get(
            self.kind, f"<{self.kind.name.lower()}>"
        )

    @property
    def bounds(self) -> str:
        """The range for --help, such as `[1-256]`; empty where there is none."""
        if self.low is None or self.high is None or self.kind not in (Kind.INT, Kind.NUMBER):
            return ""
        return f"[{_number(self.low)}-{_number(self.high)}]"

    def parse(self, text: str) -> Any:
        """One value as a flag or an environment variable gives it."""
        if self.kind is Kind.INT:
            if not re.fullmatch(r"\s*[+-]?\d+\s*", text):
                raise ConfigError(f"must be {self.kind.value}")
            # Past 20 digits a number is out of every range (and int() refuses 4,300).
            return self._within(int(text) if len(text.strip()) <= 20 else math.inf)
        if self.kind is Kind.NUMBER:
            try:
                number = float(text)
            except ValueError:
                raise ConfigError(f"must be {self.kind.value}") from None
            return self._within(number)
        if self.kind is Kind.BOOL:
            word = text.strip().lower()
            if word not in ("true", "false", "1", "0", "yes", "no"):
                raise ConfigError(f"must be {self.kind.value}")
            return word in ("true", "1", "yes")
        if self.kind is Kind.SIZE:
            return self._within(parse_size(text))
        return self._text(text)

    def check(self, value: object) -> Any:
        """A value of any type, as a settings file gives it; a list for `many`."""
        if self.many:
            if not isinstance(value, list):
                raise ConfigError(f"must be a list of strings, such as {_EXAMPLES[self.kind]}")
            return [self._one(item) for item in value]
        return self._one(value)

    def _one(self, value: object) -> Any:
        kind = self.kind
        if kind is Kind.BOOL:
            if not isinstance(value, bool):
                raise ConfigError(f"must be {kind.value}, not {_what(value)}")
            return value
        if kind in (Kind.INT, Kind.NUMBER, Kind.SIZE):
            if kind is Kind.SIZE and isinstance(value, str):
                return self.parse(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"must be {kind.value}, not {_what(value)}")
            if kind is not Kind.NUMBER and not isinstance(value, int):
                raise ConfigError(f"must be a whole number, not {_what(value)}")
            return self._within(value)
        if not isinstance(value, str):
            raise ConfigError(f"must be {self._wanted()}, not {_what(value)}")
        return self._text(value)

    def _wanted(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(sorted(self.choices()))
        return self.kind.value

    def _within(self, number: float) -> Any:
        if math.isnan(number):
            raise ConfigError("must be a number, not nan")
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if not low <= number <= high:
            if self.kind is Kind.SIZE:
                raise ConfigError(
                    "must be positive" if number < low else f"must be at most {_bytes(high)}"
                )
            if math.isinf(high):
                raise ConfigError(f"must be at least {_number(low)}")
            raise ConfigError(f"must be between {_number(low)} and {_number(high)}")
        return int(number) if self.kind in (Kind.INT, Kind.SIZE) else float(number)

    def _text(self, text: str) -> str:
        if not text:
            raise ConfigError("must not be empty")
        if self.kind is Kind.PATH:
            if "\0" in text:
                raise ConfigError("must not hold a NUL character")
            return text
        if not text.isprintable():
            raise ConfigError("must not hold control characters")
        if self.high is not None and len(text) > self.high:
            raise ConfigError(f"must be at most {_number(self.high)} characters")
        if self.choices is not None and text not in self.choices():
            raise ConfigError(f"must be {self._wanted()}")
        if self.kind is Kind.URL:
            _check_url(text)
        if self.kind is Kind.GLOB:
            _check_glob(text)
        return text


def _providers() -> Iterable[str]:
    from ragidx.embed import PROVIDERS

    return list(PROVIDERS)


def _policies() -> Iterable[str]:
    return ("split", "truncate", "fail")  # config.LongChunkPolicy, which imports this module


def _modes() -> Iterable[str]:
    from ragidx.query.search import SearchMode

    return [m.value for m in SearchMode]


def _int(low: int, high: int) -> Setting:
    return Setting(kind=Kind.INT, low=low, high=high)


def _number_in(low: float, high: float) -> Setting:
    return Setting(kind=Kind.NUMBER, low=low, high=high)


_BOOL = Setting(kind=Kind.BOOL)
_NAME = Setting(kind=Kind.TEXT, high=1000)

# Every option of every command, by its long name: a flag, a variable and a file are all held
# to these. The bounds are generous, but a run can fit within them.
SETTINGS: dict[str, Setting] = {
    "db": Setting(kind=Kind.PATH),
    "null": _BOOL,
    "covers": Setting(kind=Kind.PATH, many=True),
    "shard": Setting(kind=Kind.TEXT, high=20),
    "ray": Setting(kind=Kind.TEXT, high=2000),
    "include": Setting(kind=Kind.GLOB, many=True),
    "exclude": Setting(kind=Kind.GLOB, many=True),
    "max_file_size": Setting(kind=Kind.SIZE, low=1, high=MAX_FILE_SIZE),
    "max_document_size": Setting(kind=Kind.SIZE, low=1, high=MAX_FILE_SIZE),
    "follow_symlinks": _BOOL,
    "hidden": _BOOL,
    "chunk_tokens": _int(MIN_CHUNK_TOKENS, MAX_CHUNK_TOKENS),
    "chunk_overlap": _int(0, MAX_CHUNK_TOKENS // 2 - 1),
    "pack": _BOOL,
    "tokenizer": Setting(kind=Kind.PATH),  # a name (cl100k_base) or a tokenizer.json's path
    "provider": Setting(kind=Kind.CHOICE, choices=_providers),
    "base_url": Setting(kind=Kind.URL, high=2000),
    "model": _NAME,
    "dimensions": _int(1, 65_536),
    "timeout": _number_in(0.1, 3600),
    "max_retries": _int(0, 100),
    "concurrency": _int(1, 256),
    "on_long_chunk": Setting(kind=Kind.CHOICE, choices=_policies),
    "rpm": _number_in(0.1, 1e9),
    "tpm": _number_in(1, 1e12),
    "normalize": _BOOL,
    "batch_size": _int(1, 10_000),
    "max_batch_tokens": _int(1, 10_000_000),
    "readers": _int(1, 256),
    "workers": _int(0, 256),
    "parse_timeout": _number_in(1, 3600),
    "parse_memory": Setting(kind=Kind.SIZE, low=16 * 1024**2, high=1024**4),
    "reset": _BOOL,
    "dry_run": _BOOL,
    "price_per_mtok": _number_in(0, 1e6),
    "wait": _BOOL,
    "retry_failed": _BOOL,
    "json": _BOOL,
    "quiet": _BOOL,
    "verbose": _BOOL,
    "salvage": _BOOL,
    "progress": _BOOL,
    "failed": _BOOL,
    "top": _int(1, 1000),
    "mode": Setting(kind=Kind.CHOICE, choices=_modes),
    "vectors": _BOOL,
    "vacuum": _BOOL,
}

_EXAMPLES = {Kind.GLOB: '["*.md"]', Kind.PATH: '["docs"]'}


def conflict(
    chunk_tokens: int, chunk_overlap: int | None, max_batch_tokens: int | None
) -> tuple[str, str] | None:
    """The setting its neighbours rule out, and why; None when they agree."""
    if chunk_overlap is not None and chunk_overlap >= chunk_tokens // 2:
        return "chunk_overlap", f"must be less than half of chunk-tokens ({chunk_tokens})"
    if max_batch_tokens is not None and max_batch_tokens < chunk_tokens:
        return "max_batch_tokens", (
            f"must be at least chunk-tokens ({chunk_tokens}), or no chunk could ever be sent"
        )
    return None


def require(name: str, value: object) -> None:
    """`value` as `name` takes it, for settings built in code (raises naming the option)."""
    try:
        SETTINGS[name].check(value)
    except ConfigError as exc:
        raise ConfigError(f"--{_dashed(name)} {_toml(value)}: {exc.message}") from None


def parse_size(text: str) -> float:
    """`10MiB`, `512k`, `1.5G` or a number of bytes (powers of 1024: `10MB` is 10 MiB too);
    may be out of range."""
    m = re.fullmatch(_SIZE, text)
    if not m:
        raise ConfigError(f"must be {Kind.SIZE.value}", hint="try 10MiB, 512KiB or 1048576")
    return float(m.group(1)) * _UNITS[(m.group(2) or "")[:1].lower()]


_SIZE = r"(?i)\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*"  # compiled on first use
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _bytes(size: float) -> str:
    return f"{size / 1024**3:g}GiB" if size >= 1024**3 else f"{size:g} bytes"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _check_url(text: str) -> None:
    from urllib.parse import urlsplit

    if any(c.isspace() for c in text):
        raise ConfigError("must not hold spaces")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"is not a valid URL ({_port_words(str(exc))})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ConfigError("must start with http:// or https://", hint=_URL_HINT)
    if not parts.hostname:
        raise ConfigError("has no host", hint=_URL_HINT)
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError("port must be between 1 and 65535", hint=_URL_HINT)
    import httpx  # the client that will use the URL has the last word on what it can parse

    try:
        httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"is not a valid URL ({shown(str(exc))})", hint=_URL_HINT) from None


_URL_HINT = "such as http://localhost:8000/v1"


def _port_words(reason: str) -> str:
    return "port must be between 1 and 65535" if reason.startswith("Port") else reason


def _check_glob(text: str) -> None:
    import pathspec

    try:
        pathspec.GitIgnoreSpec.from_lines([text])
    except (ValueError, re.error) as exc:
        raise ConfigError(f"is not a valid glob ({shown(str(exc))})") from None


def _what(value: object) -> str:
    """How a message names a value of the wrong type."""
    if isinstance(value, bool | int | float):
        return _toml(value)
    words = {str: "a string", list: "a list", dict: "a table"}
    return next((w for t, w in words.items() if isinstance(value, t)), "a date or time")


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def shown(text: str, limit: int = 100) -> str:
    """A setting's value fit for a message: redacted as every outside text is (the API keys,
    credentials: `ragidx.redact`), and without user-info even with no scheme before it, a
    URL's query, control characters, or more than `limit` characters."""
    from ragidx.redact import Redactor

    text = Redactor.of()(text)
    text = re.sub(r"^((?:[A-Za-z][A-Za-z0-9+.-]*:)?//)?[^/?#\s]*@", r"\1***@", text)
    text = re.sub(r"\?\S*", "?***", text) if "://" in text else text
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _toml(value: object) -> str:
    """A value as a TOML file would write it, cut short."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + shown(value).replace('"', '\\"') + '"'
    elif isinstance(value, int):
        digits = len(str(abs(value))) if abs(value) < 10**4000 else 4001
        text = str(value) if digits <= 30 else f"{'-' if value < 0 else ''}({digits} digits)"
    elif isinstance(value, float):
        text = {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
        text = "nan" if math.isnan(value) else text
    elif isinstance(value, list):
        text = "[" + ", ".join(_toml(v) for v in value[:5]) + (", ...]" if len(value) > 5 else "]")
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in list(value.items())[:5]) + "}"
    else:
        text = shown(str(value))  # dates and times
    return text if len(text) <= 120 else text[:117] + "..."


def from_flag(option: str, text: str) -> str:
    return f"{option} {shown(text)}"


def from_env(variable: str, text: str) -> str:
    return f"{variable}={shown(text)}"


def from_file(path: Path, key: str, value: object) -> str:
    return f"{_where(path)}: {key} = {_toml(value)}"


def _where(path: Path) -> str:
    return f"{path.name} [tool.ragidx]" if path.name == "pyproject.toml" else path.name


def load_settings(directory: Path) -> tuple[Path | None, dict[str, Any]]:
    """The settings file found in `directory`, and its settings (by the names of `SETTINGS`),
    each checked against its `Setting`."""
    own = directory / "ragidx.toml"
    pyproject = directory / "pyproject.toml"
    table: object
    if own.is_file():
        path, table = own, _read(own)
    elif pyproject.is_file():
        path, tool = pyproject, _read(pyproject).get("tool", {})
        table = tool.get("ragidx") if isinstance(tool, dict) else None
        if table is None:
            return None, {}
    else:
        return None, {}
    where = _where(path)
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: the ragidx settings must be a table")
    names = {key: key.replace("-", "_") for key in table}
    secrets = sorted(k for k, name in names.items() if name.lower() in SECRET_KEYS)
    if secrets:
        raise ConfigError(
            f"{where}: {', '.join(secrets)} cannot be set in a file",
            hint="put the key in the environment: RAGIDX_API_KEY (or OPENAI_API_KEY)",
        )
    unknown = sorted(shown(k, 40) for k, name in names.items() if name not in SETTINGS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting {', '.join(unknown)}",
            hint="settings are option names, such as chunk-tokens or base-url",
        )
    settings: dict[str, Any] = {}
    for key, value in table.items():
        try:
            settings[names[key]] = SETTINGS[names[key]].check(value)
        except ConfigError as exc:
            raise ConfigError(
                f"{from_file(path, key, value)}: {exc.message}", hint=exc.hint
            ) from None
    return path, settings


def _read(path: Path) -> dict[str, Any]:
    import tomllib  # 3 ms of every start otherwise: only a settings file needs it

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    # ValueError: an integer of over 4,300 digits; RecursionError: arrays nested a thousand deep.
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path.name}: {shown(str(exc))}") from exc
