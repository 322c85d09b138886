import io
import struct
import zlib

import httpx
import numpy as np
from PIL import Image

from tests.conftest import EXAMPLES

PHOTO = EXAMPLES / "scikit-learn__china.jpg"


def _post(server, path, data: bytes, name="photo.jpg", field="image", key=None, ctype="image/jpeg"):
    headers = {"X-API-Key": key} if key else {}
    return httpx.post(f"{server.url}{path}", files={field: (name, data, ctype)}, headers=headers, timeout=120)


def _huge_png(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims width x height pixels."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # chunk type + data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_health_and_model(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok", "model": "default"}
    card = httpx.get(f"{server.url}/v1/model").json()
    assert card["name"] == "default" and "0.001" in card["thresholds"]
    assert httpx.get(f"{server.url}/docs").status_code == 200
    assert "/v1/check-forward" in httpx.get(f"{server.url}/openapi.json").json()["paths"]


def test_protect_scan_check_forward(server):
    original = PHOTO.read_bytes()
    assert _post(server, "/v1/protect", original).status_code == 401
    assert _post(server, "/v1/protect", original, key="wrong").status_code == 401
    r = _post(server, "/v1/protect", original, key=server.api_key)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    stamped = r.content
    assert Image.open(io.BytesIO(stamped)).size == Image.open(PHOTO).size
    s = _post(server, "/v1/scan", stamped).json()
    assert s["protected"] is True and s["model"] == "default" and s["score"] > s["threshold"]
    assert _post(server, "/v1/scan", original).json()["protected"] is False
    blocked = _post(server, "/v1/check-forward", stamped).json()
    assert blocked["allowed"] is False and "only for you" in blocked["reason"]
    assert _post(server, "/v1/check-forward", original).json()["allowed"] is True
    png = io.BytesIO()
    Image.open(PHOTO).convert("RGBA").save(png, "PNG")
    r = _post(server, "/v1/protect", png.getvalue(), name="a.png", key=server.api_key, ctype="image/png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).mode == "RGBA"


def test_bad_requests_get_4xx_and_server_keeps_serving(server):
    jpeg = PHOTO.read_bytes()
    cases = [
        (b"", "photo.jpg", "image", 422),
        (b"just some text, not a picture", "notes.jpg", "image", 415),
        (jpeg[: len(jpeg) // 3], "truncated.jpg", "image", 422),
        (_huge_png(20000, 20000), "huge.png", "image", 413),
        (jpeg, "photo.jpg", "file", 422),  # wrong field name
        (b"\0" * (9 * 2**20), "big.jpg", "image", 413),
    ]
    for data, name, field, status in cases:
        r = _post(server, "/v1/scan", data, name=name, field=field)
        assert r.status_code == status, (name, r.status_code, r.text)
        body = r.json()
        assert "error" in body or "detail" in body
        if status in (413, 415) and field == "image":
            assert name in str(body["error"]) or "larger" in str(body["error"])
    r = httpx.post(f"{server.url}/v1/scan", content=b"not multipart", headers={"content-type": "text/plain"})
    assert r.status_code == 422
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    arr = np.asarray(Image.open(PHOTO))
    assert _post(server, "/v1/scan", jpeg).json()["protected"] is False and arr.size > 0
