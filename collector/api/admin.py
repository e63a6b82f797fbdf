"""Administrators' routes (so_admin only): users and their personal tokens, org units
(rename keeping history, mark former), and the audit log."""
import time
from typing import Annotated, Any, Dict, List, Literal, Optional

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from ..read.scope import UnitSchools
from ..store import audit, registry
from ..store import users as user_store
from ..store.schema import USER_ROLES
from ..text import AUDIT_LABELS, USER_ROLE_LABELS, label, parse_time
from .deps import (
    BAD_REQUEST,
    NOT_FOUND,
    AdminPrincipal,
    ApiError,
    ErrorBody,
    Lang,
    TimeZone,
    client_address,
)
from .devices import TIME_PATTERN
from .present import present

router = APIRouter(tags=["administration"])

Role = Literal["so_admin", "so_viewer", "area_officer", "school_tech"]
assert set(USER_ROLES) == set(Role.__args__)  # type: ignore[attr-defined]
UserName = Annotated[str, Path(max_length=64)]


class NewUser(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=user_store.NAME_MAX,
                               pattern=r"^[A-Za-z0-9._@-]+$")]
    role: Role
    password: Annotated[str, Field(min_length=user_store.MIN_PASSWORD, max_length=1024)]
    units: Annotated[List[Annotated[str, Field(max_length=128)]], Field(max_length=100)] = []


class UnitChange(BaseModel):
    name: Annotated[Optional[str], Field(min_length=1, max_length=255)] = None
    former: Optional[bool] = None


def _user_error(exc: user_store.UserError) -> ApiError:
    status = {"user_unknown": 404, "unit_unknown": 404, "user_exists": 409,
              "user_disabled": 409}.get(exc.code, 400)
    return ApiError(status, exc.code, detail=exc.detail or None)


def _user_body(u: Dict[str, Any], lang: str) -> Dict[str, Any]:
    return dict(u, role_label=label(USER_ROLE_LABELS, u["role"], lang))


@router.get("/users", summary="Người dùng / users")
def list_users(request: Request, admin: AdminPrincipal, lang: Lang,
               tz: TimeZone) -> Dict[str, Any]:
    """Every user with role, units and whether disabled, by name."""
    with request.app.state.engine.connect() as conn:
        items = [_user_body(u, lang) for u in user_store.list_users(conn)]
    return present({"items": items}, lang, tz)


@router.post("/users", summary="Thêm người dùng / add a user", status_code=201,
             responses={**BAD_REQUEST, **NOT_FOUND, 409: {"model": ErrorBody}})
def add_user(request: Request, admin: AdminPrincipal, lang: Lang, tz: TimeZone,
             body: NewUser) -> Dict[str, Any]:
    """`units` (area codes or school codes) for `area_officer` and `school_tech` only."""
    with request.app.state.engine.begin() as conn:
        try:
            user = user_store.add_user(conn, body.name, body.role, body.password, body.units)
        except user_store.UserError as exc:
            raise _user_error(exc) from None
        audit.record(conn, admin.name, "user_add", user.name,
                     {"role": user.role, "units": [c for _, c in user.units]},
                     client_address(request))
        (created,) = [u for u in user_store.list_users(conn) if u["name"] == user.name]
    return present(_user_body(created, lang), lang, tz)


@router.post("/users/{name}/disable", summary="Khóa người dùng / disable a user",
             responses=NOT_FOUND)
def disable_user(request: Request, admin: AdminPrincipal, lang: Lang, tz: TimeZone,
                 name: UserName) -> Dict[str, Any]:
    """Disables the user; their sessions and tokens are refused from the next request."""
    with request.app.state.engine.begin() as conn:
        try:
            user_store.disable_user(conn, name)
        except user_store.UserError as exc:
            raise _user_error(exc) from None
        audit.record(conn, admin.name, "user_disable", name, None, client_address(request))
        (done,) = [u for u in user_store.list_users(conn) if u["name"] == name]
    return present(_user_body(done, lang), lang, tz)


@router.post("/users/{name}/tokens", summary="Mã truy cập cá nhân / a personal API token",
             status_code=201, responses={**NOT_FOUND, 409: {"model": ErrorBody}})
def create_token(request: Request, admin: AdminPrincipal, name: UserName) -> Dict[str, Any]:
    """A new bearer token carrying the user's role and units, shown this once (only its
    hash is kept)."""
    with request.app.state.engine.begin() as conn:
        try:
            user, token = user_store.create_token(conn, name)
        except user_store.UserError as exc:
            raise _user_error(exc) from None
        audit.record(conn, admin.name, "token_create", user.name, None, client_address(request))
    return {"user": user.name, "token": token}


@router.patch("/units/{code:path}", summary="Đổi tên / đánh dấu đơn vị cũ — rename a unit "
              "or mark it former", responses={**NOT_FOUND, **BAD_REQUEST})
def change_unit(request: Request, admin: AdminPrincipal, lang: Lang, tz: TimeZone,
                code: Annotated[str, Path(max_length=128)], body: UnitChange) -> Dict[str, Any]:
    """Rename an org unit (same id: its schools and their history stay; the old name goes
    to `previous_names`) and/or mark it former (`(cũ)`, abolished by the 2025 reform)."""
    with request.app.state.engine.begin() as conn:
        unit = registry.unit_by_code(conn, code) if "\x00" not in code else None
        if unit is None:
            raise ApiError(404, "unit_not_found")
        if body.name is not None and body.name.strip():
            old, new = registry.rename_unit(conn, code, body.name.strip()) or ("", "")
            audit.record(conn, admin.name, "unit_rename", code, {"from": old, "to": new},
                         client_address(request))
        if body.former is not None:
            registry.set_unit_former(conn, code, body.former)
            audit.record(conn, admin.name, "unit_former", code, {"former": body.former},
                         client_address(request))
        unit = registry.unit_by_code(conn, code) or unit
    cache: UnitSchools = request.app.state.unit_schools
    cache.invalidate()
    return present({"id": unit["id"], "code": unit["code"], "name": unit["name"],
                    "level": unit["level"], "former": bool(unit.get("former")),
                    "previous_names": unit.get("previous_names") or []}, lang, tz)


def _time(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    try:
        return parse_time(value).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ApiError(400, "bad_time") from None


@router.get("/audit", summary="Nhật ký thao tác / audit log", responses=BAD_REQUEST)
def get_audit(
    admin: AdminPrincipal, request: Request, lang: Lang, tz: TimeZone,
    action: Annotated[Optional[Literal[tuple(audit.ACTIONS)]],  # type: ignore[valid-type]
                      Query(description="Loại thao tác / action")] = None,
    actor: Annotated[Optional[str], Query(max_length=64, description="Người làm / who")] = None,
    target: Annotated[Optional[str], Query(max_length=255,
                                           description="Đối tượng / target")] = None,
    from_: Annotated[Optional[str], Query(alias="from", pattern=TIME_PATTERN,
                                          description="Từ / since (ISO 8601 or Unix s)")] = None,
    to: Annotated[Optional[str], Query(pattern=TIME_PATTERN, description="Đến / until")] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Dict[str, Any]:
    """Who did what and when, newest first: `ts` (UTC) and `ts_local`, `actor`, `action`
    (+ `action_label`), `target`, `detail`, `client` (address)."""
    since, until = _time(from_), _time(to)
    if any("\x00" in (v or "") for v in (actor, target)):  # no stored text has a NUL
        return present({"items": [], "total": 0, "page": page, "per_page": per_page,
                        "pages": 0, "generated_at": time.time()}, lang, tz)
    with request.app.state.engine.connect() as conn:
        body = audit.query(conn, action=action, actor=actor, target=target, since=since,
                           until=until, page=page, per_page=per_page)
    for item in body["items"]:
        item["action_label"] = label(AUDIT_LABELS, item["action"], lang)
    body["generated_at"] = time.time()
    return present(body, lang, tz)
