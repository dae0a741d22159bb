"""Checked by mypy in tests/test_typing.py: each marked line must be an error."""

from __future__ import annotations

from ignite_cache import cached


@cached(ttl=60)
async def get_user(user_id: int) -> dict[str, int]:
    return {"id": user_id}


async def misuse() -> None:
    await get_user("1")  # E: wrong argument type
    await get_user(1, 2)  # E: too many arguments
    get_user.cache_key(user="x")  # E: unknown keyword
    wrong: str = await get_user(1)  # E: wrong result type
    del wrong
