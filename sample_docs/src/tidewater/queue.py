"""Queues, jobs and task registration.

A :class:`Queue` is a named stream of :class:`Job` records stored in a backend.
Functions decorated with :meth:`Queue.task` become tasks that can be enqueued.
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from tidewater.backoff import BackoffPolicy

READY = "ready"
DELAYED = "delayed"
LEASED = "leased"
SUCCEEDED = "succeeded"
FAILED = "failed"
DEAD = "dead"


class TidewaterError(Exception):
    """Base class for all Tidewater errors; carries a stable ``code``."""

    code = "TW-E0000"


class JobNotFound(TidewaterError):
    """Raised when a job ID does not exist (``TW-E4040``)."""

    code = "TW-E4040"


class DuplicateJob(TidewaterError):
    """Raised when ``unique_key`` collides with a pending job (``TW-E4090``)."""

    code = "TW-E4090"


class RetryLater(Exception):
    """Raise inside a task to request a retry after ``delay`` seconds."""

    def __init__(self, delay: Optional[float] = None) -> None:
        super().__init__(f"retry requested in {delay}s")
        self.delay = delay


@dataclass
class Job:
    """A single unit of work persisted in the backend."""

    id: str
    queue: str
    task: str
    args: List[Any] = field(default_factory=list)
    kwargs: Dict[str, Any] = field(default_factory=dict)
    status: str = READY
    attempt: int = 0
    max_attempts: int = 3
    priority: int = 5
    run_at: float = field(default_factory=time.time)
    result: Any = None
    lease_token: Optional[str] = None
    lease_deadline: Optional[float] = None

    @property
    def is_finished(self) -> bool:
        """True once the job has succeeded or been dead-lettered."""
        return self.status in (SUCCEEDED, DEAD)


class Queue:
    """A named, durable job queue.

    Args:
        name: Queue name.
        broker_url: Backend URL such as ``sqlite:///tidewater.db``.
        max_attempts: Default attempt limit for tasks on this queue.
        visibility_timeout: Seconds a claimed job stays invisible.
    """

    def __init__(
        self,
        name: str,
        *,
        broker_url: str = "sqlite:///tidewater.db",
        max_attempts: int = 3,
        visibility_timeout: float = 60.0,
        backoff: Optional[BackoffPolicy] = None,
    ) -> None:
        self.name = name
        self.broker_url = broker_url
        self.max_attempts = max_attempts
        self.visibility_timeout = visibility_timeout
        self.backoff = backoff or BackoffPolicy()
        self.tasks: Dict[str, Callable[..., Any]] = {}
        self._backend = _open_backend(broker_url)

    def task(
        self, func: Optional[Callable[..., Any]] = None, *, max_attempts: Optional[int] = None
    ) -> Any:
        """Register ``func`` as a task and give it an ``enqueue`` method."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            name = f"{fn.__module__}.{fn.__qualname__}"
            self.tasks[name] = fn

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return fn(*args, **kwargs)

            def enqueue(*args: Any, delay: float = 0.0, **kwargs: Any) -> Job:
                return self.enqueue(
                    name, *args, delay=delay,
                    max_attempts=max_attempts or self.max_attempts, **kwargs
                )

            wrapper.enqueue = enqueue  # type: ignore[attr-defined]
            return wrapper

        return decorate(func) if func is not None else decorate

    def enqueue(
        self,
        task_name: str,
        /,
        *args: Any,
        delay: float = 0.0,
        priority: int = 5,
        max_attempts: Optional[int] = None,
        **kwargs: Any,
    ) -> Job:
        """Persist a new job and return its handle."""
        job = Job(
            id=uuid.uuid4().hex,
            queue=self.name,
            task=task_name,
            args=list(args),
            kwargs=kwargs,
            status=DELAYED if delay > 0 else READY,
            priority=priority,
            max_attempts=max_attempts or self.max_attempts,
            run_at=time.time() + delay,
        )
        self._backend.put(job)
        return job

    def get_job(self, job_id: str) -> Job:
        """Fetch a job by ID or raise :class:`JobNotFound`."""
        job = self._backend.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def size(self, state: str = READY) -> int:
        """Number of jobs in ``state``."""
        return self._backend.count(self.name, state)


class _MemoryBackend:
    """Minimal in-process backend used for ``sqlite://:memory:`` and tests."""

    def __init__(self) -> None:
        self.jobs: Dict[str, Job] = {}

    def put(self, job: Job) -> None:
        self.jobs[job.id] = job

    def get(self, job_id: str) -> Optional[Job]:
        return self.jobs.get(job_id)

    def count(self, queue: str, state: str) -> int:
        return sum(1 for j in self.jobs.values() if j.queue == queue and j.status == state)


def _open_backend(url: str) -> _MemoryBackend:
    """Return a backend for ``url``; real backends live in ``tidewater.storage``."""
    scheme = url.split(":", 1)[0]
    if scheme not in {"sqlite", "redis", "rediss", "redis+sentinel", "redis+cluster"}:
        raise TidewaterError(f"TW-E1001: unknown broker scheme {scheme!r}")
    return _MemoryBackend()
