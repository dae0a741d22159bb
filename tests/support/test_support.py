"""Quick checks that the test-support servers and proxy really work."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.sentinel import Sentinel

from .proxy import DelayProxy
from .servers import (
    RedisCluster,
    RedisSentinelSetup,
    RedisServer,
    RespError,
    free_port,
    redis_server_binary,
    send_command,
)


def test_free_port_gives_distinct_bindable_ports() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_missing_redis_server_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="apt-get install redis-server"):
        redis_server_binary()


@pytest.mark.redis
def test_server_pause_kill_restart_keep_the_port() -> None:
    with RedisServer() as server:
        port = server.port
        assert server.url == f"redis://127.0.0.1:{port}/0"
        assert send_command(port, "SET", "k", "v") == "OK"
        assert server.command("GET", "k") == "v"
        with pytest.raises(RespError, match="unknown command"):
            server.command("NO-SUCH-COMMAND")

        server.pause()
        assert server.is_paused
        assert not server.ping(timeout=0.2)
        server.resume()
        assert server.ping()

        server.kill()
        assert not server.is_running
        assert not server.ping()
        server.restart()
        assert server.port == port
        assert server.ping()
        assert server.command("GET", "k") is None  # no persistence

        with RedisServer(replica_of=server) as replica:
            assert replica.info()["role"] == "slave"
            assert replica.info()["master_port"] == str(port)
    assert not server.is_running
    assert not server.directory.exists()


@pytest.mark.redis
async def test_paused_server_times_out_a_redis_py_client() -> None:
    with RedisServer() as server:
        client = aioredis.Redis.from_url(server.url, socket_timeout=0.3)
        try:
            assert await client.ping()
            server.pause()
            with pytest.raises(aioredis.RedisError):
                await client.get("k")
            server.resume()
            assert await client.ping()
        finally:
            await client.aclose()


@pytest.mark.cluster
async def test_cluster_serves_redis_py_and_fails_over() -> None:
    started = time.monotonic()
    with RedisCluster() as cluster:
        assert time.monotonic() - started < 15
        assert len(cluster.nodes) == 6
        assert len(cluster.primaries()) == 3
        assert len(cluster.replicas()) == 3
        startup_nodes = [ClusterNode(host, port) for host, port in cluster.startup_nodes]

        client = aioredis.RedisCluster(startup_nodes=startup_nodes, decode_responses=True)
        try:
            for i in range(30):
                await client.set(f"key-{i}", str(i))
            assert await client.get("key-7") == "7"
        finally:
            await client.aclose()

        # Pause the primary serving key-7; its replica takes over at once.
        slot = int(str(cluster.nodes[0].command("CLUSTER", "KEYSLOT", "key-7")))
        old = next(p for p in cluster.primaries() if _serves(p, slot))
        new = await asyncio.to_thread(cluster.failover, old, how="pause")
        assert new in cluster.primaries()
        assert old not in cluster.primaries()

        client = aioredis.RedisCluster.from_url(cluster.url, decode_responses=True)
        try:
            assert await client.get("key-7") == "7"  # replicated before the failover
            await client.set("key-7", "after")
            assert await client.get("key-7") == "after"
        finally:
            await client.aclose()

        # The old primary comes back as a replica of the new one.
        old.resume()
        cluster.wait_until_ok()
        assert old in cluster.replicas_of(new)

        # Kill another primary and let an election (FORCE) promote its replica.
        victim = next(p for p in cluster.primaries() if p is not new)
        promoted = cluster.failover(victim, how="kill", promote="force")
        assert promoted in cluster.primaries()
        victim.restart()
        cluster.wait_until_ok()
        assert victim in cluster.replicas_of(promoted)
    assert not any(node.is_running for node in cluster.nodes)


def _serves(node: RedisServer, slot: int) -> bool:
    """True if ``node`` reports that it serves ``slot``."""
    reply = node.command("CLUSTER", "SLOTS")
    assert isinstance(reply, list)
    for entry in reply:
        assert isinstance(entry, list)
        start, end, owner = entry[0], entry[1], entry[2]
        assert isinstance(start, int)
        assert isinstance(end, int)
        assert isinstance(owner, list)
        if start <= slot <= end and owner[1] == node.port:
            return True
    return False


@pytest.mark.sentinel
async def test_sentinel_failover_moves_the_master() -> None:
    with RedisSentinelSetup() as setup:
        sentinel = Sentinel(setup.sentinel_addresses, socket_timeout=1.0)  # type: ignore[no-untyped-call]
        try:
            first = setup.primary
            assert await sentinel.discover_master(setup.service_name) == first.address
            master = sentinel.master_for(setup.service_name, decode_responses=True)
            try:
                await master.set("k", "v")
            finally:
                await master.aclose()

            promoted = await asyncio.to_thread(setup.failover)  # SENTINEL FAILOVER
            assert promoted.address != first.address
            assert setup.primary is promoted
            assert setup.replica is first
            assert await sentinel.discover_master(setup.service_name) == promoted.address
            master = sentinel.master_for(setup.service_name, decode_responses=True)
            try:
                assert await master.get("k") == "v"
                await master.set("k", "w")
            finally:
                await master.aclose()

            setup.wait_until_replicating()
            assert setup.replica.info()["master_port"] == str(promoted.port)
        finally:
            for connection in sentinel.sentinels:
                await connection.aclose()


@pytest.mark.sentinel
@pytest.mark.slow
def test_sentinel_notices_a_killed_primary() -> None:
    with RedisSentinelSetup() as setup:
        old = setup.primary
        promoted = setup.failover(how="kill")
        assert setup.master_address() == promoted.address
        old.restart()
        setup.wait_until_replicating()
        assert old.info()["role"] == "slave"


@pytest.mark.redis
async def test_proxy_delays_replies_and_drops_connections() -> None:
    with RedisServer() as server:
        async with DelayProxy("127.0.0.1", server.port) as proxy:
            client = aioredis.Redis.from_url(proxy.url)
            try:
                started = time.monotonic()
                assert await client.ping()
                assert time.monotonic() - started < 0.2

                proxy.delay = 0.3
                started = time.monotonic()
                assert await client.ping()
                assert time.monotonic() - started >= 0.3
                proxy.delay = 0.0
            finally:
                await client.aclose()

            await _eventually(lambda: proxy.connection_count == 0)  # client closed

            # A server-side close (QUIT) is passed on, and the connection ends.
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(b"QUIT\r\n")
                assert await reader.read() == b"+OK\r\n"
            finally:
                writer.close()
                await asyncio.gather(writer.wait_closed(), return_exceptions=True)
            await _eventually(lambda: proxy.connection_count == 0)

            # drop_all() cuts live connections.
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            try:
                writer.write(b"PING\r\n")
                assert await reader.readline() == b"+PONG\r\n"
                assert proxy.connection_count == 1
                assert proxy.drop_all() == 1
                try:
                    rest = await asyncio.wait_for(reader.read(100), 2)
                except ConnectionError:
                    rest = b""
                assert rest == b""  # reset or closed, and nothing else arrives
            finally:
                writer.close()
                await asyncio.gather(writer.wait_closed(), return_exceptions=True)
            await _eventually(lambda: proxy.connection_count == 0)
            assert proxy.total_connections >= 3
        assert proxy.connection_count == 0


async def _eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.mark.redis
async def test_proxy_survives_a_cancellation_storm() -> None:
    with RedisServer() as server:
        proxy = await DelayProxy("127.0.0.1", server.port, delay=0.5).start()
        client = aioredis.Redis.from_url(proxy.url, max_connections=50)

        async def ping_with_timeout() -> float | None:
            """Seconds a PING took, or None if its 0.05 s timeout cancelled it."""
            started = time.monotonic()
            try:
                await asyncio.wait_for(client.ping(), 0.05)
            except (TimeoutError, aioredis.RedisError):
                return None
            return time.monotonic() - started

        try:
            results = await asyncio.gather(*(ping_with_timeout() for _ in range(50)))
            # No reply can beat the proxy's delay (on a badly starved loop a
            # cancelled PING may still complete, but never early).
            assert all(took is None or took >= 0.5 for took in results), results
            assert proxy.connection_count >= 1
        finally:
            await client.aclose()
            started = time.monotonic()
            await proxy.stop()
        assert time.monotonic() - started < 2
        assert proxy.connection_count == 0
        assert proxy.total_connections >= 1
