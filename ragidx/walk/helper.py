"""A helper process of a `WalkPool`: it walks the subtrees it is given and sends back their
listings, with the walker's own code and rules.

Its job comes on stdin as one frame, (root, the `WalkConfig`'s fields, the ignore rules that
hold at the subtrees as (directory, lines) pairs, the subtrees); each subtree's listings go to
stdout in frames of about `_BATCH` items, ended by a None. What it says on its way out (a
traceback) goes to stderr, which the pool reads for its error.
"""

from __future__ import annotations

import sys
from typing import Any

from ragidx.config import WalkConfig
from ragidx.walk.listing import encode_listing, receive, send
from ragidx.walk.walker import subtree_listings

__all__ = ["serve"]

_BATCH = 2048  # items a helper sends at once


def serve() -> None:
    """Walk the subtrees asked for on stdin and send each one's listings, then a None."""
    job = receive(sys.stdin.buffer)
    if job is None:
        return
    root, options, rules, subtrees = job
    config = WalkConfig(**options)
    write = sys.stdout.buffer
    for subtree in subtrees:
        batch: list[Any] = []
        size = 0
        for listing in subtree_listings(root, config, rules, subtree):
            batch.append(encode_listing(listing))
            size += len(listing)
            if size >= _BATCH:
                send(write, batch)
                batch, size = [], 0
        batch.append(None)
        send(write, batch)
    write.flush()
