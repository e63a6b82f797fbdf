"""Web users, their units, sessions, personal API tokens and failed logins.

- Passwords: argon2id (argon2-cffi's defaults), verified in constant time by the library.
- Session and personal tokens are 256-bit random strings; only their SHA-256 is stored (a
  stolen database gives no usable token). A disabled user's sessions and tokens are looked
  up with the user row on every request, so disabling refuses them at once.
- Failed logins are rows (``login_failures``), so the rate limit holds across processes.

Functions take a ``Connection`` inside the caller's transaction.
"""
import hashlib
import secrets
import time
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, select, update

from .schema import (
    USER_ROLES,
    api_tokens,
    login_failures,
    org_units,
    schools,
    sessions,
    user_units,
    users,
)

_hasher = PasswordHasher()

#: Roles limited to their units (``--unit``); the others see the whole province.
SCOPED_ROLES = ("area_officer", "school_tech")
#: A password shorter than this is refused (a Sở account reads every school).
MIN_PASSWORD = 10
#: Names: letters, digits and . _ - @ (a login name, also shown in the audit log).
NAME_MAX = 64


class UserError(ValueError):
    """A refused user operation; ``code`` is a text.MESSAGES code."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail


class User(NamedTuple):
    id: int
    name: str
    role: str
    disabled: bool
    units: Tuple[Tuple[str, str], ...]  # (kind, code): ("org", "lao-cai/bat-xat"), ("school", "S01")


def hash_secret(token: str) -> str:
    """SHA-256 hex of a random token (sessions, personal tokens): enough for 256-bit
    random values, and fast enough to look up on every request."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def valid_name(name: str) -> bool:
    return (0 < len(name) <= NAME_MAX and name.isascii()
            and all(c.isalnum() or c in "._-@" for c in name))


def resolve_units(conn: Connection, codes: Iterable[str]) -> Tuple[Tuple[str, str], ...]:
    """``--unit`` values to (kind, code): an org unit code first, else a school code.
    UserError ``unit_unknown`` naming the first that is neither."""
    out: List[Tuple[str, str]] = []
    for code in codes:
        if conn.execute(select(org_units.c.id).where(org_units.c.code == code)).first():
            out.append(("org", code))
        elif conn.execute(select(schools.c.code).where(schools.c.code == code)).first():
            out.append(("school", code))
        else:
            raise UserError("unit_unknown", code)
    return tuple(dict.fromkeys(out))


def add_user(conn: Connection, name: str, role: str, password: Optional[str],
             units: Iterable[str] = (), now: Optional[float] = None) -> User:
    if not valid_name(name):
        raise UserError("user_name_invalid", name)
    if role not in USER_ROLES:
        raise UserError("role_unknown", role)
    unit_list = list(units)
    if role in SCOPED_ROLES and not unit_list:
        raise UserError("units_required", role)
    if role not in SCOPED_ROLES and unit_list:
        raise UserError("units_not_allowed", role)
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError("password_too_short", str(MIN_PASSWORD))
    if conn.execute(select(users.c.id).where(users.c.name == name)).first():
        raise UserError("user_exists", name)
    resolved = resolve_units(conn, unit_list)
    key = conn.execute(users.insert().values(
        name=name, role=role, disabled=False, created_at=now or time.time(),
        password_hash=_hasher.hash(password) if password is not None else None
    )).inserted_primary_key
    assert key is not None
    uid = int(key[0])
    if resolved:
        conn.execute(user_units.insert(), [{"user_id": uid, "kind": k, "code": c}
                                           for k, c in resolved])
    return User(uid, name, role, False, resolved)


def _units_of(conn: Connection, uid: int) -> Tuple[Tuple[str, str], ...]:
    return tuple((r.kind, r.code) for r in conn.execute(
        select(user_units.c.kind, user_units.c.code).where(user_units.c.user_id == uid)
        .order_by(user_units.c.kind, user_units.c.code)))


def get_user(conn: Connection, name: str) -> Optional[User]:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        return None
    return User(row.id, row.name, row.role, bool(row.disabled), _units_of(conn, row.id))


def user_by_id(conn: Connection, uid: int) -> Optional[User]:
    row = conn.execute(select(users).where(users.c.id == uid)).first()
    if row is None:
        return None
    return User(row.id, row.name, row.role, bool(row.disabled), _units_of(conn, row.id))


def list_users(conn: Connection) -> List[Dict[str, Any]]:
    out = []
    for row in conn.execute(select(users).order_by(users.c.name)):
        out.append({"name": row.name, "role": row.role, "disabled": bool(row.disabled),
                    "created_at": row.created_at, "disabled_at": row.disabled_at,
                    "units": [c for _, c in _units_of(conn, row.id)]})
    return out


def disable_user(conn: Connection, name: str, now: Optional[float] = None) -> User:
    """Disable ``name`` and end its sessions and tokens (refused from the next request)."""
    user = get_user(conn, name)
    if user is None:
        raise UserError("user_unknown", name)
    t = now or time.time()
    conn.execute(update(users).where(users.c.id == user.id).values(disabled=True,
                                                                   disabled_at=t))
    conn.execute(delete(sessions).where(sessions.c.user_id == user.id))
    conn.execute(update(api_tokens).where(api_tokens.c.user_id == user.id,
                                          api_tokens.c.revoked_at.is_(None))
                 .values(revoked_at=t))
    return user._replace(disabled=True)


def check_password(conn: Connection, name: str, password: str) -> Optional[User]:
    """The user when ``name`` exists, is enabled and ``password`` matches; else None. An
    unknown name costs a hash too, so timing does not tell which names exist."""
    row = conn.execute(select(users).where(users.c.name == name)).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        ok: bool = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or row.disabled or not row.password_hash:
        return None
    if _hasher.check_needs_rehash(stored):
        conn.execute(update(users).where(users.c.id == row.id)
                     .values(password_hash=_hasher.hash(password)))
    return User(row.id, row.name, row.role, False, _units_of(conn, row.id))


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


# --- sessions -------------------------------------------------------------------------------

class SessionRow(NamedTuple):
    user: User
    csrf: str
    created_at: float
    last_seen: float


def create_session(conn: Connection, user: User, client: Optional[str],
                   now: Optional[float] = None) -> Tuple[str, str]:
    """(cookie token, CSRF token) of a new session."""
    token = new_token("s_")
    csrf = secrets.token_urlsafe(32)
    t = now or time.time()
    conn.execute(sessions.insert().values(token_hash=hash_secret(token), user_id=user.id,
                                          csrf=csrf, created_at=t, last_seen=t,
                                          client=(client or "")[:64]))
    return token, csrf


def find_session(conn: Connection, token: str, idle: float, absolute: float,
                 now: Optional[float] = None, touch_after: float = 60.0) -> Optional[SessionRow]:
    """The live session of ``token`` with its (enabled) user; an expired one is deleted.
    ``last_seen`` is written at most every ``touch_after`` s (no write per request)."""
    t = now or time.time()
    h = hash_secret(token)
    row = conn.execute(
        select(sessions.c.user_id, sessions.c.csrf, sessions.c.created_at,
               sessions.c.last_seen, users.c.disabled)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.token_hash == h)).first()
    if row is None:
        return None
    if row.disabled or t - row.last_seen > idle or t - row.created_at > absolute:
        conn.execute(delete(sessions).where(sessions.c.token_hash == h))
        return None
    if t - row.last_seen > touch_after:
        conn.execute(update(sessions).where(sessions.c.token_hash == h).values(last_seen=t))
    user = user_by_id(conn, row.user_id)
    if user is None:
        return None
    return SessionRow(user, row.csrf, row.created_at, row.last_seen)


def end_session(conn: Connection, token: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == hash_secret(token)))


def purge_sessions(conn: Connection, idle: float, absolute: float,
                   now: Optional[float] = None) -> int:
    t = now or time.time()
    res = conn.execute(delete(sessions).where(
        (sessions.c.last_seen < t - idle) | (sessions.c.created_at < t - absolute)))
    return int(res.rowcount or 0)


# --- personal API tokens ----------------------------------------------------------------------

def create_token(conn: Connection, name: str, now: Optional[float] = None) -> Tuple[User, str]:
    """A new personal token for ``name`` (returned once; only its hash is kept)."""
    user = get_user(conn, name)
    if user is None:
        raise UserError("user_unknown", name)
    if user.disabled:
        raise UserError("user_disabled", name)
    token = new_token("smu_")
    conn.execute(api_tokens.insert().values(user_id=user.id, token_hash=hash_secret(token),
                                            created_at=now or time.time()))
    return user, token


def find_token(conn: Connection, token: str) -> Optional[User]:
    """The enabled user of a live personal token, or None."""
    row = conn.execute(
        select(api_tokens.c.user_id).join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.token_hash == hash_secret(token), api_tokens.c.revoked_at.is_(None),
               users.c.disabled.is_(False))).first()
    return None if row is None else user_by_id(conn, row.user_id)


# --- failed logins ----------------------------------------------------------------------------

def record_failure(conn: Connection, name: str, client: str, now: Optional[float] = None) -> None:
    conn.execute(login_failures.insert().values(ts=now or time.time(), name=name[:64],
                                                client=client[:64]))


def failures_since(conn: Connection, name: str, client: str, since: float) -> Tuple[int, int, float]:
    """(failures for this name, failures from this client, oldest of them) since ``since``."""
    by_name = conn.execute(select(func.count(), func.min(login_failures.c.ts))
                           .where(login_failures.c.name == name[:64],
                                  login_failures.c.ts >= since)).one()
    by_client = conn.execute(select(func.count(), func.min(login_failures.c.ts))
                             .where(login_failures.c.client == client[:64],
                                    login_failures.c.ts >= since)).one()
    oldest = min(x for x in (by_name[1], by_client[1], since + 0.0) if x is not None)
    return int(by_name[0]), int(by_client[0]), float(oldest)


def purge_failures(conn: Connection, before: float) -> None:
    conn.execute(delete(login_failures).where(login_failures.c.ts < before))
