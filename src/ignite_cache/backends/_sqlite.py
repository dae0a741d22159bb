"""The SQLite plumbing under ``FileBackend``: connections, schema, and where each call runs.

Where calls run, decided by measurement (``benchmarks/``): a WAL read or a single-row
write costs a few microseconds, far less than a hop to a worker thread (~50 µs), so every
statement first runs on the event loop on a connection whose busy timeout is zero. Only
when another process holds the write lock (``SQLITE_BUSY``) is the call retried on a
worker thread whose connection waits up to ``lock_timeout``; the loop never blocks on a
lock. Multi-statement writes begin with ``BEGIN IMMEDIATE``: a deferred transaction that
upgrades from read to write fails at once with "database is locked" under contention,
whatever the busy timeout. Connections never cross ``fork()`` (a child reopens), since a
connection carried into a child process corrupts databases.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import CacheBackendError, CacheConfigError

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,   -- store order: the oldest write is evicted first
    key TEXT NOT NULL UNIQUE,
    value BLOB NOT NULL,      -- no affinity: TEXT stays str and BLOB stays bytes
    expires REAL              -- unix time; NULL never expires
);
CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires) WHERE expires IS NOT NULL;
"""
_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}

_open_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for store in list(_open_stores):
        store.forget()


os.register_at_fork(after_in_child=_forget_connections_after_fork)


def is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _BUSY or "locked" in str(exc)


def is_corrupt(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _CORRUPT


class SQLiteStore:
    """Two connections to one database file: one for the event loop, one for a worker thread."""

    def __init__(self, file: Path, *, lock_timeout: float, wal_limit: int = 64 * 1024 * 1024) -> None:
        self.file = file
        self.wal_limit = wal_limit
        """Bytes the -wal file is truncated to after a checkpoint."""
        self.lock_timeout = lock_timeout
        self.loop_conn: sqlite3.Connection | None = None
        self._thread_conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.inode: int | None = None
        _open_stores.add(self)

    # --- opening and closing ---------------------------------------------------------------

    async def open(self) -> None:
        """Create the folder and schema (in the worker, it may wait for a lock), then connect."""
        await self.in_thread(lambda conn: None, bounded=False)
        self.loop_conn = self._connect(busy_timeout=0.0)
        self.inode = self._inode()

    def _inode(self) -> int | None:
        try:
            return os.stat(self.file).st_ino
        except FileNotFoundError:
            return None

    async def reopen_if_replaced(self) -> bool:
        """Reconnect if the file was deleted or replaced under us (our connections would
        keep using the old, unlinked file while other processes use the new one)."""
        if self.loop_conn is None or self._inode() == self.inode:
            return False
        logging.getLogger("ignite_cache").warning(
            "The cache database %s was deleted or replaced; reopening it.", self.file
        )
        await self.close()
        await self.open()
        return True

    def _connect(self, *, busy_timeout: float) -> sqlite3.Connection:
        conn = sqlite3.connect(self.file, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _thread_connection(self) -> sqlite3.Connection:
        if self._thread_conn is None:
            self._thread_conn = self._create()
        return self._thread_conn

    def _create(self) -> sqlite3.Connection:
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheConfigError(
                f"CACHE_FILE_PATH {str(self.file.parent)!r} cannot be created: {exc}."
            ) from exc
        if not os.access(self.file.parent, os.W_OK | os.X_OK):
            raise CacheConfigError(
                f"CACHE_FILE_PATH {str(self.file.parent)!r} is not writable; SQLite in WAL mode "
                "needs to create files beside the database, even to read it."
            )
        conn = None
        try:
            conn = self._connect(busy_timeout=self.lock_timeout)
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # only takes effect on a new file
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA journal_size_limit={self.wal_limit}")
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if is_busy(exc):  # another process holds the lock for now: a run-time condition
                raise backend_error(exc, self.file) from exc
            if not is_corrupt(exc):
                raise CacheConfigError(f"Cannot open the cache database {self.file}: {exc}.") from exc
            self._set_aside()
            return self._create()
        return conn

    def _set_aside(self) -> None:
        """Move a corrupt database out of the way so that a fresh one can be created."""
        aside = self.file.with_name(f"{self.file.name}.corrupt-{time.time_ns()}")
        logging.getLogger("ignite_cache").error(
            "The cache database %s is corrupt; it was moved to %s and a new one created.",
            self.file,
            aside,
        )
        for suffix in ("", "-wal", "-shm"):
            src = self.file.with_name(self.file.name + suffix)
            if src.exists():
                src.replace(aside.with_name(aside.name + suffix))

    def forget(self) -> None:
        """Drop connections without closing them (after ``fork()``, they belong to the parent)."""
        self.loop_conn = self._thread_conn = None
        self._executor = None

    async def close(self) -> None:
        conn, self.loop_conn = self.loop_conn, None
        if conn is not None:
            conn.close()
        if self._executor is not None:
            await self.in_thread(lambda _: self._close_thread_conn())
            self._executor.shutdown(wait=False)
            self._executor = None

    def _close_thread_conn(self) -> None:
        if self._thread_conn is not None:
            self._thread_conn.close()
            self._thread_conn = None

    async def recover(self) -> None:
        """After corruption was seen: set the file aside and start over on a fresh one."""
        await self.close()
        self._set_aside()
        await self.open()

    # --- running statements ------------------------------------------------------------------

    async def in_thread(
        self, op: Callable[[sqlite3.Connection], T], *, txn: bool = False, bounded: bool = True
    ) -> T:
        """Run ``op`` on the worker's connection, which may wait for another process's lock.

        With ``bounded``, the wait for the lock ends ``lock_timeout`` after this call was
        submitted, not after it reached the worker: calls queued behind one another on the
        single worker thread must not each wait the full timeout in turn.
        """
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ignite-cache-sqlite")
        deadline = time.monotonic() + self.lock_timeout

        def job() -> T:
            conn = self._thread_connection()
            left = deadline - time.monotonic() if bounded else self.lock_timeout
            if left <= 0:
                raise sqlite3.OperationalError("database is locked (lock_timeout passed in the queue)")
            conn.execute(f"PRAGMA busy_timeout = {max(1, int(left * 1000))}")
            return run(conn, op, txn=txn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, job)


def run(conn: sqlite3.Connection, op: Callable[[sqlite3.Connection], T], *, txn: bool) -> T:
    """Run ``op`` on ``conn``, inside ``BEGIN IMMEDIATE``/``COMMIT`` when ``txn``."""
    if not txn:
        return op(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = op(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # also after a failed COMMIT: never keep the write lock
            conn.execute("ROLLBACK")
        raise
    return result


def maintain(conn: sqlite3.Connection, now: float, max_size: int) -> int:
    """Delete expired rows, then the oldest writes until live pages fit ``max_size``."""
    removed = run(
        conn,
        lambda c: (
            c.execute(
                "DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE expires <= ? LIMIT 100000)",
                (now,),
            ).rowcount
        ),
        txn=False,
    )
    for _ in range(20):  # bounded: each round removes a fraction of the rows
        used = used_bytes(conn)
        if used <= max_size:
            break
        rows = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        surplus = math.ceil(rows * (1 - 0.9 * max_size / used)) + 1
        removed += conn.execute(
            "DELETE FROM entries WHERE id IN (SELECT id FROM entries ORDER BY id LIMIT ?)",
            (surplus,),
        ).rowcount
    conn.executescript("PRAGMA incremental_vacuum;")  # execute() would free a single page
    return removed


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes in the database's live pages (the free list excluded)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def backend_error(exc: sqlite3.Error, file: Path) -> CacheBackendError:
    return CacheBackendError(f"The cache database {file} failed: {exc}.")
