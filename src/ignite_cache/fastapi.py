"""FastAPI integration: the ``get_cache`` dependency and a lifespan that opens the cache.

Nothing here imports FastAPI, so the core package stays usable in workers and scripts;
override ``get_cache`` in tests with ``app.dependency_overrides[get_cache] = ...``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .backends.base import CacheBackend
from .factory import close_cache, get_cache_backend, init_cache
from .settings import CacheSettings


async def get_cache() -> CacheBackend:
    """Dependency: ``cache: CacheBackend = Depends(get_cache)`` yields the process-wide backend."""
    return get_cache_backend()


@asynccontextmanager
async def cache_lifespan(app: Any = None, *, settings: CacheSettings | None = None) -> AsyncIterator[None]:
    """``FastAPI(lifespan=cache_lifespan)``: open the cache at start-up (failing fast), close at exit."""
    await init_cache(settings)
    try:
        yield
    finally:
        await close_cache()


async def cache_health() -> dict[str, Any]:
    """Readiness data for a health endpoint: ``{"cache": "ok" | "unavailable", "backend": name}``."""
    backend = get_cache_backend()
    ok = await backend.ping()
    return {"cache": "ok" if ok else "unavailable", "backend": type(backend).__name__}
