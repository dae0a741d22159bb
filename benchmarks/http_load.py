"""Load generator run in its own process: N keep-alive HTTP/1.1 connections over loopback,
a bounded number of GET requests; prints JSON {rps, p50_ms, p99_ms, errors}."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time

CL = re.compile(rb"content-length:\s*(\d+)", re.I)


async def worker(port: int, paths: list[str], lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for path in paths:
        t0 = time.perf_counter()
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(CL.search(head).group(1)))
        lat.append(time.perf_counter() - t0)
        if head[9:12] != b"200":
            errors[0] += 1
    writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--items", type=int, default=1_000)
    a = ap.parse_args()
    per = a.requests // a.conns
    lat: list[float] = []
    errors = [0]
    work = [[f"/item/{(c * 7919 + i) % a.items}" for i in range(per)] for c in range(a.conns)]
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(a.port, w, lat, errors) for w in work))
    elapsed = time.perf_counter() - t0
    lat.sort()
    print(
        json.dumps(
            {
                "rps": len(lat) / elapsed,
                "p50_ms": lat[len(lat) // 2] * 1e3,
                "p99_ms": lat[int(len(lat) * 0.99)] * 1e3,
                "errors": errors[0],
                "requests": len(lat),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
