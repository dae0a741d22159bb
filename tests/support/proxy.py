"""An asyncio TCP proxy on loopback that slows down or cuts connections.

Put :class:`DelayProxy` between a client and a Redis server to simulate a slow
server or network (``proxy.delay = 0.2``) and connection loss
(``proxy.drop_all()``), e.g. to test timeouts and cancellation storms::

    async with DelayProxy("127.0.0.1", server.port) as proxy:
        client = redis.asyncio.Redis.from_url(proxy.url)
        proxy.delay = 0.5          # every reply now arrives 0.5 s late
        ...
        proxy.drop_all()           # every open connection is cut (RST)

The proxy runs on the event loop of the test that starts it. It listens on
``127.0.0.1`` only; :meth:`DelayProxy.stop` closes the listener and every
connection and waits (bounded) for all of its tasks, so nothing leaks.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

__all__ = ["DelayProxy"]

_CHUNK_SIZE = 64 * 1024


class _Connection:
    """One proxied client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.pumps: list[asyncio.Task[bool]] = []

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]

    def abort(self) -> None:
        """Cut both sides at once (RST, buffered data discarded) and stop pumping."""
        for writer in self.writers():
            writer.transport.abort()
        for pump in self.pumps:
            pump.cancel()

    async def close(self, grace: float) -> None:
        """Close both sides gracefully (FIN), waiting at most ``grace`` seconds each step."""
        for pump in self.pumps:
            pump.cancel()
        if self.pumps:
            await asyncio.wait(self.pumps, timeout=grace)
        for writer in self.writers():
            writer.close()
        for writer in self.writers():
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), grace)
            writer.transport.abort()  # no-op unless closing timed out


class DelayProxy:
    """Forward TCP connections from a loopback port to ``target_host:target_port``.

    Args:
        target_host: where to forward to (normally ``"127.0.0.1"``).
        target_port: the target port, e.g. a :class:`~.servers.RedisServer` port.
        delay: seconds to wait before forwarding each chunk from the server to the
            client. The attribute of the same name may be changed at any time and
            applies from the next chunk on; chunks stay in order.
        connect_timeout: seconds allowed for each upstream connection; a client
            whose upstream cannot be reached in time is disconnected.
        stop_timeout: seconds :meth:`stop` waits for connection tasks to finish.

    Use ``async with DelayProxy(...) as proxy`` or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay: float = 0.0,
        *,
        connect_timeout: float = 5.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self.connect_timeout = connect_timeout
        self.stop_timeout = stop_timeout
        self.total_connections = 0
        """How many client connections were accepted since :meth:`start`."""
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ addresses

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return "127.0.0.1"

    @property
    def port(self) -> int:
        """The loopback port clients connect to (known once started)."""
        if self._port is None:
            raise RuntimeError("DelayProxy has not been started")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, for a proxy in front of Redis."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def connection_count(self) -> int:
        """How many client connections are open through the proxy now."""
        return len(self._connections)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Start listening on a free loopback port; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("DelayProxy is already started")
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self._port = int(self._server.sockets[0].getsockname()[1])
        return self

    def drop_all(self) -> int:
        """Cut every open connection (both sides, like a network failure).

        New connections are still accepted. Returns how many were cut.
        """
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        return len(connections)

    async def stop(self) -> None:
        """Stop listening, cut every connection and wait for the proxy's tasks.

        Idempotent. Waits at most ``stop_timeout`` seconds for the tasks, then
        cancels any that remain.
        """
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.drop_all()
        handlers = list(self._handlers)
        if handlers:
            _, pending = await asyncio.wait(handlers, timeout=self.stop_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=self.stop_timeout)
        if server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), self.stop_timeout)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ forwarding

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection until either side closes or it is cut."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = _Connection(writer)
        self._connections.add(connection)
        self.total_connections += 1
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.target_host, self.target_port),
                    self.connect_timeout,
                )
            except (OSError, TimeoutError):
                return
            connection.upstream = upstream_writer
            if writer.transport.is_closing():  # cut while we were connecting
                return
            connection.pumps = [
                asyncio.create_task(self._pump(reader, upstream_writer, delayed=False)),
                asyncio.create_task(self._pump(upstream_reader, writer, delayed=True)),
            ]
            # A clean EOF in one direction is passed on as a half-close and the
            # other direction keeps going; an error in either ends the connection.
            pending = set(connection.pumps)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if any(pump.cancelled() or not pump.result() for pump in done):
                    break
        finally:
            self._connections.discard(connection)
            try:
                await connection.close(self.stop_timeout)
            finally:
                connection.abort()
                self._handlers.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, delayed: bool
    ) -> bool:
        """Copy bytes from ``reader`` to ``writer``.

        Returns True on a clean EOF (passed on to ``writer`` as a half-close),
        False on a connection error.
        """
        try:
            while data := await reader.read(_CHUNK_SIZE):
                if delayed and self.delay > 0:
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            return False
        return True
