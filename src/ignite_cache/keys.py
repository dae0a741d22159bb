"""Stable cache keys from a call's arguments.

The default key is ``{key_prefix}:{module.qualname}:{digest}``: the digest is a BLAKE2b
hash of a canonical text of the bound arguments, the same in every process and run (no
``hash()``), the same whether an argument was passed by position or by name and in any
keyword order, and different for ``1``, ``"1"``, ``1.0``, ``True`` and ``None`` (the
canonical text is built from ``repr`` of tagged values). Parameters that are not data
are left out, found from the signature: ``self``/``cls``, FastAPI's ``Request``,
``Response``, ``WebSocket`` and ``BackgroundTasks``, a ``CacheBackend``, and anything
FastAPI injects (a ``Depends(...)``/``Security(...)`` default or ``Annotated`` marker).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import inspect
import uuid
from collections.abc import Callable, Iterable
from types import UnionType
from typing import Any, Union, get_args, get_origin

from .errors import InvalidKeyError

MAX_KEY_LENGTH = 1024
"""Longer keys (from templates or builders) are shortened by hashing their tail, never cut."""

_SIMPLE = (str, int, float, bool, type(None))
_MISSING = object()
_MEMO_TYPES = frozenset({*_SIMPLE, object})  # object: the type of _MISSING
_MEMO_SIZE = 16384  # per function; at most a few MB, and a 10k-key working set fits
_NO_FLOAT_SIMPLE = frozenset({str, int, bool, type(None)})
_FASTAPI_MARKERS = {"Depends", "Security"}
_NOT_DATA_TYPES = {"Request", "Response", "WebSocket", "BackgroundTasks", "HTTPConnection"}


class KeyMaker:
    """Builds the keys of one decorated function; the signature is read once, at decoration."""

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        prefix: str,
        template: str | None,
        builder: Callable[..., str] | None,
        exclude: Iterable[str],
    ) -> None:
        self.signature = _signature(func)
        self.name = f"{func.__module__}.{func.__qualname__}"
        self.head = f"{prefix}:{self.name}:" if prefix else f"{self.name}:"
        self.prefix = f"{prefix}:" if prefix else ""
        self.template = template
        self.builder = builder
        params = list(self.signature.parameters.values())
        self._names = [p.name for p in params]
        self._simple_binding = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        self._positional = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        self._defaults = {p.name: p.default for p in params if p.default is not p.empty}
        skipped = set(exclude) | {p.name for p in params if _is_not_data(p, first=p is params[0])}
        unknown = set(exclude) - set(self._names)
        if unknown:
            raise InvalidKeyError(f"exclude_keys names no parameter of {self.name}: {sorted(unknown)}.")
        self.keyed = [name for name in self._names if name not in skipped]
        # A memo of finished keys for calls whose keyed arguments are all simple immutable
        # values: a digest costs about a microsecond, a dict lookup tens of nanoseconds.
        # Positional calls use it when the only left-out parameters lead (``self``).
        self._memo: dict[tuple[Any, ...], str] = {}
        leading = len(skipped)
        simple_prefix = self._simple_binding and set(self._names[:leading]) == skipped
        self._skip = leading if simple_prefix else -1

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by parameter name, defaults applied, exactly as Python would bind them."""
        names = self._names
        if self._simple_binding and len(args) <= self._positional:
            bound = dict(zip(names, args, strict=False))
            if kwargs:
                for name in kwargs:
                    if name in bound or (name not in self._defaults and name not in names):
                        return self._bind_slow(args, kwargs)
                bound.update(kwargs)
            if len(bound) < len(names):
                for name, default in self._defaults.items():
                    bound.setdefault(name, default)
                if len(bound) < len(names):
                    return self._bind_slow(args, kwargs)  # raises the usual TypeError
            return bound
        return self._bind_slow(args, kwargs)

    def _bind_slow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The cache key of the call ``func(*args, **kwargs)``."""
        if self.builder is not None or self.template is not None:
            # no memo: a template may read attributes (self.id) and a builder anything at all
            return self.build(args, kwargs)
        if kwargs:
            if args:
                return self.build(args, kwargs)
            values = tuple([kwargs.get(n, _MISSING) for n in self.keyed])
            shape = len(kwargs)
        elif self._skip >= 0:
            values = args[self._skip :]
            shape = -1
        else:
            return self.build(args, kwargs)
        types = tuple(map(type, values))
        if not _MEMO_TYPES.issuperset(types):
            return self.build(args, kwargs)
        memo_key = (values, types, shape)
        key = self._memo.get(memo_key)
        if key is None:
            key = self.build(args, kwargs)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[memo_key] = key
        return key

    def build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """The key of ``func(*args, **kwargs)``, computed from scratch."""
        if self.builder is not None:
            return shorten(self.prefix + self.builder(*args, **kwargs))
        bound = self.bind(args, kwargs)
        if self.template is not None:
            return shorten(self.prefix + format_template(self.template, bound, self.name))
        values = [bound[name] for name in self.keyed]
        if _NO_FLOAT_SIMPLE.issuperset(map(type, values)):  # what canonical() gives, faster
            text = "[" + ",".join(map(repr, values)) + "]"
        else:
            text = canonical(values, self.name)
        return self.head + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def format_template(template: str, bound: dict[str, Any], name: str) -> str:
    """``template.format(**bound)``, with an error naming the function when a field is missing."""
    try:
        return template.format_map(bound)
    except (KeyError, AttributeError, IndexError) as exc:
        raise InvalidKeyError(
            f"Key template {template!r} of {name} refers to {exc}, which is not an argument."
        ) from None


def shorten(key: str) -> str:
    """``key`` itself, or if too long, its head and a hash of the whole (never a bare cut)."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return f"{key[: MAX_KEY_LENGTH - 40]}:#{digest}"


def canonical(value: Any, name: str) -> str:
    """A text that is equal for equal data and different for different types or values."""
    t = type(value)
    if t is float:
        return repr(value + 0.0)  # -0.0 == 0.0: one key, whatever the memo saw first
    if t in _SIMPLE or t is bytes:
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"<{t.__module__}.{t.__qualname__}.{value.name}>"
    if t is list or t is tuple:
        inner = ",".join(canonical(v, name) for v in value)
        return f"[{inner}]" if t is list else f"({inner})"
    if isinstance(value, dict):
        items = sorted(f"{canonical(k, name)}:{canonical(v, name)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, set | frozenset):
        return "set{" + ",".join(sorted(canonical(v, name) for v in value)) + "}"
    if isinstance(value, dt.date | dt.time | dt.timedelta | uuid.UUID | decimal.Decimal):
        return f"<{t.__name__} {value}>"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return f"<{t.__module__}.{t.__qualname__} {canonical(fields, name)}>"
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model
        return f"<{t.__module__}.{t.__qualname__} {canonical(dump(mode='python'), name)}>"
    if isinstance(value, str | int | float | bytes):  # subclasses of the simple types
        return f"<{t.__qualname__} {type(value).__mro__[1](value)!r}>"
    if any("__repr__" in vars(c) for c in t.__mro__[:-1]):  # a repr of its own
        return f"<{t.__module__}.{t.__qualname__} {value!r}>"
    raise InvalidKeyError(
        f"{name} cannot be cached by its arguments: a {t.__qualname__} has no stable text "
        "(its repr holds a memory address). Add it to exclude_keys, pass a key template "
        "(key='...{arg.id}'), or give it a __repr__."
    )


def _signature(func: Callable[..., Any]) -> inspect.Signature:
    """The signature with string annotations evaluated where possible (PEP 563 modules)."""
    try:
        return inspect.signature(func, eval_str=True)
    except Exception:  # a forward reference that does not resolve yet: judge by name
        return inspect.signature(func)


def _is_not_data(param: inspect.Parameter, *, first: bool) -> bool:
    if first and param.name in ("self", "cls"):
        return True
    if _is_fastapi_marker(param.default):
        return True
    annotation = param.annotation
    if get_origin(annotation) is not None and hasattr(annotation, "__metadata__"):
        if any(_is_fastapi_marker(m) for m in annotation.__metadata__):
            return True
        annotation = get_args(annotation)[0]
    return _is_not_data_type(annotation)


def _is_fastapi_marker(obj: object) -> bool:
    t = type(obj)
    return t.__name__ in _FASTAPI_MARKERS and t.__module__.startswith("fastapi")


def _is_not_data_type(annotation: object) -> bool:
    if get_origin(annotation) in (Union, UnionType):  # Optional[Request], CacheBackend | None
        return any(_is_not_data_type(a) for a in get_args(annotation) if a is not type(None))
    if isinstance(annotation, str):  # an unresolved forward reference: judge by its name
        return annotation.rpartition(".")[2] in _NOT_DATA_TYPES | {"CacheBackend"}
    if not isinstance(annotation, type):
        return False
    from .backends.base import CacheBackend

    if issubclass(annotation, CacheBackend):
        return True
    return any(
        c.__name__ in _NOT_DATA_TYPES and c.__module__.split(".")[0] in ("starlette", "fastapi")
        for c in annotation.__mro__
    )
