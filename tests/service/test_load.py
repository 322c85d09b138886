"""Bounded load test: 50 concurrent scans against the real server; every answer checked."""

import asyncio
import statistics
import time

import httpx
import pytest

from tests.conftest import EXAMPLES


@pytest.mark.slow
def test_fifty_concurrent_scans(server):
    photos = sorted(EXAMPLES.glob("*.jpg"))[:5]
    clean = [p.read_bytes() for p in photos]
    stamped = [httpx.post(f"{server.url}/v1/protect", files={"image": (p.name, b, "image/jpeg")},
                          headers={"X-API-Key": server.api_key}, timeout=120).content for p, b in zip(photos, clean)]
    jobs = [(stamped[i % 5], True) if i % 2 == 0 else (clean[i % 5], False) for i in range(50)]

    async def one(client, data, expected):
        t = time.perf_counter()
        r = await client.post("/v1/scan", files={"image": ("x.jpg", data, "image/jpeg")})
        return r, expected, time.perf_counter() - t

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=300) as client:
            t0 = time.perf_counter()
            results = await asyncio.gather(*(one(client, d, e) for d, e in jobs))
            return results, time.perf_counter() - t0

    results, wall = asyncio.run(run())
    for r, expected, _ in results:
        assert r.status_code == 200, r.text
        assert r.json()["protected"] is expected
    lat = sorted(x[2] for x in results)
    peak = server.peak_rss_mb()
    print(f"\n50 concurrent scans: {len(jobs) / wall:.1f} req/s, p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p95 {lat[int(0.95 * len(lat)) - 1] * 1000:.0f} ms, server peak RSS {peak:.0f} MB")
    assert peak < 3000, f"server peak RSS {peak:.0f} MB"
    assert httpx.get(f"{server.url}/healthz").status_code == 200
