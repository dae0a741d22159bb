"""What the fault tests share: servers started once, healing between tests, a load generator.

``tests/faults/conftest.py`` turns the shared servers into fixtures for this folder, and
``tests/test_redis_cluster.py`` / ``tests/test_redis_sentinel.py`` use the same ones
(conftest fixtures are not visible outside their folder), so one pytest session starts
at most one cluster and one Sentinel set-up, whoever asks first.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from ignite_cache import CacheBackend, RedisBackend, cached
from support.servers import RedisCluster, RedisSentinelSetup, RedisServer

# --- the bounds every Redis fault test is held to ------------------------------------------------

SOCKET_TIMEOUT = 0.25
"""RedisBackend's default socket and connect timeout (``CACHE_REDIS_SOCKET_TIMEOUT``)."""
RETRIES = 2
"""RedisBackend's default retries of a connection error or timeout (``CACHE_REDIS_RETRIES``)."""
BACKOFF_CAP = 0.1
"""The jittered backoff between two tries is at most this (``_redis_client.make_client``)."""
OP_BOUND = SOCKET_TIMEOUT * (RETRIES + 1) + BACKOFF_CAP * RETRIES
"""Worst case of one backend call against a server that does not answer: 0.95 s."""
MARGIN = 1.0
"""Slack for a loaded 2-core CI machine (scheduling, redis-py's own work, reconnects)."""
OP_LIMIT = OP_BOUND + MARGIN
"""What one direct backend call may take, at most, whatever the fault: 1.95 s."""
CALL_LIMIT = 2.5
"""What one ``@cached`` call may take (a GET and a SET, each OP_BOUND, plus 0.6 s): 2.5 s."""
FIRST_HIT_LIMIT = 6.0
"""Recovery to the first cache hit: breaker cool-down (2 s) + a probe + a generous margin."""


# --- one cluster and one Sentinel set-up per session ------------------------------------------------

T = TypeVar("T", RedisCluster, RedisSentinelSetup)


class SharedServers(Generic[T]):
    """Started by the first ``acquire()``, closed by the ``release()`` that balances the last one."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._users = 0
        self._lock = threading.Lock()

    def acquire(self) -> T:
        with self._lock:
            if self._value is None:
                self._value = self._factory().start()
            self._users += 1
            return self._value

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._value is not None:
                value, self._value = self._value, None
                value.close()


shared_cluster: SharedServers[RedisCluster] = SharedServers(RedisCluster)
shared_sentinel: SharedServers[RedisSentinelSetup] = SharedServers(RedisSentinelSetup)


def _revive(servers: Sequence[RedisServer]) -> None:
    for server in servers:
        if server.is_paused:
            server.resume()
        elif not server.is_running:
            server.start()


def heal_cluster(cluster: RedisCluster, timeout: float = 20.0) -> None:
    """Resume paused nodes, restart killed ones, and wait until the cluster is healthy again."""
    _revive(cluster.nodes)
    cluster.wait_until_ok(timeout=timeout)


def heal_sentinel(setup: RedisSentinelSetup, timeout: float = 20.0) -> None:
    """Resume or restart every server and wait until the replica is in sync and Sentinel agrees.

    If Sentinel failed over on its own (a test that failed half-way, a frozen Sentinel that
    woke up and judged the primary down), ``setup.primary`` / ``setup.replica`` are swapped
    to match it once that failover has ended.
    """
    _revive(setup.servers)
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.05) + 1):
        reply = setup.sentinel.command("SENTINEL", "MASTER", setup.service_name)
        assert isinstance(reply, list)
        master = dict(zip(map(str, reply[::2]), map(str, reply[1::2]), strict=True))
        if master.get("flags") == "master":  # no failover in progress
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    else:
        master = {}
    if master.get("flags") != "master":
        raise AssertionError(f"Sentinel still failing over after {timeout} s: {master}")
    if master.get("port") == str(setup.replica.port):
        setup.primary, setup.replica = setup.replica, setup.primary
    setup.wait_until_replicating(timeout=max(1.0, deadline - time.monotonic()))


def cluster_slot_ranges(node: RedisServer) -> list[tuple[int, int]]:
    """The slot ranges ``node`` serves as a primary, per its own ``CLUSTER SLOTS``."""
    ranges = []
    reply = node.command("CLUSTER", "SLOTS")
    assert isinstance(reply, list)
    for entry in reply:
        assert isinstance(entry, list)
        start, end, owner = entry[0], entry[1], entry[2]
        assert isinstance(start, int)
        assert isinstance(end, int)
        assert isinstance(owner, list)
        if owner[1] == node.port:
            ranges.append((start, end))
    return ranges


def key_slot(name: str) -> int:
    from redis.crc import key_slot as crc_slot

    return int(crc_slot(name.encode()))


async def close_backend(backend: CacheBackend) -> None:
    """``backend.close()``, working around two known ``RedisBackend.close()`` bugs.

    * Cluster: ``_close`` calls ``client.connection_pool.disconnect()``, which a
      ``RedisCluster`` client does not have (AttributeError); by then ``client.aclose()``
      has already released every connection.
    * Sentinel: ``_close`` never closes the connections to the Sentinels themselves, and
      each leaked socket is a ResourceWarning that pytest turns into an error in whichever
      test happens to be running when it is garbage-collected.

    ``test_close_is_clean`` in ``test_redis_cluster.py`` and ``test_redis_sentinel.py``
    report the bugs; fixtures must not turn them into errors in every other test.
    """
    sentinels: list[Any] = []
    if isinstance(backend, RedisBackend) and backend.mode == "sentinel" and backend._client is not None:
        sentinels = list(backend._client.connection_pool.sentinel_manager.sentinels)
    try:
        with contextlib.suppress(AttributeError):
            await backend.close()
    finally:
        for client in sentinels:
            await client.aclose()


# --- the load generator --------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one fault scenario measured (written to the JSON report and docs/faults.md)."""

    scenario: str
    fault: str = ""
    calls: int = 0
    calls_correct: int = 0
    errors_to_caller: int = 0
    slowest_call_s: float = 0.0
    fault_window_s: float = 0.0
    recovery_to_first_hit_s: float | None = None
    cache_hits: int = 0
    cache_misses: int = 0
    cache_errors_absorbed: int = 0
    breaker_opens: int = 0
    keys: int = 0
    tasks: int = 0
    error_samples: list[str] = field(default_factory=list)
    wrong_samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("slowest_call_s", "fault_window_s", "recovery_to_first_hit_s"):
            if data[name] is not None:
                data[name] = round(data[name], 3)
        return data


def make_square(backend: CacheBackend) -> Any:
    """A fresh ``@cached async def square(x)`` on ``backend`` (its own stats and key prefix)."""

    @cached(ttl=300, key_prefix=f"sq{uuid.uuid4().hex[:8]}", backend=backend)
    async def square(x: int) -> int:
        await asyncio.sleep(0.001)
        return x * x

    return square


async def run_scenario(
    figures: Figures,
    backend: RedisBackend,
    xs: Sequence[int],
    fault: Callable[[], Awaitable[None]],
    *,
    square: Any = None,
    tasks: int = 20,
    pace: float = 0.004,
    warmup: float = 0.6,
    after: float = 0.5,
    max_calls_per_task: int = 5000,
    first_hit_timeout: float = 15.0,
    deadline: float = 60.0,
) -> Figures:
    """Run ``tasks`` loops of ``square(x)`` calls over ``xs`` while ``fault()`` breaks and heals Redis.

    ``fault()`` returns when Redis has recovered (a resumed or restarted server, a promoted
    replica). The figures then get the time from that moment to the next cache hit, and
    the load goes on for ``after`` seconds. Every loop here is bounded by a count and by
    ``deadline`` seconds.
    """
    square = square if square is not None else make_square(backend)
    stats = square.cache_stats
    figures.keys, figures.tasks = len(xs), tasks
    stop = asyncio.Event()

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(max_calls_per_task):
            if stop.is_set():
                return
            x = rng.choice(xs)
            started = time.monotonic()
            try:
                value = await square(x)
            except Exception as exc:
                figures.errors_to_caller += 1
                if len(figures.error_samples) < 5:
                    figures.error_samples.append(repr(exc)[:300])
            else:
                if value == x * x:
                    figures.calls_correct += 1
                elif len(figures.wrong_samples) < 5:
                    figures.wrong_samples.append(f"square({x}) returned {value!r}")
            finally:
                figures.calls += 1
                figures.slowest_call_s = max(figures.slowest_call_s, time.monotonic() - started)
            await asyncio.sleep(pace)

    workers = [asyncio.create_task(worker(seed)) for seed in range(tasks)]
    try:
        async with asyncio.timeout(deadline):
            await asyncio.sleep(warmup)
            assert stats.hits > 0, f"no cache hit during the warm-up: {stats}"
            started = time.monotonic()
            await fault()
            recovered = time.monotonic()
            figures.fault_window_s = recovered - started
            hits = stats.hits
            for _ in range(int(first_hit_timeout / 0.005)):
                if stats.hits > hits or time.monotonic() - recovered > first_hit_timeout:
                    break
                await asyncio.sleep(0.005)
            if stats.hits > hits:
                figures.recovery_to_first_hit_s = time.monotonic() - recovered
            await asyncio.sleep(after)
    finally:
        stop.set()
        _, pending = await asyncio.wait(workers, timeout=3 * CALL_LIMIT)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        figures.cache_hits, figures.cache_misses = stats.hits, stats.misses
        figures.cache_errors_absorbed = stats.errors
        figures.breaker_opens = backend.breaker.opens
    return figures


def check_figures(figures: Figures) -> None:
    """The scenario's promises: right values, no errors, bounded calls, hits soon after recovery."""
    assert figures.calls > 0
    assert figures.wrong_samples == [], figures.wrong_samples
    assert figures.errors_to_caller == 0, figures.error_samples
    assert figures.calls_correct == figures.calls
    assert figures.slowest_call_s <= CALL_LIMIT, figures.as_dict()
    assert figures.recovery_to_first_hit_s is not None, f"no cache hit after recovery: {figures.as_dict()}"
    assert figures.recovery_to_first_hit_s <= FIRST_HIT_LIMIT, figures.as_dict()
