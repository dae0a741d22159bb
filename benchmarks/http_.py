"""A trivial FastAPI endpoint under uvicorn (one worker, subprocess), loaded from a second
process: uncached vs ignite_cache vs fastapi-cache2."""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

from .common import Config, Group, log
from .ours import ours
from .util import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = [
    ("uncached", "floor", "uncached"),
    ("ignite_cache", "ours", "ignite_cache @cached"),
    ("fastapi-cache2", "peer", "fastapi-cache2 @cache"),
]
CONNS = 16


def start_server(mode: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = dict(os.environ, BENCH_HTTP_MODE=mode)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "benchmarks.http_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
    )
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"uvicorn ({mode}) did not start")


def load(port: int, requests: int) -> dict:
    if shutil.which("wrk"):  # C load generator when present: less client CPU on 2 cores
        secs = max(2, requests // 4000)
        out = subprocess.run(
            ["wrk", "-t1", f"-c{CONNS}", f"-d{secs}s", "--latency", f"http://127.0.0.1:{port}/item/1"],
            capture_output=True,
            text=True,
            timeout=secs + 30,
            check=True,
        ).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        num, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
        p99_ms = float(num) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
        return {"rps": rps, "p99_ms": p99_ms, "errors": 0, "client": "wrk"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.http_load",
            "--port",
            str(port),
            "--requests",
            str(requests),
            "--conns",
            str(CONNS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    return json.loads(out) | {"client": "python asyncio keep-alive"}


async def run(cfg: Config) -> list[Group]:
    g = Group("http", f"HTTP: FastAPI + uvicorn, 1 worker, {CONNS} keep-alive connections", "uncached")
    g.col("rps", "requests/s", unit="req/s", better="higher")
    g.col("p99", "p99 latency", unit="ms")
    g.col("added", "added per request vs uncached", unit="µs/req")
    servers = {}  # all servers up at once; load runs interleaved round-robin across them
    try:
        for mode, kind, name in MODES:
            if mode == "ignite_cache" and ours("cached") is None:
                g.notes.append("ignite_cache @cached not available: skipped.")
                continue
            try:
                servers[name] = (kind, *start_server(mode))
                load(servers[name][2], 1_000 + CONNS)  # warm-up: every item is cached
            except Exception as exc:
                g.error(name, kind, exc)
        runs: dict[str, list[dict]] = {name: [] for name in servers}
        for rep in range(cfg.http_reps):
            log(f"  http: repetition {rep + 1}/{cfg.http_reps}")
            names = list(servers)
            for name in names[rep % len(names) :] + names[: rep % len(names)]:
                if name not in g.failed:
                    try:
                        runs[name].append(load(servers[name][2], cfg.http_requests))
                        assert runs[name][-1]["errors"] == 0, f"non-200 responses: {runs[name][-1]}"
                    except Exception as exc:
                        g.error(name, servers[name][0], exc)
        for name, rs in runs.items():
            if name not in g.failed and rs:
                g.put(name, servers[name][0], "rps", statistics.median(r["rps"] for r in rs))
                g.put(name, servers[name][0], "p99", statistics.median(r["p99_ms"] for r in rs))
        client = next((rs[0]["client"] for rs in runs.values() if rs), None)
    finally:
        for _, proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    base = g.rows.get("uncached", {}).get("values", {}).get("rps")
    for row in g.rows.values():
        rps = row["values"].get("rps")
        if base and rps:
            row["values"]["added"] = round(1e6 / rps - 1e6 / base, 3)
    g.notes.append(
        f"{cfg.http_requests:,} requests per run over 1,000 item ids (all cached "
        f"after a warm-up), median of {cfg.http_reps} runs; load client: {client}. "
        "'added' = 1e6/rps - 1e6/rps(uncached): server time per request."
    )
    return [g]
