"""A generated corpus, made once and kept: shared by the bench scripts."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = ".ragidx-bench-corpus.json"


def cached_corpus(
    root: Path, wanted: dict[str, Any], generate: Callable[[Path], dict[str, Any]]
) -> tuple[Path, dict[str, Any], float | None]:
    """`root`, generated first by `generate(folder)` unless its marker records `wanted`.

    Built in `<root>.partial` and renamed when done, so an interrupted build is never taken
    for a corpus. Returns the folder, what its marker says, and the seconds generation took
    (None when cached). `generate` returns facts to record beside `wanted` (files, bytes)."""
    marker = root / MARKER
    if marker.is_file():
        info: dict[str, Any] = json.loads(marker.read_text())
        if {k: info.get(k) for k in wanted} == wanted:
            return root, info, None
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    info = {**wanted, **generate(partial)}
    (partial / MARKER).write_text(json.dumps(info))
    partial.rename(root)
    return root, info, time.perf_counter() - started
