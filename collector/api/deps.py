"""Dependencies of the API routes (``Annotated`` aliases): who is asking, what they may
see, which language they read, and a database connection for the request.

Authentication is a bearer token from the configuration: ``api.admin_token`` (role
``admin``) or one of ``api.read_tokens`` (role ``read``). Tokens are compared in constant
time and every configured token is compared, so timing tells nothing about which one
nearly matched. Both token kinds see everything (``scope`` None); users and roles scoped
to organisation units come with the web UI issue and plug in at :func:`get_principal`.
"""
import hmac
from typing import Annotated, Dict, FrozenSet, Iterator, List, NamedTuple, Optional, Tuple

from fastapi import Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection

from .present import pick_lang, text


class Principal(NamedTuple):
    """Who is calling: ``role`` is ``admin`` or ``read``; ``scope`` None means every
    organisation unit, else the set of org-unit ids / school codes the caller may see."""

    name: str
    role: str
    scope: Optional[FrozenSet[str]] = None


class ApiError(Exception):
    """An error answered as ``{"error": code, "message": <localized>}``."""

    def __init__(self, status: int, code: str, headers: Optional[Dict[str, str]] = None,
                 detail: Optional[str] = None):
        super().__init__(code)
        self.status = status
        self.code = code
        self.headers = headers
        self.detail = detail


_bearer = HTTPBearer(auto_error=False, description=(
    "`api.admin_token` (quản trị / admin) hoặc một trong `api.read_tokens` (chỉ xem / "
    "read-only)."))


def get_lang(request: Request,
             lang: Annotated[Optional[str], Query(
                 description="Ngôn ngữ / language: `vi` (mặc định) hoặc `en`.")] = None,
             accept_language: Annotated[Optional[str], Header()] = None) -> str:
    chosen = pick_lang(lang, accept_language)
    request.state.lang = chosen
    return chosen


Lang = Annotated[str, Depends(get_lang)]


def token_table(cfg) -> List[Tuple[bytes, Principal]]:
    """(token bytes, principal) for every configured token; empty tokens never match."""
    table: List[Tuple[bytes, Principal]] = []
    admin = getattr(cfg.api, "admin_token", "") or ""
    if admin:
        table.append((admin.encode("utf-8"), Principal("admin", "admin", None)))
    for i, tok in enumerate(getattr(cfg.api, "read_tokens", []) or []):
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
    return request.app.state.timezone


TimeZone = Annotated[str, Depends(get_tz)]


def error_body(code: str, lang: str, detail: Optional[str] = None) -> Dict[str, str]:
    body = {"error": code, "message": text(code, lang)}
    if detail:
        body["detail"] = detail
    return body
