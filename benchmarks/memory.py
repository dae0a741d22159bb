"""In-process caches: get hit, get miss and set, µs per op."""

from __future__ import annotations

import re
import time
from fnmatch import translate
from functools import partial

from .common import (
    TTL,
    VALUES,
    Config,
    Group,
    Impl,
    build,
    check,
    close_all,
    getter,
    holds,
    interleaved,
    keys,
    populate_all,
    setter,
    spread,
)
from .ours import ours


class DictFloor:
    """The floor: an ``async def get`` over a plain dict with an expiry check."""

    def __init__(self) -> None:
        self.data: dict = {}

    async def get(self, key):
        entry = self.data.get(key)
        if entry is None:
            return None
        if entry[1] < time.monotonic():
            del self.data[key]
            return None
        return entry[0]

    async def set(self, key, value, ttl=TTL):
        self.data[key] = (value, time.monotonic() + ttl)
        return True

    async def delete_pattern(self, pattern):
        match = re.compile(translate(pattern)).match
        doomed = [k for k in self.data if match(k)]
        for k in doomed:
            del self.data[k]
        return len(doomed)


async def floor():
    f = DictFloor()
    return Impl("floor (dict + expiry)", "floor", f.get, f.set, delete_pattern=f.delete_pattern)


async def mine():
    Mem = ours("MemoryBackend")
    if Mem is None:
        return None
    m = Mem(max_entries=2_000_000, max_bytes=2**32, default_ttl=TTL)
    await m.init()
    return Impl(
        "ignite_cache MemoryBackend",
        "ours",
        m.get,
        partial(m.set, ex=TTL),
        close=m.close,
        delete_pattern=m.delete_pattern,
        extra={"set_many": partial(m.set_many, ex=TTL)},
    )


async def cachetools_():
    from cachetools import TTLCache

    c = TTLCache(maxsize=2_000_000, ttl=TTL)
    return Impl("cachetools TTLCache (sync)", "peer", c.get, c.__setitem__, sync=True)


async def cashews_():
    from cashews import Cache

    c = Cache()
    c.setup("mem://", size=2_000_000)  # default size is 1000: it would evict and miss
    await c.init()
    return Impl("cashews mem://", "peer", c.get, partial(c.set, expire=TTL), close=c.close)


async def aiocache_():
    from aiocache import SimpleMemoryCache
    from aiocache.serializers import NullSerializer

    c = SimpleMemoryCache(serializer=NullSerializer())
    return Impl("aiocache SimpleMemoryCache", "peer", c.get, partial(c.set, ttl=TTL), close=c.close)


async def fastapi_cache2():
    from fastapi_cache.backends.inmemory import InMemoryBackend

    c = InMemoryBackend()
    return Impl("fastapi-cache2 InMemoryBackend", "peer", c.get, partial(c.set, expire=TTL))


FACTORIES = [floor, mine, cachetools_, cashews_, aiocache_, fastapi_cache2]


async def run(cfg: Config) -> list[Group]:
    g = Group("memory", "Memory backends (µs/op, 10k distinct keys)", "floor (dict + expiry)")
    g.notes.append(
        f"{cfg.fast_ops:,} ops per repetition over the 10k stored keys (set = overwrite); "
        "all caches sized to hold every key (no eviction), TTL 300 s. aiocache wraps "
        "every call in asyncio.wait_for (its default 5 s timeout)."
    )
    for size in VALUES:
        for op in ("get hit", "get miss", "set"):
            g.col(f"{op} {size}", f"{op} {size}")
    impls = await build(FACTORIES, g)
    try:
        for size, value in VALUES.items():
            ks = keys(f"m{size}", cfg.n_keys)
            await populate_all(g, impls, ks, value)
            ks, miss = spread(ks, cfg.fast_ops), keys(f"absent{size}", cfg.fast_ops)
            await interleaved(g, f"set {size}", impls, setter(ks, value), len(ks), cfg.reps, True)
            await check(g, impls, "warm key is not a hit", holds(spread(ks, 20), value))
            await interleaved(g, f"get hit {size}", impls, getter(ks), len(ks), cfg.reps, True)
            await interleaved(g, f"get miss {size}", impls, getter(miss), len(ks), cfg.reps, True)
    finally:
        await close_all(impls)
    return [g]
