"""A simulated province that speaks the real wire format (demo, tests and benchmarks).

``province_fixture(schools, devices_per_school, seed)`` makes a believable province:
areas (former districts of Lào Cai), schools of every level with Vietnamese names, ISPs,
link types and contracted speeds, and devices with roles, rooms and operating systems —
some never online, some old Windows 7 lab PCs, some slow or nearly out of disk. The demo
seeds the registry from the same object (``Province.school_rows()``).

``run_simulation(broker_url, schools, devices_per_school, rate, ...)`` publishes, for
every device, a retained ``inventory`` and ``status`` and then ``health`` at QoS 1.

``write_history(engine, province)`` gives the province a plausible past 30 days in the
state store (rollups, status history, devices that went away days ago) before the live
simulation starts, which then runs ``live_province(province)``.

The package: ``fixture`` (the province), ``payloads`` (what devices publish), ``fleet``
(the publisher), ``history`` (the past); the packet codec is ``collector/mqtt/codec.py``.
"""
from .fixture import AGENT_VERSION, Province, SimDevice, SimSchool, province_fixture
from .fleet import SimStats, Simulation, run_simulation
from .history import HistoryStats, live_province, write_history
from .payloads import health_fields, health_templates, inventory_fields

__all__ = ["AGENT_VERSION", "HistoryStats", "Province", "SimDevice", "SimSchool", "SimStats", "Simulation",
           "health_fields", "health_templates", "inventory_fields", "live_province",
           "province_fixture", "run_simulation", "write_history"]
