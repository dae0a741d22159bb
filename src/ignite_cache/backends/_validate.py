"""Argument checks shared by every backend: cheap, and raising the typed errors early."""

from __future__ import annotations

from datetime import timedelta

from .._types import DEFAULT_TTL, TTL
from ..errors import InvalidKeyError, InvalidTTLError, InvalidValueError


def check_key(key: object) -> str:
    """Return ``key`` if it is a non-empty str."""
    if type(key) is not str:
        if isinstance(key, str):  # a str subclass (e.g. a StrEnum member): store its value
            return str.__str__(key)
        raise InvalidKeyError(f"Cache keys must be str, not {type(key).__name__}: {key!r}.")
    if not key:
        raise InvalidKeyError("Cache keys must not be empty.")
    return key


def check_keys(keys: tuple[object, ...] | list[object]) -> list[str]:
    return [check_key(k) for k in keys]


def check_value(value: object) -> str | bytes:
    """Return ``value`` if it is str or bytes (bytearray and memoryview become bytes)."""
    if type(value) is str or type(value) is bytes:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise InvalidValueError(
        f"Cache values must be str or bytes, not {type(value).__name__}; "
        "serialize it first (e.g. json.dumps) or use @cached, which serializes for you."
    )


def ttl_seconds(ttl: object, default: int | None, *, name: str = "ex") -> int | None:
    """Resolve a TTL argument to whole seconds, or ``None`` for 'never expires'."""
    if ttl is DEFAULT_TTL:
        return default
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
        if seconds != int(seconds):
            raise InvalidTTLError(f"{name}={ttl!r} is not a whole number of seconds.")
        ttl = int(seconds)
    if type(ttl) is not int:
        raise InvalidTTLError(
            f"{name} must be a whole number of seconds (int or timedelta) or None, "
            f"not {type(ttl).__name__} {ttl!r}."
        )
    if ttl <= 0:
        raise InvalidTTLError(f"{name}={ttl} must be positive; use None for no expiry.")
    return ttl


def check_default_ttl(ttl: TTL) -> int | None:
    """Validate a backend's or decorator's default TTL (no DEFAULT_TTL allowed here)."""
    if ttl is DEFAULT_TTL:
        raise InvalidTTLError("A default TTL cannot itself be DEFAULT_TTL.")
    return ttl_seconds(ttl, None, name="default_ttl")
