"""The FastAPI application factory.

``create_app(source, cfg)`` takes the running ``CollectorService`` (for
readiness and metrics), or just a state store / SQLAlchemy engine (tests, tools), and the
collector configuration (``api.admin_token``, ``api.read_tokens``, ``province.timezone``).

Routes: ``/healthz`` and ``/metrics`` (open), ``/api/v1/...`` (bearer token, every one:
the router carries the authentication dependency, so a route added to it cannot be open),
``/docs`` (OpenAPI; Swagger UI served from ``static/swagger/``, no CDN), and the web pages
(api/pages.py: one shell at every page address, scripts and styles under ``/static/``).
"""
import os
import time
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Protocol, Union, runtime_checkable

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.responses import Response as AnyResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from .. import __version__
from ..read.scope import UnitSchools
from ..text import message, pick_lang, validation_message
from . import (
    actions,
    admin,
    alerts,
    baselines,
    connectivity,
    devices,
    health,
    org,
    pages,
    schools,
    session,
    summary,
)
from .deps import (
    ERROR_RESPONSES,
    ApiError,
    AuthPolicy,
    api_settings,
    error_body,
    get_principal,
    strict_query,
    token_table,
)

STATIC_DIR = pages.STATIC_DIR
#: The pages' Content-Security-Policy: no inline script, nothing from another origin.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

DESCRIPTION = """\
API của schoolmon cho Sở GD&ĐT: tổng quan, cây đơn vị, trường và thiết bị.
*The schoolmon collector API: fleet summary, organisation tree, schools and devices.*

- **Xác thực / authentication:** mọi đường dẫn `/api/` cần `Authorization: Bearer <token>`
  (`api.admin_token` — quản trị; `api.read_tokens` — chỉ xem). Every `/api/` route needs a
  bearer token.
- **Không cần token / open:** `/healthz` (sẵn sàng: broker, kho trạng thái, chuỗi thời gian;
  503 kèm tên thành phần lỗi) và `/metrics` (Prometheus). Both show counts only, no school
  or device data.
- **Thời gian / times:** UTC, ISO 8601 với `Z`; trường `*_local` là giờ Việt Nam
  (Asia/Ho_Chi_Minh, `+07:00`).
- **Ngôn ngữ / language:** tiếng Việt mặc định; `?lang=en` hoặc `Accept-Language: en`.
- **Phạm vi / scope:** đối tượng ngoài phạm vi của người gọi trả về 404 như không tồn tại.
"""


class HasEngine(Protocol):
    """A state store, as far as the API goes: its SQLAlchemy engine (``StateStore``)."""

    @property
    def engine(self) -> Engine: ...


@runtime_checkable
class RunningService(Protocol):
    """The running collector (``CollectorService``), as far as the API goes: its store,
    readiness for ``/healthz`` (and metrics for ``/metrics``, read by api/health.py)."""

    @property
    def store(self) -> Any: ...

    def readiness(self) -> Mapping[str, Any]: ...


AppSource = Union[Engine, HasEngine, RunningService]


def _request_lang(request: Request) -> str:
    return pick_lang(request.query_params.get("lang"), request.headers.get("accept-language"))


class CollectorApp(FastAPI):
    """The FastAPI app, with the bandwidth-test server (collector/speedtest_server.py) in
    front of it: ``/speedtest/...`` goes straight to that ASGI app, past the middleware
    (request body limit, compression, per-response headers) that would cap an upload,
    compress random bytes or cost CPU per chunk of a download."""

    speedtest: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (self.speedtest is not None and scope["type"] == "http"
                and scope.get("path", "").startswith("/speedtest/")):
            await self.speedtest(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(source: AppSource, cfg: Any, scheduler: Any = None,
               clock: Optional[Callable[[], float]] = None) -> FastAPI:
    """The app over ``source`` (a running service, a state store or an engine) with the
    settings of ``cfg`` (the collector's configuration: ``api.*``, ``province.timezone``,
    ``store.rollup_5m_days``). ``scheduler``: the speed-test scheduler that Đo ngay asks
    (default: the running service's ``scheduler``; None: the route answers 503).
    ``clock``: the time the read routes judge liveness at on the school calendar
    (default ``time.time``; tests give a fixed one)."""
    service: Optional[RunningService] = None
    if isinstance(source, Engine):
        engine = source
    elif isinstance(source, RunningService):
        service = source
        engine = source.store.engine
    else:
        engine = source.engine
    if not isinstance(engine, Engine):
        raise TypeError("create_app needs a CollectorService, a StateStore or an Engine, "
                        "got %r" % type(source).__name__)
    settings = api_settings(cfg)
    app = CollectorApp(title="schoolmon collector", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.engine = engine
    app.state.service = service
    # Đo ngay goes through the service's scheduler (its grants through the service's
    # command publisher: ``scheduler.send``)
    app.state.scheduler = scheduler if scheduler is not None else getattr(
        service, "scheduler", None)
    app.state.cfg = cfg
    app.state.settings = settings
    app.state.tokens = token_table(settings)
    app.state.timezone = settings.timezone
    # The ATTT baseline in force: the running service's (read at its start), else the
    # configured files (BaselineError stops here, like at the collector's start).
    rules = getattr(service, "rules", None)
    if rules is None:
        from ..posture import rules_from_config
        rules = rules_from_config(cfg)
    app.state.rules = rules
    # and the connectivity baseline: the running evaluator's, else the configured file
    conn_eval = getattr(service, "connectivity", None)
    if conn_eval is not None:
        app.state.connectivity_baseline = conn_eval.baseline
    else:
        from ..connectivity.baseline import from_config
        app.state.connectivity_baseline = from_config(cfg)
    # The school calendar (lab PCs off at night are "ngoài giờ học"): the running
    # service's, loaded at its start, else the configured file (CalendarError stops here).
    calendar = getattr(service, "calendar", None)
    if calendar is None:
        from ..alerting.calendar import calendar_from_config
        calendar = calendar_from_config(cfg)
    app.state.calendar = calendar
    app.state.clock = clock if clock is not None else time.time
    app.state.auth_policy = AuthPolicy()
    app.state.unit_schools = UnitSchools()  # org unit → schools, shared by every request

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, _request_lang(request), exc.detail, exc.errors),
                            status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> AnyResponse:
        if exc.status_code == 404 and pages.wants_page(request):
            return pages.shell(404)  # the page says "not found" in the user's language
        # Unknown paths and methods answer like every other error, in the caller's language.
        code = {400: "invalid_body", 404: "not_found",
                405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, _request_lang(request)),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        lang = _request_lang(request)
        errors: List[Dict[str, Any]] = [
            {"loc": [str(x) for x in e.get("loc", ())],
             "msg": validation_message(str(e.get("type", "")), lang),
             "type": str(e.get("type", ""))}
            for e in exc.errors()]
        return JSONResponse({"error": "invalid_request", "message": message("invalid_request", lang),
                             "errors": errors}, status_code=422)

    @app.middleware("http")
    async def _headers(request: Request,
                       call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        path = request.url.path
        if path.startswith("/api/"):
            h["Cache-Control"] = "no-store"  # school data stays out of shared caches
        elif path != "/docs":  # Swagger UI's own page has an inline script
            h.setdefault("X-Frame-Options", "DENY")
            h.setdefault("Content-Security-Policy", PAGE_CSP)
        return response

    app.include_router(health.router, dependencies=[Depends(strict_query)])

    # Logging in is the one /api/ route open without credentials: POST /api/v1/session.
    login = APIRouter(prefix="/api/v1", dependencies=[Depends(strict_query)],
                      responses=ERROR_RESPONSES)
    login.add_api_route("/session", session.login, methods=["POST"],
                        summary="Đăng nhập / log in", response_model=session.Me,
                        tags=["session"], responses=session.LOGIN_ERRORS)
    app.include_router(login)
    # authentication first: a caller without a token learns nothing about parameters
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(get_principal), Depends(strict_query)],
                    responses=ERROR_RESPONSES)
    for module in (summary, org, schools, connectivity, devices, baselines, actions, alerts,
                   session, admin):
        api.include_router(module.router)
    app.include_router(api)

    app.include_router(pages.router)

    # Swagger UI from our own files (static/swagger/): a Sở server may have no Internet.
    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=app.title + " — API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None})

    ss = getattr(cfg, "speedtest_server", None)
    if ss is None or ss.enabled:
        from ..speedtest_server import SpeedtestApp, metrics_for

        registry = getattr(getattr(service, "metrics", None), "registry", None)
        app.speedtest = SpeedtestApp(ss.max_concurrent if ss is not None else 8,
                                     metrics_for(registry))
    if os.path.isdir(STATIC_DIR):
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # a provincial link is slow: pages, scripts and JSON go compressed
    app.add_middleware(GZipMiddleware, minimum_size=1000)
    return app
