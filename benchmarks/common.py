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
    slow_ops: int = 10_000  # ops per repetition for the file and Redis groups
    inval_total: int = 100_000
    inval_match: int = 1_000
    scale_sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    mem_entries: int = 100_000
    http_requests: int = 20_000
    http_reps: int = 3

    @classmethod
    def make(cls, quick: bool, tmp: str) -> Config:
        if not quick:
            return cls(quick, tmp)
        return cls(quick, tmp, reps=3, slow_ops=2_000, inval_total=10_000, inval_match=100,
                   scale_sizes=(10_000, 50_000), mem_entries=10_000, http_requests=3_000,
                   http_reps=2)


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


async def measure(run_once, n_ops: int, reps: int, warmup: bool = False) -> float:
    """Median over ``reps`` of the wall time of ``run_once()`` (sync or async), in µs per op."""
    if warmup:
        await _call(run_once)
    times = []
    for _ in range(reps):
        gc.collect()
        t0 = time.perf_counter()
        await _call(run_once)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / n_ops * 1e6


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


def concurrent(loop_factory, ks, tasks=CONCURRENCY, stats=None):
    """Run ``tasks`` workers at once, each looping over its share of ``ks``.

    ``stats`` gets ``workers`` and ``overlap``: True when every worker had started its
    first operation before any worker finished its last (i.e. all were in flight at once).
    """
    chunks = [ks[i::tasks] for i in range(tasks)]
    loops = [loop_factory(c) for c in chunks]
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
        if stats is not None:
            stats["workers"] = len(starts)
            stats["overlap"] = stats.get("overlap", True) and max(starts) < min(ends)
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


async def run_each(factories, group: Group, body) -> None:
    """Build each contender, run ``await body(impl)``, close it; errors are recorded, not fatal."""
    for factory in factories:
        impl = None
        try:
            impl = await factory()
            if impl is None:
                continue
            log(f"  {group.key}: {impl.name}")
            await body(impl)
        except Exception as exc:  # keep the other contenders going
            group.error(impl.name if impl else factory.__name__, impl.kind if impl else "peer", exc)
        finally:
            if impl is not None:
                await aclose(impl)
        gc.collect()


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

    def col(self, key: str, label: str, unit: str = "µs/op", better: str = "lower") -> None:
        if all(c["key"] != key for c in self.columns):
            self.columns.append({"key": key, "label": label, "unit": unit, "better": better})

    def put(self, impl: str, kind: str, col: str, value: float | None) -> None:
        row = self.rows.setdefault(impl, {"kind": kind, "values": {}})
        row["values"][col] = None if value is None else round(value, 3)

    def error(self, impl: str, kind: str, exc: BaseException) -> None:
        self.rows.setdefault(impl, {"kind": kind, "values": {}})["error"] = repr(exc)[:300]
        print(f"    ! {impl}: {exc!r}"[:300], flush=True)

    def to_dict(self) -> dict:
        return {"key": self.key, "title": self.title, "floor": self.floor,
                "columns": self.columns, "rows": self.rows, "notes": self.notes}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
