"""Decorator overhead on an in-memory backend: cached call minus bare call, µs per call."""

from __future__ import annotations

import time

import orjson

from .common import TTL, Config, Group, measure
from .ours import ours


def make_fn(calls: list):
    async def get_user(user_id: int) -> dict:
        calls[0] += 1
        return {"id": user_id, "name": "Ada Lovelace", "email": "ada@example.com",
                "roles": ["admin", "dev"], "active": True}
    return get_user


def floor_cached(ttl: int):
    """The floor: a minimal hand-written decorator, dict store, orjson values."""
    def deco(fn):
        store: dict = {}
        name = fn.__qualname__

        async def wrapper(*args):
            key = f"{name}:{args}"
            hit = store.get(key)
            if hit is not None and hit[1] > time.monotonic():
                return orjson.loads(hit[0])
            result = await fn(*args)
            store[key] = (orjson.dumps(result), time.monotonic() + ttl)
            return result
        return wrapper
    return deco


async def decorators():
    yield "floor (dict + orjson decorator)", "floor", floor_cached(TTL)
    cached, Mem = ours("cached"), ours("MemoryBackend")
    if cached is not None and Mem is not None:
        m = Mem(max_entries=2_000_000, max_bytes=2**32, default_ttl=TTL)
        await m.init()
        yield "ignite_cache @cached", "ours", cached(ttl=TTL, key_prefix="user", backend=m)
        await m.close()
    from cashews import Cache
    cw = Cache()
    cw.setup("mem://", size=2_000_000)
    await cw.init()
    yield "cashews @cache (mem://)", "peer", cw(ttl=TTL)
    from aiocache import SimpleMemoryCache
    from aiocache import cached as aio_cached
    yield "aiocache @cached (memory)", "peer", aio_cached(ttl=TTL, cache=SimpleMemoryCache)
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.inmemory import InMemoryBackend
    from fastapi_cache.decorator import cache
    FastAPICache.init(InMemoryBackend())
    yield "fastapi-cache2 @cache (InMemoryBackend)", "peer", cache(expire=TTL)


def calls_loop(fn, ids):
    async def run():
        for i in ids:
            await fn(i)
    return run


def fresh_ids_loop(fn, n):
    """Every run calls with ids never seen before (all misses)."""
    state = {"next": 10_000_000}

    async def run():
        start = state["next"]
        state["next"] += n
        for i in range(start, start + n):
            await fn(i)
    return run


async def run(cfg: Config) -> list[Group]:
    g = Group("decorator", "Decorator overhead (µs per call, minus the bare call)",
              "floor (dict + orjson decorator)")
    g.col("hit", "hit overhead", unit="µs/call")
    g.col("miss", "miss overhead", unit="µs/call")
    n, ids = cfg.n_keys, list(range(cfg.n_keys))
    bare_fn = make_fn([0])
    bare = await measure(calls_loop(bare_fn, ids), n, cfg.reps, warmup=True)
    g.notes.append(f"bare call of the undecorated function: {bare:.3f} µs; the function returns "
                   "a 5-field dict (~100 B as JSON). Each library uses its default serializer.")
    async for name, kind, deco in decorators():
        try:
            calls = [0]
            fn = deco(make_fn(calls))
            first = await fn(1)
            assert await fn(1) == first and calls[0] == 1, "second call was not a cache hit"
            miss = await measure(fresh_ids_loop(fn, n), n, cfg.reps)
            hit_loop = calls_loop(fn, ids)
            await hit_loop()  # warm every key
            before = calls[0]
            hit = await measure(hit_loop, n, cfg.reps)
            assert calls[0] == before, "hits called the function"
            g.put(name, kind, "hit", hit - bare)
            g.put(name, kind, "miss", miss - bare)
        except Exception as exc:
            g.error(name, kind, exc)
    return [g]
