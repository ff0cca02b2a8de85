"""scripts/make_sample_docs.py: the PDF, DOCX and PPTX it writes (and sample_docs holds) read
back through `read_document` with their unique sentence on the right page or slide."""

from __future__ import annotations

import bisect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, SAMPLE_DOCS, Cli

from ragidx.models import FileInfo
from ragidx.read import read_document

SCRIPT = ROOT / "scripts" / "make_sample_docs.py"
# name, the sentence only that file holds, the page or slide it is on (None: no unit)
CASES = [
    pytest.param(
        "operations-handbook.pdf",
        "The quarterly uptime report lists every incident by severity.",
        ("page", 2),
        id="pdf",
    ),
    pytest.param(
        "upgrade-guide.docx",
        "Take a snapshot of the queue database before you run the upgrade.",
        None,
        id="docx",
    ),
    pytest.param(
        "roadmap.pptx",
        "A read-only replica for reporting queries is planned for the second half.",
        ("slide", 3),
        id="pptx",
    ),
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return out


def _check(path: Path, sentence: str, where: tuple[str, int] | None) -> None:
    st = path.stat()
    doc = read_document(FileInfo(str(path), st.st_size, st.st_mtime_ns))
    flat = " ".join(doc.text.split())
    assert flat.count(sentence) == 1
    if where is not None:
        unit, number = where
        found = re.search(r"\s+".join(map(re.escape, sentence.split())), doc.text)
        assert found is not None
        at = found.start()
        assert doc.unit == unit
        assert bisect.bisect_right(doc.pages, at) == number


@pytest.mark.parametrize(("name", "sentence", "where"), CASES)
def test_script_writes_each_document(
    generated: Path, name: str, sentence: str, where: tuple[str, int] | None
) -> None:
    assert sorted(p.name for p in generated.iterdir()) == sorted(
        ["operations-handbook.pdf", "upgrade-guide.docx", "roadmap.pptx"]
    )
    _check(generated / name, sentence, where)


@pytest.mark.parametrize(("name", "sentence", "where"), CASES)
def test_committed_document_holds_its_sentence(
    name: str, sentence: str, where: tuple[str, int] | None
) -> None:
    _check(SAMPLE_DOCS / "docs" / name, sentence, where)
    others = [p for p in SAMPLE_DOCS.rglob("*") if p.is_file() and p.name != name]
    assert not any(sentence.encode() in p.read_bytes() for p in others)


def test_the_readmes_first_command_indexes_them_and_search_shows_where(
    cli: Cli, sample: Path
) -> None:
    result = cli("index", "sample_docs", "--db", "idx.db", "--json")
    assert result.exit_code == 0, result.stderr
    files = result.files()
    for name in ("operations-handbook.pdf", "upgrade-guide.docx", "roadmap.pptx"):
        assert files[f"sample_docs/docs/{name}"]["status"] == "indexed"
    assert files["sample_docs/docs/operations-handbook.pdf"]["pages"] == 3
    assert files["sample_docs/docs/roadmap.pptx"]["slides"] == 5
    shown = {
        "quarterly uptime report lists every incident": "operations-handbook.pdf p. 2",
        "read-only replica for reporting queries": "roadmap.pptx slide 3",
        "snapshot of the queue database before you run the upgrade": "upgrade-guide.docx:",
    }
    for query, where in shown.items():
        out = cli("search", query, "--db", "idx.db", "-k", "1").stdout
        assert out.startswith(f"1. sample_docs/docs/{where}"), out
