"""Fixtures of the fault tests: the session's cluster and Sentinel set-up, and the figures report.

``redis_cluster`` and ``sentinel_setup`` are started once per session (shared with
``tests/test_redis_cluster.py`` and ``tests/test_redis_sentinel.py`` through ``harness``);
``healthy_cluster`` / ``healthy_sentinel`` undo whatever the previous test broke (paused or
killed nodes, a moved primary) before handing them out again.

``fault_report`` collects each scenario's figures and writes them as JSON when the session
ends: to ``$IGNITE_FAULT_REPORT`` if set, else to ``faults-report.json`` in pytest's
temporary directory for this session.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.servers import RedisCluster, RedisSentinelSetup

from .harness import heal_cluster, heal_sentinel, shared_cluster, shared_sentinel


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = shared_cluster.acquire()
    try:
        yield cluster
    finally:
        shared_cluster.release()


@pytest.fixture(scope="session")
def sentinel_setup() -> Iterator[RedisSentinelSetup]:
    setup = shared_sentinel.acquire()
    try:
        yield setup
    finally:
        shared_sentinel.release()


@pytest.fixture
def healthy_cluster(redis_cluster: RedisCluster) -> RedisCluster:
    heal_cluster(redis_cluster)
    return redis_cluster


@pytest.fixture
def healthy_sentinel(sentinel_setup: RedisSentinelSetup) -> RedisSentinelSetup:
    heal_sentinel(sentinel_setup)
    return sentinel_setup


@pytest.fixture(scope="session")
def fault_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``fault_report[scenario] = figures``; written as JSON at the end of the session."""
    report: dict[str, Any] = {}
    yield report
    if not report:
        return
    target = os.environ.get("IGNITE_FAULT_REPORT")
    path = Path(target) if target else tmp_path_factory.getbasetemp() / "faults-report.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
