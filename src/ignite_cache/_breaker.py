"""A circuit breaker per backend instance: stop calling a store that keeps failing.

After ``threshold`` consecutive failures the breaker opens: calls fail at once with
``CacheUnavailableError`` (decorators treat that as a miss and compute) instead of each
waiting for a timeout. After ``cooldown`` seconds one call is let through as a probe; its
success closes the breaker, its failure opens it again. State changes are logged once
and counted. On the happy path the cost is one attribute test before and after a call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .errors import CacheUnavailableError

logger = logging.getLogger("ignite_cache")


class CircuitBreaker:
    """Closed -> (threshold failures) -> open -> (cooldown) -> one probe -> closed or open."""

    def __init__(
        self,
        name: str,
        *,
        threshold: int = 5,
        cooldown: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.opens = 0
        """How many times the breaker has opened (a counter for metrics)."""
        self.rejected = 0
        """Calls answered with CacheUnavailableError while open."""

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (a probe is under way)."""
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.probing else "open"

    def before(self) -> None:
        """Raise ``CacheUnavailableError`` unless a call may go to the store now."""
        if self.opened_at is None:
            return
        if self.probing or self._clock() - self.opened_at < self.cooldown:
            self.rejected += 1
            raise CacheUnavailableError(
                f"{self.name} is not being called for {self.cooldown:g} s after "
                f"{self.threshold} consecutive failures (circuit breaker open)."
            )
        self.probing = True  # this call is the probe

    def succeeded(self) -> None:
        """A call went through: close the breaker (logging it if it was open)."""
        if self.opened_at is not None:
            logger.warning("%s answers again; circuit breaker closed.", self.name)
        self.failures = 0
        self.opened_at = None
        self.probing = False

    def failed(self) -> None:
        """A call failed: count it, and open the breaker at the threshold or a failed probe."""
        self.failures += 1
        if self.probing or (self.opened_at is None and self.failures >= self.threshold):
            if not self.probing:
                self.opens += 1
                logger.error(
                    "%s failed %d times in a row; circuit breaker open, retrying in %g s.",
                    self.name,
                    self.failures,
                    self.cooldown,
                )
            self.opened_at = self._clock()
            self.probing = False
