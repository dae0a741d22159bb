"""A tiny SQLite user/item store for the demo, counting its queries so hits are visible."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any


class Database:
    """Users and items in an in-memory SQLite database; every query is counted."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._lock = asyncio.Lock()
        self.queries = 0
        self._conn.executescript(
            """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
            CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL);
            INSERT INTO users VALUES (1, 'Ada', 'ada@example.com'), (2, 'Alan', 'alan@example.com');
            INSERT INTO items VALUES (1, 'Kettle', 24.5), (2, 'Teapot', 31.0);
            """
        )

    async def _query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        async with self._lock:  # one connection, used by one thread at a time
            self.queries += 1
            rows = await asyncio.to_thread(lambda: self._conn.execute(sql, params).fetchall())
            await asyncio.to_thread(self._conn.commit)
        return [dict(row) for row in rows]

    async def get_user(self, user_id: int) -> dict[str, Any] | None:
        rows = await self._query("SELECT id, name, email FROM users WHERE id = ?", user_id)
        return rows[0] if rows else None

    async def update_user(self, user_id: int, data: dict[str, Any]) -> dict[str, Any] | None:
        fields = {k: v for k, v in data.items() if k in ("name", "email")}
        if fields:
            assignments = ", ".join(f"{k} = ?" for k in fields)
            await self._query(f"UPDATE users SET {assignments} WHERE id = ?", *fields.values(), user_id)
        return await self.get_user(user_id)

    async def get_item(self, item_id: int) -> dict[str, Any] | None:
        rows = await self._query("SELECT id, name, price FROM items WHERE id = ?", item_id)
        return rows[0] if rows else None
