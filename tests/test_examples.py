"""The demo application, driven through ASGI as the README's curl walk-through does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ignite_cache import CacheBackend, set_cache_backend


@pytest.fixture
async def client(backend: CacheBackend) -> AsyncIterator[httpx.AsyncClient]:
    import examples.app
    from examples.db import Database

    examples.app.db = Database()  # a fresh database for each test
    app = examples.app.app
    set_cache_backend(backend)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        yield client
    set_cache_backend(None)


def queries(response: httpx.Response) -> int:
    return int(response.headers["X-DB-Queries"])


async def test_direct_use_endpoint_hits_the_cache(client: httpx.AsyncClient) -> None:
    first = await client.get("/items/1")
    second = await client.get("/items/1")
    assert first.json() == second.json() == {"id": 1, "name": "Kettle", "price": 24.5}
    assert queries(first) == queries(second) == 1
    assert (await client.get("/items/99")).status_code == 404


async def test_cached_reads_and_invalidating_write(client: httpx.AsyncClient) -> None:
    assert queries(await client.get("/users/1")) == 1
    hit = await client.get("/users/1")
    assert queries(hit) == 1 and hit.json()["name"] == "Ada"
    updated = await client.put("/users/1", json={"name": "Ada L"})
    assert updated.json()["name"] == "Ada L"
    after = await client.get("/users/1")
    assert after.json()["name"] == "Ada L"
    assert queries(after) == queries(updated) + 1
    stats = (await client.get("/stats")).json()["get_user"]
    assert stats["hits"] >= 1 and stats["errors"] == 0
    assert (await client.get("/health")).json()["cache"] == "ok"
