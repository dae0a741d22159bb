"""``CacheSettings``: every option, from defaults < TOML < ``.env`` < environment < arguments.

Environment variables and ``.env`` entries are the field names upper-cased behind
``CACHE_`` (``CACHE_BACKEND_TYPE``). TOML is read from the ``[tool.ignite-cache]`` table
of ``pyproject.toml`` in the working directory (where Python tools keep their settings),
or from the file that ``CACHE_CONFIG_FILE`` names (keys at the top level); TOML keys are
the field names (``backend_type = "file"``). Any invalid value raises ``CacheConfigError``
naming the setting and what it accepts, at start-up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .backends._redis_url import check_redis_url
from .errors import CacheConfigError

BackendType = Literal["memory", "file", "redis"]
RedisMode = Literal["standalone", "cluster", "sentinel"]


class CacheSettings(BaseSettings):
    """Validated cache configuration; build one with keyword arguments or from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="CACHE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        pyproject_toml_table_header=("tool", "ignite-cache"),
    )

    backend_type: BackendType = "memory"
    """Which backend ``create_backend`` builds: ``memory``, ``file`` or ``redis``."""
    ttl_seconds: int = Field(300, ge=1)
    """Default TTL for ``set`` without ``ex`` and ``@cached`` without ``ttl``."""
    namespace: str = Field("ignite", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    """Keys live under ``{namespace}:`` in Redis and in ``{namespace}.sqlite3`` on disk."""

    memory_max_entries: int = Field(100_000, ge=1)
    memory_max_bytes: int = Field(256 * 1024 * 1024, ge=1)

    file_path: Path = Path(".cache/ignite")
    """Folder of the file backend's SQLite database (created if missing)."""
    file_max_size: int = Field(1024**3, ge=1024 * 1024)
    file_lock_timeout: float = Field(1.0, gt=0)

    redis_url: str = "redis://127.0.0.1:6379/0"
    """``redis://``, ``rediss://`` or ``unix://``, with password and db in the URL."""
    redis_mode: RedisMode = "standalone"
    redis_sentinel_service: str = "mymaster"
    redis_socket_timeout: float = Field(0.25, gt=0)
    redis_connect_timeout: float = Field(0.25, gt=0)
    redis_max_connections: int = Field(64, ge=1)
    redis_pool_timeout: float = Field(0.5, gt=0)
    redis_retries: int = Field(2, ge=0)
    redis_breaker_threshold: int = Field(5, ge=1)
    """Consecutive failures after which Redis is not called for ``redis_breaker_cooldown``."""
    redis_breaker_cooldown: float = Field(2.0, gt=0)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise CacheConfigError(_describe(exc)) from None

    @model_validator(mode="after")
    def _check_url(self) -> CacheSettings:
        check_redis_url(self.redis_url, several_hosts=self.redis_mode != "standalone")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        pyproject = PyprojectTomlConfigSettingsSource(settings_cls, Path("pyproject.toml"))
        config_file = os.environ.get("CACHE_CONFIG_FILE")
        if not config_file:
            return init_settings, env_settings, dotenv_settings, pyproject
        if not Path(config_file).is_file():
            raise CacheConfigError(f"CACHE_CONFIG_FILE {config_file!r} is not a file.")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
        return init_settings, env_settings, dotenv_settings, toml, pyproject


def _describe(exc: ValidationError) -> str:
    """One sentence per invalid setting, named as the user wrote it (``CACHE_...``)."""
    problems = []
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, CacheConfigError):  # our own check: its message is complete
            problems.append(str(cause))
            continue
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"]
        if error["type"] == "literal_error":
            message = "it must be one of " + str(error["ctx"]["expected"])
        given = "<redacted>" if field == "redis_url" else repr(error.get("input"))
        problems.append(f"CACHE_{field.upper()}={given} is invalid: {message}.")
    return " ".join(problems)
