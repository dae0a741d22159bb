"""Access to the library under test; a missing name skips the 'ours' rows instead of failing."""

from __future__ import annotations

import importlib

OURS = "ignite_cache"


def ours(name: str):
    """``ignite_cache.<name>`` or None when the library (or that name) is not there yet."""
    try:
        return getattr(importlib.import_module("ignite_cache"), name, None)
    except ImportError:
        return None


def version() -> str | None:
    try:
        from importlib.metadata import version as v

        return v("ignite_cache")
    except Exception:
        return None
