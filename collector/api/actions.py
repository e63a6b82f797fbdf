"""What people do to devices: approve, retire, move to another room, approve a school's
pending devices; ``revoke`` is routed and answers 501 (it comes with enrollment).

An object outside the caller's units answers 404 (like an unknown one); inside it, a role
without the right answers 403 (deps.RIGHTS). Every action is audited in its transaction.
"""
from typing import Annotated, Any, Dict

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from ..read import counts
from ..read.scope import storable
from ..store import audit, registry
from ..store.schema import devices, schools
from .deps import (
    BAD_REQUEST,
    NOT_FOUND,
    ApiError,
    CurrentPrincipal,
    ErrorBody,
    Principal,
    client_address,
    may,
    sees_school,
)

router = APIRouter(tags=["device actions"])

DeviceId = Annotated[str, Path(max_length=64)]
FORBIDDEN: Dict[int | str, Dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Vai trò không được phép / the role may not"}}


#: A room name: printable text with at least one character that is not white space.
ROOM_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


class Move(BaseModel):
    # the pattern says what the route takes, so the schema and the answer agree: no control
    # characters, and something besides white space (a blank room name is no room)
    room: Annotated[str, Field(min_length=1, max_length=128, pattern=ROOM_PATTERN,
                               description="Phòng mới / the new room, e.g. `Phòng máy 2`")]


def _device(conn: Any, principal: Principal, device_id: str, action: str) -> str:
    """The device's school, after the scope (404) and the role (403) say yes."""
    found = registry.device_school(conn, device_id) if storable(device_id) else None
    if found is None or not sees_school(principal, found[0]):
        raise ApiError(404, "device_not_found")
    if not may(principal, action):
        raise ApiError(403, "forbidden_role")
    return found[0]


def _answer(conn: Any, device_id: str) -> Dict[str, Any]:
    r = conn.execute(select(devices.c.id, devices.c.school_code, devices.c.state,
                            devices.c.room).where(devices.c.id == device_id)).one()
    return {"id": r.id, "school": r.school_code, "state": r.state, "room": r.room}


def _state_change(request: Request, principal: Principal, device_id: str, action: str,
                  state: str) -> Dict[str, Any]:
    with request.app.state.engine.begin() as conn:
        school = _device(conn, principal, device_id, action)
        before = registry.device_school(conn, device_id)
        if action == "approve" and before is not None and before[1] == "retired":
            raise ApiError(409, "device_retired")
        registry.set_device_state(conn, device_id, state)
        audit.record(conn, principal.name, "device_" + action, device_id,
                     {"school": school, "from": before[1] if before else None},
                     client_address(request))
        answer = _answer(conn, device_id)
    # the Sở's counts (pending, retired out of the fleet) show the change at once here
    counts.forget(request.app.state.engine)
    return answer


@router.post("/devices/{device_id}/approve", summary="Duyệt thiết bị / approve a device",
             responses={**NOT_FOUND, **FORBIDDEN})
def approve(request: Request, principal: CurrentPrincipal,
            device_id: DeviceId) -> Dict[str, Any]:
    """A pending device becomes active (so_admin, area officer, school technician).
    409 for a retired device."""
    return _state_change(request, principal, device_id, "approve", "active")


@router.post("/devices/{device_id}/retire", summary="Ngừng sử dụng / retire a device",
             responses={**NOT_FOUND, **FORBIDDEN})
def retire(request: Request, principal: CurrentPrincipal,
           device_id: DeviceId) -> Dict[str, Any]:
    """The device leaves the fleet figures; its history stays, and its own messages never
    make it active again (so_admin, area officer)."""
    return _state_change(request, principal, device_id, "retire", "retired")


@router.post("/devices/{device_id}/move", summary="Chuyển phòng / move to another room",
             responses={**NOT_FOUND, **FORBIDDEN, **BAD_REQUEST})
def move(request: Request, principal: CurrentPrincipal, device_id: DeviceId,
         body: Move) -> Dict[str, Any]:
    """Set the device's room (so_admin, area officer, school technician)."""
    room = body.room.strip()
    if not room or not storable(room):
        raise ApiError(422, "invalid_request", errors=[
            {"loc": ["body", "room"], "msg": "empty", "type": "invalid"}])
    with request.app.state.engine.begin() as conn:
        school = _device(conn, principal, device_id, "move")
        old = _answer(conn, device_id)["room"]
        registry.move_device(conn, device_id, room)
        audit.record(conn, principal.name, "device_move", device_id,
                     {"school": school, "from": old, "to": room}, client_address(request))
        return _answer(conn, device_id)


@router.post("/devices/{device_id}/revoke", summary="Thu hồi quyền kết nối / revoke",
             responses={**NOT_FOUND, **FORBIDDEN, 501: {"model": ErrorBody}})
def revoke(request: Request, principal: CurrentPrincipal,
           device_id: DeviceId) -> Dict[str, Any]:
    """Not available in this version (it comes with enrollment): 501 for a visible device
    (404 outside the caller's units, like every device route)."""
    with request.app.state.engine.connect() as conn:
        found = registry.device_school(conn, device_id) if storable(device_id) else None
    if found is None or not sees_school(principal, found[0]):
        raise ApiError(404, "device_not_found")
    raise ApiError(501, "not_available")


@router.post("/schools/{code}/approve", summary="Duyệt mọi thiết bị chờ của trường / "
             "approve a school's pending devices", responses={**NOT_FOUND, **FORBIDDEN})
def approve_school(request: Request, principal: CurrentPrincipal,
                   code: Annotated[str, Path(max_length=64)]) -> Dict[str, Any]:
    """Every pending device of the school becomes active; `approved` lists their ids."""
    with request.app.state.engine.begin() as conn:
        exists = storable(code) and conn.execute(
            select(schools.c.code).where(schools.c.code == code)).first() is not None
        if not exists or not sees_school(principal, code):
            raise ApiError(404, "school_not_found")
        if not may(principal, "approve"):
            raise ApiError(403, "forbidden_role")
        ids = registry.approve_school_devices(conn, code)
        audit.record(conn, principal.name, "school_approve", code, {"devices": ids},
                     client_address(request))
    counts.forget(request.app.state.engine)
    return {"school": code, "approved": ids}
