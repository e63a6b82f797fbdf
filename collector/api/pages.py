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
from typing import List

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from ..text import page_texts

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
SHELL = os.path.join(STATIC_DIR, "index.html")

#: The page addresses (FastAPI path syntax); the page's router (static/js/app.js) has the same.
PAGE_PATHS: List[str] = ["/", "/login", "/schools", "/schools/{code}", "/areas/{code:path}",
                         "/devices", "/devices/{device_id}", "/users", "/audit"]

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


def _page(request: Request) -> FileResponse:
    return shell()


for _path in PAGE_PATHS:
    router.add_api_route(_path, _page, methods=["GET"], response_class=FileResponse)

_TEXTS_JS = ("// Generated from collector/text.py (PAGE_TEXTS and the code labels): edit there.\n"
             "export default " + json.dumps(page_texts(), ensure_ascii=False, sort_keys=True)
             + ";\n").encode("utf-8")


_TEXTS_ETAG = '"%s"' % hashlib.sha256(_TEXTS_JS).hexdigest()[:20]


@router.get("/ui/texts.js")
def texts_js(request: Request) -> Response:
    headers = {"Cache-Control": "no-cache", "ETag": _TEXTS_ETAG}
    if request.headers.get("if-none-match") == _TEXTS_ETAG:
        return Response(status_code=304, headers=headers)
    return Response(_TEXTS_JS, media_type="text/javascript; charset=utf-8", headers=headers)
