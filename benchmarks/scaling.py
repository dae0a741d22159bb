"""How get/set/delete_pattern costs grow with the number of stored keys; memory per entry."""

from __future__ import annotations

import random
import tracemalloc
from functools import partial

from . import file, memory, redis_
from .common import (
    VALUES,
    Config,
    Group,
    Impl,
    _call,
    build,
    close_all,
    getter,
    interleaved,
    keys,
    populate,
    populate_all,
    set_loop,
    setter,
)
from .ours import ours

MATCHED = 100


def delete_dp(impl: Impl):
    return partial(impl.delete_pattern, "dp:*")


async def store_dp(impl: Impl) -> None:
    await populate(impl, keys("dp", MATCHED), VALUES["100B"])


async def scale_group(cfg: Config, backend: str, factories) -> Group:
    g = Group(f"scaling-{backend}", f"Scaling, {backend} backend (µs/op; delete_pattern in ms)", None)
    all_keys, value = keys("s", max(cfg.scale_sizes)), VALUES["100B"]
    impls = await build(factories, g)
    g.floor = next((i.name for i in impls if i.kind == "floor"), None)
    try:
        have = 0
        for n in cfg.scale_sizes:
            g.col(f"get@{n}", f"get @{n:,}")
            g.col(f"set@{n}", f"set @{n:,}")
            g.col(f"del@{n}", f"delete_pattern {MATCHED} @{n:,}", unit="ms/call")
            await populate_all(g, impls, all_keys[have:n], value)
            have = n
            ops = random.Random(n).sample(all_keys[:n], cfg.scale_ops)
            await interleaved(g, f"get@{n}", impls, getter(ops), cfg.scale_ops, cfg.reps, True)
            await interleaved(g, f"set@{n}", impls, setter(ops, value), cfg.scale_ops, cfg.reps)
            await interleaved(g, f"del@{n}", impls, delete_dp, 1, cfg.reps, scale=1e3, before=store_dp)
    finally:
        await close_all(impls)
    g.notes.append(
        f"{cfg.scale_ops:,} random stored keys per repetition (100 B values); "
        f"delete_pattern('dp:*') removes {MATCHED} keys (stored untimed before each "
        "call) among all the others."
    )
    return g


async def bytes_per_entry(cfg: Config) -> Group:
    g = Group("memory-per-entry", "Memory per entry (tracemalloc, 100 B values)", "floor (dict + expiry)")
    g.col("bytes", "bytes per entry", unit="B/entry")
    n = cfg.mem_entries
    ks, value = keys("e", n), VALUES["100B"]
    for impl in await build([memory.floor, memory.mine, memory.cachetools_], g):
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        await _call(set_loop(impl.set, ks, value, impl.sync))
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        g.put(impl.name, impl.kind, "bytes", used / n)
        await close_all([impl])
    g.notes.append(
        f"{n:,} entries; keys and the (shared) value object exist beforehand, so this "
        "is the cache's own structures (plus any copy of the value it makes)."
    )
    return g


def pick(factories, *names):
    return [f for f in factories if f.__name__ in names]


async def run(cfg: Config) -> list[Group]:
    groups = [
        await scale_group(cfg, "memory", [memory.floor, memory.mine]),
        await scale_group(cfg, "file", pick(file.factories(cfg, "scale"), "floor", "mine")),
    ]
    if cfg.redis_url:
        await redis_.flush_private(cfg)
        groups.append(await scale_group(cfg, "redis", pick(redis_.factories(cfg), "floor", "mine")))
        await redis_.flush_private(cfg)
    if ours("MemoryBackend") is None:
        for g in groups:
            g.notes.append("ignite_cache not available: only the floor was measured.")
    groups.append(await bytes_per_entry(cfg))
    return groups
