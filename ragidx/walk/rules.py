"""Which entries a walk takes in: default skips, ignore files, and the include and exclude
globs. Rules only: nothing here lists a directory.

Ignore files (`.gitignore`, `.ragidxignore`) are read from the enclosing git work tree's top
down; deeper files win and `!pattern` re-includes, as in git. Paths are matched in POSIX form,
relative to the directory that holds the rules (ignore files) or to the walk's root (globs).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

    from ragidx.config import WalkConfig

__all__ = [
    "IGNORE_FILES",
    "SKIP_DIRS",
    "Globs",
    "IgnoreRules",
    "ignored",
    "is_virtualenv",
    "load_rules",
    "relative",
    "repo_ancestors",
]

IGNORE_FILES = (".gitignore", ".ragidxignore")
SKIP_DIRS = frozenset({".git", "node_modules", "__pycache__", ".hg", ".svn"})


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """The ignore files of one directory: their lines (which helper processes are sent) and
    the spec compiled from them."""

    base: str
    lines: tuple[str, ...]
    spec: pathspec.GitIgnoreSpec

    @classmethod
    def from_lines(cls, base: str, lines: Iterable[str]) -> IgnoreRules:
        """Rules sent as lines (to a helper process), compiled again."""
        lines = tuple(lines)
        return cls(base, lines, _spec(lines))


class Globs:
    """`--include` and `--exclude` of a `WalkConfig`, compiled; None where not given."""

    def __init__(self, config: WalkConfig) -> None:
        self.include = _spec(config.include) if config.include else None
        self.exclude = _spec(config.exclude) if config.exclude else None

    def allow(self, rel: str) -> bool:
        """Whether a file at `rel` (POSIX, relative to the root) is taken in."""
        if self.exclude is not None and self.exclude.match_file(rel):
            return False
        return self.include is None or self.include.match_file(rel)

    def dir_allowed(self, rel: str) -> bool:
        # --include selects files, so it never prunes a directory; --exclude may.
        return self.exclude is None or not self.exclude.match_file(rel + "/")


def ignored(rules: list[IgnoreRules], path: str, is_dir: bool) -> bool:
    """Whether the ignore rules in force leave `path` (absolute) out; the deepest says last."""
    verdict = False
    for rule in rules:
        rel = relative(path, rule.base) + ("/" if is_dir else "")
        result = rule.spec.check_file(rel).include
        if result is not None:
            verdict = result
    return verdict


def relative(path: str, base: str) -> str:
    """`path` below `base` in POSIX form; both absolute and normalised, so a slice does."""
    rel = path[len(base) + 1 :] if base != "/" else path[1:]
    return rel if os.sep == "/" else rel.replace(os.sep, "/")


def load_rules(directory: Path) -> IgnoreRules | None:
    """The rules of `directory`'s ignore files; None where it has none (or none readable)."""
    lines: list[str] = []
    for name in IGNORE_FILES:
        try:
            lines += (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    if not lines:
        return None
    try:
        spec = _spec(lines)
    except ValueError:  # pathspec's pattern errors
        # As git does, a pattern it cannot read (a lone backslash) is passed over, not the walk.
        lines = [line for line in lines if _readable_pattern(line)]
        spec = _spec(lines)
    return IgnoreRules(str(directory), tuple(lines), spec)


def _spec(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    # pathspec takes longer to import than a no-op run of a small tree without ignore
    # files or globs takes in all: it loads where rules are.
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _readable_pattern(line: str) -> bool:
    try:
        _spec([line])
    except ValueError:
        return False
    return True


def repo_ancestors(root: Path) -> list[Path]:
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


def is_virtualenv(directory: str) -> bool:
    """A virtualenv's directory, skipped by default like `node_modules`."""
    return os.path.exists(os.path.join(directory, "pyvenv.cfg"))
