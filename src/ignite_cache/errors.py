"""The exceptions ignite_cache raises.

Every error derives from ``CacheError``, so ``except CacheError`` catches them all::

    CacheError
    ├── CacheConfigError       a setting or argument is wrong (raised at start-up)
    ├── InvalidKeyError        a key is not a non-empty str, or cannot be built from arguments
    ├── InvalidValueError      a value is neither str nor bytes
    ├── InvalidTTLError        a TTL is negative, zero or not a whole number of seconds
    ├── InvalidPatternError    a glob pattern is malformed
    ├── SerializationError     a value cannot be encoded or decoded
    └── CacheBackendError      the store failed at run time (Redis gone, disk full, ...)
        └── CacheUnavailableError  the circuit breaker is open: the store is not being called

The ``Invalid*`` errors also derive from ``ValueError`` or ``TypeError`` so that code
written against plain Python conventions still catches them. Driver errors are mapped to
``CacheBackendError`` at the backend boundary and chained with ``from``.
"""

from __future__ import annotations


class CacheError(Exception):
    """Base class of every error raised by ignite_cache."""


class CacheConfigError(CacheError, ValueError):
    """A setting or constructor argument is invalid; raised before any request is served."""


class InvalidKeyError(CacheError, TypeError):
    """A cache key is not a non-empty ``str``, or a call's arguments cannot be keyed."""


class InvalidValueError(CacheError, TypeError):
    """A value to store is neither ``str`` nor ``bytes``."""


class InvalidTTLError(CacheError, ValueError):
    """A TTL is negative, zero, or not a whole number of seconds."""


class InvalidPatternError(CacheError, ValueError):
    """A glob pattern is malformed (an unclosed ``[`` or a trailing backslash)."""


class SerializationError(CacheError, TypeError):
    """A value cannot be serialized for the cache, or a stored value cannot be decoded."""


class CacheBackendError(CacheError):
    """The underlying store failed at run time; nothing stored was changed half-way."""


class CacheUnavailableError(CacheBackendError):
    """The backend's circuit breaker is open after repeated failures; the store was not called."""
