"""The simulated province's security: every PC's facts pass the wire format's own validation
at any moment of the past 30 days, agree with its inventory, and tell the stories each
school's plan promises (which status the collector's evaluator gives them is tested with
the evaluator: tests/collector/simulate/test_posture_status.py)."""
import datetime as dt
import threading

import paho.mqtt.client as mqtt
from schoolmon.collector.simulate import Simulation, inventory_fields, province_fixture
from schoolmon.collector.simulate.posture import (
    OLD_AGENT_VERSION,
    PLAN_BLOCK,
    last_patch_tuesday,
    security_fields,
)
from schoolmon.protocol import decode, encode, envelope, topic

from tests.collector.helpers import wait_until

NOW = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.timezone.utc).timestamp()
DAY = 86400


def _pcs(p, school=None):
    return [d for d in p.devices if d.role != "router" and (school is None or d.school == school)]


def test_every_payload_validates_at_any_moment_of_the_month():
    p = province_fixture(36, 9, seed=1)
    checked = 0
    for hours in range(0, 30 * 24, 7):
        at = NOW - hours * 3600
        for d in p.devices:
            fields = security_fields(d, at, NOW)
            if fields is None:
                continue
            raw = encode(envelope("security", fields, 3, at))
            msg = decode(topic(d.school, d.id, "security"), raw)  # the collector's check
            assert msg.payload["os_family"] in ("windows", "linux")
            # what a real agent leaves unknown is named with a reason, never sent as well
            for u in fields.get("unknown", []):
                assert u["field"] not in fields and u["reason"], (d.id, u)
            checked += 1
    assert checked > 20_000


def test_the_same_device_and_moment_give_the_same_facts():
    one, two = province_fixture(12, 9, seed=1), province_fixture(12, 9, seed=1)
    assert one == two
    assert [security_fields(d, NOW) for d in one.devices] == \
        [security_fields(d, NOW) for d in two.devices]
    other = province_fixture(12, 9, seed=2)
    assert [security_fields(d, NOW) for d in other.devices] != \
        [security_fields(d, NOW) for d in one.devices]


def test_each_block_of_six_schools_holds_every_plan():
    p = province_fixture(36, 9, seed=1)
    plans = [p.plans[s.code] for s in p.schools]
    for i in range(0, 36, 6):
        assert sorted(plans[i:i + 6]) == sorted(PLAN_BLOCK), plans[i:i + 6]
    other = province_fixture(36, 9, seed=5)
    assert plans != [other.plans[s.code] for s in other.schools]  # dealt from the seed


def test_inventory_and_security_tell_the_same_os():
    p = province_fixture(36, 9, seed=1)
    for d in _pcs(p):
        inv = inventory_fields(d)
        sec = security_fields(d, NOW)
        if sec is None:
            assert inv["agent"] == OLD_AGENT_VERSION or d.sec is None
            continue
        assert sec["os_family"] == inv["os_name"].lower(), d.id
        if "os_ubr" in sec:
            assert inv["os_build"].endswith(".%d" % sec["os_ubr"]), d.id
        if inv["os_name"] == "Windows" and inv["os_version"] == "10":
            assert "esu" in sec
        if sec.get("frozen"):
            assert d.role == "lab" and sec["freeze_product"]


def test_the_plans_show_what_they_promise():
    p = province_fixture(36, 9, seed=1)
    by_plan = {}
    for s in p.schools:
        facts = [(d, security_fields(d, NOW)) for d in _pcs(p, s.code)]
        by_plan.setdefault(p.plans[s.code], []).append(facts)
    # meets: supported releases, antivirus on, firewall on, SMBv1 off on every PC
    for school in by_plan["meets"]:
        for d, f in school:
            assert f is not None and f["av_on"] is True, d.id
            assert f["fw_on"] and not f.get("smb1_server"), d.id
            assert d.os[1] not in ("7", "8.1") and not (d.os[1] == "10" and not f["esu"]), d.id
    # insufficient: at least two PCs whose old agent never reports security
    for school in by_plan["insufficient"]:
        silent = [d for d, f in school if f is None]
        assert len(silent) >= 2 and all(d.agent == OLD_AGENT_VERSION for d in silent)
    # below: Windows 7 lab PCs or an antivirus that is off, expired or unknown
    for school in by_plan["below"]:
        assert any(d.os[:2] == ("Windows", "7") or f.get("av_on") is not True
                   for d, f in school), [d.id for d, _ in school]
    everything = [(d, f) for schools in by_plan.values() for school in schools
                  for d, f in school if f is not None]
    names = {a["name"] for _d, f in everything for a in f["av"]}
    assert {"Microsoft Defender Antivirus", "Kaspersky Endpoint Security for Windows",
            "Bkav", "ClamAV"} <= names, names
    assert any(a.get("passive") for _d, f in everything for a in f["av"])  # Defender passive
    assert any(f.get("frozen") for _d, f in everything)  # a Deep Freeze lab
    assert any(d.os[:2] == ("Windows", "7") for d, _f in everything)
    assert any(d.os == ("Windows", "11", "26100.6899", "Pro Education", "24H2")
               for d, _f in everything)
    assert any(d.role == "server" and d.os[0] == "Linux" for d, _f in everything)
    assert any(f.get("esu") is True for _d, f in everything)
    assert any(f.get("esu") is False for _d, f in everything)
    assert any(f.get("av_sig_age_d", 0) > 7 for _d, f in everything)  # stale signatures
    assert any(f.get("unknown") for _d, f in everything)


def test_stories_change_the_facts_within_the_month():
    """Some schools' facts changed days ago (a lab re-imaged, Bkav installed, SMBv1 fixed):
    the daily ATTT history then has a trend, not a flat line."""
    p = province_fixture(36, 9, seed=1)
    changed = set()
    for d in _pcs(p):
        if d.sec is None or d.sec.story is None or not d.sec.reports:
            continue
        before = security_fields(d, NOW - 25 * DAY, NOW)
        after = security_fields(d, NOW, NOW)
        keys = ("av_on", "fw_on", "smb1_server")
        if any(before.get(k) != after.get(k) for k in keys):
            changed.add((p.plans[d.school], d.sec.story[1]))
    assert {("meets", "fixed_smb_fw"), ("improve", "av_installed"),
            ("below", "lite_image")} <= changed, changed


def test_patches_follow_patch_tuesday():
    assert dt.datetime.fromtimestamp(last_patch_tuesday(NOW), dt.timezone.utc).date() == \
        dt.date(2026, 11, 10)
    assert dt.datetime.fromtimestamp(last_patch_tuesday(NOW - 30 * DAY),
                                     dt.timezone.utc).date() == dt.date(2026, 10, 13)
    p = province_fixture(12, 9, seed=1)
    for d in _pcs(p):
        f = security_fields(d, NOW)
        if f and f["os_family"] == "windows" and d.sec.patch == "monthly" and not d.sec.frozen:
            assert 0 <= NOW - f["patch_last_ts"] <= 36 * DAY, d.id


def _subscriber(port, prefix):
    got = []
    lock = threading.Lock()
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(client, userdata, m):
        if m.topic.startswith(prefix):
            with lock:
                got.append((m.topic, m.payload))
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe("schoolmon/v1/#", qos=1)
    c.loop_start()
    return c, got


def test_the_fleet_publishes_security_at_start_and_when_antivirus_goes_off(shared_mosquitto):
    prov = province_fixture(6, 6, seed=3, province_code="94")
    reporting = {d.id for d in prov.devices if d.sec is not None and d.sec.reports}
    c, got = _subscriber(shared_mosquitto.port, "schoolmon/v1/94")
    sim = Simulation(shared_mosquitto.url, prov, rate=20, connections=2, final_status=False)
    try:
        wait_until(lambda: c.is_connected(), timeout=10, what="the subscriber")
        sim.start()

        def security(school=None):
            out = {}
            for t, raw in list(got):
                msg = decode(t, raw)
                if msg.kind == "security" and (school is None or msg.school == school):
                    out.setdefault(msg.device, []).append(msg.payload)
            return out
        wait_until(lambda: set(security()) == reporting, timeout=20,
                   what=lambda: "security from every reporting PC (%d of %d)"
                   % (len(security()), len(reporting)))
        # a school's antivirus goes off: its PCs say so at once, and come back on
        school = next(s.code for s in prov.schools if prov.plans[s.code] == "meets")
        n = sim.set_antivirus(school, on=False)
        online = {d.id for d in prov.devices if d.school == school and d.online} & reporting
        assert n == len(online) > 0
        wait_until(lambda: all(len(security(school).get(i, [])) >= 2 for i in online),
                   timeout=20, what="the school's PCs reporting again")
        assert all(security(school)[i][-1]["av_on"] is False for i in online)
        sim.set_antivirus(school, on=True)
        wait_until(lambda: all(len(security(school).get(i, [])) >= 3 for i in online),
                   timeout=20, what="the school's PCs reporting a third time")
        assert all(security(school)[i][-1]["av_on"] is True for i in online)
        seqs = [m["seq"] for m in security(school)[sorted(online)[0]]]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    finally:
        sim.stop()
        sim.join(20)
        c.loop_stop()
        c.disconnect()
    assert sim.stats.acked == sim.stats.sent
    assert sim.stats.security_sent >= len(reporting) + 2 * n
