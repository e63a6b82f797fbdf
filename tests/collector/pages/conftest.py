"""Fixtures of the browser tests: the real demo (``schoolmon-collector demo``: broker,
collector, simulated province, one real agent) as a child process on a free loopback port,
its two logins plus a Sở viewer and an area officer added with ``user add``, and Debian's
Chromium."""
import os
import re
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any, Dict, Iterator

import httpx
import pytest

from tests.e2e_help import COLLECTOR, clean_env, kill_group
from tests.servers import free_port

from .pagehelp import CHROMIUM, FLAGS

VIEWER = ("sovien", "Xem-toan-tinh-2026")
OFFICER = ("khuvuc", "Can-bo-khu-vuc-2026")
OFFICER_AREA = "lao-cai/huyen-bat-xat"


def _read_banner(proc: subprocess.Popen, deadline: float) -> str:
    out = []
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out.append(line)
        if "Ctrl-C" in line:
            return "".join(out)
    raise AssertionError("the demo did not come up:\n" + "".join(out))


def _add_user(store_url: str, name: str, role: str, password: str, *units: str) -> None:
    args = [COLLECTOR, "user", "add", name, "--role", role]
    for u in units:
        args += ["--unit", u]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60,
                       env=clean_env(SCHOOLMON_STORE_URL=store_url,
                                     SCHOOLMON_USER_PASSWORD=password))
    assert r.returncode == 0, (r.stdout, r.stderr)


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("pages-demo")
    port = free_port()
    proc = subprocess.Popen([COLLECTOR, "demo", "--dir", str(folder / "var")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            # the page tests insert the alerts they look at; the demo's
                            # own evaluator would close them (their conditions are false)
                            env=clean_env(SCHOOLMON_API_LISTEN="127.0.0.1:%d" % port,
                                          SCHOOLMON_ALERTING_ENABLED="false"),
                            start_new_session=True, cwd=str(folder))
    drain = None
    try:
        banner = _read_banner(proc, time.time() + 120)
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", banner)
        admin = re.search(r"administrator:\s+(\S+) / (\S+)", banner)
        tech = re.search(r"school technician:\s+(\S+) / (\S+)", banner)
        school = re.search(r"trường (\S+) / school technician", banner)
        assert url and admin and tech and school, banner
        # the demo keeps printing; nobody reads it from here on
        drain = subprocess.Popen([sys.executable, "-c", "import sys\nfor _ in sys.stdin: pass"],
                                 stdin=proc.stdout)
        store_url = "sqlite:///" + os.path.join(str(folder), "var", "schoolmon.db")
        _add_user(store_url, VIEWER[0], "so_viewer", VIEWER[1])
        _add_user(store_url, OFFICER[0], "area_officer", OFFICER[1], OFFICER_AREA)
        users: Dict[str, Any] = {"so_admin": (admin.group(1), admin.group(2)),
                                 "school_tech": (tech.group(1), tech.group(2)),
                                 "so_viewer": VIEWER, "area_officer": OFFICER}
        yield SimpleNamespace(url=url.group(1), users=users, tech_school=school.group(1),
                              token="demo-admin-token", proc=proc, store_url=store_url)
    finally:
        kill_group(proc, 15)
        kill_group(proc)
        if drain is not None:
            drain.wait(10)


def api_get(demo: SimpleNamespace, path: str) -> Any:
    r = httpx.get(demo.url + path, headers={"Authorization": "Bearer " + demo.token}, timeout=30)
    r.raise_for_status()
    return r.json()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is not installed: run `make servers` (Debian package chromium)")
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS,
                               timeout=30_000)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()
