"""The generated retrieval corpus: one page per topic card plus seeded filler files.

    uv run python bench/retrieval/corpus.py DIR [--fillers N]

Each card of `cards.py` becomes one Markdown page, the only right answer to its queries. The
fillers make the search harder the way a real tree does, without answering any query:

* service runbooks, alike in shape, holding near-misses of the cards' identifiers
  (`spool_flush_timeout` beside the card's `spool_flush_interval`, `SPL-E4411` beside
  `SPL-E4410`), so an identifier query finds its page only if it matches exactly;
* meeting notes that name two or three card topics in passing (the words a keyword query
  holds, with none of the answer), so word overlap alone does not find the page.

The same seed and count give the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from cards import CARDS, Card  # bench scripts run with their folder on sys.path

__all__ = ["DEFAULT_FILLERS", "SEED", "generate"]

SEED = 16
DEFAULT_FILLERS = 250
_RUNBOOK_SHARE = 0.6

# Near-misses of the cards' identifiers: the same shape, never the same value.
_NEAR_IDENTIFIERS = (
    "spool_flush_timeout",
    "spool_retry_interval",
    "renew_before_hours",
    "renew_after_days",
    "flush_interval_ms",
    "idx_scan_ratio",
    "kube_pod_status_phase",
    "rerere_autoupdate",
)
_NEAR_CODES = (
    "SPL-E4411",
    "SPL-E4401",
    "ACME-404",
    "ACME-503",
    "F-228",
    "F-272",
    "HP-E8",
    "E-62",
    "C1235",
    "Err-9",
)
_SYLLABLES = "ka lo mi nu pe ra si to ve wa ben dor fal gim hul jor kel man nor pil".split()
_PURPOSES = (
    "turns uploaded invoices into ledger entries",
    "sends the nightly account statements",
    "resizes product photos for the shop",
    "collects clickstream events from the web app",
    "answers address autocomplete requests",
    "matches incoming payments to open orders",
    "renders PDF reports for the finance team",
    "syncs the warehouse stock levels with the storefront",
    "scores login attempts for fraud",
    "archives closed support tickets",
)
_TEAMS = ("payments", "platform", "growth", "data", "support tools", "identity")
_STORES = ("PostgreSQL", "Redis", "SQLite", "S3", "Kafka", "Elasticsearch")
_SYMPTOMS = (
    "requests time out",
    "the queue backs up",
    "memory climbs until the pod restarts",
    "latency doubles at the top of the hour",
    "writes are rejected",
)
_FIXES = (
    "restart the pods one at a time",
    "scale the deployment to twice its replicas",
    "fail over to the standby region",
    "purge the stale entries and warm the cache",
    "roll back to the previous release",
)
_NAMES = ("Ana", "Bram", "Chen", "Dalia", "Emeka", "Fiona", "Goran", "Hana", "Ines", "Jonas")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def generate(root: Path, *, fillers: int = DEFAULT_FILLERS, seed: int = SEED) -> int:
    """Write the corpus under `root` (created); returns how many files were written."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for card in CARDS:
        _write(root / card.path, _page(card))
    runbooks = round(fillers * _RUNBOOK_SHARE)
    for i in range(runbooks):
        _write(root / "runbooks" / f"service-{i:03d}.md", _runbook(rng))
    for i in range(fillers - runbooks):
        _write(root / "meetings" / f"notes-{i:03d}.md", _meeting(rng, i))
    return len(CARDS) + fillers


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _page(card: Card) -> str:
    body = "".join(f"## {heading}\n\n{paragraph}\n\n" for heading, paragraph in card.sections)
    return f"# {card.title}\n\n{body}"


def _runbook(rng: random.Random) -> str:
    name = "-".join(rng.sample(_SYLLABLES, 2)) + rng.choice(("d", "er", "ix", "io"))
    key, other = rng.sample(_NEAR_IDENTIFIERS, 2)
    code = rng.choice(_NEAR_CODES)
    return (
        f"# {name} runbook\n\n"
        f"{name} {rng.choice(_PURPOSES)}. It is owned by the {rng.choice(_TEAMS)} team and"
        f" keeps its state in {rng.choice(_STORES)}.\n\n"
        "## Configuration\n\n"
        f"- `{key}`: {rng.randint(2, 90)} (raise it when {rng.choice(_SYMPTOMS)}).\n"
        f"- `{other}`: {rng.randint(2, 90)}.\n\n"
        "## Alerts\n\n"
        f"### {code}\n\n"
        f"Fires when {rng.choice(_SYMPTOMS)}. First {rng.choice(_FIXES)}; if it fires again"
        f" within an hour, {rng.choice(_FIXES)} and page the on-call engineer.\n"
    )


def _meeting(rng: random.Random, number: int) -> str:
    english = [c for c in CARDS if c.title.isascii()]
    topics = [_topic(c) for c in rng.sample(english, 3)]
    a, b, c = rng.sample(_NAMES, 3)
    return (
        f"# Notes from the {rng.choice(_DAYS)} sync, week {number % 52 + 1}\n\n"
        f"{a} asked whether anyone had written up {topics[0]} yet; {b} said a draft exists"
        f" and will share it after the review. We skipped {topics[1]} for lack of time.\n\n"
        f"## Action items\n\n- {c}: follow up on {topics[2]} before next week.\n"
        f"- {a}: book the room for the next sync.\n"
    )


def _topic(card: Card) -> str:
    """A card's title as a topic named in passing: `the piece on rescuing an overwatered
    houseplant`."""
    title = re.sub(r"^(How|When|Why|Is) ", "", card.title)
    return f"the piece on {title[0].lower()}{title[1:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--fillers", type=int, default=DEFAULT_FILLERS)
    args = parser.parse_args()
    print(f"{generate(args.dir, fillers=args.fillers)} files written to {args.dir}")


if __name__ == "__main__":
    main()
