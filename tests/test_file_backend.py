"""FileBackend: its folder, the types on disk, the size bound, expiry sweeps, corruption and fork."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from ignite_cache import CacheConfigError, FileBackend

MiB = 1024 * 1024


def rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the database as another connection would."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def set_aside(folder: Path) -> list[bytes]:
    """The contents of the databases moved out of the way as corrupt."""
    return [
        p.read_bytes() for p in folder.glob("ns.sqlite3.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    ]


async def test_a_missing_folder_is_created(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "c"
    async with FileBackend(folder, namespace="ns") as cache:
        await cache.set("k", "v")
    assert (folder / "ns.sqlite3").is_file()


async def test_a_folder_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("I am a file")
    cache = FileBackend(not_a_folder)
    with pytest.raises(CacheConfigError, match="CACHE_FILE_PATH") as error:
        await cache.init()
    assert str(not_a_folder) in str(error.value)
    await cache.close()


async def test_a_folder_under_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("I am a file")
    under = tmp_path / "file" / "cache"
    cache = FileBackend(under)
    with pytest.raises(CacheConfigError, match="CACHE_FILE_PATH") as error:
        await cache.set("k", "v")  # first use initialises, and fails the same way
    assert str(under) in str(error.value)
    await cache.close()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a/b"}, "namespace"),
        ({"namespace": "../up"}, "namespace"),
        ({"max_size": 1024}, "max_size"),
        ({"max_size": 2.5 * MiB}, "max_size"),
    ],
)
def test_bad_options_are_config_errors(tmp_path: Path, options: dict[str, Any], named: str) -> None:
    with pytest.raises(CacheConfigError, match=named):
        FileBackend(tmp_path, **options)


async def test_str_and_bytes_are_stored_as_text_and_blob(tmp_path: Path) -> None:
    async with FileBackend(tmp_path, namespace="ns") as cache:
        await cache.set_many({"s": "text", "b": b"\x00\xffbytes", "e": "", "eb": b"", "n": "12"})
        await cache.incr("n")
        assert await cache.get_many(["s", "b", "e", "eb", "n"]) == ["text", b"\x00\xffbytes", "", b"", "13"]
    types = dict(rows(tmp_path / "ns.sqlite3", "SELECT key, typeof(value) FROM entries"))
    assert types == {"s": "text", "b": "blob", "e": "text", "eb": "blob", "n": "text"}


async def test_size_bound_after_maintain(tmp_path: Path) -> None:
    db = tmp_path / "ns.sqlite3"
    cache = FileBackend(tmp_path, namespace="ns", max_size=MiB)
    await cache.init()
    for i in range(100):  # 5 MB
        await cache.set(f"k{i:03d}", os.urandom(50_000), ex=None)
    assert await cache.size_bytes() > 4 * MiB
    removed = await cache.maintain()
    assert removed > 70
    assert await cache.size_bytes() <= MiB
    assert await cache.get("k000") is None  # the oldest writes went first
    assert await cache.get("k099") is not None
    await cache.close()
    assert db.stat().st_size <= MiB, "the database file on disk must shrink to the bound too"


async def test_maintain_removes_expired_rows(tmp_path: Path, clock: Any) -> None:
    db = tmp_path / "ns.sqlite3"
    async with FileBackend(tmp_path, namespace="ns", clock=clock) as cache:
        await cache.set_many({f"old{i}": "v" for i in range(50)}, ex=1)
        await cache.set_many({f"new{i}": "v" for i in range(5)}, ex=100)
        await cache.set("forever", "v", ex=None)
        clock.advance(2)
        assert await cache.maintain() == 50
        assert rows(db, "SELECT count(*) FROM entries") == [(6,)]
        assert await cache.maintain() == 0


async def test_expired_rows_do_not_pile_up_under_write_traffic(tmp_path: Path, clock: Any) -> None:
    db = tmp_path / "ns.sqlite3"
    async with FileBackend(tmp_path, namespace="ns", clock=clock) as cache:
        await cache.set_many({f"old{i}": "v" for i in range(500)}, ex=1)
        clock.advance(2)
        for i in range(1000):  # enough writes to start the background maintenance
            await cache.set(f"new{i % 10}", "v", ex=None)
        for _ in range(500):  # wait for the background task: bounded, no timing asserted
            if rows(db, "SELECT count(*) FROM entries WHERE key LIKE 'old%'") == [(0,)]:
                break
            await asyncio.sleep(0.01)
        assert rows(db, "SELECT count(*) FROM entries WHERE key LIKE 'old%'") == [(0,)]


async def test_a_corrupt_database_is_set_aside_and_recreated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = os.urandom(8192)
    (tmp_path / "ns.sqlite3").write_bytes(garbage)
    cache = FileBackend(tmp_path, namespace="ns")
    with caplog.at_level(logging.ERROR, logger="ignite_cache"):
        await cache.init()
        await cache.set("k", "v")
        assert await cache.get("k") == "v"
    await cache.close()
    assert set_aside(tmp_path) == [garbage]
    assert any("corrupt" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert rows(tmp_path / "ns.sqlite3", "PRAGMA integrity_check") == [("ok",)]


async def test_corruption_found_while_running_is_recovered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "ns.sqlite3"
    async with FileBackend(tmp_path, namespace="ns") as cache:
        await cache.set_many({f"k{i}": "v" * 1000 for i in range(200)}, ex=None)
    with db.open("r+b") as f:  # keep the header, scribble over the pages
        f.seek(4096)
        f.write(os.urandom(20 * 4096))
    cache = FileBackend(tmp_path, namespace="ns")
    with caplog.at_level(logging.ERROR, logger="ignite_cache"):
        await cache.init()
        await cache.get("k1")  # reading a scribbled page finds the corruption
        assert await cache.set("new", "v")
        assert await cache.get("new") == "v"
    await cache.close()
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


async def test_fork_child_reopens_its_own_connections(tmp_path: Path) -> None:
    cache = FileBackend(tmp_path, namespace="ns")
    await cache.init()
    await cache.set("parent", "p", ex=None)
    pid = os.fork()
    if pid == 0:  # the child: a fresh event loop on a fresh thread, then exit without cleanup
        code = [1]

        async def child() -> None:
            assert await cache.get("parent") == "p"
            for i in range(50):
                await cache.set(f"child{i}", "c", ex=None)
            assert await cache.incr("counter") == 1
            code[0] = 0

        thread = threading.Thread(target=lambda: asyncio.run(child()))
        thread.start()
        thread.join()
        os._exit(code[0])
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert await cache.get("child49") == "c"
    await cache.set("parent2", "p")
    assert await cache.incr("counter") == 2
    await cache.close()
    assert rows(tmp_path / "ns.sqlite3", "PRAGMA integrity_check") == [("ok",)]


def test_a_failed_commit_rolls_back_and_releases_the_lock(tmp_path: Path) -> None:
    import sqlite3

    from ignite_cache.backends._sqlite import run

    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    conn.executescript(
        "PRAGMA foreign_keys=ON; CREATE TABLE p (id INTEGER PRIMARY KEY);"
        "CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);"
    )
    with pytest.raises(sqlite3.IntegrityError):  # the deferred check fails at COMMIT
        run(conn, lambda c: c.execute("INSERT INTO c VALUES (42)"), txn=True)
    assert not conn.in_transaction
    assert run(conn, lambda c: c.execute("INSERT INTO p VALUES (1)").rowcount, txn=True) == 1
    conn.close()


async def test_a_lock_held_at_open_is_a_backend_error_not_a_config_error(tmp_path: Path) -> None:
    import sqlite3

    from ignite_cache import CacheBackendError, FileBackend

    tmp_path.joinpath("cache").mkdir()
    holder = sqlite3.connect(tmp_path / "cache" / "ignite.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    backend = FileBackend(tmp_path / "cache", lock_timeout=0.1)
    try:
        with pytest.raises(CacheBackendError):
            await backend.init()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await backend.close()
