"""Settings as small frozen value objects with named defaults."""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ragidx.errors import ConfigError
from ragidx.redact import without_credentials
from ragidx.settings import MIN_CHUNK_TOKENS as MIN_CHUNK_TOKENS  # where refit looks for it
from ragidx.settings import conflict, require, shown

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "DEFAULT_DB_PATH",
    "DEFAULT_FAN_OUT_FILES",
    "DEFAULT_MAX_FILE_SIZE",
    "DEFAULT_WALK",
    "TOKENIZER_NAMES",
    "Budget",
    "ChunkConfig",
    "IndexConfig",
    "LongChunkPolicy",
    "Shard",
    "WalkConfig",
    "db_path",
    "default_db_path",
    "default_db_url",
    "is_postgres_url",
    "missing_db_dir",
]

DEFAULT_CHUNK_TOKENS = 512
# OpenAI's encodings, which bpe-openai ships (ragidx.chunk.tokens.BPE_ENCODINGS).
BPE_TOKENIZERS = ("cl100k_base", "o200k_base")
# The tokenizers known by name (ragidx.chunk.tokens); any other is a tokenizer.json's path.
TOKENIZER_NAMES = ("cl100k_base", "o200k_base", "estimate")
# 100,000 unchanged files re-run in 0.46 s with two walk helpers, 0.58 s without (2 cores).
DEFAULT_FAN_OUT_FILES = 50_000
DEFAULT_CHUNK_OVERLAP = 64
DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_DOCUMENT_SIZE = 256 * 1024 * 1024
DEFAULT_DB_PATH = Path(".ragidx") / "index.db"
DEFAULT_READERS = 4
MAX_SHARDS = 100_000
DEFAULT_EMBED_WORKERS = 2
DEFAULT_GRACE = 30.0
DEFAULT_PARSE_TIMEOUT = 60.0
DEFAULT_PARSE_MEMORY = 2 * 1024**3


def default_db_path() -> Path:
    """`RAGIDX_DB` when set to a file (see `db_path`), else `.ragidx/index.db` under the
    current directory."""
    env = os.environ.get("RAGIDX_DB")
    return db_path(env) if env and not is_postgres_url(env) else DEFAULT_DB_PATH


def default_db_url() -> str | None:
    """`RAGIDX_DB` when it is a Postgres URL."""
    env = os.environ.get("RAGIDX_DB")
    return env if env and is_postgres_url(env) else None


def is_postgres_url(where: str | os.PathLike[str]) -> bool:
    """Whether `--db` (or `RAGIDX_DB`) names a Postgres index rather than a SQLite file."""
    return isinstance(where, str) and where.lower().startswith(("postgresql://", "postgres://"))


def db_path(given: str | os.PathLike[str]) -> Path:
    """The index database a `--db` (or `RAGIDX_DB`, or `db =`) names: a directory, one that
    exists or a path that ends in a slash, means `index.db` in it."""
    text = os.fspath(given)
    if text.endswith(("/", os.sep)) or os.path.isdir(text):
        return Path(text) / DEFAULT_DB_PATH.name
    return Path(text)


def missing_db_dir(path: Path) -> Path | None:
    """The directory an index given by name would go in, if it does not exist: only the
    default's (`.ragidx/`) is made, so a typo in `--db` makes no tree of directories."""
    if path == DEFAULT_DB_PATH or path.absolute().parent.is_dir():
        return None
    return path.parent


def _agree(chunk_tokens: int, chunk_overlap: int | None, max_batch_tokens: int | None) -> None:
    clash = conflict(chunk_tokens, chunk_overlap, max_batch_tokens)
    if clash is not None:
        name, reason = clash
        value = chunk_overlap if name == "chunk_overlap" else max_batch_tokens
        raise ConfigError(f"--{name.replace('_', '-')} {value}: {reason}")


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits and price to estimate against; None where not given."""

    rpm: float | None = None
    tpm: float | None = None
    price_per_mtok: float | None = None


@dataclass(frozen=True, kw_only=True)
class WalkConfig:
    """Which files under the given paths are indexed."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_document_size: int = DEFAULT_MAX_DOCUMENT_SIZE
    """The cap of files named as a document format (`document_suffixes`): a PDF or a deck
    is mostly pictures and layout, its text a small part of its size."""
    document_suffixes: frozenset[str] = frozenset()
    """Lower-case name endings of document formats (`ragidx.read.document_suffixes()`; an
    index run fills them in from the readers registered)."""
    follow_symlinks: bool = False
    hidden: bool = False
    skip_paths: frozenset[str] = frozenset()
    """Absolute paths never to index, such as the index database and its WAL."""
    workers: int | None = None
    """Helper processes that walk the subtrees of a large tree side by side (`ragidx.walk.pool`).
    None lets each run decide (`index` starts them where the index already holds many files
    under the paths given); 0 walks in this process alone."""
    fan_out_files: int = DEFAULT_FAN_OUT_FILES
    """With `workers` None: the files the index must already hold under the paths given for
    the walk to start helpers (below it, their start costs more than they save)."""

    def __post_init__(self) -> None:
        if self.max_file_size <= 0:
            raise ConfigError(
                f"--max-file-size must be positive, got {self.max_file_size}",
                hint="give a size such as 10MiB, 512KiB or 1048576",
            )
        require("max_file_size", self.max_file_size)
        require("max_document_size", self.max_document_size)
        require("include", list(self.include))
        require("exclude", list(self.exclude))
        if self.fan_out_files < 1:
            raise ConfigError(f"fan_out_files must be 1 or more, got {self.fan_out_files}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"walk workers must be 0 or more, got {self.workers}")


@dataclass(frozen=True, kw_only=True)
class ChunkConfig:
    """How documents are cut into chunks: a token budget and an overlap, counted by
    `tokenizer` (None: the estimate; see `ragidx.chunk.tokens.counter`), and whether short
    sections are packed together (`pack`) or each is a chunk of its own. `pack` None packs
    where the tokenizer is a model's own encoding (cl100k, o200k: OpenAI's models, which read
    8,191 tokens); with the estimate or a tokenizer.json (often a small model, MiniLM's 256
    tokens), each section stays a chunk: packed, MiniLM found paraphrases less well
    (`bench/retrieval`: MRR 0.841 -> 0.689)."""

    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    pack: bool | None = None
    tokenizer: str | None = None
    """"cl100k_base", "o200k_base", "estimate", or the path of a tokenizer.json."""

    def __post_init__(self) -> None:
        require("chunk_tokens", self.chunk_tokens)
        require("chunk_overlap", self.chunk_overlap)
        _agree(self.chunk_tokens, self.chunk_overlap, None)
        if self.pack is not None and not isinstance(self.pack, bool):
            raise ConfigError(f"pack must be true or false, got {self.pack!r}")
        if self.tokenizer is not None:
            require("tokenizer", self.tokenizer)
            # Only what costs nothing here: the file is read where a counter is built.
            if self.tokenizer not in TOKENIZER_NAMES and not os.path.isfile(self.tokenizer):
                raise ConfigError(
                    f"--tokenizer {shown(self.tokenizer)}: no such file",
                    hint="give " + ", ".join(TOKENIZER_NAMES) + ", or a tokenizer.json",
                )

    @property
    def packs(self) -> bool:
        """Whether short sections are packed together: `pack`, or as its None decides."""
        if self.pack is not None:
            return self.pack
        return self.tokenizer in BPE_TOKENIZERS

    @property
    def fingerprint(self) -> str:
        """Identifies the settings: a file chunked under another fingerprint is re-chunked.
        The version counts changes to what the chunker makes (v2: no chunks of markup alone;
        v3: sections packed, exact counts; v4: pages, and source code cut at its symbols)."""
        packing = "packed" if self.packs else "sections"
        return (
            f"v4:{self.chunk_tokens}:{self.chunk_overlap}:{packing}:{self.tokenizer or 'estimate'}"
        )


class LongChunkPolicy(enum.StrEnum):
    """What to do with a chunk the model refuses as too long (see `ragidx.pipeline.refit`)."""

    SPLIT = "split"
    TRUNCATE = "truncate"
    FAIL = "fail"


DEFAULT_WALK = WalkConfig()
DEFAULT_CHUNK = ChunkConfig()


@dataclass(frozen=True, slots=True)
class Shard:
    """Part `number` (from 1) of `count` disjoint parts of every tree (`--shard K/N`).

    A file is in the part that a hash of its absolute path names, so N runs, on any machines
    and under any scheduler, split the files between them without talking to each other;
    each plans, indexes and removes only its own part's files."""

    number: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= self.count <= MAX_SHARDS:
            raise ConfigError(
                f"--shard {self.number}/{self.count}: K must be 1 to N, N at most {MAX_SHARDS}",
                hint="give K/N, as 1/4 for the first of four parts",
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`K/N`, as `--shard` takes it. Raises `ConfigError` naming the option."""
        number, slash, count = text.strip().partition("/")
        if not (slash and number.isdigit() and count.isdigit()):
            raise ConfigError(
                f"--shard {text!r}: not K/N", hint="give K/N, as 1/4 for the first of four parts"
            )
        return cls(int(number), int(count))

    def holds(self, path: str) -> bool:
        """Whether the file at absolute `path` (as the index stores it) is in this part."""
        digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8)
        return int.from_bytes(digest.digest(), "big") % self.count == self.number - 1

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """Everything one `index` run needs besides the paths and the embedder."""

    db_path: Path = field(default_factory=default_db_path)
    db_url: str | None = field(default_factory=default_db_url)
    """A `postgresql://` URL: the index is in Postgres (`PostgresStore`), not at `db_path`."""
    walk: WalkConfig = DEFAULT_WALK
    chunk: ChunkConfig = DEFAULT_CHUNK
    readers: int = DEFAULT_READERS
    workers: int | None = None
    """Worker processes that read, chunk and hash; None: the cores this process may use;
    0: none (a thread of this process does it)."""
    parse_timeout: float = DEFAULT_PARSE_TIMEOUT
    """Seconds a worker process may take to read and chunk one file; past them it is ended
    and the file fails (`parse_timeout`). No limit without worker processes."""
    parse_memory: int = DEFAULT_PARSE_MEMORY
    """Bytes a worker process may allocate beyond what it holds once started; a file whose
    parser needs more fails (`too_large`). No limit without worker processes."""
    embed_workers: int = DEFAULT_EMBED_WORKERS
    batch_inputs: int | None = None
    batch_tokens: int | None = None
    reset: bool = False
    on_long_chunk: LongChunkPolicy = LongChunkPolicy.SPLIT
    dry_run: bool = False
    """Walk, read and chunk, and count what would be sent; embed and write nothing."""
    budget: Budget = field(default_factory=Budget)
    """Rate limits and price a dry run estimates time and cost against."""
    wait: bool = True
    """Wait for another run writing the same index; else refuse at once."""
    grace: float = DEFAULT_GRACE
    """Seconds requests in flight get to finish once stopping is asked."""
    covers: tuple[Path, ...] = ()
    """Directories the paths given (a list on stdin, say) stand for in full: an indexed file
    under one of them that the paths do not name is removed, once they are read to the end."""
    shard: Shard | None = None
    """Index only this part of the files (and remove only its files): one of N runs."""
    fit_chunks: bool = True
    """Cut chunks to what the model reads where the server says (TEI's `/info`); False keeps
    `chunk.chunk_tokens` as given (and warns, with a `ChunkLimit` event, if it is more)."""
    ray: str | None = None
    """Where Ray runs the files to index (`ragidx.distribute`): "local" starts a Ray on this
    machine for the run, "auto" joins the one `ray start` runs here, else a cluster's address
    (`host:6379`, `ray://host:10001`). This run walks, plans and removes; Ray tasks read,
    embed and commit. Needs a Postgres index (`db_url`)."""
    part: str | None = None
    """This run is a part of a run that holds the index's run lock (a Ray task's, named
    `ray 3`): it takes no lock of its own, shows as `part` in `ragidx stats` (where a shard
    shows its K/N), and leaves the directory stamps to the run it is a part of."""

    def __post_init__(self) -> None:
        require("readers", self.readers)
        if self.workers is not None and self.workers != 0:
            require("workers", self.workers)
        require("parse_timeout", self.parse_timeout)
        require("parse_memory", self.parse_memory)
        require("concurrency", self.embed_workers)
        for name, value in (
            ("batch_size", self.batch_inputs),
            ("max_batch_tokens", self.batch_tokens),
        ):
            if value is not None:
                require(name, value)
        _agree(self.chunk.chunk_tokens, None, self.batch_tokens)
        if self.ray is not None:
            _ray_fits(self)

    @property
    def db(self) -> str | Path:
        """Where the index is: the Postgres URL where one is given, else the SQLite file."""
        return self.db_url or self.db_path

    @property
    def db_shown(self) -> str:
        """The index as messages name it: the file, or the URL without its password."""
        return without_credentials(self.db_url) if self.db_url else str(self.db_path)


def _ray_fits(config: IndexConfig) -> None:
    """Raise `ConfigError` where `--ray` cannot run with the other settings."""
    require("ray", config.ray)
    if not config.db_url:
        raise ConfigError(
            "--ray needs a Postgres index: a SQLite file takes one writer at a time",
            hint="give --db postgresql://user@host:5432/dbname (or RAGIDX_DB)",
        )
    if config.reset:
        raise ConfigError(
            "--reset with --ray: a reset waits for its own run's first vectors",
            hint="reset with a run without --ray (ragidx index --reset ...), then use --ray",
        )
