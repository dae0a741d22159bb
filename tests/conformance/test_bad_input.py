"""Bad arguments raise the typed errors, name the culprit, and leave the store untouched."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from ignite_cache import (
    CacheBackend,
    FileBackend,
    InvalidKeyError,
    InvalidPatternError,
    InvalidTTLError,
    InvalidValueError,
    MemoryBackend,
    RedisBackend,
)

from . import near

BAD_TTLS = [
    pytest.param(0, "0", id="zero"),
    pytest.param(-1, "-1", id="negative"),
    pytest.param(1.5, "1.5", id="float"),
    pytest.param(10.0, "10.0", id="whole-float"),
    pytest.param(True, "True", id="bool"),
    pytest.param("10", "'10'", id="str"),
    pytest.param(timedelta(0), "0", id="timedelta-zero"),
    pytest.param(timedelta(seconds=-5), "-5", id="timedelta-negative"),
    pytest.param(timedelta(seconds=1.5), "microseconds=500000", id="timedelta-fraction"),
]


@pytest.mark.parametrize(("ttl", "shown"), BAD_TTLS)
async def test_bad_ttl_is_an_invalid_ttl_error(backend: CacheBackend, ttl: Any, shown: str) -> None:
    with pytest.raises(InvalidTTLError, match=re.escape(shown)) as error:
        await backend.set("k", "v", ex=ttl)
    assert "ex" in str(error.value)
    with pytest.raises(InvalidTTLError, match=re.escape(shown)):
        await backend.add("k", "v", ex=ttl)
    with pytest.raises(InvalidTTLError, match=re.escape(shown)):
        await backend.set_many({"k": "v"}, ex=ttl)
    await backend.set("present", "v")
    with pytest.raises(InvalidTTLError, match=re.escape(shown)) as error:
        await backend.expire("present", ttl)
    assert "ttl" in str(error.value)
    assert await backend.exists("k") == 0
    assert await backend.ttl("present") in near(backend, 300)


@pytest.mark.parametrize(("ttl", "shown"), BAD_TTLS)
def test_bad_default_ttl_is_an_invalid_ttl_error(tmp_path: Any, ttl: Any, shown: str) -> None:
    for make in (
        lambda: MemoryBackend(default_ttl=ttl),
        lambda: FileBackend(tmp_path, default_ttl=ttl),
        lambda: RedisBackend(default_ttl=ttl),
    ):
        with pytest.raises(InvalidTTLError, match=re.escape(shown)):
            make()


BAD_KEYS = [
    pytest.param(1, "int", id="int"),
    pytest.param(b"k", "bytes", id="bytes"),
    pytest.param(None, "NoneType", id="None"),
    pytest.param(1.5, "float", id="float"),
    pytest.param(("k",), "tuple", id="tuple"),
    pytest.param(["k"], "list", id="list-unhashable"),
    pytest.param("", "empty", id="empty"),
]


@pytest.mark.parametrize(("key", "named"), BAD_KEYS)
async def test_bad_key_is_an_invalid_key_error(backend: CacheBackend, key: Any, named: str) -> None:
    calls = {
        "get": lambda: backend.get(key),
        "set": lambda: backend.set(key, "v"),
        "add": lambda: backend.add(key, "v"),
        "delete": lambda: backend.delete(key),
        "exists": lambda: backend.exists(key),
        "ttl": lambda: backend.ttl(key),
        "expire": lambda: backend.expire(key, 10),
        "incr": lambda: backend.incr(key),
        "get_many": lambda: backend.get_many(["ok", key]),
    }
    if key.__hash__ is not None:
        calls["set_many"] = lambda: backend.set_many({"ok": "v", key: "v"})
    for name, call in calls.items():
        try:
            await call()
        except InvalidKeyError as error:
            message = str(error)
        else:
            pytest.fail(f"{name}({key!r}) did not raise InvalidKeyError")
        assert named in message, f"{name}: {message}"
        if key != "":
            assert repr(key) in message, f"{name}: {message}"
    assert await backend.exists("ok") == 0  # set_many checked every key before writing


async def test_a_bad_key_among_good_ones_deletes_nothing(backend: CacheBackend) -> None:
    await backend.set("a", "v")
    with pytest.raises(InvalidKeyError):
        await backend.delete("a", 1)  # type: ignore[arg-type]  # the point of the test
    assert await backend.get("a") == "v"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        pytest.param(1, "int", id="int"),
        pytest.param(1.5, "float", id="float"),
        pytest.param({"a": 1}, "dict", id="dict"),
        pytest.param(["a"], "list", id="list"),
        pytest.param(None, "NoneType", id="None"),
        pytest.param(object(), "object", id="object"),
    ],
)
async def test_bad_value_is_an_invalid_value_error(backend: CacheBackend, value: Any, named: str) -> None:
    for call in (
        lambda: backend.set("k", value),
        lambda: backend.add("k", value),
        lambda: backend.set_many({"ok": "v", "k": value}),
    ):
        with pytest.raises(InvalidValueError, match=named):
            await call()
    assert await backend.exists("k", "ok") == 0


async def test_strings_that_cannot_be_utf8_encoded_are_typed_errors(backend: CacheBackend) -> None:
    """Redis and SQLite store UTF-8: a lone surrogate must be refused as bad input everywhere."""
    with pytest.raises(InvalidKeyError):
        await backend.set("bad\ud800key", "v")
    with pytest.raises(InvalidValueError):
        await backend.set("k", "bad\udcffvalue")
    assert await backend.exists("k") == 0


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("user:[abc", id="unclosed-class"),
        pytest.param("[", id="lone-bracket"),
        pytest.param("a[^", id="unclosed-negated-class"),
        pytest.param("a[b-", id="unclosed-range"),
        pytest.param("user:\\", id="trailing-backslash"),
        pytest.param("\\", id="lone-backslash"),
        pytest.param("[\\", id="backslash-in-unclosed-class"),
    ],
)
async def test_bad_pattern_is_an_invalid_pattern_error(backend: CacheBackend, pattern: str) -> None:
    await backend.set("user:a", "v")
    with pytest.raises(InvalidPatternError, match=re.escape(repr(pattern))):
        await backend.scan(0, match=pattern)
    with pytest.raises(InvalidPatternError, match=re.escape(repr(pattern))):
        await backend.delete_pattern(pattern)
    assert await backend.get("user:a") == "v"


@pytest.mark.parametrize("pattern", [1, None, b"*"])
async def test_pattern_must_be_a_str(backend: CacheBackend, pattern: Any) -> None:
    with pytest.raises(InvalidPatternError, match=type(pattern).__name__):
        await backend.delete_pattern(pattern)
