"""`deepraft serve`'s refusals and exit codes (none of them loads the model)."""

import os
import socket
import subprocess
import sys


def _serve(*args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DEEPRAFT_API_KEY"}
    env["PYTHONWARNINGS"] = "ignore"
    if key:
        env["DEEPRAFT_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "deepraft.apps.cli", "serve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_non_loopback_without_key_is_refused():
    for host in ("0.0.0.0", "::"):
        r = _serve("--host", host, "--port", "0")
        assert r.returncode == 2, (host, r.returncode, r.stderr)
        assert "refusing to listen" in r.stderr and "--insecure" in r.stderr and "API key" in r.stderr


def test_busy_port_exits_4_not_3():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = _serve("--host", "127.0.0.1", "--port", str(port), key="k")
    assert r.returncode == 4, (r.returncode, r.stderr)  # before the model is loaded
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert r.returncode != 3  # 3 is scan's "stamp found"


def test_insecure_lifts_the_refusal():
    """--insecure passes the check (shown without ever serving: the port is taken, exit 4)."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = _serve("--host", "0.0.0.0", "--port", str(port), "--insecure")
    assert r.returncode == 4 and "refusing" not in r.stderr, (r.returncode, r.stderr)


def test_help_is_never_cut():
    """Help renders fully at any width, terminal or not (it was cut to `--fail-on-protec…`)."""
    from typer.testing import CliRunner

    from deepraft.apps.cli import app

    expected = {
        "scan": ("--fail-on-protected", "--max-pixels"),
        "protect": ("--force", "--overwrite"),
        "serve": ("--insecure", "--demo", "--max-body-mb"),
    }
    for columns in ("40", "80", "200"):
        runner = CliRunner(env={"COLUMNS": columns})
        for command, options in expected.items():
            r = runner.invoke(app, [command, "--help"], terminal_width=int(columns))
            assert r.exit_code == 0 and "…" not in r.output, (columns, command, r.output)
            for option in options:
                assert option in r.output, (columns, command, option)


def test_what_counts_as_loopback():
    from deepraft.apps.cli import _is_loopback

    assert all(map(_is_loopback, ("127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]")))
    assert not any(map(_is_loopback, ("0.0.0.0", "::", "10.0.0.1", "example.com", "localhost.example.com")))
