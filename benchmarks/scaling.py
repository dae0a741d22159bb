"""How get/set/delete_pattern costs grow with the number of stored keys; memory per entry."""

from __future__ import annotations

import asyncio
import random
import time
import tracemalloc
from functools import partial

from . import file, memory, redis_
from .common import VALUES, Config, Group, Impl, get_loop, keys, measure, run_each, set_loop
from .file import populate
from .ours import ours

SCALE_OPS = 2_000
MATCHED = 100


async def time_delete(impl: Impl, reps: int) -> float:
    """ms to delete_pattern MATCHED fresh keys, whatever else is stored."""
    times = []
    for _ in range(reps):
        await populate(impl, keys("dp", MATCHED), VALUES["100B"])
        t0 = time.perf_counter()
        await impl.delete_pattern("dp:*")
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


async def scale_group(cfg: Config, backend: str, factories, before=None) -> Group:
    g = Group(f"scaling-{backend}", f"Scaling, {backend} backend (µs/op; delete_pattern in ms)",
              None)
    for n in cfg.scale_sizes:
        g.col(f"get@{n}", f"get @{n:,}")
        g.col(f"set@{n}", f"set @{n:,}")
        g.col(f"del@{n}", f"delete_pattern {MATCHED} @{n:,}", unit="ms/call")
    all_keys = keys("s", max(cfg.scale_sizes))
    value = VALUES["100B"]

    async def body(impl: Impl) -> None:
        if impl.kind == "floor":
            g.floor = impl.name
        if before:
            await before()
        have = 0
        for n in cfg.scale_sizes:
            await populate(impl, all_keys[have:n], value)
            have = n
            ops = random.Random(n).sample(all_keys[:n], SCALE_OPS)
            g.put(impl.name, impl.kind, f"get@{n}", await measure(
                get_loop(impl.get, ops), SCALE_OPS, cfg.reps, warmup=True))
            g.put(impl.name, impl.kind, f"set@{n}", await measure(
                set_loop(impl.set, ops, value), SCALE_OPS, cfg.reps))
            g.put(impl.name, impl.kind, f"del@{n}", await time_delete(impl, cfg.reps))

    await run_each(factories, g, body)
    g.notes.append(f"{SCALE_OPS:,} random existing keys per repetition (100 B values); "
                   f"delete_pattern removes {MATCHED} keys matching 'dp:*' among all the others.")
    return g


async def bytes_per_entry(cfg: Config) -> Group:
    g = Group("memory-per-entry", "Memory per entry (tracemalloc, 100 B values)",
              "floor (dict + expiry)")
    g.col("bytes", "bytes per entry", unit="B/entry")
    n = cfg.mem_entries
    ks, value = keys("e", n), VALUES["100B"]

    async def body(impl: Impl) -> None:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        res = set_loop(impl.set, ks, value, impl.sync)()
        if asyncio.iscoroutine(res):
            await res
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        g.put(impl.name, impl.kind, "bytes", used / n)

    await run_each([memory.floor, memory.mine, memory.cachetools_], g, body)
    g.notes.append(f"{n:,} entries, keys and the (shared) value object allocated beforehand: "
                   "the cost of the cache's own structures (plus any copy it makes).")
    return g


async def run(cfg: Config) -> list[Group]:
    groups = [await scale_group(cfg, "memory", [memory.floor, memory.mine])]
    fs = file.factories(cfg, "scale")
    groups.append(await scale_group(cfg, "file", fs[:2]))
    if cfg.redis_url:
        groups.append(await scale_group(cfg, "redis", redis_.factories(cfg)[:2],
                                        before=partial(redis_.flush_private, cfg)))
        await redis_.flush_private(cfg)
    if ours("MemoryBackend") is None:
        for g in groups:
            g.notes.append("ignite_cache not available: only the floor was measured.")
    groups.append(await bytes_per_entry(cfg))
    return groups
