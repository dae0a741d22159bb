"""Checked by mypy in tests/test_typing.py: decorated functions keep their signatures."""

from __future__ import annotations

from ignite_cache import CachedFunction, cached, invalidate_cache


@cached(ttl=60, key_prefix="user")
async def get_user(user_id: int, *, full: bool = False) -> dict[str, int]:
    return {"id": user_id}


@invalidate_cache(key_pattern="user:*")
async def update_user(user_id: int, name: str) -> str:
    return name


async def use() -> None:
    user: dict[str, int] = await get_user(1, full=True)
    key: str = get_user.cache_key(1)
    dropped: bool = await get_user.invalidate(1)
    name: str = await update_user(1, "Ada")
    typed: CachedFunction[..., dict[str, int]] = get_user
    del user, key, dropped, name, typed
