"""ignite_cache: one asyncio cache API over memory, SQLite and Redis, for FastAPI and beyond."""

from ._types import DEFAULT_TTL, Value
from .backends.base import CacheBackend
from .backends.file import FileBackend
from .backends.memory import MemoryBackend
from .backends.patterns import escape_pattern
from .backends.redis import RedisBackend
from .decorators import CachedFunction, cached, invalidate_cache
from .errors import (
    CacheBackendError,
    CacheConfigError,
    CacheError,
    CacheUnavailableError,
    InvalidKeyError,
    InvalidPatternError,
    InvalidTTLError,
    InvalidValueError,
    SerializationError,
)
from .factory import close_cache, create_backend, get_cache_backend, init_cache, set_cache_backend
from .fastapi import cache_health, cache_lifespan, get_cache
from .serialization import JsonSerializer, PickleSerializer
from .settings import CacheSettings

__all__ = [
    "DEFAULT_TTL",
    "CacheBackend",
    "CacheBackendError",
    "CacheConfigError",
    "CacheError",
    "CacheSettings",
    "CacheUnavailableError",
    "CachedFunction",
    "FileBackend",
    "InvalidKeyError",
    "InvalidPatternError",
    "InvalidTTLError",
    "InvalidValueError",
    "JsonSerializer",
    "MemoryBackend",
    "PickleSerializer",
    "RedisBackend",
    "SerializationError",
    "Value",
    "cache_health",
    "cache_lifespan",
    "cached",
    "close_cache",
    "create_backend",
    "escape_pattern",
    "get_cache",
    "get_cache_backend",
    "init_cache",
    "invalidate_cache",
    "set_cache_backend",
]
