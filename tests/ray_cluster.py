"""One local Ray cluster for the whole test session (`ray_address`), and a reader that ends
the Ray worker reading it (`DieOnce`), for the tests of `ragidx index --ray`.

Ray takes about 10 s to start on 2 cores: it starts once, on first use, and every Ray test
goes to the same xdist worker (tests/conftest.py's scheduler groups tests/postgres/test_ray.py).
Its workers inherit this process's environment as the cluster starts: `RAY_AUTH_MODE=disabled`
(else Ray writes a token into ~/.ray), no `uv run` runtime environment (Ray would package the
work tree for every worker), and tests/ on PYTHONPATH, so a worker can import this module's
reader, which the driver hands the tasks by reference. Facts: docs/design/postgres.md §5.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragidx.models import Document
from ragidx.read.base import Source

__all__ = ["DieOnce", "ray_address", "ray_env"]

TESTS = Path(__file__).resolve().parent
OBJECT_STORE = 200 * 1024**2


def ray_env() -> dict[str, str]:
    """What a Ray worker or a driver of the tests' cluster needs in its environment."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "PYTHONPATH": path}


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's Ray (2 CPUs), connected in this process; its address, for a driver in
    a child process (`--ray ADDRESS`)."""
    # Short, so not under pytest's basetemp (/tmp/pytest-of-root/pytest-1012/popen-gw0/...):
    # Ray's socket paths under it (ray0/session_<date>_<pid>/sockets/plasma_store) must fit
    # in 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="rgx-ray-"))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in ray_env().items():
            mp.setenv(name, value)
        import ray  # after the environment is set: Ray reads some of it on import

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=OBJECT_STORE,
            _temp_dir=str(temp),
        )
        try:
            yield str(ray.get_runtime_context().gcs_address)
        finally:
            ray.shutdown()
            shutil.rmtree(temp, ignore_errors=True)


class DieOnce:
    """Reads `.boom` files, whose text names a marker file: the first read (no marker yet)
    makes the marker and ends its process at once, as a worker lost to the OOM killer or a
    node gone; the next read is a plain Markdown file. "marker: always" ends every worker
    that reads it. Only ever read in a Ray worker: the
    driver sends every file to a task."""

    content_type = "application/x-test-boom"
    format = "markdown"
    suffixes = (".boom",)
    segmented = False

    def sniff(self, head: bytes) -> bool:
        return False

    def read(self, source: Source) -> Document:
        text = source.data.decode()
        named = text.splitlines()[0].removeprefix("marker: ")
        marker = Path(named)
        if named == "always":  # a file no worker lives through
            os._exit(1)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return source.document(text, self.format, "utf-8")
