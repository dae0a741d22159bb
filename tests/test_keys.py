"""Keys: stable, canonical, distinct; non-data parameters found from the signature."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import os
import subprocess
import sys
import uuid
from typing import Annotated, Any

import pytest
from fastapi import BackgroundTasks, Depends, Request
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from ignite_cache import CacheBackend, InvalidKeyError
from ignite_cache.keys import MAX_KEY_LENGTH, KeyMaker


def make(func: Any, **options: Any) -> KeyMaker:
    defaults: dict[str, Any] = {"prefix": "p", "template": None, "builder": None, "exclude": ()}
    return KeyMaker(func, **{**defaults, **options})


def f(a: Any, b: Any = 10, *, c: Any = None) -> None: ...


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Model(BaseModel):
    id: int
    tags: list[str]


def test_default_key_shape() -> None:
    key = make(f).key((1,), {})
    head, _, digest = key.rpartition(":")
    assert head == f"p:{__name__}.f"
    assert len(digest) == 32
    assert make(f, prefix="").key((1,), {}).startswith(f"{__name__}.f:")


def test_positional_keyword_defaults_and_order_give_one_key() -> None:
    k = make(f)
    keys = {
        k.key((1,), {}),
        k.key((), {"a": 1}),
        k.key((1, 10), {}),
        k.key((1,), {"b": 10}),
        k.key((), {"b": 10, "a": 1}),
        k.key((), {"a": 1, "b": 10, "c": None}),
        k.build((1,), {}),
    }
    assert len(keys) == 1


@pytest.mark.parametrize(
    "values",
    [
        [1, "1", 1.0, True, None, b"1", [1], (1,), {1}, {"1": 1}, Color.RED, decimal.Decimal("1")],
        [0, False, "", None, 0.0, [], {}, ()],
        [{1: "a"}, {"1": "a"}],
    ],
)
def test_distinct_values_give_distinct_keys(values: list[Any]) -> None:
    k = make(f)
    keys = [k.key((v,), {}) for v in values]
    assert len(set(keys)) == len(values)
    # the memo must not merge them either (1 == True == 1.0 in Python)
    assert [k.key((v,), {}) for v in values] == keys


def test_canonical_for_rich_types() -> None:
    k = make(f)
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    ident = uuid.UUID(int=7)
    assert k.key(({"b": 1, "a": 2},), {}) == k.key(({"a": 2, "b": 1},), {})
    assert k.key(({3, 1, 2},), {}) == k.key(({1, 2, 3},), {})
    assert k.key((Point(1, 2),), {}) == k.key((Point(1, 2),), {})
    assert k.key((Point(1, 2),), {}) != k.key((Point(2, 1),), {})
    assert k.key((Model(id=1, tags=["a"]),), {}) == k.key((Model(id=1, tags=["a"]),), {})
    assert k.key((Model(id=1, tags=["a"]),), {}) != k.key((Model(id=1, tags=["b"]),), {})
    assert k.key((when,), {}) != k.key((when.isoformat(),), {})
    assert k.key((ident,), {}) != k.key((str(ident),), {})
    assert k.key((Color.RED,), {}) != k.key((1,), {})


def test_keys_are_stable_across_processes() -> None:
    code = (
        f"from {__name__} import make, f, Point;"
        "print(make(f).key((1,), {}), make(f).key(({'x': [1, 2.5]}, Point(1, 2)), {}))"
    )
    path = os.pathsep.join(sys.path)
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": path},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().split() == [make(f).key((1,), {}), make(f).key(({"x": [1, 2.5]}, Point(1, 2)), {})]


def test_object_with_default_repr_is_a_clear_error() -> None:
    class Opaque:
        pass

    with pytest.raises(InvalidKeyError, match=r"Opaque.*exclude_keys"):
        make(f).key((Opaque(),), {})


def test_object_with_its_own_repr_is_keyed_by_it() -> None:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def __repr__(self) -> str:
            return f"Named({self.name!r})"

    k = make(f)
    assert k.key((Named("a"),), {}) == k.key((Named("a"),), {})
    assert k.key((Named("a"),), {}) != k.key((Named("b"),), {})


def get_db() -> object:
    return object()


def test_fastapi_injected_and_framework_parameters_are_left_out() -> None:
    async def route(
        request: Request,
        tasks: BackgroundTasks,
        user_id: int,
        db: object = Depends(get_db),
        user: Annotated[object, Depends(get_db)] = None,
        cache: CacheBackend | None = None,
    ) -> None: ...

    k = make(route)
    assert k.keyed == ["user_id"]
    one = k.key((), {"request": object(), "tasks": object(), "user_id": 1, "db": object(), "user": object()})
    two = k.key((), {"request": object(), "tasks": object(), "user_id": 1, "db": object(), "user": object()})
    assert one == two


def test_cache_backend_annotation_is_left_out() -> None:
    async def g(item_id: int, cache: CacheBackend) -> None: ...

    assert make(g).keyed == ["item_id"]


def test_self_and_cls_are_left_out() -> None:
    class Service:
        def get(self, user_id: int) -> None: ...

        @classmethod
        def make(cls, user_id: int) -> None: ...

    k = make(Service.get)
    assert k.keyed == ["user_id"]
    assert k.key((Service(), 1), {}) == k.key((Service(), 1), {}) == k.key((object(),), {"user_id": 1})
    assert make(Service.make.__func__).keyed == ["user_id"]


def test_exclude_keys() -> None:
    async def g(user_id: int, trace_id: str) -> None: ...

    k = make(g, exclude=["trace_id"])
    assert k.key((1, "a"), {}) == k.key((1, "b"), {})
    with pytest.raises(InvalidKeyError, match="nope"):
        make(g, exclude=["nope"])


def test_template_and_builder() -> None:
    async def g(user_id: int, page: int = 1) -> None: ...

    assert make(g, prefix="", template="user:{user_id}:{page}").key((7,), {}) == "user:7:1"
    assert make(g, template="u{user_id}").key((), {"user_id": 7}) == "p:u7"
    assert make(g, prefix="", builder=lambda user_id, page=1: f"b{user_id}").key((7,), {}) == "b7"
    with pytest.raises(InvalidKeyError, match="missing"):
        make(g, template="{missing}").key((7,), {})


def test_long_template_keys_are_hashed_not_cut() -> None:
    async def g(text: str) -> None: ...

    k = make(g, prefix="", template="t:{text}")
    a, b = k.key(("x" * 5000 + "a",), {}), k.key(("x" * 5000 + "b",), {})
    assert len(a) <= MAX_KEY_LENGTH and len(b) <= MAX_KEY_LENGTH
    assert a != b


def test_wrong_arguments_raise_type_error_like_the_function() -> None:
    k = make(f)
    with pytest.raises(TypeError):
        k.key((1,), {"zzz": 2})
    with pytest.raises(TypeError):
        k.key((1, 2, 3), {})
    with pytest.raises(TypeError):
        k.key((), {})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(a=json_values, b=json_values)
def test_property_keyword_order_and_call_shape_do_not_matter(a: Any, b: Any) -> None:
    k = make(f)
    assert k.key((a, b), {}) == k.key((), {"b": b, "a": a}) == k.key((a,), {"b": b})


@given(a=json_values, b=json_values)
def test_property_distinct_data_give_distinct_keys(a: Any, b: Any) -> None:
    k = make(f)
    same = k.key((a,), {}) == k.key((b,), {})
    assert same == (_typed(a) == _typed(b))


def _typed(value: Any) -> Any:
    """Equality that also compares types (1 != True != 1.0), like the key does."""
    if isinstance(value, dict):
        return ("dict", sorted((_typed(k), _typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float) and value == 0:
        return (float, repr(value))  # 0.0 and -0.0 are keyed apart
    return (type(value).__name__, value)


simple_values = st.none() | st.booleans() | st.integers() | st.text()


@given(a=simple_values, b=simple_values)
def test_property_fast_text_equals_the_canonical_text(a: Any, b: Any) -> None:
    import hashlib

    from ignite_cache.keys import canonical

    expected = hashlib.blake2b(canonical([a, b, None], "f").encode(), digest_size=16).hexdigest()
    assert make(f).build((a, b), {}) == f"p:{__name__}.f:{expected}"
