"""Queries as people type them: flags that start with `-`, and CJK written without spaces."""
# ruff: noqa: RUF001 - the Chinese pages use full-width punctuation, as tldr's do

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import Cli, fts_query, write

from ragidx.query.search import MAX_TERMS

# Pages as tldr writes them, in English, Chinese and Japanese. The queries below are no
# substring of any page: a person asks in their own words.
PAGES = {
    "pages/common/lsof.md": """# lsof

> List open files and the processes that opened them.

- Find the processes that listen on TCP ports:

`lsof -iTCP -sTCP:LISTEN`

- List the files a process has open:

`lsof -p {{pid}}`
""",
    "pages/common/kill.md": """# kill

> Send a signal to a process, usually to stop it.

- Stop a process that does not answer, with signal 9:

`kill -9 {{process_id}}`

- List the signal names:

`kill -l`
""",
    "pages.zh/common/df.md": """# df

> 显示文件系统的磁盘空间使用情况。

- 以易读的单位显示所有文件系统的磁盘使用情况：

`df -h`

- 显示包含指定文件的那个文件系统的磁盘使用情况：

`df {{路径/到/文件}}`
""",
    "pages.zh/common/free.md": """# free

> 显示系统中空闲和已用的内存。

- 以易读的单位查看内存使用情况：

`free -h`
""",
    "pages.zh/common/tar.md": """# tar

> 归档工具，常与 gzip 或 bzip2 一起使用。

- 查看归档里的文件列表：

`tar tvf {{源.tar}}`

- 把一个目录打包并压缩：

`tar czf {{目标.tar.gz}} {{路径/到/目录}}`
""",
    "pages.ja/common/zip.md": """# zip

> 複数のファイルやディレクトリをまとめて圧縮するアーカイバ。

- ディレクトリの中身ごとアーカイブにまとめて圧縮する:

`zip -r {{圧縮済み.zip}} {{ディレクトリへのパス}}`
""",
    "pages.ja/common/rm.md": """# rm

> ファイルを削除する。

- ディレクトリとその中身を再帰的に削除する:

`rm -r {{ディレクトリへのパス}}`
""",
    "pages.ja/common/cp.md": """# cp

> ファイルをコピーする。

- ファイルを別のディレクトリにコピーする:

`cp {{ファイルへのパス}} {{ディレクトリへのパス}}`
""",
}


@pytest.fixture
def pages(cli: Cli, work: Path) -> Path:
    write(work, PAGES)
    result = cli("index", "pages", "pages.zh", "pages.ja", "--db", "idx.db", "--quiet")
    assert result.exit_code == 0, result.stderr
    return work


def hits(cli: Cli, *args: str) -> list[dict[str, Any]]:
    result = cli("search", "--db", "idx.db", "--json", *args)  # options before, as with `--`
    assert result.exit_code == 0, result.stderr
    found = result.json_lines()
    assert found, f"nothing found for {args}"
    return found


def top(cli: Cli, *args: str) -> tuple[str, int | None]:
    first = hits(cli, *args)[0]
    return first["path"], first["text_rank"]


@pytest.mark.parametrize(
    "args",
    [
        ["-sTCP:LISTEN"],
        ["-sTCP:LISTEN", "-k", "2"],
        ["-k", "2", "-sTCP:LISTEN", "--mode", "text"],
        ["--mode=text", "-sTCP:LISTEN"],
        ["-k2", "-sTCP:LISTEN"],
        ["--", "-sTCP:LISTEN"],
        ["-k", "1", "--", "-sTCP:LISTEN"],
    ],
)
def test_a_query_that_starts_with_a_dash_is_the_query(
    pages: Path, cli: Cli, args: list[str]
) -> None:
    assert top(cli, *args) == ("pages/common/lsof.md", 1)


@pytest.mark.parametrize("query", ["-9", "-kill", "-l"])
def test_a_dash_query_that_looks_like_an_option_is_still_the_query(
    pages: Path, cli: Cli, query: str
) -> None:
    # `-kill` starts with the `-k` option, but `ill` is no number: it is the query.
    assert top(cli, query, "--mode", "text") == ("pages/common/kill.md", 1)


def test_options_keep_working_around_dash_queries(pages: Path, cli: Cli) -> None:
    hits = cli("search", "-sTCP:LISTEN", "-k", "1", "--db", "idx.db", "--json").json_lines()
    assert len(hits) == 1
    shown = cli("search", "-sTCP:LISTEN", "--help")
    assert shown.exit_code == 0 and "QUERY" in shown.stdout.upper() and "--top" in shown.stdout
    not_help = cli("search", "--help-me", "--mode", "text", "--db", "idx.db")
    assert not_help.exit_code == 0 and not_help.stdout == "no matches\n"
    missing = cli("search", "-k")
    assert missing.exit_code == 2 and "requires an argument" in missing.stderr
    unknown = cli("search", "lsof", "--no-such-option", "--db", "idx.db")
    assert unknown.exit_code == 2 and "No such option" in unknown.stderr
    extra = cli("search", "-sTCP", "-iTCP", "--db", "idx.db")
    assert extra.exit_code == 2 and "No such option: -i" in extra.stderr  # one query only


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("查看磁盘使用情况", "pages.zh/common/df.md"),  # the page says 磁盘空间使用情况
        ("ファイルを圧縮する", "pages.ja/common/zip.md"),  # the page: ファイルや…圧縮する
        ("磁盘", "pages.zh/common/df.md"),
        ("打包压缩", "pages.zh/common/tar.md"),
        ("tar 压缩", "pages.zh/common/tar.md"),
        ("内存", "pages.zh/common/free.md"),
    ],
)
def test_cjk_without_spaces_is_found_by_text(
    pages: Path, cli: Cli, query: str, expected: str
) -> None:
    assert top(cli, query, "--mode", "text") == (expected, 1)
    # In hybrid mode the text ranking takes part: before, it found nothing and the vectors
    # alone answered.
    fused = {h["path"]: h["text_rank"] for h in hits(cli, query, "--mode", "hybrid")}
    assert fused[expected] == 1


def test_exact_identifiers_and_english_still_match_as_phrases(pages: Path, cli: Cli) -> None:
    assert top(cli, "sTCP:LISTEN", "--mode", "text") == ("pages/common/lsof.md", 1)
    assert top(cli, "processes listen", "--mode", "text")[0] == "pages/common/lsof.md"
    # A joined term matches its parts next to each other only, not anywhere in the page.
    none = cli("search", "LISTEN:TCP", "--mode", "text", "--db", "idx.db")
    assert none.exit_code == 0 and none.stdout == "no matches\n"


def test_cjk_runs_become_overlapping_pairs() -> None:
    assert fts_query("查看磁盘") == '"查 看" OR "看 磁" OR "磁 盘"'
    assert fts_query("df命令 猫") == '"df" OR "命 令" OR "猫"'
    assert fts_query("TW-E4031の説明") == '"tw-e4031" OR "の 説" OR "説 明"'


def test_a_pasted_paragraph_is_matched_on_its_first_terms(pages: Path, cli: Cli) -> None:
    # Each pair costs FTS5 time: a long query is cut to its first MAX_TERMS distinct terms.
    paragraph = "".join(PAGES[f"pages.zh/common/{name}.md"] for name in ("df", "tar", "free"))
    match = fts_query(paragraph)
    assert match is not None and match.count(" OR ") == MAX_TERMS - 1
    assert top(cli, paragraph, "--mode", "text") == ("pages.zh/common/df.md", 1)
