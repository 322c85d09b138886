"""``deepraft serve``: the HTTP API a platform calls on send (protect) and on forward (scan).

The service is a thin caller of :class:`deepraft.Stamper`. Image bytes are decoded and checked
(never trusting the declared content type); model work runs in worker threads behind a
capacity limiter, so the event loop keeps answering and memory stays bounded under load.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, File, Header, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from ..api import Stamper, load
from ..imageio import (
    ALPHA_FORMATS,
    ImageError,
    Picture,
    encode_image,
    read_image,
    read_work_copy,
)

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff"}


@dataclass
class ServiceSettings:
    model: str = "default"
    device: str | None = None
    api_key: str | None = None
    """Required (X-API-Key or 'Authorization: Bearer') for /v1/protect when set."""
    max_body_bytes: int = 25 * 2**20
    max_pixels: int = 50_000_000
    max_concurrency: int = 2
    """Images decoded / run through the model at the same time."""
    demo_db: Path | None = None
    """SQLite file of the demo messenger (None: no /demo)."""


class ServiceError(HTTPException):
    pass


def _http_error(exc: ImageError) -> ServiceError:
    """413 for images over the pixel limit, 415 for what is not an image, 422 for broken ones."""
    if "over the limit" in exc.problem or "decompression bomb" in exc.problem:
        return ServiceError(413, str(exc))
    if "not a recognised image" in exc.problem:
        return ServiceError(415, str(exc))
    return ServiceError(422, str(exc))


def _decode(data: bytes, name: str, max_pixels: int) -> Picture:
    if not data:
        raise ServiceError(422, f"{name}: empty file")
    try:
        return read_image(data, source=name, max_pixels=max_pixels)
    except ImageError as exc:
        raise _http_error(exc) from exc


class Engine:
    """The model plus the limits around it, shared by the API and the demo."""

    def __init__(self, stamper: Stamper, settings: ServiceSettings) -> None:
        self.stamper = stamper
        self.settings = settings
        self.limiter = anyio.CapacityLimiter(max(1, settings.max_concurrency))
        # at most this many request bodies are held in memory at once; the rest wait (their
        # uploads stay spooled to disk by the multipart parser)
        self.inflight = anyio.Semaphore(4 * max(1, settings.max_concurrency))

    async def read_upload(self, upload: UploadFile) -> bytes:
        data = await upload.read(self.settings.max_body_bytes + 1)
        if len(data) > self.settings.max_body_bytes:
            raise ServiceError(413, f"{upload.filename or 'image'}: larger than {self.settings.max_body_bytes} bytes")
        return data

    def _protect(self, data: bytes, name: str) -> tuple[bytes, str]:
        pic = _decode(data, name, self.settings.max_pixels)
        fmt = pic.format if pic.format in MIME else "PNG"
        if pic.alpha is not None and fmt not in ALPHA_FORMATS:
            fmt = "PNG"
        out = self.stamper.protect_pictures([pic])[0]
        return encode_image(out, fmt, quality=95), fmt

    def _scan(self, data: bytes, name: str) -> dict:
        if not data:
            raise ServiceError(422, f"{name}: empty file")
        try:
            work = read_work_copy(data, self.stamper.work_size, source=name, max_pixels=self.settings.max_pixels)
        except ImageError as exc:
            raise _http_error(exc) from exc
        r = self.stamper.scan_work_copies([work])[0]
        return {"protected": r.protected, "score": r.score, "threshold": r.threshold, "model": self.stamper.card.name}

    async def protect(self, data: bytes, name: str) -> tuple[bytes, str]:
        return await anyio.to_thread.run_sync(self._protect, data, name, limiter=self.limiter)

    async def scan(self, data: bytes, name: str) -> dict:
        return await anyio.to_thread.run_sync(self._scan, data, name, limiter=self.limiter)

    async def protect_upload(self, upload: UploadFile) -> tuple[bytes, str]:
        async with self.inflight:
            return await self.protect(await self.read_upload(upload), upload.filename or "image")

    async def scan_upload(self, upload: UploadFile) -> dict:
        async with self.inflight:
            return await self.scan(await self.read_upload(upload), upload.filename or "image")

    async def check_forward_upload(self, upload: UploadFile) -> dict:
        async with self.inflight:
            return await self.check_forward(await self.read_upload(upload), upload.filename or "image")

    async def check_forward(self, data: bytes, name: str) -> dict:
        r = await self.scan(data, name)
        if r["protected"]:
            reason = "This picture was sent 'only for you': it cannot be forwarded or uploaded again."
        else:
            reason = "No 'only for you' stamp found."
        return {"allowed": not r["protected"], "reason": reason, **r}


def create_app(settings: ServiceSettings, stamper: Stamper | None = None) -> FastAPI:
    stamper = stamper or load(settings.model, device=settings.device, max_pixels=settings.max_pixels)
    engine = Engine(stamper, settings)
    app = FastAPI(title="deepraft", version="0.1.0",
                  description="Stamp pictures sent 'only for you' and block their forwarding.")
    app.state.engine = engine

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail, "status": exc.status_code}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes + 64 * 1024:
            return JSONResponse({"error": f"request body larger than {settings.max_body_bytes} bytes", "status": 413},
                                status_code=413)
        return await call_next(request)

    def require_key(x_api_key: Annotated[str | None, Header()] = None,
                    authorization: Annotated[str | None, Header()] = None) -> None:
        if not settings.api_key:
            return
        given = x_api_key or (authorization[7:] if authorization and authorization.lower().startswith("bearer ") else "")
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise ServiceError(401, "a valid API key is required to protect pictures",
                               headers={"WWW-Authenticate": "Bearer"})

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "model": stamper.card.name}

    @app.get("/v1/model")
    async def model_card() -> dict:
        return stamper.card.to_json()

    @app.post("/v1/protect", dependencies=[Depends(require_key)],
              responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}})
    async def protect(image: UploadFile = File(..., description="The picture to stamp.")) -> Response:
        """Stamp a picture; the answer is the stamped picture in the same format."""
        data, fmt = await engine.protect_upload(image)
        return Response(data, media_type=MIME[fmt], headers={"X-Deepraft-Model": stamper.card.name})

    @app.post("/v1/scan")
    async def scan(image: UploadFile = File(..., description="The picture to scan.")) -> dict:
        """Does the picture carry the stamp?"""
        return await engine.scan_upload(image)

    @app.post("/v1/check-forward")
    async def check_forward(image: UploadFile = File(..., description="The picture a user forwards or uploads.")) -> dict:
        """The decision a platform makes when a user forwards or re-uploads a picture."""
        return await engine.check_forward_upload(image)

    if settings.demo_db is not None:
        from .demo import mount_demo

        mount_demo(app, engine, settings.demo_db)
    return app
