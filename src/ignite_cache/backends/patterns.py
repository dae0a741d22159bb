"""The one glob dialect of ignite_cache: Redis's ``MATCH`` syntax, on every backend.

``*`` any run, ``?`` one character, ``[abc]`` ``[^a]`` ``[a-z]`` classes, ``\\x`` a
literal ``x``. The parser below follows Redis's ``stringmatchlen`` rule for rule (a range
is any ``x-y`` inside a class, reversed ranges are swapped, ``[]`` matches nothing), so the
memory backend's regex and the file backend's SQLite ``GLOB`` select exactly the keys Redis
would. Two deliberate departures, both stricter: an unclosed ``[`` and a trailing lone
backslash are errors instead of being read loosely. Matching is by character; Redis
matches bytes, which differs only for ``?`` and classes against non-ASCII keys.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ..errors import InvalidPatternError

_SPECIAL = frozenset("*?[]\\")


@dataclass(frozen=True, slots=True)
class _Class:
    negated: bool
    ranges: tuple[tuple[int, int], ...]  # inclusive code point ranges


_Token = str | _Class  # a str token is a literal run; "*" and "?" are kept as _STAR/_ANY
_STAR = _Class(negated=True, ranges=((-1, -1),))  # identity markers, never matched directly
_ANY = _Class(negated=True, ranges=((-2, -2),))


def escape_pattern(text: str) -> str:
    """Escape ``text`` so that, inside a pattern, it matches only itself (``a*`` -> ``a\\*``)."""
    if not isinstance(text, str):
        raise InvalidPatternError(f"escape_pattern() takes a str, not {type(text).__name__}.")
    return "".join("\\" + c if c in _SPECIAL else c for c in text)


def has_wildcards(pattern: str) -> bool:
    """Whether ``pattern`` can match more than one key (an unescaped ``*``, ``?`` or ``[``)."""
    return any(t is _STAR or t is _ANY or isinstance(t, _Class) for t in _parse(pattern))


def unescape_literal(pattern: str) -> str | None:
    """The one key that ``pattern`` matches, or ``None`` if it has wildcards."""
    tokens = _parse(pattern)
    if any(isinstance(t, _Class) for t in tokens):
        return None
    return "".join(t for t in tokens if isinstance(t, str))


def literal_prefix(pattern: str) -> str:
    """The text every key matching ``pattern`` starts with (``"user:"`` for ``"user:*"``)."""
    tokens = _parse(pattern)
    return tokens[0] if tokens and isinstance(tokens[0], str) else ""


def validate_pattern(pattern: object) -> str:
    """Return ``pattern`` if it is a well-formed glob, else raise ``InvalidPatternError``."""
    if not isinstance(pattern, str):
        raise InvalidPatternError(f"A pattern must be a str, not {type(pattern).__name__}.")
    _parse(pattern)
    return pattern


@functools.lru_cache(maxsize=512)
def _parse(pattern: str) -> tuple[_Token, ...]:
    tokens: list[_Token] = []
    literal: list[str] = []
    i, n = 0, len(pattern)

    def flush_literal() -> None:
        if literal:
            tokens.append("".join(literal))
            literal.clear()

    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise InvalidPatternError(
                    f"Pattern {pattern!r} ends with a lone backslash; write '\\\\' for a literal one."
                )
            literal.append(pattern[i + 1])
            i += 2
        elif c in "*?":
            flush_literal()
            if c == "?":
                tokens.append(_ANY)
            elif not tokens or tokens[-1] is not _STAR:
                tokens.append(_STAR)
            i += 1
        elif c == "[":
            flush_literal()
            cls, i = _parse_class(pattern, i + 1)
            tokens.append(cls)
        else:
            literal.append(c)
            i += 1
    flush_literal()
    return tuple(tokens)


def _parse_class(pattern: str, i: int) -> tuple[_Class, int]:
    """Parse after ``[`` exactly as Redis does; return the class and the index after ``]``."""
    n = len(pattern)
    negated = i < n and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[tuple[int, int]] = []
    while True:
        if i >= n:
            raise InvalidPatternError(f"Pattern {pattern!r} has an unclosed '['; escape it as '\\['.")
        c = pattern[i]
        if c == "\\" and n - i >= 2:
            i += 1
            ranges.append((ord(pattern[i]), ord(pattern[i])))
        elif c == "]":
            return _Class(negated, tuple(ranges)), i + 1
        elif n - i >= 3 and pattern[i + 1] == "-":
            lo, hi = sorted((ord(c), ord(pattern[i + 2])))
            ranges.append((lo, hi))
            i += 2
        else:
            ranges.append((ord(c), ord(c)))
        i += 1


# --- Python regex, for the memory backend -------------------------------------------------


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a glob into an equivalent regex; use ``.fullmatch(key)``."""
    parts: list[str] = []
    for token in _parse(pattern):
        if token is _STAR:
            parts.append(".*")
        elif token is _ANY:
            parts.append(".")
        elif isinstance(token, _Class):
            parts.append(_regex_class(token))
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts), re.DOTALL)


def _regex_class(cls: _Class) -> str:
    if not cls.ranges:
        return "." if cls.negated else "(?!)"
    body = "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in cls.ranges)
    return f"[{'^' if cls.negated else ''}{body}]"


# --- SQLite GLOB, for the file backend -----------------------------------------------------

_GLOB_SPECIAL = frozenset("*?[")


@functools.lru_cache(maxsize=512)
def to_sqlite_glob(pattern: str) -> str | None:
    """Translate a glob into SQLite's GLOB dialect, or ``None`` if it can match no key.

    SQLite's GLOB has no escape character, so a literal ``*``, ``?`` or ``[`` becomes a
    one-character class (``[*]``), and classes are re-emitted in an order SQLite cannot
    misread (``]`` first, ``-`` last, ``^`` never first).
    """
    parts: list[str] = []
    for token in _parse(pattern):
        if token is _STAR:
            parts.append("*")
        elif token is _ANY:
            parts.append("?")
        elif isinstance(token, _Class):
            glob = _glob_class(token)
            if glob is None:
                return None
            parts.append(glob)
        else:
            parts.append("".join(f"[{c}]" if c in _GLOB_SPECIAL else c for c in token))
    return "".join(parts)


def _glob_class(cls: _Class) -> str | None:
    if not cls.ranges:
        return "?" if cls.negated else None
    members = _split_specials(cls.ranges)
    specials = [c for c in "]^-" if c in members]
    plain = [m for m in members if m not in ("]", "^", "-")]
    body = ("]" if "]" in specials else "") + "".join(plain)
    if "^" in specials:
        body = body + "^" if body else ("-^" if "-" in specials else "^")
        if body == "-^":
            return f"[{'^' if cls.negated else ''}{body}]"
    if "-" in specials:
        body += "-"
    if not cls.negated and len(body) == 1:
        return f"[{body}]" if body in _GLOB_SPECIAL else body
    return f"[{'^' if cls.negated else ''}{body}]"


def _split_specials(ranges: tuple[tuple[int, int], ...]) -> list[str]:
    """Members as SQLite class items, with ``]``, ``^`` and ``-`` split out as singletons."""
    items: list[str] = []
    special = sorted(ord(c) for c in "]^-")
    for lo, hi in ranges:
        start = lo
        for s in special:
            if lo <= s <= hi:
                if start < s:
                    items.append(_glob_range(start, s - 1))
                items.append(chr(s))
                start = s + 1
        if start <= hi:
            items.append(_glob_range(start, hi))
    return items


def _glob_range(lo: int, hi: int) -> str:
    return chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}"
