"""Reading and redacting ``CACHE_REDIS_URL`` without importing redis-py."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qs, urlsplit

from ..errors import CacheConfigError

SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(url: object, *, several_hosts: bool = False) -> str:
    """Return ``url`` if redis-py can use it; else raise ``CacheConfigError`` saying why.

    With ``several_hosts`` (Sentinel, Cluster) the netloc may list ``host:port,host:port``.
    """
    if not isinstance(url, str) or not url:
        raise CacheConfigError(f"CACHE_REDIS_URL must be a non-empty str, not {url!r}.")
    try:
        parts = urlsplit(url)
        if several_hosts:
            first = parts.netloc.rpartition("@")[2].split(",")[0]
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[0] + "@" + first)
        port = parts.port
    except ValueError as exc:
        raise CacheConfigError(f"CACHE_REDIS_URL {redact(url)!r} cannot be read: {exc}.") from exc
    if parts.scheme not in SCHEMES:
        raise CacheConfigError(
            f"CACHE_REDIS_URL {redact(url)!r} has scheme {parts.scheme!r}; "
            f"use one of {', '.join(s + '://' for s in SCHEMES)}."
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise CacheConfigError(f"CACHE_REDIS_URL {redact(url)!r} names no socket path.")
    elif not parts.hostname:
        raise CacheConfigError(f"CACHE_REDIS_URL {redact(url)!r} names no host.")
    elif port == 0:
        raise CacheConfigError(f"CACHE_REDIS_URL {redact(url)!r} has port 0.")
    db = parts.path.lstrip("/") if parts.scheme != "unix" else ""
    if db and not db.isdigit():
        raise CacheConfigError(
            f"CACHE_REDIS_URL {redact(url)!r}: the path must be a database number, not {db!r}."
        )
    for query_db in parse_qs(parts.query).get("db", []):
        if not query_db.isdigit():
            raise CacheConfigError(
                f"CACHE_REDIS_URL {redact(url)!r}: db={query_db!r} must be a database number."
            )
    return url


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    try:
        parts: SplitResult = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"{user}:***@{host}").geturl()
    except ValueError:
        return "<unreadable URL>"
