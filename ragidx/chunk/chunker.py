"""Documents to chunks: structure first, then a token budget. Pure: same input, same chunks.

A document is cut into sections at its headings (`ragidx.chunk.sections`). Sections are
packed into chunks up to the budget, at the highest level of the heading tree that fits, so
short sections under one parent share a chunk whose heading path is that parent's; a section
too large for the budget is split at blank lines, lines, sentences and words, with overlap
(`ragidx.chunk.pack`, `ragidx.chunk.split`). `ChunkConfig.pack` False keeps every section a
chunk of its own.

What is sent to the embedder (`Chunk.input`) is the chunk's heading path, then a blank line,
then the chunk's text, an exact slice of the document; the budget holds for that whole
string under the config's token counter (`ragidx.chunk.tokens.counter`), and `Chunk.tokens`
is its count.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from ragidx.chunk.pack import Packer, Prefixes
from ragidx.chunk.sections import HeadingState, sections
from ragidx.chunk.tokens import counter
from ragidx.config import ChunkConfig
from ragidx.models import Chunk, Document

__all__ = ["Chunker", "chunk_document", "chunk_text"]


def chunk_document(doc: Document, config: ChunkConfig) -> list[Chunk]:
    """Cut `doc` into chunks: by its reader's outline where it has one, and with the pages
    each chunk starts and ends on where it has pages."""
    chunker = Chunker(doc.format, config, outline=doc.outline, pages=doc.pages)
    return chunker.feed(doc.text)


def chunk_text(text: str, fmt: str, config: ChunkConfig) -> list[Chunk]:
    """Cut `text` (of format `fmt`: markdown, rst, html or anything else) into chunks.
    Raises `ConfigError` where the config's tokenizer cannot be loaded."""
    return Chunker(fmt, config).feed(text)


class Chunker:
    """Chunks a document fed in consecutive segments that start at line starts, as a large
    file is read. Headings, fenced code and numbering carry from one segment to the next;
    a chunk never spans two segments, and the first chunk of a segment has no overlap."""

    def __init__(
        self,
        fmt: str,
        config: ChunkConfig,
        *,
        outline: Sequence[tuple[int, int, str]] | None = None,
        pages: Sequence[int] = (),
    ) -> None:
        """`outline` and `pages` (`Document.outline`, `Document.pages`) hold offsets in the
        whole text; a document that has them is fed in one piece."""
        self.fmt = fmt
        self.outline = outline
        self.pages = pages
        self.config = config
        self.counter = counter(config.tokenizer)
        self.prefixes = Prefixes(self.counter, config.chunk_tokens)
        self.ordinal = 0
        self.offset = 0
        self.lines = 0
        self.state = HeadingState()

    def feed(self, text: str) -> list[Chunk]:
        found, shown = sections(text, self.fmt, self.state, self.outline)
        config = self.config
        packer = Packer(
            text,
            shown,
            self.counter,
            self.prefixes,
            budget=config.chunk_tokens,
            overlap=config.chunk_overlap,
            pack=config.packs,
        )
        chunks: list[Chunk] = []
        starts, ends = _Lines(text), _Lines(text)
        for start, end, path, prefix, tokens in packer.spans(found):
            body = text[start:end]
            chunks.append(
                Chunk(
                    ordinal=self.ordinal + len(chunks),
                    text=body,
                    input=f"{prefix}\n\n{body}" if prefix else body,
                    char_start=self.offset + start,
                    char_end=self.offset + end,
                    line_start=self.lines + starts.line(start),
                    line_end=self.lines + ends.line(end - 1),
                    heading_path=path,
                    tokens=tokens,
                    page_start=self._page(start),
                    page_end=self._page(end - 1),
                )
            )
        self.ordinal += len(chunks)
        self.offset += len(text)
        self.lines += text.count("\n")
        return chunks

    def _page(self, pos: int) -> int | None:
        """The page that the character at `pos` is on: the last one starting at or before it."""
        return bisect.bisect_right(self.pages, pos) or None if self.pages else None


class _Lines:
    """Line numbers (from 1) of positions asked for mostly in order: each step counts the
    newlines it passes, in C."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.number = 1

    def line(self, pos: int) -> int:
        if pos >= self.pos:
            self.number += self.text.count("\n", self.pos, pos)
        else:
            self.number -= self.text.count("\n", pos, self.pos)
        self.pos = pos
        return self.number
