"""The Ray a run sends its tasks to: imported on first use (the `ray` extra), started or
joined for the run, and let go at its end.

In: `--ray`: "local" starts a Ray on this machine for the run (its CPUs: those this process
may use), "auto" joins the one `ray start` runs here, anything else is a cluster's address
(`host:6379`, `ray://host:10001`). A process already connected to a Ray (`ray.init` called
before, as a notebook or a test does) uses that one and stays connected. Out: a `Cluster`:
its task slots, one a CPU. Raises `ConfigError` where the extra is missing or Ray cannot
start or be reached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ragidx.errors import ConfigError
from ragidx.pipeline.prepare import usable_cores
from ragidx.redact import without_credentials

__all__ = ["LOCAL_OBJECT_STORE", "Cluster", "ray_module"]

LOCAL_OBJECT_STORE = 256 * 1024**2
"""Bytes of shared memory a local Ray gets for objects (Ray's default is 30% of the RAM): a
task's arguments and answer are paths and counts."""


def ray_module() -> Any:
    """The `ray` package, or `ConfigError` with the command that installs it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            f"--ray needs the ray extra ({exc.name or exc} is not installed)",
            hint="pip install 'ragidx[ray]' (or: uv sync --extra ray)",
        ) from exc
    return ray


@dataclass(frozen=True, slots=True)
class Cluster:
    ray: Any
    """The `ray` module."""
    slots: int
    """Tasks that run at once: the cluster's CPUs, one a task."""
    joined: bool
    """Whether this run connected (and so disconnects at its end)."""

    @classmethod
    def connect(cls, address: str) -> Cluster:
        """Start or join the Ray at `address` (see the module's docstring); blocks while a
        local one starts (about 10 s)."""
        ray = ray_module()
        joined = False
        if not ray.is_initialized():
            quiet = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            try:
                if address == "local":
                    ray.init(
                        address="local",
                        num_cpus=usable_cores(),
                        object_store_memory=LOCAL_OBJECT_STORE,
                        **quiet,
                    )
                else:
                    ray.init(address=address, **quiet)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
                raise ConfigError(
                    f"--ray {without_credentials(address)}: Ray could not start or be reached"
                    f" ({type(exc).__name__}: {exc})",
                    hint="--ray local starts one here; --ray auto joins `ray start`'s;"
                    " else give the head's address (host:6379 or ray://host:10001)",
                ) from exc
            joined = True
        cpus = int(ray.cluster_resources().get("CPU", 0))
        return cls(ray, max(cpus, 1), joined)

    def close(self) -> None:
        """Disconnect where this run connected (a local Ray it started stops with it)."""
        if self.joined:
            self.ray.shutdown()
