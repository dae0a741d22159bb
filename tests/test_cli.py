"""The ``ignite-cache`` command, run as a user would, against a file-backed cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "CACHE_BACKEND_TYPE": "file",
        "CACHE_FILE_PATH": str(tmp_path / "cache"),
        "CACHE_REDIS_URL": "redis://:s3cret@127.0.0.1:6379/0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "ignite_cache.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


@pytest.fixture
async def filled(tmp_path: Path) -> Path:
    from ignite_cache import FileBackend

    async with FileBackend(tmp_path / "cache") as backend:
        await backend.set("user:1", "ada", ex=None)
        await backend.set("user:2", "alan", ex=100)
        await backend.set("item:1", "kettle")
    return tmp_path


def test_keys_get_ttl_and_deletes(filled: Path) -> None:
    assert sorted(run(filled, "keys").stdout.split()) == ["item:1", "user:1", "user:2"]
    assert sorted(run(filled, "keys", "user:*").stdout.split()) == ["user:1", "user:2"]
    assert run(filled, "get", "user:1").stdout == "ada\n"
    assert run(filled, "get", "nope").returncode == 1
    assert run(filled, "ttl", "user:1").stdout == "-1\n"
    assert run(filled, "delete-pattern", "user:*").stdout == "2\n"
    assert run(filled, "delete", "item:1", "nope").stdout == "1\n"
    assert run(filled, "keys").stdout == ""
    assert run(filled, "ping").stdout == "ok\n"


def test_settings_are_shown_with_the_password_redacted(tmp_path: Path) -> None:
    shown = json.loads(run(tmp_path, "settings").stdout)
    assert shown["backend_type"] == "file"
    assert "s3cret" not in shown["redis_url"]


def test_a_bad_setting_is_a_message_and_exit_code_2(tmp_path: Path) -> None:
    result = run(tmp_path, "ping", CACHE_BACKEND_TYPE="memcached")
    assert result.returncode == 2
    assert "CACHE_BACKEND_TYPE" in result.stderr
