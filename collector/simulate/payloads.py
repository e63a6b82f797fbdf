"""What a simulated device publishes: inventory and health fields, and health payload
templates (made by the real ``envelope`` + ``encode``; only ``ts``/``seq``/``up`` are
substituted, byte-for-byte what ``encode`` would produce)."""
import random
from typing import Any, Dict, List

from schoolmon.protocol import encode, envelope

from .fixture import SimDevice


def inventory_fields(d: SimDevice) -> Dict[str, Any]:
    os_name, os_version, os_build, os_edition, os_display = d.os
    f: Dict[str, Any] = {
        "hostname": d.hostname, "role": d.role, "os_name": os_name, "os_version": os_version,
        "os_build": os_build, "os_edition": os_edition,
        "arch": "AMD64" if os_name == "Windows" else "x86_64",
        "cpu_model": d.cpu[0], "cpu_cores": d.cpu[1], "cpu_threads": d.cpu[2], "ram": d.ram,
        "disks": [{"model": "Simulated Disk", "size": d.disk_size,
                   "kind": "ssd" if d.disk_ssd else "hdd"}],
        "nics": [{"if": "Ethernet", "mac": "02:00:%02x:%02x:%02x:%02x" % tuple(
            (hash(d.id) >> s) & 0xFF for s in (0, 8, 16, 24)), "speed": 1000, "up": True}],
        "agent": d.agent, "python": "3.8.10",
    }
    if os_display:
        f["os_display"] = os_display
    if d.room:
        f["room"] = d.room
    return f


def health_fields(d: SimDevice, rng: random.Random, up: int) -> Dict[str, Any]:
    p = d.profile
    cpu = {"busy": rng.uniform(70, 100), "slow": rng.uniform(40, 95), "old": rng.uniform(20, 80)
           }.get(p, rng.uniform(1, 35))
    mem = {"slow": rng.uniform(85, 99), "old": rng.uniform(70, 95)}.get(p, rng.uniform(25, 70))
    disk_pct = {"slow": rng.uniform(92, 99.5)}.get(p, rng.uniform(20, 80))
    n = d.cpu[2]
    f: Dict[str, Any] = {
        "cpu_pct": round(cpu, 1), "cpu_n": n,
        "load": [round(cpu / 100 * n * x, 2) for x in (1.0, 0.9, 0.8)],
        "mem_pct": round(mem, 1), "swap_pct": round(mem / 3, 1),
        "disks": [{"mnt": "C:" if d.os[0] == "Windows" else "/", "pct": round(disk_pct, 1),
                   "free": int(d.disk_size * (1 - disk_pct / 100))}],
        "disk_rd": rng.randint(0, 5_000_000), "disk_wr": rng.randint(0, 2_000_000),
        "nics": [{"if": "Ethernet", "rx": rng.randint(0, 2_000_000),
                  "tx": rng.randint(0, 500_000), "err": 0, "drop": rng.randint(0, 3)}],
        "up": up, "procs": rng.randint(60, 250), "users": 1 if d.role != "router" else 0, "q": 0,
    }
    if d.role != "router":
        f["temp"] = round(rng.uniform(38, 85 if p in ("busy", "slow") else 65), 1)
    return f


# Sentinels the real encoder writes where the fast path substitutes numbers.
_TS_SENTINEL = 4000000001
_SEQ_SENTINEL = 8000000000000001
_UP_SENTINEL = 7000000000000001


def health_templates(d: SimDevice, rng: random.Random, variants: int = 8) -> List[bytes]:
    """Payload templates made by ``envelope`` + ``encode`` with ``%d`` holes for ts, seq
    and up (in that order): ``template % (ts, seq, up)`` equals the encoded payload."""
    out = []
    for _ in range(variants):
        raw = encode(envelope("health", health_fields(d, rng, _UP_SENTINEL), _SEQ_SENTINEL,
                              _TS_SENTINEL))
        t = raw.replace(b"%", b"%%")
        for s in (_TS_SENTINEL, _SEQ_SENTINEL, _UP_SENTINEL):
            assert t.count(str(s).encode()) == 1
        t = t.replace(str(_TS_SENTINEL).encode(), b"%d", 1)
        t = t.replace(str(_SEQ_SENTINEL).encode(), b"%d", 1)
        t = t.replace(str(_UP_SENTINEL).encode(), b"%d", 1)
        out.append(t)
    return out
