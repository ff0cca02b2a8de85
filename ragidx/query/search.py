"""Hybrid retrieval: BM25 over the full-text index fused with vector cosine by score.

Each ranking's scores are scaled to [0, 1] over its candidates (min-max) and a chunk scores
their mean, 0 where a ranking left it out (`fuse`). Scores keep what ranks drop: how far
apart the candidates are. An identifier that BM25 alone matches, or a paraphrase the vectors
alone find, still comes first where the other ranking's scores lie close together, and
agreement ranks highest. Reciprocal rank fusion (k = 60), used before, counted a chunk that
BM25 placed first for sharing `how` and `my` with a question as much as the answer the
vectors placed first; bench/retrieval measures both (bench/README.md, "Retrieval quality").
"""

from __future__ import annotations

import enum
import functools
import itertools
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from ragidx.chunk.tokens import CJK_CHARS
from ragidx.embed import (
    Embedder,
    EmbedOptions,
    MinimalEmbedder,
    Vectors,
    api_key_from_env,
    complete,
    create_embedder,
    validate_vectors,
)
from ragidx.errors import EmbedError, StoreError
from ragidx.store import ChunkRow, Store

__all__ = [
    "CANDIDATES",
    "MAX_TERMS",
    "QUERY_STOP_WORDS",
    "SearchHit",
    "SearchMode",
    "fuse",
    "index_embedder",
    "query_terms",
    "search",
]

# Each ranking's depth, which is also what its scores are scaled over: deeper lists (100,
# 200) spread the cosine scale thinner and lowered MRR on sample_docs in bench/retrieval.
CANDIDATES = 50
# Hits read beyond `k`, so that files deleted since they were indexed can be left out.
GONE_SLACK = 20
# FTS5's time grows with the terms OR-ed: 300 CJK pairs took 1.5 s on 20,000 chunks, 64 take
# a tenth of that. A longer query (a pasted paragraph) is matched on its first 64 terms.
MAX_TERMS = 64
_TERM = re.compile(r"[^\W_]+(?:[-_.:/][^\W_]+)*", re.UNICODE)

QUERY_STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is
    it its itself just me more most my myself no nor not now of off on once only or other our
    ours ourselves out over own s same she should so some such t than that the their theirs
    them themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)
"""English function words a full-text query leaves out, unless it holds nothing else: BM25
ranks a chunk sharing `how`, `my` and `at` with a question above one sharing nothing, and
in hybrid search that noise outweighed the vectors' answer to a question in other words."""


class SearchMode(enum.StrEnum):
    HYBRID = "hybrid"
    VECTOR = "vector"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A chunk that matched, as plain values: where it is, its text, and how it ranked.

    Offsets index the text of the file as read (`char_end` exclusive); lines count from 1.
    `text_rank` and `vector_rank` are its places in the full-text and the vector rankings
    (None where it was not in one); `score`, from 0 to 1, is their fusion (`fuse`)."""

    path: str
    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    char_start: int
    char_end: int
    line_start: int
    line_end: int
    score: float
    text_rank: int | None
    vector_rank: int | None
    page_start: int | None = None
    """The page (slide, sheet: `unit`) the chunk starts on, in a paged document."""
    page_end: int | None = None
    unit: str | None = None

    @classmethod
    def of(
        cls, row: ChunkRow, score: float, text_rank: int | None, vector_rank: int | None
    ) -> SearchHit:
        """The hit for a stored chunk."""
        return cls(
            path=row.path,
            ordinal=row.ordinal,
            heading_path=row.heading_path,
            text=row.text,
            char_start=row.char_start,
            char_end=row.char_end,
            line_start=row.line_start,
            line_end=row.line_end,
            score=score,
            text_rank=text_rank,
            vector_rank=vector_rank,
            page_start=row.page_start,
            page_end=row.page_end,
            unit=row.unit,
        )


def query_terms(query: str) -> list[str]:
    """The terms of `query` that full-text search matches, any of them: lower-case phrases
    in no store's syntax (each store writes its own query from them, quoting them).

    A term like `TW-E4031` or `compute_backoff_delay` stays one phrase, so its parts match
    next to each other. A run of CJK characters, written without spaces between words,
    becomes its overlapping pairs: `查看磁盘使用情况` finds `磁盘空间使用情况`, which a phrase
    of all its characters would not, and BM25 ranks the text sharing the most pairs first.
    English function words (`QUERY_STOP_WORDS`) are left out where other terms remain.
    """
    found = [t.lower() for t in _TERM.findall(query)]
    words = [t for t in found if t not in QUERY_STOP_WORDS] or found
    phrases = (p for t in words for p in _phrases(t))
    return list(dict.fromkeys(phrases))[:MAX_TERMS]


def _phrases(term: str) -> Iterator[str]:
    # The index holds each CJK character as a word (ragidx.chunk.tokens.space_cjk): a pair is a
    # two-word phrase, and needs no other index than the one every existing database has.
    for i, part in enumerate(_cjk_runs().split(term)):
        if i % 2 == 0:  # between CJK runs: a word, or a joined term like `tw-e4031`
            if part := part.strip("-_.:/"):
                yield part
        elif len(part) == 1:
            yield part
        else:
            yield from (f"{a} {b}" for a, b in itertools.pairwise(part))


@functools.cache
def _cjk_runs() -> re.Pattern[str]:
    return re.compile(f"([{CJK_CHARS}]+)")


def index_embedder(
    store: Store, base_url: str | None, timeout: float, environ: Mapping[str, str]
) -> Embedder:
    """The embedder the index was built with, to embed queries in the same space: its
    provider, model, dims and normalisation from the manifest; the API key from `environ`;
    `base_url` in place of the recorded one where given."""
    manifest = store.manifest()
    if "provider" not in manifest:
        hint = "run `ragidx index PATH` first"
        raise StoreError(f"the index {store.location} is empty", hint=hint)
    provider = manifest["provider"]
    options = EmbedOptions(
        base_url=base_url or manifest.get("base_url"),
        api_key=api_key_from_env(provider, environ),
        timeout=timeout,
        normalize=manifest.get("normalize", "true") == "true",  # queries as the documents
    )
    return create_embedder(
        provider, model=manifest.get("model"), dims=int(manifest["dims"]), options=options
    )


async def search(
    store: Store,
    embedder: MinimalEmbedder,
    query: str,
    *,
    k: int = 5,
    mode: SearchMode = SearchMode.HYBRID,
    on_damaged: Callable[[str, int], None] | None = None,
) -> list[SearchHit]:
    """The `k` best chunks for `query`, best first. Stored vectors that did not survive in
    the file are left out of the ranking, and `on_damaged(path, count)` is told of them."""
    embedder = complete(embedder)
    text_ranked: list[tuple[int, float]] = []
    vector_ranked: list[tuple[int, float]] = []
    pool = max(CANDIDATES, k)
    if mode != SearchMode.VECTOR and (terms := query_terms(query)):
        text_ranked = store.text_search(terms, pool)
    if mode != SearchMode.TEXT and query.strip() and not _featureless(embedder, query):
        vectors = await _query_vector(embedder, query)
        vector_ranked = store.vector_search(vectors[0], pool, on_damaged)
    text_pos = {cid: i + 1 for i, (cid, _) in enumerate(text_ranked)}
    vector_pos = {cid: i + 1 for i, (cid, _) in enumerate(vector_ranked)}
    searched = {
        SearchMode.TEXT: [text_ranked],
        SearchMode.VECTOR: [vector_ranked],
        SearchMode.HYBRID: [text_ranked, vector_ranked],
    }[mode]
    scores = fuse(searched)
    last = len(vector_pos) + 1
    ranked = sorted(scores, key=lambda cid: (-scores[cid], vector_pos.get(cid, last), cid))
    rows = store.chunks_by_id(ranked[: k + GONE_SLACK])
    present = _present([rows[cid].path for cid in ranked if cid in rows])
    shown = [cid for cid in ranked if cid in rows and rows[cid].path in present]
    best = sorted(shown, key=lambda cid: _order(cid, scores, vector_pos, rows[cid]))[:k]
    return [
        SearchHit.of(rows[cid], scores[cid], text_pos.get(cid), vector_pos.get(cid)) for cid in best
    ]


def fuse(rankings: Sequence[Sequence[tuple[int, float]]]) -> dict[int, float]:
    """Each chunk's fused score from 0 to 1: the mean over `rankings` of its score in each,
    scaled so the ranking's best candidate counts 1 and its worst 0 (min-max), and 0 in a
    ranking that left it out. A ranking whose candidates all score alike (a single one, or
    ties) counts 1 for each. `rankings` are (chunk id, score) pairs, higher scores better;
    an empty ranking adds nothing but still counts in the mean. No rankings: no scores."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        if not ranking:
            continue
        values = [score for _, score in ranking]
        low, high = min(values), max(values)
        spread = high - low
        for cid, score in ranking:
            scaled = (score - low) / spread if spread > 0 else 1.0
            fused[cid] = fused.get(cid, 0.0) + scaled
    return {cid: total / len(rankings) for cid, total in fused.items()}


def _order(
    cid: int, scores: dict[int, float], vector_pos: dict[int, int], row: ChunkRow
) -> tuple[float, int, str, int]:
    """Best first. Equal scores are common: first in one ranking and absent from the other
    scores 0.5 either way. The vector ranking decides those, since it scores every chunk,
    and a chunk left out of its top is far from the query's meaning, while one the text
    ranking leaves out only shares no word with it, as a paraphrase does. Then the path, not
    the id, which follows the order files were stored in and differs between runs."""
    return -scores[cid], vector_pos.get(cid, len(vector_pos) + 1), row.path, row.ordinal


def _featureless(embedder: Embedder, query: str) -> bool:
    """A query the offline embedder finds no word in (`???`, `the`) is near nothing, not near
    everything: its vector (a fallback, see `ragidx.embed.hashing`) is not searched by."""
    from ragidx.embed.hashing import HashEmbedder

    return isinstance(embedder, HashEmbedder) and embedder.featureless(query)


async def _query_vector(embedder: Embedder, query: str) -> Vectors:
    """The query's vector; an error that says which server failed, and that text search
    needs none."""
    try:
        return validate_vectors(await embedder.embed([query]), 1, embedder.dims)
    except EmbedError as exc:
        message = exc.message
        if (server := embedder.server) is not None and server.url not in message:
            message = f"{server.url}: {message}"
        hint = exc.hint or "is the embedding server up? `ragidx doctor` checks it"
        hint += "; --mode text searches without it"
        raise EmbedError(message, kind=exc.kind, hint=hint) from None


def _present(paths: list[str]) -> set[str]:
    """The paths of hits to show: a file deleted since it was indexed is not one. But where
    none of the files is here, the index was moved away from its files (a CI artifact, a
    container image): its hits still stand for something, so all are shown."""
    unique = set(paths)
    here = {p for p in unique if os.path.lexists(p)}
    return here if here else unique
