"""Source code read and chunked by definition (tree-sitter) against as plain code: speed, and
where chunks start.

    uv run python bench/code_chunks.py [--mb 6] [--repeat 3] [--chunk-tokens 512]
        [--root LANG=DIR ...]

The corpus is what this machine holds: the Python standard library, and JavaScript, C, C++,
Go, Rust and Java files under ~/.cache, /usr/include, /usr/lib and /usr/share (--root adds
or replaces a language's folder). Files are taken in path order, duplicates (by content) and
files over the large-file size left out, up to --mb MB per language. In this one process,
for each language and each reader (`tree-sitter`: `ragidx.read.code`; `plain`: the plain
code reader, `ragidx.read.plain.CODE`), every file is read with `read_document` and chunked
with `chunk_document` (the default chunk config, --chunk-tokens); the page cache is warmed
by an untimed pass. It prints the median of --repeat runs of MB/s (file bytes over wall
seconds of read and chunk), the chunks, their mean tokens, the share under 64 tokens, and
where the chunks start: at a definition (its first line, or a comment or decorator above
it), elsewhere between definitions, or inside a function's body (mid-definition). The
definitions are found by the same tree-sitter tables (`ragidx.read.symbols`), every one of
two lines or more, whatever `MIN_LINES` says.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragidx.chunk import chunk_document
from ragidx.config import ChunkConfig
from ragidx.models import Chunk, FileInfo
from ragidx.read import LARGE_FILE, read_document, register, unregister
from ragidx.read.code import CODE_TREE
from ragidx.read.plain import CODE
from ragidx.read.symbols import CPP, SYNTAXES, Syntax, definition, scope_body

MB = 1e6
HOME = Path.home()
ROOTS: dict[str, list[Path]] = {
    "python": [Path(sysconfig.get_paths()["stdlib"])],
    "javascript": [HOME / ".cache", Path("/usr/share"), Path("/usr/lib")],
    "c": [Path("/usr/share"), Path("/usr/lib"), HOME / ".cache"],
    "c-headers": [Path("/usr/include")],
    "cpp": [Path("/usr/share"), Path("/usr/lib"), HOME / ".cache", Path("/usr/include")],
    "go": [Path("/usr/share"), Path("/usr/lib"), HOME / ".cache"],
    "rust": [Path("/usr/share"), Path("/usr/lib"), HOME / ".cache"],
    "java": [Path("/usr/share"), Path("/usr/lib"), HOME / ".cache"],
    "typescript": [HOME / ".cache", Path("/usr/share"), Path("/usr/lib")],
}
SUFFIXES = {
    "python": (".py",),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "c": (".c",),
    "c-headers": (".h",),
    "cpp": (".cc", ".cpp", ".cxx", ".hpp", ".hh"),
    "go": (".go",),
    "rust": (".rs",),
    "java": (".java",),
    "typescript": (".ts", ".tsx", ".mts"),
}


def corpus(language: str, roots: list[Path], limit: int) -> list[FileInfo]:
    seen: set[bytes] = set()
    files: list[FileInfo] = []
    total = 0
    for path in _walk(roots, SUFFIXES[language]):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if not data.strip() or len(data) > LARGE_FILE or digest in seen:
            continue
        if language == "typescript" and path.name.endswith(".d.ts"):
            continue
        seen.add(digest)
        st = path.stat()
        files.append(FileInfo(str(path), st.st_size, st.st_mtime_ns))
        total += len(data)
        if total >= limit:
            break
    return files


def _walk(roots: list[Path], suffixes: tuple[str, ...]) -> Iterator[Path]:
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in suffixes and path.is_file() and not path.is_symlink():
                yield path


def run(files: list[FileInfo], config: ChunkConfig) -> tuple[float, list[list[Chunk]]]:
    """Seconds to read and chunk every file; the chunks of each (a file that is not text:
    none)."""
    out: list[list[Chunk]] = []
    start = time.perf_counter()
    for info in files:
        try:
            doc = read_document(info)
        except Exception:  # a file these readers refuse costs its try, as in a run
            out.append([])
            continue
        out.append(chunk_document(doc, config))
    return time.perf_counter() - start, out


def with_plain_reader() -> None:
    unregister(CODE_TREE.content_type)
    register(CODE)  # it wins its endings back


def with_tree_reader() -> None:
    register(CODE_TREE)


def _tree(src: bytes, syntax: Syntax) -> tuple[Any, Syntax]:
    """The tree the code reader parses: a header that C finds errors in, as C++."""
    import importlib

    import tree_sitter

    def parse(syntax: Syntax) -> Any:
        grammar = getattr(importlib.import_module(syntax.module), syntax.function)
        return tree_sitter.Parser(tree_sitter.Language(grammar())).parse(src)

    tree = parse(syntax)
    if syntax.name == "c" and tree.root_node.has_error:
        other = parse(CPP)
        if not other.root_node.has_error:
            return other, CPP
    return tree, syntax


def definitions(text: str, path: str) -> tuple[set[int], list[tuple[int, int]]]:
    """Lines (from 1) where a definition starts, comments and decorators right above it
    included; and the (first, last) lines of each function's body, for every definition of
    two lines or more, as the code reader's tables see them."""
    src = text.encode("utf-8", "surrogatepass")
    tree, syntax = _tree(src, SYNTAXES[Path(path).suffix.lower()])
    starts: set[int] = set()
    bodies: list[tuple[int, int]] = []
    stack = [(tree.root_node, 0)]
    while stack:
        node, depth = stack.pop()
        above: list[int] = []  # lines of the comments and attributes right above
        for child in node.children:
            inner = scope_body(child, syntax)
            if inner is not None and depth < 64:
                stack.append((inner, depth + 1))
                above = []
                continue
            if child.type in syntax.leading:
                above.append(child.start_point[0] + 1)
                continue
            found = definition(child, syntax, src)
            if found is not None and found.node.end_point[0] > found.node.start_point[0]:
                first = found.node.start_point[0]
                starts.update([first + 1, *above])
                if found.body is not None:
                    stack.append((found.body, depth + 1))
                else:
                    bodies.append((first + 2, found.node.end_point[0] + 1))
            above = []
    return starts, bodies


def placement(files: list[FileInfo], chunks: list[list[Chunk]]) -> tuple[int, int, int]:
    """Chunks that start at a definition, elsewhere between definitions, or inside a
    function's body."""
    at = between = inside = 0
    for info, found in zip(files, chunks, strict=True):
        if not found:
            continue
        text = read_document_text(info)
        starts, bodies = definitions(text, info.path)
        for chunk in found:
            line = chunk.line_start
            if line in starts:
                at += 1
            elif any(first <= line <= last for first, last in bodies):
                inside += 1
            else:
                between += 1
    return at, between, inside


def read_document_text(info: FileInfo) -> str:
    return read_document(info).text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=6.0, help="MB of files per language")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--root", action="append", default=[], help="LANG=DIR")
    args = parser.parse_args()
    roots = dict(ROOTS)
    for item in args.root:
        language, _, folder = item.partition("=")
        roots[language] = [Path(folder)]
    config = ChunkConfig(chunk_tokens=args.chunk_tokens)
    print(
        f"{'language':<11} {'files':>5} {'MB':>6}  {'reader':<11} {'MB/s':>6} {'chunks':>7} "
        f"{'tokens':>6} {'<64':>5}  {'at def':>6} {'between':>7} {'mid-def':>7}"
    )
    for language in roots:
        files = corpus(language, roots[language], int(args.mb * MB))
        if not files:
            print(f"{language:<11} no files")
            continue
        size = sum(f.size for f in files) / MB
        for name, use in (("tree-sitter", with_tree_reader), ("plain", with_plain_reader)):
            use()
            run(files, config)  # warm the page cache, the parsers and the tokenizer
            times, chunks = [], []
            for _ in range(args.repeat):
                seconds, chunks = run(files, config)
                times.append(seconds)
            flat = [c for per_file in chunks for c in per_file]
            tokens = statistics.mean(c.tokens for c in flat) if flat else 0.0
            tiny = sum(c.tokens < 64 for c in flat) / max(len(flat), 1)
            at, between, inside = placement(files, chunks)
            n = max(len(flat), 1)
            print(
                f"{language:<11} {len(files):>5} {size:>6.1f}  {name:<11} "
                f"{size / statistics.median(times):>6.2f} {len(flat):>7} {tokens:>6.0f} "
                f"{tiny:>5.0%}  {at / n:>6.0%} {between / n:>7.0%} {inside / n:>7.0%}"
            )
            sys.stdout.flush()
        with_tree_reader()


if __name__ == "__main__":
    main()
