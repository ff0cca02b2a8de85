"""Text as Postgres full-text search sees it: the one fold applied both to a chunk's text
before `to_tsvector('simple', ...)` and to each query term before `phraseto_tsquery`, so
that the two always meet.

The `simple` configuration lower-cases and splits on non-word characters, but removes no
diacritics (and the bundled server has no `unaccent`), and keeps a run of CJK characters
as one word. So, as SQLite's FTS5 tokenizer (`unicode61 remove_diacritics 2`) sees it:
CJK characters spaced apart (`space_cjk`), letters lower-cased here (not by the server's
locale, which may be "C"), Latin-style accents dropped (`café` is `cafe`). Never fails.
"""

from __future__ import annotations

import re
import unicodedata

from ragidx.chunk.tokens import space_cjk

__all__ = ["fold"]

# The combining diacritical marks (U+0300-U+036F) only: the accents of Latin, Greek and
# Cyrillic letters. Other combining marks (Japanese voicing marks, Indic vowel signs) change
# the word, not its spelling, and stay.
_ACCENTS = re.compile("[\u0300-\u036f]")


def fold(text: str) -> str:
    """`text` as full-text search indexes and queries it."""
    spaced = space_cjk(text).lower()
    if spaced.isascii():
        return spaced
    return unicodedata.normalize("NFC", _ACCENTS.sub("", unicodedata.normalize("NFD", spaced)))
