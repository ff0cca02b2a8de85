"""What a dry run says a real run would cost: requests, tokens, time under the rate limits,
and money at a price per million tokens."""

from __future__ import annotations

from ragidx.config import Budget
from ragidx.models import Estimate

__all__ = ["estimate"]


def estimate(requests: int, tokens: int, budget: Budget) -> Estimate:
    """The slower of the two limits sets the time: requests over RPM, tokens over TPM."""
    minutes = [
        amount / limit
        for amount, limit in ((requests, budget.rpm), (tokens, budget.tpm))
        if limit is not None
    ]
    seconds = max(minutes) * 60 if minutes else None
    price = budget.price_per_mtok
    cost = tokens / 1_000_000 * price if price is not None else None
    return Estimate(requests, tokens, seconds, cost)
