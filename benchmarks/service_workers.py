"""Throughput of the HTTP service with 1 and 2 worker processes on this machine: each worker is
a ``deepraft serve`` process on its own loopback port, and the client spreads its requests over
them round-robin, as a load balancer in front of stateless workers does.

    python benchmarks/service_workers.py [--workers 1 2] [--requests 60] [--concurrency 4] [--out FILE]

Every request is ``POST /v1/scan`` of an example photo (JPEG, under 1 MP); the figure is
requests per second over the whole run, after one warm-up request per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import heldout

PHOTO = (
    Path(__file__).resolve().parents[1]
    / "examples"
    / "photos"
    / "gcompris-qt-data__explore_monuments_statueofLiberty.jpg"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    log = (folder / f"serve-{port}.log").open("w")
    cmd = [sys.executable, "-m", "deepraft.apps.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"deepraft serve exited ({proc.returncode})") from None
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("deepraft serve did not start in 180 s")


def scan(url: str, data: bytes) -> bool:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        url + "/v1/scan", data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        return bool(json.loads(resp.read())["protected"])


def run(workers: int, requests: int, concurrency: int) -> dict[str, float]:
    data = PHOTO.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        procs = [start(Path(tmp)) for _ in range(workers)]
        try:
            urls = [u for _, u in procs]
            for u in urls:
                scan(u, data)  # warm-up
            t0 = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(lambda i: scan(urls[i % len(urls)], data), range(requests)))
            seconds = time.perf_counter() - t0
        finally:
            for p, _ in procs:
                p.terminate()
                p.wait(timeout=30)
    return {
        "workers": workers,
        "requests": requests,
        "seconds": round(seconds, 2),
        "requests_per_s": round(requests / seconds, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res = {"concurrency": args.concurrency, "runs": [run(w, args.requests, args.concurrency) for w in args.workers]}
    for r in res["runs"]:
        print(f"{r['workers']} worker(s): {r['requests']} scans in {r['seconds']} s, {r['requests_per_s']} per s")
    heldout.write_json(args.out, res)


if __name__ == "__main__":
    main()
