"""``CacheBackend``: the contract every backend implements (the Strategy interface).

A backend author writes seven primitives: ``get``, ``set``, ``delete``, ``scan``,
``ttl``, ``expire`` and ``incr`` (plus optional ``_open``/``_close`` hooks). Everything
else (``add``, ``get_many``, ``set_many``, ``exists``, ``delete_pattern``, ``flush``) is
built here on those primitives once; a backend overrides one only where its store does
it natively and measurably faster (Redis ``MGET``, SQLite ``DELETE ... GLOB``).

Semantics shared by all backends, pinned down by the conformance suite:

* Keys are non-empty ``str``. Values are ``str`` or ``bytes`` and read back as the same
  type. Both are checked before the store is touched.
* ``ex``/``ttl`` are whole seconds (``int`` or ``timedelta``). Leaving ``ex`` out uses the
  backend's ``default_ttl`` (``CACHE_TTL_SECONDS``); ``ex=None`` means "never expires"
  (the entry can still be evicted by the size bounds). Zero, negative and fractional
  TTLs raise ``InvalidTTLError``.
* ``ttl(key)`` follows Redis: remaining seconds, ``-1`` without expiry, ``-2`` if absent.
* Patterns use Redis's glob dialect on every backend (see ``patterns``), and
  ``flush``/``delete_pattern`` touch only this backend's namespace.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Self

from .._types import DEFAULT_TTL, TTL, Value
from ._validate import check_default_ttl, check_key, check_value

TTL_NO_EXPIRY = -1
"""What ``ttl()`` returns for a key that never expires."""
TTL_MISSING = -2
"""What ``ttl()`` returns for a key that does not exist."""

Cursor = int | str


class CacheBackend(abc.ABC):
    """An asyncio key-value cache with TTLs, glob patterns and a namespace of its own."""

    def __init__(self, *, default_ttl: TTL = 300) -> None:
        self.default_ttl: int | None = check_default_ttl(default_ttl)
        self._initialized = False
        self._init_lock: asyncio.Lock | None = None

    def __bool__(self) -> bool:
        """Always true, even when empty: ``backend or default`` must never drop a backend."""
        return True

    # --- life cycle -----------------------------------------------------------------------

    async def init(self) -> None:
        """Open the store (connect, create tables); idempotent and safe under concurrency."""
        if self._initialized:
            return
        if self._init_lock is None:
            self._init_lock = asyncio.Lock()
        async with self._init_lock:
            if not self._initialized:
                await self._open()
                self._initialized = True

    async def close(self) -> None:
        """Release connections and files; idempotent. ``init()`` may be called again later."""
        if self._initialized:
            self._initialized = False
            await self._close()

    async def _open(self) -> None:
        """Hook: acquire resources. Called once by ``init()``."""

    async def _close(self) -> None:
        """Hook: release resources. Called once by ``close()``."""

    async def __aenter__(self) -> Self:
        await self.init()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- the primitives a backend implements ------------------------------------------------

    @abc.abstractmethod
    async def get(self, key: str) -> Value | None:
        """The value stored at ``key``, or ``None`` if it is absent or expired."""

    @abc.abstractmethod
    async def set(self, key: str, value: Value, ex: TTL = DEFAULT_TTL, *, nx: bool = False) -> bool:
        """Store ``value`` at ``key`` for ``ex`` seconds; with ``nx``, only if ``key`` is absent.

        Returns whether the value was stored: ``False`` with ``nx`` when the key exists,
        and (memory backend) when the value alone exceeds the size bound.
        """

    @abc.abstractmethod
    async def delete(self, *keys: str) -> int:
        """Delete ``keys``; return how many existed."""

    @abc.abstractmethod
    async def scan(
        self, cursor: Cursor = 0, match: str | None = None, count: int | None = None
    ) -> tuple[Cursor, list[str]]:
        """One step of an iteration over keys matching ``match``, as Redis ``SCAN``.

        Start with cursor ``0`` and call again with the returned cursor until it is ``0``.
        Every key present for the whole iteration is returned exactly once. Memory
        cursors name a snapshot: ``flush()`` or more than 16 open iterations expire them
        (``CacheError``: start again from 0); file and Redis cursors never expire.
        """

    @abc.abstractmethod
    async def ttl(self, key: str) -> int:
        """Seconds until ``key`` expires, ``-1`` if it never does, ``-2`` if it is absent."""

    @abc.abstractmethod
    async def expire(self, key: str, ttl: TTL) -> bool:
        """Give ``key`` a new TTL (``None`` removes its expiry); ``False`` if it is absent."""

    @abc.abstractmethod
    async def incr(self, key: str, amount: int = 1) -> int:
        """Add ``amount`` to the integer at ``key`` (absent counts as 0) and return the result.

        As in Redis, an existing key keeps its TTL and a key created here never expires.
        """

    # --- built on the primitives ------------------------------------------------------------

    async def ping(self) -> bool:
        """Whether the store answers now (for readiness probes); never raises."""
        try:
            await self.ttl("__ping__")
        except Exception:
            return False
        return True

    async def add(self, key: str, value: Value, ex: TTL = DEFAULT_TTL) -> bool:
        """Store ``value`` only if ``key`` is absent (a lock primitive); return whether it did."""
        return await self.set(key, value, ex, nx=True)

    async def get_many(self, keys: Iterable[str]) -> list[Value | None]:
        """The values of ``keys``, in order, ``None`` for each miss."""
        return [await self.get(key) for key in keys]

    async def set_many(self, mapping: Mapping[str, Value], ex: TTL = DEFAULT_TTL) -> bool:
        """Store every item of ``mapping`` with the same TTL."""
        for key, value in mapping.items():
            await self.set(key, value, ex)
        return True

    async def exists(self, *keys: str) -> int:
        """How many of ``keys`` exist (a key named twice counts twice, as in Redis)."""
        return sum([await self.ttl(key) != TTL_MISSING for key in keys])

    async def delete_pattern(self, pattern: str) -> int:
        """Delete every key of this namespace matching the glob ``pattern``; return the count."""
        deleted = 0
        cursor: Cursor = 0
        while True:
            cursor, keys = await self.scan(cursor, match=pattern, count=1000)
            if keys:
                deleted += await self.delete(*keys)
            if cursor in (0, "0"):
                return deleted

    async def flush(self) -> bool:
        """Delete every key of this namespace (never anything outside it)."""
        await self.delete_pattern("*")
        return True


__all__ = ["TTL_MISSING", "TTL_NO_EXPIRY", "CacheBackend", "Cursor", "check_key", "check_value"]
