"""Which files to index, in a deterministic order. The walker stats files; it never opens one.

Directories are walked depth first with entries sorted by name, a directory's files before
its subdirectories, so a directory's files come out together after a `DirVisited` marker:
the planner uses that to find files that vanished from a directory without holding the whole
tree in memory. Entries that are no regular file (links not followed, FIFOs, sockets,
devices, symlink loops) come after the files, as `Skipped` with `not_file`: reported, never
stored, so they leave the directory's stamp as it is.

Rules (`ragidx.walk.rules`), in order: default skips (`.git`, hidden entries, `node_modules`,
`__pycache__`, virtualenvs), then `.gitignore` and `.ragidxignore` files from the root down
(deeper files win, `!pattern` re-includes), then `--exclude`, then `--include`. Paths given by
name (on the command line or stdin) bypass the ignore files, as they do in git and ripgrep,
but not the include and exclude globs or the size cap.

With `WalkConfig.workers`, the subtrees of the first directory that has two or more are
walked by helper processes (`ragidx.walk.pool`, each running `ragidx.walk.helper`), with the
same rules, in the same order.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from ragidx.config import WalkConfig
from ragidx.models import FileInfo
from ragidx.walk.listing import MISSING, DirVisited, Skipped, WalkItem, too_large
from ragidx.walk.rules import (
    SKIP_DIRS,
    Globs,
    IgnoreRules,
    ignored,
    is_virtualenv,
    load_rules,
    relative,
    repo_ancestors,
)

__all__ = [
    "MISSING",
    "DirVisited",
    "Skipped",
    "WalkItem",
    "absolute",
    "subtree_listings",
    "walk",
    "walk_listings",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
_FORMAT = 0o170000  # the file type bits of st_mode, which stat.S_IFMT() masks


def _unreadable(directory: str, exc: OSError) -> Skipped:
    reason = f"cannot read directory: {exc.strerror}"
    return Skipped(Path(directory), reason, error=True, directory=True)


def _is_link(name: str, fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


_NOT_FILES = {
    stat.S_IFLNK: "symbolic link (use --follow-symlinks)",
    stat.S_IFIFO: "not a regular file: FIFO",
    stat.S_IFSOCK: "not a regular file: socket",
    stat.S_IFCHR: "not a regular file: character device",
    stat.S_IFBLK: "not a regular file: block device",
}


def _not_a_file(kind: int) -> str:
    return _NOT_FILES.get(kind, "not a regular file")


def _unfollowed(name: str, fd: int, exc: OSError) -> str | None:
    """Why a link could not be followed; None for an entry gone since it was listed."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    return "broken symlink" if _is_link(name, fd) else None


def _walked_already(directory: str) -> str:
    """Why a directory reached a second time is not walked again (only links, or a bind
    mount, lead back to one)."""
    real, above = os.path.realpath(directory), os.path.realpath(os.path.dirname(directory))
    if above == real or above.startswith(os.path.join(real, "")):
        return "symlink loop"
    return "directory already walked by another path"


class _TreeWalker:
    def __init__(
        self, root: Path, config: WalkConfig, filt: Globs, seen_dirs: set[tuple[int, int]]
    ) -> None:
        self.root = root
        self.root_str = str(root)
        self.config = config
        self.filter = filt
        # Shared by all roots: a root inside another, or a second link to a tree, is walked once.
        self.seen_dirs = seen_dirs
        # By directory, so that only the directories that hold one look for one.
        self.skip_names: dict[str, set[str]] = {}
        for path in config.skip_paths:
            head, name = os.path.split(path)
            self.skip_names.setdefault(head, set()).add(name)

    def listings(self) -> Iterator[list[WalkItem]]:
        """Each directory as one list: a `DirVisited`, then its files in name order. Depth
        first, a directory's files before its subdirectories."""
        rules = [r for r in map(load_rules, repo_ancestors(self.root)) if r is not None]
        return self.below(self.root_str, rules, fan_out=bool(self.config.workers))

    def below(
        self, top: str, rules: list[IgnoreRules], *, fan_out: bool = False
    ) -> Iterator[list[WalkItem]]:
        """The listings of `top` and what is under it. With `fan_out`, the subtrees of the
        first directory that has two or more go to helper processes (`WalkPool`)."""
        fan_out = fan_out and not self.config.follow_symlinks  # links may join subtrees
        stack: list[tuple[str, list[IgnoreRules]]] = [(top, rules)]
        while stack:
            directory, rules = stack.pop()
            subdirs: list[str] = []
            listing, rules = self._listing(directory, rules, subdirs)
            if listing:
                yield listing
            if fan_out and len(subdirs) >= 2:
                fan_out = False
                yield from self._fanned(subdirs, rules)
                continue
            stack += ((sub, rules) for sub in reversed(subdirs))

    def _fanned(self, subtrees: list[str], rules: list[IgnoreRules]) -> Iterator[list[WalkItem]]:
        # The pool loads subprocess and tempfile, which only a walk that fans out needs.
        from ragidx.walk.pool import WalkPool

        try:
            pool = WalkPool(self.config.workers or 1, self.root_str, self.config)
        except OSError:  # no processes to be had: walk them here
            for subtree in subtrees:
                yield from self.below(subtree, rules)
            return
        with pool:
            yield from pool.listings(subtrees, rules, self.seen_dirs)

    def _listing(
        self, directory: str, rules: list[IgnoreRules], subdirs: list[str]
    ) -> tuple[list[WalkItem], list[IgnoreRules]]:
        """The directory's items, and the ignore rules that hold below it."""
        try:
            fd = os.open(directory, _DIR_FLAGS)
        except FileNotFoundError:
            return [], rules  # gone since it was listed: the planner sweeps its files away
        except OSError as exc:
            return [_unreadable(directory, exc)], rules
        try:
            return self._read(directory, fd, rules, subdirs)
        except OSError as exc:
            return [_unreadable(directory, exc)], rules
        finally:
            os.close(fd)

    def _read(
        self, directory: str, fd: int, rules: list[IgnoreRules], subdirs: list[str]
    ) -> tuple[list[WalkItem], list[IgnoreRules]]:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if key in self.seen_dirs:
            if directory == self.root_str:
                return [], rules  # a root inside another root, walked with it
            # A link back to a directory above (a loop), or to a tree walked already.
            return [Skipped(Path(directory), _walked_already(directory), not_file=True)], rules
        self.seen_dirs.add(key)
        if directory != self.root_str and os.path.exists(os.path.join(directory, ".git")):
            rules = []  # a nested repository has ignore rules of its own
        own = load_rules(Path(directory))
        if own is not None:
            rules = [*rules, own]
        names = os.listdir(fd)
        names.sort()
        items: list[WalkItem] = [DirVisited(directory, key)]
        self._files(names, directory, fd, rules, items, subdirs)
        return items, rules

    def _files(
        self,
        names: list[str],
        directory: str,
        fd: int,
        rules: list[IgnoreRules],
        items: list[WalkItem],
        subdirs: list[str],
    ) -> None:
        """A directory's files go to `items` in order, its subdirectories to walk to `subdirs`.

        One loop over strings and locals, not a call or a `Path` per entry: on a no-op run
        this is most of the work per file. Each name is looked up in the directory's
        descriptor, not along its whole path: a tenth of a no-op run's time."""
        config, filt = self.config, self.filter
        hidden, follow = config.hidden, config.follow_symlinks
        skip = self.skip_names.get(directory)
        prefix = os.path.join(directory, "")
        cap = _first_cap(config)
        globs = filt.include is not None or filt.exclude is not None
        add, new, look = items.append, tuple.__new__, os.stat  # FileInfo without its __new__
        others: list[WalkItem] = []  # entries that are no file, after the files
        for name in names:
            if name[0] == "." and (not hidden or name in SKIP_DIRS):
                continue
            if skip and name in skip:
                continue
            try:
                st = look(name, dir_fd=fd, follow_symlinks=follow)
            except OSError as exc:
                why = _unfollowed(name, fd, exc)  # None: gone since the directory was listed
                if why is not None and self._selected(prefix + name, rules):
                    others.append(Skipped(Path(prefix + name), why, not_file=True))
                continue
            kind = st.st_mode & _FORMAT  # S_ISREG and S_ISDIR without two calls per entry
            if kind == stat.S_IFREG:
                path = prefix + name
                if rules and ignored(rules, path, False):
                    continue
                if globs and not filt.allow(relative(path, self.root_str)):
                    continue
                size = st.st_size
                if size > cap and (over := _over_cap(config, name, size)):
                    add(too_large(Path(path), st, *over))
                else:
                    add(new(FileInfo, (path, size, st.st_mtime_ns)))
            elif kind == stat.S_IFDIR:
                if self._descend(prefix + name, name, rules):
                    subdirs.append(prefix + name)
            elif self._selected(prefix + name, rules):
                others.append(Skipped(Path(prefix + name), _not_a_file(kind), not_file=True))
        items += others

    def _selected(self, path: str, rules: list[IgnoreRules]) -> bool:
        """Whether the ignore rules and globs take in an entry that is no file, as a file."""
        if rules and ignored(rules, path, False):
            return False
        filt = self.filter
        if filt.include is None and filt.exclude is None:
            return True
        return filt.allow(relative(path, self.root_str))

    def _descend(self, path: str, name: str, rules: list[IgnoreRules]) -> bool:
        if name in SKIP_DIRS or is_virtualenv(path) or ignored(rules, path, True):
            return False
        return self.filter.dir_allowed(relative(path, self.root_str))


def subtree_listings(
    root: str, config: WalkConfig, rules: list[tuple[str, list[str]]], top: str
) -> Iterator[list[WalkItem]]:
    """A helper's share of a walk: the listings under `top`, inside the walk of `root`, with
    the ignore rules that hold at `top` given as (directory, lines) pairs."""
    walker = _TreeWalker(Path(root), config, Globs(config), set())
    return walker.below(top, [IgnoreRules.from_lines(base, lines) for base, lines in rules])


def _named_file(path: Path, st: os.stat_result, config: WalkConfig, filt: Globs) -> WalkItem | None:
    if str(path) in config.skip_paths:
        return None
    if not stat.S_ISREG(st.st_mode):
        return Skipped(path, _not_a_file(stat.S_IFMT(st.st_mode)))
    if filt.include is not None or filt.exclude is not None:
        # Globs of a named file match its path from the working directory, as written.
        rel = os.path.relpath(path)
        if not filt.allow(path.name if rel.startswith("..") else Path(rel).as_posix()):
            return None
    if st.st_size > _first_cap(config) and (over := _over_cap(config, path.name, st.st_size)):
        return too_large(path, st, *over)
    return FileInfo(str(path), st.st_size, st.st_mtime_ns)


def _first_cap(config: WalkConfig) -> int:
    """The size below which no file is over its cap (a file's cap is looked up above it)."""
    if config.document_suffixes:
        return min(config.max_file_size, config.max_document_size)
    return config.max_file_size


def _over_cap(config: WalkConfig, name: str, size: int) -> tuple[int, bool] | None:
    """The cap that a file passes and whether it is a document's (`max_document_size`, for
    its name's ending), or None where it is within its cap."""
    dot = name.rfind(".")
    if dot > 0 and name[dot:].lower() in config.document_suffixes:
        return (config.max_document_size, True) if size > config.max_document_size else None
    return (config.max_file_size, False) if size > config.max_file_size else None


def absolute(path: str | Path) -> Path:
    """An absolute, normalised path that keeps symlinks as they are named."""
    text = os.fspath(path)
    full = os.path.abspath(text)
    # A path that is one already stays the object it is: a list of paths on stdin passes
    # here twice, and parsing a Path is most of the cost.
    return path if full == text and isinstance(path, Path) else Path(full)


def walk(paths: Iterable[str | Path], config: WalkConfig) -> Iterator[WalkItem]:
    """Yield every file to consider under `paths`, directories expanded, in a stable order.

    Paths that do not exist are yielded as `Skipped` with the reason, so that the caller can
    remove them from the index or report them.
    """
    return itertools.chain.from_iterable(walk_listings(paths, config))


def walk_listings(paths: Iterable[str | Path], config: WalkConfig) -> Iterator[list[WalkItem]]:
    """`walk`, a directory at a time (a path given by name is a list of its own)."""
    filt = Globs(config)
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        path = absolute(raw)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            if os.path.lexists(path):  # a link to nothing
                yield [Skipped(path, "broken symlink", error=True)]
            else:
                yield [Skipped(path, MISSING, error=True)]
            continue
        except OSError as exc:
            # Not "missing": what the index holds for it must not be removed.
            yield [Skipped(path, f"cannot stat: {exc.strerror}", error=True)]
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _TreeWalker(path, config, filt, seen_dirs).listings()
        elif (item := _named_file(path, st, config, filt)) is not None:
            yield [item]
