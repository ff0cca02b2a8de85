"""Settings files: ragidx.toml or [tool.ragidx], below flags and environment variables."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
from helpers import RAGIDX, ROOT, Cli, Result, env_without, write

from ragidx.cli import app
from ragidx.config import IndexConfig, WalkConfig
from ragidx.embed import EmbedOptions
from ragidx.errors import ConfigError
from ragidx.settings import SETTINGS


def chunking(cli: Cli) -> tuple[int, int]:
    stats = json.loads(cli("stats", "--db", "idx.db", "--json").stdout)
    return stats["chunk_tokens"], stats["chunk_overlap"]


def test_file_then_env_then_flag(cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        work,
        {
            "a.md": "apple\n",
            "ragidx.toml": 'chunk-tokens = 128\nchunk_overlap = 8\ndb = "idx.db"\n',
        },
    )
    assert cli("index", "a.md", "-q").exit_code == 0  # db comes from the file too
    assert chunking(cli) == (128, 8)
    assert cli("index", "a.md", "-q", "--chunk-tokens", "256").exit_code == 0
    assert chunking(cli) == (256, 8)
    write(work, {"ragidx.toml": 'db = "file.db"\n'})
    monkeypatch.setenv("RAGIDX_DB", str(work / "env.db"))
    assert cli("index", "a.md", "-q").exit_code == 0
    assert (work / "env.db").exists() and not (work / "file.db").exists()


def test_pyproject_tool_table(cli: Cli, work: Path) -> None:
    write(
        work,
        {
            "a.md": "apple\n",
            "pyproject.toml": '[project]\nname = "x"\n\n[tool.ragidx]\nchunk-tokens = 64\n',
        },
    )
    assert cli("index", "a.md", "--db", "idx.db", "-q").exit_code == 0
    assert chunking(cli) == (64, 8)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('api_key = "sk-123"\n', "api_key cannot be set in a file"),
        ("bogus = 1\n", "unknown setting bogus"),
        ("chunk-tokens = \n", "ragidx.toml"),
    ],
)
def test_bad_settings_files_exit_2(cli: Cli, work: Path, content: str, message: str) -> None:
    write(work, {"a.md": "apple\n", "ragidx.toml": content})
    result = cli("index", "a.md", "--db", "idx.db")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "sk-123" not in result.stderr


def test_verbose_shows_settings_but_not_the_key(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, {"a.md": "apple\n", "ragidx.toml": "chunk-tokens = 100\n"})
    monkeypatch.setenv("RAGIDX_API_KEY", "sk-do-not-print")
    result = cli("index", "a.md", "--db", "idx.db", "--verbose", "--provider", "hash")
    assert result.exit_code == 0
    line = next(x for x in result.stderr.splitlines() if x.startswith("settings:"))
    assert "chunk_tokens=100" in line and "settings_file=" in line and "provider=hash" in line
    # What the run will count and cut by, as it resolves them: the hash embedder estimates.
    assert "tokenizer=estimate pack=False workers=" in line
    assert "sk-do-not-print" not in result.stderr


# One typed check of every setting, whatever its source (issue 14, section 6).


def bad(result: Result, source: str) -> str:
    """The error line of a run refused for a bad setting: exit 2, no traceback, the source named."""
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {source}"), result.stderr
    return first


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        [*RAGIDX, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**env_without("RAGIDX_DB", "RAGIDX_PROVIDER", "RAGIDX_BASE_URL"), **(env or {})},
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def test_a_port_out_of_range_in_the_environment_is_refused(work: Path) -> None:
    # It was an OverflowError out of the socket, after the walk and the chunking.
    write(work, {"a.md": "apple\n"})
    result = run(["index", "a.md"], work, {"RAGIDX_BASE_URL": "http://127.0.0.1:99999/v1"})
    line = bad(result, "RAGIDX_BASE_URL=http://127.0.0.1:99999/v1: ")
    assert "port must be between 1 and 65535" in line
    assert not (work / ".ragidx").exists()


@pytest.mark.parametrize("command", [["index", "a.md"], ["doctor"]])
def test_a_url_that_cannot_be_parsed_is_refused(work: Path, command: list[str]) -> None:
    write(work, {"a.md": "apple\n"})
    result = run([*command, "--base-url", "http://[::1"], work)
    assert "Invalid IPv6 URL" in bad(result, "--base-url http://[::1: is not a valid URL")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("db = 5", "db = 5: must be a path (a string), not 5"),
        ("include = 5", 'include = 5: must be a list of strings, such as ["*.md"]'),
        ('include = ["ok", 5]', 'include = ["ok", 5]: must be a glob (a string), not 5'),
        ("concurrency = 1e400", "concurrency = inf: must be a whole number, not inf"),
        ("concurrency = true", "concurrency = true: must be a whole number, not true"),
        ("concurrency = -1", "concurrency = -1: must be between 1 and 256"),
        ("readers = 100000", "readers = 100000: must be between 1 and 256"),
        ("chunk-tokens = 1e19", "chunk-tokens = 1e+19: must be a whole number, not 1e+19"),
        ("chunk-tokens = 1000000", "chunk-tokens = 1000000: must be between 16 and 100000"),
        ("timeout = nan", "timeout = nan: must be a number, not nan"),
        ('timeout = "60"', 'timeout = "60": must be a number, not a string'),
        ("rpm = inf", "rpm = inf: must be between 0.1 and 1000000000"),
        ('max-file-size = "1e3"', 'max-file-size = "1e3": must be a size'),
        ('max-file-size = "9999999999G"', "must be at most 1024GiB"),
        ('base-url = "ftp://host/v1"', "must start with http:// or https://"),
        ('base-url = "http:///v1"', "has no host"),
        ('base-url = "http://h:0/v1"', "port must be between 1 and 65535"),
        ('provider = "nope"', 'provider = "nope": must be one of hash, ollama, openai, tei'),
        ('on-long-chunk = "drop"', "must be one of fail, split, truncate"),
        ('include = ["\\\\"]', "is not a valid glob"),
        ("hidden = 1", "hidden = 1: must be true or false, not 1"),
        ("top = 0", "top = 0: must be between 1 and 1000"),
        ('mode = "fuzzy"', "must be one of hybrid, text, vector"),
        ("model = 1979-05-27", "model = 1979-05-27: must be a string, not a date or time"),
        ('model = ""', 'model = "": must not be empty'),
    ],
)
def test_a_bad_value_in_the_file_names_the_file(
    cli: Cli, work: Path, content: str, message: str
) -> None:
    write(work, {"a.md": "apple\n", "ragidx.toml": content + "\n"})
    line = bad(cli("index", "a.md", "--dry-run"), "ragidx.toml: ")
    assert message in line


def test_the_exact_words_for_a_range_error_from_the_file(cli: Cli, work: Path) -> None:
    # It was blamed on --concurrency, with no word of the file.
    write(work, {"a.md": "apple\n", "ragidx.toml": "concurrency = -1\n"})
    result = cli("index", "a.md", "--dry-run")
    assert result.stderr == "error: ragidx.toml: concurrency = -1: must be between 1 and 256\n"


def test_pyproject_is_named_with_its_table(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple\n", "pyproject.toml": "[tool.ragidx]\nreaders = 0\n"})
    bad(cli("stats"), "pyproject.toml [tool.ragidx]: readers = 0: must be between 1 and 256")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a = " + "9" * 5000, "ragidx.toml: Exceeds the limit"),
        ("a = " + "[" * 2000 + "]" * 2000, "ragidx.toml: maximum recursion depth"),
        ("tool = 5", None),
        ("[tool]\nragidx = 5", "pyproject.toml [tool.ragidx]: the ragidx settings must be a table"),
    ],
)
def test_settings_files_that_toml_or_ragidx_cannot_take(
    cli: Cli, work: Path, content: str, message: str | None
) -> None:
    name = "ragidx.toml" if content.startswith("a =") else "pyproject.toml"
    write(work, {"a.md": "apple\n", name: content + "\n"})
    result = cli("index", "a.md", "--dry-run", "-q")
    if message is None:  # a pyproject.toml with no ragidx table is no settings file
        assert result.exit_code == 0, result.stderr
    else:
        assert message in bad(result, "")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "-1"], "error: --concurrency -1: must be between 1 and 256"),
        (["--concurrency", "abc"], "error: --concurrency abc: must be a whole number"),
        (["--concurrency", "2.5"], "error: --concurrency 2.5: must be a whole number"),
        (["--readers", "9" * 5000], "error: --readers 999"),
        (["--timeout", "inf"], "error: --timeout inf: must be between 0.1 and 3600"),
        (["--timeout", "nan"], "error: --timeout nan: must be a number, not nan"),
        (["--rpm", "0"], "error: --rpm 0: must be between 0.1 and 1000000000"),
        (["--max-file-size", "0"], "error: --max-file-size 0: must be positive"),
        (["--max-file-size", "9" * 400 + "G"], "must be at most 1024GiB"),
        (["--chunk-tokens", "1e19"], "error: --chunk-tokens 1e19: must be a whole number"),
        (["--on-long-chunk", "drop"], "error: --on-long-chunk drop: must be one of"),
        (["--include", "a", "--include", "!"], "error: --include !: is not a valid glob"),
        (["--base-url", "localhost:8000/v1"], "must start with http:// or https://"),
        (["--model", "a\nb"], "error: --model a\\nb: must not hold control characters"),
    ],
)
def test_a_bad_flag_gets_the_same_words(
    cli: Cli, work: Path, args: list[str], message: str
) -> None:
    write(work, {"a.md": "apple\n"})
    assert message in bad(cli("index", "a.md", "--dry-run", *args), "--")


def test_a_bad_variable_is_named(cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(work, {"a.md": "apple\n"})
    monkeypatch.setenv("RAGIDX_PROVIDER", "bogus")
    bad(cli("index", "a.md", "--dry-run"), "RAGIDX_PROVIDER=bogus: must be one of hash,")


def test_neighbours_that_disagree_name_where_each_came_from(cli: Cli, work: Path) -> None:
    write(work, {"a.md": "apple\n", "ragidx.toml": "chunk-overlap = 40\n"})
    bad(
        cli("index", "a.md", "--dry-run", "--chunk-tokens", "64"),
        "ragidx.toml: chunk-overlap = 40: must be less than half of chunk-tokens (64)",
    )
    write(work, {"ragidx.toml": "chunk-tokens = 64\n"})
    bad(
        cli("index", "a.md", "--dry-run", "--max-batch-tokens", "32"),
        "--max-batch-tokens 32: must be at least chunk-tokens (64)",
    )


def test_no_credentials_or_key_in_the_words(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(work, {"a.md": "apple\n"})
    monkeypatch.setenv("RAGIDX_API_KEY", "sk-test-SECRET123")
    urls = [
        "http://user:hunter2@[::1/v1",
        "http://user:hunter2@host:99999/v1",
        "http://host:99999/v1?api_key=sk-test-SECRET123",
        "ftp://sk-test-SECRET123@host/v1",
        "sk-test-SECRET123",
    ]
    for url in urls:
        for source in ("flag", "env", "file"):
            monkeypatch.delenv("RAGIDX_BASE_URL", raising=False)
            (work / "ragidx.toml").unlink(missing_ok=True)
            args = ["index", "a.md", "--dry-run"]
            if source == "flag":
                args += ["--base-url", url]
            elif source == "env":
                monkeypatch.setenv("RAGIDX_BASE_URL", url)
            else:
                write(work, {"ragidx.toml": f'base-url = "{url}"\n'})
            result = cli(*args)
            assert result.exit_code == 2, (url, source)
            assert "hunter2" not in result.stderr and "SECRET123" not in result.stderr, (
                result.stderr
            )


def setting_name(param: Any) -> str | None:
    """An option's name in SETTINGS: its long name (`--chunk-tokens`: chunk_tokens)."""
    longs = (
        [o for o in param.opts if o.startswith("--")] if param.param_type_name == "option" else []
    )
    return longs[0][2:].replace("-", "_") if longs else None


def test_every_option_of_every_command_is_a_setting() -> None:
    # A new option needs its line in SETTINGS: its type and bounds, for every source.
    group = typer.main.get_command(app)
    options = {
        name
        for command in group.commands.values()  # type: ignore[attr-defined]
        for param in command.params
        if (name := setting_name(param)) is not None and name != "help"
    }
    assert options == set(SETTINGS)


def test_settings_built_in_code_are_held_to_the_same_rules() -> None:
    with pytest.raises(ConfigError, match=r"--concurrency true: must be a whole number"):
        EmbedOptions(concurrency=True)
    with pytest.raises(ConfigError, match=r"--base-url \"http://\[::1\""):
        EmbedOptions(base_url="http://[::1")
    with pytest.raises(ConfigError, match=r"--readers 100000: must be between 1 and 256"):
        IndexConfig(readers=100000)
    with pytest.raises(ConfigError, match=r"--max-batch-tokens 10: must be at least chunk-tokens"):
        IndexConfig(batch_tokens=10)
    with pytest.raises(ConfigError, match=r"--include"):
        WalkConfig(include=("\\",))


def test_the_readme_error_lines_are_what_ragidx_says(
    cli: Cli, work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("Every setting is held to the same type")
    lines = readme[readme.index("```console\n", start) :].split("\n")[1:4]
    write(work, {"a.md": "apple\n", "ragidx.toml": "concurrency = -1\n"})
    said = [cli("index", "a.md", "--dry-run").stderr]
    (work / "ragidx.toml").unlink()
    said.append(cli("index", "a.md", "--dry-run", "--base-url", "http://[::1").stderr)
    monkeypatch.setenv("RAGIDX_BASE_URL", "http://127.0.0.1:99999/v1")
    said.append(cli("index", "a.md", "--dry-run").stderr)
    assert [s.splitlines()[0] for s in said] == lines
