"""Several processes on one FileBackend folder: no errors, no torn values, and a writer killed
mid-write leaves a readable cache."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from ignite_cache import FileBackend

# Every value embeds its own checksum: "<writer>:<n>:<sha256 of the payload>:<payload>".
CHECK = textwrap.dedent(
    """
    import hashlib

    def make_value(writer, n, size):
        payload = (f"{writer}-{n}-" * (size // 8 + 1))[:size]
        return f"{writer}:{n}:{hashlib.sha256(payload.encode()).hexdigest()}:{payload}"

    def is_whole(value):
        if isinstance(value, bytes):
            value = value.decode()
        writer, n, digest, payload = value.split(":", 3)
        return hashlib.sha256(payload.encode()).hexdigest() == digest
    """
)

WORKER = CHECK + textwrap.dedent(
    """
    import asyncio, json, random, sys
    from ignite_cache import FileBackend

    async def main(folder, writer, ops):
        rng = random.Random(writer)
        cache = FileBackend(folder, namespace="shared")
        counts = {"read": 0, "hit": 0, "write": 0, "delete": 0, "torn": 0}
        async with cache:
            for n in range(ops):
                key = f"k{rng.randrange(20)}"
                op = rng.random()
                if op < 0.45:
                    counts["read"] += 1
                    values = [await cache.get(key)] if op < 0.3 else await cache.get_many([key, "k0"])
                    for value in values:
                        if value is not None:
                            counts["hit"] += 1
                            counts["torn"] += not is_whole(value)
                elif op < 0.85:
                    counts["write"] += 1
                    value = make_value(writer, n, rng.randrange(10, 20_000))
                    if op < 0.75:
                        await cache.set(key, value if n % 2 else value.encode(), ex=60)
                    else:
                        await cache.set_many({key: value, f"m{writer}": value}, ex=60)
                elif op < 0.95:
                    counts["delete"] += 1
                    await cache.delete(key)
                else:
                    await cache.incr(f"counter{writer % 2}")
        print(json.dumps(counts))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
    """
)

KILLED_WRITER = CHECK + textwrap.dedent(
    """
    import asyncio, sys
    from ignite_cache import FileBackend

    async def main(folder):
        async with FileBackend(folder, namespace="shared", max_size=256 * 1024 * 1024) as cache:
            n = 0
            while True:
                await cache.set(f"big{n % 5}", make_value(9, n, 2_000_000), ex=None)
                await cache.set_many({f"small{i}": make_value(9, n, 100) for i in range(50)}, ex=None)
                if n == 0:
                    print("ready", flush=True)
                n += 1

    asyncio.run(main(sys.argv[1]))
    """
)


def is_whole(value: str | bytes) -> bool:
    namespace: dict[str, object] = {}
    exec(CHECK, namespace)
    return bool(namespace["is_whole"](value))  # type: ignore[operator]  # defined just above


def integrity(db: Path) -> list[tuple[str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchall()


async def read_everything(folder: Path) -> dict[str, str | bytes]:
    async with FileBackend(folder, namespace="shared") as cache:
        keys: list[str] = []
        cursor: object = 0
        while True:
            cursor, batch = await cache.scan(cursor, count=100)  # type: ignore[arg-type]
            keys.extend(batch)
            if cursor == 0:
                break
        values = await cache.get_many(keys)
        assert await cache.set("after", "the cache still takes writes")
    return {k: v for k, v in zip(keys, values, strict=True) if v is not None}


async def test_four_processes_share_one_folder(tmp_path: Path) -> None:
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WORKER,
            str(tmp_path),
            str(writer),
            "300",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for writer in range(4)
    ]
    outputs = [await p.communicate() for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
        counts = json.loads(out)
        assert counts["torn"] == 0
        assert counts["read"] > 50 and counts["write"] > 50
    assert sum(json.loads(out)["hit"] for out, _ in outputs) > 0, "the processes never read each other"
    values = await read_everything(tmp_path)
    assert values
    for key, value in values.items():
        if key.startswith(("k", "m")):
            assert is_whole(value), key
    assert integrity(tmp_path / "shared.sqlite3") == [("ok",)]


async def test_a_writer_killed_mid_write_leaves_a_readable_cache(tmp_path: Path) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_WRITER, str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
        assert line == b"ready\n", (await child.stderr.read()).decode() if child.stderr else line
        await asyncio.sleep(0.3)  # let it get well into later writes
        assert child.returncode is None, "the writer should still be writing"
    finally:
        if child.returncode is None:
            os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    values = await read_everything(tmp_path)
    assert any(k.startswith("big") for k in values)
    for key, value in values.items():
        if key != "after":
            assert is_whole(value), key
    assert integrity(tmp_path / "shared.sqlite3") == [("ok",)]
