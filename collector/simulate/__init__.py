"""A simulated province that speaks the real wire format (demo, tests and benchmarks).

``province_fixture(schools, devices_per_school, seed)`` makes a believable province:
areas (former districts of Lào Cai), schools of every level with Vietnamese names, ISPs,
link types and contracted speeds, and devices with roles, rooms and operating systems —
some never online, some old Windows 7 lab PCs, some slow or nearly out of disk. The demo
seeds the registry from the same object (``Province.school_rows()``).

Each school has an ATTT plan and each PC security traits (``posture``): Windows 7 labs,
PCs without antivirus or with Defender passive under Kaspersky, stale signatures, Deep
Freeze labs, Windows 10 22H2 with and without ESU, Windows 11 24H2 Pro Education, Ubuntu
servers, old agents that never report security — dealt so that every block of six schools
shows each ATTT status (meets, improve, below, insufficient).

``run_simulation(broker_url, schools, devices_per_school, rate, ...)`` publishes, for
every device, a retained ``inventory`` and ``status``, its ``security`` facts (at start and
every 6 h) and then ``health`` at QoS 1.

``write_history(engine, province)`` gives the province a plausible past 30 days in the
state store (rollups, status history, devices that went away days ago) before the live
simulation starts, which then runs ``live_province(province)``; ``write_attt_history``
gives its schools their ATTT status of each past day, judged by the collector's rules.

Each school has a link profile too (``link``: near its contract on fibre, well below it,
3G/4G far below and metered, a dead router, an unreachable international target, a school
without a test in 7+ days): with ``connectivity`` on (``run_simulation`` and the demo; off
in ``Simulation`` itself, so the ingest benchmark's mix stays), every PC publishes
``probe`` messages, each school's tester PC ``router`` messages, and the fleet answers each
valid ``speedtest`` grant on its devices' ``cmd`` topics; ``write_link_history`` writes the
30 days of tests and probe hours the connectivity evaluator judges.

The package: ``fixture`` (the province), ``link`` (its schools' links), ``posture`` (its
security: plans, traits, the facts at a moment), ``payloads`` (what devices publish),
``fleet`` (the publisher),
``history`` (the past); the packet codec is ``collector/mqtt/codec.py``.
"""
from .fixture import (
    AGENT_VERSION,
    Province,
    SimDevice,
    SimSchool,
    connectivity_province,
    province_fixture,
)
from .fleet import SimStats, Simulation, run_simulation
from .history import (
    HistoryStats,
    live_province,
    write_attt_history,
    write_history,
    write_link_history,
)
from .link import LinkProfile, deal_links
from .payloads import health_fields, health_templates, inventory_fields
from .posture import PLANS, security_fields

__all__ = ["AGENT_VERSION", "PLANS", "HistoryStats", "LinkProfile", "Province", "SimDevice",
           "SimSchool", "SimStats", "Simulation", "connectivity_province", "deal_links",
           "health_fields",
           "health_templates", "inventory_fields", "live_province", "province_fixture",
           "run_simulation", "security_fields", "write_attt_history", "write_history",
           "write_link_history"]
