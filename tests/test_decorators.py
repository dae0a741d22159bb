"""@cached and @invalidate_cache on every backend: hits, TTLs, single flight, fail-open."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import pickle
import socket
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ignite_cache import (
    CacheBackend,
    CacheBackendError,
    CacheConfigError,
    InvalidTTLError,
    MemoryBackend,
    PickleSerializer,
    RedisBackend,
    SerializationError,
    cached,
    invalidate_cache,
)


class Counter:
    """Counts calls of the functions under test."""

    def __init__(self) -> None:
        self.calls = 0


class User(BaseModel):
    id: int
    name: str
    joined: dt.datetime


@dataclasses.dataclass
class Point:
    x: int
    y: Decimal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_hit_returns_the_cached_value_without_calling(backend: CacheBackend) -> None:
    n = Counter()

    @cached(ttl=60, key_prefix="user", backend=backend)
    async def get_user(user_id: int) -> dict[str, Any]:
        n.calls += 1
        return {"id": user_id, "calls": n.calls}

    assert await get_user(1) == {"id": 1, "calls": 1}
    assert await get_user(1) == {"id": 1, "calls": 1}
    assert await get_user(user_id=1) == {"id": 1, "calls": 1}
    assert await get_user(2) == {"id": 2, "calls": 2}
    assert get_user.cache_stats.hits == 2
    assert get_user.cache_key(1).startswith(f"user:{__name__}.")
    assert await backend.get(get_user.cache_key(1)) is not None


@pytest.mark.parametrize("result", [None, 0, "", [], {}, False, 0.0])
async def test_none_and_falsy_results_are_cached(backend: CacheBackend, result: Any) -> None:
    n = Counter()

    @cached(ttl=60, backend=backend)
    async def compute() -> Any:
        n.calls += 1
        return result

    assert await compute() == result
    assert await compute() == result
    assert n.calls == 1


async def test_typed_results_come_back_typed(backend: CacheBackend) -> None:
    joined = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)

    @cached(ttl=60, backend=backend)
    async def user(user_id: int) -> User:
        return User(id=user_id, name="Ada", joined=joined)

    @cached(ttl=60, backend=backend)
    async def users() -> list[User]:
        return [User(id=1, name="Ada", joined=joined)]

    @cached(ttl=60, backend=backend)
    async def maybe(found: bool) -> User | None:
        return User(id=1, name="Ada", joined=joined) if found else None

    @cached(ttl=60, backend=backend)
    async def point() -> Point:
        return Point(1, Decimal("2.50"))

    @cached(ttl=60, backend=backend)
    async def rich() -> dict[str, uuid.UUID]:
        return {"id": uuid.UUID(int=5)}

    for _ in range(2):  # the miss, then the hit
        assert await user(1) == User(id=1, name="Ada", joined=joined)
        assert await users() == [User(id=1, name="Ada", joined=joined)]
        assert await maybe(True) == User(id=1, name="Ada", joined=joined)
        assert await maybe(False) is None
        assert await point() == Point(1, Decimal("2.50"))
        assert await rich() == {"id": uuid.UUID(int=5)}
    assert user.cache_stats.hits == 1 and point.cache_stats.hits == 1


async def test_unserializable_result_names_function_and_type(backend: CacheBackend) -> None:
    class Opaque:
        pass

    @cached(ttl=60, backend=backend)
    async def make() -> Any:
        return Opaque()

    with pytest.raises(SerializationError, match=r"make.*Opaque"):
        await make()


async def test_ttl_defaults_none_and_timedelta(backend: CacheBackend) -> None:
    @cached(backend=backend)
    async def default() -> int:
        return 1

    @cached(ttl=None, backend=backend)
    async def forever() -> int:
        return 2

    @cached(ttl=dt.timedelta(minutes=2), backend=backend)
    async def two_minutes() -> int:
        return 3

    await default(), await forever(), await two_minutes()
    assert backend.default_ttl is not None
    assert backend.default_ttl - 2 <= await backend.ttl(default.cache_key()) <= backend.default_ttl
    assert await backend.ttl(forever.cache_key()) == -1
    assert 118 <= await backend.ttl(two_minutes.cache_key()) <= 120


@pytest.mark.parametrize("ttl", [-1, 0, 1.5, "60", dt.timedelta(milliseconds=10)])
def test_bad_ttl_fails_at_decoration(ttl: Any) -> None:
    with pytest.raises(InvalidTTLError):
        cached(ttl=ttl)


def test_plain_def_fails_at_decoration() -> None:
    with pytest.raises(CacheConfigError, match="async def"):

        @cached(ttl=60)
        def sync() -> int:
            return 1


async def test_expired_entry_is_recomputed(backend: CacheBackend, advance: Any) -> None:
    n = Counter()

    @cached(ttl=1, backend=backend)
    async def compute() -> int:
        n.calls += 1
        return n.calls

    assert await compute() == 1
    assert await compute() == 1
    await advance(backend, 1.2)
    assert await compute() == 2


async def test_methods_classmethods_and_staticmethods(backend: CacheBackend) -> None:
    n = Counter()

    class Service:
        def __init__(self, scale: int) -> None:
            self.scale = scale

        @cached(ttl=60, backend=backend)
        async def scaled(self, x: int) -> int:
            n.calls += 1
            return x * self.scale

        @cached(ttl=60, backend=backend)
        @classmethod
        async def named(cls, x: int) -> str:
            n.calls += 1
            return f"{cls.__name__}{x}"

        @staticmethod
        @cached(ttl=60, backend=backend)
        async def plain(x: int) -> int:
            n.calls += 1
            return -x

    s = Service(3)
    assert await s.scaled(2) == 6 and await s.scaled(2) == 6
    assert await Service.named(1) == "Service1" and await s.named(1) == "Service1"
    assert await Service.plain(4) == -4 and await s.plain(4) == -4
    assert n.calls == 3
    # self is not data: another instance shares the entry (documented)
    assert await Service(10).scaled(2) == 6


async def test_cache_key_and_invalidate(backend: CacheBackend) -> None:
    n = Counter()

    @cached(ttl=60, backend=backend)
    async def compute(x: int, y: int = 0) -> int:
        n.calls += 1
        return x + y

    await compute(1), await compute(2)
    assert compute.cache_key(1) == compute.cache_key(x=1, y=0)
    assert await compute.invalidate(1) is True
    assert await compute.invalidate(1) is False
    await compute(1), await compute(2)
    assert n.calls == 3


async def test_key_template_and_builder(backend: CacheBackend) -> None:
    @cached(ttl=60, key="user:{user_id}", backend=backend)
    async def by_template(user_id: int) -> int:
        return user_id

    @cached(ttl=60, key_prefix="v2", key_builder=lambda user_id: f"u{user_id}", backend=backend)
    async def by_builder(user_id: int) -> int:
        return user_id

    await by_template(7), await by_builder(7)
    assert await backend.get("user:7") == "7" or await backend.get("user:7") == b"7"
    assert await backend.exists("v2:u7") == 1


# --- single flight ---------------------------------------------------------------------------


async def test_single_flight_500_callers_run_the_function_once(backend: CacheBackend) -> None:
    n = Counter()
    gate = asyncio.Event()

    @cached(ttl=60, backend=backend)
    async def slow(x: int) -> dict[str, int]:
        n.calls += 1
        await gate.wait()
        return {"x": x}

    tasks = [asyncio.create_task(slow(1)) for _ in range(500)]
    await until(lambda: slow.cache_stats.coalesced == 499)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert n.calls == 1
    assert results == [{"x": 1}] * 500
    assert len({id(r) for r in results}) > 1  # waiters get their own copies
    assert not _inflight(slow)


async def test_single_flight_shares_the_exception_and_caches_nothing(backend: CacheBackend) -> None:
    n = Counter()
    gate = asyncio.Event()

    @cached(ttl=60, backend=backend)
    async def failing() -> int:
        n.calls += 1
        await gate.wait()
        raise LookupError("boom")

    tasks = [asyncio.create_task(failing()) for _ in range(50)]
    await until(lambda: failing.cache_stats.coalesced == 49)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert n.calls == 1
    assert all(isinstance(r, LookupError) and str(r) == "boom" for r in results)
    assert await backend.get(failing.cache_key()) is None
    assert not _inflight(failing)
    gate.set()
    with pytest.raises(LookupError):
        await failing()
    assert n.calls == 2


async def test_cancelled_leader_lets_a_waiter_compute(backend: CacheBackend) -> None:
    n = Counter()
    first_started = asyncio.Event()

    @cached(ttl=60, backend=backend)
    async def slow() -> int:
        n.calls += 1
        if n.calls == 1:
            first_started.set()
            await asyncio.sleep(10)
        await asyncio.sleep(0.2)  # long enough for every retrying waiter to join this flight
        return n.calls

    leader = asyncio.create_task(slow())
    await first_started.wait()
    waiters = [asyncio.create_task(slow()) for _ in range(5)]
    await asyncio.sleep(0.01)
    leader.cancel()
    results = await asyncio.gather(*waiters)
    assert results[0] == 2 and set(results) == {2}
    assert n.calls == 2
    assert not _inflight(slow)


async def test_cancelled_waiter_does_not_cancel_the_leader(backend: CacheBackend) -> None:
    gate = asyncio.Event()

    @cached(ttl=60, backend=backend)
    async def slow() -> int:
        await gate.wait()
        return 5

    leader = asyncio.create_task(slow())
    await asyncio.sleep(0.01)
    waiter = asyncio.create_task(slow())
    await asyncio.sleep(0.01)
    waiter.cancel()
    gate.set()
    assert await leader == 5
    assert not _inflight(slow)


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


def _inflight(func: Any) -> dict[str, Any]:
    """The single-flight map behind a decorated function (reached through its closure)."""
    for cell in func.__closure__ or ():
        state = getattr(cell.cell_contents, "__self__", None)
        if state is not None and hasattr(state, "inflight"):
            return dict(state.inflight)
    raise AssertionError("no single-flight state found")


# --- failing open ----------------------------------------------------------------------------


def dead_redis() -> RedisBackend:
    """A real client pointed at a port where nothing listens: every call fails fast."""
    return RedisBackend(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.05, retries=0)


async def test_unreachable_backend_fails_open_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    n = Counter()
    backend = dead_redis()

    @cached(ttl=60, backend=backend)
    async def compute(x: int) -> int:
        n.calls += 1
        return x * 2

    with caplog.at_level(logging.WARNING, logger="ignite_cache"):
        results = [await compute(i) for i in range(20)]
    assert results == [i * 2 for i in range(20)]
    assert n.calls == 20  # once per call, never twice
    assert compute.cache_stats.errors == 20
    assert compute.cache_stats.incidents == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    await backend.close()


async def test_function_errors_propagate_unchanged_when_cache_is_down() -> None:
    backend = dead_redis()

    @cached(ttl=60, backend=backend)
    async def failing() -> int:
        raise KeyError("original")

    with pytest.raises(KeyError, match="original"):
        await failing()


class WriteFailingBackend(MemoryBackend):
    """Reads work, writes fail: the one fault a real store cannot be made to show on cue."""

    async def set(self, *args: Any, **kwargs: Any) -> bool:
        raise CacheBackendError("disk full")


async def test_failed_write_still_returns_the_value_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    backend = WriteFailingBackend()

    @cached(ttl=60, backend=backend)
    async def compute() -> int:
        return 42

    with caplog.at_level(logging.INFO, logger="ignite_cache"):
        assert await compute() == 42
        assert await compute() == 42
    assert compute.cache_stats.errors == 2
    assert compute.cache_stats.incidents == 1
    assert "disk full" in caplog.text


async def test_poisoned_pickle_in_the_store_is_never_executed(backend: CacheBackend, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    @cached(ttl=60, backend=backend)
    async def profile() -> dict[str, str]:
        return {"name": "safe"}

    await backend.set(profile.cache_key(), pickle.dumps(Exploit()))
    assert await profile() == {"name": "safe"}
    assert not marker.exists()
    assert profile.cache_stats.errors == 1
    assert await profile() == {"name": "safe"}  # the bad entry was overwritten
    assert profile.cache_stats.hits == 1


async def test_signed_pickle_is_opt_in_and_rejects_foreign_payloads(
    backend: CacheBackend, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    serializer = PickleSerializer(b"0123456789abcdef-secret")

    @cached(ttl=60, backend=backend, serializer=serializer)
    async def obj() -> complex:
        return complex(1, 2)

    assert await obj() == complex(1, 2)
    assert await obj() == complex(1, 2)
    assert obj.cache_stats.hits == 1
    await backend.set(obj.cache_key(), b"IGP1" + b"0" * 32 + pickle.dumps(Exploit()))
    assert await obj() == complex(1, 2)
    assert not marker.exists()
    with pytest.raises(SerializationError, match="16 bytes"):
        PickleSerializer(b"short")


# --- invalidation ----------------------------------------------------------------------------


async def test_seed_invalidation_pattern_clears_prefixed_entries(backend: CacheBackend) -> None:
    n = Counter()

    @cached(ttl=300, key_prefix="user", backend=backend)
    async def get_user(user_id: int) -> dict[str, int]:
        n.calls += 1
        return {"id": user_id, "version": n.calls}

    @invalidate_cache(key_pattern="user:*", backend=backend)
    async def update_user(user_id: int, data: dict[str, Any]) -> dict[str, Any]:
        return data

    await get_user(1), await get_user(2)
    assert await update_user(1, {"name": "x"}) == {"name": "x"}
    assert await get_user(1) == {"id": 1, "version": 3}
    assert await get_user(2) == {"id": 2, "version": 4}


async def test_invalidation_runs_only_after_success(backend: CacheBackend) -> None:
    await backend.set("user:1", "cached")

    @invalidate_cache(key_pattern="user:*", backend=backend)
    async def broken(user_id: int) -> None:
        raise ValueError("write failed")

    with pytest.raises(ValueError, match="write failed"):
        await broken(1)
    assert await backend.get("user:1") == "cached"


async def test_template_values_are_escaped(backend: CacheBackend) -> None:
    for key in ("user:1*", "user:12", "user:1*:profile", "user:12:profile"):
        await backend.set(key, "v")

    @invalidate_cache(key_pattern="user:{user_id}*", backend=backend)
    async def update_user(user_id: str) -> None:
        return None

    await update_user("1*")
    assert await backend.get("user:12") == "v"
    assert await backend.get("user:12:profile") == "v"
    assert await backend.get("user:1*") is None
    assert await backend.get("user:1*:profile") is None


async def test_several_patterns_and_exact_keys(backend: CacheBackend) -> None:
    for key in ("a:1", "b:1", "c:1", "d:1", "d:2"):
        await backend.set(key, "v")

    @invalidate_cache(key_pattern=["a:*", "b:*"], keys=["c:1", "d:{n}"], backend=backend)
    async def write(n: int) -> str:
        return "done"

    assert await write(1) == "done"
    assert [await backend.get(k) for k in ("a:1", "b:1", "c:1", "d:1", "d:2")] == [
        None,
        None,
        None,
        None,
        "v",
    ]


async def test_invalidation_with_cached_key_template(backend: CacheBackend) -> None:
    n = Counter()

    @cached(ttl=60, key="user:{user_id}", backend=backend)
    async def get_user(user_id: int) -> int:
        n.calls += 1
        return n.calls

    @invalidate_cache(keys="user:{user_id}", backend=backend)
    async def touch(user_id: int) -> None:
        return None

    await get_user(1), await get_user(2)
    await touch(1)
    assert await get_user(1) == 3
    assert await get_user(2) == 2


async def test_failed_invalidation_does_not_break_the_write() -> None:
    backend = dead_redis()

    @invalidate_cache(key_pattern="user:*", backend=backend)
    async def write() -> str:
        return "saved"

    assert await write() == "saved"
    assert write.cache_stats.errors == 1  # type: ignore[attr-defined]


def test_invalidate_cache_needs_something_and_a_valid_pattern() -> None:
    with pytest.raises(CacheConfigError):
        invalidate_cache()
    with pytest.raises(Exception, match="unclosed"):
        invalidate_cache(key_pattern="user:[")


async def test_key_templates_read_attributes_per_call(backend: CacheBackend) -> None:
    class Repo:
        def __init__(self, ident: int) -> None:
            self.id = ident

        @cached(ttl=60, key="repo:{self.id}:{x}", backend=backend)
        async def get(self, x: int) -> int:
            return self.id * 100 + x

    assert await Repo(1).get(5) == 105
    assert await Repo(2).get(5) == 205
    assert Repo.get.cache_key(Repo(2), 5) == "repo:2:5"


async def test_conversions_in_pattern_templates_are_escaped(backend: CacheBackend) -> None:
    for key in ("user:1*", "user:12"):
        await backend.set(key, "v")

    @invalidate_cache(key_pattern="user:{user_id!s}", backend=backend)
    async def update_user(user_id: str) -> None:
        return None

    await update_user("1*")
    assert await backend.get("user:1*") is None
    assert await backend.get("user:12") == "v"


async def test_non_str_dict_keys_come_back_as_on_a_miss(backend: CacheBackend) -> None:
    @cached(ttl=60, backend=backend)
    async def names() -> dict[int, str]:
        return {1: "a", 2: "b"}

    assert await names() == {1: "a", 2: "b"}
    assert await names() == {1: "a", 2: "b"}
    assert names.cache_stats.hits == 1


async def test_a_read_racing_an_invalidating_write_does_not_store_stale_data(backend: CacheBackend) -> None:
    db = {"v": "old"}
    reading = asyncio.Event()
    release = asyncio.Event()

    @cached(ttl=60, key="item", backend=backend)
    async def read() -> str:
        value = db["v"]  # reads the old value...
        reading.set()
        await release.wait()  # ...and is slow to return it
        return value

    @invalidate_cache(keys="item", backend=backend)
    async def write(value: str) -> None:
        db["v"] = value

    slow = asyncio.create_task(read())
    await reading.wait()
    await write("new")  # commits and invalidates while the read is in flight
    late = asyncio.create_task(read())  # must not join the stale flight
    await asyncio.sleep(0.01)
    release.set()
    assert await slow == "old"  # it started before the write: that is its answer
    assert await late == "new"
    assert await read() == "new"  # and "old" was never stored
