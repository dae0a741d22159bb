"""Settings -> backend, and the one process-wide backend that ``get_cache`` hands out.

The process-wide backend is created when first asked for (never at import time) and can
be replaced or reset, so tests and workers control it. Choosing the backend never falls
back silently: an unknown type or an unreachable Redis is an error at start-up.
"""

from __future__ import annotations

from .backends.base import CacheBackend
from .settings import CacheSettings


def create_backend(settings: CacheSettings | None = None) -> CacheBackend:
    """Build (but do not connect) the backend that ``settings`` describe."""
    s = settings if settings is not None else CacheSettings()
    if s.backend_type == "memory":
        from .backends.memory import MemoryBackend

        return MemoryBackend(
            max_entries=s.memory_max_entries,
            max_bytes=s.memory_max_bytes,
            default_ttl=s.ttl_seconds,
        )
    if s.backend_type == "file":
        from .backends.file import FileBackend

        return FileBackend(
            s.file_path,
            namespace=s.namespace,
            max_size=s.file_max_size,
            default_ttl=s.ttl_seconds,
            lock_timeout=s.file_lock_timeout,
        )
    from .backends.redis import RedisBackend

    return RedisBackend(
        s.redis_url,
        namespace=s.namespace,
        default_ttl=s.ttl_seconds,
        mode=s.redis_mode,
        sentinel_service=s.redis_sentinel_service,
        socket_timeout=s.redis_socket_timeout,
        connect_timeout=s.redis_connect_timeout,
        max_connections=s.redis_max_connections,
        pool_timeout=s.redis_pool_timeout,
        retries=s.redis_retries,
        breaker_threshold=s.redis_breaker_threshold,
        breaker_cooldown=s.redis_breaker_cooldown,
    )


class _ProcessCache:
    """Holds the process-wide backend; an instance, so that nothing is shared by accident."""

    def __init__(self) -> None:
        self.backend: CacheBackend | None = None


_process = _ProcessCache()


def get_cache_backend() -> CacheBackend:
    """The process-wide backend, built from ``CacheSettings()`` on first use."""
    backend = _process.backend
    if backend is None:
        backend = _process.backend = create_backend()
    return backend


def set_cache_backend(backend: CacheBackend | None) -> None:
    """Replace the process-wide backend (``None`` resets it; the old one is not closed)."""
    _process.backend = backend


async def init_cache(settings: CacheSettings | None = None) -> CacheBackend:
    """Create (from ``settings`` if given) and open the process-wide backend; fail fast."""
    if settings is not None:
        await close_cache()
        _process.backend = create_backend(settings)
    backend = get_cache_backend()
    await backend.init()
    return backend


async def close_cache() -> None:
    """Close the process-wide backend and forget it."""
    backend, _process.backend = _process.backend, None
    if backend is not None:
        await backend.close()
