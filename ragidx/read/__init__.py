"""Stage 2, read: a file in, a `Document` (text plus where it came from) out.

Bytes are decoded (encodings, byte-order marks), markup is turned into text, and a file too
large to hold is read a segment at a time.
"""

from __future__ import annotations

from ragidx.read.text import SegmentReader, content_hash, read_document

__all__ = ["SegmentReader", "content_hash", "read_document"]
