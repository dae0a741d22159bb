"""``ignite-cache``: look into and clean the configured cache from a shell.

It reads the same settings as the application (``CACHE_*`` environment, ``.env``,
TOML), so ``ignite-cache keys 'user:*'`` shows what the app's cache holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from .backends._redis_url import redact
from .backends.base import CacheBackend, Cursor
from .errors import CacheError
from .factory import create_backend
from .settings import CacheSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ignite-cache", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("settings", help="print the effective settings (passwords redacted)")
    commands.add_parser("ping", help="exit 0 if the backend answers")
    keys = commands.add_parser("keys", help="list keys matching a glob")
    keys.add_argument("pattern", nargs="?", default="*")
    keys.add_argument("--limit", type=int, default=1000)
    get = commands.add_parser("get", help="print a value")
    get.add_argument("key")
    ttl = commands.add_parser("ttl", help="seconds left (-1 no expiry, -2 missing)")
    ttl.add_argument("key")
    delete = commands.add_parser("delete", help="delete keys")
    delete.add_argument("keys", nargs="+")
    pattern = commands.add_parser("delete-pattern", help="delete keys matching a glob")
    pattern.add_argument("pattern")
    commands.add_parser("flush", help="delete every key of this cache's namespace")
    return parser


async def _run(args: argparse.Namespace, settings: CacheSettings) -> int:
    if args.command == "settings":
        shown = settings.model_dump(mode="json")
        shown["redis_url"] = redact(settings.redis_url)
        print(json.dumps(shown, indent=2))
        return 0
    backend = create_backend(settings)
    try:
        return await _command(args, backend)
    finally:
        await backend.close()


async def _command(args: argparse.Namespace, backend: CacheBackend) -> int:
    if args.command == "ping":
        ok = await backend.ping()
        print("ok" if ok else "unavailable")
        return 0 if ok else 1
    await backend.init()
    if args.command == "keys":
        shown = 0
        cursor: Cursor = 0
        while shown < args.limit:
            cursor, found = await backend.scan(cursor, match=args.pattern, count=500)
            for key in found[: args.limit - shown]:
                print(key)
            shown += len(found)
            if cursor in (0, "0"):
                break
        return 0
    if args.command == "get":
        value = await backend.get(args.key)
        if value is None:
            return 1
        print(value if isinstance(value, str) else repr(value))
    elif args.command == "ttl":
        print(await backend.ttl(args.key))
    elif args.command == "delete":
        print(await backend.delete(*args.keys))
    elif args.command == "delete-pattern":
        print(await backend.delete_pattern(args.pattern))
    elif args.command == "flush":
        await backend.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ignite-cache`` command."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args, CacheSettings()))
    except CacheError as exc:
        print(f"ignite-cache: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
