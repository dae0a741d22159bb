"""CacheSettings: defaults < TOML < .env < environment < arguments, and errors that name the
setting, say what it accepts, and never show a password."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from ignite_cache import CacheConfigError, CacheSettings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CACHE_* variables, and an empty working directory (no .env, no pyproject.toml)."""
    for name in list(os.environ):
        if name.startswith("CACHE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    s = CacheSettings()
    assert s.backend_type == "memory"
    assert s.ttl_seconds == 300
    assert s.namespace == "ignite"
    assert s.file_path == Path(".cache/ignite")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.redis_mode == "standalone"
    assert s.memory_max_entries > 0 and s.memory_max_bytes > 0
    assert s.file_max_size >= 1024 * 1024


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_BACKEND_TYPE", "file")
    monkeypatch.setenv("CACHE_TTL_SECONDS", "60")
    monkeypatch.setenv("CACHE_FILE_PATH", "/var/cache/app")
    monkeypatch.setenv("CACHE_REDIS_URL", "redis://cache.internal:6380/2")
    monkeypatch.setenv("CACHE_NAMESPACE", "shop")
    s = CacheSettings()
    assert (s.backend_type, s.ttl_seconds, s.file_path) == ("file", 60, Path("/var/cache/app"))
    assert (s.redis_url, s.namespace) == ("redis://cache.internal:6380/2", "shop")


def test_environment_variable_names_are_case_insensitive_values_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("cache_backend_type", "redis")
    assert CacheSettings().backend_type == "redis"


def test_dotenv_file(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(
        "# comment\nCACHE_BACKEND_TYPE=redis\nCACHE_TTL_SECONDS=45\nUNRELATED=1\nDATABASE_URL=postgres://x\n"
    )
    s = CacheSettings()
    assert (s.backend_type, s.ttl_seconds) == ("redis", 45)


def test_pyproject_toml_table(clean_environment: Path) -> None:
    (clean_environment / "pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.ignite-cache]\nbackend_type = "file"\n'
        'ttl_seconds = 90\nfile_path = "data/cache"\n\n[tool.other]\nttl_seconds = 1\n'
    )
    s = CacheSettings()
    assert (s.backend_type, s.ttl_seconds, s.file_path) == ("file", 90, Path("data/cache"))


def test_pyproject_without_the_table_gives_defaults(clean_environment: Path) -> None:
    (clean_environment / "pyproject.toml").write_text('[project]\nname = "app"\n')
    assert CacheSettings().backend_type == "memory"


def test_config_file_from_the_environment(clean_environment: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_environment / "pyproject.toml").write_text("[tool.ignite-cache]\nttl_seconds = 90\n")
    config = clean_environment / "conf" / "cache.toml"
    config.parent.mkdir()
    config.write_text('backend_type = "redis"\nttl_seconds = 30\nredis_url = "redis://cache:6379/1"\n')
    monkeypatch.setenv("CACHE_CONFIG_FILE", str(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a stray warning has a test of its own, below
        s = CacheSettings()
    assert (s.backend_type, s.ttl_seconds, s.redis_url) == ("redis", 30, "redis://cache:6379/1")


@pytest.mark.parametrize("with_config_file", [False, True])
def test_reading_settings_warns_nothing(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch, with_config_file: bool
) -> None:
    if with_config_file:
        (clean_environment / "cache.toml").write_text('backend_type = "file"\n')
        monkeypatch.setenv("CACHE_CONFIG_FILE", str(clean_environment / "cache.toml"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CacheSettings()
    assert [str(w.message) for w in caught] == []


def test_config_file_that_does_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_CONFIG_FILE", "/nonexistent/cache.toml")
    with pytest.raises(CacheConfigError, match=r"CACHE_CONFIG_FILE.*/nonexistent/cache\.toml"):
        CacheSettings()


def test_precedence_defaults_toml_dotenv_environment_arguments(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CacheSettings().ttl_seconds == 300
    (clean_environment / "pyproject.toml").write_text(
        '[tool.ignite-cache]\nttl_seconds = 10\nnamespace = "toml"\n'
    )
    assert CacheSettings().ttl_seconds == 10
    (clean_environment / ".env").write_text("CACHE_TTL_SECONDS=20\n")
    assert CacheSettings().ttl_seconds == 20
    monkeypatch.setenv("CACHE_TTL_SECONDS", "30")
    assert CacheSettings().ttl_seconds == 30
    assert CacheSettings(ttl_seconds=40).ttl_seconds == 40
    # each layer overrides only what it sets
    assert CacheSettings(ttl_seconds=40).namespace == "toml"


def test_unknown_backend_type_names_the_setting_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_BACKEND_TYPE", "memcached")
    with pytest.raises(CacheConfigError) as error:
        CacheSettings()
    message = str(error.value)
    assert "CACHE_BACKEND_TYPE" in message
    assert "memcached" in message
    for allowed in ("memory", "file", "redis"):
        assert allowed in message


def test_backend_type_is_not_silently_lower_cased() -> None:
    with pytest.raises(CacheConfigError, match="CACHE_BACKEND_TYPE"):
        CacheSettings(backend_type="Redis")


@pytest.mark.parametrize("ttl", ["-1", "0", "abc", "1.5"])
def test_bad_ttl(monkeypatch: pytest.MonkeyPatch, ttl: str) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", ttl)
    with pytest.raises(CacheConfigError, match="CACHE_TTL_SECONDS") as error:
        CacheSettings()
    assert ttl in str(error.value)


def test_bad_value_in_toml_names_the_setting(clean_environment: Path) -> None:
    (clean_environment / "pyproject.toml").write_text("[tool.ignite-cache]\nttl_seconds = -5\n")
    with pytest.raises(CacheConfigError, match="CACHE_TTL_SECONDS"):
        CacheSettings()


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="CACHE_BACKEND_TYPE"):
        CacheSettings(backend_type="nope")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        pytest.param("http://127.0.0.1:6379/0", "scheme", id="bad-scheme"),
        pytest.param("redis://127.0.0.1:abc/0", "port", id="non-numeric-port"),
        pytest.param("redis://127.0.0.1:99999/0", "port", id="port-out-of-range"),
        pytest.param("redis://127.0.0.1:6379/zero", "zero", id="non-numeric-db"),
        pytest.param("redis://127.0.0.1:6379?db=abc", "abc", id="non-numeric-db-query"),
        pytest.param("unix:///run/redis.sock?db=abc", "abc", id="unix-non-numeric-db"),
        pytest.param("redis:///0", "host", id="no-host"),
        pytest.param("unix://", "socket", id="unix-without-path"),
    ],
)
def test_unreadable_redis_url_names_the_setting(url: str, why: str) -> None:
    with pytest.raises(CacheConfigError) as error:
        CacheSettings(redis_url=url)
    message = str(error.value)
    assert "CACHE_REDIS_URL" in message
    assert why in message.lower()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("redis://:s3cr3t-pw@127.0.0.1:abc/0", id="bad-port"),
        pytest.param("redis://app:s3cr3t-pw@127.0.0.1:6379/zero", id="bad-db"),
        pytest.param("http://app:s3cr3t-pw@127.0.0.1:6379/0", id="bad-scheme"),
    ],
)
def test_password_in_a_bad_url_is_redacted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    for source in ("argument", "environment"):
        if source == "environment":
            monkeypatch.setenv("CACHE_REDIS_URL", url)
            kwargs = {}
        else:
            kwargs = {"redis_url": url}
        with pytest.raises(CacheConfigError) as error:
            CacheSettings(**kwargs)
        message = str(error.value)
        assert "CACHE_REDIS_URL" in message
        assert "s3cr3t-pw" not in message, f"{source}: {message}"
        assert error.value.__cause__ is None or "s3cr3t-pw" not in str(error.value.__cause__)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://user:pw@cache.example.com:6380/3",
        "redis://:pw@localhost",
        "unix:///run/redis.sock?db=2",
    ],
)
def test_readable_redis_urls(url: str) -> None:
    assert CacheSettings(redis_url=url).redis_url == url


def test_settings_are_frozen() -> None:
    s = CacheSettings()
    with pytest.raises(Exception, match="frozen"):
        s.ttl_seconds = 5  # type: ignore[misc]  # the point of the test
