"""``@cached`` and ``@invalidate_cache``.

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
import inspect
import typing
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import timedelta
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, overload

from ._failopen import CacheStats
from ._types import DEFAULT_TTL, TTL
from .backends._validate import ttl_seconds
from .backends.base import CacheBackend
from .backends.patterns import escape_pattern, validate_pattern
from .errors import CacheConfigError, InvalidKeyError, InvalidTTLError, InvalidValueError
from .factory import get_cache_backend
from .keys import KeyMaker, format_template
from .serialization import JsonSerializer, Serializer

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

_PROGRAMMING_ERRORS = (InvalidKeyError, InvalidValueError, InvalidTTLError)


class CachedFunction(Protocol[P, R_co]):
    """What ``@cached`` returns: the function, plus handles on its own cache entries."""

    cache_stats: CacheStats

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R_co]: ...

    def cache_key(self, *args: P.args, **kwargs: P.kwargs) -> str: ...

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...


# Invalidations seen per backend. A computation that started before an invalidation may
# have read the data the invalidating write replaced, so it must not store its result,
# and later callers must not join it (they would get the old value for a whole TTL).
_epochs: weakref.WeakKeyDictionary[CacheBackend, int] = weakref.WeakKeyDictionary()


def _bump_epoch(backend: CacheBackend) -> None:
    _epochs[backend] = _epochs.get(backend, 0) + 1


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
        except _PROGRAMMING_ERRORS:
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
                if stats.failing:
                    stats.recovered(self.name)
                return value
        stats.misses += 1
        return await self.compute(key, backend, args, kwargs)

    async def compute(
        self, key: str, backend: CacheBackend, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> R:
        """Single flight: the first caller computes; the others wait for its result."""
        epoch = _epochs.get(backend, 0)
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
            if _epochs.get(backend, 0) == epoch:  # an invalidation ran meanwhile: data may be stale
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
        except _PROGRAMMING_ERRORS:
            raise
        except Exception as exc:
            self.stats.failed("write", self.name, exc)
        else:
            if self.stats.failing:
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
        descriptor, func = _unwrap_descriptor(func)
        _require_async(func, "@cached")
        keys = KeyMaker(func, prefix=key_prefix, template=key, builder=key_builder, exclude=excluded)
        state = _Cached(func, ttl=ttl, keys=keys, backend=backend, serializer=serializer)
        call = state.call

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return await call(args, kwargs)

        async def invalidate(*args: P.args, **kwargs: P.kwargs) -> bool:
            """Delete the entry of this call's arguments; ``True`` if there was one."""
            target = state.backend if state.backend is not None else get_cache_backend()
            _bump_epoch(target)
            return await target.delete(keys.key(args, kwargs)) > 0

        def cache_key(*args: P.args, **kwargs: P.kwargs) -> str:
            """The key under which this call's result is cached."""
            return keys.key(args, kwargs)

        wrapper.cache_key = cache_key  # type: ignore[attr-defined]  # the CachedFunction protocol
        wrapper.invalidate = invalidate  # type: ignore[attr-defined]
        wrapper.cache_stats = state.stats  # type: ignore[attr-defined]
        return descriptor(wrapper)  # type: ignore[no-any-return]  # re-wrapped as it came

    return decorate


def invalidate_cache(
    key_pattern: str | Sequence[str] | None = None,
    *,
    keys: Sequence[str] = (),
    backend: CacheBackend | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """After the function returns (never when it raises), delete the matching entries.

    ``key_pattern`` is a glob (``"user:*"``) or several; ``keys`` are exact keys. Both may
    be templates over the function's arguments (``"user:{user_id}:*"``); in patterns the
    argument values are escaped, so ``user_id="1*"`` matches only the literal ``1*``.
    A cache failure here is logged and counted, and the function's result still returned.
    """
    patterns = [key_pattern] if isinstance(key_pattern, str) else list(key_pattern or ())
    exact = [keys] if isinstance(keys, str) else list(keys)
    if not patterns and not exact:
        raise CacheConfigError("@invalidate_cache needs key_pattern= or keys=.")
    for pattern in patterns:
        if "{" not in pattern:
            validate_pattern(pattern)

    def decorate(func: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        descriptor, func = _unwrap_descriptor(func)
        _require_async(func, "@invalidate_cache")
        signature = inspect.signature(func)
        name = f"{func.__module__}.{func.__qualname__}"
        stats = CacheStats()
        templated = any("{" in t for t in (*patterns, *exact))

        @functools.wraps(func)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            result = await func(*args, **kwargs)
            bound: dict[str, Any] = {}
            if templated:
                b = signature.bind(*args, **kwargs)
                b.apply_defaults()
                bound = dict(b.arguments)
            await _invalidate(
                backend if backend is not None else get_cache_backend(),
                [_fill(p, bound, name, escape=True) for p in patterns],
                [_fill(k, bound, name, escape=False) for k in exact],
                stats,
                name,
            )
            return result

        wrapper.cache_stats = stats  # type: ignore[attr-defined]
        return descriptor(wrapper)  # type: ignore[no-any-return]

    return decorate


async def _invalidate(
    backend: CacheBackend, patterns: list[str], exact: list[str], stats: CacheStats, name: str
) -> None:
    _bump_epoch(backend)
    try:
        if exact:
            await backend.delete(*exact)
        for pattern in patterns:
            await backend.delete_pattern(pattern)
    except _PROGRAMMING_ERRORS:
        raise
    except Exception as exc:
        stats.failed("invalidation", name, exc)
    else:
        if stats.failing:
            stats.recovered(name)


def _fill(template: str, bound: dict[str, Any], name: str, *, escape: bool) -> str:
    if "{" not in template:
        return template
    if escape:
        bound = {k: _Escaped(v) for k, v in bound.items()}
    return (
        validate_pattern(format_template(template, bound, name))
        if escape
        else format_template(template, bound, name)
    )


class _Escaped:
    """Formats an argument for a pattern template: its text, with glob characters escaped."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return escape_pattern(format(self.value, spec))

    def __str__(self) -> str:  # "{x!s}"
        return escape_pattern(str(self.value))

    def __repr__(self) -> str:  # "{x!r}"
        return escape_pattern(repr(self.value))

    def __getattr__(self, name: str) -> _Escaped:
        return _Escaped(getattr(self.value, name))

    def __getitem__(self, item: Any) -> _Escaped:
        return _Escaped(self.value[item])


def _unwrap_descriptor(func: Any) -> tuple[Callable[[Any], Any], Any]:
    """Decorators may sit above ``@staticmethod``/``@classmethod``: wrap the function inside."""
    if isinstance(func, staticmethod | classmethod):
        return type(func), func.__func__
    return (lambda f: f), func


def _require_async(func: Any, decorator: str) -> None:
    if not inspect.iscoroutinefunction(func):
        raise CacheConfigError(
            f"{decorator} needs an 'async def' function, and {getattr(func, '__qualname__', func)!r} "
            "is not one. Make it async, or call the sync code through an async function "
            "(e.g. 'await asyncio.to_thread(...)'): caching a sync function's return value "
            "would turn it into a coroutine and change what callers get."
        )
