"""The CacheBackend contract, run against every backend (memory, file, redis)."""

from __future__ import annotations

import pytest

from ignite_cache import CacheBackend, RedisBackend
from ignite_cache.backends.base import Cursor


async def collect_keys(
    backend: CacheBackend, match: str | None = None, count: int | None = None
) -> list[str]:
    """Every key of one full ``scan`` iteration, in the order returned (duplicates kept)."""
    keys: list[str] = []
    cursor: Cursor = 0
    while True:
        cursor, batch = await backend.scan(cursor, match=match, count=count)
        keys.extend(batch)
        if cursor in (0, "0"):
            return keys


SHARED_STORE_KINDS = [
    pytest.param("file", id="file"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]
"""For ``@pytest.mark.parametrize("backend_kind", SHARED_STORE_KINDS)``: two instances, one store."""

FAKE_CLOCK_KINDS = ["memory", "file"]
"""For tests that move a ``FakeClock`` far (Redis would need the same time for real)."""


def near(backend: CacheBackend, seconds: int) -> set[int]:
    """What ``ttl()`` may answer right after a ``seconds`` TTL was set: exact on a fake clock;
    on Redis one less too, should half a second of real time pass (a loaded machine)."""
    if seconds > 0 and isinstance(backend, RedisBackend):
        return {seconds, seconds - 1}
    return {seconds}  # and -1 / -2 are always exact
