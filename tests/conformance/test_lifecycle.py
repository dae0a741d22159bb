"""init, close and first use: idempotent, safe under concurrency, usable before init()."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ignite_cache import CacheBackend

from . import near


def count_opens(backend: CacheBackend) -> list[int]:
    """Spy on the ``_open`` hook (the real one still runs); it yields once to widen races."""
    calls: list[int] = []
    real_open = backend._open

    async def spying_open() -> None:
        calls.append(1)
        await asyncio.sleep(0)
        await real_open()

    backend._open = spying_open  # type: ignore[method-assign]  # a spy on one instance
    return calls


async def test_init_is_idempotent(backend: CacheBackend) -> None:
    await backend.set("k", "v")
    await backend.init()
    await backend.init()
    assert await backend.get("k") == "v"


async def test_concurrent_init_opens_once(make_backend: Any) -> None:
    backend = await make_backend(init=False)
    opens = count_opens(backend)
    await asyncio.gather(*(backend.init() for _ in range(20)))
    assert opens == [1]
    assert await backend.set("k", "v")
    assert await backend.get("k") == "v"


async def test_close_is_idempotent_and_init_reopens(backend: CacheBackend) -> None:
    await backend.set("k", "v", ex=None)
    await backend.close()
    await backend.close()
    await backend.init()
    assert await backend.get("k") == "v"
    assert await backend.ping()


async def test_async_context_manager(make_backend: Any) -> None:
    backend = await make_backend(init=False)
    async with backend as opened:
        assert opened is backend
        await opened.set("k", "v")
        assert await opened.get("k") == "v"


async def test_every_operation_works_before_init(make_backend: Any) -> None:
    backend = await make_backend(init=False)
    assert await backend.get("absent") is None
    assert await backend.set("k", "1")
    assert await backend.get("k") == "1"
    assert await backend.incr("k") == 2
    assert await backend.exists("k") == 1
    assert await backend.ttl("k") in near(backend, 300)
    assert await backend.delete("k") == 1
    await backend.close()


FIRST_WRITES = {
    "set": lambda b, i: b.set(f"k{i}", "1"),
    "add": lambda b, i: b.add(f"k{i}", "1"),
    "set_many": lambda b, i: b.set_many({f"k{i}": "1"}),
    "incr": lambda b, i: b.incr(f"k{i}"),
}


@pytest.mark.parametrize("first_write", list(FIRST_WRITES))
async def test_first_use_initialises_once_under_concurrency(make_backend: Any, first_write: str) -> None:
    """DESIGN 3: a backend used before init() initialises itself once, safely (whatever the
    first write is: a memory backend's expiry sweeper starts in init)."""
    backend = await make_backend(init=False)
    opens = count_opens(backend)
    write = FIRST_WRITES[first_write]
    await asyncio.gather(*(write(backend, i) for i in range(20)))
    assert await backend.get_many([f"k{i}" for i in range(20)]) == ["1"] * 20
    assert opens == [1]


async def test_data_survives_close_for_a_new_instance(make_backend: Any, backend_kind: str) -> None:
    backend = await make_backend()
    await backend.set("k", "v", ex=None)
    await backend.close()
    again = await make_backend()
    if backend_kind == "memory":
        assert await again.get("k") is None  # a memory cache is per instance, never per class
    else:
        assert await again.get("k") == "v"
