"""``MemoryBackend``: a bounded in-process cache with TTLs and LRU eviction.

One ``OrderedDict`` gives O(1) get/set/delete and LRU order; a heap of expiry times lets
expired entries be removed without a full scan, a few on every write and the rest by a
timer, so memory stays bounded even when nobody reads an expired key again. No lock:
every method runs to completion without awaiting, so the event loop already makes each
one atomic. Sizes are approximate: ``len(key) + len(value)`` plus a fixed overhead.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from .._types import DEFAULT_TTL, TTL, Value
from ..errors import CacheConfigError, CacheError, InvalidValueError
from ._validate import check_counter, check_key, check_keys, check_value, parse_counter, ttl_seconds
from .base import TTL_MISSING, TTL_NO_EXPIRY, CacheBackend, Cursor
from .patterns import compile_pattern, literal_prefix, unescape_literal, validate_pattern

ENTRY_OVERHEAD = 100
"""Bytes counted per entry on top of key and value: roughly the dict slot, tuple and heap item."""
_SWEEP_PER_WRITE = 4
_SWEEP_INTERVAL = 1.0
_SWEEP_PER_TICK = 10_000
_MAX_OPEN_SCANS = 16
_CURSOR_BASE = 1 << 40

# value, expiry time on self._clock (None: never), accounted size
_Entry = tuple[Value, float | None, int]


class MemoryBackend(CacheBackend):
    """Per-process cache: the fastest backend, but each worker process has its own copy."""

    def __init__(
        self,
        *,
        max_entries: int = 100_000,
        max_bytes: int = 256 * 1024 * 1024,
        default_ttl: TTL = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(default_ttl=default_ttl)
        if type(max_entries) is not int or max_entries < 1:
            raise CacheConfigError(f"max_entries must be a positive int, not {max_entries!r}.")
        if type(max_bytes) is not int or max_bytes < 1:
            raise CacheConfigError(f"max_bytes must be a positive int, not {max_bytes!r}.")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._data: OrderedDict[str, _Entry] = OrderedDict()
        self._expiries: list[tuple[float, str]] = []
        self._bytes = 0
        self._scans: OrderedDict[int, list[str]] = OrderedDict()
        self._scan_ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size_bytes(self) -> int:
        """Accounted bytes of all entries (expired ones included until they are swept)."""
        return self._bytes

    async def _open(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(_SWEEP_INTERVAL, self._tick)

    async def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self.sweep(_SWEEP_PER_TICK)
        self._timer = asyncio.get_running_loop().call_later(_SWEEP_INTERVAL, self._tick)

    # --- primitives ----------------------------------------------------------------------

    async def get(self, key: str) -> Value | None:
        try:
            entry = self._data.get(key)
        except TypeError:  # unhashable: certainly not a str key
            check_key(key)
            raise
        if entry is None:
            check_key(key)
            return None
        expires = entry[1]
        if expires is not None and expires <= self._clock():
            self._remove(key)
            return None
        self._data.move_to_end(key)
        return entry[0]

    async def set(self, key: str, value: Value, ex: TTL = DEFAULT_TTL, *, nx: bool = False) -> bool:
        if not self._initialized:  # start the expiry sweeper on first use
            await self.init()
        # The common shapes are checked inline; anything else takes the full checks.
        if type(key) is not str or not key.isascii() or not key or "\x00" in key:
            key = check_key(key)
        if type(value) is not bytes and (type(value) is not str or not value.isascii()):
            value = check_value(value)
        if ex is DEFAULT_TTL:
            seconds = self.default_ttl
        elif type(ex) is int and ex > 0:
            seconds = ex
        else:
            seconds = ttl_seconds(ex, self.default_ttl)
        now = self._clock()
        if nx and self._live(key, now) is not None:
            return False
        stored = self._store(key, value, None if seconds is None else now + seconds)
        heap = self._expiries
        if heap and heap[0][0] <= now:
            self.sweep(_SWEEP_PER_WRITE, now)
        return stored

    async def delete(self, *keys: str) -> int:
        names = check_keys(keys)
        now = self._clock()
        deleted = 0
        for key in names:
            if self._live(key, now) is not None:
                deleted += 1
            self._remove(key)
        return deleted

    async def scan(
        self, cursor: Cursor = 0, match: str | None = None, count: int | None = None
    ) -> tuple[Cursor, list[str]]:
        regex = compile_pattern(validate_pattern(match)) if match is not None else None
        scan_id, offset = divmod(int(cursor), _CURSOR_BASE)
        if scan_id == 0:
            scan_id = next(self._scan_ids)
            self._scans[scan_id] = list(self._data)
            if len(self._scans) > _MAX_OPEN_SCANS:
                self._scans.popitem(last=False)  # an abandoned iteration
        snapshot = self._scans.get(scan_id)
        if snapshot is None:
            raise CacheError(f"Scan cursor {cursor} has expired; start again from cursor 0.")
        end = offset + (count or 100)
        now = self._clock()
        keys = [
            k
            for k in snapshot[offset:end]
            if (regex is None or regex.fullmatch(k)) and self._live(k, now) is not None
        ]
        if end >= len(snapshot):
            del self._scans[scan_id]
            return 0, keys
        return scan_id * _CURSOR_BASE + end, keys

    async def ttl(self, key: str) -> int:
        entry = self._live(check_key(key), now := self._clock())
        if entry is None:
            return TTL_MISSING
        if entry[1] is None:
            return TTL_NO_EXPIRY
        return int(entry[1] - now + 0.5)

    async def expire(self, key: str, ttl: TTL) -> bool:
        key = check_key(key)
        seconds = ttl_seconds(ttl, self.default_ttl, name="ttl")
        now = self._clock()
        entry = self._live(key, now)
        if entry is None:
            return False
        self._store(key, entry[0], None if seconds is None else now + seconds, touch=False)
        return True

    async def incr(self, key: str, amount: int = 1) -> int:
        if not self._initialized:
            await self.init()
        key = check_key(key)
        if type(amount) is not int:
            raise InvalidValueError(f"incr() amount must be an int, not {amount!r}.")
        entry = self._live(key, self._clock())
        current = 0 if entry is None else parse_counter(key, entry[0])
        result = check_counter(key, current + amount)
        self._store(key, str(result), None if entry is None else entry[1])
        return result

    # --- native versions of the derived operations --------------------------------------------

    async def set_many(self, mapping: Mapping[str, Value], ex: TTL = DEFAULT_TTL) -> bool:
        if not self._initialized:
            await self.init()
        seconds = ttl_seconds(ex, self.default_ttl)
        items = [(check_key(k), check_value(v)) for k, v in mapping.items()]
        now = self._clock()
        expires = None if seconds is None else now + seconds
        for key, value in items:
            self._store(key, value, expires)
        self.sweep(_SWEEP_PER_WRITE * len(items), now)
        return True

    async def delete_pattern(self, pattern: str) -> int:
        literal = unescape_literal(validate_pattern(pattern))
        if literal is not None:
            return await self.delete(literal) if literal else 0
        fullmatch = compile_pattern(pattern).fullmatch
        now = self._clock()
        prefix = literal_prefix(pattern)
        if prefix:  # str.startswith rejects most keys several times faster than the regex
            doomed = [k for k in self._data if k.startswith(prefix) and fullmatch(k)]
        else:
            doomed = [k for k in self._data if fullmatch(k)]
        live = sum(self._live(k, now) is not None for k in doomed)
        for key in doomed:
            self._remove(key)
        return live

    async def flush(self) -> bool:
        self._data.clear()
        self._expiries.clear()
        self._scans.clear()
        self._bytes = 0
        return True

    # --- bookkeeping ---------------------------------------------------------------------

    def sweep(self, limit: int, now: float | None = None) -> int:
        """Remove up to ``limit`` expired entries, soonest first; return how many."""
        heap = self._expiries
        now = self._clock() if now is None else now
        removed = 0
        while heap and heap[0][0] <= now and removed < limit:
            expires, key = heapq.heappop(heap)
            entry = self._data.get(key)
            if entry is not None and entry[1] == expires:
                self._remove(key)
                removed += 1
        return removed

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._data.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= now:
            self._remove(key)
            return None
        return entry

    def _store(self, key: str, value: Value, expires: float | None, *, touch: bool = True) -> bool:
        """Store an entry; ``False`` (and the key left absent) if it alone exceeds ``max_bytes``."""
        size = len(key) + len(value) + ENTRY_OVERHEAD
        data = self._data
        if size > self.max_bytes:  # cannot fit: keep nothing stale, evict nothing else
            self._remove(key)
            return False
        old = data.get(key)
        if old is not None:
            self._bytes -= old[2]
        data[key] = (value, expires, size)
        if touch:
            data.move_to_end(key)
        self._bytes += size
        if expires is not None:
            heap = self._expiries
            heapq.heappush(heap, (expires, key))
            if len(heap) > 2 * len(data) + 1024:
                self._rebuild_heap()
        if len(data) > self.max_entries or self._bytes > self.max_bytes:
            self._evict()
        return True

    def _remove(self, key: str) -> None:
        entry = self._data.pop(key, None)
        if entry is not None:
            self._bytes -= entry[2]

    def _evict(self) -> None:
        data = self._data
        while data and (len(data) > self.max_entries or self._bytes > self.max_bytes):
            _, entry = data.popitem(last=False)
            self._bytes -= entry[2]

    def _rebuild_heap(self) -> None:
        """Drop heap items whose entry was overwritten or deleted (keeps the heap O(entries))."""
        self._expiries = [(e[1], k) for k, e in self._data.items() if e[1] is not None]
        heapq.heapify(self._expiries)
