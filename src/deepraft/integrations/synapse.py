"""deepraft in a Matrix homeserver: a Synapse module that makes "only for you" real.

    modules:
      - module: deepraft.integrations.synapse.DeepraftModule
        config:
          state_db: /var/lib/synapse/deepraft.sqlite3   # the pictures sent "only for you"
          model: default                               # scan in process with this model, or
          # service_url: http://127.0.0.1:8000           # scan (and stamp) in the deepraft service
          # service_api_key: ...                          # its key, for /v1/protect
          fail_open: false                              # a scanner failure rejects (true: lets through)

The flow, as a client (Element or a bot) uses it:

1. **Send "only for you"**: ``POST /_deepraft/v1/protect?room_id=!room`` with the picture as
   the body and the user's access token. The module checks the user is joined to the room,
   stamps the picture and answers with the stamped bytes, remembering their SHA-256 for that
   room (for ``allowance_ttl_s``). The client uploads those bytes to the media repository as
   usual and sends the ``m.image`` event in that room: both pass.
2. **Forward**: an event that refers to a protected upload (``mxc://`` URL, or thumbnail) in any
   other room is rejected (``check_event_for_spam``): Element's forward re-uses the media URL.
3. **Re-upload**: every other local upload is scanned (``check_media_file_for_spam``); a
   picture that carries the stamp (saved, cropped, screenshotted, re-encoded) is rejected at
   upload. Files that are not pictures pass untouched.
4. **Failures**: when the scanner cannot answer (the service is down, the model fails), the
   upload is rejected or let through as ``fail_open`` says, and the failure is logged.

State lives in the SQLite file ``state_db`` (WAL mode), so several Synapse workers on one
machine share it; the scan runs in Synapse's thread pool, never on the reactor.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from deepraft.core.imageio import ImageError, encode_image, read_image

if TYPE_CHECKING:
    from synapse.module_api import ModuleApi

logger = logging.getLogger(__name__)

PROTECT_PATH = "/_deepraft/v1/protect"
MEDIA_MSGTYPES = ("m.image", "m.file", "m.video", "m.sticker")


@dataclass(frozen=True)
class ModuleConfig:
    """The module's ``config`` section of ``homeserver.yaml``."""

    state_db: str
    model: str = "default"
    service_url: str | None = None
    service_api_key: str | None = None
    fail_open: bool = False
    fpr: float | None = None
    allowance_ttl_s: float = 600.0
    max_upload_bytes: int = 50_000_000
    timeout_s: float = 30.0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ModuleConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(
                f"deepraft module config: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        if not raw.get("state_db"):
            raise ValueError("deepraft module config: state_db (a SQLite file the module may write) is required")
        return cls(**raw)


@dataclass(frozen=True)
class Verdict:
    protected: bool
    score: float


class Scanner(Protocol):
    def scan(self, data: bytes, name: str) -> Verdict: ...

    def protect(self, data: bytes, name: str) -> tuple[bytes, str]: ...


class InProcessScanner:
    """The bundled (or configured) model in this process, loaded on first use."""

    def __init__(self, model: str, fpr: float | None) -> None:
        self.model, self.fpr = model, fpr
        self._stamper: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._stamper is None:
                from deepraft.runtime.stamper import load

                self._stamper = load(self.model, device="cpu")
            return self._stamper

    def scan(self, data: bytes, name: str) -> Verdict:
        r = self._get().scan_file(data, fpr=self.fpr)
        return Verdict(r.protected, r.score)

    def protect(self, data: bytes, name: str) -> tuple[bytes, str]:
        stamper = self._get()
        pic = read_image(data, name, max_pixels=stamper.max_pixels)
        out = stamper.protect(pic)
        fmt = "JPEG" if pic.format == "JPEG" else "PNG"
        return encode_image(out, fmt, quality=95), "image/jpeg" if fmt == "JPEG" else "image/png"


class ServiceScanner:
    """The deepraft HTTP service (``deepraft serve``): one scanner for many homeserver workers."""

    def __init__(self, url: str, api_key: str | None, timeout_s: float) -> None:
        self.url, self.api_key, self.timeout_s = url.rstrip("/"), api_key, timeout_s

    def _post(self, path: str, data: bytes, name: str) -> tuple[bytes, str]:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        req = urllib.request.Request(self.url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            if exc.code in (400, 415, 422):  # not a picture; 413 (too large) is a failure
                raise ImageError(name, f"the deepraft service refused it ({exc.code}): {detail}") from exc
            raise

    def scan(self, data: bytes, name: str) -> Verdict:
        answer = json.loads(self._post("/v1/scan", data, name)[0])
        return Verdict(bool(answer["protected"]), float(answer["score"]))

    def protect(self, data: bytes, name: str) -> tuple[bytes, str]:
        return self._post("/v1/protect", data, name)


class ProtectedMedia:
    """Which uploads were sent "only for you", and in which room (a SQLite file)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS allowance "
                "(sha256 TEXT PRIMARY KEY, user_id TEXT, room_id TEXT, expires REAL)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS protected (media_id TEXT PRIMARY KEY, room_id TEXT, user_id TEXT)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30, isolation_level=None)

    def allow(self, digest: str, user_id: str, room_id: str, ttl_s: float) -> None:
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO allowance VALUES (?, ?, ?, ?)", (digest, user_id, room_id, time.time() + ttl_s)
            )

    def claim(self, digest: str, media_id: str) -> str | None:
        """The room an upload of exactly these bytes was stamped for (the allowance is used up
        and the upload recorded as protected there), or None."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT user_id, room_id FROM allowance WHERE sha256 = ? AND expires > ?", (digest, time.time())
            ).fetchone()
            if row is None:
                db.execute("COMMIT")
                return None
            db.execute("DELETE FROM allowance WHERE sha256 = ?", (digest,))
            db.execute("INSERT OR REPLACE INTO protected VALUES (?, ?, ?)", (media_id, row[1], row[0]))
            db.execute("COMMIT")
            return str(row[1])

    def room_of(self, media_id: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT room_id FROM protected WHERE media_id = ?", (media_id,)).fetchone()
        return None if row is None else str(row[0])


def looks_like_a_picture(head: bytes) -> bool:
    """Whether Pillow recognises the first bytes of a file as a picture (only the header is read)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(head)):
            return True
    except (UnidentifiedImageError, OSError, ValueError):
        return False


def media_ids(content: Mapping[str, Any], server_name: str) -> list[str]:
    """The local media IDs an event's content refers to (its file and its thumbnail; plain or
    encrypted attachments)."""
    urls = [content.get("url"), (content.get("file") or {}).get("url")]
    info = content.get("info") or {}
    urls += [info.get("thumbnail_url"), (info.get("thumbnail_file") or {}).get("url")]
    out = []
    for url in urls:
        if isinstance(url, str) and url.startswith("mxc://"):
            server, _, media_id = url[len("mxc://") :].partition("/")
            if server == server_name and media_id:
                out.append(media_id)
    return out


class DeepraftModule:
    """The Synapse module (see the module docstring for the flow and the config)."""

    def __init__(self, config: ModuleConfig, api: ModuleApi) -> None:
        from synapse.module_api import NOT_SPAM
        from synapse.module_api.errors import Codes

        self.config, self.api = config, api
        self.not_spam, self.forbidden = NOT_SPAM, Codes.FORBIDDEN
        self.store = ProtectedMedia(Path(config.state_db))
        self.scanner: Scanner = (
            ServiceScanner(config.service_url, config.service_api_key, config.timeout_s)
            if config.service_url
            else InProcessScanner(config.model, config.fpr)
        )
        api.register_spam_checker_callbacks(
            check_event_for_spam=self.check_event_for_spam, check_media_file_for_spam=self.check_media_file_for_spam
        )
        api.register_web_resource(PROTECT_PATH, _protect_resource(self))

    @staticmethod
    def parse_config(config: dict[str, Any]) -> ModuleConfig:
        return ModuleConfig.parse(config or {})

    async def check_media_file_for_spam(self, file_wrapper: Any, file_info: Any) -> Any:
        if file_info.server_name or file_info.thumbnail or file_info.url_cache:
            return self.not_spam  # remote media, thumbnails and URL previews: not an upload
        buf = bytearray()
        limit = self.config.max_upload_bytes

        def keep(chunk: bytes) -> None:
            if len(buf) <= limit:  # past the limit the rest is read but not kept
                buf.extend(chunk)

        await file_wrapper.write_chunks_to(keep)
        data = bytes(buf)
        if len(data) > limit:
            if not looks_like_a_picture(data[:65536]):
                return self.not_spam  # a large file that is not a picture (a video, an archive)
            return self._unscanned(file_info.file_id, f"a picture larger than max_upload_bytes ({limit:,})")
        room = self.store.claim(hashlib.sha256(data).hexdigest(), file_info.file_id)
        if room is not None:
            logger.info("deepraft: upload %s is the picture stamped for %s", file_info.file_id, room)
            return self.not_spam
        try:
            verdict = await self.api.defer_to_thread(self.scanner.scan, data, file_info.file_id)
        except ImageError as exc:
            if "over the limit" in exc.problem:  # a picture too large to scan is not let through unscanned
                return self._unscanned(file_info.file_id, exc.problem)
            return self.not_spam  # not a picture: not ours to judge
        except Exception:
            logger.exception(
                "deepraft: scan of upload %s failed; fail_open=%s", file_info.file_id, self.config.fail_open
            )
            return self.not_spam if self.config.fail_open else self.forbidden
        if verdict.protected:
            logger.info(
                "deepraft: upload %s carries the stamp (score %.2f): rejected", file_info.file_id, verdict.score
            )
            return self.forbidden
        return self.not_spam

    def _unscanned(self, media_id: str, why: str) -> Any:
        """An upload that could not be scanned: the failure policy decides, and the log says why."""
        logger.warning("deepraft: upload %s not scanned (%s); fail_open=%s", media_id, why, self.config.fail_open)
        return self.not_spam if self.config.fail_open else self.forbidden

    async def check_event_for_spam(self, event: Any) -> Any:
        content = event.content if isinstance(event.content, Mapping) else {}  # Synapse's are immutable
        if content.get("msgtype") not in MEDIA_MSGTYPES and event.type != "m.sticker":
            return self.not_spam
        for media_id in media_ids(content, self.api.server_name):
            room = self.store.room_of(media_id)
            if room is not None and room != event.room_id:
                logger.info(
                    "deepraft: %s forwards %s (only for %s) into %s: rejected",
                    event.sender,
                    media_id,
                    room,
                    event.room_id,
                )
                return self.forbidden
        return self.not_spam

    async def protect(self, request: Any) -> tuple[bytes, str]:
        """The protect route's work: the caller, joined to ``room_id``, gets the stamped bytes."""
        from synapse.module_api.errors import SynapseError

        requester = await self.api.get_user_by_req(request)
        user_id = requester.user.to_string()
        room_id = (request.args.get(b"room_id") or [b""])[0].decode()
        if not room_id:
            raise SynapseError(400, "room_id is required", "M_MISSING_PARAM")
        state = await self.api.get_room_state(room_id, [("m.room.member", user_id)])
        member = state.get(("m.room.member", user_id))
        if member is None or member.content.get("membership") != "join":
            raise SynapseError(403, f"{user_id} is not joined to {room_id}", "M_FORBIDDEN")
        data = request.content.read(self.config.max_upload_bytes + 1)
        if len(data) > self.config.max_upload_bytes:
            raise SynapseError(413, "picture too large", "M_TOO_LARGE")
        try:
            stamped, mime = await self.api.defer_to_thread(self.scanner.protect, data, "upload")
        except ImageError as exc:
            raise SynapseError(400, str(exc), "M_INVALID_PARAM") from exc
        self.store.allow(hashlib.sha256(stamped).hexdigest(), user_id, room_id, self.config.allowance_ttl_s)
        return stamped, mime


def _protect_resource(module: DeepraftModule) -> Any:
    from synapse.module_api import DirectServeJsonResource

    class ProtectResource(DirectServeJsonResource):
        async def _async_render_POST(self, request: Any) -> None:
            stamped, mime = await module.protect(request)
            request.setResponseCode(200)
            request.setHeader(b"Content-Type", mime.encode())
            request.setHeader(b"Content-Length", str(len(stamped)).encode())
            request.write(stamped)
            request.finish()

    return ProtectResource()
