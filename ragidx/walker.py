"""Which files to index, in a deterministic order. The walker stats files; it never opens one.

Directories are walked depth first with entries sorted by name, a directory's files before
its subdirectories, so a directory's files come out together after a `DirVisited` marker:
the planner uses that to find files that vanished from a directory without holding the whole
tree in memory.

Rules, in order: default skips (`.git`, hidden entries, `node_modules`, `__pycache__`,
virtualenvs), then `.gitignore` and `.ragidxignore` files from the root down (deeper files
win, `!pattern` re-includes), then `--exclude`, then `--include`. Paths given by name (on the
command line or stdin) bypass the ignore files, as they do in git and ripgrep, but not the
include and exclude globs or the size cap.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from .config import WalkConfig
from .models import FileInfo

__all__ = ["MISSING", "DirVisited", "Skipped", "WalkItem", "absolute", "walk"]

MISSING = "no such file or directory"
IGNORE_FILES = (".gitignore", ".ragidxignore")
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".hg", ".svn"})


@dataclass(frozen=True, slots=True)
class DirVisited:
    """The walker entered a directory under a root; its files follow."""

    path: Path


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file the walker found but will not index, with the reason."""

    path: Path
    reason: str
    size: int = 0
    mtime_ns: int = 0
    error: bool = False
    """True when the file could not be looked at (a failure), not when it was left out."""
    directory: bool = False
    """True when a whole directory could not be read: what is under it is unknown."""


WalkItem = FileInfo | Skipped | DirVisited


@dataclass(frozen=True, slots=True)
class _Rules:
    base: str
    spec: pathspec.GitIgnoreSpec


class _Filter:
    def __init__(self, config: WalkConfig) -> None:
        self.config = config
        self.include = pathspec.GitIgnoreSpec.from_lines(config.include) if config.include else None
        self.exclude = pathspec.GitIgnoreSpec.from_lines(config.exclude) if config.exclude else None

    def globs_allow(self, rel: str) -> bool:
        if self.exclude is not None and self.exclude.match_file(rel):
            return False
        return self.include is None or self.include.match_file(rel)

    def dir_allowed(self, rel: str) -> bool:
        # --include selects files, so it never prunes a directory; --exclude may.
        return self.exclude is None or not self.exclude.match_file(rel + "/")


def _ignored(rules: list[_Rules], path: str, is_dir: bool) -> bool:
    verdict = False
    for rule in rules:
        rel = _relative(path, rule.base) + ("/" if is_dir else "")
        result = rule.spec.check_file(rel).include
        if result is not None:
            verdict = result
    return verdict


def _relative(path: str, base: str) -> str:
    """`path` below `base` in POSIX form; both absolute and normalised, so a slice does."""
    rel = path[len(base) + 1 :] if base != "/" else path[1:]
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def _load_rules(directory: Path) -> _Rules | None:
    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            lines += (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    if not lines:
        return None
    return _Rules(str(directory), pathspec.GitIgnoreSpec.from_lines(lines))


def _repo_ancestors(root: Path) -> list[Path]:
    """The directories from the enclosing git work tree's top down to `root`'s parent.

    Their ignore files apply to `root` as git applies them to a subdirectory. Outside a git
    work tree only the root's own ignore files count.
    """
    if os.path.exists(root / ".git"):
        return []
    chain: list[Path] = []
    for parent in root.parents:
        chain.append(parent)
        if os.path.exists(parent / ".git"):
            return list(reversed(chain))
    return []


def _is_virtualenv(entry: os.DirEntry[str]) -> bool:
    return os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))


def _size_skip(path: Path, st: os.stat_result, cap: int) -> Skipped | None:
    if st.st_size > cap:
        return Skipped(
            path,
            f"larger than --max-file-size ({_human(st.st_size)} > {_human(cap)})",
            st.st_size,
            st.st_mtime_ns,
        )
    return None


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class _TreeWalker:
    def __init__(
        self, root: Path, config: WalkConfig, filt: _Filter, seen_dirs: set[tuple[int, int]]
    ) -> None:
        self.root = root
        self.root_str = str(root)
        self.config = config
        self.filter = filt
        # Shared by all roots: a root inside another, or a second link to a tree, is walked once.
        self.seen_dirs = seen_dirs

    def walk(self) -> Iterator[WalkItem]:
        rules = [r for r in map(_load_rules, _repo_ancestors(self.root)) if r is not None]
        yield from self._walk_dir(self.root, rules)

    def _walk_dir(self, directory: Path, rules: list[_Rules]) -> Iterator[WalkItem]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            return
        except OSError as exc:
            yield Skipped(
                directory, f"cannot read directory: {exc.strerror}", error=True, directory=True
            )
            return
        key = (st.st_dev, st.st_ino)
        if key in self.seen_dirs:
            return  # a symlink loop, or a second link to a tree already walked
        self.seen_dirs.add(key)
        if directory != self.root and os.path.exists(directory / ".git"):
            rules = []  # a nested repository has ignore rules of its own
        own = _load_rules(directory)
        if own is not None:
            rules = [*rules, own]
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            return  # gone since it was listed: the planner sweeps its files away
        except OSError as exc:
            yield Skipped(
                directory, f"cannot read directory: {exc.strerror}", error=True, directory=True
            )
            return
        yield DirVisited(directory)
        subdirs: list[Path] = []
        for entry in entries:
            item = self._entry(entry, rules)
            if isinstance(item, str):
                subdirs.append(Path(item))
            elif item is not None:
                yield item
        for sub in subdirs:
            yield from self._walk_dir(sub, rules)

    def _entry(self, entry: os.DirEntry[str], rules: list[_Rules]) -> WalkItem | str | None:
        """A file's item, a subdirectory's path to walk, or None. Strings, not `Path`s,
        for every entry: on a no-op run this is most of the work per file."""
        name = entry.name
        if name.startswith(".") and (not self.config.hidden or name in SKIP_DIRS):
            return None
        path = entry.path
        if path in self.config.skip_paths:
            return None
        try:
            is_link = entry.is_symlink()
            if is_link and not self.config.follow_symlinks:
                return None
            st = entry.stat(follow_symlinks=True)
        except OSError:
            return Skipped(Path(path), "broken symlink") if entry.is_symlink() else None
        rel = _relative(path, self.root_str)
        if stat.S_ISDIR(st.st_mode):
            if name in SKIP_DIRS or _is_virtualenv(entry) or _ignored(rules, path, True):
                return None
            return path if self.filter.dir_allowed(rel) else None
        if not stat.S_ISREG(st.st_mode) or _ignored(rules, path, False):
            return None
        if not self.filter.globs_allow(rel):
            return None
        if st.st_size > self.config.max_file_size:
            return _size_skip(Path(path), st, self.config.max_file_size)
        return FileInfo(path, st.st_size, st.st_mtime_ns)


def _named_file(path: Path, config: WalkConfig, filt: _Filter) -> WalkItem | None:
    if str(path) in config.skip_paths:
        return None
    try:
        st = path.stat()
    except OSError as exc:
        return Skipped(path, f"cannot stat: {exc.strerror}", error=True)
    if not stat.S_ISREG(st.st_mode):
        return Skipped(path, "not a regular file")
    # Globs of a named file match its path from the working directory, as the user wrote it.
    rel = os.path.relpath(path)
    if not filt.globs_allow(path.name if rel.startswith("..") else Path(rel).as_posix()):
        return None
    return _size_skip(path, st, config.max_file_size) or FileInfo(
        str(path), st.st_size, st.st_mtime_ns
    )


def absolute(path: str | Path) -> Path:
    """An absolute, normalised path that keeps symlinks as they are named."""
    return Path(os.path.abspath(path))


def walk(paths: Iterable[str | Path], config: WalkConfig) -> Iterator[WalkItem]:
    """Yield every file to consider under `paths`, directories expanded, in a stable order.

    Paths that do not exist are yielded as `Skipped` with the reason, so that the caller can
    remove them from the index or report them.
    """
    filt = _Filter(config)
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        path = absolute(raw)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            if os.path.lexists(path):  # a link to nothing
                yield Skipped(path, "broken symlink", error=True)
            else:
                yield Skipped(path, MISSING, error=True)
            continue
        except OSError as exc:
            # Not "missing": what the index holds for it must not be removed.
            yield Skipped(path, f"cannot stat: {exc.strerror}", error=True)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _TreeWalker(path, config, filt, seen_dirs).walk()
        elif (item := _named_file(path, config, filt)) is not None:
            yield item
