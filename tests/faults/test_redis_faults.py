"""RedisBackend against a private redis-server that misbehaves on purpose.

Timeouts and retries (a frozen server), reconnection (a killed server, connections the
server closed), cancellation (no reply ever reaches the wrong caller), the error classes
that must fail open (OOM, read-only replica, BUSY script, exhausted pool) and the circuit
breaker. The bounds are the ones ``harness`` derives from the defaults (socket timeout
0.25 s, 2 retries) with a generous margin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions as rex

from ignite_cache import CacheBackendError, CacheUnavailableError, RedisBackend, cached
from support.proxy import DelayProxy
from support.servers import RedisServer, RespError

from .harness import CALL_LIMIT, OP_LIMIT, close_backend

pytestmark = pytest.mark.redis

FAST = 0.1
"""A call the breaker rejects, or one against a refused port, returns within this."""


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer(name="faults") as server:
        yield server


@pytest.fixture
def namespace() -> str:
    return f"f{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def backends() -> AsyncIterator[list[RedisBackend]]:
    """Backends a test creates are appended here and closed afterwards."""
    created: list[RedisBackend] = []
    yield created
    for backend in created:
        await close_backend(backend)


def cached_square(backend: RedisBackend) -> Any:
    @cached(ttl=60, key_prefix="sq", backend=backend)
    async def square(x: int) -> int:
        await asyncio.sleep(0.001)
        return x * x

    return square


async def timed(awaitable: Any) -> tuple[Any, float]:
    started = time.monotonic()
    result = await awaitable
    return result, time.monotonic() - started


async def raises_within(
    limit: float, awaitable: Any, error: type[Exception] = CacheBackendError
) -> Exception:
    """Await ``awaitable``; it must raise ``error`` within ``limit`` seconds. Returns the error."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit + 2):  # a broken bound fails the test instead of hanging it
            await awaitable
    except error as exc:
        took = time.monotonic() - started
        assert took < limit, f"{error.__name__} after {took:.3f} s (bound {limit} s)"
        return exc
    except TimeoutError:
        raise AssertionError(f"no answer after {limit + 2:.2f} s (bound {limit} s)") from None
    raise AssertionError(f"did not raise {error.__name__}")


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        if await predicate():
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def connected_clients(server: RedisServer) -> int:
    return int(server.info("clients")["connected_clients"])


# --- timeouts, retries, reconnection --------------------------------------------------------------


async def test_get_against_a_paused_server_is_bounded(
    server: RedisServer, namespace: str, backends: list[RedisBackend]
) -> None:
    backend = RedisBackend(server.url, namespace=namespace)  # the defaults: 0.25 s, 2 retries
    backends.append(backend)
    square = cached_square(backend)
    await backend.set("k", "v")
    assert await square(3) == 9
    server.pause()
    try:
        error = await raises_within(OP_LIMIT, backend.get("k"))
        assert isinstance(error.__cause__, rex.TimeoutError | TimeoutError)
        await raises_within(OP_LIMIT, backend.set("k", "w"))
        value, took = await timed(square(4))  # its GET times out: computed instead
        assert value == 16
        assert took < CALL_LIMIT
    finally:
        server.resume()
    assert await backend.get("k") == "v"  # the same backend, no restart
    assert await square(3) == 9


async def test_the_backend_reconnects_after_the_server_restarts(
    server: RedisServer, namespace: str, backends: list[RedisBackend]
) -> None:
    backend = RedisBackend(server.url, namespace=namespace)
    backends.append(backend)
    await asyncio.gather(*(backend.set(f"k{i}", "v") for i in range(10)))  # several pooled connections

    server.kill()
    for _ in range(2):  # below the breaker's threshold
        await raises_within(OP_LIMIT, backend.get("k1"))
    server.start()  # same port, empty (no persistence)
    assert await backend.get("k1") is None  # the first call after the restart already works
    assert await backend.set("k1", "again") is True
    assert await backend.get("k1") == "again"

    server.restart(graceful=False)  # and with nobody calling while it was down
    results = await asyncio.gather(*(backend.get(f"k{i}") for i in range(10)))
    assert results == [None] * 10
    assert backend.breaker.state == "closed"


@pytest.mark.parametrize("how", ["client-kill", "idle-timeout"])
async def test_connections_the_server_closed_are_replaced_silently(
    namespace: str, backends: list[RedisBackend], how: str
) -> None:
    args = ["--timeout", "1"] if how == "idle-timeout" else []
    with RedisServer(name="faults-idle", args=args) as server:
        backend = RedisBackend(server.url, namespace=namespace)
        backends.append(backend)
        await asyncio.gather(*(backend.set(f"k{i}", str(i)) for i in range(20)))
        await asyncio.gather(*(backend.get(f"k{i}") for i in range(20)))
        assert connected_clients(server) > 2

        if how == "client-kill":
            killed = server.command("CLIENT", "KILL", "TYPE", "normal")
            assert isinstance(killed, int)
            assert killed >= 2
        else:  # the server drops connections idle for 1 s; wait until it has dropped them all

            async def all_dropped() -> bool:
                return connected_clients(server) == 1  # the INFO connection itself

            await wait_until(all_dropped, 6.0, "the server to close idle connections")

        # Not one error reaches the caller: stale connections are noticed and replaced.
        assert [await backend.get(f"k{i}") for i in range(5)] == [str(i) for i in range(5)]
        got = await asyncio.gather(*(backend.get(f"k{i}") for i in range(20)))
        assert got == [str(i) for i in range(20)]
        assert await backend.set("after", "1") is True
        assert backend.breaker.failures == 0


# --- cancellation ---------------------------------------------------------------------------------------


async def test_a_cancellation_storm_never_hands_out_another_requests_reply(
    server: RedisServer, namespace: str, backends: list[RedisBackend]
) -> None:
    """Hundreds of concurrent get/set of distinct keys, random ones cancelled mid-call.

    Each key's value names its key, and every write writes that same value, so any get
    that completes must return exactly its own key's value: a reply meant for another
    request (the classic cancelled-read bug) would show up as a foreign value.
    """
    n = 300
    raw = aioredis.Redis.from_url(server.url)
    try:
        await raw.mset({f"{namespace}:key-{i}": f"value-of-key-{i}" for i in range(n)})
    finally:
        await raw.aclose()

    rng = random.Random(20240601)
    completed_gets = wrong = cancelled = 0
    samples: list[str] = []
    async with DelayProxy("127.0.0.1", server.port, delay=0.01) as proxy:
        backend = RedisBackend(proxy.url, namespace=namespace, max_connections=32, breaker_threshold=10**6)
        backends.append(backend)

        async def worker(i: int) -> None:
            nonlocal completed_gets, wrong
            for _ in range(3):
                if rng.random() < 0.3:
                    await backend.set(f"key-{i}", f"value-of-key-{i}")
                else:
                    value = await backend.get(f"key-{i}")
                    completed_gets += 1
                    if value != f"value-of-key-{i}":
                        wrong += 1
                        if len(samples) < 5:
                            samples.append(f"key-{i} got {value!r}")

        for delay in (0.005, 0.01, 0.02):
            proxy.delay = delay
            tasks = [asyncio.create_task(worker(i)) for i in range(n)]

            async def cancel_some(tasks: list[asyncio.Task[None]] = tasks) -> None:
                for _ in range(150):
                    await asyncio.sleep(rng.uniform(0, 0.004))
                    rng.choice(tasks).cancel()

            canceller = asyncio.create_task(cancel_some())
            async with asyncio.timeout(30):
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
                await canceller
            cancelled += sum(isinstance(o, asyncio.CancelledError) for o in outcomes)
            errors = [
                o
                for o in outcomes
                if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)
            ]
            assert errors == []

        proxy.delay = 0.0
        # After the storm: no connection is left half-read, the pool is whole.
        got = await asyncio.gather(*(backend.get(f"key-{i}") for i in range(n)))
        assert got == [f"value-of-key-{i}" for i in range(n)]
        assert await backend.get_many([f"key-{i}" for i in range(50)]) == [
            f"value-of-key-{i}" for i in range(50)
        ]
        await close_backend(backend)
        for _ in range(100):  # let the proxy see every client close before it stops
            if proxy.connection_count == 0:
                break
            await asyncio.sleep(0.02)

    assert cancelled >= 60, "the storm cancelled too few calls to mean anything"
    assert completed_gets >= 600
    assert wrong == 0, samples


# --- error classes that fail open ------------------------------------------------------------------


async def test_out_of_memory_fails_open(
    server: RedisServer, namespace: str, backends: list[RedisBackend]
) -> None:
    backend = RedisBackend(server.url, namespace=namespace)
    backends.append(backend)
    square = cached_square(backend)
    await backend.set("old", "kept")
    used = int(server.info("memory")["used_memory"])
    server.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    server.command("CONFIG", "SET", "maxmemory", str(used + 1024 * 1024))  # 1 MiB of room
    try:
        refused: RespError | None = None
        for i in range(100):  # at most 100 x 64 KiB: well past the limit
            try:
                server.command("SET", f"{namespace}:fill-{i}", "x" * 65536)
            except RespError as exc:
                refused = exc
                break
        assert refused is not None, "the server never ran out of memory"
        assert str(refused).startswith("OOM")
        # At the very edge a small write still slips in whenever a freed query buffer takes
        # the usage back under the limit; a limit just under the usage refuses every write.
        used = int(server.info("memory")["used_memory"])
        server.command("CONFIG", "SET", "maxmemory", str(used - 64 * 1024))

        error = await raises_within(OP_LIMIT, backend.set("new", "v"))
        assert isinstance(error.__cause__, rex.OutOfMemoryError)
        assert await backend.get("old") == "kept"  # reads still work
        assert await square(5) == 25  # computed; the failed write is absorbed
        assert await square(5) == 25
        assert square.cache_stats.errors >= 1
    finally:
        server.command("CONFIG", "SET", "maxmemory", "0")
    assert await backend.set("new", "v") is True


async def test_a_read_only_replica_fails_writes_open(
    server: RedisServer, namespace: str, backends: list[RedisBackend]
) -> None:
    with RedisServer(name="faults-replica", replica_of=server) as replica:
        server.command("SET", f"{namespace}:k", "from the primary")
        for _ in range(250):  # at most ~5 s
            if replica.command("GET", f"{namespace}:k") is not None:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the replica never synced")

        backend = RedisBackend(replica.url, namespace=namespace)  # pointed at the replica by mistake
        backends.append(backend)
        square = cached_square(backend)
        assert await backend.get("k") == "from the primary"
        error = await raises_within(OP_LIMIT, backend.set("k", "v"))
        assert isinstance(error.__cause__, rex.ReadOnlyError)
        error = await raises_within(OP_LIMIT, backend.delete("k"))
        assert isinstance(error.__cause__, rex.ReadOnlyError)
        assert [await square(6), await square(6)] == [36, 36]
        assert square.cache_stats.errors == 2  # both writes failed, both calls answered


async def test_a_busy_script_fails_fast_then_recovers(
    server: RedisServer, namespace: str, backends: list[RedisBackend]
) -> None:
    backend = RedisBackend(server.url, namespace=namespace)
    backends.append(backend)
    square = cached_square(backend)
    await backend.set("k", "v")
    server.command("CONFIG", "SET", "busy-reply-threshold", "50")  # lua-time-limit, in ms
    script = socket.create_connection(server.address, timeout=5)
    try:
        script.sendall(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n")
        deadline = time.monotonic() + 5
        for _ in range(250):  # until other clients get -BUSY (at most ~5 s)
            try:
                server.command("PING", timeout=0.5)
            except RespError as exc:
                if str(exc).startswith("BUSY"):
                    break
            assert time.monotonic() < deadline, "the script never made the server busy"
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the script never made the server busy")

        error = await raises_within(OP_LIMIT, backend.get("k"))
        assert isinstance(error.__cause__, rex.ResponseError)
        assert "BUSY" in str(error.__cause__)
        value, took = await timed(square(7))
        assert value == 49
        assert took < CALL_LIMIT
        assert server.command("SCRIPT", "KILL") == "OK"
        reply = script.recv(200)  # the script's own client learns that it was killed: not busy now
        assert reply.startswith(b"-"), reply
    finally:
        with contextlib.suppress(RespError, OSError):
            server.command("SCRIPT", "KILL")  # if the test failed before it did
        script.close()
    assert await backend.get("k") == "v"
    assert await square(7) == 49


async def test_an_exhausted_pool_fails_open(
    server: RedisServer, namespace: str, backends: list[RedisBackend]
) -> None:
    async with DelayProxy("127.0.0.1", server.port, delay=0.3) as proxy:
        backend = RedisBackend(
            proxy.url,
            namespace=namespace,
            socket_timeout=1.0,  # slow, but not timing out: the pool is the bottleneck
            max_connections=1,
            pool_timeout=0.05,
            breaker_threshold=1000,
        )
        backends.append(backend)
        square = cached_square(backend)
        await backend.init()

        # One slow call holds the only connection; everyone else waits 50 ms, then fails open.
        holder = asyncio.create_task(backend.set("slow", "v"))
        await asyncio.sleep(0.05)
        outcomes = await asyncio.gather(
            *(backend.set(f"k{i}", "v") for i in range(10)), return_exceptions=True
        )
        errors = [o for o in outcomes if isinstance(o, Exception)]
        assert errors, "no caller found the pool exhausted"
        assert all(isinstance(e, CacheBackendError) for e in errors), errors
        assert all(isinstance(e.__cause__, rex.ConnectionError) for e in errors), [
            e.__cause__ for e in errors
        ]

        assert await holder is True
        holder = asyncio.create_task(backend.set("slow2", "v"))
        await asyncio.sleep(0.05)
        value, took = await timed(square(8))  # its GET gets no connection: computed instead
        assert value == 64
        assert took < CALL_LIMIT
        assert square.cache_stats.errors == 1
        assert await holder is True
        assert await backend.get("slow") == "v"  # the pool works again once the connection is free
        await close_backend(backend)
        for _ in range(100):
            if proxy.connection_count == 0:
                break
            await asyncio.sleep(0.02)


# --- the circuit breaker --------------------------------------------------------------------------------


def breaker_lines(caplog: pytest.LogCaptureFixture, state: str) -> list[str]:
    """The breaker's own log lines (fail-open warnings quote the error, so match the format)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "ignite_cache" and f"circuit breaker {state}" in str(r.msg)
    ]


@pytest.mark.parametrize("how", ["dead", "paused"])
async def test_the_breaker_opens_fails_fast_and_closes_after_recovery(
    server: RedisServer,
    namespace: str,
    backends: list[RedisBackend],
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    threshold, cooldown = 3, 0.6
    backend = RedisBackend(
        server.url, namespace=namespace, breaker_threshold=threshold, breaker_cooldown=cooldown
    )
    backends.append(backend)
    square = cached_square(backend)
    await backend.set("k", "v")
    assert await square(2) == 4
    caplog.set_level(logging.INFO, logger="ignite_cache")

    if how == "dead":
        server.kill()
    else:
        server.pause()
    try:
        # `threshold` failures, concurrently: each takes the full timeout if the server is frozen.
        outcomes = await asyncio.gather(
            *(raises_within(OP_LIMIT, backend.get(f"x{i}")) for i in range(threshold))
        )
        assert not any(isinstance(e, CacheUnavailableError) for e in outcomes)
        assert backend.breaker.state == "open"

        # Open: every call fails at once, without touching the network.
        for call in (backend.get("k"), backend.set("k", "w"), backend.delete("k"), backend.get_many(["k"])):
            error = await raises_within(FAST, call, CacheUnavailableError)
            assert isinstance(error, CacheBackendError)
        value, took = await timed(square(3))  # @cached computes at once
        assert value == 9
        assert took < FAST + 0.1

        # After the cool-down one probe goes through; it fails (still down) and reopens.
        await asyncio.sleep(cooldown + 0.1)
        probe = await raises_within(OP_LIMIT, backend.get("k"))
        assert not isinstance(probe, CacheUnavailableError)
        assert backend.breaker.state == "open"
        await raises_within(FAST, backend.get("k"), CacheUnavailableError)
    finally:
        if how == "dead":
            server.start()
        else:
            server.resume()

    await asyncio.sleep(cooldown + 0.1)
    # The probe succeeds and closes the breaker (a killed server came back empty).
    assert await backend.get("k") == ("v" if how == "paused" else None)
    assert backend.breaker.state == "closed"
    assert await square(2) == 4
    assert await backend.set("k", "w") is True

    assert len(breaker_lines(caplog, "open")) == 1, caplog.text
    assert len(breaker_lines(caplog, "closed")) == 1, caplog.text
    assert backend.breaker.opens == 1
