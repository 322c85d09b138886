"""The demo messenger at ``/demo`` (mounted only with ``deepraft serve --demo``): three accounts
exchange pictures; "only for you" pictures are stamped on send, and every send or forward is
scanned, so a stamped picture cannot travel further, even after it was saved, cropped or
re-compressed. Messages, pictures, sessions and the audit log of blocked attempts live in one
SQLite file.

Who may do what:

* Nothing works without a demo session. A session is opened by ``POST /demo/api/session``
  with the API key (when the server has one) and names one account; the server answers with
  a random token in an HttpOnly, SameSite=Strict cookie (only its SHA-256 is stored). The
  account comes from that session, never from a query or form field.
* An account sees only its own messages, pictures and audit entries, and stores at most
  ``demo_quota_bytes`` of pictures.
* Pages and pictures carry a Content-Security-Policy (no inline script, pictures sandboxed)
  and ``X-Content-Type-Options: nosniff``; the page renders user-supplied text as text.
* SQLite runs in worker threads, never on the event loop.
"""

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Cookie, Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from deepraft.apps.service.core import (
    BoundedStamper,
    ErrorBody,
    ServiceError,
    ServiceSettings,
    error_doc,
    given_key,
    key_matches,
    upload_name,
)
from deepraft.core.imageio import encode_image

ACCOUNTS = ("alice", "bob", "carol")
STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "deepraft_demo"
SESSION_SECONDS = 12 * 3600
SCHEMA_VERSION = 2
MAX_ID = 2**63 - 1  # SQLite's INTEGER range

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PICTURE_CSP = "default-src 'none'; sandbox"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS pictures (
    id INTEGER PRIMARY KEY, owner TEXT NOT NULL, data BLOB NOT NULL, mime TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY, sender TEXT NOT NULL, recipient TEXT NOT NULL, picture_id INTEGER NOT NULL,
    only_for_you INTEGER NOT NULL, forwarded_from INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, user TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, reason TEXT NOT NULL, score REAL);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, account TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL);
"""
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


class QuotaExceeded(Exception):
    pass


class Store:
    """A small SQLite store; one connection guarded by a lock. Its methods block: call them
    through :meth:`run` (a worker thread), never on the event loop."""

    def __init__(self, path: Path, quota_bytes: int) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.quota = quota_bytes
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.lock = threading.Lock()
        self.limiter = anyio.CapacityLimiter(1)
        with self.lock:
            if self.db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                # a demo file from an older version: its layout had no owners or sessions
                self.db.executescript(
                    "DROP TABLE IF EXISTS pictures; DROP TABLE IF EXISTS messages; "
                    "DROP TABLE IF EXISTS audit; DROP TABLE IF EXISTS sessions;"
                )
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.commit()

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread (SQLite never runs on the event loop)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    # -- sessions ------------------------------------------------------------------------
    @staticmethod
    def _hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def open_session(self, account: str) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.lock:
            self.db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            self.db.execute(
                "INSERT INTO sessions (token_hash, account, created, expires) VALUES (?, ?, ?, ?)",
                (self._hash(token), account, now, now + SESSION_SECONDS),
            )
            self.db.commit()
        return token

    def session_account(self, token: str) -> str | None:
        with self.lock:
            row = self.db.execute(
                "SELECT account, expires FROM sessions WHERE token_hash = ?", (self._hash(token),)
            ).fetchone()
        return row["account"] if row is not None and row["expires"] > time.time() else None

    def close_session(self, token: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM sessions WHERE token_hash = ?", (self._hash(token),))
            self.db.commit()

    # -- messages ------------------------------------------------------------------------
    def used_bytes(self, owner: str) -> int:
        with self.lock:
            return int(
                self.db.execute("SELECT COALESCE(SUM(size), 0) FROM pictures WHERE owner = ?", (owner,)).fetchone()[0]
            )

    def add_message(self, sender: str, recipient: str, data: bytes, mime: str, only_for_you: bool) -> int:
        with self.lock:
            used = int(
                self.db.execute("SELECT COALESCE(SUM(size), 0) FROM pictures WHERE owner = ?", (sender,)).fetchone()[0]
            )
            if used + len(data) > self.quota:
                raise QuotaExceeded(
                    f"account {sender}: storage quota of {self.quota} bytes reached "
                    f"({used} used, {len(data)} more asked)"
                )
            pid = self.db.execute(
                "INSERT INTO pictures (owner, data, mime, size) VALUES (?, ?, ?, ?)", (sender, data, mime, len(data))
            ).lastrowid
            mid = self.db.execute(
                "INSERT INTO messages (sender, recipient, picture_id, only_for_you, forwarded_from, created) "
                "VALUES (?, ?, ?, ?, NULL, ?)",
                (sender, recipient, pid, int(only_for_you), time.time()),
            ).lastrowid
            self.db.commit()
        assert mid is not None  # an INSERT always has a row id
        return int(mid)

    def forward(self, sender: str, recipient: str, message_id: int, picture_id: int) -> int:
        """A forwarded message points at the same picture: no copy, no quota."""
        with self.lock:
            mid = self.db.execute(
                "INSERT INTO messages (sender, recipient, picture_id, only_for_you, forwarded_from, created) "
                "VALUES (?, ?, ?, 0, ?, ?)",
                (sender, recipient, picture_id, message_id, time.time()),
            ).lastrowid
            self.db.commit()
        assert mid is not None  # an INSERT always has a row id
        return int(mid)

    def audit(self, user: str, action: str, target: str, reason: str, score: float | None) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO audit (created, user, action, target, reason, score) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), user, action, target, reason, score),
            )
            self.db.commit()

    def message_for(self, mid: int, account: str) -> dict | None:
        """The message if ``account`` sent or received it."""
        with self.lock:
            row = self.db.execute(
                "SELECT * FROM messages WHERE id = ? AND (sender = ? OR recipient = ?)", (mid, account, account)
            ).fetchone()
        return dict(row) if row is not None else None

    def picture(self, pid: int) -> tuple[bytes, str]:
        with self.lock:
            row = self.db.execute("SELECT data, mime FROM pictures WHERE id = ?", (pid,)).fetchone()
        return bytes(row["data"]), row["mime"]

    def messages_for(self, user: str) -> list[dict]:
        with self.lock:
            rows = self.db.execute(
                "SELECT id, sender, recipient, only_for_you, forwarded_from, created FROM messages "
                "WHERE sender = ? OR recipient = ? ORDER BY id DESC",
                (user, user),
            ).fetchall()
        return [dict(r) | {"only_for_you": bool(r["only_for_you"])} for r in rows]

    def audit_log(self, user: str, limit: int = 100) -> list[dict]:
        with self.lock:
            rows = self.db.execute(
                "SELECT created, user, action, target, reason, score FROM audit WHERE user = ? "
                "ORDER BY id DESC LIMIT ?",
                (user, limit),
            ).fetchall()
        return [dict(r) for r in rows]


# -- answers -------------------------------------------------------------------------------
class Me(BaseModel):
    account: str
    quota_bytes: int
    used_bytes: int


class Accounts(BaseModel):
    accounts: list[str]


class Message(BaseModel):
    id: int
    sender: str
    recipient: str
    only_for_you: bool
    forwarded_from: int | None
    created: float


class Messages(BaseModel):
    messages: list[Message]


class AuditEntry(BaseModel):
    created: float
    user: str
    action: str
    target: str
    reason: str
    score: float | None


class Audit(BaseModel):
    audit: list[AuditEntry]


class Sent(BaseModel):
    sent: bool
    message_id: int
    only_for_you: bool
    score: float


def _account(name: str) -> str:
    if name not in ACCOUNTS:
        raise ServiceError(422, f"unknown account; demo accounts: {', '.join(ACCOUNTS)}", fields=["account"])
    return name


def _mime(data: bytes) -> str | None:
    for magic, mime in MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _secured(response: Response, csp: str = PAGE_CSP) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Security-Policy"] = csp
    return response


def _same_origin(request: Request) -> None:
    """Refuses a state-changing request sent by another site's page (besides the
    SameSite=Strict cookie)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        raise ServiceError(403, "cross-origin request refused")


def _session_type(store: Store) -> Any:
    """``Annotated[str, Depends(session)]``: the signed-in account of a request (401 without one)."""

    async def session(
        request: Request, deepraft_demo: Annotated[str | None, Cookie(include_in_schema=False)] = None
    ) -> str:
        account = await store.run(store.session_account, deepraft_demo) if deepraft_demo else None
        if account is None:
            raise ServiceError(401, "sign in to the demo first (POST /demo/api/session)")
        if request.method not in ("GET", "HEAD"):
            _same_origin(request)
        return account

    return Annotated[str, Depends(session)]


UNAUTHORISED: dict[int | str, dict[str, Any]] = {
    401: error_doc("No demo session (sign in with POST /demo/api/session).")
}
BLOCKED_DOC: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorBody,
        "description": "Blocked: the picture carries the stamp (blocked=true), or a cross-origin request.",
    }
}


def mount_demo(app: FastAPI, bounded: BoundedStamper, db_path: Path) -> None:
    """The /demo messenger: its page, sessions, messages and the send and forward checks."""
    store = Store(db_path, bounded.settings.demo_quota_bytes)
    app.state.demo_store = store
    session = _session_type(store)
    _add_pages(app)
    _add_session_routes(app, bounded.settings, store, session)
    _add_read_routes(app, store, session)
    _add_send_routes(app, bounded, store, session)


def _add_pages(app: FastAPI) -> None:
    @app.get("/demo", include_in_schema=False)
    async def page() -> Response:
        return _secured(FileResponse(STATIC / "demo.html", media_type="text/html"))

    @app.get("/demo/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        media = {"demo.js": "text/javascript", "demo.css": "text/css"}.get(name)
        if media is None:
            raise ServiceError(404, "no such file")
        return _secured(FileResponse(STATIC / name, media_type=media))


def _add_session_routes(app: FastAPI, settings: ServiceSettings, store: Store, Session: Any) -> None:
    @app.post(
        "/demo/api/session",
        max_body_size=settings.max_request_bytes,
        responses={
            401: error_doc("The API key is missing or wrong."),
            403: error_doc("Sent from another site's page."),
        },
    )
    async def sign_in(
        request: Request,
        account: Annotated[str, Form(description="alice, bob or carol")],
        x_api_key: Annotated[str | None, Header()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """Open a demo session for one account (needs the API key when the server has one); the
        session is an HttpOnly cookie."""
        _same_origin(request)
        if settings.api_key and not key_matches(given_key(x_api_key, authorization), settings.api_key):
            raise ServiceError(
                401, "the API key is required to open a demo session", headers={"WWW-Authenticate": "Bearer"}
            )
        account = _account(account)
        token = await store.run(store.open_session, account)
        response = JSONResponse({"account": account})
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_SECONDS,
            path="/demo",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @app.delete("/demo/api/session", responses=UNAUTHORISED)
    async def sign_out(
        account: Session,
        deepraft_demo: Annotated[str | None, Cookie(include_in_schema=False)] = None,
    ) -> JSONResponse:
        """Close this demo session."""
        if deepraft_demo:
            await store.run(store.close_session, deepraft_demo)
        response = JSONResponse({"account": account, "signed_out": True})
        response.delete_cookie(COOKIE, path="/demo")
        return response

    @app.get("/demo/api/me", responses=UNAUTHORISED)
    async def me(account: Session) -> Me:
        return Me(account=account, quota_bytes=store.quota, used_bytes=await store.run(store.used_bytes, account))

    @app.get("/demo/api/accounts")
    async def accounts() -> Accounts:
        return Accounts(accounts=list(ACCOUNTS))


def _add_read_routes(app: FastAPI, store: Store, Session: Any) -> None:
    @app.get("/demo/api/messages", responses=UNAUTHORISED)
    async def messages(account: Session) -> Messages:
        """This account's messages (sent and received)."""
        return Messages(messages=await store.run(store.messages_for, account))

    @app.get("/demo/api/audit", responses=UNAUTHORISED)
    async def audit(account: Session) -> Audit:
        """This account's blocked attempts."""
        return Audit(audit=await store.run(store.audit_log, account))

    @app.get(
        "/demo/api/pictures/{mid}",
        responses={
            **UNAUTHORISED,
            404: error_doc("No such message for this account."),
            200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}, "description": "The picture."},
        },
    )
    async def picture(mid: Annotated[int, PathParam(ge=1, le=MAX_ID)], account: Session) -> Response:
        msg = await store.run(store.message_for, mid, account)
        if msg is None:
            raise ServiceError(404, "no such message for this account")
        data, mime = await store.run(store.picture, msg["picture_id"])
        return _secured(Response(data, media_type=mime), PICTURE_CSP)


async def _blocked(store: Store, user: str, action: str, target: str, check: dict[str, Any]) -> None:
    await store.run(store.audit, user, action, target, check["reason"], check["score"])
    raise ServiceError(403, check["reason"], blocked=True, score=check["score"], threshold=check["threshold"])


async def _stored_form(bounded: BoundedStamper, data: bytes, name: str) -> tuple[bytes, str]:
    """The bytes to store for a picture sent as is: its own bytes when the type is known, else a PNG."""
    mime = _mime(data)
    if mime is not None:
        return data, mime

    def to_png() -> bytes:
        return encode_image(bounded.decode(data, name), "PNG")

    return await anyio.to_thread.run_sync(to_png, limiter=bounded.limiter), "image/png"


async def _stamp_or_keep(
    bounded: BoundedStamper, store: Store, account: str, data: bytes, name: str, only_for_you: bool
) -> tuple[bytes, str, dict[str, Any]]:
    """(bytes to store, MIME type, the forward check) of an upload: refused over the quota or
    when it carries the stamp; stamped when sent "only for you"."""
    used = await store.run(store.used_bytes, account)
    if used + len(data) > store.quota:  # before any model work; checked again on insert
        raise ServiceError(413, f"account {account}: storage quota of {store.quota} bytes reached")
    check = await bounded.check_forward(data, name)
    if not check["allowed"]:
        await _blocked(store, account, "upload", name, check)
    if only_for_you:
        data, fmt = await bounded.protect(data, name, force=True)  # just scanned: not stamped
        return data, {"JPEG": "image/jpeg", "WEBP": "image/webp"}.get(fmt, "image/png"), check
    data, mime = await _stored_form(bounded, data, name)
    return data, mime, check


def _add_send_routes(app: FastAPI, bounded: BoundedStamper, store: Store, Session: Any) -> None:
    limit = bounded.settings.max_request_bytes

    @app.post(
        "/demo/api/send",
        max_body_size=limit,
        responses={**UNAUTHORISED, **BLOCKED_DOC, 413: error_doc("Over the body, pixel or storage limit.")},
    )
    async def send(
        account: Session,
        recipient: Annotated[str, Form()],
        image: Annotated[UploadFile, File()],
        only_for_you: Annotated[bool, Form()] = False,
    ) -> Sent:
        """Send a picture from this account; "only for you" pictures are stamped."""
        _account(recipient)
        name = upload_name(image, "upload")
        async with bounded.inflight:
            data = await bounded.read_upload(image, name)
            data, mime, check = await _stamp_or_keep(bounded, store, account, data, name, only_for_you)
        try:
            mid = await store.run(store.add_message, account, recipient, data, mime, only_for_you)
        except QuotaExceeded as exc:
            raise ServiceError(413, str(exc)) from exc
        return Sent(sent=True, message_id=mid, only_for_you=only_for_you, score=check["score"])

    @app.post(
        "/demo/api/forward",
        max_body_size=limit,
        responses={**UNAUTHORISED, **BLOCKED_DOC, 404: error_doc("No such message for this account.")},
    )
    async def forward(
        account: Session, recipient: Annotated[str, Form()], message_id: Annotated[int, Form(ge=1, le=MAX_ID)]
    ) -> Sent:
        """Forward a message this account sent or received; stamped pictures are blocked."""
        _account(recipient)
        msg = await store.run(store.message_for, message_id, account)
        if msg is None:
            raise ServiceError(404, "no such message for this account")
        data, _ = await store.run(store.picture, msg["picture_id"])
        check = await bounded.check_forward(data, f"message {message_id}")
        if not check["allowed"]:
            await _blocked(store, account, "forward", f"message {message_id}", check)
        mid = await store.run(store.forward, account, recipient, message_id, msg["picture_id"])
        return Sent(sent=True, message_id=mid, only_for_you=False, score=check["score"])
