"""Tidewater: a lightweight persistent task queue.

Producers enqueue jobs on a :class:`Queue`; a :class:`Worker` claims them,
runs the registered task functions, and acknowledges the result. Jobs are
stored durably in SQLite or Redis.

Example::

    from tidewater import Queue, Worker

    queue = Queue("default", broker_url="sqlite:///tidewater.db")

    @queue.task()
    def add(a: int, b: int) -> int:
        return a + b

    add.enqueue(1, 2)
    Worker(queue).run()
"""

from __future__ import annotations

from tidewater.backoff import BackoffPolicy
from tidewater.queue import DuplicateJob, Job, JobNotFound, Queue, RetryLater
from tidewater.worker import LeaseExpired, Worker

__all__ = [
    "BackoffPolicy",
    "DuplicateJob",
    "Job",
    "JobNotFound",
    "LeaseExpired",
    "Queue",
    "RetryLater",
    "Worker",
]

__version__ = "1.4.0"
