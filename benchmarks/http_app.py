"""The FastAPI app served by uvicorn for the HTTP group; BENCH_HTTP_MODE picks the caching."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

MODE = os.environ.get("BENCH_HTTP_MODE", "uncached")
TTL = 300


def payload(item_id: int) -> dict:
    return {"id": item_id, "name": f"item {item_id}", "price": 9.99, "tags": ["a", "b"]}


startup = []


@asynccontextmanager
async def lifespan(app):
    for hook in startup:
        await hook()
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/health")
async def health() -> dict:
    return {"ok": True}


if MODE == "uncached":

    @app.get("/item/{item_id}")
    async def item(item_id: int) -> dict:
        return payload(item_id)

elif MODE == "ignite_cache":
    from ignite_cache import MemoryBackend, cached

    backend = MemoryBackend(max_entries=1_000_000, max_bytes=2**30, default_ttl=TTL)
    startup.append(backend.init)

    @app.get("/item/{item_id}")
    @cached(ttl=TTL, key_prefix="item", backend=backend)
    async def item(item_id: int) -> dict:
        return payload(item_id)

elif MODE == "fastapi-cache2":
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.inmemory import InMemoryBackend
    from fastapi_cache.decorator import cache

    async def init() -> None:
        FastAPICache.init(InMemoryBackend())

    startup.append(init)

    @app.get("/item/{item_id}")
    @cache(expire=TTL)
    async def item(item_id: int) -> dict:
        return payload(item_id)
