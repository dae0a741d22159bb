"""Small shared types: the stored value type and the 'use the default TTL' sentinel."""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Final, TypeAlias


class _DefaultTTL(enum.Enum):
    """Typed sentinel: 'no TTL given, use the backend's default TTL' (distinct from None)."""

    DEFAULT_TTL = enum.auto()

    def __repr__(self) -> str:
        return "DEFAULT_TTL"


DEFAULT_TTL: Final = _DefaultTTL.DEFAULT_TTL
"""Passed (or left) as ``ex``/``ttl``: use the configured ``CACHE_TTL_SECONDS``."""

Value: TypeAlias = str | bytes
"""What a backend stores: a value set as ``str`` reads back as ``str``, ``bytes`` as ``bytes``."""

TTL: TypeAlias = int | timedelta | _DefaultTTL | None
"""A TTL argument: whole seconds, a timedelta, ``None`` for no expiry, or DEFAULT_TTL."""
