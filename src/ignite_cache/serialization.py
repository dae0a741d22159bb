"""Values <-> bytes for ``@cached``: JSON (orjson) by default, typed by the return annotation.

orjson was chosen by measurement (``benchmarks/``): it encodes and decodes a typical API
payload several times faster than the standard library's ``json`` and natively handles
datetime, UUID, dataclasses and enums. A hit returns what the function's return
annotation says: when it names a pydantic model, a dataclass, datetime, UUID, Decimal,
an enum, a set or tuple (or a list/dict/Optional/Union of them), pydantic's
``TypeAdapter`` rebuilds that type from the JSON; otherwise plain JSON types come back.

Pickle is never the default: unpickling runs code chosen by whoever can write to the
store, so ``PickleSerializer`` requires a secret key and refuses any payload whose HMAC
does not match, treating it as a miss.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import hmac
import pickle
import typing
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from .errors import SerializationError

_RICH = (dt.date, dt.time, dt.timedelta, uuid.UUID, decimal.Decimal, enum.Enum, set, frozenset, tuple)


class Serializer(Protocol):
    """Turns a function's return value into bytes and back."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes | str) -> Any: ...


def _default(value: Any) -> Any:
    """orjson fallback for the types it does not encode itself."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"Type is not JSON serializable: {type(value).__qualname__}")


class JsonSerializer:
    """orjson encoding; decoding typed by ``return_type`` when plain JSON would lose the type."""

    def __init__(self, return_type: Any = Any, *, name: str = "the function") -> None:
        self.name = name
        self._loads: Callable[[bytes | str], Any] = orjson.loads
        if _needs_adapter(return_type):
            from pydantic import TypeAdapter

            self._loads = TypeAdapter(return_type).validate_json

    def dumps(self, value: Any) -> bytes:
        """JSON bytes of ``value``; ``SerializationError`` naming the function if it cannot be."""
        try:
            return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise SerializationError(
                f"The result of {self.name} cannot be cached as JSON: {exc}. Return JSON data, "
                "a pydantic model or a dataclass, or pass serializer=... to @cached."
            ) from exc

    def loads(self, data: bytes | str) -> Any:
        """The value back, typed by the return annotation; ``SerializationError`` if corrupt."""
        try:
            return self._loads(data)
        except ValueError as exc:  # orjson.JSONDecodeError and pydantic's ValidationError
            raise SerializationError(f"A cached value of {self.name} cannot be decoded: {exc}") from exc


class PickleSerializer:
    """Opt-in pickle for values JSON cannot hold, signed with HMAC-SHA256 so that a value
    written into the store by anyone without ``secret_key`` is never unpickled."""

    _HEADER = b"IGP1"

    def __init__(self, secret_key: bytes | str, *, name: str = "the function") -> None:
        key = secret_key.encode() if isinstance(secret_key, str) else secret_key
        if len(key) < 16:
            raise SerializationError("PickleSerializer needs a secret_key of at least 16 bytes.")
        self._key = key
        self.name = name

    def dumps(self, value: Any) -> bytes:
        """A signed pickle: header, HMAC-SHA256 of the payload, payload."""
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(f"The result of {self.name} cannot be pickled: {exc}") from exc
        return self._HEADER + hmac.digest(self._key, payload, hashlib.sha256) + payload

    def loads(self, data: bytes | str) -> Any:
        """Unpickle only what this key signed; anything else is a ``SerializationError``."""
        if not isinstance(data, bytes) or not data.startswith(self._HEADER):
            raise SerializationError(f"A cached value of {self.name} is not a signed pickle.")
        signature, payload = data[4:36], data[36:]
        if not hmac.compare_digest(signature, hmac.digest(self._key, payload, hashlib.sha256)):
            raise SerializationError(f"A cached value of {self.name} has a bad signature; ignored.")
        return pickle.loads(payload)  # signed by us: see the class docstring


def _needs_adapter(tp: Any) -> bool:
    """Whether plain JSON decoding would return a different type than ``tp`` promises."""
    if tp is Any or tp is None or tp is type(None):
        return False
    if isinstance(tp, type):
        if issubclass(tp, _RICH) or dataclasses.is_dataclass(tp):
            return True
        return hasattr(tp, "model_validate")  # a pydantic model
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _needs_adapter(typing.get_args(tp)[0])
    if origin in (tuple, set, frozenset):
        return True
    if origin is dict and typing.get_args(tp) and typing.get_args(tp)[0] not in (str, Any):
        return True  # JSON object keys are strings: dict[int, X] needs its keys converted back
    return any(_needs_adapter(arg) for arg in typing.get_args(tp) if arg is not Ellipsis)
