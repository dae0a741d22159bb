"""Every method of the contract on every backend: get, set, delete, exists, ttl, expire, add,
incr, get_many, set_many, flush and ping."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from ignite_cache import DEFAULT_TTL, CacheBackend, InvalidValueError

from . import FAKE_CLOCK_KINDS, collect_keys, near

# ttl() right after set(ex=N) is N: every backend rounds to the nearest second, as Redis does
FRESH = 100


async def test_get_of_a_missing_key_is_none(backend: CacheBackend) -> None:
    assert await backend.get("missing") is None


async def test_set_then_get_and_overwrite(backend: CacheBackend) -> None:
    assert await backend.set("k", "one") is True
    assert await backend.get("k") == "one"
    assert await backend.set("k", "two") is True
    assert await backend.get("k") == "two"


@pytest.mark.parametrize(
    ("ex", "expected_ttl"),
    [
        pytest.param(FRESH, FRESH, id="int"),
        pytest.param(timedelta(minutes=2), 120, id="timedelta"),
        pytest.param(None, -1, id="none-never-expires"),
        pytest.param(DEFAULT_TTL, 300, id="DEFAULT_TTL"),
    ],
)
async def test_set_ex_forms(backend: CacheBackend, ex: Any, expected_ttl: int) -> None:
    assert await backend.set("k", "v", ex=ex)
    assert await backend.ttl("k") in near(backend, expected_ttl)
    assert await backend.get("k") == "v"


async def test_set_without_ex_uses_the_default_ttl(make_backend: Any) -> None:
    backend = await make_backend(default_ttl=42)
    await backend.set("k", "v")
    await backend.set_many({"m": "v"})
    await backend.add("a", "v")
    for key in ("k", "m", "a"):
        assert await backend.ttl(key) in near(backend, 42)


async def test_default_ttl_none_means_no_expiry(make_backend: Any) -> None:
    backend = await make_backend(default_ttl=None)
    await backend.set("k", "v")
    assert await backend.ttl("k") == -1


async def test_overwrite_without_ex_replaces_the_ttl(backend: CacheBackend) -> None:
    await backend.set("k", "v", ex=FRESH)
    await backend.set("k", "w", ex=None)
    assert await backend.ttl("k") == -1
    await backend.set("k", "x", ex=7)
    assert await backend.ttl("k") in near(backend, 7)


async def test_set_nx(backend: CacheBackend) -> None:
    assert await backend.set("k", "first", nx=True) is True
    assert await backend.set("k", "second", nx=True) is False
    assert await backend.get("k") == "first"
    assert await backend.set("j", "v", ex=FRESH, nx=True) is True
    assert await backend.ttl("j") in near(backend, FRESH)


async def test_add_stores_only_if_absent(backend: CacheBackend) -> None:
    assert await backend.add("lock", "owner-1", ex=FRESH) is True
    assert await backend.add("lock", "owner-2", ex=FRESH) is False
    assert await backend.get("lock") == "owner-1"
    assert await backend.ttl("lock") in near(backend, FRESH)


async def test_concurrent_add_has_exactly_one_winner(make_backend: Any, backend_kind: str) -> None:
    first = await make_backend()
    second = first if backend_kind == "memory" else await make_backend()
    wins = await asyncio.gather(*(b.add("lock", f"owner{i}") for i, b in enumerate([first, second] * 25)))
    assert wins.count(True) == 1


async def test_delete_counts_existing_keys(backend: CacheBackend) -> None:
    await backend.set_many({"a": "1", "b": "2", "c": "3"})
    assert await backend.delete("a") == 1
    assert await backend.delete("a") == 0
    assert await backend.delete("b", "c", "missing") == 2
    assert await backend.delete() == 0
    assert await backend.get_many(["a", "b", "c"]) == [None, None, None]


async def test_delete_the_same_key_twice_counts_once(backend: CacheBackend) -> None:
    await backend.set("a", "1")
    assert await backend.delete("a", "a") == 1


async def test_exists(backend: CacheBackend) -> None:
    await backend.set_many({"a": "1", "b": ""})
    assert await backend.exists("a") == 1
    assert await backend.exists("missing") == 0
    assert await backend.exists("a", "b", "missing") == 2
    assert await backend.exists("a", "a") == 2  # as in Redis, a key named twice counts twice
    assert await backend.exists() == 0


async def test_ttl_of_missing_persistent_and_expiring_keys(backend: CacheBackend) -> None:
    await backend.set("forever", "v", ex=None)
    await backend.set("soon", "v", ex=FRESH)
    assert await backend.ttl("missing") == -2
    assert await backend.ttl("forever") == -1
    assert await backend.ttl("soon") in near(backend, FRESH)


@pytest.mark.parametrize("backend_kind", FAKE_CLOCK_KINDS)  # Redis would need 30 s for real
async def test_ttl_counts_down(backend: CacheBackend, advance: Any) -> None:
    await backend.set("k", "v", ex=FRESH)
    await advance(backend, 30)
    assert await backend.ttl("k") == FRESH - 30


@pytest.mark.parametrize(
    ("ttl", "expected"),
    [
        pytest.param(50, 50, id="int"),
        pytest.param(timedelta(seconds=80), 80, id="timedelta"),
        pytest.param(DEFAULT_TTL, 300, id="DEFAULT_TTL"),
    ],
)
async def test_expire_sets_a_new_ttl(backend: CacheBackend, ttl: Any, expected: int) -> None:
    await backend.set("k", "v", ex=None)
    assert await backend.expire("k", ttl) is True
    assert await backend.ttl("k") in near(backend, expected)
    assert await backend.get("k") == "v"


async def test_expire_none_persists(backend: CacheBackend) -> None:
    await backend.set("k", "v", ex=FRESH)
    assert await backend.expire("k", None) is True
    assert await backend.ttl("k") == -1
    assert await backend.expire("k", None) is True  # already persistent: still present
    assert await backend.ttl("k") == -1


async def test_expire_of_a_missing_key_is_false(backend: CacheBackend) -> None:
    assert await backend.expire("missing", 10) is False
    assert await backend.expire("missing", None) is False
    assert await backend.exists("missing") == 0


async def test_incr_of_an_absent_key_starts_from_zero_and_never_expires(backend: CacheBackend) -> None:
    assert await backend.incr("n") == 1
    assert await backend.incr("m", 5) == 5
    assert await backend.incr("m", -7) == -2
    assert await backend.get("m") == "-2"
    assert await backend.ttl("n") == -1


async def test_incr_of_an_existing_integer(backend: CacheBackend) -> None:
    await backend.set("n", "41", ex=None)
    assert await backend.incr("n") == 42
    assert await backend.get("n") == "42"
    assert type(await backend.get("n")) is str


async def test_incr_keeps_the_ttl(backend: CacheBackend) -> None:
    await backend.set("n", "1", ex=FRESH)
    assert await backend.incr("n", 2) == 3
    assert await backend.ttl("n") in near(backend, FRESH)


@pytest.mark.parametrize("value", ["abc", "1.5", "", "12abc"])
async def test_incr_of_a_non_integer_is_an_invalid_value_error(backend: CacheBackend, value: str) -> None:
    await backend.set("n", value)
    with pytest.raises(InvalidValueError, match="'n'"):
        await backend.incr("n")
    assert await backend.get("n") == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1_000", id="underscore"),
        pytest.param(" 7", id="leading-space"),
        pytest.param("7\n", id="trailing-newline"),
        pytest.param("+5", id="plus-sign"),
        pytest.param("٣", id="arabic-indic-digit"),
        pytest.param(b"5", id="bytes"),
        pytest.param(str(2**63 - 1), id="int64-overflow"),
    ],
)
async def test_incr_accepts_only_what_redis_accepts(backend: CacheBackend, value: str | bytes) -> None:
    """Redis INCRBY reads a canonical signed 64-bit decimal str and nothing else: so must all."""
    await backend.set("n", value)
    with pytest.raises(InvalidValueError):
        await backend.incr("n")
    assert await backend.get("n") == value


@pytest.mark.parametrize("amount", [1.5, "1", None, True])
async def test_incr_amount_must_be_an_int(backend: CacheBackend, amount: Any) -> None:
    with pytest.raises(InvalidValueError, match="amount"):
        await backend.incr("n", amount)
    assert await backend.exists("n") == 0


async def test_incr_is_atomic(make_backend: Any, backend_kind: str) -> None:
    first = await make_backend()
    second = first if backend_kind == "memory" else await make_backend()
    results = await asyncio.gather(*(b.incr("n") for b in [first, second] * 50))
    assert sorted(results) == list(range(1, 101))
    assert await first.get("n") == "100"


async def test_get_many(backend: CacheBackend) -> None:
    await backend.set_many({"a": "1", "b": b"2"})
    assert await backend.get_many(["b", "missing", "a", "a"]) == [b"2", None, "1", "1"]
    assert await backend.get_many([]) == []
    assert await backend.get_many(k for k in ("a", "b")) == ["1", b"2"]


async def test_set_many(backend: CacheBackend) -> None:
    assert await backend.set_many({"a": "1", "b": "2"}, ex=FRESH) is True
    assert await backend.get_many(["a", "b"]) == ["1", "2"]
    assert await backend.ttl("a") in near(backend, FRESH)
    assert await backend.set_many({"a": "3"}, ex=None) is True
    assert await backend.ttl("a") == -1
    assert await backend.set_many({}) is True


async def test_set_many_and_get_many_of_many_keys(backend: CacheBackend) -> None:
    mapping = {f"key:{i}": f"value:{i}" for i in range(1200)}
    await backend.set_many(mapping)
    assert await backend.get_many(list(mapping)) == list(mapping.values())
    assert await backend.delete(*mapping) == 1200


async def test_flush_empties_the_namespace(backend: CacheBackend) -> None:
    await backend.set_many({f"k{i}": "v" for i in range(50)})
    assert await backend.flush() is True
    assert await backend.exists(*(f"k{i}" for i in range(50))) == 0
    assert await collect_keys(backend) == []
    assert await backend.flush() is True  # flushing an empty namespace is fine


async def test_ping(backend: CacheBackend) -> None:
    assert await backend.ping() is True
