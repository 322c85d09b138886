"""A real Synapse homeserver (SQLite, loopback only) with the deepraft module and the bundled model:
users registered over the client-server API; a picture sent "only for you" passes, its forward
into another room and a re-upload of a stamped copy are rejected, clean pictures pass.

Synapse runs in its own virtual environment (made here, seeing this interpreter's packages, so
deepraft and torch are shared), as a homeserver runs beside the platform's own code.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.apps.service.conftest import API_KEY, start_server, stop_server
from tests.conftest import EXAMPLES, stop_process

pytestmark = pytest.mark.slow

PHOTO = EXAMPLES / "gcompris-qt-data__explore_monuments_statueofLiberty.jpg"


def _python_with_synapse(root: Path) -> str:
    """An interpreter that imports synapse: this one when it does, else a new virtual
    environment over this one's packages with matrix-synapse added."""
    probe = subprocess.run([sys.executable, "-c", "import synapse"], capture_output=True)
    if probe.returncode == 0:
        return sys.executable
    venv = root / "synapse-venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    r = subprocess.run(
        [py, "-m", "pip", "install", "-q", "matrix-synapse>=1.140"], capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return py


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Homeserver:
    def __init__(self, base: str, proc: subprocess.Popen, log: Path) -> None:
        self.base, self.proc, self.log = base, proc, log

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: object = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, dict, bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                payload = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            payload, status = exc.read(), exc.code
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = {}
        return status, parsed if isinstance(parsed, dict) else {}, payload

    def register(self, name: str) -> str:
        status, body, _ = self.call(
            "POST",
            "/_matrix/client/v3/register",
            body={"username": name, "password": f"{name}-password-123", "auth": {"type": "m.login.dummy"}},
        )
        assert status == 200, body
        return str(body["access_token"])

    def room(self, token: str) -> str:
        status, body, _ = self.call("POST", "/_matrix/client/v3/createRoom", token, {"preset": "private_chat"})
        assert status == 200, body
        return str(body["room_id"])

    def upload(self, token: str, data: bytes, mime: str) -> tuple[int, dict]:
        status, body, _ = self.call("POST", "/_matrix/media/v3/upload?filename=pic", token, raw=data, content_type=mime)
        return status, body

    def send_image(self, token: str, room: str, mxc: str, txn: str) -> tuple[int, dict]:
        content = {"msgtype": "m.image", "body": "pic", "url": mxc}
        status, body, _ = self.call("PUT", f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}", token, content)
        return status, body


@pytest.fixture(scope="module")
def synapse_python(tmp_path_factory) -> str:
    return _python_with_synapse(tmp_path_factory.mktemp("synapse-env"))


def start_homeserver(py: str, root: Path, module_config: dict) -> Homeserver:
    """A homeserver on a free loopback port with the deepraft module configured as given."""
    port = _free_port()
    config = root / "homeserver.yaml"
    subprocess.run(
        [
            py,
            "-m",
            "synapse.app.homeserver",
            "--server-name",
            "localhost",
            "--config-path",
            str(config),
            "--generate-config",
            "--report-stats=no",
            "--data-directory",
            str(root / "data"),
        ],
        check=True,
        capture_output=True,
        cwd=root,
        timeout=300,
    )
    cfg = yaml.safe_load(config.read_text())
    cfg["listeners"] = [
        {
            "port": port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": False,
            "x_forwarded": False,
            "resources": [{"names": ["client"], "compress": False}],
        }
    ]
    fast = {"per_second": 1000, "burst_count": 1000}
    cfg.update(
        enable_registration=True,
        enable_registration_without_verification=True,
        trusted_key_servers=[],
        suppress_key_server_warning=True,
        rc_message=fast,
        rc_registration=fast,
        rc_login={"address": fast, "account": fast},
        modules=[{"module": "deepraft.integrations.synapse.DeepraftModule", "config": module_config}],
    )
    cfg.pop("log_config", None)  # log to stdout, into synapse.out
    config.write_text(yaml.safe_dump(cfg))
    log = root / "synapse.out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [py, "-m", "synapse.app.homeserver", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            env=env,
        )
    hs = Homeserver(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"synapse exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            if hs.call("GET", "/_matrix/client/versions")[0] == 200:
                return hs
        except OSError:
            pass
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"synapse did not answer in 180 s:\n{log.read_text()[-4000:]}")


def stop_homeserver(hs: Homeserver) -> None:
    stop_process(hs.proc)


@pytest.fixture(scope="module")
def homeserver(synapse_python, tmp_path_factory):
    """The module scanning in process with the bundled model, failing closed."""
    root = tmp_path_factory.mktemp("synapse")
    hs = start_homeserver(synapse_python, root, {"state_db": str(root / "deepraft.sqlite3"), "model": "default"})
    yield hs
    stop_homeserver(hs)


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_only_for_you_in_a_real_homeserver(homeserver):
    hs = homeserver
    alice, bob = hs.register("alice"), hs.register("bob")
    room_a, room_b = hs.room(alice), hs.room(alice)

    # 1. the original send: stamped through the module's route, uploaded, sent in its room
    status, _, stamped = hs.call(
        "POST", f"/_deepraft/v1/protect?room_id={room_a}", alice, raw=PHOTO.read_bytes(), content_type="image/jpeg"
    )
    assert status == 200 and stamped[:2] == b"\xff\xd8"
    status, up = hs.upload(alice, stamped, "image/jpeg")
    assert status == 200, up
    mxc = up["content_uri"]
    status, sent = hs.send_image(alice, room_a, mxc, "t1")
    assert status == 200 and sent["event_id"].startswith("$"), sent

    # 2. the forward: the same media URL into another room is rejected on the event
    status, fwd = hs.send_image(alice, room_b, mxc, "t2")
    assert status == 403 and fwd.get("errcode") == "M_FORBIDDEN", fwd

    # 3. a re-upload of a stamped copy (cropped to 64 %, re-encoded) is rejected at upload
    with Image.open(io.BytesIO(stamped)) as im:
        w, h = im.size
        copy = _jpeg(im.crop((w // 10, h // 10, w - w // 10, h - h // 10)), 85)
    status, again = hs.upload(alice, copy, "image/jpeg")
    assert status == 400 and again.get("error") == "Bad content", (status, again)  # Synapse's answer to a spam check
    status, again = hs.upload(bob, stamped, "image/jpeg")  # the exact stamped bytes, a second time
    assert status in (400, 403), (status, again)

    # 4. clean pictures pass, in any room; a file that is not a picture passes untouched
    status, clean = hs.upload(bob, _jpeg(Image.open(PHOTO)), "image/jpeg")
    assert status == 200, clean
    status, sent = hs.send_image(alice, room_b, clean["content_uri"], "t3")
    assert status == 200, sent
    status, text = hs.upload(bob, b"just some text, not a picture", "text/plain")
    assert status == 200, text

    # 5. stamping "for" a room one has not joined is refused, and so is a picture that is not one
    status, body, _ = hs.call(
        "POST", f"/_deepraft/v1/protect?room_id={room_a}", bob, raw=PHOTO.read_bytes(), content_type="image/jpeg"
    )
    assert status == 403 and body.get("errcode") == "M_FORBIDDEN", body
    status, body, _ = hs.call(
        "POST", f"/_deepraft/v1/protect?room_id={room_a}", alice, raw=b"nope", content_type="image/jpeg"
    )
    assert status == 400 and body.get("errcode") == "M_INVALID_PARAM", body
    assert "carries the stamp" in hs.log.read_text() and "forwards" in hs.log.read_text()


def test_the_module_scans_through_the_deepraft_service_and_fails_closed_without_it(synapse_python, tmp_path):
    """One deepraft service for many homeserver workers: stamping and scanning go through it; when
    it is gone, uploads are rejected (fail_open false) and the failure is logged."""
    service = start_server(tmp_path)
    root = tmp_path / "hs"
    root.mkdir()
    config = {"state_db": str(root / "deepraft.sqlite3"), "service_url": service.url, "service_api_key": API_KEY}
    hs = start_homeserver(synapse_python, root, config)
    try:
        alice = hs.register("carol")
        room_a, room_b = hs.room(alice), hs.room(alice)
        status, _, stamped = hs.call(
            "POST", f"/_deepraft/v1/protect?room_id={room_a}", alice, raw=PHOTO.read_bytes(), content_type="image/jpeg"
        )
        assert status == 200, stamped[:300]
        status, up = hs.upload(alice, stamped, "image/jpeg")
        assert status == 200, up
        assert hs.send_image(alice, room_a, up["content_uri"], "s1")[0] == 200
        assert hs.send_image(alice, room_b, up["content_uri"], "s2")[0] == 403
        with Image.open(io.BytesIO(stamped)) as im:
            status, _ = hs.upload(alice, _jpeg(im.resize((im.width // 2, im.height // 2)), 80), "image/jpeg")
        assert status == 400
        assert hs.upload(alice, _jpeg(Image.open(PHOTO)), "image/jpeg")[0] == 200
        stop_server(service)
        assert hs.upload(alice, _jpeg(Image.open(PHOTO), 80), "image/jpeg")[0] == 400  # no scanner: fail closed
        assert "failed; fail_open=False" in hs.log.read_text()
    finally:
        stop_homeserver(hs)
        stop_server(service)
