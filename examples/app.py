"""The seed's three usage examples in one FastAPI app: ``@cached`` reads, an
``@invalidate_cache`` write, and direct use through ``Depends(get_cache)``.

Run it with ``scripts/demo``; every response carries ``X-DB-Queries``, the number of
database queries so far, so a cache hit shows as a count that did not move.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Response

from examples.db import Database
from ignite_cache import CacheBackend, cache_health, cache_lifespan, cached, get_cache, invalidate_cache

db = Database()


async def db_get_item(item_id: int) -> dict[str, Any]:
    item = await db.get_item(item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"No item {item_id}.")
    return item


# --- the seed's "Caching Function Results" and "Invalidating Cache" examples ---------------


@cached(ttl=300, key_prefix="user")
async def get_user(user_id: int) -> dict[str, Any] | None:
    return await db.get_user(user_id)


@invalidate_cache(key_pattern="user:*")
async def update_user(user_id: int, data: dict[str, Any]) -> dict[str, Any] | None:
    return await db.update_user(user_id, data)


app = FastAPI(title="ignite-cache demo", lifespan=cache_lifespan)


@app.middleware("http")
async def count_queries(request: Any, call_next: Any) -> Any:
    response = await call_next(request)
    response.headers["X-DB-Queries"] = str(db.queries)
    return response


# --- the seed's "Direct Cache Access" example, as written there ---------------------------


@app.get("/items/{item_id}")
async def get_item(item_id: int, cache: CacheBackend = Depends(get_cache)) -> Any:
    cache_key = f"item:{item_id}"

    # Try to get from cache
    cached_value = await cache.get(cache_key)
    if cached_value:
        return json.loads(cached_value)

    # Get from database
    item = await db_get_item(item_id)

    # Store in cache
    await cache.set(cache_key, json.dumps(item), ex=300)
    return item


@app.get("/users/{user_id}")
async def read_user(user_id: int) -> dict[str, Any]:
    user = await get_user(user_id)
    if user is None:
        raise HTTPException(status_code=404, detail=f"No user {user_id}.")
    return user


@app.put("/users/{user_id}")
async def write_user(user_id: int, data: dict[str, Any]) -> dict[str, Any]:
    user = await update_user(user_id, data)
    if user is None:
        raise HTTPException(status_code=404, detail=f"No user {user_id}.")
    return user


@app.get("/stats")
async def stats() -> dict[str, Any]:
    s = get_user.cache_stats
    return {"get_user": {"hits": s.hits, "misses": s.misses, "errors": s.errors}}


@app.get("/health")
async def health(response: Response) -> dict[str, Any]:
    report = await cache_health()
    if report["cache"] != "ok":
        response.status_code = 503
    return report
