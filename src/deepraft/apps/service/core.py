"""What the HTTP API and the /demo messenger share: settings, the one error shape, the
declared-length guard, upload names and the :class:`BoundedStamper` (the model behind its limits)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from fastapi import UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from deepraft.core.imageio import ALPHA_FORMATS, DEFAULT_MAX_PIXELS, ImageError, Picture, encode_image, read_image
from deepraft.runtime.stamper import Stamper

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff"}
FORM_OVERHEAD = 64 * 1024
"""Bytes allowed on top of ``max_body_bytes`` for the multipart framing and the small fields."""
DOCS_ASSETS = "/docs-assets"


@dataclass
class ServiceSettings:
    model: str = "default"
    device: str | None = None
    api_key: str | None = None
    """Required (X-API-Key or 'Authorization: Bearer') for /v1/protect and to open a demo
    session when set."""
    max_body_bytes: int = 25 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_concurrency: int = 2
    """Images decoded / run through the model at the same time."""
    demo: bool = False
    """Mount the /demo messenger (off unless asked for)."""
    demo_db: Path | None = None
    """SQLite file of the demo messenger (default: deepraft-demo.sqlite3 in the working folder)."""
    demo_quota_bytes: int = 50 * 2**20
    """Picture bytes one demo account may store."""

    @property
    def max_request_bytes(self) -> int:
        return self.max_body_bytes + FORM_OVERHEAD


# -- the one error shape ---------------------------------------------------------------------
class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer of the service."""

    error: str = Field(description="What went wrong, one line of plain text.")
    status: int = Field(description="The HTTP status code, repeated.")
    blocked: bool | None = Field(None, description="Demo only: refused because the picture carries the stamp.")
    score: float | None = Field(None, description="Scanner score of the refused or already stamped picture.")
    threshold: float | None = Field(None, description="The threshold the score was compared with.")
    fields: list[str] | None = Field(None, description="For 422: the request fields that were missing or invalid.")


def error_doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: error_doc("The request could not be parsed."),
    413: error_doc("The body is over --max-body-mb, or the image over --max-pixels."),
    415: error_doc("The upload is not a recognised image."),
    422: error_doc("A field is missing or invalid, or the image is empty, truncated or corrupt."),
    500: error_doc("An unexpected server error."),
}


class ServiceError(StarletteHTTPException):
    """An HTTP error with extra :class:`ErrorBody` fields."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(status_code, detail, headers)
        self.extra = extra


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = ErrorBody(error=message, status=status, **extra).model_dump(exclude_none=True)
    headers = dict(headers or {})
    if status == 413:
        headers["Connection"] = "close"  # do not read (or drain) the rest of an oversized body
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> tuple[str, list[str]]:
    fields, parts = [], []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path", "header", "cookie")]
        name = ".".join(loc) or "body"
        fields.append(name)
        parts.append(f"{name}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request", fields


class DeclaredLengthLimit:
    """Refuses a request whose declared Content-Length is over the limit before reading a byte of
    it (FastAPI's ``max_body_size`` counts the bytes of a streamed body as they arrive)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"content-length":
                    if not value.isdigit():
                        await error_response(400, "invalid Content-Length header")(scope, receive, send)
                        return
                    if int(value) > self.max_bytes:
                        msg = f"request body larger than {self.max_bytes} bytes"
                        await error_response(413, msg)(scope, receive, send)
                        return
        await self.app(scope, receive, send)


# -- decoding and the model ----------------------------------------------------------------
def http_error(exc: ImageError, name: str) -> ServiceError:
    """413 for images over the pixel limit, 415 for what is not an image, 422 for broken ones."""
    message = f"{name}: {exc.problem}"
    if "over the limit" in exc.problem or "decompression bomb" in exc.problem:
        return ServiceError(413, message)
    if "not a recognised image" in exc.problem:
        return ServiceError(415, message)
    return ServiceError(422, message)


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f]")


def upload_name(upload: UploadFile, default: str = "image") -> str:
    """The client's file name, for messages only: control characters removed, at most 120
    characters (it is user input: never used as a path, always rendered as text)."""
    name = _UNSAFE_NAME.sub("", upload.filename or "").strip()[:120]
    return name or default


class BoundedStamper:
    """The model plus the limits around it, shared by the API and the demo."""

    def __init__(self, stamper: Stamper, settings: ServiceSettings) -> None:
        self.stamper = stamper
        self.settings = settings
        self.limiter = anyio.CapacityLimiter(max(1, settings.max_concurrency))
        # at most this many request bodies are held in memory at once; the rest wait (their
        # uploads stay spooled to disk by the multipart parser)
        self.inflight = anyio.Semaphore(4 * max(1, settings.max_concurrency))

    async def read_upload(self, upload: UploadFile, name: str) -> bytes:
        limit = self.settings.max_body_bytes
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise ServiceError(413, f"{name}: larger than {limit} bytes")
        if not data:
            raise ServiceError(422, f"{name}: empty file")
        return data

    def decode(self, data: bytes, name: str) -> Picture:
        """Decode upload bytes; an unusable image is the matching HTTP error (413, 415, 422)."""
        try:
            return read_image(data, source=name, max_pixels=self.settings.max_pixels, quiet=True)
        except ImageError as exc:
            raise http_error(exc, name) from exc

    def _protect(self, data: bytes, name: str, force: bool) -> tuple[bytes, str]:
        pic = self.decode(data, name)
        if not force:
            # one scan of the decoded picture at the card's calibrated threshold
            r = self.stamper.scan(pic)
            if r.protected:
                raise ServiceError(
                    409,
                    f"{name}: already carries the stamp (score {r.score:.2f} > threshold "
                    f"{r.threshold:.2f}); send force=true to stamp it again",
                    score=r.score,
                    threshold=r.threshold,
                )
        fmt = pic.format if pic.format in MIME else "PNG"
        if pic.alpha is not None and fmt not in ALPHA_FORMATS:
            fmt = "PNG"
        out = self.stamper.protect(pic)
        return encode_image(out, fmt, quality=95), fmt

    def _scan(self, data: bytes, name: str) -> dict:
        try:
            r = self.stamper.scan_file(data)  # the fast path: reduced-scale decoding
        except ImageError as exc:
            raise http_error(exc, name) from exc
        return {"protected": r.protected, "score": r.score, "threshold": r.threshold, "model": self.stamper.card.name}

    async def protect(self, data: bytes, name: str, force: bool = False) -> tuple[bytes, str]:
        return await anyio.to_thread.run_sync(self._protect, data, name, force, limiter=self.limiter)

    async def scan(self, data: bytes, name: str) -> dict:
        return await anyio.to_thread.run_sync(self._scan, data, name, limiter=self.limiter)

    async def protect_upload(self, upload: UploadFile, force: bool = False) -> tuple[bytes, str]:
        name = upload_name(upload)
        async with self.inflight:
            return await self.protect(await self.read_upload(upload, name), name, force)

    async def scan_upload(self, upload: UploadFile) -> dict:
        name = upload_name(upload)
        async with self.inflight:
            return await self.scan(await self.read_upload(upload, name), name)

    async def check_forward_upload(self, upload: UploadFile) -> dict:
        name = upload_name(upload)
        async with self.inflight:
            return await self.check_forward(await self.read_upload(upload, name), name)

    async def check_forward(self, data: bytes, name: str) -> dict:
        r = await self.scan(data, name)
        if r["protected"]:
            reason = "This picture was sent 'only for you': it cannot be forwarded or uploaded again."
        else:
            reason = "No 'only for you' stamp found."
        return {"allowed": not r["protected"], "reason": reason, **r}


# -- response models -------------------------------------------------------------------------
class Health(BaseModel):
    status: str
    model: str


class ScanAnswer(BaseModel):
    protected: bool = Field(description="True when the score is above the threshold.")
    score: float = Field(description="The scanner's logit; higher: more likely stamped.")
    threshold: float = Field(description="The model card's threshold at its default false-positive rate.")
    model: str


class ForwardAnswer(ScanAnswer):
    allowed: bool = Field(description="False when the picture carries the stamp: refuse the forward.")
    reason: str


def key_matches(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())


def given_key(x_api_key: str | None, authorization: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None
