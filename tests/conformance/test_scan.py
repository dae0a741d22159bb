"""scan and delete_pattern: Redis's cursor protocol and glob dialect on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from ignite_cache import CacheBackend, escape_pattern

from . import collect_keys


async def test_scan_of_an_empty_namespace(backend: CacheBackend) -> None:
    assert await collect_keys(backend) == []


async def test_cursor_zero_starts_and_ends_an_iteration(backend: CacheBackend) -> None:
    await backend.set_many({"a": "1", "b": "2"})
    cursor, keys = await backend.scan(0, count=1000)
    assert cursor in (0, "0")
    assert sorted(keys) == ["a", "b"]
    cursor, keys = await backend.scan("0", count=1000)  # "0" is a start too, as in Redis
    assert cursor in (0, "0")
    assert sorted(keys) == ["a", "b"]


async def test_every_key_exactly_once_with_small_counts(backend: CacheBackend) -> None:
    expected = {f"item:{i:04d}" for i in range(2500)}
    await backend.set_many(dict.fromkeys(expected, "v"))
    calls = 0
    seen: list[str] = []
    cursor: Any = 0
    while True:
        cursor, batch = await backend.scan(cursor, count=25)
        calls += 1
        seen.extend(batch)
        if cursor in (0, "0"):
            break
        assert calls < 10_000, "the iteration does not end"
    assert len(seen) == len(expected)  # no key twice
    assert set(seen) == expected
    assert calls > 2  # the small count really paged the iteration


async def test_scan_with_match(backend: CacheBackend) -> None:
    await backend.set_many({f"user:{i}": "u" for i in range(300)} | {f"item:{i}": "i" for i in range(300)})
    users = await collect_keys(backend, match="user:*", count=20)
    assert sorted(users) == sorted(f"user:{i}" for i in range(300))
    assert sorted(await collect_keys(backend, match="user:1?", count=20)) == [f"user:1{i}" for i in range(10)]
    assert await collect_keys(backend, match="nobody:*") == []
    assert await collect_keys(backend, match="item:7") == ["item:7"]


async def test_scan_skips_deleted_keys(backend: CacheBackend) -> None:
    await backend.set_many({f"k{i}": "v" for i in range(10)})
    await backend.delete("k3", "k7")
    assert sorted(await collect_keys(backend)) == sorted(f"k{i}" for i in range(10) if i not in (3, 7))


async def test_delete_pattern_returns_how_many_it_deleted(backend: CacheBackend) -> None:
    await backend.set_many({f"user:{i}": "u" for i in range(1500)} | {"item:1": "i", "user": "x"})
    assert await backend.delete_pattern("user:*") == 1500
    assert sorted(await collect_keys(backend)) == ["item:1", "user"]
    assert await backend.delete_pattern("user:*") == 0
    assert await backend.delete_pattern("user") == 1  # a pattern without wildcards: one key
    assert await backend.delete_pattern("nothing*") == 0


@pytest.mark.parametrize(
    ("pattern", "deleted"),
    [
        ("k?", {"k1", "k2", "ka", "k*", "k["}),
        ("k[12]", {"k1", "k2"}),
        ("k[^12]", {"ka", "k*", "k["}),
        ("k[0-9]", {"k1", "k2"}),
        ("k\\*", {"k*"}),
        ("k\\[", {"k["}),
        ("k[*]", {"k*"}),
        ("k*", {"k1", "k2", "ka", "k*", "k[", "k10"}),
        ("*0", {"k10"}),
        ("k[]", set()),
        ("k[^]", {"k1", "k2", "ka", "k*", "k["}),
    ],
)
async def test_delete_pattern_dialect(backend: CacheBackend, pattern: str, deleted: set[str]) -> None:
    keys = {"k1", "k2", "ka", "k*", "k[", "k10"}
    await backend.set_many(dict.fromkeys(keys, "v"))
    assert sorted(await collect_keys(backend, match=pattern)) == sorted(deleted)
    assert await backend.delete_pattern(pattern) == len(deleted)
    assert sorted(await collect_keys(backend)) == sorted(keys - deleted)


async def test_escape_pattern_selects_only_the_literal_key(backend: CacheBackend) -> None:
    tricky = "user:a*b?[c]\\d"
    await backend.set_many({tricky: "1", "user:aXb?[c]\\d": "2", "user:a*b?c\\d": "3", "user:ab": "4"})
    assert await collect_keys(backend, match=escape_pattern(tricky)) == [tricky]
    assert await backend.delete_pattern(escape_pattern(tricky)) == 1
    assert await backend.delete_pattern(escape_pattern("user:") + "*") == 3
