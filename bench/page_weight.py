"""Page weight of the web pages, as a browser on a cold cache receives them: the document
and every resource's transferSize (compressed, headers included) in Debian's Chromium.

    python bench/page_weight.py URL NAME PASSWORD   # e.g. the demo's URL and admin login

Pages: the overview, the school list, the first school, the device list, its first
device with 30-day charts."""
import sys

import httpx
from playwright.sync_api import sync_playwright


def main() -> None:
    url, name, password = sys.argv[1:4]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                               args=["--no-sandbox", "--disable-gpu"])
        ctx = b.new_context()
        p = ctx.new_page()
        p.goto(url + "/login")
        p.fill("#login-name", name)
        p.fill("#login-password", password)
        p.press("#login-password", "Enter")
        p.wait_for_selector("#cards-schools")
        cookies = {c["name"]: c["value"] for c in ctx.cookies()}
        school = httpx.get(url + "/api/v1/schools?per_page=1", cookies=cookies).json()["items"][0]
        device = httpx.get(url + "/api/v1/schools/" + school["code"],
                           cookies=cookies).json()["devices"][0]["id"]
        for path in ["/", "/schools", "/schools/" + school["code"], "/devices",
                     "/devices/%s?range=30d" % device]:
            fresh = b.new_context(storage_state=ctx.storage_state())  # cold cache, same session
            q = fresh.new_page()
            q.goto(url + path)
            q.wait_for_selector("body[data-settled='1']")
            q.wait_for_load_state("networkidle")
            r = q.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
              const rs = performance.getEntriesByType('resource');
              return [n.transferSize + rs.reduce((a, e) => a + e.transferSize, 0),
                      n.decodedBodySize + rs.reduce((a, e) => a + e.decodedBodySize, 0),
                      rs.length + 1]; }""")
            print("%-40s %6.1f KB on the wire (%6.1f KB decoded, %d requests)"
                  % (path, r[0] / 1024, r[1] / 1024, r[2]))
            fresh.close()
        b.close()


if __name__ == "__main__":
    main()
