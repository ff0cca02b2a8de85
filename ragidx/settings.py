"""Settings from a file: `ragidx.toml` in the working directory, else `[tool.ragidx]` in its
`pyproject.toml`. Keys are option names (`base_url` or `base-url`); they apply to every
command that has the option. Flags and environment variables win over the file.
API keys are never read from a file: they come from the environment only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["SECRET_KEYS", "load_settings"]

SECRET_KEYS = frozenset({"api_key", "openai_api_key", "ragidx_api_key", "key", "token"})


def load_settings(directory: Path) -> tuple[Path | None, dict[str, Any]]:
    """The settings file found in `directory`, and its settings with normalised keys."""
    own = directory / "ragidx.toml"
    pyproject = directory / "pyproject.toml"
    if own.is_file():
        path, table = own, _read(own)
    elif pyproject.is_file():
        path, table = pyproject, _read(pyproject).get("tool", {}).get("ragidx")
        if table is None:
            return None, {}
    else:
        return None, {}
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: the ragidx settings must be a table")
    settings = {key.replace("-", "_"): value for key, value in table.items()}
    secrets = sorted(k for k in settings if k in SECRET_KEYS)
    if secrets:
        raise ConfigError(
            f"{path}: {', '.join(secrets)} cannot be set in a file",
            hint="put the key in the environment: RAGIDX_API_KEY (or OPENAI_API_KEY)",
        )
    return path, settings


def _read(path: Path) -> dict[str, Any]:
    import tomllib  # 3 ms of every start otherwise: only a settings file needs it

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
