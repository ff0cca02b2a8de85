"""LlamaIndex's ingestion of a folder of Markdown, run by bench/compare.py in its own venv.

    <venv>/bin/python bench/peers/llamaindex_ingest.py CORPUS --base-url URL [--batch-size 64]
        [--chunk-tokens 512] [--chunk-overlap 64] [--concurrency 4] [--workers 0]

SimpleDirectoryReader (recursive, .md only) -> IngestionPipeline(SentenceSplitter,
OpenAIEmbedding) through its async path, `pipeline.arun`. `--concurrency` is the embedding's
own `num_workers`: how many embedding requests are in flight at once (unset, LlamaIndex sends
every batch at once). `--workers` is arun's `num_workers`, which in llama-index-core 0.14 runs
the transformations in a ProcessPoolExecutor of that many processes (0: one process). The
nodes are not stored anywhere. Hidden files are not left out (see `ingest`). Prints one JSON
line at the end: documents, nodes, nodes with an embedding, and the seconds of each stage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from llama_index.core import SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.embeddings.openai import OpenAIEmbedding


def pipeline(args: argparse.Namespace) -> IngestionPipeline:
    splitter = SentenceSplitter(chunk_size=args.chunk_tokens, chunk_overlap=args.chunk_overlap)
    embedding = OpenAIEmbedding(
        model="text-embedding-3-small",
        api_base=args.base_url,
        api_key="sk-bench",
        embed_batch_size=args.batch_size,
        num_workers=args.concurrency,
    )
    return IngestionPipeline(transformations=[splitter, embedding])


async def ingest(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    # exclude_hidden=False: LlamaIndex tests every part of the absolute path, so a corpus
    # under ~/.cache counts as hidden ("No files found"). The corpus has no hidden .md files.
    reader = SimpleDirectoryReader(
        args.corpus, recursive=True, required_exts=[".md"], exclude_hidden=False
    )
    documents = reader.load_data()
    loaded = time.perf_counter()
    nodes = await pipeline(args).arun(documents=documents, num_workers=args.workers or None)
    finished = time.perf_counter()
    return {
        "event": "summary",
        "documents": len(documents),
        "nodes": len(nodes),
        "embedded": sum(1 for node in nodes if node.embedding),
        "load_seconds": round(loaded - started, 3),
        "pipeline_seconds": round(finished - loaded, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--chunk-overlap", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(ingest(args))), flush=True)


if __name__ == "__main__":
    main()
