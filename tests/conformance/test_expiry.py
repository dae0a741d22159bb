"""TTL expiry: an expired key is never returned, and every method agrees that it is gone.

One test per backend waits: on Redis that costs one real second in the whole module.
"""

from __future__ import annotations

from typing import Any

import pytest

from ignite_cache import CacheBackend

from . import FAKE_CLOCK_KINDS, collect_keys


async def test_expired_keys_are_gone_for_every_method(backend: CacheBackend, advance: Any) -> None:
    await backend.set("gone", "v", ex=1)
    await backend.set("gone-bytes", b"v", ex=1)
    await backend.set_many({"gone-many": "v"}, ex=1)
    await backend.set("readd", "old", ex=1)
    await backend.set("renx", "old", ex=1)
    await backend.set("counter", "41", ex=1)
    await backend.set("persisted", "v", ex=1)
    await backend.set("extended", "v", ex=1)
    await backend.set("forever", "v", ex=None)
    await backend.set("later", "v", ex=100)
    assert await backend.expire("persisted", None)
    assert await backend.expire("extended", 100)

    await advance(backend, 1)

    gone = ["gone", "gone-bytes", "gone-many"]
    assert [await backend.get(k) for k in gone] == [None, None, None]
    assert await backend.get_many(gone) == [None, None, None]
    assert await backend.exists(*gone) == 0
    assert [await backend.ttl(k) for k in gone] == [-2, -2, -2]
    assert await backend.expire("gone", 10) is False
    assert await backend.expire("gone-bytes", None) is False
    assert await backend.add("readd", "new") is True
    assert await backend.get("readd") == "new"
    assert await backend.set("renx", "new", nx=True) is True
    assert await backend.get("renx") == "new"
    assert await backend.incr("counter") == 1  # an expired counter restarts from zero...
    assert await backend.ttl("counter") == -1  # ...and, created by incr, never expires
    assert await backend.get("persisted") == "v"
    assert await backend.get("extended") == "v"
    assert await backend.get("forever") == "v"
    assert await backend.get("later") == "v"

    live = ["counter", "extended", "forever", "later", "persisted", "readd", "renx"]
    assert sorted(await collect_keys(backend)) == live
    assert sorted(await collect_keys(backend, match="gone*")) == []
    assert await backend.delete("gone", "forever") == 1
    assert await backend.delete_pattern("*") == len(live) - 1


@pytest.mark.parametrize("backend_kind", FAKE_CLOCK_KINDS)
async def test_expiry_boundary(backend: CacheBackend, advance: Any) -> None:
    await backend.set("k", "v", ex=10)
    await advance(backend, 9.75)  # binary fractions: the fake time adds up exactly
    assert await backend.get("k") == "v"
    assert await backend.ttl("k") == 0  # under half a second left rounds to 0, as in Redis
    await advance(backend, 0.25)
    assert await backend.get("k") is None
    assert await backend.exists("k") == 0
    assert await backend.ttl("k") == -2


@pytest.mark.parametrize("backend_kind", FAKE_CLOCK_KINDS)
async def test_exists_and_ttl_agree_with_get_over_time(backend: CacheBackend, advance: Any) -> None:
    for i in range(1, 11):
        await backend.set(f"k{i}", "v", ex=i)
    for step in range(12):
        for i in range(1, 11):
            key = f"k{i}"
            alive = await backend.get(key) is not None
            assert (await backend.exists(key) == 1) is alive
            assert (await backend.ttl(key) >= 0) is alive
            assert alive is (step < i)
        await advance(backend, 1)


@pytest.mark.parametrize("backend_kind", FAKE_CLOCK_KINDS)
async def test_expire_refreshes_a_key_before_it_expires(backend: CacheBackend, advance: Any) -> None:
    await backend.set("k", "v", ex=5)
    await advance(backend, 4)
    assert await backend.expire("k", 5)
    await advance(backend, 4)
    assert await backend.get("k") == "v"
    await advance(backend, 1)
    assert await backend.get("k") is None


@pytest.mark.parametrize("backend_kind", FAKE_CLOCK_KINDS)
async def test_rewriting_a_key_with_a_longer_ttl_outlives_the_first_ttl(
    backend: CacheBackend, advance: Any
) -> None:
    await backend.set("k", "old", ex=1)
    await backend.set("k", "new", ex=100)
    await advance(backend, 2)
    assert await backend.get("k") == "new"
