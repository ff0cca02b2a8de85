"""What a dry run says a real run would cost: requests, tokens, time under the rate limits,
and money at a price per million tokens."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Budget", "Estimate", "estimate"]


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits and price to estimate against; None where not given."""

    rpm: float | None = None
    tpm: float | None = None
    price_per_mtok: float | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    requests: int
    tokens: int
    seconds: float | None
    """At the rate limits; None without --rpm or --tpm (the server's speed decides)."""
    cost: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "tokens": self.tokens,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "cost": None if self.cost is None else round(self.cost, 6),
        }


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
