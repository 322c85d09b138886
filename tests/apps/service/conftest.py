"""Real uvicorn servers on 127.0.0.1, started as subprocesses of ``deepraft serve`` with the
bundled model."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import stop_process

API_KEY = "test-key-123"


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    api_key: str | None
    log: Path

    def status(self, field: str) -> float:
        """A /proc/PID/status memory field (VmHWM: peak RSS, VmRSS: now) in MiB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def peak_rss_mb(self) -> float:
        return self.status("VmHWM")

    def session(self, account: str) -> httpx.Client:
        """An HTTP client holding a demo session of ``account`` (opened with the API key)."""
        client = httpx.Client(base_url=self.url, timeout=120)
        r = client.post("/demo/api/session", data={"account": account}, headers={"X-API-Key": self.api_key or ""})
        assert r.status_code == 200, r.text
        return client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, *args: str, api_key: str | None = API_KEY) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DEEPRAFT_API_KEY"}
    env["PYTHONWARNINGS"] = "ignore"
    if api_key:
        env["DEEPRAFT_API_KEY"] = api_key
    log = folder / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "deepraft.apps.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return Server(url, proc, api_key, log)
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start in 120 s")


def stop_server(server: Server) -> None:
    stop_process(server.proc, timeout=20)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    """API key set, demo on, 8 MiB body limit, 30 MP pixel limit, 2 MiB demo quota."""
    folder = tmp_path_factory.mktemp("server")
    s = start_server(
        folder,
        "--demo",
        "--demo-db",
        str(folder / "demo.sqlite3"),
        "--max-body-mb",
        "8",
        "--max-pixels",
        "30000000",
        "--demo-quota-mb",
        "2",
    )
    yield s
    stop_server(s)


@pytest.fixture(scope="session")
def open_server(tmp_path_factory) -> Server:
    """`deepraft serve` with its defaults: no API key, no --demo."""
    s = start_server(tmp_path_factory.mktemp("open-server"), api_key=None)
    yield s
    stop_server(s)
