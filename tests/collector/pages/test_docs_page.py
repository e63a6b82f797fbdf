"""/docs (Swagger UI, served by the collector from static/swagger/) in Debian's Chromium,
and a check that the request recording the page tests rely on catches a foreign address."""
from types import SimpleNamespace
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import expect
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.store import StateStore
from schoolmon.collector.store import schema as db

from tests.servers import free_port

from .pagehelp import assert_loopback_only, new_page, screenshot


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[str]:
    engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("docs") / "state.db"))
    db.create_all(engine)
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token="adm-" + "a" * 28, read_tokens=[]),
                          province=SimpleNamespace(timezone="Asia/Ho_Chi_Minh"))
    server = ApiServer(create_app(StateStore(engine), cfg), "127.0.0.1", free_port()).start()
    try:
        yield server.url
    finally:
        server.stop()
        engine.dispose()


def test_docs_renders_offline(live, browser):
    w = new_page(browser)
    try:
        p = w.page
        p.goto(live + "/docs")
        expect(p.locator(".swagger-ui .info .title")).to_contain_text("schoolmon collector")
        # every operation of the API is listed
        expect(p.locator(".opblock-summary-path[data-path='/api/v1/summary']")).to_be_visible()
        paths = p.eval_on_selector_all(".opblock-summary-path",
                                       "es => es.map(e => e.getAttribute('data-path'))")
        spec = httpx.get(live + "/openapi.json", timeout=10).json()
        assert set(paths) == set(spec["paths"]) and "/api/v1/devices/{device_id}" in paths
        expect(p.locator(".swagger-ui .btn.authorize")).to_be_visible()
        screenshot(p, "docs-laptop")
        w.expect_errors()
        assert_loopback_only(w.requests)
        assert any(u.endswith("/static/swagger/swagger-ui-bundle.js") for u in w.requests)
        assert any(u.endswith("/openapi.json") for u in w.requests)
    finally:
        w.context.close()


def test_every_page_request_is_recorded(live, browser):
    """The recording itself works: a page that asks for a foreign address is caught (the
    request is answered locally, so nothing leaves the machine)."""
    w = new_page(browser)
    try:
        p = w.page
        p.route("http://example.invalid/**", lambda route: route.fulfill(status=204, body=""))
        p.goto(live + "/api/v1/summary")  # a JSON answer: no page CSP to stop the fetch
        with p.expect_request("http://example.invalid/x"):
            p.evaluate("fetch('http://example.invalid/x', {mode: 'no-cors'}).catch(() => 0)")
        with pytest.raises(AssertionError, match="example.invalid"):
            assert_loopback_only(w.requests)
    finally:
        w.context.close()
