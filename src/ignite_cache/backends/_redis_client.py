"""Building the redis-py client for each deployment: one server, Sentinel, or Cluster.

Kept apart from ``RedisBackend`` so that the backend's operations read the same for all
three; redis-py is imported here, lazily, with an error that names the extra to install.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from ..errors import CacheBackendError, CacheConfigError

T = TypeVar("T")


def import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("RedisBackend needs redis-py: pip install 'ignite-cache[redis]'") from exc
    return redis


def hosts_of(url: str) -> list[tuple[str, int]]:
    """The ``host:port`` pairs of a URL whose netloc may list several (Sentinel, Cluster)."""
    netloc = urlsplit(url).netloc.rpartition("@")[2]
    hosts = []
    for item in netloc.split(","):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            hosts.append((host.strip("[]") or "127.0.0.1", int(port or 6379)))
        except ValueError:
            raise CacheConfigError(f"CACHE_REDIS_URL has an unreadable host {item!r}.") from None
    return hosts


def make_client(url: str, *, mode: str, service: str, options: dict[str, Any]) -> Any:
    """A redis-py asyncio client for ``mode``; connections are opened lazily."""
    redis = import_redis()
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialWithJitterBackoff

    opts = dict(options)
    retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), int(opts.pop("retries")))
    pool_timeout = opts.pop("timeout")
    parts = urlsplit(url)
    opts["username"] = unquote(parts.username) if parts.username else None
    opts["password"] = unquote(parts.password) if parts.password else None
    if mode == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        return RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in hosts_of(url)],
            retry=retry,
            ssl=parts.scheme == "rediss",
            **opts,
        )
    if mode == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        sockets = {k: v for k, v in opts.items() if k.startswith("socket_")}
        sockets["password"] = opts["password"]
        from redis.backoff import NoBackoff

        sockets["retry"] = Retry(NoBackoff(), 0)  # ask each Sentinel once; our own retry repeats
        sentinel = Sentinel(hosts_of(url), sentinel_kwargs=sockets)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        db = int(parts.path.lstrip("/") or 0)
        return sentinel.master_for(service, retry=retry, db=db, **opts)
    del opts["username"], opts["password"]  # from_url reads them from the URL itself
    pool = _waiting_pool_class().from_url(url, retry=retry, timeout=pool_timeout, **opts)
    return redis.asyncio.Redis(connection_pool=pool)


def _waiting_pool_class() -> Any:
    """redis-py's BlockingConnectionPool, minus its cost when no caller has to wait.

    Its ``get_connection`` takes a condition and arms a timeout on every command, about
    15 µs on this machine's class (a fifth of a local GET). When a connection is idle and
    nobody is queued, taking it needs neither: the event loop runs this check-and-pop
    without a suspension point, so it is atomic. Otherwise the original code runs, with
    its bounded wait. Callers woken later re-check availability themselves (wait_for).
    """
    from redis.asyncio import BlockingConnectionPool

    class WaitingPool(BlockingConnectionPool):
        async def get_connection(self, *args: Any, **options: Any) -> Any:
            available = getattr(self, "_available_connections", None)
            condition = getattr(self, "_condition", None)
            if available and condition is not None and not condition.locked():
                connection = available.pop()
                self._in_use_connections.add(connection)
                try:
                    await self.ensure_connection(connection)
                except BaseException:
                    await self.release(connection)
                    raise
                return connection
            return await super().get_connection(*args, **options)  # type: ignore[no-untyped-call]  # untyped in redis-py

    return WaitingPool


class ClientGate:
    """What redis-py's Cluster and Sentinel clients lack, put in front of every call.

    Their pools raise at once when all connections are busy; the gate queues callers for
    up to ``pool_timeout`` instead, as the standalone pool does, and a caller that waited
    too long gets a ``CacheBackendError`` that does not count toward the circuit breaker
    (Redis did not fail). For Sentinel it also asks, at most once a second, who the primary
    is: redis-py otherwise keeps sending to a demoted primary until its connections drop.
    """

    def __init__(self, client: Any, *, slots: int, timeout: float, sentinel: bool) -> None:
        self.client = client
        self.timeout = timeout
        self.sentinel = sentinel
        self._slots = asyncio.Semaphore(slots)
        self._checked = 0.0

    async def run(self, call: Callable[[], Awaitable[T]]) -> T:
        if self.sentinel and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            await self.client.connection_pool.get_master_address()
        if self._slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._slots.acquire()
            except TimeoutError:
                raise CacheBackendError(
                    f"No Redis connection became free within {self.timeout:g} s (pool_timeout)."
                ) from None
        else:
            await self._slots.acquire()
        try:
            return await call()
        finally:
            self._slots.release()
