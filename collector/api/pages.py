"""The web pages: one shell (``static/index.html``) served at every page address, so each
page can be bookmarked and shared (``/schools/{code}``, ``/devices/{id}``, ``/areas/{code}``,
...), and the pages' texts as a JavaScript module generated from ``collector/text.py``
(``/ui/texts.js``: one definition of every string). The page's script draws the page from the
API; an address that is no page answers the same shell with ``404`` and the page says so in
the user's language.
"""
import hashlib
import json
import os
from typing import List, Optional, Union
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import Table, select

from ..store import schema as db
from ..text import page_texts
from .deps import MaybePrincipal, Principal

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
SHELL = os.path.join(STATIC_DIR, "index.html")

#: The page addresses (FastAPI path syntax); the page's router (static/js/app.js) has the same.
PAGE_PATHS: List[str] = ["/", "/login", "/schools", "/schools/{code}", "/areas/{code:path}",
                         "/devices", "/devices/{device_id}", "/users", "/audit", "/connectivity",
                         "/alerts", "/alerts/{alert_id}"]

router = APIRouter(include_in_schema=False)


def shell(status_code: int = 200) -> FileResponse:
    """The page shell; ``no-cache``: revalidated each time (ETag), so a new version shows."""
    return FileResponse(SHELL, status_code=status_code, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


def wants_page(request: Request) -> bool:
    """A browser asking for a page (not a script asking for data)."""
    path = request.url.path
    if path.startswith(("/api/", "/static/", "/ui/")) or path in ("/healthz", "/metrics",
                                                                  "/openapi.json", "/docs"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _visible(request: Request, principal: Principal, table: Table, key: str,
             value: str) -> bool:
    """Whether the school or device ``value`` exists inside the caller's units: one outside
    answers 404 like one that does not exist, so codes do not leak (pages as the API)."""
    school = table.c.code if table is db.schools else table.c.school_code
    with request.app.state.engine.connect() as conn:
        found = conn.execute(select(school).where(table.c[key] == value)).first()
    return found is not None and (principal.scope is None or found[0] in principal.scope)


def _area_visible(request: Request, principal: Principal, code: str) -> bool:
    """Whether the area ``code`` (its full code or the last part, as the page addresses
    write it) exists and holds a school the caller may see."""
    units = db.org_units
    with request.app.state.engine.connect() as conn:
        found = conn.execute(select(units.c.code).where(
            (units.c.code == code) | units.c.code.endswith("/" + code, autoescape=True))).first()
        if found is None:
            return False
        if principal.scope is None:
            return True
        inside = request.app.state.unit_schools.visible(conn, [("org", found[0])])
    return bool(set(inside or ()) & principal.scope)


def _alert_visible(request: Request, principal: Principal, alert_id: str) -> bool:
    """Whether the alert exists and the caller may see it (one without a school, about the
    collector itself, only the province-wide roles)."""
    if not (alert_id.isascii() and alert_id.isdigit() and len(alert_id) <= 18):
        return False
    with request.app.state.engine.connect() as conn:
        found = conn.execute(select(db.alerts.c.school_code)
                             .where(db.alerts.c.id == int(alert_id))).first()
    return found is not None and (principal.scope is None or (
        found[0] is not None and found[0] in principal.scope))


def _page(request: Request, principal: MaybePrincipal, code: Optional[str] = None,
          device_id: Optional[str] = None,
          alert_id: Optional[str] = None) -> Union[FileResponse, RedirectResponse]:
    if request.url.path == "/login":
        return shell()
    if principal is None:  # not logged in: straight to the login page (no 401 in the page)
        target = request.url.path + ("?" + request.url.query if request.url.query else "")
        return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
    if (code is not None and request.url.path.startswith("/schools/")
            and not _visible(request, principal, db.schools, "code", code)):
        return shell(404)
    if device_id is not None and not _visible(request, principal, db.devices, "id", device_id):
        return shell(404)
    if alert_id is not None and not _alert_visible(request, principal, alert_id):
        return shell(404)
    if (code is not None and request.url.path.startswith("/areas/")
            and not _area_visible(request, principal, code)):
        return shell(404)
    return shell()


for _path in PAGE_PATHS:
    router.add_api_route(_path, _page, methods=["GET"], response_model=None)

_TEXTS_JS = ("// Generated from collector/text.py (PAGE_TEXTS and the code labels): edit there.\n"
             "export default " + json.dumps(page_texts(), ensure_ascii=False)
             + ";\n").encode("utf-8")


_TEXTS_ETAG = '"%s"' % hashlib.sha256(_TEXTS_JS).hexdigest()[:20]


@router.get("/ui/texts.js")
def texts_js(request: Request) -> Response:
    headers = {"Cache-Control": "no-cache", "ETag": _TEXTS_ETAG}
    if request.headers.get("if-none-match") == _TEXTS_ETAG:
        return Response(status_code=304, headers=headers)
    return Response(_TEXTS_JS, media_type="text/javascript; charset=utf-8", headers=headers)
