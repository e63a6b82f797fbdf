"""Dependencies of the API routes (``Annotated`` aliases): who is asking, what they may
see, which language they read, and a database connection for the request.

Authentication is a bearer token from the configuration: ``api.admin_token`` (role
``admin``) or one of ``api.read_tokens`` (role ``read``). Tokens are compared in constant
time and every configured token is compared, so timing tells nothing about which one
nearly matched. Both token kinds see everything (``scope`` None); users and roles scoped
to organisation units come with the web UI issue and plug in at :func:`get_principal`.
"""
import hmac
from typing import Annotated, Any, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Tuple

from fastapi import Depends, Header, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.engine import Connection
from zoneinfo import ZoneInfo

from ..read.devices import DEFAULT_FIVE_MIN_DAYS
from ..text import DEFAULT_TIMEZONE, message, pick_lang


class Principal(NamedTuple):
    """Who is calling: ``role`` is ``admin`` or ``read``; ``scope`` None means every
    organisation unit, else the set of org-unit ids / school codes the caller may see."""

    name: str
    role: str
    scope: Optional[FrozenSet[str]] = None


class ApiSettings(NamedTuple):
    """What the API takes from the collector's configuration, read once."""

    admin_token: str
    read_tokens: Tuple[str, ...]
    timezone: str
    five_min_days: int


def api_settings(cfg: Any) -> ApiSettings:
    """The API's settings from ``cfg`` (``load_config``'s namespace; tools and tests may
    pass one with only an ``api`` section: the rest take the defaults). An unknown time
    zone is refused here, not by every request after."""
    api = cfg.api
    province = getattr(cfg, "province", None)
    store = getattr(cfg, "store", None)
    tz = getattr(province, "timezone", "") or DEFAULT_TIMEZONE
    ZoneInfo(tz)  # ZoneInfoNotFoundError (a KeyError) now rather than a 500 per request
    return ApiSettings(admin_token=getattr(api, "admin_token", "") or "",
                       read_tokens=tuple(getattr(api, "read_tokens", None) or ()),
                       timezone=tz,
                       five_min_days=int(getattr(store, "rollup_5m_days", 0)
                                         or DEFAULT_FIVE_MIN_DAYS))


class ErrorBody(BaseModel):
    """Every error: a code for programs, a message for people (Vietnamese by default)."""

    error: str
    message: str
    detail: Optional[str] = None


class ParameterProblem(BaseModel):
    loc: List[str]
    msg: str
    type: str


class ValidationErrorBody(BaseModel):
    """422: which parameters are wrong and why."""

    error: str
    message: str
    detail: Optional[str] = None
    errors: List[ParameterProblem]


#: Error answers every /api/v1 route can give, documented in the OpenAPI schema.
ERROR_RESPONSES: Dict[int | str, Dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Thiếu hoặc sai mã truy cập / no valid token"},
    422: {"model": ValidationErrorBody,
          "description": "Tham số không hợp lệ / invalid parameters"},
}
NOT_FOUND: Dict[int | str, Dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Không tìm thấy hoặc ngoài phạm vi / not found "
                                             "or outside the caller's units"}}
BAD_REQUEST: Dict[int | str, Dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Yêu cầu không hợp lệ / bad request"}}


class ApiError(Exception):
    """An error answered as ``{"error": code, "message": <localized>}``."""

    def __init__(self, status: int, code: str, headers: Optional[Dict[str, str]] = None,
                 detail: Optional[str] = None,
                 errors: Optional[List[Dict[str, Any]]] = None) -> None:
        super().__init__(code)
        self.errors = errors
        self.status = status
        self.code = code
        self.headers = headers
        self.detail = detail


_bearer = HTTPBearer(auto_error=False, description=(
    "`api.admin_token` (quản trị / admin) hoặc một trong `api.read_tokens` (chỉ xem / "
    "read-only)."))


def _query_names(dependant: Dependant) -> FrozenSet[str]:
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def _declared_query(route: APIRoute) -> FrozenSet[str]:
    names: Optional[FrozenSet[str]] = getattr(route, "_schoolmon_query", None)
    if names is None:
        names = _query_names(route.dependant)
        setattr(route, "_schoolmon_query", names)  # noqa: B010 - computed once per route
    return names


def strict_query(request: Request) -> None:
    """Only the query parameters a route documents, each once: a misspelt filter
    (``?stauts=offline``) or ``?lang=vi&lang=en`` is refused (422) instead of silently
    ignored or decided by the last value."""
    route = request.scope.get("route")
    declared = _declared_query(route) if isinstance(route, APIRoute) else None
    seen = set()
    problems: List[Dict[str, Any]] = []
    for key, _ in request.query_params.multi_items():
        if declared is not None and key not in declared:
            problems.append({"type": "unknown_parameter", "loc": ("query", key),
                             "msg": "unknown parameter", "input": None})
        elif key in seen:
            problems.append({"type": "duplicate", "loc": ("query", key),
                             "msg": "given more than once", "input": None})
        seen.add(key)
    if problems:
        raise RequestValidationError(problems)


def get_lang(request: Request,
             lang: Annotated[Optional[str], Query(
                 description="Ngôn ngữ / language: `vi` (mặc định) hoặc `en`.")] = None,
             accept_language: Annotated[Optional[str], Header()] = None) -> str:
    chosen = pick_lang(lang, accept_language)
    request.state.lang = chosen
    return chosen


Lang = Annotated[str, Depends(get_lang)]


def token_table(settings: ApiSettings) -> List[Tuple[bytes, Principal]]:
    """(token bytes, principal) for every configured token; empty tokens never match."""
    table: List[Tuple[bytes, Principal]] = []
    if settings.admin_token:
        table.append((settings.admin_token.encode("utf-8"), Principal("admin", "admin", None)))
    for i, tok in enumerate(settings.read_tokens):
        if tok:
            table.append((tok.encode("utf-8"), Principal("read-%d" % (i + 1), "read", None)))
    return table


def check_token(table: List[Tuple[bytes, Principal]], presented: str) -> Optional[Principal]:
    given = presented.encode("utf-8")
    found: Optional[Principal] = None
    for token, principal in table:  # no early exit: compare with every token
        if hmac.compare_digest(token, given) and found is None:
            found = principal
    return found


def get_principal(request: Request,
                  creds: Annotated[Optional[HTTPAuthorizationCredentials],
                                   Depends(_bearer)] = None) -> Principal:
    challenge = {"WWW-Authenticate": 'Bearer realm="schoolmon"'}
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise ApiError(401, "auth_required", challenge)
    principal = check_token(request.app.state.tokens, creds.credentials)
    if principal is None:
        raise ApiError(401, "auth_invalid",
                       {"WWW-Authenticate": 'Bearer realm="schoolmon", error="invalid_token"'})
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    if principal.role != "admin":
        raise ApiError(403, "admin_required")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]


def get_scope(principal: CurrentPrincipal) -> Optional[FrozenSet[str]]:
    return principal.scope


Scope = Annotated[Optional[FrozenSet[str]], Depends(get_scope)]


def get_conn(request: Request) -> Iterator[Connection]:
    """One read connection per request, returned to the pool afterwards."""
    with request.app.state.engine.connect() as conn:
        yield conn


Conn = Annotated[Connection, Depends(get_conn)]


def get_tz(request: Request) -> str:
    tz: str = request.app.state.settings.timezone
    return tz


TimeZone = Annotated[str, Depends(get_tz)]


def get_five_min_days(request: Request) -> int:
    """How long the store keeps 5-minute rollups (``store.rollup_5m_days``)."""
    days: int = request.app.state.settings.five_min_days
    return days


FiveMinDays = Annotated[int, Depends(get_five_min_days)]


def error_body(code: str, lang: str, detail: Optional[str] = None,
               errors: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """The body of an error answer (:class:`ErrorBody`; with ``errors``, a 422's
    :class:`ValidationErrorBody`)."""
    body: Dict[str, Any] = {"error": code, "message": message(code, lang)}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return body
