"""A message refused for good is kept aside and acknowledged; ingest goes on. Through a real
Mosquitto, a real state store (SQLite and PostgreSQL) and a real VictoriaMetrics.

The poison is made at the boundary itself, not in the wire format (which may refuse some
poisons first): PostgreSQL/SQLite refuse one device's rows by a constraint added here, and
an HTTP proxy in front of VictoriaMetrics answers 400 for any write carrying one device's
lines (as a server refusing a line would), forwarding everything else."""
import gzip
import http.server
import threading
import time
import urllib.request

import pytest
from schoolmon.collector.metrics import Registry
from schoolmon.collector.service import CollectorService
from schoolmon.collector.store import StateStore, dead_letters
from schoolmon.collector.store import schema as db
from schoolmon.protocol import encode, envelope, topic
from sqlalchemy import text

from tests.collector.helpers import config, mosquitto_pub, school_row, wait_until
from tests.collector.storehelp import engine_for

HEALTH = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 40.0, "up": 3600}


def health(seq, ts, cpu=12.5):
    return encode(envelope("health", dict(HEALTH, cpu_pct=cpu), seq, ts))


class RefusingProxy:
    """HTTP in front of a time-series server: 400 for a write whose lines mention
    ``needle``, the real server's answer for everything else."""

    def __init__(self, target: str, needle: bytes) -> None:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._forward(None)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                raw = (gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip"
                       else body)
                if needle in raw:
                    proxy.refused += 1
                    msg = b'{"code":"invalid","message":"line refused (test)"}'
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                self._forward(body)

            def _forward(self, body):
                req = urllib.request.Request(target + self.path, data=body,
                                             method=self.command)
                for k in ("Content-Type", "Content-Encoding", "Authorization"):
                    if self.headers.get(k):
                        req.add_header(k, self.headers[k])
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, data = r.status, r.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.refused = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from engine_for(request.param, tmp_path, postgres)


def refuse_device(engine, device):
    """The database refuses every row of ``device`` (a constraint, as a real database
    refuses a value it cannot hold)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE devices ADD CONSTRAINT test_refuse "
                              "CHECK (id <> '%s')" % device))
        else:
            conn.execute(text("CREATE TRIGGER test_refuse BEFORE INSERT ON devices "
                              "WHEN NEW.id = '%s' BEGIN SELECT RAISE(ABORT, 'refused "
                              "(test)'); END" % device))


def series(victoria, device):
    victoria.flush()
    return {int(ts) // 1000 for s in victoria.export('health_cpu_pct{device="%s"}' % device)
            for ts in s["timestamps"]}


def test_poisoned_messages_are_kept_aside_acknowledged_and_ingest_goes_on(
        mosquitto, victoria, engine):
    from schoolmon.collector.store import registry
    db.create_all(engine)
    registry.add_schools(engine, [school_row("S1")])
    refuse_device(engine, "dbpoison")
    proxy = RefusingProxy(victoria.url, b'device=tspoison')
    url = engine.url.render_as_string(hide_password=False)
    cfg = config(mosquitto.url, url, proxy.url, client_id="dead-letters", batch_wait=0.3)
    store = StateStore(engine)
    svc = CollectorService(cfg, store=store, registry=Registry(), stall_after=600).start()
    now = time.time()
    try:
        assert svc.ingest.wait_subscribed(10)
        # One batch: good messages around two poisoned ones.
        mosquitto_pub(mosquitto.port, topic("S1", "good1", "health"),
                      lines=b"\n".join(health(i, now - 50 + i) for i in range(1, 6)) + b"\n")
        mosquitto_pub(mosquitto.port, topic("S1", "dbpoison", "health"), health(1, now))
        mosquitto_pub(mosquitto.port, topic("S1", "tspoison", "health"), health(1, now))
        mosquitto_pub(mosquitto.port, topic("S1", "good2", "health"), health(1, now))
        wait_until(lambda: sum(dead_letters.count_by_reason(engine).values()) == 2,
                   timeout=30, what="two dead letters")
        assert dead_letters.count_by_reason(engine) == {"store_refused": 1,
                                                        "timeseries_refused": 1}
        letters = {x["device_id"]: x for x in dead_letters.recent(engine)}
        assert letters["dbpoison"]["reason"] == "store_refused"
        assert letters["dbpoison"]["payload"] == health(1, now)
        assert letters["dbpoison"]["topic"] == topic("S1", "dbpoison", "health")
        assert letters["dbpoison"]["school_code"] == "S1"
        assert letters["tspoison"]["reason"] == "timeseries_refused"
        assert "400" in letters["tspoison"]["detail"]
        assert proxy.refused >= 1
        # Every good message is stored, in the state store and the time series.
        wait_until(lambda: svc.ingest.pending() == 0, timeout=20, what="nothing pending")
        assert store.device("good1").last_seq == 5 and store.device("good2").last_seq == 1
        assert store.device("dbpoison") is None and store.device("tspoison") is None
        wait_until(lambda: series(victoria, "good1") == {int(now - 50 + i) for i in range(1, 6)},
                   timeout=20, what="good1's series")
        assert series(victoria, "tspoison") == set()
        assert svc.metrics.dead_letters.get(reason="store_refused") == 1
        assert svc.metrics.dead_letters.get(reason="timeseries_refused") == 1
        assert 'schoolmon_dead_letters_total{reason="timeseries_refused"} 1.0' in \
            svc.metrics.render()
        # Ingest goes on.
        mosquitto_pub(mosquitto.port, topic("S1", "good2", "health"), health(2, now + 1))
        wait_until(lambda: store.device("good2").last_seq == 2, timeout=20, what="later message")
    finally:
        svc.stop()
    # Acknowledged: after a reconnect, the broker has nothing left for us; the first
    # message to arrive is one published after it.
    svc2 = CollectorService(cfg, store=StateStore(engine), registry=Registry()).start()
    try:
        assert svc2.ingest.wait_subscribed(10)
        mosquitto_pub(mosquitto.port, topic("S1", "marker", "health"), health(1, now + 2))
        wait_until(lambda: svc2.metrics.received.get() >= 1 and svc2.ingest.pending() == 0,
                   timeout=20, what="the marker")
        assert svc2.metrics.received.get() == 1
        assert sum(dead_letters.count_by_reason(engine).values()) == 2
    finally:
        svc2.stop()
        proxy.close()


def test_lone_surrogate_never_stops_ingest(mosquitto, victoria, tmp_path):
    """The attack of issue 7: an escaped lone surrogate in a string field. Whether the wire
    format refuses it or the time-series write does, it is settled (never retried forever)
    and the messages after it are stored."""
    from schoolmon.collector.store import registry
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = db.make_engine(url)
    db.create_all(engine)
    registry.add_schools(engine, [school_row("S1")])
    cfg = config(mosquitto.url, url, victoria.url, client_id="surrogate", batch_wait=0.2)
    svc = CollectorService(cfg, registry=Registry(), stall_after=600).start()
    now = time.time()
    try:
        assert svc.ingest.wait_subscribed(10)
        poison = (b'{"v":1,"ts":%.3f,"seq":1,"cpu_pct":1.0,"cpu_n":2,"mem_pct":3.0,"up":9,'
                  b'"nics":[{"if":"eth\\ud800","rx":1,"tx":2}]}' % now)
        mosquitto_pub(mosquitto.port, topic("S1", "sur1", "health"), poison)
        mosquitto_pub(mosquitto.port, topic("S1", "after1", "health"), health(1, now))
        wait_until(lambda: svc.ingest.pending() == 0 and svc.metrics.received.get() == 2,
                   timeout=30, what="both settled")
        wait_until(lambda: series(victoria, "after1") == {int(now)}, timeout=20,
                   what="the message after it")
        settled = (svc.metrics.rejected.total()
                   + svc.metrics.dead_letters.get(reason="timeseries_refused"))
        assert settled == 1
        assert svc.readiness()["ingest"]["ok"] is True
    finally:
        svc.stop()
        engine.dispose()


def test_nul_in_a_hostname_never_stops_ingest_on_postgresql(mosquitto, postgres, tmp_path):
    """A NUL in an inventory string, which PostgreSQL text cannot hold: whether the wire
    format refuses it or the database does (then it is a dead letter), it is settled and
    the messages after it are stored."""
    from schoolmon.collector.store import registry
    gen = engine_for("postgresql", tmp_path, postgres)
    engine = next(gen)
    try:
        db.create_all(engine)
        registry.add_schools(engine, [school_row("S1")])
        url = engine.url.render_as_string(hide_password=False)
        cfg = config(mosquitto.url, url, "", client_id="nul-host", batch_wait=0.2)
        svc = CollectorService(cfg, store=StateStore(engine), registry=Registry(),
                               stall_after=600).start()
        now = time.time()
        try:
            assert svc.ingest.wait_subscribed(10)
            poison = (b'{"v":1,"ts":%.3f,"seq":1,"hostname":"pc\\u0000x","role":"lab",'
                      b'"os_name":"Windows","agent":"0.1.0"}' % now)
            mosquitto_pub(mosquitto.port, topic("S1", "nul1", "inventory"), poison)
            mosquitto_pub(mosquitto.port, topic("S1", "after2", "health"), health(1, now))
            wait_until(lambda: svc.ingest.pending() == 0 and svc.metrics.received.get() == 2,
                       timeout=30, what="both settled")
            settled = (svc.metrics.rejected.total()
                       + svc.metrics.dead_letters.get(reason="store_refused"))
            assert settled == 1
            assert svc.store.device("after2").last_seq == 1
            if svc.metrics.dead_letters.get(reason="store_refused"):
                letter = dead_letters.recent(engine)[0]
                assert letter["device_id"] == "nul1" and letter["payload"] == poison
        finally:
            svc.stop()
    finally:
        next(gen, None)


def test_wire_format_rejects_are_kept_aside_under_their_reason(mosquitto, tmp_path):
    from schoolmon.collector.store import registry
    from schoolmon.protocol import MAX_PAYLOAD_BYTES
    url = "sqlite:///%s" % (tmp_path / "state.db")
    engine = db.make_engine(url)
    db.create_all(engine)
    registry.add_schools(engine, [school_row("S1")])
    cfg = config(mosquitto.url, url, "", client_id="rejects", batch_wait=0.2)
    svc = CollectorService(cfg, registry=Registry()).start()
    big = b'{"v":1,' + b" " * (MAX_PAYLOAD_BYTES + 10) + b"}"
    try:
        assert svc.ingest.wait_subscribed(10)
        mosquitto_pub(mosquitto.port, topic("S1", "bad1", "health"), b"{not json")
        mosquitto_pub(mosquitto.port, topic("S1", "big1", "health"), big)
        wait_until(lambda: dead_letters.count_by_reason(engine) == {"invalid_json": 1,
                                                                    "too_large": 1},
                   timeout=30, what="two dead letters")
        letters = {x["reason"]: x for x in dead_letters.recent(engine)}
        assert letters["invalid_json"]["payload"] == b"{not json"
        assert letters["invalid_json"]["device_id"] == "bad1"
        assert letters["too_large"]["payload"] == big[:MAX_PAYLOAD_BYTES]
        assert "of %d bytes kept" % len(big) in letters["too_large"]["detail"]
        wait_until(lambda: svc.ingest.pending() == 0, timeout=20, what="settled")
    finally:
        svc.stop()
        engine.dispose()
