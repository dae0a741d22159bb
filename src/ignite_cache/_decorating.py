"""What both decorators share: the invalidation epochs and the checks made at decoration."""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

from .backends.base import CacheBackend
from .errors import CacheConfigError, InvalidKeyError, InvalidTTLError, InvalidValueError

PROGRAMMING_ERRORS = (InvalidKeyError, InvalidValueError, InvalidTTLError)
"""Errors that mean the caller's code is wrong: they propagate, never fail open."""

# Invalidations seen per backend. A computation that started before an invalidation may
# have read the data the invalidating write replaced, so it must not store its result,
# and later callers must not join it (they would get the old value for a whole TTL).
epochs: weakref.WeakKeyDictionary[CacheBackend, int] = weakref.WeakKeyDictionary()


def bump_epoch(backend: CacheBackend) -> None:
    """Record an invalidation of ``backend`` (see ``epochs``)."""
    epochs[backend] = epochs.get(backend, 0) + 1


def unwrap_descriptor(func: Any) -> tuple[Callable[[Any], Any], Any]:
    """Decorators may sit above ``@staticmethod``/``@classmethod``: wrap the function inside."""
    if isinstance(func, staticmethod | classmethod):
        return type(func), func.__func__
    return (lambda f: f), func


def require_async(func: Any, decorator: str) -> None:
    """Refuse a plain ``def`` at decoration time, saying what to do instead."""
    if not inspect.iscoroutinefunction(func):
        raise CacheConfigError(
            f"{decorator} needs an 'async def' function, and {getattr(func, '__qualname__', func)!r} "
            "is not one. Make it async, or call the sync code through an async function "
            "(e.g. 'await asyncio.to_thread(...)'): caching a sync function's return value "
            "would turn it into a coroutine and change what callers get."
        )
