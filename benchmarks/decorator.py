"""Decorator overhead on an in-memory backend: cached call minus bare call, µs per call."""

from __future__ import annotations

import time

import orjson

from .common import TTL, Config, Group, Impl, build, check, interleaved
from .ours import ours


def make_fn(calls: list):
    async def get_user(user_id: int) -> dict:
        calls[0] += 1
        return {
            "id": user_id,
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "roles": ["admin", "dev"],
            "active": True,
        }

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


BARE = "bare call (no cache)"


def contenders():
    """Factories for :func:`build`: each decorates its own copy of the function."""

    def entry(name, kind, get_deco):
        async def factory():
            calls = [0]
            return Impl(name, kind, (await get_deco())(make_fn(calls)), extra={"calls": calls})

        factory.__name__ = name
        return factory

    async def bare():
        return lambda fn: fn

    async def floor():
        return floor_cached(TTL)

    async def mine():
        cached, Mem = ours("cached"), ours("MemoryBackend")
        if cached is None or Mem is None:
            raise RuntimeError("ignite_cache.cached is not available")
        m = Mem(max_entries=2_000_000, max_bytes=2**32, default_ttl=TTL)
        await m.init()
        return cached(ttl=TTL, key_prefix="user", backend=m)

    async def cashews_():
        from cashews import Cache

        c = Cache()
        c.setup("mem://", size=2_000_000)
        await c.init()
        return c(ttl=TTL)

    async def aiocache_():
        from aiocache import SimpleMemoryCache, cached

        return cached(ttl=TTL, cache=SimpleMemoryCache)

    async def fastapi_cache2():
        from fastapi_cache import FastAPICache
        from fastapi_cache.backends.inmemory import InMemoryBackend
        from fastapi_cache.decorator import cache

        FastAPICache.init(InMemoryBackend())
        return cache(expire=TTL)

    return [
        entry(BARE, "ref", bare),
        entry("floor (dict + orjson decorator)", "floor", floor),
        entry("ignite_cache @cached", "ours", mine),
        entry("cashews @cache (mem://)", "peer", cashews_),
        entry("aiocache @cached (memory)", "peer", aiocache_),
        entry("fastapi-cache2 @cache (InMemoryBackend)", "peer", fastapi_cache2),
    ]


def calls_loop(impl: Impl, ids):
    async def run():
        fn = impl.get
        for i in ids:
            await fn(i)

    return run


def fresh_ids(n: int):
    """``make_run``: every repetition calls with ids never seen before (all misses)."""

    def make(impl: Impl):
        state = {"next": 10_000_000}

        async def run():
            start = state["next"]
            state["next"] += n
            fn = impl.get
            for i in range(start, start + n):
                await fn(i)

        return run

    return make


async def hits_only(impl: Impl) -> bool:
    """The second call with the same argument must not run the function again."""
    first, calls = await impl.get(1), impl.extra["calls"][0]
    return await impl.get(1) == first and impl.extra["calls"][0] == calls + (impl.kind == "ref")


async def run(cfg: Config) -> list[Group]:
    g = Group(
        "decorator",
        "Decorator overhead (µs per call, minus the bare call)",
        "floor (dict + orjson decorator)",
    )
    g.col("hit", "hit overhead", unit="µs/call")
    g.col("miss", "miss overhead", unit="µs/call")
    n, ids = cfg.fast_ops, list(range(cfg.fast_ops))
    impls = await build(contenders(), g)
    await check(g, impls, "second call was not a cache hit", hits_only)
    await interleaved(g, "miss", impls, fresh_ids(n), n, cfg.reps)
    for impl in impls:  # warm every key (all calls below must be hits)
        if impl.name not in g.failed:
            await calls_loop(impl, ids)()
    calls = {i.name: i.extra["calls"][0] for i in impls}
    await interleaved(g, "hit", impls, lambda i: calls_loop(i, ids), n, cfg.reps)
    await check(
        g,
        [i for i in impls if i.kind != "ref"],
        "hits called the function",
        lambda i: _same(calls[i.name], i.extra["calls"][0]),
    )
    bare = g.rows.pop(BARE, {"values": {}})["values"]
    for row in g.rows.values():
        for col in ("hit", "miss"):
            if row["values"].get(col) is not None and bare.get(col) is not None:
                row["values"][col] = round(row["values"][col] - bare[col], 3)
    g.notes.append(
        f"bare call of the undecorated function: {bare.get('hit', float('nan')):.3f} µs; "
        "it returns a 5-field dict (~100 B as JSON). Each library uses its default "
        "serializer; miss = a never-seen argument (get miss + call + set)."
    )
    return [g]


async def _same(a, b) -> bool:
    return a == b
