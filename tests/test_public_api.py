"""The public namespace: a sorted __all__ that lists exactly what the package exports."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import ignite_cache
from ignite_cache import errors

DESIGN_NAMES = {
    # DESIGN.md section 1: every one importable from ignite_cache
    "CacheBackend",
    "MemoryBackend",
    "FileBackend",
    "RedisBackend",
    "CacheSettings",
    "create_backend",
    "get_cache_backend",
    "init_cache",
    "close_cache",
    "get_cache",
    "cached",
    "invalidate_cache",
    "CacheError",
    "CacheConfigError",
    "CacheBackendError",
    "SerializationError",
}


def isort_style(name: str) -> tuple[int, str]:
    """RUF022's order: SCREAMING_CASE constants, then CamelCase classes, then the rest."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    assert ignite_cache.__all__ == sorted(ignite_cache.__all__, key=isort_style)
    assert len(set(ignite_cache.__all__)) == len(ignite_cache.__all__)


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        name
        for name, value in vars(ignite_cache).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name != "annotations"
    }
    assert set(ignite_cache.__all__) == public


def test_design_names_are_exported() -> None:
    assert DESIGN_NAMES - set(ignite_cache.__all__) == set()
    for name in DESIGN_NAMES:
        assert getattr(ignite_cache, name) is not None


def test_star_import_gives_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from ignite_cache import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(ignite_cache.__all__)


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        ("CacheConfigError", (ValueError,)),
        ("InvalidKeyError", (TypeError,)),
        ("InvalidValueError", (TypeError,)),
        ("InvalidTTLError", (ValueError,)),
        ("InvalidPatternError", (ValueError,)),
        ("SerializationError", (TypeError,)),
        ("CacheBackendError", ()),
        ("CacheUnavailableError", (errors.CacheBackendError,)),
    ],
)
def test_error_hierarchy(error: str, bases: tuple[type, ...]) -> None:
    cls = getattr(errors, error)
    assert issubclass(cls, ignite_cache.CacheError)
    for base in bases:
        assert issubclass(cls, base)
    if error in ignite_cache.__all__:
        assert getattr(ignite_cache, error) is cls
    assert not issubclass(errors.CacheBackendError, ValueError | TypeError)


def test_errors_do_not_shadow_builtins() -> None:
    import builtins

    assert not {name for name in vars(errors) if name.endswith("Error")} & set(vars(builtins))


def test_importing_the_package_imports_no_optional_dependency() -> None:
    code = (
        "import sys, ignite_cache; "
        "print(sorted(m for m in ('redis', 'fastapi', 'starlette', 'hiredis', 'httpx') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
