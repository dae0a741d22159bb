"""The glob dialect: escape_pattern, the regex and SQLite GLOB translations, and a property
test that memory, file and Redis select exactly the same keys for the same pattern."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import string
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ignite_cache import (
    CacheBackend,
    FileBackend,
    InvalidPatternError,
    MemoryBackend,
    RedisBackend,
    escape_pattern,
)
from ignite_cache.backends.patterns import (
    compile_pattern,
    has_wildcards,
    to_sqlite_glob,
    unescape_literal,
    validate_pattern,
)

# --- escape_pattern --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain:key-1^", "plain:key-1^"),
        ("a*b", "a\\*b"),
        ("what?", "what\\?"),
        ("[x]", "\\[x\\]"),
        ("back\\slash", "back\\\\slash"),
        ("*?[]\\", "\\*\\?\\[\\]\\\\"),
        ("", ""),
        ("ключ*", "ключ\\*"),
    ],
)
def test_escape_pattern(text: str, escaped: str) -> None:
    assert escape_pattern(text) == escaped
    assert unescape_literal(escaped) == text
    assert not has_wildcards(escaped)


@pytest.mark.parametrize("text", [1, b"a*", None])
def test_escape_pattern_takes_only_str(text: Any) -> None:
    with pytest.raises(InvalidPatternError, match=type(text).__name__):
        escape_pattern(text)


KEY_TEXT = st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=12)


@given(st.text(alphabet=string.ascii_letters + "*?[]^-\\:é", max_size=12), KEY_TEXT)
def test_an_escaped_text_matches_only_itself(text: str, other: str) -> None:
    pattern = escape_pattern(text)
    assert compile_pattern(pattern).fullmatch(text)
    assert bool(compile_pattern(pattern).fullmatch(other)) is (other == text)
    glob = to_sqlite_glob(pattern)
    assert glob is not None
    assert sqlite_glob_matches(glob, text)
    assert sqlite_glob_matches(glob, other) is (other == text)


# --- the translations, on the classes that are easy to get wrong -------------------------------

ALPHABET = "a]^-\\[*?z_`"
SHORT_KEYS = ["".join(p) for n in (1, 2) for p in itertools.product(ALPHABET, repeat=n)]

TRICKY = {
    # pattern: the one- and two-character keys over ALPHABET it matches (per Redis's rules)
    "[]]": set(),  # "[]" is an empty class: nothing matches, so neither does "[]]"
    "[^]]": {c + "]" for c in ALPHABET},  # "[^]" is any character, then a literal "]"
    "[a-]]": {"]", "^", "_", "`", "a"},  # the range "a-]" is reversed: "]" up to "a"
    "[z-a]": {"a", "z"},  # reversed ranges are swapped (only "a" and "z" are in the alphabet)
    "[\\]]": {"]"},
    "[-]": {"-"},
    "[^-^]": set(ALPHABET) - {"-", "^"},
    "\\*": {"*"},
    "\\?": {"?"},
    "\\[": {"["},
    "\\\\": {"\\"},
    "[]": set(),
    "[^]": set(ALPHABET),
    "[a-c-e]": {"a", "-"},  # "a-c", then a literal "-", then "e"
    "[\\-a]": {"-", "a"},
    "[a\\-z]": {"a", "-", "z"},
    "[a-\\]]": {"\\]", "]]", "^]", "_]", "`]", "a]"},  # the range "a-\\", then a literal "]"
    "[*?]": {"*", "?"},
    "[[]": {"["},
    "*]": {k for k in SHORT_KEYS if k.endswith("]")},
    "?": set(ALPHABET),
    "**": set(SHORT_KEYS),
    "a*a": {"aa"},
}


@pytest.mark.parametrize(("pattern", "expected"), TRICKY.items(), ids=list(TRICKY))
def test_regex_translation(pattern: str, expected: set[str]) -> None:
    regex = compile_pattern(pattern)
    assert {k for k in SHORT_KEYS if regex.fullmatch(k)} == expected


@pytest.mark.parametrize(("pattern", "expected"), TRICKY.items(), ids=list(TRICKY))
def test_sqlite_translation(pattern: str, expected: set[str]) -> None:
    glob = to_sqlite_glob(pattern)
    if glob is None:  # "can match nothing": the file backend skips the query
        assert expected == set()
    else:
        assert {k for k in SHORT_KEYS if sqlite_glob_matches(glob, k)} == expected


@pytest.mark.redis
async def test_tricky_patterns_on_redis(redis_url: str, namespace: str) -> None:
    """The table above is Redis's reading: check it against a real server."""
    async with RedisBackend(redis_url, namespace=namespace) as redis:
        try:
            await redis.set_many(dict.fromkeys(SHORT_KEYS, "v"), ex=60)
            for pattern, expected in TRICKY.items():
                assert set(await scan_all(redis, pattern)) == expected, pattern
        finally:
            await redis.flush()


@pytest.mark.parametrize("pattern", ["[", "a[b", "[^", "[a-", "[\\", "\\", "a\\", "[]a[^"])
def test_malformed_patterns(pattern: str) -> None:
    with pytest.raises(InvalidPatternError, match=r"unclosed|backslash") as error:
        validate_pattern(pattern)
    assert repr(pattern) in str(error.value)


def test_wildcards_and_literals() -> None:
    assert has_wildcards("a*") and has_wildcards("a?") and has_wildcards("[ab]")
    assert not has_wildcards("a\\*b")
    assert unescape_literal("user:\\*") == "user:*"
    assert unescape_literal("user:*") is None
    assert unescape_literal("a[b]") is None


def test_star_and_question_mark_match_newlines() -> None:
    assert compile_pattern("a*").fullmatch("a\nb")
    assert compile_pattern("a?b").fullmatch("a\nb")


# --- the same keys on every backend -------------------------------------------------------------

KEY_ALPHABET = string.ascii_letters + string.digits + "*?[]^-\\:"
SPECIAL = "*?[]\\"

keys_strategy = st.sets(st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=6), min_size=1, max_size=20)
char = st.sampled_from(KEY_ALPHABET)
member = char.filter(lambda c: c not in "]\\")
literal = char.map(lambda c: "\\" + c if c in SPECIAL else c)
class_item = st.one_of(
    member,
    char.map(lambda c: "\\" + c),
    st.tuples(member, char).map(lambda pair: f"{pair[0]}-{pair[1]}"),
)
glob_class = st.tuples(st.booleans(), st.lists(class_item, max_size=3)).map(
    lambda parts: "[" + ("^" if parts[0] else "") + "".join(parts[1]) + "]"
)
token = st.one_of(literal, literal, st.just("*"), st.just("?"), glob_class)


def well_formed(pattern: str) -> bool:
    try:
        validate_pattern(pattern)
    except InvalidPatternError:
        return False  # e.g. "[a-]": the range swallows the "]", as it does in Redis
    return True


patterns_strategy = st.lists(token, min_size=1, max_size=5).map("".join).filter(well_formed)


@pytest.mark.redis
def test_every_backend_selects_what_redis_selects(redis_url: str, tmp_path: Path) -> None:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    with asyncio.Runner() as runner:
        redis = RedisBackend(redis_url, namespace=namespace)
        others: list[CacheBackend] = [MemoryBackend(), FileBackend(tmp_path, namespace=namespace)]
        runner.run(open_all([redis, *others]))

        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(keys=keys_strategy, pattern=patterns_strategy)
        def same_selection(keys: set[str], pattern: str) -> None:
            runner.run(compare(redis, others, keys, pattern))

        try:
            same_selection()
        finally:
            runner.run(close_all([redis, *others]))


async def compare(reference: CacheBackend, others: list[CacheBackend], keys: set[str], pattern: str) -> None:
    mapping = dict.fromkeys(keys, "v")
    for backend in (reference, *others):
        await backend.flush()
        await backend.set_many(mapping, ex=None)
    expected = sorted(await scan_all(reference, pattern))
    regex = compile_pattern(pattern)
    assert expected == sorted(k for k in keys if regex.fullmatch(k)), "the regex disagrees with Redis"
    for backend in others:
        assert sorted(await scan_all(backend, pattern)) == expected, type(backend).__name__
    for backend in (reference, *others):
        assert await backend.delete_pattern(pattern) == len(expected), type(backend).__name__
        assert sorted(await scan_all(backend, "*")) == sorted(keys - set(expected))


NON_ASCII_KEYS = ["ключ:1", "ключ:2", "ключ", "naïve", "naive", "日本", "日本語", "x日", "plain"]


@pytest.mark.redis
@pytest.mark.parametrize(
    "pattern", ["ключ:1", "ключ*", "*ï*", "日*", "*本", "*日*", "*", "ключ:[12]", "na*ve", "*:?"]
)
async def test_non_ascii_keys_with_literals_and_stars(
    redis_url: str, tmp_path: Path, namespace: str, pattern: str
) -> None:
    backends: list[CacheBackend] = [
        RedisBackend(redis_url, namespace=namespace),
        MemoryBackend(),
        FileBackend(tmp_path, namespace=namespace),
    ]
    await open_all(backends)
    try:
        for backend in backends:
            await backend.set_many(dict.fromkeys(NON_ASCII_KEYS, "v"), ex=None)
        selections = [sorted(await scan_all(b, pattern)) for b in backends]
        assert selections[0], "the pattern should select something"
        assert selections[1] == selections[0]
        assert selections[2] == selections[0]
    finally:
        await close_all(backends)


@pytest.mark.parametrize("backend_kind", ["memory", "file"])
async def test_question_mark_is_one_character_not_one_byte(backend: CacheBackend) -> None:
    """The documented difference from Redis: ``?`` and classes match characters here."""
    await backend.set_many(dict.fromkeys(NON_ASCII_KEYS, "v"))
    assert sorted(await scan_all(backend, "日?")) == ["日本"]
    assert sorted(await scan_all(backend, "na?ve")) == ["naive", "naïve"]
    assert sorted(await scan_all(backend, "[^a]日")) == ["x日"]


# --- helpers -------------------------------------------------------------------------------------


def sqlite_glob_matches(glob: str, key: str) -> bool:
    with sqlite3.connect(":memory:") as conn:
        return bool(conn.execute("SELECT ? GLOB ?", (key, glob)).fetchone()[0])


async def scan_all(backend: CacheBackend, match: str) -> list[str]:
    keys: list[str] = []
    cursor: Any = 0
    while True:
        cursor, batch = await backend.scan(cursor, match=match, count=500)
        keys.extend(batch)
        if cursor in (0, "0"):
            return keys


async def open_all(backends: list[CacheBackend]) -> None:
    for backend in backends:
        await backend.init()


async def close_all(backends: list[CacheBackend]) -> None:
    for backend in backends:
        await backend.flush()
        await backend.close()
