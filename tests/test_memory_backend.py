"""MemoryBackend: LRU bounds by entries and bytes, and expired entries that nobody reads again."""

from __future__ import annotations

from typing import Any

import pytest

from ignite_cache import CacheConfigError, MemoryBackend
from ignite_cache.backends.memory import ENTRY_OVERHEAD

Clock = Any  # conftest's FakeClock


def entry_size(key: str, value: str | bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


async def test_lru_eviction_by_entry_count() -> None:
    cache = MemoryBackend(max_entries=3)
    for key in "abc":
        await cache.set(key, key)
    await cache.set("d", "d")
    assert len(cache) == 3
    assert await cache.get_many(["a", "b", "c", "d"]) == [None, "b", "c", "d"]


async def test_get_makes_an_entry_recently_used() -> None:
    cache = MemoryBackend(max_entries=3)
    for key in "abc":
        await cache.set(key, key)
    assert await cache.get("a") == "a"  # "b" is now the least recently used
    await cache.set("d", "d")
    assert await cache.get_many(["a", "b", "c", "d"]) == ["a", None, "c", "d"]


async def test_overwrite_makes_an_entry_recently_used() -> None:
    cache = MemoryBackend(max_entries=2)
    await cache.set("a", "1")
    await cache.set("b", "1")
    await cache.set("a", "2")
    await cache.set("c", "1")
    assert await cache.get_many(["a", "b", "c"]) == ["2", None, "1"]


async def test_lru_eviction_by_bytes() -> None:
    value = "x" * 300
    max_bytes = 3 * entry_size("k0", value) + 10  # room for three entries, not four
    cache = MemoryBackend(max_bytes=max_bytes)
    for i in range(10):
        await cache.set(f"k{i}", value)
        assert cache.size_bytes <= max_bytes
    assert len(cache) == 3
    assert await cache.get_many([f"k{i}" for i in range(10)]) == [None] * 7 + [value] * 3


async def test_bytes_accounting_follows_overwrites_and_deletes() -> None:
    cache = MemoryBackend()
    await cache.set("k", "x" * 100)
    await cache.set("k", "y" * 10)
    await cache.set("j", b"z" * 50)
    assert cache.size_bytes == entry_size("k", "y" * 10) + entry_size("j", b"z" * 50)
    await cache.delete("k")
    await cache.delete_pattern("*")
    assert cache.size_bytes == 0
    await cache.set("k", "v")
    await cache.flush()
    assert cache.size_bytes == 0 and len(cache) == 0


async def test_a_value_bigger_than_max_bytes_is_not_kept_and_evicts_nothing_else() -> None:
    cache = MemoryBackend(max_bytes=2000)
    await cache.set_many({"a": "1", "b": "2", "replaced": "old"})
    await cache.set("huge", "x" * 5000)
    await cache.set("replaced", "x" * 5000)
    assert cache.size_bytes <= 2000
    assert await cache.get("huge") is None
    assert await cache.get("replaced") is None  # never the stale small value
    assert await cache.get_many(["a", "b"]) == ["1", "2"]  # one oversized value must not wipe the cache


async def test_expired_entries_are_swept_without_reads(clock: Clock) -> None:
    cache = MemoryBackend(clock=clock)
    await cache.set_many({f"old{i}": "v" for i in range(100)}, ex=1)
    await cache.set("forever", "v", ex=None)
    clock.advance(2)
    assert cache.sweep(1000) == 100
    assert len(cache) == 1
    assert cache.size_bytes == entry_size("forever", "v")


async def test_set_traffic_sweeps_expired_entries(clock: Clock) -> None:
    cache = MemoryBackend(clock=clock)
    await cache.set_many({f"old{i}": "v" for i in range(100)}, ex=1)
    clock.advance(2)
    for i in range(100):
        await cache.set(f"new{i}", "v", ex=None)
    assert len(cache) == 100  # every expired entry went, though nobody asked for it
    assert await cache.exists(*(f"new{i}" for i in range(100))) == 100


async def test_sweep_is_bounded_per_call_and_oldest_first(clock: Clock) -> None:
    cache = MemoryBackend(clock=clock)
    for i in range(10):
        await cache.set(f"k{i}", "v", ex=1 + i)
    clock.advance(20)
    assert cache.sweep(3) == 3
    assert len(cache) == 7
    assert cache.sweep(100) == 7


async def test_sweep_does_not_remove_an_entry_rewritten_with_a_longer_ttl(clock: Clock) -> None:
    cache = MemoryBackend(clock=clock)
    await cache.set("k", "old", ex=1)
    await cache.set("k", "new", ex=100)
    await cache.set("p", "old", ex=1)
    await cache.expire("p", None)
    clock.advance(2)
    assert cache.sweep(100) == 0
    assert await cache.get_many(["k", "p"]) == ["new", "old"]


async def test_expiry_heap_stays_bounded_under_overwrites(clock: Clock) -> None:
    cache = MemoryBackend(clock=clock)
    for i in range(50_000):
        await cache.set(f"k{i % 10}", "v", ex=100)
    assert len(cache) == 10
    # each overwrite leaves a stale heap item; the heap is rebuilt before it outgrows the entries
    assert len(cache._expiries) <= 2 * len(cache) + 1024


async def test_many_expired_keys_never_read_leave_memory_bounded(clock: Clock) -> None:
    cache = MemoryBackend(clock=clock, max_entries=1_000_000)
    for round_ in range(20):
        await cache.set_many({f"r{round_}:{i}": "v" for i in range(1000)}, ex=1)
        clock.advance(2)
    assert len(cache) <= 2000
    assert len(cache._expiries) <= 2 * 1000 + 1024 + 1000


@pytest.mark.parametrize(
    "options",
    [{"max_entries": 0}, {"max_entries": -1}, {"max_entries": 1.5}, {"max_bytes": 0}, {"max_bytes": "1MB"}],
)
def test_bad_bounds_are_config_errors(options: dict[str, object]) -> None:
    with pytest.raises(CacheConfigError, match=next(iter(options))):
        MemoryBackend(**options)  # type: ignore[arg-type]  # the point of the test


async def test_scan_survives_writes_during_the_iteration() -> None:
    cache = MemoryBackend()
    await cache.set_many({f"k{i}": "v" for i in range(100)})
    cursor, seen = await cache.scan(0, count=10)
    await cache.set_many({f"new{i}": "v" for i in range(50)})
    await cache.delete("k99")
    while cursor != 0:
        cursor, batch = await cache.scan(cursor, count=10)
        seen.extend(batch)
    assert len(seen) == len(set(seen))
    assert set(seen) >= {f"k{i}" for i in range(99)}
    assert "k99" not in seen
