"""Namespaces: flush and delete_pattern touch this backend's keys and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from ignite_cache import CacheBackend

from . import SHARED_STORE_KINDS, collect_keys


async def test_other_namespaces_survive_flush_and_delete_pattern(make_backend: Any, namespace: str) -> None:
    mine = await make_backend()
    neighbours = [
        await make_backend(namespace=f"{namespace}x"),  # a namespace that extends mine
        await make_backend(namespace=namespace[:-1]),  # a namespace that mine extends
        await make_backend(namespace=f"other{namespace}"),
    ]
    for other in neighbours:
        await other.set_many({"k": "theirs", "user:1": "theirs"}, ex=None)
    await mine.set_many({"k": "mine", "user:1": "mine"}, ex=None)

    assert await mine.delete_pattern("user:*") == 1
    assert await mine.delete_pattern("*") == 1
    await mine.set("k", "mine")
    assert await mine.flush() is True
    assert await collect_keys(mine) == []
    for other in neighbours:
        assert await other.get_many(["k", "user:1"]) == ["theirs", "theirs"]
        assert sorted(await collect_keys(other)) == ["k", "user:1"]


@pytest.mark.parametrize("backend_kind", SHARED_STORE_KINDS)
async def test_instances_on_one_namespace_share_keys(make_backend: Any) -> None:
    first: CacheBackend = await make_backend()
    second: CacheBackend = await make_backend()
    await first.set("k", "v")
    assert await second.get("k") == "v"
    assert await second.delete_pattern("*") == 1
    assert await first.get("k") is None
    await second.set("j", b"bytes")
    assert await first.flush()
    assert await second.exists("j") == 0


@pytest.mark.redis
@pytest.mark.parametrize("backend_kind", ["redis"])
async def test_redis_keys_of_other_clients_survive(
    backend: CacheBackend, raw_redis: Any, namespace: str
) -> None:
    """Other clients' keys in the same database: outside the prefix, or merely look-alikes."""
    foreign = [
        namespace.encode(),  # the bare namespace name, no colon
        f"{namespace}x:k".encode(),
        f"{namespace}:".encode()[:-1] + b";k",
        f"other:{namespace}:k".encode(),
        f"{namespace.upper()}:k".encode(),
    ]
    for name in foreign:
        raw_redis.set(name, b"foreign")
    await backend.set_many({"k": "v", "user:1": "v"})
    assert await backend.delete_pattern("*") == 2
    await backend.set("k", "v")
    assert await backend.flush()
    assert raw_redis.mget(foreign) == [b"foreign"] * len(foreign)
    assert raw_redis.exists(f"{namespace}:k") == 0
