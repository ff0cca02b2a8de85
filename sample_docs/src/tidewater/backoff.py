"""Retry delay calculation.

This module turns a retry policy and an attempt number into a concrete delay
in seconds. It is deliberately free of I/O so that it can be unit tested
exhaustively and reused by the scheduler and the dashboard's "next retry"
estimate.

The main entry point is :func:`compute_backoff_delay`; :func:`preview_schedule`
is a convenience wrapper that calls ``compute_backoff_delay`` repeatedly to show
the full sequence of delays a policy would produce.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import List, Literal, Optional

__all__ = ["BackoffPolicy", "compute_backoff_delay", "preview_schedule"]

Strategy = Literal["exponential", "linear", "fixed"]
Jitter = Literal["none", "full", "equal", "decorrelated"]


@dataclass(frozen=True)
class BackoffPolicy:
    """Parameters controlling the delay between attempts.

    Attributes:
        strategy: How the raw delay grows with the attempt number.
        base_delay: Delay in seconds before the first retry.
        max_delay: Upper bound for any single delay, in seconds.
        multiplier: Growth factor used by the exponential strategy.
        jitter: Randomisation applied to the raw delay.
    """

    strategy: Strategy = "exponential"
    base_delay: float = 1.0
    max_delay: float = 3600.0
    multiplier: float = 2.0
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("TW-E1002: delays must be non-negative")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")


def _raw_delay(policy: BackoffPolicy, attempt: int) -> float:
    """Return the un-jittered delay after failed attempt number ``attempt``."""
    if policy.strategy == "fixed":
        delay = policy.base_delay
    elif policy.strategy == "linear":
        delay = policy.base_delay * attempt
    else:
        # Guard against overflow for absurd attempt counts.
        exponent = min(attempt - 1, 64)
        delay = policy.base_delay * (policy.multiplier ** exponent)
    return min(delay, policy.max_delay)


def compute_backoff_delay(
    policy: BackoffPolicy,
    attempt: int,
    previous_delay: Optional[float] = None,
    rng: Optional[random.Random] = None,
) -> float:
    """Compute how long to wait before the next attempt of a failed job.

    Args:
        policy: The job's retry policy.
        attempt: The attempt that just failed, starting at 1.
        previous_delay: The delay used before this attempt; only needed for
            decorrelated jitter. ``None`` on the first retry.
        rng: Random source, injectable for deterministic tests.

    Returns:
        The delay in seconds, always within ``[0, policy.max_delay]``.

    Example:
        >>> p = BackoffPolicy(base_delay=2, jitter="none")
        >>> [compute_backoff_delay(p, n) for n in (1, 2, 3, 4)]
        [2.0, 4.0, 8.0, 16.0]
    """
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    rng = rng or random.Random()
    raw = float(_raw_delay(policy, attempt))

    if policy.jitter == "none":
        return raw
    if policy.jitter == "full":
        return rng.uniform(0.0, raw)
    if policy.jitter == "equal":
        half = raw / 2.0
        return half + rng.uniform(0.0, half)
    # Decorrelated jitter: grows from the previous delay rather than from the
    # attempt number, which smooths out bursts of simultaneous failures.
    prev = previous_delay if previous_delay is not None else policy.base_delay
    upper = min(policy.max_delay, max(policy.base_delay, prev * 3.0))
    return rng.uniform(policy.base_delay, upper) if upper > policy.base_delay else upper


def preview_schedule(
    policy: BackoffPolicy, max_attempts: int, seed: Optional[int] = None
) -> List[float]:
    """Return the delays between attempts for a job with ``max_attempts``.

    Each element is produced by :func:`compute_backoff_delay`, feeding the
    previous delay back in so that decorrelated jitter behaves as it would in a
    real worker. Passing ``seed`` makes the output reproducible, which is what
    ``tidewater config check --show-backoff`` uses.
    """
    rng = random.Random(seed)
    delays: List[float] = []
    previous: Optional[float] = None
    for attempt in range(1, max_attempts):
        previous = compute_backoff_delay(policy, attempt, previous, rng)
        delays.append(previous)
    return delays
