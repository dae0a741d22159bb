"""Keys and values at the edges: unicode, empty, bytes, NUL bytes, tags, big values."""

from __future__ import annotations

import enum
import os
from typing import Any

import pytest

from ignite_cache import CacheBackend

from . import SHARED_STORE_KINDS, collect_keys

UNICODE_KEYS = ["ключ:1", "naïve café", "日本語:キー", "emoji:🔑🚀", "tab\tand\nnewline", "a b", "x" * 1000]


@pytest.mark.parametrize("key", UNICODE_KEYS)
async def test_unicode_keys(backend: CacheBackend, key: str) -> None:
    await backend.set(key, "v")
    assert await backend.get(key) == "v"
    assert await backend.exists(key) == 1
    assert await collect_keys(backend) == [key]
    assert await backend.delete(key) == 1


async def test_unicode_keys_with_patterns(backend: CacheBackend) -> None:
    await backend.set_many(dict.fromkeys(UNICODE_KEYS, "v"))
    assert await collect_keys(backend, match="ключ:*") == ["ключ:1"]
    assert await collect_keys(backend, match="*🔑*") == ["emoji:🔑🚀"]
    assert await backend.delete_pattern("日本語*") == 1
    assert await backend.delete_pattern("*") == len(UNICODE_KEYS) - 1


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("żółć 日本語 🚀", id="unicode"),
        pytest.param("0", id="zero"),
        pytest.param("None", id="None-text"),
        pytest.param('{"a": [1, 2.5, null]}', id="json"),
        pytest.param("\x00", id="nul"),
        pytest.param("\x00b", id="nul-b-looks-like-the-bytes-tag"),
        pytest.param("\x00s", id="nul-s-looks-like-the-str-tag"),
        pytest.param("\x00sabc", id="nul-s-abc"),
        pytest.param("\x00\x00\x00", id="nuls"),
        pytest.param("a\x00b", id="inner-nul"),
        pytest.param("\r\n\t ", id="whitespace"),
    ],
)
async def test_str_values_read_back_as_the_same_str(backend: CacheBackend, value: str) -> None:
    await backend.set("k", value)
    got = await backend.get("k")
    assert type(got) is str
    assert got == value
    assert await backend.get_many(["k"]) == [value]
    await backend.set_many({"m": value})
    assert await backend.get("m") == value


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"plain ascii", id="ascii"),
        pytest.param("żółć".encode(), id="valid-utf8"),
        pytest.param(b"\x00\x01\x02", id="leading-nul"),
        pytest.param(b"\x00b", id="the-bytes-tag"),
        pytest.param(b"\x00s", id="the-str-tag"),
        pytest.param(b"\x00sabc", id="str-tag-then-text"),
        pytest.param(b"\xff\xfe\xfd", id="not-utf8"),
        pytest.param(b"\x80", id="lone-continuation-byte"),
        pytest.param(bytes(range(256)), id="all-bytes"),
    ],
)
async def test_bytes_values_read_back_as_bytes(backend: CacheBackend, value: bytes) -> None:
    await backend.set("k", value)
    got = await backend.get("k")
    assert type(got) is bytes
    assert got == value
    assert await backend.get_many(["k"]) == [value]
    await backend.set_many({"m": value})
    assert await backend.get("m") == value


async def test_bytearray_and_memoryview_are_stored_as_bytes(backend: CacheBackend) -> None:
    await backend.set("a", bytearray(b"\x00abc"))
    await backend.set("m", memoryview(b"\xffxyz"))
    assert await backend.get_many(["a", "m"]) == [b"\x00abc", b"\xffxyz"]
    assert [type(v) for v in await backend.get_many(["a", "m"])] == [bytes, bytes]


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"
    GREEN = "green"


async def test_str_subclasses_are_stored_as_plain_str(backend: CacheBackend) -> None:
    await backend.set(Color.RED, Color.RED)
    await backend.incr(Color.BLUE)
    await backend.set_many({Color.GREEN: Color.GREEN})
    value = await backend.get("red")
    assert value == "red"
    assert type(value) is str
    keys = await collect_keys(backend)
    assert sorted(keys) == ["blue", "green", "red"]
    assert [type(k) for k in keys] == [str, str, str]


async def test_one_megabyte_values(backend: CacheBackend) -> None:
    text = "é" * (1024 * 1024)
    blob = os.urandom(1024 * 1024)
    await backend.set("text", text)
    await backend.set("blob", blob)
    assert await backend.get("text") == text
    assert await backend.get("blob") == blob
    assert await backend.get_many(["blob", "text"]) == [blob, text]


async def test_empty_string_is_a_value_not_a_miss(backend: CacheBackend) -> None:
    await backend.set("k", "")
    assert await backend.get("k") == ""
    assert await backend.exists("k") == 1
    assert await backend.add("k", "other") is False


@pytest.mark.parametrize("backend_kind", SHARED_STORE_KINDS)
async def test_types_survive_a_second_instance(make_backend: Any) -> None:
    writer = await make_backend()
    await writer.set_many({"s": "\x00b", "b": b"\x00s", "t": "text", "u": b"\xff"})
    reader = await make_backend()
    assert await reader.get_many(["s", "b", "t", "u"]) == ["\x00b", b"\x00s", "text", b"\xff"]
