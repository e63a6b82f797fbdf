"""``schoolmon-collector demo`` as ``make demo`` runs it: a subprocess; the fleet must be
visible through the API within a minute, and Ctrl-C must leave no process behind."""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest
from schoolmon.collector.demo import DEMO_TOKEN
from schoolmon.collector.simulate import deal_links, province_fixture
from schoolmon.collector.text import parse_time
from zoneinfo import ZoneInfo

from tests.e2e_help import clean_env
from tests.servers import free_port

SCRIPT = os.path.join(os.path.dirname(sys.executable), "schoolmon-collector")
SCHOOLS, PER_SCHOOL = 36, 9  # the demo's defaults


def _local(value):
    return parse_time(value).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))


def _epoch(value):
    return parse_time(value).timestamp()


def _tail(path, n=30):
    try:
        return "".join(open(path, encoding="utf-8", errors="replace").readlines()[-n:])
    except OSError:
        return "(no %s)" % path


def _firing(store):
    """{rule: firing alerts} in the demo's store."""
    import sqlite3
    try:
        with sqlite3.connect("file:%s?mode=ro" % store, uri=True, timeout=5) as c:
            return dict(c.execute("SELECT rule, count(*) FROM alerts WHERE state = 'firing' "
                                  "GROUP BY rule").fetchall())
    except sqlite3.Error:
        return {}


def _mail(path):
    import email
    import email.policy
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def _subject(path):
    return str(_mail(path)["Subject"])


def _to(path):
    return str(_mail(path)["To"])


@pytest.mark.slow
def test_demo_shows_a_populated_fleet_within_a_minute_and_stops_cleanly(tmp_path):
    port = free_port()
    env = clean_env()
    env.update(SCHOOLMON_API_LISTEN="127.0.0.1:%d" % port, SCHOOLMON_DEMO_SETTLE="5")
    t0 = time.monotonic()
    proc = subprocess.Popen([SCRIPT, "demo", "--dir", str(tmp_path / "demo")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children = []
    lines = []  # the demo's output, read as it comes (the banner has the logins)
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        url = "http://127.0.0.1:%d" % port
        time.sleep(0.5)
        children = psutil.Process(proc.pid).children(recursive=True)  # for the cleanup
        auth = {"Authorization": "Bearer " + DEMO_TOKEN}
        province = province_fixture(SCHOOLS, PER_SCHOOL, seed=1)
        # one router per school: router.{school}, polled by its tester (not the fixture's
        # own router device), and the real agent
        testers = [lp.tester for lp in deal_links(province).values() if lp.tester]
        expected = sum(1 for d in province.devices if d.role != "router") + len(testers) + 1
        summary = None
        while time.monotonic() - t0 < 60:
            assert proc.poll() is None, "".join(lines)
            try:
                r = httpx.get(url + "/api/v1/summary", headers=auth, timeout=2)
                if r.status_code == 200:
                    summary = r.json()
                    by = summary["devices"]["by_status"]
                    if (by["online"] >= 0.8 * expected and by["offline"] > 0
                            and summary["devices"]["total"] == expected):
                        break  # the live devices, the dead ones and the real agent
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        elapsed = time.monotonic() - t0
        assert summary is not None, "API never answered"
        print("demo: fleet populated %.1f s after start: %s" % (elapsed, summary["devices"]))
        assert summary["devices"]["by_status"]["online"] >= 0.8 * expected, summary
        assert summary["schools"]["total"] == SCHOOLS
        assert summary["devices"]["total"] == expected
        # some of the province is offline, as in life
        assert summary["devices"]["by_status"]["offline"] > 0
        # every offline device says when it was last heard and since when it is offline
        gone = httpx.get(url + "/api/v1/devices", headers=auth,
                         params={"status": "offline", "per_page": 500}).json()["items"]
        assert gone and all(d["last_seen"] and d["status_since"] for d in gone), gone
        # the province has a past: a lab PC's 30 days of hourly points, none at night ...
        now = time.time()
        lab = next(d for d in province.devices if d.role == "lab" and d.online)
        month = httpx.get(url + "/api/v1/devices/%s/series" % lab.id, headers=auth,
                          params={"metric": "cpu_pct", "from": now - 30 * 86400,
                                  "to": now}).json()
        assert len(month["points"]) >= 150, month
        nights = [p for p in month["points"][:-2]  # the live simulation's hour aside
                  if not 6 <= _local(p["ts"]).hour < 18]
        assert not nights, nights
        # ... the overview's 30-day trend with Sundays below school days ...
        trend = httpx.get(url + "/api/v1/overview", headers=auth).json()["trend"]["points"]
        assert len(trend) == 30
        sundays = [p["n"] for p in trend[:-1] if _local(p["ts"]).weekday() == 6]
        weekdays = [p["n"] for p in trend[:-1] if _local(p["ts"]).weekday() < 5]
        assert sundays and weekdays and max(sundays) < min(weekdays), trend
        # ... and devices offline for more than 3 days, heard last days ago
        away = httpx.get(url + "/api/v1/devices", headers=auth,
                         params={"offline_days": 3, "per_page": 500}).json()["items"]
        assert away and all(_epoch(d["last_seen"]) < now - 3 * 86400 for d in away), away
        # and some schools lost their router while their PCs are on
        down = {d["school"]["code"] for d in gone if d["role"] == "router"}
        conditions = {httpx.get(url + "/api/v1/schools/" + code, headers=auth)
                      .json()["condition"] for code in down}
        assert conditions == {"router_down"}, conditions
        # the evaluator and routing run in the demo: its fleet fires real alerts (dead
        # routers, antivirus off, ...), and their e-mails land in the demo's mail folder
        # (its own SMTP sink), never further
        store = tmp_path / "demo" / "schoolmon.db"
        mail = tmp_path / "demo" / "mail"
        deadline = time.monotonic() + 150
        firing, kept = {}, []
        while time.monotonic() < deadline:
            firing = _firing(store)
            kept = sorted(mail.glob("*.eml")) if mail.is_dir() else []
            alert_mails = [m for m in kept if _subject(m).startswith("[schoolmon] ")
                           and "Báo cáo cảnh báo" not in _subject(m)]  # not the digest
            if firing.get("router_down") and firing.get("device_av_off") and alert_mails:
                break
            time.sleep(1.0)
        assert firing.get("router_down") and firing.get("device_av_off"), firing
        assert alert_mails, (kept, "".join(lines))
        assert str(mail) in "".join(lines)  # the banner says where they land
        # every recipient is on the reserved demo domain: nobody real is mailed
        assert all(_to(m).endswith("@demo.schoolmon.invalid") for m in kept), kept
        # the real agent of this machine reports in the first school
        first = province.schools[0].code
        sim_ids = {d.id for d in province.devices} | {"router." + s.code
                                                      for s in province.schools}
        deadline = time.monotonic() + 30
        real = []
        while time.monotonic() < deadline:
            school = httpx.get(url + "/api/v1/schools/" + first, headers=auth).json()
            real = [d for d in school["devices"] if d["id"] not in sim_ids]
            if real and real[0]["role"] and real[0]["status"] == "online":
                break  # its inventory (role) has arrived
            time.sleep(0.5)
        assert len(real) == 1 and real[0]["status"] == "online", (
            school["devices"], _tail(tmp_path / "demo" / "agent.log"))
        assert real[0]["role"] == "office"
        # the printed logins: an administrator, and the technician who sees one school
        deadline = time.monotonic() + 30
        logins = []
        while time.monotonic() < deadline and len(logins) < 2:
            logins = re.findall(r"(?:administrator|school technician): +(\S+) / (\S+)",
                                "".join(lines))
            time.sleep(0.2)
        assert [name for name, _ in logins] == ["admin", "kythuat"], "".join(lines)
        for (name, password), schools in zip(logins, (SCHOOLS, 1)):
            c = httpx.Client(base_url=url, timeout=10)
            r = c.post("/api/v1/session", json={"name": name, "password": password})
            assert r.status_code == 200, r.text
            assert c.get("/api/v1/schools").json()["total"] == schools
        # the pages (without a session: to the login page) and the open endpoints
        r = httpx.get(url + "/")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
        assert httpx.get(url + "/login").status_code == 200
        assert httpx.get(url + "/healthz").json()["status"] == "ok"
        assert "schoolmon_messages_received_total" in httpx.get(url + "/metrics").text

        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "schoolmon-agent" in names or "schoolmon.agent" in names
        t_stop = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(40) == 0
        print("demo: stopped %.1f s after SIGINT" % (time.monotonic() - t_stop))
        reader.join(10)
        out = "".join(lines)
        assert "demo-admin-token" in out and url in out and "Traceback" not in out, out
        for c in children:
            try:
                alive = c.is_running() and c.status() != psutil.STATUS_ZOMBIE
                what = " ".join(c.cmdline())
            except psutil.NoSuchProcess:
                alive = False
            assert not alive, (what, out, _tail(tmp_path / "demo" / "agent.log"))
        # nothing listens any more
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/healthz", timeout=1)
    finally:
        if proc.poll() is None:  # a failed assertion: let the demo stop its children
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for c in children:
            try:
                if c.is_running() and c.status() != psutil.STATUS_ZOMBIE:
                    c.kill()
            except psutil.NoSuchProcess:
                pass


def test_embedded_amqtt_serves_paho_311_with_last_will_but_not_mqtt5():
    """What the demo's amqtt fallback can and cannot do (amqtt 0.12): MQTT 3.1.1 paho
    clients get retained messages and the Last Will; MQTT 5 clients (our agent and
    collector) are refused — which is why the demo prefers a private Mosquitto."""
    import paho.mqtt.client as mqtt
    from schoolmon.collector.demo import AmqttBroker
    broker = AmqttBroker(free_port()).start()
    clients = []
    try:
        got = []
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher")
        sub.on_message = lambda c, u, m: got.append((m.topic, m.payload, m.retain))
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe("schoolmon/v1/#", qos=1)
        sub.loop_start()
        clients.append(sub)
        dev = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="d1")
        dev.will_set("schoolmon/v1/S1/d1/status", b'{"state":"offline"}', qos=1, retain=True)
        dev.connect("127.0.0.1", broker.port, keepalive=2)
        dev.loop_start()
        dev.publish("schoolmon/v1/S1/d1/status", b'{"state":"online"}', qos=1,
                    retain=True).wait_for_publish(5)
        time.sleep(0.3)
        dev.loop_stop()
        dev.socket().close()  # the device vanishes without DISCONNECT
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (b'{"state":"offline"}' not in
                                               [p for _, p, _ in got]):
            time.sleep(0.1)
        assert (b'{"state":"online"}' in [p for _, p, _ in got])
        assert (b'{"state":"offline"}' in [p for _, p, _ in got]), got
        # a late subscriber gets the retained Last Will
        late = []
        lc = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="late")
        lc.on_message = lambda c, u, m: late.append((m.payload, m.retain))
        lc.connect("127.0.0.1", broker.port)
        lc.subscribe("schoolmon/v1/S1/d1/status", qos=1)
        lc.loop_start()
        clients.append(lc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not late:
            time.sleep(0.05)
        assert late and late[0] == (b'{"state":"offline"}', True)
        # MQTT 5 is refused
        result = []
        v5 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="v5",
                         protocol=mqtt.MQTTv5)
        v5.on_connect = lambda c, u, f, rc, p=None: result.append(rc)
        v5.connect("127.0.0.1", broker.port)
        v5.loop_start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not result:
            time.sleep(0.05)
        v5.loop_stop()
        v5.disconnect()
        assert result and result[0].is_failure
    finally:
        for c in clients:
            c.loop_stop()
            c.disconnect()
        broker.stop()


def test_demo_with_embedded_amqtt_populates_the_fleet(tmp_path):
    """The amqtt fallback (a machine without Mosquitto): the collector, the real agent and
    the simulator speak MQTT 3.1.1 to it, the fleet fills, and the demo stops cleanly."""
    env = clean_env()
    env["SCHOOLMON_API_LISTEN"] = "127.0.0.1:%d" % free_port()
    proc = subprocess.Popen([SCRIPT, "demo", "--dir", str(tmp_path / "demo"), "--broker",
                             "amqtt", "--settle", "40", "--schools", "3",
                             "--devices-per-school", "4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        reported = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"fleet after \d+ s: (\d+)/(\d+) thi", line)
            if found:
                reported = int(found.group(1)), int(found.group(2))
                break
        text = "".join(lines)
        assert "amqtt" in text and "MQTT 3.1.1" in text, text
        assert reported is not None, text
        seen, expected = reported
        assert seen >= 0.8 * expected, text
        assert "not connected" not in text, text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _procs_under(folder):
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(folder in part for part in (p.info["cmdline"] or [])):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


@pytest.mark.slow
def test_demo_killed_hard_leaves_nothing_after_the_next_start(tmp_path):
    """SIGKILL gives the demo no chance to clean up: the agent goes with it (parent-death
    signal); a Mosquitto that dropped root (which clears that signal) is stopped by the
    next demo in the same folder."""
    folder = str(tmp_path / "demo")
    env = clean_env()

    def start():
        env["SCHOOLMON_API_LISTEN"] = "127.0.0.1:%d" % free_port()
        return subprocess.Popen([SCRIPT, "demo", "--dir", folder, "--schools", "3",
                                 "--devices-per-school", "2", "--settle", "1"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    proc = start()
    try:
        for line in proc.stdout:
            if "Ctrl-C" in line:
                break
        assert len(_procs_under(folder)) >= 2  # broker and agent
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                "agent" in " ".join(p.cmdline()) for p in _procs_under(folder)):
            time.sleep(0.1)
        assert not [p for p in _procs_under(folder) if "agent" in " ".join(p.cmdline())]
        proc = start()
        for line in proc.stdout:
            if "Ctrl-C" in line:
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert _procs_under(folder) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in _procs_under(folder):
            p.kill()
