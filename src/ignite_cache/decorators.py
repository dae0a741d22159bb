"""``@cached`` (and, re-exported from ``invalidation``, ``@invalidate_cache``).

A cached call: build the key (``keys``) -> ``backend.get`` -> on a hit, decode and return;
on a miss, compute once per key however many callers wait (single flight), encode,
``backend.set``. The cache can only make a call faster, never wrong or failed: a backend
error or an undecodable entry is logged once per incident and the function's own result
is returned (this is the one place where ignite_cache fails open), while an exception
raised by the function propagates unchanged and is never cached.
"""

from __future__ import annotations

import asyncio
import functools
import typing
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from datetime import timedelta
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from ._decorating import PROGRAMMING_ERRORS, bump_epoch, epochs, require_async, unwrap_descriptor
from ._failopen import CacheStats
from ._types import DEFAULT_TTL, TTL
from .backends._validate import ttl_seconds
from .backends.base import CacheBackend
from .errors import CacheConfigError
from .factory import get_cache_backend
from .invalidation import invalidate_cache
from .keys import KeyMaker
from .serialization import JsonSerializer, Serializer

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class CachedFunction(Protocol[P, R_co]):
    """What ``@cached`` returns: the function, plus handles on its own cache entries."""

    cache_stats: CacheStats

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R_co]: ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str: ...

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...


class _LeaderCancelled(Exception):
    """Tells waiters that the call computing their value was cancelled: compute it yourself."""


class _Cached(Generic[P, R]):
    """The state behind one decorated function: key maker, serializer, in-flight calls."""

    def __init__(
        self,
        func: Callable[P, Awaitable[R]],
        *,
        ttl: TTL,
        keys: KeyMaker,
        backend: CacheBackend | None,
        serializer: Serializer | None,
    ) -> None:
        self.func = func
        self.ttl = ttl
        self.keys = keys
        self.name = keys.name
        self.backend = backend
        self._serializer = serializer
        self.stats = CacheStats()
        # key -> (the computation's future, the invalidation epoch it started in)
        self.inflight: dict[str, tuple[asyncio.Future[bytes | str], int]] = {}

    @functools.cached_property
    def serializer(self) -> Serializer:
        """Built at the first call, when forward references in annotations can be resolved."""
        if self._serializer is not None:
            return self._serializer
        try:
            return_type = typing.get_type_hints(self.func).get("return", Any)
        except Exception:  # an unresolvable annotation: fall back to plain JSON
            return_type = Any
        return JsonSerializer(return_type, name=self.name)

    async def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        key = self.keys.key(args, kwargs)
        backend = self.backend if self.backend is not None else get_cache_backend()
        stats = self.stats
        try:
            data = await backend.get(key)
        except PROGRAMMING_ERRORS:
            raise
        except Exception as exc:
            stats.failed("read", self.name, exc)
            return await self.func(*args, **kwargs)
        if data is not None:
            try:
                value: R = self.serializer.loads(data)
            except Exception as exc:  # a corrupt or foreign entry: recompute and overwrite it
                stats.failed("decode", self.name, exc)
            else:
                stats.hits += 1
                stats.recovered(self.name)
                return value
        stats.misses += 1
        return await self.compute(key, backend, args, kwargs)

    async def compute(
        self, key: str, backend: CacheBackend, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        """Single flight: the first caller computes; the others wait for its result."""
        epoch = epochs.get(backend, 0)
        flight = self.inflight.get(key)
        if flight is not None and flight[1] == epoch:  # never join one that predates a write
            self.stats.coalesced += 1
            try:
                data = await asyncio.shield(flight[0])
            except _LeaderCancelled:  # start over: another waiter may have stored it by now
                return await self.call(args, kwargs)
            value: R = self.serializer.loads(data)  # a fresh copy, as a hit would give
            return value
        future: asyncio.Future[bytes | str] = asyncio.get_running_loop().create_future()
        self.inflight[key] = entry = (future, epoch)
        try:
            try:
                value = await self.func(*args, **kwargs)
                data = self.serializer.dumps(value)
            except asyncio.CancelledError:
                future.set_exception(_LeaderCancelled())
                raise
            except BaseException as exc:
                future.set_exception(exc)
                raise
            future.set_result(data)
            if epochs.get(backend, 0) == epoch:  # an invalidation ran meanwhile: data may be stale
                await self.store(key, data, backend)
            return value
        finally:
            if self.inflight.get(key) is entry:
                del self.inflight[key]
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved: waiters may all have gone

    async def store(self, key: str, data: bytes | str, backend: CacheBackend) -> None:
        try:
            await backend.set(key, data, self.ttl)
        except PROGRAMMING_ERRORS:
            raise
        except Exception as exc:
            self.stats.failed("write", self.name, exc)
        else:
            self.stats.recovered(self.name)


@overload
def cached(ttl: Callable[P, Awaitable[R]], /) -> CachedFunction[P, R]: ...


@overload
def cached(
    ttl: int | timedelta | None = ...,
    *,
    key_prefix: str = "",
    key: str | None = None,
    key_builder: Callable[..., str] | None = None,
    exclude_keys: Iterable[str] = (),
    backend: CacheBackend | None = None,
    serializer: Serializer | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], CachedFunction[P, R]]: ...


def cached(
    ttl: Any = DEFAULT_TTL,
    *,
    key_prefix: str = "",
    key: str | None = None,
    key_builder: Callable[..., str] | None = None,
    exclude_keys: Iterable[str] = (),
    backend: CacheBackend | None = None,
    serializer: Serializer | None = None,
) -> Any:
    """Cache an ``async def``'s results for ``ttl`` seconds (or a ``timedelta``).

    Leaving ``ttl`` out uses ``CACHE_TTL_SECONDS``; ``ttl=None`` caches without expiry.
    The key is ``{key_prefix}:{module.qualname}:{digest of the arguments}``, or the
    ``key`` template (``"user:{user_id}"``) formatted from the arguments, or what
    ``key_builder(*args, **kwargs)`` returns; ``key_prefix`` heads the latter two as well.
    """
    if callable(ttl) and not isinstance(ttl, timedelta):  # bare @cached
        return cached()(ttl)
    if ttl is not DEFAULT_TTL:
        ttl_seconds(ttl, None, name="ttl")  # fail at decoration, not at the first call
    if key is not None and key_builder is not None:
        raise CacheConfigError("@cached takes key= or key_builder=, not both.")
    if not isinstance(key_prefix, str):
        raise CacheConfigError(f"key_prefix must be a str, not {key_prefix!r}.")
    excluded = [exclude_keys] if isinstance(exclude_keys, str) else list(exclude_keys)

    def decorate(func: Callable[P, Awaitable[R]]) -> CachedFunction[P, R]:
        descriptor, func = unwrap_descriptor(func)
        require_async(func, "@cached")
        keys = KeyMaker(func, prefix=key_prefix, template=key, builder=key_builder, exclude=excluded)
        state = _Cached(func, ttl=ttl, keys=keys, backend=backend, serializer=serializer)
        call = state.call

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return await call(args, kwargs)

        async def invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
            """Delete the entry of this call's arguments; ``True`` if there was one."""
            target = state.backend if state.backend is not None else get_cache_backend()
            bump_epoch(target)
            return await target.delete(keys.key(args, kwargs)) > 0

        def cache_key(*args: P.args, **kwargs: P.kwargs) -> str:
            """The key under which this call's result is cached."""
            return keys.key(args, kwargs)

        wrapper.cache_key = cache_key  # type: ignore[attr-defined]  # the CachedFunction protocol
        wrapper.invalidate = invalidate  # type: ignore[attr-defined]
        wrapper.cache_stats = state.stats  # type: ignore[attr-defined]
        return descriptor(wrapper)  # type: ignore[no-any-return]  # re-wrapped as it came

    return decorate


__all__ = ["CachedFunction", "cached", "invalidate_cache"]
