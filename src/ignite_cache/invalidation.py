"""``@invalidate_cache``: delete entries after a successful write.

Patterns and keys may be templates over the function's arguments; in patterns every
argument's text is escaped, so a value like ``1*`` matches only itself.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

from ._decorating import PROGRAMMING_ERRORS, bump_epoch, require_async, unwrap_descriptor
from ._failopen import CacheStats
from .backends.base import CacheBackend
from .backends.patterns import escape_pattern, validate_pattern
from .errors import CacheConfigError
from .factory import get_cache_backend
from .keys import format_template

P = ParamSpec("P")
R = TypeVar("R")


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
        descriptor, func = unwrap_descriptor(func)
        require_async(func, "@invalidate_cache")
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
    bump_epoch(backend)
    try:
        if exact:
            await backend.delete(*exact)
        for pattern in patterns:
            await backend.delete_pattern(pattern)
    except PROGRAMMING_ERRORS:
        raise
    except Exception as exc:
        stats.failed("invalidation", name, exc)
    else:
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
