"""A walk fanned out to helper processes gives what a walk in one process gives, in the same
order, and its helpers never outlive it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import write

from ragidx.config import IndexConfig, WalkConfig
from ragidx.embed import HashEmbedder
from ragidx.errors import ConfigError, WalkError
from ragidx.events import FileDone, FilesUnchanged
from ragidx.pipeline.prepare import usable_cores, walk_workers
from ragidx.pipeline.run import index
from ragidx.store import SqliteStore
from ragidx.walk.pool import WalkPool
from ragidx.walk.walker import absolute, walk

TREE: dict[str, str | bytes] = {
    ".gitignore": "*.log\nbuild/\n",
    "a.md": "a\n",
    "big.txt": "x" * 5000,
    "src/x.md": "x\n",
    "src/y.log": "ignored by the root's .gitignore\n",
    "src/.hidden.md": "hidden\n",
    "src/build/z.md": "in an ignored directory\n",
    "docs/.ragidxignore": "secret.md\n",
    "docs/secret.md": "ignored below docs\n",
    "docs/p.md": "p\n",
    "docs/deep/q.md": "q\n",
    "docs/deep/deeper/r.md": "r\n",
    "docs/deep/big.txt": "y" * 5000,
    "vendor/node_modules/n.md": "skipped by default\n",
    "nested/.git/HEAD": "ref: refs/heads/main\n",
    "nested/r.log": "a nested repository: the root's rules stop here\n",
    "venv/pyvenv.cfg": "home = /usr\n",
    "venv/lib.md": "in a virtualenv\n",
    "z/last.md": "last\n",
}


def items(paths: list[Path], **options: Any) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for item in walk(paths, WalkConfig(**options)):
        named = ("size", "mtime_ns", "reason", "error", "not_file")
        fields = (getattr(item, f, None) for f in named)
        out.append((type(item).__name__, str(item.path), *fields))
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    write(root, TREE)
    (root / "src/gone").symlink_to(root / "nowhere")  # a broken link: skipped, not stored
    os.mkfifo(root / "docs/deep/pipe")  # skipped, with its kind
    (root / "z/link.md").symlink_to(root / "a.md")
    return root


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The subtrees handed to walk helpers, as they are handed."""
    subtrees_seen: list[str] = []
    listings = WalkPool.listings

    def spy(self: WalkPool, subtrees: list[str], *args: Any) -> Any:
        subtrees_seen.extend(subtrees)
        return listings(self, subtrees, *args)

    monkeypatch.setattr(WalkPool, "listings", spy)
    return subtrees_seen


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"max_file_size": 1000},
        {"exclude": ("docs/deep/**",)},
        {"include": ("*.md",), "hidden": True},
    ],
)
def test_a_fanned_walk_is_the_walk_in_one_process(
    tree: Path, options: dict[str, Any], handed: list[str]
) -> None:
    alone = items([tree], workers=0, **options)
    assert handed == []
    fanned = items([tree], workers=2, **options)
    assert fanned == alone
    # The root's subdirectories went to the helpers.
    assert [Path(p).name for p in handed] == ["docs", "nested", "src", "vendor", "z"]
    if options:
        return
    paths = [Path(p).relative_to(tree).as_posix() for kind, p, *_ in alone if kind != "DirVisited"]
    assert "src/x.md" in paths and "docs/deep/deeper/r.md" in paths
    assert "nested/r.log" in paths  # the nested repository's own rules
    for left_out in ("src/y.log", "src/build/z.md", "docs/secret.md", "venv/lib.md"):
        assert left_out not in paths


def test_a_fanned_walk_remembers_the_directories_its_helpers_walked(tree: Path) -> None:
    # A second path that names a directory already walked (through a link) is not walked again.
    link = tree.parent / "link-to-deep"
    link.symlink_to(tree / "docs/deep")
    assert items([tree, link], workers=2) == items([tree, link], workers=0)
    assert not any(str(p).startswith(str(link)) for _, p, *_ in items([tree, link], workers=2))


def test_a_helper_that_dies_fails_the_walk_with_a_clear_error(tree: Path) -> None:
    with WalkPool(2, str(tree), WalkConfig()) as pool:
        for helper in pool.helpers:
            helper.kill()
            helper.wait()
        with pytest.raises(WalkError, match="ended early"):
            list(pool.listings([str(tree / "docs"), str(tree / "src")], [], set()))


def test_a_helper_that_fails_says_why(tree: Path) -> None:
    with WalkPool(1, str(tree), WalkConfig()) as pool:
        pool.options["max_file_size"] = 0  # the helper's own WalkConfig will refuse it
        with pytest.raises(WalkError, match=r"exit code 1\): .*--max-file-size must be positive"):
            list(pool.listings([str(tree / "docs"), str(tree / "src")], [], set()))


def test_helpers_stop_when_the_walk_stops_early(tree: Path) -> None:
    for n in range(40):  # enough work that the helpers are still busy when it stops
        write(tree, {f"many/d{n:02d}/f{i}.md": "text\n" for i in range(30)})
    subtrees = sorted(str(p) for p in (tree / "many").iterdir())
    with WalkPool(2, str(tree), WalkConfig()) as pool:
        helpers = list(pool.helpers)
        listings = pool.listings(subtrees, [], set())
        next(listings)
        listings.close()
    assert all(helper.returncode is not None for helper in helpers)


def test_an_index_walked_by_helpers_is_the_index_walked_alone(tree: Path) -> None:
    def run(workers: int) -> list[tuple[str, str]]:
        seen: list[tuple[str, str]] = []

        def record(event: object) -> None:
            if isinstance(event, FileDone):
                seen.append((event.path, event.status.value))
            elif isinstance(event, FilesUnchanged):
                seen.extend((path, "unchanged") for path in event.paths)

        config = IndexConfig(
            db_path=tree.parent / f"w{workers}.db", walk=WalkConfig(workers=workers)
        )
        index([tree], HashEmbedder(64), config, record)
        seen.clear()
        (tree / "docs/p.md").write_text(f"p, edited for {workers}\n", encoding="utf-8")
        os.utime(tree / "docs/p.md", ns=(1, 10**18 + workers))
        index([tree], HashEmbedder(64), config, record)
        return seen

    fanned, alone = run(2), run(0)
    assert fanned == alone
    assert (str(tree / "docs/p.md"), "indexed") in fanned
    assert sum(status == "unchanged" for _, status in fanned) >= 8


def test_walk_workers_must_not_be_negative() -> None:
    with pytest.raises(ConfigError, match="walk workers"):
        WalkConfig(workers=-1)


def test_the_helpers_walk_from_the_walkers_own_absolute_paths(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree.parent)
    assert items([Path("tree")], workers=2) == items([absolute("tree")], workers=0)


def test_index_fans_out_where_the_index_already_holds_many_files(
    work: Path, handed: list[str]
) -> None:
    if usable_cores() < 2:
        pytest.skip("one core: the walk never fans out (the unit test below covers the rule)")
    write(work, {f"docs/{d}/f{i}.md": f"{d} {i}\n" for d in "abc" for i in range(4)})
    config = IndexConfig(db_path=work / "idx.db", walk=WalkConfig(fan_out_files=12))
    assert index(["docs"], HashEmbedder(), config).counts["indexed"] == 12
    assert handed == []  # an empty index: nothing says the tree is large
    assert index(["docs"], HashEmbedder(), config).counts["unchanged"] == 12
    assert [Path(p).name for p in handed] == ["a", "b", "c"]


def test_the_walk_fans_out_on_two_cores_or_more_where_the_index_holds_enough(
    work: Path,
) -> None:
    write(work, {f"docs/{d}/f{i}.md": f"{d} {i}\n" for d in "abc" for i in range(4)})
    config = IndexConfig(db_path=work / "idx.db", walk=WalkConfig(workers=0))
    index(["docs"], HashEmbedder(), config)
    store = SqliteStore.open(work / "idx.db")
    try:
        docs = [absolute("docs")]
        assert walk_workers(store, docs, fan_out_files=12, cores=2) == 2
        assert walk_workers(store, docs, fan_out_files=12, cores=8) == 4  # at most 4
        assert walk_workers(store, docs, fan_out_files=13, cores=2) == 0  # too few files
        assert walk_workers(store, docs, fan_out_files=12, cores=1) == 0  # nothing to gain
    finally:
        store.close()
