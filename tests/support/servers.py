"""Private Redis servers for fault-injection tests.

Every server started here is a ``redis-server`` child process that

* listens on ``127.0.0.1`` only, on a port picked by :func:`free_port`;
* runs in its own temporary directory, which also holds its config file and its
  log (``redis.log``), so a failing test can show what the server said;
* keeps no data on disk (``save ""``, ``appendonly no``).

Three setups are provided:

:class:`RedisServer`
    One standalone server (optionally a replica) that can be paused (SIGSTOP),
    resumed (SIGCONT), killed (SIGKILL), stopped (SIGTERM, then SIGKILL) and
    restarted on the same port.
:class:`RedisCluster`
    Three primaries with one replica each, plus :meth:`RedisCluster.failover`
    to promote a replica quickly after pausing or killing its primary.
:class:`RedisSentinelSetup`
    A primary, one replica and one sentinel monitoring them, plus
    :meth:`RedisSentinelSetup.failover`.

All methods are synchronous and may block for up to their ``timeout``: from an
``async`` test either call them directly (nothing else runs on the loop while
they block) or wrap them in :func:`asyncio.to_thread` when clients on the loop
must keep running during the call. Every wait loop is bounded and raises
:class:`RedisWaitTimeout`, whose message includes the tail of the relevant
server logs.

Processes that a test forgets to stop are killed when the interpreter exits.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, Self, TypeAlias

__all__ = [
    "HOST",
    "RedisCluster",
    "RedisSentinelSetup",
    "RedisServer",
    "RedisSupportError",
    "RedisWaitTimeout",
    "Resp",
    "RespError",
    "free_port",
    "redis_cli_binary",
    "redis_server_binary",
    "send_command",
]

HOST = "127.0.0.1"
"""The only address any server started here listens on."""

CLUSTER_SLOTS = 16384

Resp: TypeAlias = str | int | list["Resp"] | None
"""A decoded RESP2 reply: simple/bulk strings as ``str``, integers, nil, arrays."""


class RedisSupportError(RuntimeError):
    """A private Redis server (or cluster, or sentinel setup) misbehaved."""


class RedisWaitTimeout(RedisSupportError, TimeoutError):
    """A bounded wait ran out of time; the message ends with server log tails."""


class RespError(Exception):
    """Redis answered a command with an error reply (``-ERR ...``)."""


# --------------------------------------------------------------------------- binaries


def redis_server_binary() -> str:
    """Return the path of ``redis-server``.

    ``$REDIS_SERVER_BIN`` wins when set; otherwise ``redis-server`` is looked up
    on ``$PATH``.

    Raises:
        RuntimeError: the binary cannot be found.
    """
    override = os.environ.get("REDIS_SERVER_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise RuntimeError(f"REDIS_SERVER_BIN={override!r} is not an executable file")
        return override
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "redis-server was not found on PATH; these tests start private Redis servers. "
            "Install it with `apt-get install redis-server` (or set REDIS_SERVER_BIN)."
        )
    return found


def redis_cli_binary() -> str:
    """Return the path of ``redis-cli`` (next to ``redis-server``, else on ``$PATH``).

    Raises:
        RuntimeError: the binary cannot be found.
    """
    sibling = Path(redis_server_binary()).with_name("redis-cli")
    if os.access(sibling, os.X_OK):
        return str(sibling)
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError(
            "redis-cli was not found on PATH; it is needed to create a Redis Cluster. "
            "Install it with `apt-get install redis-server` (or `redis-tools`)."
        )
    return found


# --------------------------------------------------------------------------- ports

_ports_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a loopback TCP port that is free now and not returned before.

    Ports are drawn below the kernel's ephemeral range when that leaves room, so
    that no outgoing client connection can take the port as its source port while
    a server is down; this keeps :meth:`RedisServer.restart` on the same port
    reliable. A port is never handed out twice by one process.

    Raises:
        RedisSupportError: no free port was found after many tries.
    """
    low, _ = _ephemeral_range()
    pool_low, pool_high = 20000, low - 1
    with _ports_lock:
        for _ in range(200):
            if pool_high - pool_low >= 1000:
                port = random.randint(pool_low, pool_high)
                if port in _ports_handed_out or not _bindable(port):
                    continue
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind((HOST, 0))
                    port = int(probe.getsockname()[1])
                if port in _ports_handed_out:
                    continue
            _ports_handed_out.add(port)
            return port
    raise RedisSupportError("could not find a free loopback port")


# --------------------------------------------------------------------------- RESP client


def _encode_command(args: Sequence[str | int | bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(stream: BinaryIO) -> Resp:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in the middle of a reply")
    kind, body = line[:1], line[1:-2].decode("utf-8", "replace")
    if kind == b"+":
        return body
    if kind == b"-":
        raise RespError(body)
    if kind == b":":
        return int(body)
    if kind == b"$":
        length = int(body)
        if length < 0:
            return None
        data = stream.read(length + 2)
        if len(data) != length + 2:
            raise ConnectionError("connection closed in the middle of a reply")
        return data[:-2].decode("utf-8", "replace")
    if kind == b"*":
        count = int(body)
        if count < 0:
            return None
        return [_read_reply(stream) for _ in range(count)]
    raise ConnectionError(f"unexpected RESP reply line {line!r}")


def send_command(port: int, *args: str | int | bytes, host: str = HOST, timeout: float = 1.0) -> Resp:
    """Send one command over a fresh connection and return the decoded reply.

    A tiny blocking RESP2 client, independent of redis-py, used by the wait
    loops here and handy in tests (``send_command(port, "DEBUG", "SLEEP", "1")``).

    Raises:
        RespError: Redis replied with an error.
        OSError: connecting, sending or reading failed or took longer than
            ``timeout`` seconds (``TimeoutError`` is an ``OSError``).
    """
    return _pipeline(port, [args], host=host, timeout=timeout)[0]


def _pipeline(
    port: int,
    commands: Sequence[Sequence[str | int | bytes]],
    *,
    host: str = HOST,
    timeout: float = 1.0,
) -> list[Resp]:
    """Send several commands on one fresh connection; return their replies."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"".join(_encode_command(command) for command in commands))
        with sock.makefile("rb") as stream:
            return [_read_reply(stream) for _ in commands]


_PROBE_KEY = "__test_support_probe__"


def _key_slot(key: str) -> int:
    """The cluster hash slot of ``key`` (CRC16/XMODEM mod 16384; no hash tags)."""
    crc = 0
    for byte in key.encode():
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % CLUSTER_SLOTS


def _parse_slot_ranges(slots: str) -> list[tuple[int, int]]:
    """Parse the slot part of a ``CLUSTER NODES`` line, e.g. ``"0-5460 7000"``."""
    ranges = []
    for item in slots.split():
        low, _, high = item.partition("-")
        ranges.append((int(low), int(high or low)))
    return ranges


def _probe_key(ranges: Sequence[tuple[int, int]]) -> str:
    """A key whose hash slot lies in ``ranges``."""
    for n in range(CLUSTER_SLOTS * 32):
        key = f"{_PROBE_KEY}{n}"
        slot = _key_slot(key)
        if any(low <= slot <= high for low, high in ranges):
            return key
    raise RedisSupportError(f"no probe key found for slots {ranges}")


def _as_str(reply: Resp) -> str:
    if not isinstance(reply, str):
        raise RespError(f"expected a string reply, got {reply!r}")
    return reply


def _parse_info(text: str) -> dict[str, str]:
    """Parse ``INFO`` / ``CLUSTER INFO`` text into a dict."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            result[key] = value.strip()
    return result


def _pairs(reply: Resp) -> dict[str, str]:
    """Turn a flat ``[k1, v1, k2, v2, ...]`` reply into a dict."""
    if not isinstance(reply, list):
        raise RespError(f"expected an array reply, got {reply!r}")
    items = [str(item) for item in reply]
    return dict(zip(items[::2], items[1::2], strict=True))


# --------------------------------------------------------------------------- waiting


def _wait_until(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    diagnostics: Callable[[], str],
    interval: float = 0.02,
) -> None:
    """Poll ``predicate`` until it returns true, for at most ``timeout`` seconds.

    ``OSError`` and :class:`RespError` from the predicate count as "not yet";
    any other exception aborts the wait.

    Raises:
        RedisWaitTimeout: the time ran out; the message names ``what``, the last
            error seen and ``diagnostics()`` (normally server log tails).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            if predicate():
                return
            last_error = None
        except (OSError, RespError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise RedisWaitTimeout(
                f"timed out after {timeout:.1f}s waiting for {what}{detail}\n{diagnostics()}"
            )
        time.sleep(interval)


def _log_tails(servers: Iterable[RedisServer], lines: int = 15) -> str:
    return "\n".join(server.describe(lines) for server in servers)


# --------------------------------------------------------------------------- processes

_live_processes: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftover_processes() -> None:
    """Kill servers that a test forgot to stop, so none outlives the test run."""
    for process in list(_live_processes):
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    _live_processes.clear()


def _process_state(pid: int) -> str | None:
    """Return the one-letter state from ``/proc/PID/stat`` (``T`` = stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


class RedisServer:
    """One private ``redis-server`` (or sentinel) process on a loopback port.

    Args:
        port: the port to listen on; by default a :func:`free_port`. With an
            automatic port, a start that fails because the port was taken in the
            meantime is retried on another port.
        args: extra command-line arguments, e.g. ``["--maxmemory", "10mb"]``.
        config: extra lines for the config file (written before the first start).
        replica_of: start as a replica of this server (``replicaof``).
        cluster: run with ``cluster-enabled yes`` and its own cluster bus port.
        cluster_node_timeout_ms: ``cluster-node-timeout`` when ``cluster`` is set.
        sentinel: run as a sentinel (``redis-server CONFIG --sentinel``).
        base_dir: where to create this server's directory; by default the system
            temp dir, in which case :meth:`close` removes the directory.
        name: prefix of the directory name, useful in logs.
        startup_timeout: seconds :meth:`start` waits for the first ``PONG``.

    Use as a context manager (``with RedisServer() as server: ...``) or call
    :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
        config: Sequence[str] = (),
        replica_of: RedisServer | None = None,
        cluster: bool = False,
        cluster_node_timeout_ms: int = 1000,
        sentinel: bool = False,
        base_dir: str | os.PathLike[str] | None = None,
        name: str = "redis",
        startup_timeout: float = 10.0,
    ) -> None:
        self._auto_port = port is None
        self._port = free_port() if port is None else port
        self._cluster = cluster
        self._cluster_port = free_port() if cluster else None
        self._cluster_node_timeout_ms = cluster_node_timeout_ms
        self._sentinel = sentinel
        self._args = list(args)
        self._config = list(config)
        self._replica_of = replica_of
        self._owns_dir = base_dir is None
        self.directory = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=base_dir))
        self.name = name
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._started_once = False
        self._config_written = False

    # ------------------------------------------------------------------ properties

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return HOST

    @property
    def port(self) -> int:
        """The TCP port clients connect to; fixed once the server has started."""
        return self._port

    @property
    def cluster_port(self) -> int | None:
        """The cluster bus port (``None`` unless started with ``cluster=True``)."""
        return self._cluster_port

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return HOST, self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """The process id while a process exists (running or paused), else ``None``."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def is_running(self) -> bool:
        """True while the process exists, even when paused."""
        return self._process is not None and self._process.poll() is None

    @property
    def is_paused(self) -> bool:
        """True between :meth:`pause` and :meth:`resume`."""
        return self._paused and self.is_running

    @property
    def is_reachable(self) -> bool:
        """True when running and not paused (the server should answer)."""
        return self.is_running and not self._paused

    @property
    def config_path(self) -> Path:
        """The config file (sentinels rewrite it with their state)."""
        return self.directory / ("sentinel.conf" if self._sentinel else "redis.conf")

    @property
    def log_path(self) -> Path:
        """The file that collects the server's stdout/stderr log."""
        return self.directory / "redis.log"

    # ------------------------------------------------------------------ diagnostics

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the server log ('' if none yet)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def describe(self, lines: int = 30) -> str:
        """A header naming the server and its state, followed by its log tail."""
        state = "paused" if self.is_paused else "running" if self.is_running else "not running"
        tail = self.log_tail(lines) or "(empty log)"
        indented = "\n".join(f"    {line}" for line in tail.splitlines())
        return f"--- {self.name} on port {self._port} ({state}), log {self.log_path}:\n{indented}"

    def __repr__(self) -> str:
        return f"<RedisServer {self.name} {HOST}:{self._port} pid={self.pid}>"

    # ------------------------------------------------------------------ commands

    def command(self, *args: str | int | bytes, timeout: float = 1.0) -> Resp:
        """Send one command to this server (see :func:`send_command`)."""
        return send_command(self._port, *args, timeout=timeout)

    def ping(self, timeout: float = 0.5) -> bool:
        """True if the server answers ``PING`` within ``timeout`` seconds."""
        try:
            return self.command("PING", timeout=timeout) == "PONG"
        except (OSError, RespError):
            return False

    def info(self, section: str = "replication", timeout: float = 1.0) -> dict[str, str]:
        """Return one ``INFO`` section as a dict (e.g. ``info()["role"]``)."""
        return _parse_info(_as_str(self.command("INFO", section, timeout=timeout)))

    def wait_until_synced(self, timeout: float = 10.0) -> None:
        """On a replica: wait until it is linked to its primary and gets its writes.

        ``master_link_status:up`` alone is not enough: after the initial sync the
        primary may hold back the stream of further writes until the replica's
        next ``REPLCONF ACK``, up to a second later, and a failover in that window
        loses them. So this also writes and deletes a probe key on the primary
        (leaving no trace) and waits until the replica's offset passes it.

        Raises:
            RedisWaitTimeout: not in sync within ``timeout`` seconds.
        """
        target: dict[int, int] = {}  # primary port -> offset to reach

        def synced() -> bool:
            info = self.info()
            if info.get("role") != "slave" or info.get("master_link_status") != "up":
                return False
            primary = int(info["master_port"])
            if primary not in target:
                key = _PROBE_KEY
                if self._cluster:
                    slots = _as_str(send_command(primary, "CLUSTER", "NODES"))
                    mine = next(line for line in slots.splitlines() if "myself" in line)
                    key = _probe_key(_parse_slot_ranges(_ClusterNodeLine(mine).slots))
                commands = [("SET", key, "1"), ("DEL", key), ("INFO", "replication")]
                replies = _pipeline(primary, commands)
                target[primary] = int(_parse_info(_as_str(replies[-1]))["master_repl_offset"])
                return False
            return int(info.get("slave_repl_offset", "-1")) >= target[primary]

        _wait_until(
            synced,
            timeout=timeout,
            what=f"{self.name} (port {self._port}) to be in sync with its primary",
            diagnostics=self.describe,
            interval=0.02,
        )

    # ------------------------------------------------------------------ lifecycle

    def _write_config(self) -> None:
        lines = [
            f"port {self._port}",
            f"bind {HOST}",
            f'dir "{self.directory}"',
            "daemonize no",
            'logfile ""',
            'save ""',
            "appendonly no",
            "enable-debug-command local",
            "repl-diskless-sync-delay 0",
            "shutdown-timeout 0",
        ]
        if self._cluster:
            lines += [
                "cluster-enabled yes",
                f"cluster-port {self._cluster_port}",
                "cluster-config-file nodes.conf",
                f"cluster-node-timeout {self._cluster_node_timeout_ms}",
                "cluster-replica-validity-factor 0",
            ]
        if self._replica_of is not None:
            lines.append(f"replicaof {HOST} {self._replica_of.port}")
        lines += self._config
        self.config_path.write_text("\n".join(lines) + "\n")
        self._config_written = True

    def _spawn(self) -> None:
        """Launch the process without waiting for it to answer."""
        if self.is_running:
            raise RedisSupportError(f"{self!r} is already running")
        self._reap()
        if not self._config_written:
            self._write_config()
        command = [redis_server_binary(), str(self.config_path), *self._args]
        if self._sentinel:
            command.append("--sentinel")
        with self.log_path.open("ab") as log:
            log.write(f"=== {time.strftime('%H:%M:%S')} starting: {command}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _live_processes.add(self._process)
        self._paused = False

    def _wait_ready(self, timeout: float | None = None) -> None:
        """Wait for ``PONG``; retry on a new port if an automatic port was taken."""
        timeout = self.startup_timeout if timeout is None else timeout
        attempts = 3 if (self._auto_port and not self._started_once) else 1

        def ready() -> bool:
            if not self.is_running:
                raise RedisSupportError(f"{self.name} exited during startup")
            return self.command("PING", timeout=0.5) == "PONG"

        for attempt in range(attempts):
            try:
                _wait_until(
                    ready,
                    timeout=timeout,
                    what=f"{self.name} on port {self._port} to answer PING",
                    diagnostics=self.describe,
                )
            except RedisSupportError as exc:
                port_taken = "Address already in use" in self.log_tail(20)
                self.kill()
                if not port_taken or attempt == attempts - 1:
                    if isinstance(exc, RedisWaitTimeout):
                        raise
                    raise RedisSupportError(f"{exc}\n{self.describe()}") from exc
                self._port = free_port()
                if self._cluster:
                    self._cluster_port = free_port()
                self._config_written = False
                self._spawn()
            else:
                self._started_once = True
                return

    def start(self) -> Self:
        """Start the process and wait until it answers ``PING``; returns ``self``.

        Raises:
            RedisSupportError: the process exited during startup.
            RedisWaitTimeout: no ``PONG`` within ``startup_timeout`` seconds.
        """
        self._spawn()
        self._wait_ready()
        return self

    def _send_signal(self, signum: signal.Signals) -> None:
        if self._process is None or self._process.poll() is not None:
            raise RedisSupportError(f"{self.name} on port {self._port} is not running")
        self._process.send_signal(signum)

    def _wait_state(self, stopped: bool) -> None:
        assert self._process is not None
        pid = self._process.pid
        _wait_until(
            lambda: (_process_state(pid) in ("T", "t")) == stopped or not self.is_running,
            timeout=5.0,
            what=f"{self.name} to be {'stopped' if stopped else 'continued'}",
            diagnostics=self.describe,
            interval=0.005,
        )

    def pause(self) -> None:
        """Freeze the process with SIGSTOP: connections stay open, nothing answers."""
        self._send_signal(signal.SIGSTOP)
        self._paused = True
        self._wait_state(stopped=True)

    def resume(self) -> None:
        """Unfreeze a paused process with SIGCONT."""
        self._send_signal(signal.SIGCONT)
        self._paused = False
        self._wait_state(stopped=False)

    def kill(self) -> None:
        """Kill the process with SIGKILL (a crash) and reap it; no-op if not running."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        self._reap()

    def _terminate(self) -> None:
        """Send SIGTERM (and SIGCONT when paused, so that it can act on it)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            if self._paused:
                process.send_signal(signal.SIGCONT)

    def _await_exit(self, timeout: float) -> None:
        """Wait for the process to exit, SIGKILL it after ``timeout`` s, and reap it."""
        process = self._process
        if process is not None:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._reap()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop with SIGTERM, then SIGKILL after ``timeout`` seconds; no-op if stopped.

        A paused server is continued right after SIGTERM so that it can exit.
        """
        self._terminate()
        self._await_exit(timeout)

    def _reap(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            _live_processes.discard(self._process)
            self._process = None
        self._paused = False

    def restart(self, *, graceful: bool = True) -> None:
        """Stop (or kill, when ``graceful`` is false) and start again on the same port.

        The config file and directory are kept (so a cluster node keeps its
        ``nodes.conf`` and identity), but the data set is lost (no persistence).
        """
        if graceful:
            self.stop()
        else:
            self.kill()
        self.start()

    def close(self) -> None:
        """Stop the server and remove its directory if it was created in the temp dir."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stop_all(servers: Iterable[RedisServer], timeout: float = 5.0) -> None:
    """Stop many servers in parallel: SIGTERM to all first, then wait for each."""
    servers = list(servers)
    for server in servers:
        server._terminate()
    for server in servers:
        server._await_exit(timeout)


# --------------------------------------------------------------------------- cluster


class _ClusterNodeLine:
    """One parsed line of ``CLUSTER NODES``."""

    def __init__(self, line: str) -> None:
        fields = line.split()
        self.node_id = fields[0]
        address = fields[1].split("@", 1)[0].split(",", 1)[0]
        self.port = int(address.rpartition(":")[2])
        self.flags = set(fields[2].split(","))
        self.master_id = fields[3]
        self.config_epoch = int(fields[6])
        self.link_state = fields[7]
        self.slots = " ".join(slot for slot in fields[8:] if not slot.startswith("["))

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def is_failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "handshake", "noaddr"})


def _cluster_nodes(server: RedisServer, timeout: float = 1.0) -> list[_ClusterNodeLine]:
    text = _as_str(server.command("CLUSTER", "NODES", timeout=timeout))
    return [_ClusterNodeLine(line) for line in text.splitlines() if line.strip()]


class RedisCluster:
    """A private Redis Cluster: 3 primaries with 1 replica each (6 processes).

    Nodes run with ``cluster-node-timeout`` ``node_timeout_ms`` (1000 ms by
    default) and the cluster is created with ``redis-cli --cluster create``.
    :meth:`start` returns once every node reports ``cluster_state:ok``, all
    16384 slots are served by healthy primaries, all nodes agree on who owns
    them and every replica's link to its primary is up.

    Use as a context manager or call :meth:`start` and :meth:`close`.
    """

    PRIMARIES = 3
    REPLICAS_PER_PRIMARY = 1

    def __init__(
        self,
        *,
        node_timeout_ms: int = 1000,
        base_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self._owns_dir = base_dir is None
        self.directory = Path(tempfile.mkdtemp(prefix="redis-cluster-", dir=base_dir))
        self.startup_timeout = startup_timeout
        # Redis keeps a replica's election state (votes counted, epoch) for
        # 2 * max(2 * node timeout, 2 s); a replica asked to run another election
        # within that time "wins" at once with its stale votes and stale epoch,
        # and the rest of the cluster rejects it. failover() waits that out.
        self._election_memory = 2 * max(2 * node_timeout_ms, 2000) / 1000 + 0.1
        self._last_election: dict[int, float] = {}
        self._created = False
        count = self.PRIMARIES * (1 + self.REPLICAS_PER_PRIMARY)
        self.nodes: list[RedisServer] = [
            RedisServer(
                cluster=True,
                cluster_node_timeout_ms=node_timeout_ms,
                base_dir=self.directory,
                name=f"cluster-node-{index}",
            )
            for index in range(count)
        ]

    # ------------------------------------------------------------------ addresses

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node, e.g. for redis-py ``ClusterNode``."""
        return [node.address for node in self.nodes]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` of the first reachable node (a seed node)."""
        seed = next((node for node in self.nodes if node.is_reachable), self.nodes[0])
        return f"redis://{HOST}:{seed.port}"

    def _by_port(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise RedisSupportError(f"no node of this cluster listens on port {port}")

    def _reachable(self) -> list[RedisServer]:
        reachable = [node for node in self.nodes if node.is_reachable]
        if not reachable:
            raise RedisSupportError("no node of the cluster is running and unpaused")
        return reachable

    def _live_view(self) -> list[_ClusterNodeLine]:
        errors: list[str] = []
        for node in self._reachable():
            try:
                return _cluster_nodes(node)
            except (OSError, RespError) as exc:
                errors.append(f"{node.name}: {exc!r}")
        raise RedisSupportError("no node answered CLUSTER NODES: " + "; ".join(errors))

    # ------------------------------------------------------------------ topology

    def primaries(self) -> list[RedisServer]:
        """The primaries serving slots now, per ``CLUSTER NODES`` of a reachable node."""
        return [
            self._by_port(line.port)
            for line in self._live_view()
            if line.is_master and line.slots and not line.is_failed
        ]

    def replicas(self) -> list[RedisServer]:
        """The nodes that are replicas now, per ``CLUSTER NODES`` of a reachable node."""
        return [self._by_port(line.port) for line in self._live_view() if "slave" in line.flags]

    def replicas_of(self, primary: RedisServer) -> list[RedisServer]:
        """The replicas of ``primary`` now, per ``CLUSTER NODES`` of a reachable node."""
        view = self._live_view()
        ids = [line.node_id for line in view if line.port == primary.port]
        return [
            self._by_port(line.port)
            for line in view
            if "slave" in line.flags and ids and line.master_id == ids[0]
        ]

    def _healthy(self) -> bool:
        topologies: list[set[tuple[int, str, str, int]]] = []
        epochs: set[str] = set()
        for node in self._reachable():
            info = _parse_info(_as_str(node.command("CLUSTER", "INFO")))
            if (
                info.get("cluster_state") != "ok"
                or info.get("cluster_slots_assigned") != str(CLUSTER_SLOTS)
                or info.get("cluster_slots_ok") != str(CLUSTER_SLOTS)
                or info.get("cluster_known_nodes") != str(len(self.nodes))
            ):
                return False
            epochs.add(info.get("cluster_current_epoch", ""))
            view = _cluster_nodes(node)
            owners = [line for line in view if line.is_master and line.slots]
            if len(owners) != self.PRIMARIES or any(line.is_failed for line in owners):
                return False
            # Who serves which slots under which config epoch and who replicates
            # whom, as this node sees it.
            ports = {line.node_id: str(line.port) for line in view}
            topologies.append(
                {(line.port, line.slots, ports.get(line.master_id, "-"), line.config_epoch) for line in view}
            )
            me = next(line for line in view if "myself" in line.flags)
            if "slave" in me.flags and node.info().get("master_link_status") != "up":
                return False
        return len(epochs) == 1 and all(topology == topologies[0] for topology in topologies)

    def wait_until_ok(self, timeout: float = 10.0) -> None:
        """Wait until the running, unpaused nodes agree that the cluster is healthy.

        Healthy means, on every such node: ``cluster_state:ok``, all slots assigned
        and served by primaries not flagged failed, the same view of which node
        serves which slots (under which config epoch) and which node replicates
        which, the same current epoch, and (for a replica) ``master_link_status:up``.
        Then every reachable replica must also receive its primary's writes (see
        :meth:`RedisServer.wait_until_synced`), so writes made after this returns
        survive a failover once replicated.

        Raises:
            RedisWaitTimeout: not healthy within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        _wait_until(
            self._healthy,
            timeout=timeout,
            what="the cluster to be healthy (cluster_state:ok, all slots covered)",
            diagnostics=lambda: _log_tails(self.nodes, lines=8),
            interval=0.05,
        )
        for replica in self.replicas():
            if replica.is_reachable:
                replica.wait_until_synced(max(0.5, deadline - time.monotonic()))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Start the 6 nodes, create the cluster and wait until it is healthy.

        Raises:
            RedisSupportError: a node failed to start or ``redis-cli`` failed.
            RedisWaitTimeout: the cluster did not become healthy in time.
        """
        try:
            for node in self.nodes:
                node._spawn()
            for node in self.nodes:
                node._wait_ready()
            if not self._created:  # after stop(), the nodes.conf files re-form it
                self._create()
                self._created = True
            self.wait_until_ok(timeout=self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        command = [
            redis_cli_binary(),
            "--cluster",
            "create",
            *(f"{HOST}:{node.port}" for node in self.nodes),
            "--cluster-replicas",
            str(self.REPLICAS_PER_PRIMARY),
            "--cluster-yes",
        ]
        log_path = self.directory / "cluster-create.log"
        try:
            with log_path.open("wb") as log:
                result = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=self.startup_timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired as exc:
            raise RedisWaitTimeout(
                f"redis-cli --cluster create took over {self.startup_timeout:.0f}s:\n"
                f"{log_path.read_text(errors='replace')}\n{_log_tails(self.nodes, lines=8)}"
            ) from exc
        output = log_path.read_text(errors="replace")
        if result.returncode != 0 or "[ERR]" in output:
            raise RedisSupportError(
                f"redis-cli --cluster create failed (exit {result.returncode}):\n"
                f"{output}\n{_log_tails(self.nodes, lines=8)}"
            )

    def failover(
        self,
        primary: RedisServer,
        *,
        how: Literal["pause", "kill", "none"] = "pause",
        promote: Literal["takeover", "force", "auto"] = "takeover",
        timeout: float = 15.0,
    ) -> RedisServer:
        """Take ``primary`` down and wait until one of its replicas replaces it.

        Args:
            primary: a node that currently serves slots.
            how: ``"pause"`` (SIGSTOP; :meth:`RedisServer.resume` it later and it
                rejoins as a replica), ``"kill"`` (SIGKILL; ``restart()`` it later),
                or ``"none"`` (leave it running: a manual failover).
            promote: ``"takeover"`` sends ``CLUSTER FAILOVER TAKEOVER`` to the
                replica (fastest, no election), ``"force"`` sends ``CLUSTER
                FAILOVER FORCE`` (an election among the primaries), ``"auto"``
                sends nothing and lets the cluster detect the failure (about 2-3
                node timeouts). Redis 7.0 mishandles a second election by the same
                replica within 4 node timeouts (at least 4 s), so with ``"force"``
                and ``"auto"`` this first waits out whatever is left of that time
                since the replica's last election here.
            timeout: seconds to wait for the promotion and a healthy cluster.

        Returns:
            The promoted replica, now a primary.

        Raises:
            ValueError: ``primary`` is not a primary with a replica here, or
                ``how="none"`` was combined with ``promote="auto"``.
            RedisWaitTimeout: the cluster did not recover in time.
        """
        if how == "none" and promote == "auto":
            raise ValueError('promote="auto" needs the primary to go down (how != "none")')
        if primary not in self.primaries():
            raise ValueError(f"{primary!r} is not a primary of this cluster")
        candidates = [node for node in self.replicas_of(primary) if node.is_reachable]
        if not candidates:
            raise ValueError(
                f"{primary!r} has no reachable replica to promote"
                " (after resume()/restart() of a node, call wait_until_ok() first)"
            )
        replica = candidates[0]

        if promote != "takeover":
            # See __init__: let Redis forget this replica's previous election.
            elapsed = time.monotonic() - self._last_election.get(replica.port, -1e9)
            time.sleep(max(0.0, self._election_memory - elapsed))

        if how == "pause":
            primary.pause()
        elif how == "kill":
            primary.kill()
        if promote != "auto":
            option = "TAKEOVER" if promote == "takeover" else "FORCE"
            replica.command("CLUSTER", "FAILOVER", option)

        def promoted() -> bool:
            me = next(line for line in _cluster_nodes(replica) if "myself" in line.flags)
            return me.is_master and bool(me.slots)

        deadline = time.monotonic() + timeout
        _wait_until(
            promoted,
            timeout=timeout,
            what=f"{replica.name} (port {replica.port}) to be promoted",
            diagnostics=lambda: _log_tails([primary, replica], lines=12),
            interval=0.02,
        )
        if promote != "takeover":
            self._last_election[replica.port] = time.monotonic()
        self.wait_until_ok(timeout=max(0.5, deadline - time.monotonic()))
        return replica

    def stop(self) -> None:
        """Stop every node (in parallel); directories are kept."""
        _stop_all(self.nodes)

    def close(self) -> None:
        """Stop every node and remove the directory if it was created in the temp dir."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- sentinel


class RedisSentinelSetup:
    """A primary, one replica and one sentinel monitoring them as ``service_name``.

    The sentinel runs with quorum 1, ``down-after-milliseconds`` ``down_after_ms``
    (500 by default) and ``failover-timeout`` ``failover_timeout_ms`` (3000).
    :meth:`start` returns once the replica is in sync and the sentinel knows the
    primary and a healthy replica, so a failover can start right away.

    After :meth:`failover`, ``primary`` is the promoted server and ``replica`` the
    former primary. Use as a context manager or call :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        *,
        service_name: str = "mymaster",
        down_after_ms: int = 1500,
        failover_timeout_ms: int = 3000,
        base_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 20.0,
    ) -> None:
        self.service_name = service_name
        self.startup_timeout = startup_timeout
        self._owns_dir = base_dir is None
        self.directory = Path(tempfile.mkdtemp(prefix="redis-sentinel-", dir=base_dir))
        self.primary = RedisServer(base_dir=self.directory, name="sentinel-primary")
        self.replica = RedisServer(base_dir=self.directory, name="sentinel-replica", replica_of=self.primary)
        self._down_after_ms = down_after_ms
        self._failover_timeout_ms = failover_timeout_ms
        self.sentinel = RedisServer(base_dir=self.directory, name="sentinel", sentinel=True)

    @property
    def servers(self) -> list[RedisServer]:
        """Primary, replica and sentinel (in that order at start)."""
        return [self.primary, self.replica, self.sentinel]

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every sentinel, as redis-py ``Sentinel`` expects."""
        return [self.sentinel.address]

    def _diagnostics(self) -> str:
        return _log_tails(self.servers, lines=12)

    def master_address(self, timeout: float = 1.0) -> tuple[str, int]:
        """The primary's address according to the sentinel, asked now."""
        reply = self.sentinel.command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name, timeout=timeout
        )
        if not isinstance(reply, list) or len(reply) != 2:
            raise RespError(f"unexpected GET-MASTER-ADDR-BY-NAME reply {reply!r}")
        return str(reply[0]), int(str(reply[1]))

    def _replicating(self, *, sentinel_saw_link: bool) -> bool:
        """Replica in sync with primary, and the sentinel sees both as healthy.

        The sentinel refreshes what it knows of a replica's own link from ``INFO``
        only every 10 s; ``sentinel_saw_link`` also requires that view to be up.
        """
        link = self.replica.info()
        if link.get("master_port") != str(self.primary.port):
            return False
        if link.get("master_link_status") != "up":
            return False
        if self.master_address() != self.primary.address:
            return False
        master = _pairs(self.sentinel.command("SENTINEL", "MASTER", self.service_name))
        if master.get("flags") != "master":
            return False
        replicas = self.sentinel.command("SENTINEL", "REPLICAS", self.service_name)
        if not isinstance(replicas, list):
            return False
        for entry in replicas:
            fields = _pairs(entry)
            if fields.get("port") == str(self.replica.port) and fields.get("flags") == "slave":
                return not sentinel_saw_link or (
                    fields.get("master-link-status") == "ok"
                    and fields.get("master-port") == str(self.primary.port)
                )
        return False

    def wait_until_replicating(self, timeout: float = 15.0, *, nudge: bool = True) -> None:
        """Wait until ``replica`` is in sync with ``primary`` and the sentinel agrees.

        "Agrees" means the sentinel names ``primary`` as the master and lists
        ``replica`` as a replica that is up (its ``INFO``-based details about the
        replica may lag by up to 10 s, which does not stop a failover).

        After a failover, the sentinel demotes the former primary only about 8 s
        after it comes back; with ``nudge`` (default) this sends it ``REPLICAOF``
        itself, exactly what the sentinel would send, so it rejoins at once.

        Raises:
            RedisWaitTimeout: not replicating within ``timeout`` seconds.
        """
        if nudge and self.replica.is_reachable:
            info = self.replica.info()
            if info.get("role") != "slave" or info.get("master_port") != str(self.primary.port):
                self.replica.command("REPLICAOF", HOST, self.primary.port)
        deadline = time.monotonic() + timeout
        self._wait_replicating(timeout, sentinel_saw_link=False)
        self.replica.wait_until_synced(max(0.5, deadline - time.monotonic()))

    def _wait_replicating(self, timeout: float, *, sentinel_saw_link: bool) -> None:
        _wait_until(
            lambda: self._replicating(sentinel_saw_link=sentinel_saw_link),
            timeout=timeout,
            what=f"{self.replica.name} to replicate {self.primary.name} and the sentinel to agree",
            diagnostics=self._diagnostics,
            interval=0.05,
        )

    def start(self) -> Self:
        """Start primary, replica and sentinel, and wait until all three are ready.

        The sentinel starts only once the replica is in sync: it then learns about
        the replica from its very first ``INFO`` of the primary instead of waiting
        for the next one 10 s later.

        Raises:
            RedisSupportError: a process failed to start.
            RedisWaitTimeout: the setup was not ready within ``startup_timeout``.
        """
        try:
            self.primary.start()
            self.replica.start()
            self.replica.wait_until_synced(self.startup_timeout)
            name = self.service_name
            if not self.sentinel._config_written:  # a restarted setup keeps its state
                self.sentinel._config = [
                    f"sentinel monitor {name} {HOST} {self.primary.port} 1",
                    f"sentinel down-after-milliseconds {name} {self._down_after_ms}",
                    f"sentinel failover-timeout {name} {self._failover_timeout_ms}",
                ]
            self.sentinel.start()
            self._wait_replicating(self.startup_timeout, sentinel_saw_link=True)
        except BaseException:
            self.stop()
            raise
        return self

    def failover(
        self,
        *,
        how: Literal["command", "kill", "pause"] = "command",
        timeout: float = 15.0,
    ) -> RedisServer:
        """Make the sentinel promote ``replica``; wait until the failover has ended.

        On return the sentinel reports ``replica``'s address as the master (in
        ``SENTINEL MASTER(S)`` and ``GET-MASTER-ADDR-BY-NAME``) and it has the
        master role.

        Args:
            how: ``"command"`` sends ``SENTINEL FAILOVER`` (old primary keeps
                running), ``"kill"`` kills the primary with SIGKILL, ``"pause"``
                freezes it with SIGSTOP; in the last two cases the sentinel
                notices after ``down_after_ms``.
            timeout: seconds to wait.

        Returns:
            The promoted server, which is also ``self.primary`` afterwards (and the
            former primary is ``self.replica``: ``resume()``/``restart()`` it and
            call :meth:`wait_until_replicating` to have a replica again).

        Raises:
            RedisWaitTimeout: the sentinel did not switch in time.
        """
        old, new = self.primary, self.replica
        if how == "command":
            self.sentinel.command("SENTINEL", "FAILOVER", self.service_name)
        elif how == "kill":
            old.kill()
        else:
            old.pause()

        def switched() -> bool:
            # GET-MASTER-ADDR-BY-NAME shows the promoted replica while the failover
            # is still in progress; SENTINEL MASTER (which clients such as
            # redis-py read) switches only when it has ended.
            master = _pairs(self.sentinel.command("SENTINEL", "MASTER", self.service_name))
            return (
                master.get("port") == str(new.port)
                and master.get("flags") == "master"
                and self.master_address() == new.address
                and new.info().get("role") == "master"
            )

        _wait_until(
            switched,
            timeout=timeout,
            what=f"the sentinel to report {new.name} (port {new.port}) as the new master",
            diagnostics=self._diagnostics,
            interval=0.05,
        )
        self.primary, self.replica = new, old
        return new

    def stop(self) -> None:
        """Stop sentinel, replica and primary (in parallel); directories are kept."""
        _stop_all([self.sentinel, self.replica, self.primary])

    def close(self) -> None:
        """Stop everything and remove the directory if it was created in the temp dir."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
