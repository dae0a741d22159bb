"""Failing open, in one place: a cache error is logged once per incident and counted.

An incident starts with the first failure after a success and ends with the next
success, which is logged too; the calls in between only count. So a Redis outage under
load writes two log lines, not one per request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

logger = logging.getLogger("ignite_cache")


@dataclass
class CacheStats:
    """Counters of one decorated function (``func.cache_stats``)."""

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    """Misses that waited for another caller's computation instead of running the function."""
    errors: int = 0
    """Backend or decoding failures that were answered by calling the function instead."""
    incidents: int = 0
    failing: bool = field(default=False, repr=False)

    def failed(self, what: str, name: str, exc: BaseException) -> None:
        self.errors += 1
        if not self.failing:
            self.failing = True
            self.incidents += 1
            logger.warning(
                "Cache %s failed for %s; serving without the cache until it recovers: %r",
                what,
                name,
                exc,
            )

    def recovered(self, name: str) -> None:
        """A cache operation worked: end the incident, if one is open (logged once)."""
        if self.failing:
            self.failing = False
            logger.info("Cache is working again for %s.", name)
