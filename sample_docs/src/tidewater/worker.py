"""The worker loop: claim, execute, acknowledge.

A :class:`Worker` repeatedly claims ready jobs from its queues, runs the task
function, and acknowledges or rejects the job. While a job runs, a heartbeat
thread keeps its lease alive via :meth:`Worker._renew_lease`.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Sequence, Union

from tidewater import backoff
from tidewater.queue import DEAD, DELAYED, LEASED, SUCCEEDED, Job, Queue, RetryLater

log = logging.getLogger("tidewater.worker")


class LeaseExpired(Exception):
    """The lease on a job ran out before it was acknowledged."""

    code = "TW-E4031"


class Worker:
    """Consume jobs from one or more queues.

    Args:
        queues: A queue or a sequence of queues, highest priority first.
        concurrency: Maximum number of jobs executed at the same time.
        shutdown_grace_period: Seconds to wait for in-flight jobs after SIGTERM.
    """

    def __init__(
        self,
        queues: Union[Queue, Sequence[Queue]],
        *,
        concurrency: int = 4,
        shutdown_grace_period: float = 30.0,
    ) -> None:
        self.queues: List[Queue] = [queues] if isinstance(queues, Queue) else list(queues)
        self.concurrency = concurrency
        self.shutdown_grace_period = shutdown_grace_period
        self.id = f"w-{uuid.uuid4().hex[:4]}"
        self._stopping = threading.Event()
        self._in_flight: Dict[str, Job] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public

    def run(self) -> None:
        """Process jobs until SIGTERM or SIGINT is received."""
        signal.signal(signal.SIGTERM, self._handle_signal)
        signal.signal(signal.SIGINT, self._handle_signal)
        heartbeat = threading.Thread(target=self._heartbeat_loop, daemon=True)
        heartbeat.start()
        log.info("worker %s started concurrency=%d", self.id, self.concurrency)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while not self._stopping.is_set():
                job = self._claim() if len(self._in_flight) < self.concurrency else None
                if job is None:
                    time.sleep(0.5)
                    continue
                pool.submit(self._execute, job)
        self._release_remaining()

    def stop(self, graceful: bool = True) -> None:
        """Ask the worker to stop; in-flight jobs finish if ``graceful``."""
        self._stopping.set()
        if not graceful:
            self.shutdown_grace_period = 0.0

    # ---------------------------------------------------------------- internal

    def _handle_signal(self, signum: int, _frame: object) -> None:
        if self._stopping.is_set():
            log.warning("second signal received, skipping grace period")
            self.shutdown_grace_period = 0.0
        log.info("received %s, shutting down gracefully", signal.Signals(signum).name)
        self._stopping.set()

    def _claim(self) -> Union[Job, None]:
        now = time.time()
        for queue in self.queues:
            for job in queue._backend.jobs.values():
                if job.status in ("ready", DELAYED) and job.run_at <= now:
                    job.status = LEASED
                    job.lease_token = uuid.uuid4().hex
                    job.lease_deadline = now + queue.visibility_timeout
                    job.attempt += 1
                    with self._lock:
                        self._in_flight[job.id] = job
                    return job
        return None

    def _queue_for(self, job: Job) -> Queue:
        return next(q for q in self.queues if q.name == job.queue)

    def _execute(self, job: Job) -> None:
        queue = self._queue_for(job)
        func = queue.tasks[job.task]
        token = job.lease_token
        try:
            result = func(*job.args, **job.kwargs)
        except RetryLater as exc:
            self._retry(job, exc.delay)
        except Exception:
            log.exception("job %s failed on attempt %d", job.id, job.attempt)
            self._retry(job, None)
        else:
            self._ack(job, token, result)
        finally:
            with self._lock:
                self._in_flight.pop(job.id, None)

    def _ack(self, job: Job, token: Union[str, None], result: object) -> None:
        if job.lease_token != token or (job.lease_deadline or 0) < time.time():
            raise LeaseExpired(f"{LeaseExpired.code}: lease on {job.id} expired before ack")
        job.status = SUCCEEDED
        job.result = result
        job.lease_token = None

    def _retry(self, job: Job, delay: Union[float, None]) -> None:
        queue = self._queue_for(job)
        if job.attempt >= job.max_attempts:
            job.status = DEAD
            return
        if delay is None:
            delay = backoff.compute_backoff_delay(queue.backoff, job.attempt)
        job.status = DELAYED
        job.run_at = time.time() + delay
        job.lease_token = None

    def _renew_lease(self, job: Job) -> bool:
        """Extend the lease on ``job`` by the queue's visibility timeout.

        Called from the heartbeat thread every ``lease_renewal_interval``.
        Returns ``False`` if the lease was already lost, in which case the job
        may be picked up by another worker and our eventual ack will fail.
        """
        now = time.time()
        if job.lease_token is None or (job.lease_deadline or 0) < now:
            log.warning("lease on job %s lost before renewal", job.id)
            return False
        job.lease_deadline = now + self._queue_for(job).visibility_timeout
        return True

    def _heartbeat_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                jobs = list(self._in_flight.values())
            for job in jobs:
                self._renew_lease(job)
            time.sleep(min(q.visibility_timeout for q in self.queues) / 3)

    def _release_remaining(self) -> None:
        deadline = time.monotonic() + self.shutdown_grace_period
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.1)
        with self._lock:
            for job in self._in_flight.values():
                job.status = "ready"
                job.lease_token = None
                job.lease_deadline = None
        log.info("worker %s stopped", self.id)
