"""The ATTT evaluator at province scale: ``python bench/attt_eval.py [--store sqlite|postgresql|both]``.

Fills a throwaway state store directly (3,000 schools, 50,000 PCs by default: registry,
device rows, each PC's latest inventory and security payload), then times
``Evaluator.run_once``: the whole province from scratch, then an incremental pass after
``--changed`` PCs sent a new security report (antivirus off), then a pass with nothing new.
PostgreSQL is a private throwaway cluster (tests/servers.py). The figures in
docs/benchmarks.md and docs/attt.md come from this script.

Payloads are believable for a Vietnamese province: Windows 7 / 10 22H2 (some with ESU) /
11 23H2 / 11 24H2 and Ubuntu, Defender or Bkav / Kaspersky, some without antivirus, stale
signatures and patches, frozen lab rooms (Deep Freeze), facts the agent could not read
left out with their reason; a few PCs silent for more than 7 days, a few never reported.
"""
import argparse
import os
import random
import sys
import time
from typing import Any, Dict, List

from sqlalchemy import func, select, update

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from schoolmon.collector.posture import Evaluator, rules_from_config  # noqa: E402
from schoolmon.collector.store import registry  # noqa: E402
from schoolmon.collector.store import schema as db  # noqa: E402

from bench.stores import STORES, on_each_store  # noqa: E402

DAY = 86400.0
#: (os_name, os_version, os_build, os_edition, os_display, family, os_id, share)
OSES = (
    ("Windows", "7", "7601", "Professional", "", "windows", "windows", 0.10),
    ("Windows", "10", "19045.5011", "Pro", "22H2", "windows", "windows", 0.35),
    ("Windows", "10", "19045.5011", "Education", "22H2", "windows", "windows", 0.10),
    ("Windows", "11", "22631.4460", "Pro", "23H2", "windows", "windows", 0.10),
    ("Windows", "11", "26100.2033", "Pro Education", "24H2", "windows", "windows", 0.15),
    ("Windows", "11", "26100.2033", "Education", "24H2", "windows", "windows", 0.12),
    ("Linux", "22.04", "6.8.0-45-generic", "Ubuntu 22.04.5 LTS", "", "linux", "ubuntu", 0.08),
)
AVS = (("Windows Defender", "defender"), ("Bkav Pro", "service"),
       ("Kaspersky Endpoint Security", "wsc"), ("Viettel Cyber Endpoint", "service"))


def _os(rng: random.Random) -> tuple:
    x = rng.random()
    for o in OSES:
        x -= o[-1]
        if x <= 0:
            return o
    return OSES[-1]


def _good(rng: random.Random, role: str, now: float, frozen_room: bool
          ) -> Dict[str, Dict[str, Any]]:
    """A PC of a well-kept school: supported OS, antivirus on and current, patched."""
    p = payloads(rng, role, now, frozen_room, chance=0.0)
    p["inventory"].update(os_name="Windows", os_version="11", os_build="26100.2033",
                          os_edition="Education", os_display="24H2")
    p["security"].update(os_family="windows", os_id="windows")
    return p


def payloads(rng: random.Random, role: str, now: float, frozen_room: bool,
             chance: float = 1.0) -> Dict[str, Dict[str, Any]]:
    """``chance``: how often a PC of this school has each fault (0: none, 1: the province's
    usual rates)."""
    def bad(p: float) -> bool:
        return rng.random() < p * chance

    # the province's mix of OS (Windows 7, 10 without ESU, 11 Pro past its date ...) or,
    # for a well-kept PC, Windows 11 24H2 Education
    o = _os(rng) if bad(1.0) else OSES[5]
    inv = {"hostname": "PC", "role": role, "os_name": o[0], "os_version": o[1],
           "os_build": o[2], "os_edition": o[3], "agent": "0.2.0"}
    if o[4]:
        inv["os_display"] = o[4]
    sec: Dict[str, Any] = {"v": 1, "ts": now, "seq": 10, "os_family": o[5], "os_id": o[6],
                           "scan_s": rng.uniform(2, 30), "scan_cpu_s": rng.uniform(0.5, 4)}
    unknown: List[Dict[str, str]] = []
    patch_age = rng.choice((40, 70, 200)) if bad(0.3) else rng.choice((3, 12, 20, 30))
    sec["patch_last_ts"] = int(now - patch_age * DAY)
    sec["auto_update"] = not bad(0.15)
    sec["fw_on"] = not bad(0.1)
    if o[5] == "windows":
        if o[3] in ("Pro", "Education") and o[1] == "10":
            sec["esu"] = not bad(0.6)
        if not bad(0.1):
            name, source = rng.choice(AVS)
            age = rng.choice((5.0, 10.0, 40.0)) if bad(0.3) else rng.choice((0.3, 1.0, 2.0))
            on = not bad(0.1)
            sec["av"] = [{"name": name, "source": source, "state": "on" if on else "off",
                          "rtp": on, "sig_age_d": age, "managed": rng.random() < 0.5}]
            sec.update(av_on=on, av_name=name if on else "", av_sig_age_d=age,
                       av_managed=sec["av"][0]["managed"])
        else:
            sec.update(av=[], av_on=False, av_name="")
        sec.update(smb1_server=bad(0.1), smb1_client=bad(0.15), guest_on=bad(0.05),
                   admin_builtin_on=bad(0.2), rdp_on=bad(0.2), rdp_nla=True,
                   autorun_off=not bad(0.4),
                   lock_s=rng.choice((0, 1800)) if bad(0.4) else rng.choice((300, 600, 900)))
        if bad(0.1):
            sec.pop("lock_s")
            unknown.append({"field": "lock_s", "reason": "access denied"})
        if frozen_room:
            sec.update(frozen=True, freeze_product="Deep Freeze")
    if unknown:
        sec["unknown"] = unknown
    return {"inventory": inv, "security": sec}


def _insert(engine: Any, table: Any, rows: List[Dict[str, Any]], chunk: int = 10000) -> None:
    with engine.begin() as conn:
        for i in range(0, len(rows), chunk):
            conn.execute(table.insert(), rows[i:i + chunk])


def fill(engine: Any, n_schools: int, n_devices: int, areas: int, now: float) -> None:
    db.create_all(engine)
    rng = random.Random(9)
    registry.add_schools(engine, [
        {"code": "%08d" % i, "name": "Trường %d" % i, "level": ("TH", "THCS", "THPT")[i % 3],
         "area": "Khu vực %d" % (i % areas), "province": "Lào Cai"} for i in range(n_schools)])
    devs, latest = [], []
    per = n_devices // n_schools
    extra = n_devices - per * n_schools
    for i in range(n_schools):
        frozen_lab = i % 5 == 0
        # a third of the schools well kept, a third with a few faults, a third as usual
        quality = i % 3
        count = per + (1 if i < extra else 0)
        for j in range(count):
            role = "office" if j < 2 else "lab"
            did = "d%d-%d" % (i, j)
            code = "%08d" % i
            devs.append(dict(id=did, school_code=code, role=role, hostname="PC-%d-%d" % (i, j),
                             state="active", online=True, last_seen=now, received_total=10,
                             lost_total=0, duplicates_total=0, resets=0))
            if rng.random() < 0.01:
                continue  # never reported
            silent = rng.random() < 0.02
            ts = now - (rng.uniform(8, 20) * DAY if silent else rng.uniform(60, 6 * 3600))
            frozen = frozen_lab and role == "lab"
            p = (_good(rng, role, ts, frozen) if quality == 0 and rng.random() < 0.97
                 else payloads(rng, role, ts, frozen, 0.1 if quality == 1 else 1.0))
            for kind, payload in p.items():
                latest.append(dict(device_id=did, kind=kind, ts=ts, seq=10, received_at=ts,
                                   payload=payload))
    _insert(engine, db.devices, devs)
    _insert(engine, db.device_latest, latest)


def run(url: str, label: str, args: argparse.Namespace) -> Dict[str, float]:
    engine = db.make_engine(url)
    now = time.time()
    t0 = time.perf_counter()
    fill(engine, args.schools, args.devices, args.areas, now - 60)
    fill_s = time.perf_counter() - t0
    ev = Evaluator(engine, rules_from_config(argparse.Namespace()))
    stats, events = ev.run_once(now)
    with engine.connect() as conn:
        by_status = dict(conn.execute(select(db.attt_schools.c.status, func.count())
                                      .group_by(db.attt_schools.c.status)).all())
    # --changed PCs send a new security report: antivirus off
    changed = ["d%d-%d" % (i, 2) for i in range(min(args.changed, args.schools))]
    with engine.begin() as conn:
        rows = conn.execute(select(db.device_latest.c.device_id, db.device_latest.c.payload)
                            .where(db.device_latest.c.device_id.in_(changed),
                                   db.device_latest.c.kind == "security")).all()
        for r in rows:
            conn.execute(update(db.device_latest).where(
                db.device_latest.c.device_id == r.device_id,
                db.device_latest.c.kind == "security").values(
                ts=now + 10, received_at=now + 10,
                payload=dict(r.payload, av_on=False, av_name="", ts=now + 10)))
    inc, inc_events = ev.run_once(now + 30)
    idle, _ = ev.run_once(now + 400)
    engine.dispose()
    print("%-10s fill %.1f s | from scratch: %d devices, %d schools in %.2f s (%d events) | "
          "incremental: %d devices, %d schools in %.2f s | nothing new: %.3f s"
          % (label, fill_s, stats.devices, stats.schools, stats.seconds, len(events),
             inc.devices, inc.schools, inc.seconds, idle.seconds), flush=True)
    print("%-10s schools by status: %s" % (label, dict(sorted(by_status.items()))), flush=True)
    return {"full": stats.seconds, "incremental": inc.seconds, "idle": idle.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--devices", type=int, default=50000, help="PCs in the province")
    ap.add_argument("--areas", type=int, default=40)
    ap.add_argument("--changed", type=int, default=500,
                    help="PCs with a new security report before the incremental pass")
    ap.add_argument("--store", choices=STORES, default="both")
    args = ap.parse_args()
    on_each_store(args.store, "schoolmon-atttbench-", lambda url, label: run(url, label, args))


if __name__ == "__main__":
    main()
