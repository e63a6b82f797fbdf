"""The nginx recipe (deploy/nginx/speedtest.conf) served by real nginx on a private prefix
and a free loopback port, files made by its script; one real test of the agent against it."""
import os
import shutil
import subprocess
import time

import pytest
from schoolmon.agent.families import speedtest as st
from schoolmon.agent.families.speedtest import SpeedtestFamily

from tests.servers import free_port, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPE = os.path.join(ROOT, "deploy", "nginx", "speedtest.conf")
SCRIPT = os.path.join(ROOT, "deploy", "nginx", "make-speedtest-files.sh")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def nginx(tmp_path):
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (deploy/dev/install-test-servers.sh)")
    port = free_port()
    www = tmp_path / "www"
    subprocess.run([SCRIPT, str(www), "350", "4000"], check=True, capture_output=True)
    with open(RECIPE) as fh:
        recipe = fh.read()
    recipe = recipe.replace("listen 8081;", "listen 127.0.0.1:%d;" % port)
    recipe = recipe.replace("root /var/www/speedtest;", "root %s;" % www)
    (tmp_path / "speedtest.conf").write_text(recipe)
    for d in ("logs", "tmp"):
        (tmp_path / d).mkdir()
    (tmp_path / "nginx.conf").write_text("""
daemon off;
master_process off;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    include {p}/speedtest.conf;
}}
""".format(p=tmp_path))
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc=proc)
        yield "http://127.0.0.1:%d/speedtest/upload.php" % port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_one_test_against_the_nginx_recipe(nginx, monkeypatch):
    monkeypatch.setattr(st, "FULL_SECONDS", 1.5)
    began = time.monotonic()
    r = SpeedtestFamily(speedtest_net=False, io_timeout=5.0).run(server=nginx, mode="full",
                                                                 budget=400 * 10 ** 6)
    assert r["ok"] is True, r
    assert r["down_mbps"] > 10 and r["up_mbps"] > 10
    assert 0 < r["bytes_rx"] + r["bytes_tx"] <= 400 * 10 ** 6
    assert r["ip"] == "127.0.0.1"  # ip.txt: the address nginx saw
    assert r["if"] == "lo" and "wired" not in r and "link_mbps" not in r  # the route to it
    assert time.monotonic() - began < 30
