"""python -m benchmarks [--quick] [--only memory,file,redis,decorator,http,scaling]"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import platform
import sys
import tempfile
import time
import traceback
from importlib import metadata

from . import report
from .common import Config, log
from .util import start_redis, stop

GROUPS = ["memory", "file", "redis", "decorator", "http", "scaling"]
MODULES = {"redis": "redis_", "http": "http_"}
PACKAGES = [
    "ignite_cache",
    "cashews",
    "aiocache",
    "fastapi-cache2",
    "diskcache",
    "cachetools",
    "redis",
    "hiredis",
    "orjson",
    "fastapi",
    "uvicorn",
]


def versions() -> dict:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "missing"
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks")
    ap.add_argument("--quick", action="store_true", help="CI smoke run (< ~3 min)")
    ap.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups")
    ap.add_argument("--out", default="benchmarks/results")
    a = ap.parse_args()
    t0 = time.perf_counter()
    results = {
        "meta": {
            "quick": a.quick,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {platform.system()}",
            "versions": versions(),
            "seconds": 0.0,
            "group_seconds": {},
        },
        "groups": [],
    }
    crashed: list[str] = []
    server = start_redis()
    with tempfile.TemporaryDirectory(prefix="ignite-bench-") as tmp:
        cfg = Config.make(a.quick, tmp)
        if server:
            cfg.redis_url, cfg.private_redis = server[1], True
            log(f"private redis-server at {cfg.redis_url}")
        try:
            for name in a.only.split(","):
                log(f"group {name}")
                t = time.perf_counter()
                try:
                    mod = importlib.import_module(f"benchmarks.{MODULES.get(name, name)}")
                    results["groups"] += [g.to_dict() for g in await mod.run(cfg)]
                except Exception as exc:  # a bug in the benchmark itself: report, go on, fail
                    traceback.print_exc()
                    crashed.append(f"{name}: {exc!r}")
                results["meta"]["group_seconds"][name] = round(time.perf_counter() - t, 1)
                results["meta"]["seconds"] = time.perf_counter() - t0
                report.write(results, a.out)  # partial results survive a later failure
        finally:
            if server:
                stop(server[0])
    errors = [
        f"{g['key']}: {n}: {r['error']}"
        for g in results["groups"]
        for n, r in g["rows"].items()
        if "error" in r
    ]
    for e in errors + crashed:
        log(f"error: {e}")
    log(f"done in {time.perf_counter() - t0:.0f} s: {a.out}/latest.md, latest.json, chart.png")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
