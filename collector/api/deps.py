"""Dependencies of the API routes (``Annotated`` aliases): who is asking, what they may
see, which language they read, and a database connection for the request.

Who is asking is resolved once per request into a :class:`Principal` (role and the set of
visible school codes, None = all), from

- a bearer token: ``api.admin_token`` (a ``so_admin`` without a user), one of
  ``api.read_tokens`` (a ``so_viewer``), or a user's personal token (``smu_...``: the
  user's role and units); configured tokens are compared in constant time, every one;
- or the web session cookie (``schoolmon_session``); then every state-changing request
  (not GET/HEAD/OPTIONS) must carry the session's CSRF token in ``X-CSRF-Token``.

A disabled user's sessions and tokens are refused from the next request (the user row is
read with the session or token every time). Rights by role: :func:`may`.
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
from ..read.scope import UnitSchools
from ..store import users as user_store
from ..text import DEFAULT_TIMEZONE, message, pick_lang

SESSION_COOKIE = "schoolmon_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Prefix of personal API tokens (``user token NAME``).
USER_TOKEN_PREFIX = "smu_"


class Principal(NamedTuple):
    """Who is calling: ``role`` one of schema.USER_ROLES; ``scope`` None means every
    organisation unit, else the school codes the caller may see (a read.scope.Visible when
    resolved from a user's units). ``via``: "token" (configured), "user_token", "session"."""

    name: str
    role: str
    scope: Optional[FrozenSet[str]] = None
    user_id: Optional[int] = None
    via: str = "token"
    csrf: Optional[str] = None
    units: Tuple[str, ...] = ()


class AuthPolicy(NamedTuple):
    """Session lifetimes and the failed-login limit (seconds, counts)."""

    session_idle: float = 30 * 60
    session_absolute: float = 12 * 3600
    failure_window: float = 15 * 60
    max_failures_per_name: int = 5
    max_failures_per_client: int = 20


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
    "`api.admin_token` (quản trị / admin), một trong `api.read_tokens` (chỉ xem / "
    "read-only) hoặc mã cá nhân `smu_...` (`schoolmon-collector user token NAME`). "
    "The web UI uses its session cookie and `X-CSRF-Token` instead."))


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
        table.append((settings.admin_token.encode("utf-8"),
                      Principal("admin-token", "so_admin", None)))
    for i, tok in enumerate(settings.read_tokens):
        if tok:
            table.append((tok.encode("utf-8"),
                          Principal("read-token-%d" % (i + 1), "so_viewer", None)))
    return table


def check_token(table: List[Tuple[bytes, Principal]], presented: str) -> Optional[Principal]:
    given = presented.encode("utf-8")
    found: Optional[Principal] = None
    for token, principal in table:  # no early exit: compare with every token
        if hmac.compare_digest(token, given) and found is None:
            found = principal
    return found


def user_principal(request: Request, conn: Connection, user: user_store.User, via: str,
                   csrf: Optional[str] = None) -> Principal:
    """A user's principal, its scope resolved from the cached unit → schools map."""
    scope: Optional[FrozenSet[str]] = None
    if user.role in user_store.SCOPED_ROLES:
        cache: UnitSchools = request.app.state.unit_schools
        scope = cache.visible(conn, user.units)
    return Principal(user.name, user.role, scope, user.id, via, csrf,
                     tuple(code for _, code in user.units))


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def get_principal(request: Request,
                  creds: Annotated[Optional[HTTPAuthorizationCredentials],
                                   Depends(_bearer)] = None) -> Principal:
    cached: Optional[Principal] = getattr(request.state, "principal", None)
    if cached is not None:  # resolved once per request (pages and routes share it)
        return cached
    principal: Optional[Principal] = None
    if creds is not None and creds.scheme.lower() == "bearer" and creds.credentials:
        principal = check_token(request.app.state.tokens, creds.credentials)
        if principal is None and creds.credentials.startswith(USER_TOKEN_PREFIX):
            with request.app.state.engine.connect() as conn:
                user = user_store.find_token(conn, creds.credentials)
                if user is not None:
                    principal = user_principal(request, conn, user, "user_token")
        if principal is None:
            raise ApiError(401, "auth_invalid",
                           {"WWW-Authenticate": 'Bearer realm="schoolmon", error="invalid_token"'})
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise ApiError(401, "auth_required", {"WWW-Authenticate": 'Bearer realm="schoolmon"'})
        policy: AuthPolicy = request.app.state.auth_policy
        with request.app.state.engine.begin() as conn:
            found = user_store.find_session(conn, cookie, policy.session_idle,
                                            policy.session_absolute)
            if found is not None:
                principal = user_principal(request, conn, found.user, "session", found.csrf)
        if found is None:  # raised after the commit: an expired session stays deleted
            raise ApiError(401, "session_required")
        if request.method not in SAFE_METHODS:
            given = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(given.encode("utf-8"), found.csrf.encode("utf-8")):
                raise ApiError(403, "csrf_invalid")
    assert principal is not None  # every path without one raised
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def optional_principal(request: Request,
                       creds: Annotated[Optional[HTTPAuthorizationCredentials],
                                        Depends(_bearer)] = None) -> Optional[Principal]:
    """The caller, or None when not logged in (web pages send them to the login page);
    a state-changing request with a bad CSRF token is still refused (403)."""
    try:
        return get_principal(request, creds)
    except ApiError as exc:
        if exc.status == 401:
            return None
        raise


MaybePrincipal = Annotated[Optional[Principal], Depends(optional_principal)]


def require_admin(principal: CurrentPrincipal) -> Principal:
    if principal.role != "so_admin":
        raise ApiError(403, "admin_required")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_admin)]

#: What each role may do to the devices and schools it can see (its scope): so_admin
#: everything; an area officer approves, moves and retires in their area; a school
#: technician moves devices between rooms and approves their own school's pending devices
#: (they install the agents, so they know which machines are theirs; approving changes
#: nothing outside their school), but does not retire (that takes a device out of the
#: Sở's figures: an area decision); a Sở viewer only reads. ``speedtest``: ask for a
#: bandwidth test now (Đo ngay) of a school in scope. ``ack`` and ``silence``: acknowledge
#: an alert, silence alerts (api/alerts.py) — the people who go and fix things, inside their
#: units; a Sở viewer only reads.
RIGHTS: Dict[str, FrozenSet[str]] = {
    "so_admin": frozenset({"approve", "retire", "move", "users", "units", "audit",
                           "speedtest", "ack", "silence"}),
    "so_viewer": frozenset(),
    "area_officer": frozenset({"approve", "retire", "move", "speedtest", "ack", "silence"}),
    "school_tech": frozenset({"approve", "move", "speedtest", "ack", "silence"}),
}


def may(principal: Principal, action: str) -> bool:
    return action in RIGHTS.get(principal.role, frozenset())


def sees_school(principal: Principal, school_code: str) -> bool:
    return principal.scope is None or school_code in principal.scope


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


def get_rules(request: Request) -> Any:
    """The ATTT baseline and OS table in force (``posture.Rules``)."""
    return request.app.state.rules


Rules = Annotated[Any, Depends(get_rules)]


def get_connectivity_baseline(request: Request) -> Any:
    """The connectivity baseline in force (``connectivity.baseline.ConnectivityBaseline``)."""
    return request.app.state.connectivity_baseline


ConnectivityBaseline = Annotated[Any, Depends(get_connectivity_baseline)]


def get_calendar(request: Request) -> Any:
    """The school calendar in force (``alerting.calendar.Calendar``, loaded at start)."""
    return request.app.state.calendar


SchoolCalendar = Annotated[Any, Depends(get_calendar)]


def get_now(request: Request) -> float:
    """The instant a request judges liveness at (the app's clock: tests fix it)."""
    return float(request.app.state.clock())


Now = Annotated[float, Depends(get_now)]
