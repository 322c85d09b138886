"""The demo messenger at ``/demo``: three accounts exchange pictures; "only for you" pictures
are stamped on send, and every send or forward is scanned, so a stamped picture cannot travel
further, even after it was saved, cropped or re-compressed. Messages, pictures and the audit
log of blocked attempts live in one SQLite file."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse, Response

ACCOUNTS = ("alice", "bob", "carol")
STATIC = Path(__file__).resolve().parent / "static"

SCHEMA = """
CREATE TABLE IF NOT EXISTS pictures (id INTEGER PRIMARY KEY, data BLOB NOT NULL, mime TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL, picture_id INTEGER NOT NULL,
    only_for_you INTEGER NOT NULL, forwarded_from INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, reason TEXT NOT NULL, score REAL);
"""


class Store:
    """A small SQLite store; one connection guarded by a lock (requests come from threads)."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        with self.lock:
            self.db.executescript(SCHEMA)
            self.db.commit()

    def add_message(self, sender: str, recipient: str, data: bytes, mime: str, only_for_you: bool,
                    forwarded_from: int | None = None) -> int:
        with self.lock:
            pid = self.db.execute("INSERT INTO pictures (data, mime) VALUES (?, ?)", (data, mime)).lastrowid
            mid = self.db.execute(
                "INSERT INTO messages (sender, recipient, picture_id, only_for_you, forwarded_from, created) "
                "VALUES (?, ?, ?, ?, ?, ?)", (sender, recipient, pid, int(only_for_you), forwarded_from, time.time()),
            ).lastrowid
            self.db.commit()
        return int(mid)

    def audit(self, user: str, action: str, target: str, reason: str, score: float | None) -> None:
        with self.lock:
            self.db.execute("INSERT INTO audit (created, user, action, target, reason, score) VALUES (?, ?, ?, ?, ?, ?)",
                            (time.time(), user, action, target, reason, score))
            self.db.commit()

    def message(self, mid: int) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute("SELECT * FROM messages WHERE id = ?", (mid,)).fetchone()

    def picture(self, pid: int) -> sqlite3.Row | None:
        with self.lock:
            return self.db.execute("SELECT * FROM pictures WHERE id = ?", (pid,)).fetchone()

    def messages_for(self, user: str) -> list[dict]:
        with self.lock:
            rows = self.db.execute("SELECT id, sender, recipient, only_for_you, forwarded_from, created FROM messages "
                                   "WHERE sender = ? OR recipient = ? ORDER BY id DESC", (user, user)).fetchall()
        return [dict(r) for r in rows]

    def audit_log(self, limit: int = 100) -> list[dict]:
        with self.lock:
            rows = self.db.execute("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [dict(r) for r in rows]


def _account(name: str) -> str:
    if name not in ACCOUNTS:
        raise HTTPException(422, f"unknown account {name!r}; demo accounts: {', '.join(ACCOUNTS)}")
    return name


def mount_demo(app: FastAPI, engine, db_path: Path) -> None:
    store = Store(db_path)

    @app.get("/demo", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "demo.html", media_type="text/html")

    @app.get("/demo/api/accounts")
    async def accounts() -> dict:
        return {"accounts": list(ACCOUNTS)}

    @app.get("/demo/api/messages")
    async def messages(user: str) -> dict:
        return {"messages": store.messages_for(_account(user))}

    @app.get("/demo/api/audit")
    async def audit() -> dict:
        return {"audit": store.audit_log()}

    @app.get("/demo/api/pictures/{mid}")
    async def picture(mid: int, user: str) -> Response:
        msg = store.message(mid)
        if msg is None or user not in (msg["sender"], msg["recipient"]):
            raise HTTPException(404, "no such message for this account")
        pic = store.picture(msg["picture_id"])
        return Response(pic["data"], media_type=pic["mime"], headers={"Cache-Control": "no-store"})

    def blocked(user: str, action: str, target: str, check: dict) -> None:
        store.audit(user, action, target, check["reason"], check["score"])
        raise HTTPException(403, {"blocked": True, "reason": check["reason"], "score": check["score"]})

    @app.post("/demo/api/send")
    async def send(sender: str = Form(...), recipient: str = Form(...), only_for_you: bool = Form(False),
                   image: UploadFile = File(...)) -> dict:
        _account(sender), _account(recipient)
        name = image.filename or "upload"
        async with engine.inflight:
            data = await engine.read_upload(image)
            check = await engine.check_forward(data, name)
            if not check["allowed"]:
                blocked(sender, "upload", name, check)
            if only_for_you:
                data, fmt = await engine.protect(data, name)
                mime = {"JPEG": "image/jpeg", "WEBP": "image/webp"}.get(fmt, "image/png")
            else:
                mime = image.content_type if image.content_type in ("image/jpeg", "image/png", "image/webp") \
                    else "image/png"
        mid = store.add_message(sender, recipient, data, mime, only_for_you)
        return {"sent": True, "message_id": mid, "only_for_you": only_for_you, "score": check["score"]}

    @app.post("/demo/api/forward")
    async def forward(sender: str = Form(...), recipient: str = Form(...), message_id: int = Form(...)) -> dict:
        _account(sender), _account(recipient)
        msg = store.message(message_id)
        if msg is None or sender not in (msg["sender"], msg["recipient"]):
            raise HTTPException(404, "no such message for this account")
        pic = store.picture(msg["picture_id"])
        check = await engine.check_forward(bytes(pic["data"]), f"message {message_id}")
        if not check["allowed"]:
            blocked(sender, "forward", f"message {message_id}", check)
        mid = store.add_message(sender, recipient, bytes(pic["data"]), pic["mime"], False, forwarded_from=message_id)
        return {"sent": True, "message_id": mid, "score": check["score"]}
