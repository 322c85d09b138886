"""``deepraft serve``: the HTTP API a platform calls on send (protect) and on forward (scan).

The service is a thin caller of :class:`deepraft.Stamper`. Image bytes are decoded and checked
(never trusting the declared content type); model work runs in worker threads behind a
capacity limiter, so the event loop keeps answering and memory stays bounded under load.

What it guards, and how:

* ``/v1/protect`` needs the API key (``X-API-Key`` or ``Authorization: Bearer``) when one is
  set; keys are compared in constant time.
* The request body is counted while it streams in (FastAPI's ``max_body_size``): reading
  stops at the limit plus one chunk, with or without a Content-Length; a declared length over
  the limit is refused before any byte of the body is read. Both answer 413 and close the
  connection.
* Every 4xx/5xx answer has one JSON shape, :class:`ErrorBody`, documented in the OpenAPI
  schema; nothing user-supplied is echoed as markup.
* ``/docs`` and ``/redoc`` serve Swagger UI and ReDoc from the ``fastapi-offline`` package:
  no CDN, so they work offline.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from deepraft import __version__
from deepraft.apps.service.core import (
    COMMON_ERRORS,
    DOCS_ASSETS,
    FORM_OVERHEAD,
    MIME,
    BoundedStamper,
    DeclaredLengthLimit,
    ErrorBody,
    ForwardAnswer,
    Health,
    ScanAnswer,
    ServiceError,
    ServiceSettings,
    error_doc,
    error_response,
    given_key,
    key_matches,
    upload_name,
    validation_message,
)
from deepraft.runtime.stamper import Stamper, load

__all__ = [
    "COMMON_ERRORS",
    "DOCS_ASSETS",
    "FORM_OVERHEAD",
    "MIME",
    "DeclaredLengthLimit",
    "BoundedStamper",
    "ErrorBody",
    "ForwardAnswer",
    "Health",
    "ScanAnswer",
    "ServiceError",
    "ServiceSettings",
    "create_app",
    "error_response",
    "given_key",
    "upload_name",
]


def create_app(settings: ServiceSettings, stamper: Stamper | None = None) -> FastAPI:
    """The service's ASGI app (with the /demo messenger when ``settings.demo``)."""
    stamper = stamper or load(settings.model, device=settings.device, max_pixels=settings.max_pixels)
    bounded = BoundedStamper(stamper, settings)
    app = FastAPI(
        title="deepraft",
        version=__version__,
        description="Stamp pictures sent 'only for you' and block their forwarding. Every error "
        'answer is an `ErrorBody`: `{"error": "...", "status": 4xx}`.',
        docs_url=None,
        redoc_url=None,
        responses=COMMON_ERRORS,
    )
    app.state.bounded = bounded
    app.state.settings = settings
    # a declared Content-Length over the limit: refused here, before the body is read; a body
    # without one is counted by FastAPI's max_body_size on each route that reads a body (set per
    # route: an app-wide limit would answer before this middleware, in plain text)
    app.add_middleware(DeclaredLengthLimit, max_bytes=settings.max_request_bytes)
    _add_error_handlers(app, settings)
    _add_offline_docs(app)
    _add_api_routes(app, bounded, settings)
    if settings.demo:
        from deepraft.apps.service.messenger import mount_demo

        mount_demo(app, bounded, settings.demo_db or Path("deepraft-demo.sqlite3").resolve())
    return app


def _add_error_handlers(app: FastAPI, settings: ServiceSettings) -> None:
    """Every error answer in the one :class:`ErrorBody` shape."""

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 413 and not isinstance(exc, ServiceError):
            message = f"request body larger than {settings.max_request_bytes} bytes"
        elif exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed on {request.url.path}"
        return error_response(exc.status_code, message, getattr(exc, "headers", None), **getattr(exc, "extra", {}))

    @app.exception_handler(RequestValidationError)
    async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, fields = validation_message(exc)
        return error_response(422, message, fields=fields)

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal server error")


def _add_offline_docs(app: FastAPI) -> None:
    """/docs and /redoc (FastAPI's documented hooks, assets from fastapi-offline: no CDN)."""
    assets = files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="deepraft - Swagger UI",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="deepraft - ReDoc",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )


def _add_api_routes(app: FastAPI, bounded: BoundedStamper, settings: ServiceSettings) -> None:
    """/healthz, /v1/model, /v1/protect (behind the API key when set), /v1/scan, /v1/check-forward."""
    stamper = bounded.stamper
    limit = settings.max_request_bytes

    def require_key(
        x_api_key: Annotated[str | None, Header()] = None, authorization: Annotated[str | None, Header()] = None
    ) -> None:
        if not settings.api_key:
            return
        if not key_matches(given_key(x_api_key, authorization), settings.api_key):
            raise ServiceError(
                401, "a valid API key is required to protect pictures", headers={"WWW-Authenticate": "Bearer"}
            )

    @app.get("/healthz")
    async def healthz() -> Health:
        return Health(status="ok", model=stamper.card.name)

    @app.get("/v1/model")
    async def model_card() -> dict[str, Any]:
        """The model card: architecture, calibrated thresholds, training record, metrics."""
        return stamper.card.to_json()

    @app.post(
        "/v1/protect",
        dependencies=[Depends(require_key)],
        max_body_size=limit,
        responses={
            200: {
                "content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}, "image/tiff": {}},
                "description": "The stamped picture, in the format of the upload.",
            },
            401: error_doc("An API key is set and the request did not carry it."),
            409: error_doc("The picture already carries the stamp (send force=true)."),
        },
    )
    async def protect(
        image: Annotated[UploadFile, File(description="The picture to stamp.")],
        force: Annotated[bool, Form(description="Stamp even a picture that already carries the stamp.")] = False,
    ) -> Response:
        """Stamp a picture; the answer is the stamped picture in the same format. A picture that
        already carries the stamp (one scan at the card's threshold) is refused with 409."""
        data, fmt = await bounded.protect_upload(image, force)
        return Response(data, media_type=MIME[fmt], headers={"X-Deepraft-Model": stamper.card.name})

    @app.post("/v1/scan", max_body_size=limit)
    async def scan(image: Annotated[UploadFile, File(description="The picture to scan.")]) -> ScanAnswer:
        """Does the picture carry the stamp?"""
        return ScanAnswer(**await bounded.scan_upload(image))

    @app.post("/v1/check-forward", max_body_size=limit)
    async def check_forward(
        image: Annotated[UploadFile, File(description="The picture a user forwards or uploads.")],
    ) -> ForwardAnswer:
        """The decision a platform makes when a user forwards or re-uploads a picture."""
        return ForwardAnswer(**await bounded.check_forward_upload(image))
