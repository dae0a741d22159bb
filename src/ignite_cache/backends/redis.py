"""``RedisBackend``: redis-py's asyncio client behind the ``CacheBackend`` contract.

Every key lives under ``{namespace}:``, so ``flush()`` and pattern deletes walk only this
cache's keys, with ``SCAN`` and ``UNLINK`` in batches: never ``KEYS``, never ``FLUSHDB``.
One blocking pool per backend: under a burst, callers wait (bounded by ``pool_timeout``)
for a free connection instead of failing. Timeouts default to cache-sized values (a
cache that waits seconds is worse than no cache) and transient connection errors are
retried a bounded number of times with jittered backoff.

Values: a ``str`` is stored as its UTF-8 bytes, readable by any other Redis client;
``bytes`` are stored behind a two-byte tag (``\\x00b``) so they read back as ``bytes``. A
``str`` that itself starts with NUL is tagged ``\\x00s``. A value written by another
client that is not UTF-8 reads back as ``bytes``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from .._breaker import CircuitBreaker
from .._types import DEFAULT_TTL, TTL, Value
from ..errors import CacheBackendError, CacheConfigError, InvalidValueError
from ._redis_batch import GetBatcher, PlainGets, decode, encode
from ._redis_client import ClientGate, make_client
from ._redis_url import check_redis_url, redact
from ._validate import check_key, check_keys, check_value, ttl_seconds
from .base import CacheBackend, Cursor
from .patterns import escape_pattern, unescape_literal, validate_pattern

P = ParamSpec("P")
T = TypeVar("T")
_B = TypeVar("_B", bound="RedisBackend")

_SCAN_COUNT = 5000
_UNLINK_BATCH = 1000
_NODE_SLOTS = 4096  # cluster scan cursors: node_cursor * _NODE_SLOTS + primary index


def _mapped(
    method: Callable[Concatenate[_B, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[_B, P], Coroutine[Any, Any, T]]:
    """Turn redis-py and socket errors into ``CacheBackendError`` at the backend boundary."""

    @functools.wraps(method)
    async def wrapper(self: _B, /, *args: P.args, **kwargs: P.kwargs) -> T:
        breaker = self.breaker
        if breaker.opened_at is not None:
            breaker.before()
        try:
            if not self._initialized:  # inside the try: a failed lazy init ends a probe too
                await self.init()
            if self._gate is None:
                result = await method(self, *args, **kwargs)
            else:
                result = await self._gate.run(lambda: method(self, *args, **kwargs))
        except self._driver_errors as exc:
            breaker.failed()
            raise CacheBackendError(f"Redis at {self.safe_url} failed: {exc!r}.") from exc
        except BaseException:
            if breaker.probing:  # a probe that ended otherwise (cancelled, bad input)
                breaker.probing = False
            raise
        if breaker.failures:
            breaker.succeeded()
        return result

    return wrapper


class RedisBackend(CacheBackend):
    """A cache shared by every process that uses the same Redis and namespace."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        namespace: str = "ignite",
        default_ttl: TTL = 300,
        mode: str = "standalone",
        sentinel_service: str = "mymaster",
        socket_timeout: float = 0.25,
        connect_timeout: float = 0.25,
        max_connections: int = 64,
        pool_timeout: float = 0.5,
        retries: int = 2,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 2.0,
    ) -> None:
        super().__init__(default_ttl=default_ttl)
        if mode not in ("standalone", "cluster", "sentinel"):
            raise CacheConfigError(
                f"CACHE_REDIS_MODE={mode!r} is invalid: use 'standalone', 'cluster' or 'sentinel'."
            )
        self.mode = mode
        self.sentinel_service = sentinel_service
        self.url = check_redis_url(url, several_hosts=mode != "standalone")
        self.safe_url = redact(url)
        if not namespace or not isinstance(namespace, str):
            raise CacheConfigError(
                "RedisBackend needs a non-empty namespace: flush() and pattern deletes would "
                "otherwise reach every key of the database."
            )
        self.namespace = namespace
        self._prefix = f"{namespace}:"
        self._bprefix = self._prefix.encode()
        self._match_prefix = escape_pattern(self._prefix)
        self._options = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            "max_connections": max_connections,
            "timeout": pool_timeout,
            "retries": retries,
        }
        self._client: Any = None
        self._batcher: Any = None
        self._gate: ClientGate | None = None
        self.breaker = CircuitBreaker(
            f"Redis at {self.safe_url}", threshold=breaker_threshold, cooldown=breaker_cooldown
        )
        self._driver_errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    @property
    def client(self) -> Any:
        """The redis-py client (created on first use; connections open lazily)."""
        if self._client is None:
            self._client = make_client(
                self.url, mode=self.mode, service=self.sentinel_service, options=self._options
            )
            from redis import RedisError

            self._driver_errors = (RedisError, OSError, TimeoutError)
            if self.mode != "standalone":
                self._gate = ClientGate(
                    self._client,
                    slots=int(self._options["max_connections"]),
                    timeout=float(self._options["timeout"]),
                    sentinel=self.mode == "sentinel",
                )
        return self._client

    async def _open(self) -> None:
        breaker = self.breaker
        if breaker.opened_at is not None and not breaker.probing:
            breaker.before()  # an explicit init() while open: do not knock on a failing server
        try:
            await self.client.ping()
        except Exception as exc:
            breaker.failed()
            await self._close()
            raise CacheBackendError(f"Cannot reach Redis at {self.safe_url}: {exc}.") from exc
        if breaker.failures:
            breaker.succeeded()

    async def _close(self) -> None:
        client, self._client = self._client, None
        self._batcher = self._gate = None
        if client is not None:
            await client.aclose()
            pool = getattr(client, "connection_pool", None)  # a RedisCluster has none
            if pool is not None:
                await pool.disconnect()
            for sentinel in getattr(getattr(pool, "sentinel_manager", None), "sentinels", ()):
                await sentinel.aclose()

    async def ping(self) -> bool:
        """Whether Redis answers now (for readiness probes); never raises."""
        try:
            await self.init()  # so that close() releases what ping opened
            return bool(await self.client.ping())
        except Exception:
            return False

    # --- primitives ----------------------------------------------------------------------

    async def get(self, key: str) -> Value | None:
        # The hot path, so _mapped's work is written out here: one coroutine, no wrapper.
        if type(key) is not str or not key or not key.isascii():
            key = check_key(key)
        breaker = self.breaker
        if breaker.opened_at is not None:
            breaker.before()
        try:
            batcher = self._batcher
            if batcher is None:  # inside the try: a failed lazy init ends a probe too
                await self.init()
                batcher = self._make_batcher()
            if self._gate is None:
                data = await batcher.get(self._prefix + key)
            else:
                data = await self._gate.run(lambda: batcher.get(self._prefix + key))
        except self._driver_errors as exc:
            breaker.failed()
            raise CacheBackendError(f"Redis at {self.safe_url} failed: {exc!r}.") from exc
        except BaseException:
            breaker.probing = False
            raise
        if breaker.failures:
            breaker.succeeded()
        return None if data is None else decode(data)

    def _make_batcher(self) -> Any:
        client = self.client
        if self.mode == "cluster":  # MGET cannot span slots: plain GETs, one per command
            self._batcher = PlainGets(client)
        else:
            self._batcher = GetBatcher(client)
        return self._batcher

    @_mapped
    async def set(self, key: str, value: Value, ex: TTL = DEFAULT_TTL, *, nx: bool = False) -> bool:
        key = check_key(key)
        data = encode(check_value(value))
        seconds = ttl_seconds(ex, self.default_ttl)
        return bool(await self.client.set(self._prefix + key, data, ex=seconds, nx=nx))

    @_mapped
    async def delete(self, *keys: str) -> int:
        names = [self._prefix + k for k in check_keys(keys)]
        return int(await self.client.unlink(*names)) if names else 0

    @_mapped
    async def scan(
        self, cursor: Cursor = 0, match: str | None = None, count: int | None = None
    ) -> tuple[Cursor, list[str]]:
        pattern = self._match_prefix + ("*" if match is None else validate_pattern(match))
        if self.mode == "cluster":
            cursor, names = await self._scan_cluster(int(cursor), pattern, count or 100)
        else:
            cursor, names = await self.client.scan(int(cursor), match=pattern, count=count or 100)
        n = len(self._bprefix)
        return int(cursor), [k[n:].decode(errors="surrogateescape") for k in names]

    async def _scan_cluster(self, cursor: int, match: str, count: int) -> tuple[int, list[bytes]]:
        """SCAN one primary at a time; the cursor packs (primary index, that node's cursor)."""
        primaries = sorted(self.client.get_primaries(), key=lambda node: node.name)
        node_cursor, index = divmod(cursor, _NODE_SLOTS)
        if index >= len(primaries):
            return 0, []
        node = primaries[index]
        results = await self.client.scan(node_cursor, match=match, count=count, target_nodes=node)
        # one target node: redis-py returns that node's reply itself, not a dict of replies
        cursors, names = results[node.name] if isinstance(results, dict) else results
        next_cursor = cursors[node.name] if isinstance(cursors, dict) else cursors
        if next_cursor:
            return next_cursor * _NODE_SLOTS + index, names
        return (index + 1 if index + 1 < len(primaries) else 0), names

    @_mapped
    async def ttl(self, key: str) -> int:
        return int(await self.client.ttl(self._prefix + check_key(key)))

    @_mapped
    async def expire(self, key: str, ttl: TTL) -> bool:
        name = self._prefix + check_key(key)
        seconds = ttl_seconds(ttl, self.default_ttl, name="ttl")
        if seconds is not None:
            return bool(await self.client.expire(name, seconds))
        return bool(await self.client.persist(name)) or bool(await self.client.exists(name))

    @_mapped
    async def incr(self, key: str, amount: int = 1) -> int:
        if type(amount) is not int:
            raise InvalidValueError(f"incr() amount must be an int, not {amount!r}.")
        name = self._prefix + check_key(key)
        from redis.exceptions import ResponseError

        try:
            return int(await self.client.incrby(name, amount))
        except ResponseError as exc:
            raise InvalidValueError(f"The value at {key!r} is not an integer ({exc}).") from exc

    # --- native versions of the derived operations --------------------------------------------

    @_mapped
    async def get_many(self, keys: Iterable[str]) -> list[Value | None]:
        names = [self._prefix + k for k in check_keys(list(keys))]
        if not names:
            return []
        client = self.client
        values = await (client.mget_nonatomic(names) if self.mode == "cluster" else client.mget(names))
        return [None if d is None else decode(d) for d in values]

    @_mapped
    async def set_many(self, mapping: Mapping[str, Value], ex: TTL = DEFAULT_TTL) -> bool:
        seconds = ttl_seconds(ex, self.default_ttl)
        items = [(self._prefix + check_key(k), encode(check_value(v))) for k, v in mapping.items()]
        async with self.client.pipeline(transaction=False) as pipe:
            for name, data in items:
                pipe.set(name, data, ex=seconds)
            await pipe.execute()
        return True

    @_mapped
    async def exists(self, *keys: str) -> int:
        names = [self._prefix + k for k in check_keys(keys)]
        return int(await self.client.exists(*names)) if names else 0

    @_mapped
    async def delete_pattern(self, pattern: str) -> int:
        literal = unescape_literal(validate_pattern(pattern))
        if literal is not None:
            return await self.delete(literal) if literal else 0
        return await self._unlink_matching(self._match_prefix + pattern)

    @_mapped
    async def flush(self) -> bool:
        await self._unlink_matching(self._match_prefix + "*")
        return True

    async def _unlink_matching(self, match: str) -> int:
        """SCAN with a large COUNT (few round trips) and UNLINK each batch found."""
        client = self.client
        deleted = 0
        batch: list[bytes] = []
        async for name in client.scan_iter(match=match, count=_SCAN_COUNT):
            batch.append(name)
            if len(batch) >= _UNLINK_BATCH:
                deleted += await client.unlink(*batch)
                batch = []
        if batch:
            deleted += await client.unlink(*batch)
        return deleted
