"""create_backend, the process-wide backend, init/close, and the FastAPI integration."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException

from ignite_cache import (
    CacheBackend,
    CacheBackendError,
    CacheSettings,
    FileBackend,
    MemoryBackend,
    RedisBackend,
    cache_health,
    cache_lifespan,
    close_cache,
    create_backend,
    get_cache,
    get_cache_backend,
    init_cache,
    set_cache_backend,
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No CACHE_* variables, an empty working directory, and no process-wide backend."""
    for name in list(os.environ):
        if name.startswith("CACHE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    set_cache_backend(None)
    yield
    set_cache_backend(None)


# --- create_backend ---------------------------------------------------------------------------


def test_create_memory_backend() -> None:
    backend = create_backend(
        CacheSettings(backend_type="memory", memory_max_entries=10, memory_max_bytes=5000, ttl_seconds=7)
    )
    assert isinstance(backend, MemoryBackend)
    assert (backend.max_entries, backend.max_bytes, backend.default_ttl) == (10, 5000, 7)


async def test_create_file_backend(tmp_path: Path) -> None:
    settings = CacheSettings(
        backend_type="file", file_path=tmp_path / "c", namespace="shop", file_max_size=2 * 1024 * 1024
    )
    backend = create_backend(settings)
    assert isinstance(backend, FileBackend)
    assert backend.default_ttl == 300
    async with backend:
        await backend.set("k", "v")
        assert await backend.ttl("k") == 300
    assert (tmp_path / "c" / "shop.sqlite3").is_file()


@pytest.mark.parametrize("namespace", ["my.app", "v1.2", "a-b_c"])
async def test_every_namespace_settings_accept_works_for_the_file_backend(
    tmp_path: Path, namespace: str
) -> None:
    settings = CacheSettings(backend_type="file", file_path=tmp_path, namespace=namespace)
    async with create_backend(settings) as backend:
        await backend.set("k", "v")
        assert await backend.get("k") == "v"


def test_create_redis_backend_does_not_connect() -> None:
    backend = create_backend(
        CacheSettings(
            backend_type="redis", redis_url="redis://127.0.0.1:1/0", namespace="shop", ttl_seconds=9
        )
    )
    assert isinstance(backend, RedisBackend)
    assert (backend.namespace, backend.default_ttl) == ("shop", 9)


def test_create_backend_reads_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CACHE_BACKEND_TYPE", "file")
    monkeypatch.setenv("CACHE_FILE_PATH", str(tmp_path / "env"))
    monkeypatch.setenv("CACHE_TTL_SECONDS", "12")
    backend = create_backend()
    assert isinstance(backend, FileBackend)
    assert backend.path == tmp_path / "env"
    assert backend.default_ttl == 12


# --- the process-wide backend ---------------------------------------------------------------------


def test_get_cache_backend_is_a_lazy_singleton() -> None:
    first = get_cache_backend()
    assert isinstance(first, MemoryBackend)
    assert get_cache_backend() is first
    set_cache_backend(None)
    second = get_cache_backend()
    assert second is not first
    assert get_cache_backend() is second


def test_set_cache_backend_replaces_it() -> None:
    mine = MemoryBackend()
    set_cache_backend(mine)
    assert get_cache_backend() is mine


async def test_close_cache_closes_and_forgets() -> None:
    backend = await init_cache()
    assert get_cache_backend() is backend
    await backend.set("k", "v")
    await close_cache()
    assert get_cache_backend() is not backend
    await close_cache()  # nothing to close: fine


async def test_init_cache_with_settings_replaces_the_backend(tmp_path: Path) -> None:
    old = await init_cache()
    new = await init_cache(CacheSettings(backend_type="file", file_path=tmp_path))
    assert isinstance(new, FileBackend)
    assert get_cache_backend() is new
    assert new is not old
    await new.set("k", "v")
    assert await new.get("k") == "v"
    await close_cache()


async def test_init_cache_fails_at_start_up_on_an_unreachable_redis() -> None:
    url = "redis://127.0.0.1:1/0"
    with pytest.raises(CacheBackendError, match=r"redis://127\.0\.0\.1:1/0"):
        await init_cache(CacheSettings(backend_type="redis", redis_url=url, redis_connect_timeout=0.2))
    await close_cache()


async def test_unreachable_redis_error_does_not_show_the_password() -> None:
    url = "redis://app:s3cr3t-pw@127.0.0.1:1/0"
    with pytest.raises(CacheBackendError) as error:
        await init_cache(CacheSettings(backend_type="redis", redis_url=url, redis_connect_timeout=0.2))
    assert "127.0.0.1:1" in str(error.value)
    assert "s3cr3t-pw" not in str(error.value)
    await close_cache()


# --- FastAPI ------------------------------------------------------------------------------------


class FakeDatabase:
    def __init__(self) -> None:
        self.queries = 0

    async def get_item(self, item_id: int) -> dict[str, Any] | None:
        self.queries += 1
        return {"id": item_id, "name": f"item {item_id}", "tags": ["ü", "✓"]} if item_id < 100 else None


def make_app(db: FakeDatabase) -> FastAPI:
    """The seed's direct-use endpoint, unchanged but for the import line."""
    app = FastAPI(lifespan=cache_lifespan)

    @app.get("/items/{item_id}")
    async def get_item(item_id: int, cache: CacheBackend = Depends(get_cache)) -> Any:
        cache_key = f"item:{item_id}"
        cached_value = await cache.get(cache_key)
        if cached_value:
            return json.loads(cached_value)
        item = await db.get_item(item_id)
        if item is None:
            raise HTTPException(status_code=404)
        await cache.set(cache_key, json.dumps(item), ex=300)
        return item

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return await cache_health()

    return app


async def test_seed_endpoint_through_the_lifespan(backend: CacheBackend) -> None:
    db = FakeDatabase()
    app = make_app(db)
    set_cache_backend(backend)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = await client.get("/items/1")
            second = await client.get("/items/1")
            assert first.status_code == second.status_code == 200
            assert first.json() == second.json() == {"id": 1, "name": "item 1", "tags": ["ü", "✓"]}
            assert db.queries == 1
            assert (await client.get("/items/100")).status_code == 404
            assert json.loads(await backend.get("item:1") or "") == first.json()
            assert await backend.ttl("item:1") in {300, 299}  # Redis: real time passes
            health = (await client.get("/health")).json()
            assert health == {"cache": "ok", "backend": type(backend).__name__}
    # the lifespan closed the process-wide backend and forgot it
    assert get_cache_backend() is not backend


async def test_dependency_override(backend: CacheBackend) -> None:
    db = FakeDatabase()
    app = make_app(db)
    process_wide = MemoryBackend()
    set_cache_backend(process_wide)
    app.dependency_overrides[get_cache] = lambda: backend
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/items/5")).status_code == 200
        assert (await client.get("/items/5")).status_code == 200
    assert db.queries == 1
    assert await backend.get("item:5") is not None
    assert await process_wide.get("item:5") is None


async def test_lifespan_fails_fast_on_an_unreachable_redis() -> None:
    app = FastAPI(lifespan=cache_lifespan)
    set_cache_backend(RedisBackend("redis://127.0.0.1:1/0", connect_timeout=0.2))
    with pytest.raises(CacheBackendError, match=r"127\.0\.0\.1:1"):
        async with app.router.lifespan_context(app):
            pass
    await close_cache()
