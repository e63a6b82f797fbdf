"""End to end through the real boundary: payloads published with Mosquitto's own client
(`mosquitto_pub`) → the real broker → the installed `schoolmon-collector run` on a fresh
PostgreSQL → its HTTP API. A school flips from Đạt to Không đạt when its PCs' antivirus
goes off, and back; a security payload with a missing or wrong-typed field is refused
and counted, and changes nothing (the pages engineer adds the Chromium part)."""
import json
import os
import random
import time

from schoolmon.collector.store import schema as db
from schoolmon.protocol import encode, envelope, topic
from sqlalchemy import select

from tests.collector.helpers import mosquitto_pub
from tests.collector.postures import good_security, windows_inventory
from tests.e2e_help import Collector, fresh_database, import_schools, wait_for, write_schools_csv

PCS = ("pc-office", "pc-lab1", "pc-lab2")


def publish(port, school, device, kind, seq, payload):
    raw = payload if isinstance(payload, bytes) else encode(envelope(kind, payload, seq,
                                                                     time.time()))
    mosquitto_pub(port, topic(school, device, kind), raw)


def test_school_flips_below_when_antivirus_goes_off_and_back(tmp_path, mosquitto, postgres):
    school = "79%06d" % random.randrange(10 ** 6)
    collector = Collector(str(tmp_path), mosquitto.url, fresh_database(postgres), "")
    with open(collector.config_path, "a", encoding="utf-8") as fh:
        fh.write("\n[baseline]\nevaluate_interval = 0.3\n")
    import_schools(write_schools_csv(os.path.join(str(tmp_path), "truong.csv"), school),
                   collector.config_path)
    collector.start()
    try:
        def attt():
            return collector.get("/api/v1/schools/%s" % school)["attt"]

        def wait_status(want):
            return wait_for(lambda: attt()["status"] == want, 60,
                            "school ATTT status %s (last: %s)" % (want, attt()["status"]),
                            step=0.2)

        seq = {d: 0 for d in PCS}

        def send(device, kind, fields):
            seq[device] += 1
            publish(mosquitto.port, school, device, kind, seq[device], fields)

        for d in PCS:
            send(d, "inventory", dict(hostname=d, agent="0.1.0", **windows_inventory(
                role="office" if d == "pc-office" else "lab")))
        for d in PCS:
            send(d, "security", good_security(time.time()))
        wait_status("meets")
        assert attt()["label"] == "Đạt"

        for d in PCS:
            send(d, "security", good_security(time.time(), av_on=False, av_name=""))
        wait_status("below")
        a = attt()
        assert a["label"] == "Không đạt"
        av = [c for c in a["checks"] if c["id"] == "av_on"][0]
        assert av["fail"] == 3 and {x["id"] for x in av["devices"]} == set(PCS)
        assert collector.get("/api/v1/summary")["below_baseline"]["security"] == 1
        dev = collector.device("pc-office")["security"]
        assert {c["id"]: c["state"] for c in dev["checks"]}["av_on"] == "fail"

        # bad input through the real boundary: refused, counted, nothing stored or changed
        before = collector.metrics().get("schoolmon_rejected_total", 0.0)
        stored = collector.device("pc-lab1")["latest"]["security"]["seq"]
        seq["pc-lab1"] += 1
        missing = good_security(time.time())
        del missing["os_family"]  # required
        publish(mosquitto.port, school, "pc-lab1", "security", seq["pc-lab1"], missing)
        seq["pc-lab1"] += 1
        wrong = json.loads(encode(envelope("security", good_security(time.time()),
                                           seq["pc-lab1"], time.time())))
        wrong["av_on"] = "yes"  # a string where a boolean belongs
        publish(mosquitto.port, school, "pc-lab1", "security", 0,
                json.dumps(wrong).encode())
        wait_for(lambda: collector.metrics().get("schoolmon_rejected_total", 0.0) >= before + 2,
                 30, "two rejects counted")
        m = collector.metrics()
        assert m.get('schoolmon_rejected_total{reason="missing_field"}', 0) >= 1
        assert m.get('schoolmon_rejected_total{reason="wrong_type"}', 0) >= 1
        assert collector.device("pc-lab1")["latest"]["security"]["seq"] == stored
        assert attt()["status"] == "below"

        for d in PCS:
            send(d, "security", good_security(time.time()))
        wait_status("meets")
        engine = db.make_engine(collector.store_url)
        try:
            with engine.connect() as conn:
                changes = [(r.detail["from"], r.detail["to"]) for r in conn.execute(
                    select(db.events).where(db.events.c.kind == "attt_status_changed",
                                            db.events.c.school == school)
                    .order_by(db.events.c.id))]
        finally:
            engine.dispose()
        # the first passes may run before every PC has reported (no_pcs, insufficient ...):
        # what follows is one event per change
        assert changes[0][0] == "not_evaluated", changes
        assert changes[-3][1] == "meets" and changes[-2:] == [("meets", "below"),
                                                              ("below", "meets")], changes
    finally:
        collector.close()
