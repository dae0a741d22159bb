"""Redis caches (private redis-server): get/set sequential and 50 concurrent tasks, µs/op;
pattern invalidation, ms per call."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlparse

import redis.asyncio as aredis

from .common import (CONCURRENCY, TTL, VALUES, Config, Group, Impl, concurrent, get_loop, keys,
                     measure, run_each, set_loop, spread, value_of)
from .file import populate, time_invalidation
from .ours import ours

POOL = CONCURRENCY  # every client gets a pool of 50 connections


def raw_client(cfg: Config) -> aredis.Redis:
    u = urlparse(cfg.redis_url)
    return aredis.Redis(host=u.hostname, port=u.port, max_connections=POOL)


async def flush_private(cfg: Config) -> None:
    """FLUSHDB of the benchmark's *private* server only (started by __main__ on a free port)."""
    assert cfg.private_redis, "refusing to flush a Redis server we did not start"
    r = raw_client(cfg)
    await r.flushdb()
    await r.aclose()


async def _scan_unlink(r: aredis.Redis, pattern: str) -> int:
    n, batch = 0, []
    async for k in r.scan_iter(match=pattern, count=1000):
        batch.append(k)
        if len(batch) >= 1000:
            n += await r.unlink(*batch)
            batch.clear()
    return n + (await r.unlink(*batch) if batch else 0)


def factories(cfg: Config):
    u = urlparse(cfg.redis_url)

    async def floor():
        r = raw_client(cfg)

        async def set_many(mapping):
            pipe = r.pipeline(transaction=False)
            for k, v in mapping.items():
                pipe.set(k, v, ex=TTL)
            await pipe.execute()
        return Impl("floor (redis-py asyncio)", "floor", r.get, partial(r.set, ex=TTL),
                    close=r.aclose, delete_pattern=partial(_scan_unlink, r),
                    extra={"set_many": set_many, "client": r})

    async def mine():
        Red = ours("RedisBackend")
        if Red is None:
            return None
        b = Red(cfg.redis_url, namespace="bench", max_connections=POOL)
        await b.init()
        return Impl("ignite_cache RedisBackend", "ours", b.get, partial(b.set, ex=TTL),
                    close=b.close, delete_pattern=b.delete_pattern,
                    extra={"set_many": partial(b.set_many, ex=TTL)})

    async def cashews_():
        from cashews import Cache
        c = Cache()
        c.setup(cfg.redis_url, max_connections=POOL, client_side=False)  # default pool: 10
        await c.init()

        async def set_many(mapping):
            await c.set_many(mapping, expire=TTL)
        return Impl("cashews redis://", "peer", c.get, partial(c.set, expire=TTL), close=c.close,
                    delete_pattern=c.delete_match, extra={"set_many": set_many})

    async def aiocache_():
        from aiocache import RedisCache
        from aiocache.serializers import NullSerializer
        c = RedisCache(serializer=NullSerializer(encoding=None), endpoint=u.hostname, port=u.port,
                       pool_max_size=POOL)
        return Impl("aiocache RedisCache", "peer", c.get, partial(c.set, ttl=TTL), close=c.close)

    async def fastapi_cache2():
        from fastapi_cache.backends.redis import RedisBackend
        r = raw_client(cfg)
        c = RedisBackend(r)

        async def clear(pattern):  # its only bulk delete: clear(namespace) = KEYS ns:* + DEL
            return await c.clear(namespace=pattern.removesuffix(":*"))
        return Impl("fastapi-cache2 RedisBackend", "peer", c.get, partial(c.set, expire=TTL),
                    close=r.aclose, delete_pattern=clear)

    return [floor, mine, cashews_, aiocache_, fastapi_cache2]


def pipelined(r: aredis.Redis, op: str, ks: list[str], value=None):
    """The pipelined floor: one connection, CONCURRENCY commands per round trip."""
    async def run():
        for i in range(0, len(ks), CONCURRENCY):
            pipe = r.pipeline(transaction=False)
            for k in ks[i:i + CONCURRENCY]:
                pipe.get(k) if op == "get" else pipe.set(k, value, ex=TTL)
            await pipe.execute()
    return run


async def run(cfg: Config) -> list[Group]:
    g = Group("redis", "Redis backends (µs/op; ×50 = 50 concurrent tasks, throughput)",
              "floor (redis-py asyncio)")
    if not cfg.redis_url:
        g.notes.append("no private redis-server could be started: group skipped.")
        return [g]
    for size in VALUES:
        for op in ("get", "set"):
            g.col(f"{op} {size}", f"{op} {size}")
            g.col(f"{op} {size} x50", f"{op} {size} ×50")
    g.col("inval", f"delete_pattern {cfg.inval_match:,} of {cfg.inval_total:,}", unit="ms/call")
    g.notes.append(f"{cfg.slow_ops:,} ops per repetition spread over 10k keys; every client has "
                   f"a pool of {POOL} connections; ×50 columns run 50 asyncio tasks at once "
                   "(checked: all 50 in flight together). The pipelined floor sends 50 commands "
                   "per round trip on one connection. Libraries use their default serializers.")
    g.notes.append("fastapi-cache2's only bulk delete is clear(namespace) (KEYS + DEL in Lua); "
                   "aiocache has none.")
    overlap: dict = {}

    async def body(impl: Impl) -> None:
        await flush_private(cfg)
        for size, value in VALUES.items():
            ks = keys(f"r{size}", cfg.n_keys)
            await populate(impl, ks, value)
            ops = spread(ks, cfg.slow_ops)
            for op in ("set", "get"):
                loop = (partial(set_loop, impl.set, value=value) if op == "set"
                        else partial(get_loop, impl.get))
                g.put(impl.name, impl.kind, f"{op} {size}", await measure(
                    loop(ks=ops), len(ops), cfg.reps, warmup=op == "get"))
                g.put(impl.name, impl.kind, f"{op} {size} x50", await measure(
                    concurrent(lambda c: loop(ks=c), ops, stats=overlap), len(ops), cfg.reps,
                    warmup=True))
                assert overlap.pop("overlap") and overlap.pop("workers") == CONCURRENCY
            assert await value_of(impl, ops[-1]) == value, "warm key is not a hit"
            if impl.kind == "floor":
                r = impl.extra["client"]
                for op in ("get", "set"):
                    g.put("floor (pipelined, 1 connection)", "ref", f"{op} {size} x50", await measure(
                        pipelined(r, op, ops, value), len(ops), cfg.reps, warmup=True))

    async def inval(impl: Impl) -> None:
        await flush_private(cfg)
        if impl.delete_pattern is not None:
            g.put(impl.name, impl.kind, "inval", await time_invalidation(impl, cfg, "inv", cfg.reps))

    await run_each(factories(cfg), g, body)
    await run_each(factories(cfg), g, inval)
    await flush_private(cfg)
    return [g]
