"""File (SQLite) caches: get hit and set (µs/op), pattern invalidation (ms per call)."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
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


class SqliteFloor:
    """The floor: raw sqlite3 on the event loop, WAL, autocommit, cached prepared statements."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value BLOB, expires REAL)")

    async def get(self, key):
        row = self.db.execute("SELECT value, expires FROM cache WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[1] < time.time() else row[0]

    async def set(self, key, value, ttl=TTL):
        self.db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, value, time.time() + ttl))
        return True

    async def set_many(self, mapping, ttl=TTL):
        exp = time.time() + ttl
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", [(k, v, exp) for k, v in mapping.items()]
            )

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
        return Impl(
            "floor (raw sqlite3, WAL)",
            "floor",
            f.get,
            f.set,
            close=f.close,
            delete_pattern=f.delete_pattern,
            extra={"set_many": f.set_many},
        )

    async def mine():
        File = ours("FileBackend")
        if File is None:
            return None
        b = File(d + "-ours", namespace="bench", max_size=2**33)
        await b.init()
        return Impl(
            "ignite_cache FileBackend",
            "ours",
            b.get,
            partial(b.set, ex=TTL),
            close=b.close,
            delete_pattern=b.delete_pattern,
            extra={"set_many": partial(b.set_many, ex=TTL)},
        )

    async def diskcache_direct():
        import diskcache

        c = diskcache.Cache(d + "-dc")

        return Impl(
            "diskcache (sync, on the loop)",
            "peer",
            c.get,
            partial(c.set, expire=TTL),
            sync=True,
            close=c.close,
            extra={"set_many": partial(_async, _dc_set_many, c)},
            delete_pattern=partial(_async, _diskcache_delete_pattern, c),
        )

    async def diskcache_thread():
        import diskcache

        c = diskcache.Cache(d + "-dct")

        async def get(k):
            return await asyncio.to_thread(c.get, k)

        async def set_(k, v):
            return await asyncio.to_thread(c.set, k, v, expire=TTL)

        return Impl(
            "diskcache via asyncio.to_thread",
            "peer",
            get,
            set_,
            close=c.close,
            extra={"set_many": partial(asyncio.to_thread, _dc_set_many, c)},
            delete_pattern=lambda p: asyncio.to_thread(_diskcache_delete_pattern, c, p),
        )

    async def cashews_disk():
        from cashews import Cache

        c = Cache()
        # shards=0: cashews' scan/delete_match see nothing in a sharded (FanoutCache) store
        c.setup(f"disk://?directory={d}-cashews&shards=0")
        await c.init()

        async def set_many(mapping):
            await c.set_many(mapping, expire=TTL)

        return Impl(
            "cashews disk:// (diskcache in executor)",
            "peer",
            c.get,
            partial(c.set, expire=TTL),
            close=c.close,
            delete_pattern=c.delete_match,
            extra={"set_many": set_many},
        )

    return [floor, mine, diskcache_direct, diskcache_thread, cashews_disk]


async def _async(fn, *args):
    return fn(*args)


def deleter(prefix: str):
    """``make_run`` deleting group ``{prefix}{i}:*``, a fresh group on each call."""

    def make(impl: Impl):
        state = {"group": 0}

        async def run():
            await impl.delete_pattern(f"{prefix}{state['group']}:*")
            state["group"] += 1

        return run if impl.delete_pattern is not None else None

    return make


async def invalidation(g: Group, impls: list[Impl], cfg: Config, col: str = "inval") -> None:
    """ms to delete ``inval_match`` keys among ``inval_total`` (one group per repetition)."""
    groups = cfg.inval_total // cfg.inval_match
    ks = [f"inv{n}:{i}" for n in range(groups) for i in range(cfg.inval_match)]
    await populate_all(g, impls, ks, VALUES["100B"])
    await interleaved(g, col, impls, deleter("inv"), 1, cfg.reps, scale=1e3)
    await check(
        g,
        [i for i in impls if i.delete_pattern],
        "pattern delete missed keys",
        holds([f"inv{r}:{i}" for r in range(cfg.reps) for i in (0, cfg.inval_match - 1)], None),
    )
    await check(
        g,
        [i for i in impls if i.delete_pattern],
        "pattern delete deleted too much",
        holds([f"inv{cfg.reps}:0", f"inv{groups - 1}:{cfg.inval_match - 1}"], VALUES["100B"]),
    )


async def run(cfg: Config) -> list[Group]:
    g = Group("file", "File backends (µs/op; invalidation in ms)", "floor (raw sqlite3, WAL)")
    for size in VALUES:
        g.col(f"get hit {size}", f"get hit {size}")
        g.col(f"set {size}", f"set {size}")
    g.col("inval", f"delete_pattern {cfg.inval_match:,} of {cfg.inval_total:,}", unit="ms/call")
    g.notes.append(
        f"{cfg.slow_ops:,} ops per repetition spread over 10k keys; set = overwrite "
        "of stored keys. The floor commits every set (autocommit, synchronous=NORMAL)."
    )
    g.notes.append(
        "diskcache has no pattern delete: it scans all keys (fnmatch) and deletes "
        "matches in one transaction; cashews disk:// runs with shards=0 (its "
        "delete_match finds nothing in a sharded store)."
    )
    impls = await build(factories(cfg, "main"), g)
    try:
        for size, value in VALUES.items():
            ks = keys(f"f{size}", cfg.n_keys)
            await populate_all(g, impls, ks, value)
            ops = spread(ks, cfg.slow_ops)
            await interleaved(g, f"set {size}", impls, setter(ops, value), len(ops), cfg.reps)
            await check(g, impls, "warm key is not a hit", holds(spread(ops, 20), value))
            await interleaved(g, f"get hit {size}", impls, getter(ops), len(ops), cfg.reps, True)
    finally:
        await close_all(impls)
    impls = await build(factories(cfg, "inv"), g)  # fresh stores holding only inval_total keys
    try:
        await invalidation(g, impls, cfg)
    finally:
        await close_all(impls)
    return [g]
