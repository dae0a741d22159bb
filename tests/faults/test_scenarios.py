"""The fault-injection suite: a load of ``@cached`` calls while Redis breaks and heals.

For each scenario, 20 tasks call ``square(x)`` (x*x after a 1 ms sleep) over 50 keys,
4 ms apart, with the backend's default settings, while the fault is injected from a
worker thread. Every call must return x*x, none may raise, none may take longer than
``CALL_LIMIT`` (a GET and a SET, each socket_timeout * (retries + 1) + backoff, plus a
margin), and the cache must be hit again soon after Redis recovers. The figures of each
run go to the JSON report (``fault_report``) and, for the last full run, docs/faults.md.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from ignite_cache import RedisBackend
from support.servers import RedisCluster, RedisSentinelSetup, RedisServer

from .harness import (
    Figures,
    check_figures,
    close_backend,
    cluster_slot_ranges,
    key_slot,
    make_square,
    run_scenario,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

KEYS = 50
PAUSE = 1.5
"""Seconds a frozen server stays frozen (SIGSTOP ... SIGCONT)."""
DOWN = 1.0
"""Seconds a killed server stays down before it is restarted on the same port."""


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer(name="scenario") as server:
        yield server


def namespace() -> str:
    return f"load{uuid.uuid4().hex[:8]}"


async def test_a_paused_server(server: RedisServer, fault_report: dict[str, object]) -> None:
    figures = Figures("sigstop", fault=f"redis-server frozen (SIGSTOP) for {PAUSE} s, then SIGCONT")
    backend = RedisBackend(server.url, namespace=namespace())

    async def fault() -> None:
        await asyncio.to_thread(server.pause)
        await asyncio.sleep(PAUSE)
        await asyncio.to_thread(server.resume)

    try:
        await run_scenario(figures, backend, range(KEYS), fault)
    finally:
        fault_report[figures.scenario] = figures.as_dict()
        await close_backend(backend)
    check_figures(figures)


async def test_a_killed_and_restarted_server(server: RedisServer, fault_report: dict[str, object]) -> None:
    figures = Figures(
        "kill-restart", fault=f"redis-server killed (SIGKILL), restarted on its port {DOWN} s later"
    )
    backend = RedisBackend(server.url, namespace=namespace())

    async def fault() -> None:
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(DOWN)
        await asyncio.to_thread(server.start)  # empty: the keys are computed again

    try:
        await run_scenario(figures, backend, range(KEYS), fault)
    finally:
        fault_report[figures.scenario] = figures.as_dict()
        await close_backend(backend)
    check_figures(figures)


@pytest.mark.cluster
async def test_a_cluster_primary_failover(
    healthy_cluster: RedisCluster, fault_report: dict[str, object]
) -> None:
    """The primary that serves every key of the load freezes; the cluster promotes its replica.

    No manual promotion: the cluster has to notice (node timeout 1 s) and elect the replica
    itself, as after a real hang. All 50 keys are picked in the victim's slots, so every
    call meets the fault (keys on the other primaries would keep hitting throughout).
    """
    cluster = healthy_cluster
    figures = Figures(
        "cluster-failover",
        fault="the primary serving every key frozen (SIGSTOP); the cluster elects its replica",
    )
    backend = RedisBackend(cluster.url, mode="cluster", namespace=namespace())
    square = make_square(backend)
    victim = cluster.primaries()[0]
    ranges = cluster_slot_ranges(victim)
    xs = [
        x
        for x in range(5000)
        if any(lo <= key_slot(f"{backend.namespace}:{square.cache_key(x)}") <= hi for lo, hi in ranges)
    ][:KEYS]
    assert len(xs) == KEYS

    async def fault() -> None:
        promoted = await asyncio.to_thread(cluster.failover, victim, how="pause", promote="auto")
        figures.fault += f" (port {victim.port} -> {promoted.port})"

    try:
        await run_scenario(figures, backend, xs, fault, square=square)
    finally:
        fault_report[figures.scenario] = figures.as_dict()
        await close_backend(backend)
    check_figures(figures)


@pytest.mark.sentinel
async def test_a_sentinel_failover(
    healthy_sentinel: RedisSentinelSetup, fault_report: dict[str, object]
) -> None:
    """The primary freezes; Sentinel notices (down-after 1.5 s) and promotes the replica."""
    setup = healthy_sentinel
    figures = Figures(
        "sentinel-failover", fault="the primary frozen (SIGSTOP); Sentinel promotes the replica"
    )
    backend = RedisBackend(
        f"redis://127.0.0.1:{setup.sentinel.port}/0",
        mode="sentinel",
        sentinel_service=setup.service_name,
        namespace=namespace(),
    )

    async def fault() -> None:
        await asyncio.to_thread(setup.failover, how="pause")

    try:
        await run_scenario(figures, backend, range(KEYS), fault)
    finally:
        fault_report[figures.scenario] = figures.as_dict()
        await close_backend(backend)
    check_figures(figures)
