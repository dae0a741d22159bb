"""RedisBackend against real servers: the blocking pool, URL forms, namespaces, other clients."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from ignite_cache import CacheBackendError, RedisBackend

pytestmark = pytest.mark.redis


def with_path(url: str, path: str) -> str:
    return urlsplit(url)._replace(path=path).geturl()


def clients_named(raw: Any, name: str, *, settle: int | None = None) -> int:
    """Connections named ``name``; with ``settle``, wait (up to 1 s) for that count, since the
    server notices a closed socket a moment after the client closed it."""
    deadline = time.monotonic() + 1.0
    while True:
        count = sum(1 for c in raw.client_list() if c.get("name") == name)
        if settle is None or count == settle or time.monotonic() > deadline:
            return count
        time.sleep(0.01)


async def test_blocking_pool_serves_64_callers_with_8_connections(
    redis_url: str, namespace: str, raw_redis: Any
) -> None:
    url = f"{redis_url}?client_name={namespace}"
    async with RedisBackend(url, namespace=namespace, max_connections=8) as cache:

        async def caller(i: int) -> str | bytes | None:
            await cache.set(f"k{i}", str(i))
            await cache.incr("hits")
            return await cache.get(f"k{i}")

        results = await asyncio.gather(*(caller(i) for i in range(64)))
        assert results == [str(i) for i in range(64)]
        assert await cache.get("hits") == "64"
        assert 1 <= clients_named(raw_redis, namespace) <= 8
        await cache.flush()
    assert clients_named(raw_redis, namespace) == 0


async def test_callers_wait_for_the_only_connection(redis_url: str, namespace: str) -> None:
    async with RedisBackend(redis_url, namespace=namespace, max_connections=1, pool_timeout=5) as cache:
        results = await asyncio.gather(*(cache.set_many({f"k{i}": "v"}) for i in range(30)))
        assert all(results)
        assert await cache.exists(*(f"k{i}" for i in range(30))) == 30
        await cache.flush()


@pytest.mark.parametrize("first_use", ["set", "get", "ping", "scan"])
async def test_close_after_use_without_init_releases_the_connections(
    redis_url: str, namespace: str, raw_redis: Any, first_use: str
) -> None:
    cache = RedisBackend(f"{redis_url}?client_name={namespace}", namespace=namespace)
    calls = {"set": lambda: cache.set("k", "v"), "get": lambda: cache.get("k"), "ping": cache.ping}
    calls["scan"] = lambda: cache.scan(0)
    try:
        await calls[first_use]()  # first use without init()
        assert clients_named(raw_redis, namespace) == 1
        await cache.close()
        assert clients_named(raw_redis, namespace, settle=0) == 0, "close() left the pool's connection open"
        await calls[first_use]()  # and use after close() reopens, to be closed again
        await cache.close()
        assert clients_named(raw_redis, namespace, settle=0) == 0, "close() left the pool's connection open"
    finally:
        await cache._close()  # never leak a socket into later tests, whatever happened above


async def test_password_in_the_url(private_redis: Any, namespace: str) -> None:
    server = private_redis()
    with redis.Redis(port=server.port) as admin:
        admin.config_set("requirepass", "s3cr3t-pw")
    base = f"127.0.0.1:{server.port}/0"
    for url in (f"redis://:s3cr3t-pw@{base}", f"redis://default:s3cr3t-pw@{base}"):
        async with RedisBackend(url, namespace=namespace) as cache:
            await cache.set("k", "v")
            assert await cache.get("k") == "v"
    wrong = RedisBackend(f"redis://:wrong-pw@{base}", namespace=namespace)
    with pytest.raises(CacheBackendError) as error:
        await wrong.init()
    assert f"127.0.0.1:{server.port}" in str(error.value)
    assert "wrong-pw" not in str(error.value)
    missing = RedisBackend(f"redis://{base}", namespace=namespace)
    with pytest.raises(CacheBackendError):
        await missing.init()


async def test_unix_socket_url_with_a_db(private_redis: Any, namespace: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="rs-"))  # short: socket paths are limited to ~100 bytes
    socket_path = folder / "redis.sock"
    server = private_redis("--unixsocket", str(socket_path), "--unixsocketperm", "700")
    async with RedisBackend(f"unix://{socket_path}?db=2", namespace=namespace) as cache:
        await cache.set("k", "via socket")
        assert await cache.get("k") == "via socket"
    with redis.Redis(port=server.port, db=2) as raw:
        assert raw.get(f"{namespace}:k") == b"via socket"
    with redis.Redis(port=server.port, db=0) as raw:
        assert raw.get(f"{namespace}:k") is None


async def test_the_db_number_in_the_url_is_honoured(redis_url: str, namespace: str) -> None:
    name = f"{namespace}:k"
    async with RedisBackend(with_path(redis_url, "/3"), namespace=namespace) as cache:
        try:
            await cache.set("k", "in db 3")
            with redis.Redis.from_url(with_path(redis_url, "/3")) as db3:
                assert db3.get(name) == b"in db 3"
            with redis.Redis.from_url(with_path(redis_url, "/4")) as db4:
                assert db4.get(name) is None
        finally:
            await cache.flush()


@pytest.mark.parametrize("suffix", ["", "*", "?[x]", "\\", "[^a]-"])
async def test_flush_and_delete_pattern_stay_inside_the_namespace(
    redis_url: str, namespace: str, raw_redis: Any, suffix: str
) -> None:
    """Even a namespace full of glob characters is matched literally."""
    mine = namespace + suffix
    outside = [
        f"{namespace}X:k",  # matched by "mine*" if the namespace were not escaped
        f"{namespace}a:k",
        f"{namespace}:k" if suffix else f"{namespace}-:k",
        namespace,
        f"x{mine}:k",
    ]
    for name in outside:
        raw_redis.set(name, b"outside")
    async with RedisBackend(redis_url, namespace=mine) as cache:
        await cache.set_many({f"k{i}": "v" for i in range(20)})
        raw_redis.set(f"{mine}:\xff".encode("latin-1"), b"a foreign non-UTF-8 key inside the namespace")
        assert await cache.delete_pattern("k1*") == 11
        assert await cache.delete_pattern("*") == 10
        await cache.set("k", "v")
        assert await cache.flush()
        assert raw_redis.exists(f"{mine}:k") == 0
    assert raw_redis.mget(outside) == [b"outside"] * len(outside)


async def test_str_is_stored_as_plain_utf8_and_bytes_keep_their_type(
    redis_url: str, namespace: str, raw_redis: Any
) -> None:
    async with RedisBackend(redis_url, namespace=namespace) as cache:
        await cache.set("s", "żółć")
        await cache.set("b", b"\x01raw")
        assert raw_redis.get(f"{namespace}:s") == "żółć".encode()  # any client can read it
        assert await cache.get("b") == b"\x01raw"
        await cache.flush()


@pytest.mark.parametrize(
    ("written", "read"),
    [
        pytest.param(b"\xff\xfe not utf-8", b"\xff\xfe not utf-8", id="not-utf8-reads-as-bytes"),
        pytest.param(b"\xc3\x28", b"\xc3\x28", id="invalid-continuation"),
        pytest.param("żółć".encode(), "żółć", id="utf8-reads-as-str"),
        pytest.param(b"", "", id="empty"),
        pytest.param(b"42", "42", id="number"),
        pytest.param(b"\x00z", b"\x00z", id="leading-nul-without-a-tag"),
    ],
)
async def test_values_written_by_another_client(
    redis_url: str, namespace: str, raw_redis: Any, written: bytes, read: str | bytes
) -> None:
    raw_redis.set(f"{namespace}:k", written)
    async with RedisBackend(redis_url, namespace=namespace) as cache:
        got = await cache.get("k")
        assert type(got) is type(read)
        assert got == read
        assert await cache.get_many(["k"]) == [read]
        await cache.flush()


async def test_incr_of_a_counter_written_by_another_client(
    redis_url: str, namespace: str, raw_redis: Any
) -> None:
    raw_redis.set(f"{namespace}:n", b"10", ex=100)
    async with RedisBackend(redis_url, namespace=namespace) as cache:
        assert await cache.incr("n", 5) == 15
        assert raw_redis.get(f"{namespace}:n") == b"15"
        assert await cache.ttl("n") in (99, 100)
        await cache.flush()


async def test_unreachable_server_is_a_backend_error_at_init() -> None:
    cache = RedisBackend("redis://127.0.0.1:1/0", connect_timeout=0.2, retries=0)
    with pytest.raises(CacheBackendError, match=r"redis://127\.0\.0\.1:1/0"):
        await cache.init()
    with pytest.raises(CacheBackendError):
        await cache.get("k")
    assert await cache.ping() is False
    await cache.close()


async def test_breaker_closes_again_when_redis_was_down_at_first_use(
    private_redis: Any, namespace: str
) -> None:
    """A probe that has to open the client first must still be able to close the breaker."""
    server = private_redis()
    server.stop()
    cache = RedisBackend(
        server.url,
        namespace=namespace,
        breaker_threshold=2,
        breaker_cooldown=0.2,
        connect_timeout=0.1,
        retries=0,
    )
    try:
        for _ in range(3):
            with pytest.raises(CacheBackendError):
                await cache.get("k")
        assert cache.breaker.state == "open"
        server.start()
        await asyncio.sleep(0.3)
        assert await cache.get("k") is None
        assert cache.breaker.state == "closed"
        assert await cache.set("k", "v")
        assert await cache.get("k") == "v"
    finally:
        await cache.close()
