"""RedisBackend(mode="cluster") on a real 3-primary cluster (one replica each), started once.

Every operation of the contract has to work when the keys of one call live in different
slots, on different primaries: MGET, UNLINK and EXISTS are split per slot, SCAN walks
every primary once, and ``flush``/``delete_pattern`` reach all of them, without touching
anything outside the namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from faults.harness import (
    close_backend,
    cluster_slot_ranges,
    key_slot,
)
from ignite_cache import CacheBackendError, RedisBackend, cached
from ignite_cache.backends.base import Cursor
from support.servers import HOST, RedisCluster, RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.cluster]


@pytest.fixture
def cluster(healthy_cluster: RedisCluster) -> RedisCluster:
    return healthy_cluster


@pytest.fixture
def namespace() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def backend(cluster: RedisCluster, namespace: str) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(cluster.url, mode="cluster", namespace=namespace)
    await backend.init()
    try:
        yield backend
    finally:
        try:
            await backend.flush()
        finally:
            await close_backend(backend)


@pytest.fixture
async def raw(cluster: RedisCluster) -> AsyncIterator[Any]:
    """Another client of the cluster: plain redis-py, bytes in and out."""
    host, port = cluster.startup_nodes[0]
    client = aioredis.RedisCluster(host=host, port=port)
    try:
        yield client
    finally:
        await client.aclose()


def primary_of(cluster: RedisCluster, name: str) -> RedisServer:
    slot = key_slot(name)
    for primary in cluster.primaries():
        if any(start <= slot <= end for start, end in cluster_slot_ranges(primary)):
            return primary
    raise AssertionError(f"no primary serves slot {slot}")


async def all_keys(backend: RedisBackend, match: str | None = None, count: int | None = None) -> list[str]:
    keys: list[str] = []
    cursor: Cursor = 0
    for _ in range(10_000):
        cursor, batch = await backend.scan(cursor, match=match, count=count)
        keys.extend(batch)
        if cursor in (0, "0"):
            return keys
    raise AssertionError("scan did not end after 10000 pages")


def wait_for_replication(primary: RedisServer, replica: RedisServer, timeout: float = 5.0) -> None:
    """Wait until ``replica`` has every write ``primary`` acknowledged so far (bounded)."""
    target = int(primary.info()["master_repl_offset"])
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.01) + 1):
        if int(replica.info().get("slave_repl_offset", -1)) >= target:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    raise AssertionError(f"{replica!r} did not catch up with {primary!r} in {timeout} s")


async def raw_keys(raw: Any, namespace: str) -> list[str]:
    """The keys of ``namespace``, listed by another client (independent of backend.scan)."""
    prefix = f"{namespace}:"
    return [name.decode()[len(prefix) :] async for name in raw.scan_iter(match=prefix + "*", count=1000)]


KEYS = [f"key-{i}" for i in range(240)]


def test_the_keys_span_every_primary(cluster: RedisCluster, namespace: str) -> None:
    """The premise of the other tests: KEYS (under any namespace) land on all three primaries."""
    owners = {primary_of(cluster, f"{namespace}:{key}").port for key in KEYS}
    assert len(owners) == 3


async def test_set_get_and_delete_keys_of_many_slots(backend: RedisBackend) -> None:
    for i, key in enumerate(KEYS):
        assert await backend.set(key, f"v{i}") is True
    assert [await backend.get(key) for key in KEYS] == [f"v{i}" for i in range(len(KEYS))]
    assert await backend.get("absent") is None
    assert await backend.set("bytes", b"\x00\xff") is True
    assert await backend.get("bytes") == b"\x00\xff"

    assert await backend.delete(*KEYS[:100], "absent") == 100  # one call, many slots
    assert await backend.exists(*KEYS[:100]) == 0
    assert await backend.exists(*KEYS[100:]) == len(KEYS) - 100
    assert await backend.get(KEYS[100]) == "v100"


async def test_scan_returns_every_key_exactly_once(backend: RedisBackend) -> None:
    await backend.set_many(dict.fromkeys(KEYS, "x"))
    for count in (None, 7, 1000):
        found = await all_keys(backend, count=count)
        assert len(found) == len(set(found)), f"duplicates with count={count}"
        assert sorted(found) == sorted(KEYS)
    matched = await all_keys(backend, match="key-1?", count=3)
    assert sorted(matched) == sorted(k for k in KEYS if len(k) == 6 and k.startswith("key-1"))


async def test_get_many_and_set_many_span_slots(backend: RedisBackend) -> None:
    mapping = {key: f"v{i}" for i, key in enumerate(KEYS)}
    assert await backend.set_many(mapping, ex=60) is True
    wanted = [KEYS[5], "absent", KEYS[200], KEYS[5], KEYS[77]]
    assert await backend.get_many(wanted) == ["v5", None, "v200", "v5", "v77"]
    assert await backend.get_many([]) == []
    assert 0 < await backend.ttl(KEYS[42]) <= 60


async def test_delete_pattern_and_flush_reach_every_primary(backend: RedisBackend, raw: Any) -> None:
    await backend.set_many({f"user:{i}": "u" for i in range(90)} | {f"team:{i}": "t" for i in range(90)})
    assert await backend.delete_pattern("user:*") == 90
    assert sorted(await raw_keys(raw, backend.namespace)) == sorted(f"team:{i}" for i in range(90))
    assert await backend.delete_pattern("team:1?") == 10
    assert await backend.delete_pattern("nothing:*") == 0

    ns = backend.namespace
    outside = [f"other:{ns}:a", f"{ns}x:b", f"{ns}", f"x{ns}:c"]  # near the prefix, yet outside
    for name in outside:
        await raw.set(name, "keep")
    try:
        assert await backend.flush() is True
        assert await raw_keys(raw, ns) == []
        assert [await raw.get(name) for name in outside] == [b"keep"] * len(outside)
    finally:
        await raw.unlink(*outside)


async def test_exists_ttl_and_expire(backend: RedisBackend) -> None:
    await backend.set("a", "1", ex=100)
    await backend.set("b", "2", ex=None)
    assert await backend.exists("a", "b", "a", "absent") == 3  # a key named twice counts twice
    assert 90 <= await backend.ttl("a") <= 100
    assert await backend.ttl("b") == -1
    assert await backend.ttl("absent") == -2
    assert await backend.expire("b", 50) is True
    assert 40 <= await backend.ttl("b") <= 50
    assert await backend.expire("a", timedelta(seconds=20)) is True
    assert 10 <= await backend.ttl("a") <= 20
    assert await backend.expire("a", None) is True
    assert await backend.ttl("a") == -1
    assert await backend.expire("absent", 10) is False


async def test_incr_and_add(backend: RedisBackend) -> None:
    assert await backend.incr("n") == 1
    assert await backend.incr("n", 41) == 42
    assert await backend.incr("n", -2) == 40
    assert await backend.get("n") == "40"
    assert await backend.add("lock", "me", ex=30) is True
    assert await backend.add("lock", "you", ex=30) is False
    assert await backend.get("lock") == "me"


async def test_namespaces_do_not_see_each_other(
    cluster: RedisCluster, backend: RedisBackend, raw: Any
) -> None:
    other = RedisBackend(cluster.url, mode="cluster", namespace=backend.namespace + "o")
    try:
        await other.set_many(dict.fromkeys(KEYS[:50], "other"))
        await backend.set_many(dict.fromkeys(KEYS[:50], "mine"))
        await backend.flush()
        assert await other.get_many(KEYS[:50]) == ["other"] * 50
        assert sorted(await raw_keys(raw, other.namespace)) == sorted(KEYS[:50])
        assert await raw_keys(raw, backend.namespace) == []
    finally:
        await other.flush()
        await close_backend(other)


async def test_seed_list_urls_and_a_dead_seed(cluster: RedisCluster, namespace: str) -> None:
    ports = [port for _, port in cluster.startup_nodes]
    dead = free_port()  # nothing listens there
    for url in (
        f"redis://{HOST}:{ports[0]},{HOST}:{ports[3]}",
        f"redis://{HOST}:{dead},{HOST}:{ports[1]}",
    ):
        backend = RedisBackend(url, mode="cluster", namespace=namespace)
        try:
            await backend.set_many(dict.fromkeys(KEYS[:30], url))
            assert await backend.get_many(KEYS[:30]) == [url] * 30
        finally:
            await backend.flush()
            await close_backend(backend)


async def test_cached_on_a_cluster(backend: RedisBackend) -> None:
    calls = 0

    @cached(ttl=60, key_prefix="sq", backend=backend)
    async def square(x: int) -> int:
        nonlocal calls
        calls += 1
        return x * x

    assert [await square(x) for x in range(60)] == [x * x for x in range(60)]
    assert [await square(x) for x in range(60)] == [x * x for x in range(60)]
    assert calls == 60
    assert square.cache_stats.hits == 60
    assert square.cache_stats.errors == 0
    assert await square.invalidate(7) is True
    assert await square(7) == 49
    assert calls == 61


async def test_a_burst_beyond_max_connections_waits_for_a_connection(
    cluster: RedisCluster, namespace: str
) -> None:
    """As CACHE_REDIS_POOL_TIMEOUT promises: callers queue for a connection, they do not fail."""
    backend = RedisBackend(
        cluster.url, mode="cluster", namespace=namespace, max_connections=2, pool_timeout=2.0
    )
    try:
        results = await asyncio.gather(*(backend.set(key, "v") for key in KEYS[:60]), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert failed == [], (
            f"{len(failed)} of 60 calls failed, e.g. {failed[0]!r} from {failed[0].__cause__!r}"
        )
    finally:
        with contextlib.suppress(CacheBackendError):  # the breaker may be open now
            await backend.flush()
        await close_backend(backend)


async def test_close_is_clean(cluster: RedisCluster, namespace: str) -> None:
    """close() of a cluster backend releases its connections and raises nothing."""
    backend = RedisBackend(cluster.url, mode="cluster", namespace=namespace)
    await backend.set("k", "v")
    await backend.close()  # fails today: RedisCluster has no connection_pool
    await backend.close()  # idempotent
    assert await backend.get("k") == "v"  # and init() again on the next call
    await backend.delete("k")
    await close_backend(backend)


async def test_the_backend_follows_a_primary_failover(cluster: RedisCluster, backend: RedisBackend) -> None:
    await backend.set_many(dict.fromkeys(KEYS, "before"))
    victim = primary_of(cluster, f"{backend.namespace}:{KEYS[0]}")
    await asyncio.to_thread(wait_for_replication, victim, cluster.replicas_of(victim)[0])
    promoted = await asyncio.to_thread(cluster.failover, victim, how="pause", promote="takeover")
    assert promoted.port != victim.port

    started = time.monotonic()
    last_error: Exception | None = None
    for _ in range(200):  # at most ~10 s
        try:
            await backend.set(KEYS[0], "after")
            assert await backend.get(KEYS[0]) == "after"
            break
        except CacheBackendError as exc:
            last_error = exc
            await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the backend never reached the new primary: {last_error!r}")
    assert time.monotonic() - started < 5.0
    assert await backend.get_many(KEYS[1:]) == ["before"] * (len(KEYS) - 1)  # replicated in time
    assert primary_of(cluster, f"{backend.namespace}:{KEYS[0]}").port == promoted.port
