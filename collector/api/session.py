"""``/api/v1/session``: log in (POST, the only /api/ route open without credentials: app.py
routes it outside the authenticated router), who am I (GET), log out (DELETE).

The cookie: HttpOnly, SameSite=Strict, ``Max-Age`` the session's absolute lifetime, and
Secure unless the request came over plain HTTP to a loopback address (the demo, tests):
a Sở server is served over HTTPS (or behind a proxy that says so in X-Forwarded-Proto).
"""
import ipaddress
import logging
import math
import threading
import time
from typing import Annotated, Any, Dict

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..store import audit
from ..store import users as user_store
from ..text import USER_ROLE_LABELS, label
from .deps import (
    RIGHTS,
    SESSION_COOKIE,
    ApiError,
    AuthPolicy,
    CurrentPrincipal,
    ErrorBody,
    Lang,
    Principal,
    client_address,
    user_principal,
)

log = logging.getLogger(__name__)

router = APIRouter(tags=["session"])


class Login(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class Me(BaseModel):
    """Who is logged in (or whose token this is)."""

    name: str
    role: str
    role_label: str
    units: list[str]
    csrf_token: str | None = None
    via: str
    rights: list[str] = []


def _me(p: Principal, lang: str) -> Dict[str, Any]:
    return {"name": p.name, "role": p.role, "role_label": label(USER_ROLE_LABELS, p.role, lang),
            "units": list(p.units), "csrf_token": p.csrf, "via": p.via,
            "rights": sorted(RIGHTS.get(p.role, frozenset()))}  # what the pages offer


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", request.url.scheme)
    if proto == "https":
        return True
    host = request.url.hostname or ""
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host != "localhost"


LOGIN_ERRORS: Dict[int | str, Dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Nội dung không đọc được / unreadable body"},
    401: {"model": ErrorBody, "description": "Sai tên hoặc mật khẩu / wrong name or password"},
    429: {"model": ErrorBody, "description": "Quá nhiều lần sai / too many failures"}}


#: Attempts are checked and counted one at a time: a burst of parallel wrong passwords would
#: otherwise all read the count before any of them added to it, and slip past the limit. A
#: login costs one argon2 verification (~50 ms), so this also bounds what a flood costs.
_LOGIN_LOCK = threading.Lock()


def login(request: Request, response: Response, body: Login, lang: Lang) -> Dict[str, Any]:
    """Name and password → a session cookie and the CSRF token to send as `X-CSRF-Token`
    with every state-changing request. Wrong name or password: 401 (the same answer for
    both). Too many failures for a name or from an address: 429 with `Retry-After`."""
    policy: AuthPolicy = request.app.state.auth_policy
    client = client_address(request)
    now = time.time()
    with _LOGIN_LOCK, request.app.state.engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # the same name tried on another collector
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                 ("login:" + body.name,))
        # old rows go at each login: the tables stay as small as the live sessions
        user_store.purge_failures(conn, now - policy.failure_window)
        user_store.purge_sessions(conn, policy.session_idle, policy.session_absolute, now)
        by_name, by_client, oldest = user_store.failures_since(
            conn, body.name, client, now - policy.failure_window)
        if by_name >= policy.max_failures_per_name or by_client >= policy.max_failures_per_client:
            wait = max(1, math.ceil(oldest + policy.failure_window - now))
            audit.record(conn, body.name[:64], "login_failed", body.name,
                         {"reason": "rate_limited"}, client, now)
            log.warning("login refused (rate limit) for %r from %s", body.name, client)
            raise ApiError(429, "login_rate_limited", {"Retry-After": str(wait)})
        user = user_store.check_password(conn, body.name, body.password)
        if user is None:
            user_store.record_failure(conn, body.name, client, now)
            audit.record(conn, body.name[:64], "login_failed", body.name,
                         {"reason": "bad_credentials"}, client, now)
            log.warning("failed login for %r from %s", body.name, client)
            failed = True
        else:
            token, csrf = user_store.create_session(conn, user, client, now)
            audit.record(conn, user.name, "login", user.name, None, client, now)
            principal = user_principal(request, conn, user, "session", csrf)
            failed = False
    if failed:  # after the commit: the failure is counted even though the answer is an error
        raise ApiError(401, "login_failed")
    response.set_cookie(SESSION_COOKIE, token, max_age=int(policy.session_absolute),
                        httponly=True, samesite="strict", secure=_secure(request), path="/")
    return _me(principal, lang)


@router.get("/session", summary="Tôi là ai / who am I", response_model=Me)
def whoami(principal: CurrentPrincipal, lang: Lang) -> Dict[str, Any]:
    """The caller's name, role, units and (for a session) its CSRF token; 401 when not
    logged in or the session expired."""
    return _me(principal, lang)


@router.delete("/session", summary="Đăng xuất / log out", status_code=204)
def logout(request: Request, response: Response, principal: CurrentPrincipal) -> Response:
    """Ends the session (needs `X-CSRF-Token`) and clears the cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    with request.app.state.engine.begin() as conn:
        if principal.via == "session" and cookie:
            user_store.end_session(conn, cookie)
            audit.record(conn, principal.name, "logout", principal.name, None,
                         client_address(request))
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                      secure=_secure(request))
    return out
