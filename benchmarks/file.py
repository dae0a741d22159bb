"""File (SQLite) caches: get hit and set (µs/op), pattern invalidation (ms per call)."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from fnmatch import translate
from functools import partial

from .common import (TTL, VALUES, Config, Group, Impl, get_loop, keys, measure, run_each,
                     set_loop, spread, value_of)
from .ours import ours

CHUNK = 1_000


class SqliteFloor:
    """The floor: raw sqlite3 on the event loop, WAL, autocommit, cached prepared statements."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS cache "
                        "(key TEXT PRIMARY KEY, value BLOB, expires REAL)")

    async def get(self, key):
        row = self.db.execute("SELECT value, expires FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[1] < time.time() else row[0]

    async def set(self, key, value, ttl=TTL):
        self.db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, value, time.time() + ttl))
        return True

    async def set_many(self, mapping, ttl=TTL):
        exp = time.time() + ttl
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)",
                                [(k, v, exp) for k, v in mapping.items()])

    async def delete_pattern(self, pattern):
        return self.db.execute("DELETE FROM cache WHERE key GLOB ?", (pattern,)).rowcount

    def close(self):
        self.db.close()


def _diskcache_delete_pattern(cache, pattern):
    """diskcache has no pattern delete: scan every key, delete matches in one transaction."""
    match = re.compile(translate(pattern)).match
    with cache.transact():
        doomed = [k for k in cache.iterkeys() if match(k)]
        for k in doomed:
            cache.delete(k)
    return len(doomed)


def _dc_set_many(cache, mapping):
    with cache.transact():
        for k, v in mapping.items():
            cache.set(k, v, expire=TTL)


def factories(cfg: Config, tag: str):
    d = os.path.join(cfg.tmp, f"file-{tag}")

    async def floor():
        f = SqliteFloor(os.path.join(d + "-floor.sqlite"))
        return Impl("floor (raw sqlite3, WAL)", "floor", f.get, f.set, close=f.close,
                    delete_pattern=f.delete_pattern, extra={"set_many": f.set_many})

    async def mine():
        File = ours("FileBackend")
        if File is None:
            return None
        b = File(d + "-ours", namespace="bench", max_size=2**33)
        await b.init()
        return Impl("ignite_cache FileBackend", "ours", b.get, partial(b.set, ex=TTL),
                    close=b.close, delete_pattern=b.delete_pattern,
                    extra={"set_many": partial(b.set_many, ex=TTL)})

    async def diskcache_direct():
        import diskcache
        c = diskcache.Cache(d + "-dc")

        return Impl("diskcache (sync, on the loop)", "peer", c.get, partial(c.set, expire=TTL),
                    sync=True, close=c.close, extra={"set_many": partial(_async, _dc_set_many, c)},
                    delete_pattern=partial(_async, _diskcache_delete_pattern, c))

    async def diskcache_thread():
        import diskcache
        c = diskcache.Cache(d + "-dct")

        async def get(k):
            return await asyncio.to_thread(c.get, k)

        async def set_(k, v):
            return await asyncio.to_thread(c.set, k, v, expire=TTL)
        return Impl("diskcache via asyncio.to_thread", "peer", get, set_, close=c.close,
                    extra={"set_many": partial(asyncio.to_thread, _dc_set_many, c)},
                    delete_pattern=lambda p: asyncio.to_thread(_diskcache_delete_pattern, c, p))

    async def cashews_disk():
        from cashews import Cache
        c = Cache()
        # shards=0: cashews' scan/delete_match see nothing in a sharded (FanoutCache) store
        c.setup(f"disk://?directory={d}-cashews&shards=0")
        await c.init()

        async def set_many(mapping):
            await c.set_many(mapping, expire=TTL)
        return Impl("cashews disk:// (diskcache in executor)", "peer", c.get,
                    partial(c.set, expire=TTL), close=c.close, delete_pattern=c.delete_match,
                    extra={"set_many": set_many})

    return [floor, mine, diskcache_direct, diskcache_thread, cashews_disk]


async def _async(fn, *args):
    return fn(*args)


async def populate(impl: Impl, ks: list[str], value) -> None:
    set_many = impl.extra.get("set_many")
    for i in range(0, len(ks), CHUNK):
        chunk = ks[i:i + CHUNK]
        if set_many is not None:
            await set_many(dict.fromkeys(chunk, value))
        else:
            await set_loop(impl.set, chunk, value, impl.sync)()


async def time_invalidation(impl: Impl, cfg: Config, prefix: str, reps: int) -> float:
    """ms per delete of ``inval_match`` keys among ``inval_total``; a new group each rep."""
    groups = cfg.inval_total // cfg.inval_match
    ks = [f"{prefix}{g}:{i}" for g in range(groups) for i in range(cfg.inval_match)]
    await populate(impl, ks, VALUES["100B"])
    times = []
    for rep in range(reps):
        t0 = time.perf_counter()
        await impl.delete_pattern(f"{prefix}{rep}:*")
        times.append(time.perf_counter() - t0)
        assert await value_of(impl, f"{prefix}{rep}:0") is None, "pattern delete missed keys"
        assert await value_of(impl, f"{prefix}{rep + 1}:0") is not None, "deleted too much"
    return sorted(times)[len(times) // 2] * 1e3


async def run(cfg: Config) -> list[Group]:
    g = Group("file", "File backends (µs/op; invalidation in ms)", "floor (raw sqlite3, WAL)")
    inval = f"delete_pattern {cfg.inval_match:,} of {cfg.inval_total:,}"
    for size in VALUES:
        g.col(f"get hit {size}", f"get hit {size}")
        g.col(f"set {size}", f"set {size}")
    g.col("inval", inval, unit="ms/call")
    g.notes.append(f"{cfg.slow_ops:,} ops per repetition spread over 10k keys; set = overwrite "
                   "after an untimed inserting pass. Floor commits every set (autocommit).")
    g.notes.append("diskcache has no pattern delete: it scans all keys (fnmatch) and deletes "
                   "matches in one transaction; cashews disk:// runs with shards=0.")

    async def body(impl: Impl) -> None:
        for size, value in VALUES.items():
            ks = keys(f"f{size}", cfg.n_keys)
            await populate(impl, ks, value)
            ops = spread(ks, cfg.slow_ops)
            g.put(impl.name, impl.kind, f"set {size}", await measure(
                set_loop(impl.set, ops, value, impl.sync), len(ops), cfg.reps))
            assert await value_of(impl, ops[-1]) == value, "warm key is not a hit"
            g.put(impl.name, impl.kind, f"get hit {size}", await measure(
                get_loop(impl.get, ops, impl.sync), len(ops), cfg.reps, warmup=True))

    async def inval(impl: Impl) -> None:  # a fresh store holding exactly inval_total keys
        g.put(impl.name, impl.kind, "inval", await time_invalidation(impl, cfg, "inv", cfg.reps))

    await run_each(factories(cfg, "main"), g, body)
    await run_each(factories(cfg, "inv"), g, inval)
    return [g]
