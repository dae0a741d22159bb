"""Redis caches on a private redis-server: get/set sequential and with 50 concurrent tasks
(µs/op); pattern invalidation (ms per call)."""

from __future__ import annotations

from functools import partial
from urllib.parse import urlparse

import redis.asyncio as aredis

from .common import (
    CONCURRENCY,
    TTL,
    VALUES,
    Config,
    Group,
    Impl,
    build,
    check,
    close_all,
    concurrent,
    get_loop,
    getter,
    holds,
    interleaved,
    keys,
    populate_all,
    set_loop,
    setter,
    spread,
)
from .file import invalidation
from .ours import ours

POOL = CONCURRENCY  # every client gets a pool of 50 connections


def raw_client(cfg: Config, db: int) -> aredis.Redis:
    u = urlparse(cfg.redis_url)
    return aredis.Redis(host=u.hostname, port=u.port, db=db, max_connections=POOL)


async def flush_private(cfg: Config) -> None:
    """FLUSHALL of the benchmark's *private* server only (started by __main__ on a free port)."""
    assert cfg.private_redis, "refusing to flush a Redis server the benchmark did not start"
    r = raw_client(cfg, 0)
    await r.flushall()
    await r.aclose()


async def _scan_unlink(r: aredis.Redis, pattern: str) -> int:
    n, batch = 0, []
    async for k in r.scan_iter(match=pattern, count=5000):
        batch.append(k)
        if len(batch) >= 1000:
            n += await r.unlink(*batch)
            batch.clear()
    return n + (await r.unlink(*batch) if batch else 0)


def _pipelined_set_many(r: aredis.Redis):
    async def set_many(mapping):
        pipe = r.pipeline(transaction=False)
        for k, v in mapping.items():
            pipe.set(k, v, ex=TTL)
        await pipe.execute()

    return set_many


def factories(cfg: Config):
    """Each contender works in a database of its own: same key names, no interference."""
    u = urlparse(cfg.redis_url)
    url = f"redis://{u.hostname}:{u.port}"

    async def floor():
        r = raw_client(cfg, 1)
        return Impl(
            "floor (redis-py asyncio)",
            "floor",
            r.get,
            partial(r.set, ex=TTL),
            close=r.aclose,
            delete_pattern=partial(_scan_unlink, r),
            extra={"set_many": _pipelined_set_many(r)},
        )

    async def pipelined():
        r = raw_client(cfg, 2)
        return Impl(
            "floor (pipelined, 1 connection)",
            "ref",
            r.get,
            None,
            close=r.aclose,
            extra={"set_many": _pipelined_set_many(r), "client": r},
        )

    async def mget():
        r = raw_client(cfg, 7)
        return Impl(
            "floor (MGET of 50, 1 connection)",
            "ref",
            r.get,
            None,
            close=r.aclose,
            extra={"set_many": _pipelined_set_many(r), "client": r, "mget": True},
        )

    async def mine():
        Red = ours("RedisBackend")
        if Red is None:
            return None
        b = Red(f"{url}/3", namespace="bench", max_connections=POOL)
        await b.init()
        return Impl(
            "ignite_cache RedisBackend",
            "ours",
            b.get,
            partial(b.set, ex=TTL),
            close=b.close,
            delete_pattern=b.delete_pattern,
            extra={"set_many": partial(b.set_many, ex=TTL)},
        )

    async def cashews_():
        from cashews import Cache

        c = Cache()
        c.setup(f"{url}/4", max_connections=POOL, client_side=False)  # its default pool: 10
        await c.init()

        async def set_many(mapping):
            await c.set_many(mapping, expire=TTL)

        return Impl(
            "cashews redis://",
            "peer",
            c.get,
            partial(c.set, expire=TTL),
            close=c.close,
            delete_pattern=c.delete_match,
            extra={"set_many": set_many},
        )

    async def aiocache_():
        from aiocache import RedisCache
        from aiocache.serializers import NullSerializer

        c = RedisCache(
            serializer=NullSerializer(encoding=None),
            endpoint=u.hostname,
            port=u.port,
            db=5,
            pool_max_size=POOL,
        )

        async def set_many(mapping):
            await c.multi_set(list(mapping.items()), ttl=TTL)

        return Impl(
            "aiocache RedisCache",
            "peer",
            c.get,
            partial(c.set, ttl=TTL),
            close=c.close,
            extra={"set_many": set_many},
        )

    async def fastapi_cache2():
        from fastapi_cache.backends.redis import RedisBackend

        r = raw_client(cfg, 6)
        c = RedisBackend(r)

        async def clear(pattern):  # its only bulk delete: clear(namespace) = KEYS ns:* + DEL
            return await c.clear(namespace=pattern.removesuffix(":*"))

        return Impl(
            "fastapi-cache2 RedisBackend",
            "peer",
            c.get,
            partial(c.set, expire=TTL),
            close=r.aclose,
            delete_pattern=clear,
            extra={"set_many": _pipelined_set_many(r)},
        )

    return [floor, pipelined, mget, mine, cashews_, aiocache_, fastapi_cache2]


def pipelined_run(r: aredis.Redis, op: str, ks: list[str], value=None):
    """The pipelined floor: one connection, CONCURRENCY commands per round trip."""

    async def mget():
        for i in range(0, len(ks), CONCURRENCY):
            await r.mget(ks[i : i + CONCURRENCY])

    async def run():
        for i in range(0, len(ks), CONCURRENCY):
            pipe = r.pipeline(transaction=False)
            for k in ks[i : i + CONCURRENCY]:
                pipe.get(k) if op == "get" else pipe.set(k, value, ex=TTL)
            await pipe.execute()

    return mget if op == "mget" else run


def sequential(make_run):
    return lambda impl: None if impl.kind == "ref" else make_run(impl)


def fifty(op: str, ks: list[str], value=None):
    def make(impl: Impl):
        if impl.extra.get("mget"):
            return pipelined_run(impl.extra["client"], "mget", ks) if op == "get" else None
        if impl.kind == "ref":
            return pipelined_run(impl.extra["client"], op, ks, value)
        loop = partial(set_loop, impl.set, value=value) if op == "set" else partial(get_loop, impl.get)
        return concurrent(lambda chunk: loop(ks=chunk), ks)

    return make


async def run(cfg: Config) -> list[Group]:
    g = Group(
        "redis", "Redis backends (µs/op; ×50 = 50 concurrent tasks, throughput)", "floor (redis-py asyncio)"
    )
    if not cfg.redis_url:
        g.notes.append("no private redis-server could be started: group skipped.")
        return [g]
    for size in VALUES:
        for op in ("get", "set"):
            g.col(f"{op} {size}", f"{op} {size}")
            g.col(f"{op} {size} x50", f"{op} {size} ×50")
    g.col("inval", f"delete_pattern {cfg.inval_match:,} of {cfg.inval_total:,}", unit="ms/call")
    g.notes.append(
        f"{cfg.slow_ops:,} ops per repetition spread over 10k keys; every client has "
        f"a pool of {POOL} connections; ×50 columns run 50 asyncio tasks at once "
        "(checked: all 50 in flight together). The pipelined floor sends 50 commands "
        "per round trip on one connection, the MGET floor 50 keys per MGET. ignite_cache "
        "coalesces concurrent GETs into MGETs. Libraries use their default serializers."
    )
    g.notes.append(
        "Floor invalidation: SCAN MATCH (COUNT 5000) + UNLINK per 1000 keys. fastapi-cache2's only "
        "bulk delete is clear(namespace) (KEYS + DEL in one Lua call); aiocache has none."
    )
    await flush_private(cfg)
    impls = await build(factories(cfg), g)
    try:
        for size, value in VALUES.items():
            ks = keys(f"r{size}", cfg.n_keys)
            await populate_all(g, impls, ks, value)
            ops = spread(ks, cfg.slow_ops)
            for op, make in (("set", setter(ops, value)), ("get", getter(ops))):
                await interleaved(
                    g, f"{op} {size}", impls, sequential(make), len(ops), cfg.reps, warmup=op == "get"
                )
                await interleaved(
                    g, f"{op} {size} x50", impls, fifty(op, ops, value), len(ops), cfg.reps, warmup=True
                )
            await check(
                g,
                [i for i in impls if i.kind != "ref"],
                "warm key is not a hit",
                holds(spread(ops, 20), value),
            )
        await flush_private(cfg)
        await invalidation(g, [i for i in impls if i.kind != "ref"], cfg)
    finally:
        await close_all(impls)
        await flush_private(cfg)
    return [g]
