"""ragidx against servers that attack it with their answers (issue 14, section 3).

    uv run python bench/hostile.py [--huge 500e6] [--bomb 1e9] [--timeout 10] [-- FLAGS]

A fresh test server (`ragidx.testing.server`) on 127.0.0.1 answers every request with

- huge: an answer of HUGE bytes announced in Content-Length, one vector of numbers in valid
  JSON (what a client that reads and parses it all pays for in full), and
- bomb: a gzip body of about a thousandth of BOMB bytes on the wire that inflates to BOMB
  bytes of valid JSON,

each with Content-Length, then chunked (no length to refuse it by before it comes), and
for comparison a server that answers HTTP 500 every time (retried alike),

and `ragidx index` (started from bench/launch.py, so its peak RSS is its own) indexes a few
small files against each with `--timeout TIMEOUT` and otherwise default flags (or FLAGS
after `--`). Prints, for each attack, the exit code, the wall seconds, the peak RSS, the
requests the server got and the reasons the files failed with. Target: peak RSS under
300 MB and the run over within TIMEOUT + 5 s; with default retries the backoff between
attempts (full jitter, up to 0.5 + 1 + ... + 16 s) is part of the wall time, so it also
runs `--max-retries 0` to show what one attempt costs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from launch import command, result

from ragidx.testing.server import Faults, serve

FILES = 4


def attack(work: Path, faults: Faults, timeout: float, flags: list[str]) -> str:
    with serve(faults) as server:
        cmd = [
            sys.executable, "-m", "ragidx", "index", "corpus", "--db", "idx.db", "--json",
            "--no-progress", "--provider", "openai", "--base-url", server.url + "/v1",
            "--model", "hostile", "--timeout", f"{timeout:g}", *flags,
        ]  # fmt: skip
        (work / "idx.db").unlink(missing_ok=True)
        report = work / "launch.txt"
        with open(work / "out.jsonl", "w") as out, open(work / "err.txt", "w") as err:
            code = subprocess.run(
                command(report, cmd), cwd=work, stdout=out, stderr=err, check=False
            ).returncode
        requests = server.counters.requests
    wall, cpu, rss = result(report)
    records = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines()]
    reasons = sorted({r["reason"] for r in records if r.get("status") == "failed"})
    error = (work / "err.txt").read_text().strip().splitlines()
    said = reasons or error[:1] or ["-"]
    return (
        f"exit {code}, {wall:5.1f} s wall ({cpu:.1f} s CPU), peak RSS {rss / 1024:6.0f} MiB, "
        f"{requests} requests; {'; '.join(said)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--huge", type=float, default=500e6, help="bytes of the huge answer")
    parser.add_argument("--bomb", type=float, default=1e9, help="inflated bytes of the bomb")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("flags", nargs="*", help="ragidx index flags (after --)")
    args = parser.parse_args()
    huge, bomb = f"huge answer {args.huge / 1e6:g} MB", f"gzip bomb {args.bomb / 1e6:g} MB"
    attacks = {
        huge: Faults(huge_answer=int(args.huge)),
        f"{huge}, chunked": Faults(huge_answer=int(args.huge), chunked=True),
        bomb: Faults(gzip_bomb=int(args.bomb)),
        f"{bomb}, chunked": Faults(gzip_bomb=int(args.bomb), chunked=True),
        "HTTP 500 every time, to compare": Faults(fail_first=10**9),
    }
    with tempfile.TemporaryDirectory(prefix="ragidx-hostile-") as tmp:
        work = Path(tmp)
        (work / "corpus").mkdir()
        for i in range(FILES):
            (work / "corpus" / f"f{i}.md").write_text(f"# Note {i}\n\nAbout topic {i}.\n")
        print(f"{FILES} files, --timeout {args.timeout:g} (target: {args.timeout + 5:g} s)")
        for name, faults in attacks.items():
            for retries in ([], ["--max-retries", "0"]):
                label = f"{name}{', --max-retries 0' if retries else ''}:"
                print(f"{label:<52} {attack(work, faults, args.timeout, [*args.flags, *retries])}")


if __name__ == "__main__":
    main()
