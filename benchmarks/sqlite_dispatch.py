"""Where should FileBackend run its SQLite statements: on the event loop or in a thread?

Measures, on one WAL database with 10k rows of ~100 bytes, the median µs of a primary-key
read and of a single-row write executed (a) directly on the event loop and (b) through
``run_in_executor`` on a one-thread pool (what aiosqlite-style designs do). The answer
chose FileBackend's design: statements run on the loop, and move to the thread only
when another process holds the write lock. Run: ``.venv/bin/python -m benchmarks.sqlite_dispatch``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROWS = 10_000
REPEATS = 5
OPS = 5_000


def open_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (key TEXT PRIMARY KEY, value BLOB, expires REAL)")
    return conn


async def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        conn = open_db(Path(folder) / "bench.sqlite3")
        conn.executemany("INSERT INTO t VALUES (?, ?, NULL)", [(f"k{i}", "x" * 100) for i in range(ROWS)])
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(1)

        def read(i: int) -> object:
            return conn.execute("SELECT value, expires FROM t WHERE key = ?", (f"k{i % ROWS}",)).fetchone()

        def write(i: int) -> object:
            return conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?, NULL)", (f"k{i % ROWS}", "y" * 100))

        async def on_loop(op: object) -> float:
            started = time.perf_counter()
            for i in range(OPS):
                op(i)  # type: ignore[operator]
                await asyncio.sleep(0)  # an await per call, as a coroutine API has
            return (time.perf_counter() - started) / OPS * 1e6

        async def in_thread(op: object) -> float:
            started = time.perf_counter()
            for i in range(OPS):
                await loop.run_in_executor(pool, op, i)  # type: ignore[arg-type]
            return (time.perf_counter() - started) / OPS * 1e6

        results: dict[str, list[float]] = {}
        for _ in range(REPEATS):
            for name, runner, op in (
                ("read on loop", on_loop, read),
                ("read in thread", in_thread, read),
                ("write on loop", on_loop, write),
                ("write in thread", in_thread, write),
            ):
                results.setdefault(name, []).append(await runner(op))
        pool.shutdown()
        conn.close()
    return {name: statistics.median(values) for name, values in results.items()}


def main() -> None:
    medians = asyncio.run(measure())
    for name, value in medians.items():
        print(f"{name:16} {value:8.1f} µs")
    print(f"read: the thread costs {medians['read in thread'] / medians['read on loop']:.1f}x the loop")
    print(f"write: the thread costs {medians['write in thread'] / medians['write on loop']:.1f}x the loop")


if __name__ == "__main__":
    main()
