"""In-process caches: get hit, get miss and set, µs per op."""

from __future__ import annotations

import re
import time
from fnmatch import translate
from functools import partial

from .common import (TTL, VALUES, Config, Group, Impl, get_loop, keys, measure, run_each,
                     set_loop, value_of)
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
    return Impl("ignite_cache MemoryBackend", "ours", m.get, partial(m.set, ex=TTL), close=m.close,
                delete_pattern=m.delete_pattern, extra={"set_many": partial(m.set_many, ex=TTL)})


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
    g.notes.append("set = overwrite of the 10k keys after one untimed pass that inserts them; "
                   "all caches sized to hold every key (no eviction), TTL 300 s.")
    for size in VALUES:
        for op in ("get hit", "get miss", "set"):
            g.col(f"{op} {size}", f"{op} {size}")
    if ours("MemoryBackend") is None:
        g.notes.append("ignite_cache MemoryBackend not available: skipped.")

    async def body(impl: Impl) -> None:
        for size, value in VALUES.items():
            ks = keys(f"m{size}", cfg.n_keys)
            miss = keys(f"absent{size}", cfg.n_keys)
            g.put(impl.name, impl.kind, f"set {size}", await measure(
                set_loop(impl.set, ks, value, impl.sync), len(ks), cfg.reps, warmup=True))
            assert await value_of(impl, ks[-1]) == value, "warm key is not a hit"
            g.put(impl.name, impl.kind, f"get hit {size}", await measure(
                get_loop(impl.get, ks, impl.sync), len(ks), cfg.reps, warmup=True))
            g.put(impl.name, impl.kind, f"get miss {size}", await measure(
                get_loop(impl.get, miss, impl.sync), len(miss), cfg.reps, warmup=True))

    await run_each(FACTORIES, g, body)
    return [g]
