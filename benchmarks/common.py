"""Shared configuration, data and timing helpers for the benchmark groups."""

from __future__ import annotations

import asyncio
import gc
import inspect
import random
import statistics
import time
from dataclasses import dataclass, field

TTL = 300
CONCURRENCY = 50
_rnd = random.Random(1234)
VALUES = {"100B": _rnd.randbytes(100), "10KB": _rnd.randbytes(10_240)}


@dataclass
class Config:
    quick: bool
    tmp: str
    redis_url: str | None = None  # the private redis-server started by __main__
    private_redis: bool = False
    n_keys: int = 10_000  # distinct keys per data set
    reps: int = 5
    fast_ops: int = 10_000  # ops per repetition for the memory and decorator groups
    slow_ops: int = 10_000  # ops per repetition for the file and Redis groups
    scale_ops: int = 2_000  # ops per repetition in the scaling groups
    inval_total: int = 100_000
    inval_match: int = 1_000
    scale_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    mem_entries: int = 100_000
    http_requests: int = 8_000
    http_reps: int = 7

    @classmethod
    def make(cls, quick: bool, tmp: str) -> Config:
        if not quick:
            return cls(quick, tmp)
        return cls(
            quick,
            tmp,
            reps=3,
            fast_ops=5_000,
            slow_ops=600,
            scale_ops=1_000,
            inval_total=10_000,
            inval_match=100,
            scale_sizes=(10_000, 50_000),
            mem_entries=10_000,
            http_requests=1_500,
            http_reps=3,
        )


def keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}:{i}" for i in range(n)]


def spread(seq: list, n: int) -> list:
    """``n`` items taken evenly across ``seq`` (all of it when n >= len)."""
    step = max(1, len(seq) // n)
    return seq[::step][:n]


async def _call(fn):
    res = fn()
    if inspect.isawaitable(res):
        await res


def get_loop(get, ks, sync=False):
    if sync:

        def run():
            for k in ks:
                get(k)

        return run

    async def arun():
        for k in ks:
            await get(k)

    return arun


def set_loop(set_, ks, value, sync=False):
    if sync:

        def run():
            for k in ks:
                set_(k, value)

        return run

    async def arun():
        for k in ks:
            await set_(k, value)

    return arun


def setter(ks, value):
    """``make_run`` for :func:`interleaved`: set every key of ``ks``."""
    return lambda impl: set_loop(impl.set, ks, value, impl.sync)


def getter(ks):
    """``make_run`` for :func:`interleaved`: get every key of ``ks``."""
    return lambda impl: get_loop(impl.get, ks, impl.sync)


def holds(key: str | list[str], value):
    """Predicate for :func:`check`: ``key`` (or every key of a list) reads back as ``value``."""
    ks = [key] if isinstance(key, str) else key

    async def predicate(impl) -> bool:
        return all([await value_of(impl, k) == value for k in ks])

    return predicate


def concurrent(loop_factory, ks, tasks=CONCURRENCY):
    """Run ``tasks`` workers at once, each looping over its share of ``ks``.

    Raises unless every worker had started its first operation before any worker finished its
    last, i.e. all ``tasks`` were really in flight together.
    """
    loops = [loop_factory(ks[i::tasks]) for i in range(tasks)]
    starts: list[float] = []
    ends: list[float] = []

    async def worker(loop):
        await asyncio.sleep(0)  # every worker is created before any starts working
        starts.append(time.perf_counter())
        await loop()
        ends.append(time.perf_counter())

    async def run():
        starts.clear()
        ends.clear()
        await asyncio.gather(*(worker(loop) for loop in loops))
        if len(starts) != tasks or max(starts) >= min(ends):
            raise AssertionError(f"the {tasks} concurrent tasks did not overlap")

    return run


@dataclass
class Impl:
    """One contender: bound get/set callables (async unless ``sync``) and optional extras."""

    name: str
    kind: str  # "ours", "floor", "ref" (another floor), "peer"
    get: object = None
    set: object = None
    sync: bool = False
    delete_pattern: object = None  # async (pattern) -> any
    close: object = None  # async () -> None
    extra: dict = field(default_factory=dict)


async def aclose(impl: Impl) -> None:
    if impl.close is not None:
        await _call(impl.close)


async def build(factories, group: Group) -> list[Impl]:
    """Instantiate every contender; one that fails to build is recorded and left out."""
    impls = []
    for factory in factories:
        try:
            impl = await factory()
        except Exception as exc:
            group.error(factory.__name__, "peer", exc)
            continue
        if impl is not None:
            impls.append(impl)
    return impls


async def close_all(impls: list[Impl]) -> None:
    for impl in impls:
        try:
            await aclose(impl)
        except Exception as exc:
            print(f"    ! closing {impl.name}: {exc!r}", flush=True)


async def interleaved(
    group: Group,
    col: str,
    impls: list[Impl],
    make_run,
    n_ops: int,
    reps: int,
    warmup: bool = False,
    scale: float = 1e6,
    before=None,
) -> None:
    """Time ``make_run(impl)()`` for every contender, repetitions interleaved round-robin (in a
    rotating order) so that drifting machine load hits everyone alike; store the medians.
    Objects alive before timing are frozen (``gc.freeze``), so that the data every contender
    keeps in this one process does not make the others' garbage collections slower.

    ``make_run`` may return None (not applicable); ``await before(impl)``, if given, runs
    untimed before each repetition. A contender that raises is recorded as an
    error and dropped from the rest of the group. ``scale`` 1e6 = µs per op, 1e3 = ms per op.
    """
    log(f"  {group.key}: {col}")
    runs = {}
    for impl in impls:
        if impl.name in group.failed:
            continue
        try:
            run = make_run(impl)
            if run is not None and warmup:
                await _call(run)
        except Exception as exc:
            group.error(impl.name, impl.kind, exc)
            continue
        if run is not None:
            runs[impl.name] = (impl, run, [])
    gc.collect()
    gc.freeze()  # data set up so far is no longer traversed by collections during timing
    try:
        for rep in range(reps):
            order = list(runs.values())
            order = order[rep % max(1, len(order)) :] + order[: rep % max(1, len(order))]
            for impl, run, times in order:
                if impl.name in group.failed:
                    continue
                try:
                    if before is not None:
                        await before(impl)
                    gc.collect()
                    t0 = time.perf_counter()
                    await _call(run)
                    times.append(time.perf_counter() - t0)
                except Exception as exc:
                    group.error(impl.name, impl.kind, exc)
    finally:
        gc.unfreeze()
    for impl, _, times in runs.values():
        if impl.name not in group.failed and times:
            group.put(impl.name, impl.kind, col, statistics.median(times) / n_ops * scale)


async def check(group: Group, impls: list[Impl], what: str, predicate) -> None:
    """Drop (as an error) every contender for which ``await predicate(impl)`` is false."""
    for impl in impls:
        if impl.name in group.failed:
            continue
        try:
            ok = await predicate(impl)
        except Exception as exc:
            group.error(impl.name, impl.kind, exc)
            continue
        if not ok:
            group.error(impl.name, impl.kind, AssertionError(what))


async def populate(impl: Impl, ks: list[str], value, chunk: int = 1_000) -> None:
    """Store ``value`` under every key, through ``extra['set_many']`` when the contender has one."""
    set_many = impl.extra.get("set_many")
    for i in range(0, len(ks), chunk):
        part = ks[i : i + chunk]
        if set_many is not None:
            await set_many(dict.fromkeys(part, value))
        else:
            await _call(set_loop(impl.set, part, value, impl.sync))


async def populate_all(group: Group, impls: list[Impl], ks: list[str], value) -> None:
    for impl in impls:
        if impl.name not in group.failed:
            try:
                await populate(impl, ks, value)
            except Exception as exc:
                group.error(impl.name, impl.kind, exc)


async def value_of(impl: Impl, key: str):
    got = impl.get(key)
    return got if impl.sync else await got


@dataclass
class Group:
    """One results table: rows are implementations, columns are measurements."""

    key: str
    title: str
    floor: str | None
    columns: list[dict] = field(default_factory=list)  # {key, label, unit, better}
    rows: dict[str, dict] = field(default_factory=dict)  # impl -> {kind, values: {col: v}}
    notes: list[str] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # contenders dropped after an error

    def col(self, key: str, label: str, unit: str = "µs/op", better: str = "lower") -> None:
        if all(c["key"] != key for c in self.columns):
            self.columns.append({"key": key, "label": label, "unit": unit, "better": better})

    def put(self, impl: str, kind: str, col: str, value: float | None) -> None:
        row = self.rows.setdefault(impl, {"kind": kind, "values": {}})
        row["values"][col] = None if value is None else round(value, 3)

    def error(self, impl: str, kind: str, exc: BaseException) -> None:
        self.failed.add(impl)
        self.rows.setdefault(impl, {"kind": kind, "values": {}})["error"] = repr(exc)[:300]
        print(f"    ! {impl}: {exc!r}"[:300], flush=True)

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "floor": self.floor,
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
        }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
