"""Extract the text of files one after another in one process, as a user's script would.

    PYTHON bench/peers/docs_extract.py TOOL LIST OUT

TOOL is ragidx (`ragidx.read.read_document`, run with the project's Python), pypdf,
markitdown or unstructured (run with the peers' venv). LIST holds one path a line; OUT gets a
JSON line per file: {"file": name, "pages": [text of each page or slide]} where the tool says
where pages start, {"file": name, "text": whole text} where it does not, or
{"file": name, "error": "Type: message"} where it failed (the run goes on, as a batch job's
would). Exits 0 unless the tool cannot be imported.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Extract = Callable[[Path], dict[str, Any]]


def ragidx() -> Extract:
    from ragidx.models import FileInfo
    from ragidx.read import read_document

    def extract(path: Path) -> dict[str, Any]:
        st = path.stat()
        doc = read_document(FileInfo(str(path), st.st_size, st.st_mtime_ns))
        if not doc.pages:
            return {"text": doc.text}
        ends = [*doc.pages[1:], len(doc.text)]
        return {"pages": [doc.text[a:b] for a, b in zip(doc.pages, ends, strict=True)]}

    return extract


def pypdf() -> Extract:
    from pypdf import PdfReader

    def extract(path: Path) -> dict[str, Any]:
        return {"pages": [page.extract_text() or "" for page in PdfReader(path).pages]}

    return extract


def markitdown() -> Extract:
    from markitdown import MarkItDown

    converter = MarkItDown()

    def extract(path: Path) -> dict[str, Any]:
        text = converter.convert(str(path)).text_content
        # pdfminer, behind its PDF converter, ends each page with a form feed; pages with
        # tables go through pdfplumber instead and are joined without one.
        if path.suffix == ".pdf" and "\f" in text:
            pages = text.split("\f")
            return {"pages": pages[:-1] if pages and not pages[-1].strip() else pages}
        return {"text": text}

    return extract


def unstructured() -> Extract:
    from unstructured.partition.auto import partition

    def extract(path: Path) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"languages": ["eng"]}
        if path.suffix == ".pdf":
            kwargs["strategy"] = "fast"
        elements = partition(filename=str(path), **kwargs)
        numbered = [(e.metadata.page_number, str(e)) for e in elements]
        if not numbered or any(n is None for n, _ in numbered):
            return {"text": "\n\n".join(text for _, text in numbered)}
        pages: list[list[str]] = [[] for _ in range(max(n for n, _ in numbered))]
        for n, text in numbered:
            pages[n - 1].append(text)
        return {"pages": ["\n\n".join(p) for p in pages]}

    return extract


def main() -> int:
    tool, listing, out = sys.argv[1:4]
    extract = {
        "ragidx": ragidx,
        "pypdf": pypdf,
        "markitdown": markitdown,
        "unstructured": unstructured,
    }[tool]()
    paths = [Path(line) for line in Path(listing).read_text().splitlines() if line]
    with open(out, "w", encoding="utf-8") as sink:
        for path in paths:
            try:
                record = extract(path)
            except Exception as exc:  # a batch job notes the file and goes on
                record = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            sink.write(json.dumps({"file": path.name, **record}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
