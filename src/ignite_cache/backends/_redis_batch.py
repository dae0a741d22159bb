"""How values and reads travel to Redis: the value codec, and concurrent GETs coalesced
into one MGET (the Redis backend's answer to load).

A GET costs redis-py tens of microseconds of Python work per command (pool, stream,
parser) and the network round trip. When many coroutines read at once, sending their
keys as one ``MGET`` pays those costs once per batch. The batcher only engages when a
read is already in flight, so a lone caller still sends a plain ``GET`` and pays no
queueing. Each batch runs in a task of its own: a caller that is cancelled abandons its
future, never a half-read reply on a shared connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._types import Value

_MAX_BATCH = 512
_TAG_BYTES = b"\x00b"
_TAG_STR = b"\x00s"


def encode(value: Value) -> bytes:
    """A value as stored in Redis: UTF-8 for ``str``, tagged for ``bytes`` (see redis.py)."""
    if type(value) is bytes:
        return _TAG_BYTES + value
    data = value.encode()  # type: ignore[union-attr]  # check_value left only str here
    return _TAG_STR + data if data[:1] == b"\x00" else data


def decode(data: bytes) -> Value:
    """The value a stored reply holds; foreign non-UTF-8 data reads back as ``bytes``."""
    if data[:1] == b"\x00":
        tag = data[:2]
        if tag == _TAG_BYTES:
            return data[2:]
        if tag == _TAG_STR:
            return data[2:].decode()
        return data
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


class GetBatcher:
    """Collects the keys requested during one event-loop tick and reads them with MGET."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.in_flight = 0
        self._keys: list[str] = []
        self._futures: list[asyncio.Future[bytes | None]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run
        self.batches = 0
        """MGETs sent (a counter for tests and metrics)."""

    async def get(self, name: str) -> bytes | None:
        if not self.in_flight:  # nobody else is reading: a plain GET is fastest
            self.in_flight += 1
            try:
                data: bytes | None = await self.client.get(name)
            finally:
                self.in_flight -= 1
            return data
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes | None] = loop.create_future()
        if not self._keys:
            loop.call_soon(self._flush)
        self._keys.append(name)
        self._futures.append(future)
        return await future

    def _flush(self) -> None:
        keys, futures = self._keys, self._futures
        self._keys, self._futures = [], []
        for i in range(0, len(keys), _MAX_BATCH):
            task = asyncio.ensure_future(self._mget(keys[i : i + _MAX_BATCH], futures[i : i + _MAX_BATCH]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _mget(self, keys: list[str], futures: list[asyncio.Future[bytes | None]]) -> None:
        self.in_flight += 1
        self.batches += 1
        try:
            values = await self.client.mget(keys)
        except BaseException as exc:  # hand the failure to every waiting caller
            for future in futures:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
        else:
            for future, value in zip(futures, values, strict=True):
                if not future.done():
                    future.set_result(value)
        finally:
            self.in_flight -= 1


class PlainGets:
    """The batcher's interface without batching (Redis Cluster)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def get(self, name: str) -> bytes | None:
        data: bytes | None = await self.client.get(name)
        return data
