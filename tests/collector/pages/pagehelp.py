"""Helpers for the browser tests of the pages: Debian's Chromium driven by Playwright (its
wheel carries the driver; ``executable_path`` is Debian's browser, nothing is downloaded),
pages watched for console errors and for requests leaving 127.0.0.1, screenshots written
to ``build/screenshots/`` (git ignores build/), login as a user."""
import os
import re
from types import SimpleNamespace
from typing import Any, List, Optional
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
# no sandbox as root, and none of Chromium's own traffic on a closed network
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 20_000
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))), "build", "screenshots")


class Watched(SimpleNamespace):
    """A page with every request URL, console error and page error recorded."""

    def expect_errors(self, *patterns: str) -> None:
        """The errors so far are exactly ones these patterns allow (then forgotten)."""
        unexpected = [e for e in self.errors if not any(re.search(p, e) for p in patterns)]
        assert unexpected == [], unexpected
        self.errors.clear()


def new_page(browser: Any, viewport: Optional[dict] = None) -> Watched:
    ctx = browser.new_context(locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                              viewport=viewport or LAPTOP)
    w = Watched(requests=[], errors=[], context=ctx)
    ctx.on("request", lambda r: w.requests.append(r.url))
    # should the page ever ask for another host, the request is stopped in the browser
    ctx.route(re.compile(r"^(?!https?://127\.0\.0\.1[:/])"), lambda route: route.abort())
    p = ctx.new_page()
    p.set_default_timeout(WAIT_MS)
    p.on("console", lambda m: m.type == "error" and w.errors.append(
        "%s (%s)" % (m.text, m.location.get("url"))))
    p.on("pageerror", lambda e: w.errors.append("pageerror: %s" % e))
    p.on("dialog", lambda d: d.accept())  # "approve all?" and the like: yes
    w.page = p
    return w


def assert_loopback_only(urls: List[str]) -> None:
    assert urls, "no request recorded"
    outside = [u for u in urls if urlsplit(u).scheme not in ("data", "blob")
               and urlsplit(u).hostname != "127.0.0.1"]
    assert outside == [], "requests leaving 127.0.0.1: %s" % outside


def settle(p: Any) -> None:
    """Wait until the page shows the answer to its latest request (the page marks it)."""
    from playwright.sync_api import expect
    expect(p.locator("body")).to_have_attribute("data-settled", "1", timeout=WAIT_MS)


def screenshot(p: Any, name: str) -> str:
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, name + ".png")
    p.screenshot(path=path, full_page=True)
    return path


def login(w: Watched, base: str, name: str, password: str, start: str = "/") -> None:
    from playwright.sync_api import expect
    p = w.page
    p.goto(base + start)
    expect(p.locator("#login-form")).to_be_visible()
    p.fill("#login-name", name)
    p.fill("#login-password", password)
    p.press("#login-password", "Enter")
    expect(p.locator("#logout")).to_be_visible()
    settle(p)


def chart_points(p: Any, chart_id: str) -> int:
    """How many points the uPlot instance of chart ``chart_id`` draws in its first series
    (waits for it); the breaks the chart puts into long gaps carry no value."""
    p.wait_for_function("id => { const el = document.getElementById(id);"
                        " return el && el.uplot && el.uplot.data[0].length > 0; }",
                        arg=chart_id, timeout=WAIT_MS)
    return int(p.evaluate("id => document.getElementById(id).uplot.data[1]"
                          ".filter(v => v !== null).length", chart_id))
