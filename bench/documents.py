"""Documents: pages per second, peak RSS and text agreement of ragidx's readers and its peers.

    uv run python bench/documents.py [--quick] [--repeat 1] [--only ragidx-read,pypdf,...]
        [--kinds pdf,docx,pptx] [--no-memory] [--venvs DIR]

Corpus (generated once by bench/docsgen.py, cached under ~/.cache/ragidx-bench/documents/):
200 PDFs of 10-50 pages (headings in the outline, prose, two-column pages, tables, Greek and
Russian pages in DejaVu Sans, some pages turned with /Rotate 90), 100 DOCX and 100 PPTX;
`--quick`: 20 PDFs, 10 DOCX, 10 PPTX. Plus a 200-page and a 2,000-page PDF for the memory
check.

Tools, each a child process reading every file of a kind one after another in one process
(bench/peers/docs_extract.py, started through bench/launch.py):
  ragidx-read   `ragidx.read.read_document`, the reader alone (the project's Python)
  pypdf         `PdfReader(path).pages[i].extract_text()` (PDF only)
  markitdown    `MarkItDown().convert(path)` (pdfminer/pdfplumber, mammoth, python-pptx)
  unstructured  `partition(filename, strategy="fast")` (pdfminer for PDFs)
and ragidx-index: `python -m ragidx index DIR` with the offline hash embedder into a temporary
database, the whole pipeline with its worker processes. The peers live in one venv
(`<venvs>/docs`, made with uv when missing). unstructured needs spaCy's en_core_web_sm,
which it downloads from GitHub at first use; offline, it is given a blank English pipeline
with a rule-based sentencizer under that name, which does less work than the real model:
its figures are a lower bound on its time (marked so in the table).

Figures: wall seconds (launch.py: the child's start-up included), pages (each PDF's page
count, the same for every tool; slides for PPTX; DOCX has no pages, so files/s), peak RSS
two ways: the largest single process (launch.py's ru_maxrss) and the whole process tree's
sum, sampled from /proc every 0.1 s. With --repeat N the tools take turns N times; figures
are medians. Ratio: the tool's pages/s over the fastest peer's.

Agreement with pdftotext (poppler-utils; `apt-get install poppler-utils`), per page: both
texts become lists of words (`\\w+`, casefolded: punctuation, Markdown marks and line breaks
drop out), and the ratio is difflib's SequenceMatcher over the two lists (2 * matched words /
both lengths, autojunk off): 1.0 is the same words in the same order. Order-sensitive on
purpose: a reader that interleaves two columns loses, where a bag-of-words F1 would not. A
tool that does not say where pages start (or whose page count differs) is compared per
document instead, and the table says so.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docsgen  # bench/docsgen.py: scripts run from bench/
import launch  # bench/launch.py
from cache import cached_corpus

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "ragidx-bench"
GENERATOR_VERSION = 2
PEERS = ("pypdf", "markitdown", "unstructured")
TOOLS = ("ragidx-read", "ragidx-index", *PEERS)
PDF_ONLY = {"pypdf"}
# unstructured's PDF path imports unstructured_inference at module level; installed without
# its dependencies (torch, timm, transformers: GBs) with the few its import needs, it runs
# the fast strategy. lxml < 6: with lxml 6 and beautifulsoup4 4.15 markitdown's DOCX
# pre-processing drops the XML namespaces and mammoth finds no body.
PACKAGES = [
    "markitdown[pdf,docx,pptx]",
    "pypdf",
    "unstructured",
    "pdfminer.six",
    "pi-heif",
    "pdf2image",
    "pikepdf",
    "opencv-python-headless",
    "pandas",
    "scipy",
    "huggingface_hub",
    "onnx",
    "matplotlib",
    "python-docx",
    "python-pptx",
    "lxml<6",
]
NO_DEPS = ["unstructured-inference"]
MIB = 1024 * 1024
LAYOUTS = {"p": "prose", "c": "2 columns", "t": "table", "u": "greek/russian", "r": "rotated"}


# --- corpus -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    folder: Path
    units: dict[str, int]
    """Pages of each PDF, slides of each deck; 1 a DOCX (files/s)."""
    layouts: dict[str, str] = field(default_factory=dict)
    """Each PDF's pages: prose, columns, table, unicode, rotated (docsgen's letters)."""

    @property
    def files(self) -> list[Path]:
        return [self.folder / name for name in sorted(self.units)]

    @property
    def pages(self) -> int:
        return sum(self.units.values())


def corpus(quick: bool, kinds: list[str]) -> list[Kind]:
    counts = (
        {"pdf": 20, "docx": 10, "pptx": 10} if quick else {"pdf": 200, "docx": 100, "pptx": 100}
    )
    makers = {
        "pdf": docsgen.generate_pdfs,
        "docx": docsgen.generate_docx,
        "pptx": docsgen.generate_pptx,
    }
    found = []
    for kind in kinds:
        count = counts[kind]
        root = CACHE / "documents" / f"{kind}-{count}"
        wanted = {"version": GENERATOR_VERSION, "kind": kind, "count": count}
        folder, info, took = cached_corpus(root, wanted, lambda d, k=kind, n=count: makers[k](d, n))
        if took is not None:
            print(f"generated {count} {kind} files in {took:.0f} s ({folder})")
        found.append(Kind(kind, folder, info["units"], info.get("layouts", {})))
    return found


def big(pages: int) -> Kind:
    root = CACHE / "documents" / f"big-{pages}"
    wanted = {"version": GENERATOR_VERSION, "pages": pages}
    folder, info, took = cached_corpus(root, wanted, lambda d: docsgen.big_pdf(d, pages))
    if took is not None:
        print(f"generated a {pages}-page PDF in {took:.0f} s")
    return Kind("pdf", folder, info["units"])


def pdftotext(kind: Kind) -> dict[str, list[str]]:
    """pdftotext's pages of each PDF, kept beside the corpus."""
    kept = kind.folder / "pdftotext.json"
    if kept.is_file():
        return dict(json.loads(kept.read_text()))
    pages = {}
    for path in kind.files:
        out = subprocess.run(
            ["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True
        ).stdout.decode("utf-8", "replace")
        split = out.split("\f")
        pages[path.name] = split[:-1] if split and not split[-1].strip() else split
    kept.write_text(json.dumps(pages))
    return pages


# --- peers' venv --------------------------------------------------------------------------


def ensure_venv(venvs: Path) -> Path:
    venv = venvs / "docs"
    python = venv / "bin" / "python"
    done = venv / ".ragidx-bench-installed"
    stamp = " ".join([*PACKAGES, "--no-deps", *NO_DEPS])
    if python.exists() and done.is_file() and done.read_text() == stamp:
        return python
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    print(f"peers: creating {venv} (Python {version})")
    shutil.rmtree(venv, ignore_errors=True)
    pip = ["uv", "pip", "install", "--quiet", "--python", str(python), "--link-mode", "copy"]
    for cmd in (
        ["uv", "venv", "--quiet", "--python", version, str(venv)],
        [*pip, "--compile-bytecode", *PACKAGES],
        [*pip, "--compile-bytecode", "--no-deps", *NO_DEPS],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr[-800:]}")
    done.write_text(stamp)
    return python


def spacy_standin(python: Path, venvs: Path) -> Path:
    """A folder holding `en_core_web_sm`: a blank English spaCy pipeline with a sentencizer.
    spacy.load takes a folder of that name in the working directory for the model."""
    home = venvs / "docs-spacy"
    if not (home / "en_core_web_sm" / "config.cfg").is_file():
        home.mkdir(parents=True, exist_ok=True)
        code = (
            "import spacy, sys; nlp = spacy.blank('en'); nlp.add_pipe('sentencizer');"
            " nlp.to_disk(sys.argv[1])"
        )
        subprocess.run([str(python), "-c", code, str(home / "en_core_web_sm")], check=True)
    return home


def versions(python: Path) -> str:
    code = "import importlib.metadata as m, sys; print(' '.join(map(m.version, sys.argv[1:])))"
    cmd = [str(python), "-c", code, *PEERS]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = out.stdout.split() if out.returncode == 0 else ["?"] * len(PEERS)
    return ", ".join(f"{p} {v}" for p, v in zip(PEERS, found, strict=False))


# --- runs ---------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    tree_mb: float
    records: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _tree_rss(root: int) -> int:
    """Bytes resident in `root`'s descendants now (`root` is launch.py)."""
    kids, total = _children(), 0
    todo = list(kids.get(root, []))
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * page
        except OSError:
            pass
    return total


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[Run, int, str]:
    report = cwd / "launch.txt"
    with (cwd / "stdout.txt").open("wb") as out, (cwd / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            launch.command(report, cmd), cwd=cwd, env=env, stdout=out, stderr=err
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss(proc.pid))
            time.sleep(0.1)
    wall, cpu, maxrss = launch.result(report)
    # A run shorter than the sampling interval has no sample: its largest process is a floor.
    run = Run(wall, cpu, maxrss / 1024, max(peak / MIB, maxrss / 1024))
    return run, proc.returncode, (cwd / "stderr.txt").read_text(errors="replace")[-600:]


def run_tool(tool: str, kind: Kind, python: Path | None, spacy_home: Path | None) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGIDX_", "OPENAI_"))}
    env.update(DO_NOT_TRACK="true", SCARF_NO_ANALYTICS="true", UNSTRUCTURED_DISABLE_NOTICE="1")
    env["HF_HUB_OFFLINE"] = "1"
    with tempfile.TemporaryDirectory(prefix="docsbench-") as tmp_name:
        tmp = Path(tmp_name)
        if tool == "ragidx-index":
            cmd = [
                *(sys.executable, "-m", "ragidx", "index", str(kind.folder)),
                *("--db", str(tmp / "index.db"), "--max-file-size", "1GiB"),
                *("--quiet", "--no-progress", "--json"),
            ]
            run, code, err = timed(cmd, tmp, env)
            if code != 0:
                run.error = f"exit {code}: {err}"
            else:
                summary = [json.loads(x) for x in (tmp / "stdout.txt").read_text().splitlines()]
                s = summary[-1]
                if s.get("indexed", 0) < len(kind.units):
                    run.error = f"{s.get('indexed')} of {len(kind.units)} indexed"
            return run
        listing = tmp / "files.txt"
        listing.write_text("\n".join(map(str, kind.files)) + "\n")
        interpreter = sys.executable if tool == "ragidx-read" else str(python)
        name = "ragidx" if tool == "ragidx-read" else tool
        cmd = [interpreter, str(HERE / "peers" / "docs_extract.py"), name, str(listing)]
        cmd.append(str(tmp / "out.jsonl"))
        cwd = spacy_home if tool == "unstructured" and spacy_home else tmp
        run, code, err = timed(cmd, tmp if cwd is None else cwd, env)
        if code != 0:
            run.error = f"exit {code}: {err}"
            return run
        run.records = [json.loads(x) for x in (tmp / "out.jsonl").read_text().splitlines()]
        failed = [r for r in run.records if "error" in r]
        if failed:
            run.error = f"{len(failed)} of {len(run.records)} failed, e.g. {failed[0]['error']}"
        return run


# --- agreement ----------------------------------------------------------------------------

_WORDS = re.compile(r"\w+")


def similarity(a: str, b: str) -> float:
    x, y = _WORDS.findall(a.casefold()), _WORDS.findall(b.casefold())
    if not x and not y:
        return 1.0
    return difflib.SequenceMatcher(None, x, y, autojunk=False).ratio()


def agreement(
    records: list[dict[str, Any]], truth: dict[str, list[str]], layouts: dict[str, str]
) -> tuple[str, list[float], dict[str, list[float]]]:
    """The level compared ('page', 'document' or 'mixed'), each comparison's ratio, and the
    pages' ratios by their layout letter."""
    ratios: list[float] = []
    by_layout: dict[str, list[float]] = {}
    by_page = by_doc = 0
    for record in records:
        pages = truth.get(record["file"])
        if pages is None or "error" in record:
            continue
        theirs = record.get("pages")
        if theirs is not None and len(theirs) == len(pages):
            found = [similarity(a, b) for a, b in zip(theirs, pages, strict=True)]
            for letter, ratio in zip(layouts.get(record["file"], ""), found, strict=False):
                by_layout.setdefault(letter, []).append(ratio)
            ratios += found
            by_page += 1
        else:
            text = "\n".join(theirs) if theirs is not None else record.get("text", "")
            ratios.append(similarity(text, "\n".join(pages)))
            by_doc += 1
    level = "page" if not by_doc else "document" if not by_page else f"mixed {by_page}/{by_doc}"
    return level, ratios, by_layout


# --- main ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 PDFs, 10 DOCX, 10 PPTX")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default=",".join(TOOLS))
    parser.add_argument("--kinds", default="pdf,docx,pptx")
    parser.add_argument("--no-memory", action="store_true", help="skip the 2,000-page PDF")
    parser.add_argument("--venvs", type=Path, default=CACHE / "venvs")
    args = parser.parse_args()
    tools = [t for t in args.only.split(",") if t]
    print(f"load average at the start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    kinds = corpus(args.quick, args.kinds.split(","))
    python = spacy_home = None
    if set(tools) & set(PEERS):
        python = ensure_venv(args.venvs)
        spacy_home = spacy_standin(python, args.venvs)
        print(f"peers: {versions(python)}")
    for kind in kinds:
        for tool in tools:  # warm-up, untimed: file cache, bytecode, and it shows it works
            if tool != "ragidx-index" and (tool not in PDF_ONLY or kind.name == "pdf"):
                probe = Kind(kind.name, kind.folder, dict(list(kind.units.items())[:2]))
                run_tool(tool, probe, python, spacy_home)
    for kind in kinds:
        truth = pdftotext(kind) if kind.name == "pdf" else {}
        runs: dict[str, list[Run]] = {}
        eligible = [t for t in tools if t not in PDF_ONLY or kind.name == "pdf"]
        for r in range(args.repeat):
            for tool in eligible[r % len(eligible) :] + eligible[: r % len(eligible)]:
                runs.setdefault(tool, []).append(run_tool(tool, kind, python, spacy_home))
        report(kind, runs, truth)
    if not args.no_memory and "ragidx-index" in tools:
        memory()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


def report(kind: Kind, runs: dict[str, list[Run]], truth: dict[str, list[str]]) -> None:
    unit = {"pdf": "pages", "pptx": "slides", "docx": "files"}[kind.name]
    count = kind.pages if kind.name != "docx" else len(kind.units)
    print(f"\n{kind.name}: {len(kind.units)} files, {count:,} {unit} ({kind.folder})")
    rates = {t: count / statistics.median(r.wall for r in rs) for t, rs in runs.items()}
    peers = [rates[t] for t in runs if t in PEERS and not runs[t][-1].error]
    fastest = max(peers) if peers else None
    head = f"{'tool':<14}{'wall s':>8}{unit + '/s':>11}{'RSS MB':>8}{'tree MB':>8}"
    head += f"{'vs peer':>8}  agreement with pdftotext"
    print(head)
    for tool, rs in runs.items():
        wall = statistics.median(r.wall for r in rs)
        rss = statistics.median(r.rss_mb for r in rs)
        tree = statistics.median(r.tree_mb for r in rs)
        ratio = f"{rates[tool] / fastest:.2f}x" if fastest and not rs[-1].error else "-"
        agree, layout_line = "-", ""
        if truth and rs[-1].records:
            level, ratios, by_layout = agreement(rs[-1].records, truth, kind.layouts)
            layout_line = ", ".join(
                f"{LAYOUTS[k]} {statistics.fmean(v):.3f} ({len(v)})"
                for k, v in sorted(by_layout.items())
            )
            if ratios:
                share = sum(x >= 0.95 for x in ratios) / len(ratios)
                agree = (
                    f"mean {statistics.fmean(ratios):.3f} min {min(ratios):.3f}"
                    f" >=0.95 {share:.1%} (by {level}, {len(ratios)})"
                )
        name = tool + ("*" if tool == "unstructured" else "")
        print(
            f"{name:<14}{wall:>8.2f}{rates[tool]:>11.1f}{rss:>8.0f}{tree:>8.0f}{ratio:>8}  {agree}"
        )
        if layout_line:
            print(f"{'':<14}mean by page layout: {layout_line}")
        if len(rs) > 1:
            print(f"{'':<14}walls: {', '.join(f'{r.wall:.2f}' for r in rs)}")
        if rs[-1].error:
            print(f"{'':<14}ERROR: {rs[-1].error[:300]}")
    if "unstructured" in runs:
        print("* with a blank spaCy pipeline for en_core_web_sm (offline): a lower bound")


def memory() -> None:
    print("\nmemory: `ragidx index` of one PDF (offline embedder), whole pipeline")
    print(f"{'pages':>6}{'wall s':>8}{'pages/s':>9}{'RSS MB':>8}{'tree MB':>8}")
    for pages in (200, 2000):
        kind = big(pages)
        run = run_tool("ragidx-index", kind, None, None)
        rate = pages / run.wall
        line = f"{pages:>6}{run.wall:>8.2f}{rate:>9.1f}{run.rss_mb:>8.0f}{run.tree_mb:>8.0f}"
        print(line + (f"  ERROR: {run.error}" if run.error else ""))


if __name__ == "__main__":
    sys.exit(main())
