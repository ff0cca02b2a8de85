"""Any value of any type, for any setting, from any source: exit 0 or 2, never a traceback.

Each case gives one to three options of one command a value of any type (ints of any size,
floats with nan, inf and 1e400, bools, strings and odd URLs, lists, tables) from a flag, an
environment variable, `ragidx.toml` or `[tool.ragidx]` in `pyproject.toml`, and runs the
command in-process (`index --dry-run`, or `search`, `stats`, `export`, `gc` on a small index),
so no server is needed. Where `SETTINGS` refuses a value the run must exit 2 with an `error:`
line that names the source; whatever happens, no exception may escape.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_settings import setting_name
from typer.testing import CliRunner

from ragidx.cli import app
from ragidx.errors import ConfigError
from ragidx.settings import SETTINGS, Kind

EXAMPLES = int(os.environ.get("RAGIDX_SETTINGS_EXAMPLES", "250"))  # more for a long hunt
SOURCES = ("flag", "env", "ragidx.toml", "pyproject.toml")
# Options typer itself checks when given as flags (search's own parsing): their errors are
# typer's, which name the flag in their own words.
TYPER_CHECKED = {"top", "mode"}


@dataclass(frozen=True)
class Option:
    command: str
    name: str
    flag: str
    envvar: str | None
    is_flag: bool


def _options() -> list[Option]:
    group = typer.main.get_command(app)
    found = []
    for command_name, command in group.commands.items():  # type: ignore[attr-defined]
        if command_name == "doctor":
            continue  # its options are index's; a valid URL would send it to the network
        for param in command.params:
            name = setting_name(param)
            if name is None or name == "help":
                continue
            envvar = param.envvar if isinstance(param.envvar, str) else None
            flag = next(o for o in param.opts if o.startswith("--"))
            found.append(Option(command_name, name, flag, envvar, bool(param.is_flag)))
    return found


OPTIONS = _options()
COMMANDS = sorted({o.command for o in OPTIONS})

urls = st.one_of(
    st.sampled_from(
        [
            "http://127.0.0.1:99999/v1",
            "http://[::1",
            "http://[::1]:8000/v1",
            "http://u:pw@localhost:8000/v1",
            "https://localhost:0/",
            "http://:80/",
            "http:///v1",
            "ftp://host/v1",
            "localhost:8000/v1",
            "http://host:80x/",
            "http://ho st/",
            "http://host/\x7f",
            "http://exa\u00f1ple.com/v1",
            "http://" + "a" * 300 + ".com/",
            "http://host:-1/",
            "//host/v1",
            "http://host/v1?key=x",
        ]
    ),
    st.builds(
        lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
        st.sampled_from(["http://", "https://", "HTTP://", "", "file://", "http:"]),
        st.text(max_size=12),
        st.one_of(st.just(""), st.integers(-5, 10**6).map(lambda p: f":{p}"), st.text(max_size=4)),
        st.text(max_size=8),
    ),
)
scalars = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.sampled_from([0, 1, -1, 255, 256, 257, 65535, 65536, 10**5, 10**19, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e400, 1e19, 0.5, 60.0, 1e-300]),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["1e400", "nan", "inf", "10MB", "1.5G", "0", "-1", " 8 ", "true", "[", "\\"]),
    urls,
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(min_size=1, max_size=5), scalars, max_size=3),
)


@dataclass(frozen=True)
class Given:
    option: Option
    source: str
    value: Any
    key: str


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, list[Given]]:
    command = draw(st.sampled_from(COMMANDS))
    chosen = draw(
        st.lists(
            st.sampled_from([o for o in OPTIONS if o.command == command]),
            min_size=1,
            max_size=3,
            unique_by=lambda o: o.name,
        )
    )
    given_ = []
    for option in chosen:
        sources = [s for s in SOURCES if s != "env" or option.envvar]
        source = draw(st.sampled_from(sources))
        key = draw(st.sampled_from([option.name, option.name.replace("_", "-")]))
        given_.append(Given(option, source, draw(values), key))
    return command, given_


def text(value: Any) -> str:
    """A value as someone would type it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
        )
    if isinstance(value, str):
        escaped = "".join(
            "\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 32 or ord(c) == 127 else c
            for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml(k)} = {toml(v)}" for k, v in value.items()) + "}"


def refused(given: Given) -> bool:
    """Whether `SETTINGS` refuses the value as its source gives it."""
    setting = SETTINGS[given.option.name]
    try:
        if given.source in ("ragidx.toml", "pyproject.toml"):
            setting.check(given.value)
        elif given.option.is_flag:
            return False
        elif given.source == "env" and text(given.value) == "":
            return False  # an empty variable is an unset one
        elif setting.kind is Kind.PATH and text(given.value) == "":
            return False  # typer reads an empty path as `.`, which the index then refuses
        elif setting.many and isinstance(given.value, list):
            for item in given.value:
                setting.parse(text(item))
        else:
            setting.parse(text(given.value))
    except ConfigError:
        return True
    return False


def where(given: Given) -> str:
    """The start of the error a refused value must give."""
    if given.source == "ragidx.toml":
        return f"error: ragidx.toml: {given.key} = "
    if given.source == "pyproject.toml":
        return f"error: pyproject.toml [tool.ragidx]: {given.key} = "
    if given.source == "env":
        return f"error: {given.option.envvar}="
    return f"error: {given.option.flag} "


def typeable(value: Any) -> bool:
    """Whether a command line or an environment variable can carry the value's text."""
    items = value if isinstance(value, list) else [value]
    return all("\0" not in text(v) for v in items)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("index")
    (root / "a.md").write_text("# Apples\n\napple pie and apple juice\n", encoding="utf-8")
    with contextlib.chdir(root):
        unset = {o.envvar: None for o in OPTIONS if o.envvar}
        result = CliRunner().invoke(app, ["index", "a.md", "--db", "i.db", "-q"], env=unset)
    assert result.exit_code == 0, result.stderr
    yield root / "i.db"


def test_any_value_from_any_source_exits_0_or_2_naming_the_source(index: Path) -> None:
    tally: collections.Counter[str] = collections.Counter()
    base = {name: None for name in os.environ if name.startswith(("RAGIDX_", "OPENAI_"))}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(cases())
    def check(case: tuple[str, list[Given]]) -> None:
        command, chosen = case
        for g in chosen:
            if g.source in ("flag", "env") and not typeable(g.value):
                return
        args, env = _invocation(command, chosen, index)
        with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
            (Path(tmp) / "a.md").write_text("apple\n", encoding="utf-8")
            shutil.copy(index, Path(tmp) / "i.db")
            table = {
                s: "\n".join(f"{toml(g.key)} = {toml(g.value)}" for g in chosen if g.source == s)
                for s in ("ragidx.toml", "pyproject.toml")
            }
            if table["ragidx.toml"]:
                (Path(tmp) / "ragidx.toml").write_text(table["ragidx.toml"] + "\n", "utf-8")
            if table["pyproject.toml"]:
                content = "[tool.ragidx]\n" + table["pyproject.toml"] + "\n"
                (Path(tmp) / "pyproject.toml").write_text(content, "utf-8")
            # Where both files are written, ragidx.toml alone counts.
            live = [g for g in chosen if g.source != "pyproject.toml" or not table["ragidx.toml"]]
            result = CliRunner().invoke(app, args, env={**base, **env}, catch_exceptions=True)
        tally["cases"] += 1
        for g in chosen:
            tally[f"values from {g.source}"] += 1
        exc = result.exception
        assert exc is None or isinstance(exc, SystemExit), (
            f"{args} {env} {table}: {type(exc).__name__}: {exc}"
        )
        assert result.exit_code in (0, 2), (args, env, table, result.stderr)
        bad = [g for g in live if refused(g)]
        # A note (the offline embedder is in use) may come first; then the error.
        lines = [x for x in result.stderr.splitlines() if not x.startswith("note: ")]
        first = lines[0] if lines else ""
        if result.exit_code == 2:
            assert first.startswith("error:") or _typer_checked(bad, result.stderr), (
                args,
                env,
                table,
                result.stderr,
            )
        if bad:
            tally["refused"] += 1
            assert result.exit_code == 2, (args, env, table, result.stderr)
            assert any(first.startswith(where(g)) for g in bad) or _typer_checked(
                bad, result.stderr
            ), (args, env, table, result.stderr)
        else:
            tally[f"accepted, exit {result.exit_code}"] += 1

    check()
    print(f"\nsettings property test: {dict(tally)}")
    assert tally["cases"] >= EXAMPLES // 2
    assert tally["refused"] and tally["accepted, exit 0"]


def _typer_checked(bad: list[Given], stderr: str) -> bool:
    return any(g.source == "flag" and g.option.name in TYPER_CHECKED for g in bad) and (
        "Invalid value" in stderr
    )


def _invocation(
    command: str, chosen: list[Given], index: Path
) -> tuple[list[str], dict[str, str | None]]:
    args = [command]
    names = {g.option.name for g in chosen}
    if command == "index":
        args += ["a.md", "--dry-run"]
    if command == "search":
        args += ["apple"]
    if "db" not in names:
        args += ["--db", "i.db"]
    env: dict[str, str | None] = {}
    for g in chosen:
        if g.source == "env" and g.option.envvar:
            env[g.option.envvar] = text(g.value)
        elif g.source == "flag":
            if g.option.is_flag:
                args.append(g.option.flag)
            elif isinstance(g.value, list) and SETTINGS[g.option.name].many:
                for item in g.value:
                    args += [g.option.flag, text(item)]
            else:
                args += [g.option.flag, text(g.value)]
    return args, env


def test_every_kind_of_setting_is_fed() -> None:
    assert {SETTINGS[o.name].kind for o in OPTIONS} == set(Kind)
