"""Shared fixtures: a real Redis, a fake clock, and one backend of each kind.

``backend`` and ``make_backend`` are parametrised over ``memory``, ``file`` and ``redis``
(the last one carries the ``redis`` mark). Memory and file backends run on a
``FakeClock``, so TTL tests move time instead of sleeping; only Redis needs a short real
wait, which the ``advance`` fixture hides.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from ignite_cache import CacheBackend, CacheError, FileBackend, MemoryBackend, RedisBackend

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

BACKEND_KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("file", id="file"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


class FakeClock:
    """A clock for the memory and file backends: ``clock()`` is now, ``advance(s)`` moves it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- private redis-server processes ------------------------------------------------------------


class PrivateRedis(Protocol):
    """What tests use of a private server (``tests/support``'s ``RedisServer`` or the fallback)."""

    @property
    def port(self) -> int: ...

    @property
    def url(self) -> str: ...

    def close(self) -> None: ...


def _support_servers() -> Any:
    """``tests/support/servers.py`` if it is there (it is written by another engineer)."""
    if not (Path(__file__).parent / "support" / "servers.py").is_file():
        return None
    for name in ("tests.support.servers", "support.servers"):  # with or without pythonpath "."
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class InlineRedis:
    """A minimal ``redis-server`` launcher, used only when ``tests/support`` is missing."""

    def __init__(self, args: list[str]) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH: install it (apt-get install redis-server).")
        self.directory = Path(tempfile.mkdtemp(prefix="ignite-redis-"))
        self._port = _free_port()
        command = [
            binary,
            "--port",
            str(self._port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(
            [*command, "--dir", str(self.directory), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"redis-server {command} did not start.")
            time.sleep(0.02)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._port}/0"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def start_private_redis(*args: str) -> PrivateRedis:
    """Start a private ``redis-server`` with extra command-line ``args``; the caller closes it."""
    servers = _support_servers()
    if servers is None:
        return InlineRedis(list(args))
    server: PrivateRedis = servers.RedisServer(args=list(args), name="ignite-tests").start()
    return server


def _answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``IGNITE_TEST_REDIS_URL`` (default the local Redis); else a private server, never a skip in CI."""
    url = os.environ.get("IGNITE_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    if _answers(url):
        yield url
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis at {url} does not answer, and under CI=true Redis tests never skip.")
    server = start_private_redis()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Any]:
    """One private 3-primary Redis Cluster (with replicas) for the session, started on first use."""
    from faults.harness import shared_cluster

    cluster = shared_cluster.acquire()
    try:
        yield cluster
    finally:
        shared_cluster.release()


@pytest.fixture(scope="session")
def sentinel_setup() -> Iterator[Any]:
    """One private primary + replica + Sentinel for the session, started on first use."""
    from faults.harness import shared_sentinel

    setup = shared_sentinel.acquire()
    try:
        yield setup
    finally:
        shared_sentinel.release()


@pytest.fixture
def healthy_cluster(redis_cluster: Any) -> Any:
    """The session's cluster, healed (a previous test may have failed a primary over)."""
    from faults.harness import heal_cluster

    heal_cluster(redis_cluster)
    return redis_cluster


@pytest.fixture
def healthy_sentinel(sentinel_setup: Any) -> Any:
    """The session's Sentinel set-up with a healthy primary and an in-sync replica."""
    from faults.harness import heal_sentinel

    heal_sentinel(sentinel_setup)
    return sentinel_setup


@pytest.fixture
def private_redis() -> Iterator[Callable[..., PrivateRedis]]:
    """Factory: ``private_redis("--requirepass", "x")`` starts a server stopped after the test."""
    started: list[PrivateRedis] = []

    def start(*args: str) -> PrivateRedis:
        server = start_private_redis(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


# --- clocks and backends -------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def namespace() -> str:
    """A namespace no other test (or engineer on the shared Redis) uses."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKEND_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


MakeBackend = Callable[..., Awaitable[CacheBackend]]


@pytest.fixture
async def make_backend(
    request: pytest.FixtureRequest, backend_kind: str, namespace: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[MakeBackend]:
    """Factory of backends of this test's kind that share one store (namespace and folder).

    ``await make_backend()`` gives another initialised instance on the same Redis namespace
    or SQLite file (a memory backend is always a store of its own). Keywords: ``kind``,
    ``namespace``, ``init=False``, and any constructor option (``default_ttl=...``).
    """
    created: list[CacheBackend] = []

    async def make(
        kind: str | None = None, *, namespace: str = namespace, init: bool = True, **options: Any
    ) -> CacheBackend:
        kind = kind or backend_kind
        backend: CacheBackend
        if kind == "memory":
            backend = MemoryBackend(clock=options.pop("clock", clock), **options)
        elif kind == "file":
            path = options.pop("path", tmp_path / "cache")
            backend = FileBackend(path, namespace=namespace, clock=options.pop("clock", clock), **options)
        elif kind == "redis":
            url = options.pop("url", None) or request.getfixturevalue("redis_url")
            backend = RedisBackend(url, namespace=namespace, **options)
        else:
            raise ValueError(f"unknown backend kind {kind!r}")
        created.append(backend)
        if init:
            await backend.init()
        return backend

    yield make
    for backend in reversed(created):
        try:
            # init() first: a Redis backend used without init() would not release its pool
            await backend.init()
            await backend.flush()  # the namespace only: never FLUSHDB on the shared Redis
        except CacheError:
            pass  # a backend a test made unusable on purpose (bad path, dead URL)
        finally:
            await backend.close()


@pytest.fixture
async def backend(make_backend: MakeBackend) -> CacheBackend:
    """An initialised backend (memory, file or redis) with a namespace of its own."""
    return await make_backend()


async def advance_time(backend: CacheBackend, clock: FakeClock, seconds: float) -> None:
    """Let ``seconds`` pass for ``backend``: fake time for memory and file, a real wait for Redis."""
    if isinstance(backend, RedisBackend):
        await asyncio.sleep(seconds + 0.1)
    else:
        clock.advance(seconds)


@pytest.fixture
def advance(clock: FakeClock) -> Callable[..., Awaitable[None]]:
    """``await advance(backend, seconds)`` or ``await advance(backend, clock, seconds)``."""

    async def advance(backend: CacheBackend, *args: Any) -> None:
        if len(args) == 1:
            await advance_time(backend, clock, args[0])
        else:
            (other_clock, seconds) = args
            await advance_time(backend, other_clock, seconds)

    return advance


@pytest.fixture
def raw_redis(redis_url: str, namespace: str) -> Iterator[Any]:
    """A plain redis-py client of the test database (another client, bytes in and out).

    Keys a test writes through it must contain ``namespace``; they are deleted afterwards.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        doomed = list(client.scan_iter(match=f"*{namespace}*", count=1000))
        if doomed:
            client.unlink(*doomed)
        client.close()
