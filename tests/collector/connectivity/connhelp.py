"""Helpers for the speed-test scheduling tests: a Monday in Lào Cai on an injected clock,
devices and their latest probes written as ingest writes them, link_tests rows."""
import datetime as dt
from typing import Any, Dict, List, Optional

from schoolmon.collector.store.schema import device_latest, devices, link_tests
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
#: Monday 2 March 2026, local midnight (a school day)
MONDAY = dt.datetime(2026, 3, 2, tzinfo=ZONE).timestamp()


def local(hh: int, mm: int = 0, day: float = MONDAY) -> float:
    """Epoch of HH:MM local time on ``day``."""
    return day + hh * 3600 + mm * 60


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def add_device(engine: Any, school: str, dev: str, role: str = "lab", online: bool = True,
               state: str = "active", since: Optional[float] = None,
               probe: Optional[Dict[str, Any]] = None, probe_at: Optional[float] = None) -> None:
    with engine.begin() as c:
        c.execute(devices.insert().values(id=dev, school_code=school, role=role, state=state,
                                          online=online, online_changed_at=since or MONDAY,
                                          first_seen=since or MONDAY, last_seen=since or MONDAY))
        if probe is not None:
            at = probe_at if probe_at is not None else (since or MONDAY)
            c.execute(device_latest.insert().values(device_id=dev, kind="probe", ts=at, seq=1,
                                                    received_at=at, payload=probe))


def set_probe(engine: Any, dev: str, probe: Dict[str, Any], at: float) -> None:
    with engine.begin() as c:
        c.execute(device_latest.delete().where(device_latest.c.device_id == dev,
                                               device_latest.c.kind == "probe"))
        c.execute(device_latest.insert().values(device_id=dev, kind="probe", ts=at, seq=1,
                                                received_at=at, payload=probe))


def set_online(engine: Any, dev: str, online: bool, at: float) -> None:
    with engine.begin() as c:
        c.execute(devices.update().where(devices.c.id == dev).values(
            online=online, online_changed_at=at))


_seq = [0]


def add_result(engine: Any, school: str, dev: str, ts: float, lease: Optional[str],
               ok: bool = True, bytes_rx: int = 25_000_000, bytes_tx: int = 6_000_000,
               mode: str = "full", **kw: Any) -> int:
    _seq[0] += 1
    row = dict(school_code=school, device_id=dev, seq=_seq[0], ts=ts, received_at=ts + 1,
               lease=lease, ok=ok, mode=mode, bytes_rx=bytes_rx, bytes_tx=bytes_tx,
               down_mbps=20.0 if ok else None, up_mbps=5.0 if ok else None)
    row.update(kw)
    with engine.begin() as c:
        return int(c.execute(link_tests.insert().values(**row)).inserted_primary_key[0])


def refused(engine: Any) -> List[Any]:
    from sqlalchemy import select
    with engine.connect() as c:
        return [(r.device_id, r.lease, r.refused) for r in c.execute(
            select(link_tests).order_by(link_tests.c.id))]
