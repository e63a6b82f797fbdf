"""Line protocol and the time-series writer, against a real VictoriaMetrics."""
import threading
import time

import pytest
from schoolmon.collector.metrics import IngestMetrics, Registry
from schoolmon.collector.state import Accepted, Received
from schoolmon.collector.timeseries import (
    InfluxTimeSeries,
    NullTimeSeries,
    TimeSeriesUnavailable,
    build_lines,
    escape_tag,
    make_timeseries,
    tag_prefix,
)
from schoolmon.protocol import decode, encode, envelope, topic

from tests.collector.helpers import config

TAGS = {"province": "lao-cai", "area": "lao-cai/huyen-bat-xat", "school": "S1",
        "device": "pc-01", "role": "lab"}


def accepted(kind, fields, seq=1, ts=1_700_000_000.0, tags=TAGS, school="S1", device="pc-01"):
    raw = encode(envelope(kind, fields, seq, ts))
    msg = decode(topic(school, device, kind), raw)
    return Accepted(Received(msg, ts + 1, ts), dict(tags, school=school, device=device))


def test_escaping():
    assert escape_tag("Ethernet 2") == "Ethernet\\ 2"
    assert escape_tag("a,b=c") == "a\\,b\\=c"
    assert escape_tag("line\nbreak") == "line\\ break"
    assert escape_tag("C:\\") == "C:/"  # a trailing backslash would escape the separator
    assert tag_prefix({"device": "d 1", "school": "", "role": "lab"}) == ",device=d\\ 1,role=lab"


def test_health_lines_numbers_as_floats():
    fields = {"cpu_pct": 12.5, "cpu_n": 4, "mem_pct": 40, "up": 3600, "load": [0.5, 0.25, 0.1],
              "batt": 80.0, "ac": True,
              "disks": [{"mnt": "C:", "pct": 50.5, "free": 123456789}],
              "nics": [{"if": "Wi-Fi 2", "rx": 1000, "tx": 20, "err": 0}]}
    lines = build_lines([accepted("health", fields)])
    tags = ",area=lao-cai/huyen-bat-xat,device=pc-01,province=lao-cai,role=lab,school=S1"
    assert lines == [
        "health%s cpu_pct=12.5,cpu_n=4,mem_pct=40,batt=80.0,ac=1,up=3600,"
        "load1=0.5,load5=0.25,load15=0.1 1700000000" % tags,
        "health_disk%s,mnt=C: pct=50.5,free=123456789 1700000000" % tags,
        "health_nic%s,if=Wi-Fi\\ 2 rx=1000,tx=20,err=0 1700000000" % tags,
    ]
    # no "i" suffix anywhere: every number is a float field
    assert not any("i " in line.split(" ")[1] + " " for line in lines)


def test_status_and_inventory_lines():
    on = accepted("status", {"state": "online", "hb": 60})
    off = accepted("status", {"state": "offline", "reason": "lost"}, ts=1_700_000_060.0)
    inv = accepted("inventory", {"hostname": "h", "role": "lab", "os_name": "Windows",
                                 "agent": "1"})
    lines = build_lines([on, off, inv])
    assert [line.split(" ", 1)[1] for line in lines] == ["online=1 1700000000",
                                                         "online=0 1700000060"]


def test_null_timeseries():
    ts = make_timeseries(config("mqtt://127.0.0.1:1", "sqlite://"))
    assert isinstance(ts, NullTimeSeries)
    assert ts.write_lines(["x v=1 1"]) == 0 and ts.ready() is None


def test_write_and_export(victoria):
    metrics = IngestMetrics(Registry())
    ts = InfluxTimeSeries(victoria.url, "org", "bucket", batch_lines=7, metrics=metrics)
    now = int(time.time())
    batch = [accepted("health", {"cpu_pct": float(i), "cpu_n": 2, "mem_pct": 10, "up": i,
                                 "nics": [{"if": "Ethernet 2", "rx": i, "tx": 1}]},
                      seq=i, ts=now - 100 + i,
                      tags=dict(TAGS, area="Huyện A, B=C"))
             for i in range(1, 21)]
    assert ts.write_accepted(batch) == 40
    assert metrics.ts_lines.get() == 40
    got = victoria.export('health_cpu_pct{device="pc-01"}')
    assert len(got) == 1
    assert got[0]["metric"]["area"] == "Huyện A, B=C"
    assert got[0]["values"] == [float(i) for i in range(1, 21)]
    assert got[0]["timestamps"] == [(now - 100 + i) * 1000 for i in range(1, 21)]
    nic = victoria.export('health_nic_rx{if="Ethernet 2"}')
    assert len(nic) == 1 and len(nic[0]["values"]) == 20
    assert ts.ready() is True
    ts.close()


def test_retries_while_server_down(victoria):
    metrics = IngestMetrics(Registry())
    ts = InfluxTimeSeries(victoria.url, "org", "bucket", metrics=metrics, timeout=1,
                          backoff_initial=0.1, backoff_max=0.5)
    victoria.kill()
    now = int(time.time())
    lines = ["health,device=d%d cpu_pct=1 %d" % (i, now) for i in range(100)]
    done = threading.Event()
    t = threading.Thread(target=lambda: (ts.write_lines(lines), done.set()))
    t.start()
    time.sleep(1.5)
    assert not done.is_set()
    assert metrics.ts_errors.get() >= 2 and ts.ready() is False
    victoria.start()
    t.join(20)
    assert done.is_set()
    assert len(victoria.export("health_cpu_pct")) == 100
    assert metrics.ts_retries.get() >= 2


def test_stop_abandons_write(victoria):
    ts = InfluxTimeSeries(victoria.url, "org", "bucket", timeout=1, backoff_initial=0.1)
    victoria.kill()
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    with pytest.raises(TimeSeriesUnavailable):
        ts.write_lines(["health,device=d cpu_pct=1 1700000000"], stop)


