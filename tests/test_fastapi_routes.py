"""@cached on FastAPI route handlers: parameters and dependencies still injected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel

from ignite_cache import CacheBackend, cached, get_cache, invalidate_cache


class Item(BaseModel):
    id: int
    q: str | None
    user: str


class Session:
    """Stands in for a database session: a new object per request, never part of a key."""

    calls = 0


def get_session() -> Session:
    return Session()


def current_user(request: Request) -> str:
    return request.headers.get("x-user", "anon")


@pytest.fixture
async def app_client(backend: CacheBackend) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, list[int]]]:
    app = FastAPI()
    runs: list[int] = []

    @app.get("/items/{item_id}")
    @cached(ttl=60, key_prefix="items", backend=backend)
    async def read_item(
        item_id: int,
        request: Request,
        q: str | None = None,
        session: Session = Depends(get_session),
        user: Annotated[str, Depends(current_user)] = "anon",
    ) -> Item:
        assert isinstance(session, Session) and isinstance(request, Request)
        runs.append(item_id)
        return Item(id=item_id, q=q, user=user)

    @app.post("/items/{item_id}")
    @invalidate_cache(key_pattern="items:*", backend=backend)
    async def write_item(item_id: int, cache: CacheBackend = Depends(get_cache)) -> dict[str, int]:
        return {"id": item_id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield app, client, runs


async def test_route_params_and_dependencies_still_injected(app_client: Any) -> None:
    app, client, runs = app_client
    first = await client.get("/items/3", params={"q": "x"}, headers={"x-user": "ada"})
    second = await client.get("/items/3", params={"q": "x"}, headers={"x-user": "bob"})
    assert first.status_code == 200
    assert first.json() == {"id": 3, "q": "x", "user": "ada"}
    # user comes from Depends: it is left out of the key, so bob gets ada's cached answer
    assert second.json() == first.json()
    assert runs == [3]
    await client.get("/items/3", params={"q": "y"})
    assert runs == [3, 3]
    params = {p["name"] for p in app.openapi()["paths"]["/items/{item_id}"]["get"]["parameters"]}
    assert params == {"item_id", "q"}


async def test_route_invalidation(app_client: Any) -> None:
    _, client, runs = app_client
    await client.get("/items/1")
    await client.get("/items/1")
    assert (await client.post("/items/1")).json() == {"id": 1}
    await client.get("/items/1")
    assert runs == [1, 1]


async def test_dependency_override_of_get_cache(app_client: Any, backend: CacheBackend) -> None:
    app, client, _ = app_client
    app.dependency_overrides[get_cache] = lambda: backend
    assert (await client.post("/items/2")).status_code == 200
