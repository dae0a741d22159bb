"""RedisBackend(mode="sentinel") behind a real Sentinel, through failovers.

The set-up (a primary, a replica and one Sentinel, quorum 1) is started once per session.
The backend is given only the Sentinel's address and the service name; after a failover
it has to find the promoted replica on its own, within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from faults.harness import OP_LIMIT, close_backend
from ignite_cache import CacheBackendError, RedisBackend
from support.servers import HOST, RedisSentinelSetup, RedisServer, free_port

pytestmark = [pytest.mark.redis, pytest.mark.sentinel]

FOLLOW_LIMIT = 5.0
"""Seconds from the end of a failover until the backend serves again (breaker cool-down 2 s)."""


@pytest.fixture
def setup(healthy_sentinel: RedisSentinelSetup) -> RedisSentinelSetup:
    return healthy_sentinel


def sentinel_url(setup: RedisSentinelSetup) -> str:
    return f"redis://{HOST}:{setup.sentinel.port}/0"


@pytest.fixture
async def backend(setup: RedisSentinelSetup) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(
        sentinel_url(setup),
        mode="sentinel",
        sentinel_service=setup.service_name,
        namespace=f"s{uuid.uuid4().hex[:10]}",
    )
    await backend.init()
    try:
        yield backend
    finally:
        try:
            await backend.flush()
        except CacheBackendError:
            pass  # a test left Redis down; the keys die with the private servers
        finally:
            await close_backend(backend)


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


async def until_served(
    backend: RedisBackend, promoted: RedisServer, key: str, limit: float = FOLLOW_LIMIT
) -> float:
    """Write through the backend (every 50 ms, at most ``limit`` s) until the write lands on
    ``promoted`` and reads back; return the seconds that took."""
    started = time.monotonic()
    last: object = None
    for attempt in range(int(limit / 0.05) + 1):
        value = f"after-{attempt}"
        try:
            await backend.set(key, value)
            if (
                await backend.get(key) == value
                and promoted.command("GET", f"{backend.namespace}:{key}") == value
            ):
                return time.monotonic() - started
            last = f"{value!r} did not land on the promoted server"
        except CacheBackendError as exc:
            last = exc
        if time.monotonic() - started > limit:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"the backend did not reach the new primary in {limit} s: {last!r}")


async def test_operations_go_to_the_primary(setup: RedisSentinelSetup, backend: RedisBackend) -> None:
    await backend.set_many({f"k{i}": str(i) for i in range(50)})
    assert await backend.get_many(["k1", "absent", "k49"]) == ["1", None, "49"]
    assert await backend.incr("n", 5) == 5
    assert await backend.add("n", "x") is False
    assert await backend.delete_pattern("k1*") == 11
    assert await backend.exists("k1", "k2") == 1
    assert setup.primary.command("GET", f"{backend.namespace}:k2") == "2"  # on the primary itself
    assert await backend.ping() is True


@pytest.mark.parametrize("trouble", ["refused-first", "unresponsive"])
async def test_asking_sentinel_is_bounded_too(setup: RedisSentinelSetup, trouble: str) -> None:
    """Every call is bounded, the Sentinel queries behind it included.

    ``refused-first``: the first Sentinel of the list is down (nothing listens on its port),
    the second answers: the call succeeds within one call's bound. ``unresponsive``: the
    only Sentinel accepts connections but never answers (a listening socket nobody
    serves, like a frozen host): the call fails with CacheBackendError within that bound.
    """
    with socket.socket() as black_hole:
        black_hole.bind((HOST, 0))
        black_hole.listen(64)  # the kernel completes connections; nothing ever replies
        if trouble == "refused-first":
            url = f"redis://{HOST}:{free_port()},{HOST}:{setup.sentinel.port}/0"
        else:
            url = f"redis://{HOST}:{black_hole.getsockname()[1]}/0"
        backend = RedisBackend(url, mode="sentinel", sentinel_service=setup.service_name, namespace="bounded")
        try:
            started = time.monotonic()
            try:
                async with asyncio.timeout(OP_LIMIT + 2):  # a broken bound fails the test, not hangs it
                    assert await backend.set("k", "v") is True
                outcome = "stored"
            except CacheBackendError:
                outcome = "CacheBackendError"
            except TimeoutError:
                outcome = "no answer yet, cut off by the test"
            took = time.monotonic() - started
            assert outcome == ("stored" if trouble == "refused-first" else "CacheBackendError")
            assert took < OP_LIMIT, f"{outcome} after {took:.2f} s"
        finally:
            await close_backend(backend)


async def test_a_burst_beyond_max_connections_waits_for_a_connection(setup: RedisSentinelSetup) -> None:
    """As CACHE_REDIS_POOL_TIMEOUT promises: callers queue for a connection, they do not fail."""
    backend = RedisBackend(
        sentinel_url(setup),
        mode="sentinel",
        sentinel_service=setup.service_name,
        namespace=f"s{uuid.uuid4().hex[:10]}",
        max_connections=2,
        pool_timeout=2.0,
    )
    try:
        results = await asyncio.gather(
            *(backend.set(f"k{i}", "v") for i in range(60)), return_exceptions=True
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert failed == [], (
            f"{len(failed)} of 60 calls failed, e.g. {failed[0]!r} from {failed[0].__cause__!r}"
        )
    finally:
        with contextlib.suppress(CacheBackendError):  # the breaker may be open now
            await backend.flush()
        await close_backend(backend)


async def test_close_is_clean(setup: RedisSentinelSetup) -> None:
    """close() releases every connection it opened, the Sentinel's included."""

    def clients(server: RedisServer) -> int:
        return int(server.info("clients")["connected_clients"])  # our own INFO connection counts 1

    before = clients(setup.sentinel)
    backend = RedisBackend(sentinel_url(setup), mode="sentinel", sentinel_service=setup.service_name)
    sentinels = []
    try:
        await backend.set("close-test", "v")
        await backend.delete("close-test")
        sentinels = list(backend.client.connection_pool.sentinel_manager.sentinels)
        assert clients(setup.sentinel) > before
        await backend.close()
        for _ in range(100):  # the server sees the close within a few ms; allow 2 s
            if clients(setup.sentinel) == before:
                break
            await asyncio.sleep(0.02)
        assert clients(setup.sentinel) == before, "close() left connections to the Sentinel open"
    finally:
        for client in sentinels:  # so that the leak, if any, is not a ResourceWarning later
            await client.aclose()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["command", "pause", "kill"])
async def test_the_backend_follows_a_failover(
    setup: RedisSentinelSetup, backend: RedisBackend, how: str
) -> None:
    """Write, fail the primary over (SENTINEL FAILOVER, a frozen or a crashed primary), read on."""
    await backend.set("before", "written before the failover")
    wait_for_replication(setup.primary, setup.replica)
    old = setup.primary

    failover = asyncio.create_task(asyncio.to_thread(setup.failover, how=how))
    # Calls while the primary is gone fail within the bound (or are rejected by the breaker).
    for _ in range(20):
        if failover.done():
            break
        started = time.monotonic()
        with contextlib.suppress(CacheBackendError):
            await backend.get("before")
        assert time.monotonic() - started < 2.0
        await asyncio.sleep(0.05)
    promoted = await failover
    assert promoted.port != old.port

    took = await until_served(backend, promoted, "after")
    assert took < FOLLOW_LIMIT
    assert await backend.get("before") == "written before the failover"
