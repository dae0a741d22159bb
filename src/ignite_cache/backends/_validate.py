"""Argument checks shared by every backend: cheap, and raising the typed errors early."""

from __future__ import annotations

import re
from datetime import timedelta

from .._types import DEFAULT_TTL, TTL
from ..errors import InvalidKeyError, InvalidTTLError, InvalidValueError


def check_key(key: object) -> str:
    """Return ``key`` if it is a non-empty str."""
    if type(key) is not str:
        if not isinstance(key, str):
            raise InvalidKeyError(f"Cache keys must be str, not {type(key).__name__}: {key!r}.")
        key = str.__str__(key)  # a str subclass (e.g. a StrEnum member): store its value
    if not key:
        raise InvalidKeyError("Cache keys must not be empty.")
    if "\x00" in key:  # SQLite's GLOB reads text as C strings: a NUL would end the key
        raise InvalidKeyError(f"Cache key {key!r} contains a NUL character.")
    if not key.isascii():
        try:
            key.encode()
        except UnicodeEncodeError:
            raise InvalidKeyError(f"Cache key {key!r} cannot be encoded as UTF-8.") from None
    return key


def check_keys(keys: tuple[object, ...] | list[object]) -> list[str]:
    return [check_key(k) for k in keys]


def check_value(value: object) -> str | bytes:
    """Return ``value`` if it is str or bytes (bytearray and memoryview become bytes)."""
    if type(value) is bytes:
        return value
    if isinstance(value, str):
        text = str.__str__(value)
        if not text.isascii():
            try:
                text.encode()
            except UnicodeEncodeError:
                raise InvalidValueError(
                    "A str value cannot be encoded as UTF-8 (a lone surrogate)."
                ) from None
        return text
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


_INTEGER = re.compile(r"0|-?[1-9][0-9]{0,18}")
_INT64 = 2**63


def parse_counter(key: str, value: object) -> int:
    """The integer a stored value holds, by Redis's rules (ASCII digits, no sign but '-',
    no leading zeros or spaces, signed 64-bit); else ``InvalidValueError``."""
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        number = int(value)
        if -_INT64 <= number < _INT64:
            return number
    raise InvalidValueError(f"The value at {key!r} is not a 64-bit integer: {value!r}.")


def check_counter(key: str, number: int) -> int:
    """``number`` if it fits a signed 64-bit integer (as Redis requires), else an error."""
    if not -_INT64 <= number < _INT64:
        raise InvalidValueError(f"incr() of {key!r} would overflow a signed 64-bit integer.")
    return number


def check_default_ttl(ttl: TTL) -> int | None:
    """Validate a backend's or decorator's default TTL (no DEFAULT_TTL allowed here)."""
    if ttl is DEFAULT_TTL:
        raise InvalidTTLError("A default TTL cannot itself be DEFAULT_TTL.")
    return ttl_seconds(ttl, None, name="default_ttl")
