"""Tests for ragidx.walk.walk and ragidx.config.WalkConfig, against real trees in tmp_path."""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

import pytest

from ragidx.config import WalkConfig
from ragidx.errors import ConfigError
from ragidx.models import FileInfo
from ragidx.walk.walker import MISSING, DirVisited, Skipped, walk


def make(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create `files` (relative path -> content) under `root`; return `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def run(paths: list[Path], **options: object) -> list[object]:
    return list(walk(paths, WalkConfig(**options)))  # type: ignore[arg-type]


def describe(root: Path, items: list[object]) -> list[tuple[str, str]]:
    """Items as (kind, path relative to root) pairs, in walk order."""
    out: list[tuple[str, str]] = []
    for item in items:
        assert isinstance(item, DirVisited | FileInfo | Skipped)
        kind = {DirVisited: "dir", FileInfo: "file", Skipped: "skip"}[type(item)]
        out.append((kind, Path(item.path).relative_to(root).as_posix()))
    return out


def file_set(root: Path, **options: object) -> set[str]:
    return {rel for kind, rel in describe(root, run([root], **options)) if kind == "file"}


def dir_set(root: Path, **options: object) -> set[str]:
    return {rel for kind, rel in describe(root, run([root], **options)) if kind == "dir"}


# --- ignore files -------------------------------------------------------------------------


def test_nested_gitignore_negation_reincludes_and_ignored_dirs_are_not_descended(
    tmp_path: Path,
) -> None:
    root = make(
        tmp_path / "root",
        {
            ".gitignore": "*.log\nbuild/\n",
            "keep.txt": "k",
            "top.log": "ignored",
            "sub/.gitignore": "!important.log\n",
            "sub/important.log": "re-included",
            "sub/other.log": "still ignored",
            "sub/note.txt": "n",
            # An ignored directory is never entered, so its own negation cannot apply.
            "build/.gitignore": "!*\n",
            "build/out.txt": "o",
        },
    )
    assert file_set(root) == {"keep.txt", "sub/important.log", "sub/note.txt"}
    assert dir_set(root) == {".", "sub"}


def test_deeper_gitignore_can_ignore_what_shallower_allows(tmp_path: Path) -> None:
    root = make(
        tmp_path / "root",
        {
            ".gitignore": "!*.md\n",
            "a.md": "a",
            "docs/.gitignore": "*.md\n",
            "docs/b.md": "b",
            "docs/c.txt": "c",
        },
    )
    assert file_set(root) == {"a.md", "docs/c.txt"}


def test_anchored_gitignore_pattern_is_relative_to_its_own_directory(tmp_path: Path) -> None:
    root = make(
        tmp_path / "root",
        {
            "sub/.gitignore": "/only_here.txt\n",
            "sub/only_here.txt": "x",
            "sub/deeper/only_here.txt": "y",
            "only_here.txt": "z",
        },
    )
    assert file_set(root) == {"only_here.txt", "sub/deeper/only_here.txt"}


def test_ragidxignore_is_honoured(tmp_path: Path) -> None:
    root = make(
        tmp_path / "root",
        {
            ".ragidxignore": "secret/\n*.tmp\n",
            "a.txt": "a",
            "scratch.tmp": "t",
            "secret/s.txt": "s",
            "docs/d.tmp": "t",
            "docs/d.md": "d",
        },
    )
    assert file_set(root) == {"a.txt", "docs/d.md"}
    assert "secret" not in dir_set(root)


def test_nested_ragidxignore_applies_below_its_directory_only(tmp_path: Path) -> None:
    root = make(
        tmp_path / "root",
        {
            "a.csv": "1",
            "data/.ragidxignore": "*.csv\n",
            "data/b.csv": "2",
            "data/b.txt": "3",
        },
    )
    assert file_set(root) == {"a.csv", "data/b.txt"}


# --- default skips and hidden ---------------------------------------------------------------


DEFAULT_SKIP_TREE: dict[str, str | bytes] = {
    "visible.txt": "v",
    ".hidden.txt": "h",
    ".hiddendir/inside.txt": "h",
    ".git/config": "[core]",
    ".git/HEAD": "ref: refs/heads/main",
    "node_modules/pkg/index.js": "module.exports = 1",
    "__pycache__/m.cpython-311.pyc": b"\x00\x01",
    "venv/pyvenv.cfg": "home = /usr/bin",
    "venv/lib/site.py": "x = 1",
    "myenv/pyvenv.cfg": "home = /usr/bin",
    "myenv/lib/mod.py": "y = 2",
    "src/app.py": "print('hi')",
    "src/node_modules/dep.js": "d",
    "src/__pycache__/app.pyc": b"\x00",
}


def test_default_skips(tmp_path: Path) -> None:
    root = make(tmp_path / "root", DEFAULT_SKIP_TREE)
    assert file_set(root) == {"visible.txt", "src/app.py"}
    assert dir_set(root) == {".", "src"}


def test_hidden_true_includes_hidden_entries_but_never_git(tmp_path: Path) -> None:
    root = make(tmp_path / "root", DEFAULT_SKIP_TREE)
    files = file_set(root, hidden=True)
    assert files == {"visible.txt", ".hidden.txt", ".hiddendir/inside.txt", "src/app.py"}
    assert not any(rel.startswith(".git/") or rel == ".git" for rel in files)
    assert ".git" not in dir_set(root, hidden=True)
    assert ".hiddendir" in dir_set(root, hidden=True)


def test_virtualenv_is_detected_by_pyvenv_cfg_not_by_name(tmp_path: Path) -> None:
    root = make(
        tmp_path / "root",
        {"venv/lib/not_a_venv.py": "a", "custom/pyvenv.cfg": "home = /x", "custom/m.py": "b"},
    )
    assert file_set(root) == {"venv/lib/not_a_venv.py"}


# --- include / exclude ----------------------------------------------------------------------


GLOB_TREE: dict[str, str | bytes] = {
    "readme.md": "r",
    "notes.txt": "n",
    "docs/guide.md": "g",
    "docs/intro.rst": "i",
    "docs/draft-plan.md": "d",
    "docs/drafts/old.md": "o",
    "src/code.py": "c",
}


def test_include_selects_files_without_pruning_directories(tmp_path: Path) -> None:
    root = make(tmp_path / "root", GLOB_TREE)
    # "docs" itself does not match *.md, yet the walker goes into it.
    assert file_set(root, include=("*.md",)) == {
        "readme.md",
        "docs/guide.md",
        "docs/draft-plan.md",
        "docs/drafts/old.md",
    }


def test_include_is_repeatable(tmp_path: Path) -> None:
    root = make(tmp_path / "root", GLOB_TREE)
    assert file_set(root, include=("*.rst", "*.py")) == {"docs/intro.rst", "src/code.py"}


def test_exclude_is_repeatable_and_prunes_directories(tmp_path: Path) -> None:
    root = make(tmp_path / "root", GLOB_TREE)
    files = file_set(root, exclude=("drafts/", "*.txt"))
    assert files == {
        "readme.md",
        "docs/guide.md",
        "docs/intro.rst",
        "docs/draft-plan.md",
        "src/code.py",
    }
    assert "docs/drafts" not in dir_set(root, exclude=("drafts/", "*.txt"))


def test_exclude_wins_over_include(tmp_path: Path) -> None:
    root = make(tmp_path / "root", GLOB_TREE)
    assert file_set(root, include=("*.md",), exclude=("draft*",)) == {"readme.md", "docs/guide.md"}
    assert file_set(root, include=("*.md",), exclude=("*.md",)) == set()


def test_include_path_pattern_is_relative_to_the_root(tmp_path: Path) -> None:
    root = make(tmp_path / "root", GLOB_TREE)
    assert file_set(root, include=("docs/*.md",)) == {"docs/guide.md", "docs/draft-plan.md"}


# --- size cap -------------------------------------------------------------------------------


def test_max_file_size_skips_larger_files_with_a_reason(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"big.txt": "x" * 2000, "exact.txt": "y" * 1000, "s.txt": "z"})
    items = run([root], max_file_size=1000)
    by_name = {Path(item.path).name: item for item in items if not isinstance(item, DirVisited)}
    big = by_name["big.txt"]
    assert isinstance(big, Skipped)
    # The core's own words: the CLI adds its flag where it shows the reason to a person.
    assert big.reason == "larger than the size limit (2.0 KiB > 1000 B)"
    assert big.size == 2000
    assert big.mtime_ns == (root / "big.txt").stat().st_mtime_ns
    assert big.error is False
    # The cap is inclusive: a file of exactly max_file_size bytes is indexed.
    assert isinstance(by_name["exact.txt"], FileInfo)
    assert by_name["exact.txt"].size == 1000
    assert isinstance(by_name["s.txt"], FileInfo)


def test_documents_have_a_cap_of_their_own(tmp_path: Path) -> None:
    root = make(
        tmp_path / "root",
        {"a.pdf": "x" * 2000, "b.PDF": "x" * 4000, "c.txt": "x" * 2000, "d.pdf": "x" * 500},
    )
    items = run(
        [root], max_file_size=1000, max_document_size=3000, document_suffixes=frozenset({".pdf"})
    )
    by_name = {Path(item.path).name: item for item in items if not isinstance(item, DirVisited)}
    assert isinstance(by_name["a.pdf"], FileInfo) and isinstance(by_name["d.pdf"], FileInfo)
    big, text = by_name["b.PDF"], by_name["c.txt"]
    assert isinstance(big, Skipped) and isinstance(text, Skipped)
    assert big.reason == "larger than the document size limit (3.9 KiB > 2.9 KiB)"
    assert text.reason == "larger than the size limit (2.0 KiB > 1000 B)"
    # A file named on the command line is held to the same caps.
    (named,) = run([root / "a.pdf"], max_file_size=1000, document_suffixes=frozenset({".pdf"}))
    assert isinstance(named, FileInfo)


@pytest.mark.parametrize("size", [0, -1])
def test_walkconfig_rejects_non_positive_max_file_size(size: int) -> None:
    with pytest.raises(ConfigError, match="--max-file-size"):
        WalkConfig(max_file_size=size)


def test_walkconfig_defaults() -> None:
    config = WalkConfig()
    assert config.include == ()
    assert config.exclude == ()
    assert config.max_file_size == 10 * 1024 * 1024
    assert config.follow_symlinks is False
    assert config.hidden is False


def test_fileinfo_records_size_and_mtime(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"a.txt": "hello"})
    infos = [item for item in run([root]) if isinstance(item, FileInfo)]
    assert len(infos) == 1
    st = (root / "a.txt").stat()
    assert infos[0] == FileInfo(str(root / "a.txt"), 5, st.st_mtime_ns)


# --- symlinks -------------------------------------------------------------------------------


def symlink_tree(tmp_path: Path) -> Path:
    root = make(tmp_path / "root", {"real/a.txt": "a"})
    make(tmp_path / "outside", {"o.txt": "o", "deep/p.txt": "p"})
    (root / "ext").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "link.txt").symlink_to(root / "real" / "a.txt")
    (root / "dangling.txt").symlink_to(root / "does-not-exist")
    return root


def test_symlinks_are_not_followed_by_default(tmp_path: Path) -> None:
    root = symlink_tree(tmp_path)
    items = run([root])
    assert describe(root, items) == [
        ("dir", "."),
        ("skip", "dangling.txt"),
        ("skip", "ext"),
        ("skip", "link.txt"),
        ("dir", "real"),
        ("file", "real/a.txt"),
    ]
    for link in items[1:4]:
        assert isinstance(link, Skipped) and link.not_file and not link.error
        assert link.reason == "symbolic link (use --follow-symlinks)"


def test_symlinks_are_followed_when_asked(tmp_path: Path) -> None:
    root = symlink_tree(tmp_path)
    items = describe(root, run([root], follow_symlinks=True))
    assert items == [
        ("dir", "."),
        ("file", "link.txt"),
        ("skip", "dangling.txt"),  # what is no file comes after the files
        ("dir", "ext"),
        ("file", "ext/o.txt"),
        ("dir", "ext/deep"),
        ("file", "ext/deep/p.txt"),
        ("dir", "real"),
        ("file", "real/a.txt"),
    ]
    dangling = run([root], follow_symlinks=True)[2]
    assert isinstance(dangling, Skipped) and dangling.not_file
    assert dangling.reason == "broken symlink"


def test_symlink_loop_terminates_and_yields_each_real_file_once(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"x.txt": "x", "a/y.txt": "y", "a/b/z.txt": "z"})
    (root / "a" / "b" / "up").symlink_to(root, target_is_directory=True)
    (root / "a" / "b" / "parent").symlink_to(root / "a", target_is_directory=True)
    (root / "a" / "self").symlink_to(".", target_is_directory=True)
    # Guard against an infinite walk: a correct walker yields far fewer items than this.
    items = list(itertools.islice(walk([root], WalkConfig(follow_symlinks=True)), 500))
    assert len(items) < 500
    files = [rel for kind, rel in describe(root, items) if kind == "file"]
    assert sorted(files) == ["a/b/z.txt", "a/y.txt", "x.txt"]
    dirs = [rel for kind, rel in describe(root, items) if kind == "dir"]
    assert sorted(dirs) == [".", "a", "a/b"]
    # Each link that leads back up is reported once, with the reason.
    loops = {
        Path(item.path).relative_to(root).as_posix(): item.reason
        for item in items
        if isinstance(item, Skipped)
    }
    assert loops == dict.fromkeys(["a/b/up", "a/b/parent", "a/self"], "symlink loop")


def test_entries_that_are_no_file_are_skipped_with_the_kind(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"a.md": "a", "z.md": "z", "sub/b.md": "b", ".hid": "h"})
    os.mkfifo(root / "pipe")
    os.mkfifo(root / ".hidden-pipe")  # hidden: not reported, as hidden files are not
    os.mkfifo(root / "sub" / "ignored.log")
    (root / ".gitignore").write_text("*.log\n")
    (root / "null").symlink_to("/dev/null")
    (root / "loop1").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop1")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        plain = run([root])
        followed = run([root], follow_symlinks=True)

    def skips(items: list[object]) -> list[tuple[str, str]]:
        return [
            (Path(i.path).relative_to(root).as_posix(), i.reason)
            for i in items
            if isinstance(i, Skipped)
        ]

    assert describe(root, plain)[:3] == [("dir", "."), ("file", "a.md"), ("file", "z.md")]
    assert skips(plain) == [
        ("loop1", "symbolic link (use --follow-symlinks)"),
        ("loop2", "symbolic link (use --follow-symlinks)"),
        ("null", "symbolic link (use --follow-symlinks)"),
        ("pipe", "not a regular file: FIFO"),
        ("sock", "not a regular file: socket"),
    ]
    assert skips(followed) == [
        ("loop1", "symlink loop"),
        ("loop2", "symlink loop"),
        ("null", "not a regular file: character device"),
        ("pipe", "not a regular file: FIFO"),
        ("sock", "not a regular file: socket"),
    ]
    assert all(i.not_file for i in plain if isinstance(i, Skipped))
    # --include and --exclude hold for them as for files.
    assert skips(run([root], include=("*.md",))) == []
    assert skips(run([root], exclude=("pipe", "sock", "loop*"))) == [
        ("null", "symbolic link (use --follow-symlinks)")
    ]
    # Named on the command line, a FIFO says what it is too.
    (named,) = run([root / "pipe"])
    assert isinstance(named, Skipped) and named.reason == "not a regular file: FIFO"


# --- order ----------------------------------------------------------------------------------


def test_order_is_deterministic_files_before_subdirectories_names_sorted(tmp_path: Path) -> None:
    root = make(
        tmp_path / "root",
        {
            "b.txt": "b",
            "z.txt": "z",
            "a.txt": "a",
            "C.txt": "c",
            "m/h.txt": "h",
            "a_dir/inner/g.txt": "g",
            "a_dir/f2.txt": "f",
            "a_dir/f1.txt": "f",
            "a_dir/zz/q.txt": "q",
        },
    )
    expected = [
        ("dir", "."),
        ("file", "C.txt"),
        ("file", "a.txt"),
        ("file", "b.txt"),
        ("file", "z.txt"),
        ("dir", "a_dir"),
        ("file", "a_dir/f1.txt"),
        ("file", "a_dir/f2.txt"),
        ("dir", "a_dir/inner"),
        ("file", "a_dir/inner/g.txt"),
        ("dir", "a_dir/zz"),
        ("file", "a_dir/zz/q.txt"),
        ("dir", "m"),
        ("file", "m/h.txt"),
    ]
    first = run([root])
    assert describe(root, first) == expected
    assert run([root]) == first


def test_dir_visited_is_yielded_for_a_directory_with_no_files(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"empty/.keep": "", "full/a.txt": "a"})
    assert describe(root, run([root])) == [
        ("dir", "."),
        ("dir", "empty"),
        ("dir", "full"),
        ("file", "full/a.txt"),
    ]


def test_several_paths_are_walked_in_the_given_order(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"one/a.txt": "a", "two/b.txt": "b", "c.txt": "c"})
    items = run([root / "two", root / "c.txt", root / "one"])
    assert describe(root, items) == [
        ("dir", "two"),
        ("file", "two/b.txt"),
        ("file", "c.txt"),
        ("dir", "one"),
        ("file", "one/a.txt"),
    ]


# --- named paths ----------------------------------------------------------------------------


def test_named_file_bypasses_gitignore(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {".gitignore": "*.log\n", "x.log": "log", "a.txt": "a"})
    assert file_set(root) == {"a.txt"}
    items = run([root / "x.log"])
    assert len(items) == 1
    assert isinstance(items[0], FileInfo)
    assert Path(items[0].path) == root / "x.log"
    assert items[0].size == 3


def test_named_file_does_not_bypass_size_cap(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {".gitignore": "*.log\n", "x.log": "x" * 50})
    items = run([root / "x.log"], max_file_size=10)
    assert len(items) == 1
    assert isinstance(items[0], Skipped)
    assert items[0].reason == "larger than the size limit (50 B > 10 B)"
    assert items[0].size == 50
    assert items[0].error is False


def test_named_file_does_not_bypass_exclude(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"x.log": "x"})
    assert run([root / "x.log"], exclude=("*.log",)) == []


def test_named_relative_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make(tmp_path / "root", {"a.txt": "a"})
    monkeypatch.chdir(root)
    items = run([Path("a.txt")])
    assert len(items) == 1
    assert isinstance(items[0], FileInfo)
    assert Path(items[0].path) == root / "a.txt"
    assert Path(items[0].path).is_absolute()


def test_missing_path_is_skipped_as_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "gone.md"
    items = run([missing, tmp_path / "also-missing"])
    assert items == [
        Skipped(missing, "no such file or directory", error=True),
        Skipped(tmp_path / "also-missing", MISSING, error=True),
    ]
    assert MISSING == "no such file or directory"


# --- the enclosing git work tree ------------------------------------------------------------


def test_ignore_files_of_enclosing_git_work_tree_apply(tmp_path: Path) -> None:
    top = make(
        tmp_path / "repo",
        {
            ".gitignore": "*.log\nsub/private/\n",
            "mid/.gitignore": "*.tmp\n",
            "sub/a.txt": "a",
            "sub/b.log": "b",
            "sub/private/p.txt": "p",
            "sub/public/q.txt": "q",
            "mid/sub/c.txt": "c",
            "mid/sub/d.tmp": "d",
            "mid/sub/e.log": "e",
        },
    )
    (top / ".git").mkdir()
    sub = top / "sub"
    assert describe(sub, run([sub])) == [
        ("dir", "."),
        ("file", "a.txt"),
        ("dir", "public"),
        ("file", "public/q.txt"),
    ]
    deeper = top / "mid" / "sub"
    assert describe(deeper, run([deeper])) == [("dir", "."), ("file", "c.txt")]


def test_ignore_files_above_the_root_do_not_apply_outside_a_git_work_tree(
    tmp_path: Path,
) -> None:
    top = make(tmp_path / "plain", {".gitignore": "*.log\n", "sub/a.txt": "a", "sub/b.log": "b"})
    sub = top / "sub"
    assert file_set(sub) == {"a.txt", "b.log"}


def test_ignore_files_above_the_git_work_tree_top_do_not_apply(tmp_path: Path) -> None:
    outer = make(tmp_path / "outer", {".gitignore": "*.md\n", "repo/sub/a.md": "a"})
    (outer / "repo" / ".git").mkdir()
    sub = outer / "repo" / "sub"
    assert file_set(sub) == {"a.md"}


def test_git_file_marks_a_work_tree_too(tmp_path: Path) -> None:
    # Worktrees and submodules have a `.git` *file*; the walker checks for existence.
    top = make(tmp_path / "wt", {".git": "gitdir: /elsewhere\n", ".gitignore": "*.log\n"})
    make(top, {"sub/a.txt": "a", "sub/b.log": "b"})
    assert file_set(top / "sub") == {"a.txt"}


def test_a_nested_repository_has_its_own_ignore_rules(tmp_path: Path) -> None:
    outer = make(
        tmp_path / "outer",
        {
            ".gitignore": "*.md\n",
            "top.md": "ignored by the outer rules",
            "inner/.git/HEAD": "ref: refs/heads/main\n",
            "inner/doc.md": "not ignored: another repository",
            "inner/.gitignore": "*.tmp\n",
            "inner/scratch.tmp": "ignored by the inner rules",
        },
    )
    (outer / ".git").mkdir()
    assert file_set(outer) == {"inner/doc.md"}
    inner = outer / "inner"
    assert {rel for kind, rel in describe(inner, run([inner])) if kind == "file"} == {"doc.md"}


def test_skip_paths_are_never_yielded(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"a.md": "a", "index.db": "x", "index.db-wal": "y"})
    skip = frozenset({str(root / "index.db"), str(root / "index.db-wal")})
    assert file_set(root, skip_paths=skip) == {"a.md"}
    assert run([root / "index.db"], skip_paths=skip) == []


def test_a_directory_reached_again_by_a_link_is_reported_once(tmp_path: Path) -> None:
    root = make(tmp_path / "root", {"a/x.md": "x", "z/y.md": "y"})
    (root / "b").symlink_to(root / "a", target_is_directory=True)  # walked after a
    (root / "0link").symlink_to(root / "z", target_is_directory=True)  # walked before z
    items = run([root], follow_symlinks=True)
    files = [rel for kind, rel in describe(root, items) if kind == "file"]
    assert files == ["0link/y.md", "a/x.md"]
    skips = [(Path(i.path).name, i.reason) for i in items if isinstance(i, Skipped)]
    assert skips == [
        ("b", "directory already walked by another path"),
        ("z", "directory already walked by another path"),
    ]
    # A root inside another root is walked with it, and not reported.
    again = run([root, root / "a"], follow_symlinks=True)
    assert [i.path.name for i in again if isinstance(i, Skipped)] == ["b", "z"]
