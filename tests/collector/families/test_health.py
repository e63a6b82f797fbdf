"""The health family on the collector: generated line bodies and rollup values."""
from schoolmon.collector.families import FAMILIES, family
from schoolmon.collector.families.health import ROLLUP_METRICS, health_bodies, rollup_values
from schoolmon.collector.line_protocol import escape_tag
from schoolmon.protocol import decode, encode, envelope, topic


def _reference_health_bodies(p, ts):
    """What health_bodies must give, written the slow obvious way from the catalogue."""
    from schoolmon.collector.families.health import DISK_FIELDS, HEALTH_FIELDS, LOAD_FIELDS, NIC_FIELDS

    def fmt(v):
        return ("1" if v else "0") if isinstance(v, bool) else repr(v)

    def fieldset(obj, names):
        return ",".join("%s=%s" % (n, fmt(obj[n])) for n in names if obj.get(n) is not None)

    fields = fieldset(p, HEALTH_FIELDS)
    load = ",".join("%s=%r" % (n, v) for n, v in zip(LOAD_FIELDS, p.get("load") or ()))
    fields = ",".join(x for x in (fields, load) if x)
    out = [("health", " %s %d" % (fields, ts))] if fields else []
    for d in p.get("disks") or ():
        if d["mnt"]:
            out.append(("health_disk", ",mnt=%s %s %d" % (escape_tag(d["mnt"]),
                                                          fieldset(d, DISK_FIELDS), ts)))
    for n in p.get("nics") or ():
        if n["if"]:
            out.append(("health_nic", ",if=%s %s %d" % (escape_tag(n["if"]),
                                                         fieldset(n, NIC_FIELDS), ts)))
    return out


def test_generated_health_bodies_match_the_catalogue_reference():
    """health_bodies is code generated from the catalogue; on simulated payloads of every
    profile and on edge cases it gives exactly what the obvious implementation gives."""
    import random

    from schoolmon.collector.simulate import health_fields, province_fixture
    rng = random.Random(4)
    payloads = [health_fields(d, rng, i) for d in province_fixture(10, 10, seed=3).devices
                for i in range(3)]
    payloads.append({"cpu_pct": 1, "cpu_n": 1, "mem_pct": 2.5, "up": 5, "ac": False,
                     "batt": 50.5, "temp": -3.25, "load": [1, 2.5],
                     "disks": [{"mnt": "", "pct": 1, "free": 2},
                               {"mnt": "C:\\ x,y=z", "pct": 1.5, "free": 0}],
                     "nics": [{"if": "Wi-Fi 2", "rx": 1, "tx": 2, "drop": 3}]})
    for p in payloads:
        decode(topic("S1", "pc-01", "health"), encode(envelope("health", p, 1, 1_700_000_123)))  # valid
        assert health_bodies(p, 1_700_000_123) == _reference_health_bodies(p, 1_700_000_123)


def test_rollup_values_follow_rollup_metrics():
    p = {"cpu_pct": 12, "mem_pct": 50.5, "up": 1, "cpu_n": 2, "temp": 40,
         "disks": [{"mnt": "C:", "pct": 20.0, "free": 1}, {"mnt": "D:", "pct": 90.5, "free": 1}],
         "nics": [{"if": "eth0", "rx": 100, "tx": 5}, {"if": "wlan0", "rx": 50, "tx": 7}]}
    got = dict(zip(ROLLUP_METRICS, rollup_values(p)))
    assert got == {"cpu_pct": 12.0, "mem_pct": 50.5, "swap_pct": None, "disk_pct": 90.5,
                   "temp": 40.0, "rx": 150.0, "tx": 12.0}
    assert all(v is None or isinstance(v, float) for v in got.values())


def test_families_are_looked_up_by_kind():
    assert set(FAMILIES) == {"health", "status", "inventory", "probe", "speedtest", "router"}
    assert family("health").rollup_values is rollup_values
    assert family("health").line_bodies is health_bodies
    assert not family("status").sequenced and family("status").reported_state is not None
    # A kind without a family of its own is stored and nothing more.
    plain = family("security")
    assert plain.sequenced and plain.line_bodies is None and plain.rollup_values is None
