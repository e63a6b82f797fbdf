"""A believable simulated province: areas, schools of every level with Vietnamese names,
ISPs, links, devices with roles, rooms, operating systems and profiles, and each school's
ATTT plan with its PCs' security traits (``posture``; deterministic for a seed). The demo
seeds the registry from it (``Province.school_rows()``)."""
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .posture import SecTraits, deal_plans, plan_school

AGENT_VERSION = "0.1.0-sim"

AREAS = ("Thành phố Lào Cai", "Huyện Bát Xát", "Huyện Mường Khương", "Huyện Si Ma Cai",
         "Huyện Bắc Hà", "Huyện Bảo Thắng", "Huyện Bảo Yên", "Thị xã Sa Pa", "Huyện Văn Bàn")
NAMESAKES = ("Kim Đồng", "Nguyễn Du", "Lê Quý Đôn", "Trần Phú", "Lê Lợi", "Quang Trung",
             "Nguyễn Trãi", "Chu Văn An", "Võ Thị Sáu", "Lý Tự Trọng", "Hoa Sen", "Hoa Mai",
             "Sơn Ca", "Họa Mi", "Bình Minh", "Ngô Quyền", "Hoàng Hoa Thám", "Tô Hiệu",
             "Nguyễn Huệ", "Phan Chu Trinh", "Lương Thế Vinh", "Đinh Tiên Hoàng", "Tuổi Thơ",
             "Hoàng Văn Thụ", "Ngọc Lâm", "Bắc Cường", "Cốc Lếu", "Duyên Hải", "Pom Hán")
COMMUNES = ("Bản Vược", "Y Tý", "Pha Long", "Lùng Phình", "Bảo Nhai", "Phố Lu", "Xuân Quang",
            "Bảo Hà", "Tả Phìn", "Võ Lao", "Nậm Chày", "Tả Van", "Cam Đường", "Gia Phú")
LEVELS = (("MN", "Trường Mầm non", 0.28), ("TH", "Trường Tiểu học", 0.34),
          ("THCS", "Trường THCS", 0.24), ("THPT", "Trường THPT", 0.08),
          ("LIEN-CAP", "Trường PTDTBT TH&THCS", 0.04), ("GDNN-GDTX", "Trung tâm GDNN-GDTX", 0.02))
ISPS = (("VNPT", 0.5), ("Viettel", 0.38), ("FPT", 0.08), ("MobiFone", 0.04))
LINKS = (("fiber", 0.82, (30, 50, 80, 100, 150, 200)), ("adsl", 0.04, (8, 12, 16)),
         ("4g", 0.10, (10, 20, 30)), ("3g", 0.04, (2, 4, 6)))
SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Lò", "Giàng")
GIVEN = ("Văn Hùng", "Thị Lan", "Thị Hoa", "Văn Minh", "Thị Thu", "Đức Anh", "Thị Mai",
         "Văn Tú", "Thị Hằng", "Quốc Bảo", "Seo Mỉ", "Thị Dung")

#: OS mixes (name, version, build, edition, display, weight).
OSES = (("Windows", "10", "19045.4170", "Pro", "22H2", 0.45),
        ("Windows", "11", "22631.3296", "Education", "23H2", 0.12),
        ("Windows", "7", "7601", "Professional", "SP1", 0.22),
        ("Windows", "8.1", "9600", "Pro", "", 0.05),
        ("Linux", "22.04", "5.15.0-101-generic", "Ubuntu 22.04.4 LTS", "", 0.10),
        ("Linux", "20.04", "5.4.0-173-generic", "Ubuntu 20.04.6 LTS", "", 0.06))
CPUS = (("Intel(R) Core(TM) i3-10100 CPU @ 3.60GHz", 4, 8),
        ("Intel(R) Pentium(R) CPU G2020 @ 2.90GHz", 2, 2),
        ("Intel(R) Core(TM) i5-4570 CPU @ 3.20GHz", 4, 4),
        ("AMD Ryzen 3 3200G with Radeon Vega Graphics", 4, 4),
        ("Intel(R) Celeron(R) CPU J1800 @ 2.41GHz", 2, 2))

#: Device profiles: what the simulated device does.
PROFILES = ("normal", "offline", "old", "slow", "busy")


def _pick(rng: random.Random, items: Any, wi: int = -1) -> Any:
    """One of ``items`` (tuples), weighted by the number at index ``wi`` of each."""
    x = rng.random() * sum(it[wi] for it in items)
    for it in items:
        x -= it[wi]
        if x <= 0:
            return it
    return items[-1]


@dataclass
class SimSchool:
    code: str
    name: str
    level: str
    area: str
    province: str
    students: int
    isp: str
    link_type: str
    contracted_down_mbps: float
    contracted_up_mbps: float
    address: str
    lat: float
    lon: float
    contact_name: str
    contact_phone: str
    contact_email: str

    def row(self) -> Dict[str, Any]:
        """The school as a row for ``registry.add_schools`` / a schools import file."""
        return dict(self.__dict__)


@dataclass
class SimDevice:
    id: str
    school: str
    role: str
    room: str
    hostname: str
    profile: str
    os: Tuple[str, str, str, str, str]
    cpu: Tuple[str, int, int]
    ram: int
    disk_size: int
    disk_ssd: bool
    hb: int = 60
    #: last seq given out (a real agent persists it across restarts)
    seq: int = 0
    #: the agent version its inventory reports (an old one reports no security)
    agent: str = AGENT_VERSION
    #: how its security looks (``posture``); None: a router, no security family
    sec: Optional[SecTraits] = None

    @property
    def online(self) -> bool:
        return self.profile != "offline"


@dataclass
class Province:
    code: str
    name: str
    areas: List[str]
    schools: List[SimSchool]
    devices: List[SimDevice]
    #: school code -> its ATTT plan (``posture.PLANS``: what its status is meant to be)
    plans: Dict[str, str] = field(default_factory=dict)

    def school_rows(self) -> List[Dict[str, Any]]:
        return [s.row() for s in self.schools]


def connectivity_province(province: Province) -> Province:
    """The province without the fixture's own router devices (``{school}-router01``, an
    agent on the router): with connectivity on, the school's router is the collector's
    ``router.{school}``, fed by the tester's ``router`` messages — one router per school."""
    return Province(province.code, province.name, province.areas, province.schools,
                    [d for d in province.devices if d.role != "router"], province.plans)


def province_fixture(schools: int = 30, devices_per_school: int = 10, seed: int = 1,
                     province: str = "Lào Cai", province_code: str = "10") -> Province:
    """A believable province: ``schools`` schools spread over areas, each with
    ``devices_per_school`` devices (lab PCs mostly, office PCs, a server in bigger schools,
    the router), each school with its ATTT plan (``posture``). Deterministic for a given
    ``seed``."""
    rng = random.Random(seed)
    plans = deal_plans(schools, seed)
    school_plans: Dict[str, str] = {}
    n_areas = max(1, min(len(AREAS), (schools + 5) // 6))
    areas = list(AREAS[:n_areas])
    out_schools: List[SimSchool] = []
    devices: List[SimDevice] = []
    used_names = set()
    for i in range(schools):
        area = areas[i % n_areas]
        level, prefix, _w = _pick(rng, LEVELS)
        for _ in range(20):
            namesake = rng.choice(NAMESAKES + COMMUNES)
            name = "%s %s" % (prefix, namesake)
            if name not in used_names:
                break
            name = "%s số %d %s" % (prefix, rng.randint(1, 4), area.split(" ", 1)[-1])
        used_names.add(name)
        code = "%s%02d%04d" % (province_code, areas.index(area) + 1, i + 1)
        link, _lw, speeds = _pick(rng, LINKS, 1)
        down = float(rng.choice(speeds))
        up = down if link == "fiber" else round(down / 4, 1)
        students = {"MN": 150, "TH": 450, "THCS": 500, "THPT": 900, "LIEN-CAP": 350,
                    "GDNN-GDTX": 300}[level]
        students = int(students * rng.uniform(0.4, 1.8))
        contact = "%s %s" % (rng.choice(SURNAMES), rng.choice(GIVEN))
        out_schools.append(SimSchool(
            code=code, name=name, level=level, area=area, province=province,
            students=students, isp=_pick(rng, ISPS)[0], link_type=link,
            contracted_down_mbps=down, contracted_up_mbps=up,
            address="%s, %s, tỉnh %s" % (rng.choice(COMMUNES), area, province),
            lat=round(rng.uniform(21.9, 22.7), 5), lon=round(rng.uniform(103.5, 104.6), 5),
            contact_name=contact, contact_phone="09%08d" % rng.randint(0, 99_999_999),
            contact_email="c%s@laocai.edu.vn" % code))
        own = _school_devices(rng, code, devices_per_school, level,
                              router_down=i % ROUTER_DOWN_EVERY == ROUTER_DOWN_AT)
        # the posture draws from its own seeded streams: the rest of the province stays
        # what it was before schools had security
        plan_school(plans[i], own, seed)
        school_plans[code] = plans[i]
        devices.extend(own)
    return Province(province_code, province, areas, out_schools, devices, school_plans)


#: Every ROUTER_DOWN_EVERY-th school (from the ROUTER_DOWN_AT-th) has its router down while
#: its PCs are on: the pages must tell "mất kết nối Internet/router" from "một máy tắt".
ROUTER_DOWN_EVERY = 8
ROUTER_DOWN_AT = 3


def _school_devices(rng: random.Random, school: str, n: int, level: str,
                    router_down: bool = False) -> List[SimDevice]:
    out = []
    roles: List[Tuple[str, str]] = []
    if n >= 1:
        roles.append(("router", ""))
    if n >= 2:
        roles.append(("office", "Văn phòng"))
    if n >= 9 and level in ("THCS", "THPT", "LIEN-CAP"):  # the demo's secondary schools too
        roles.append(("server", "Phòng máy chủ"))
    if n >= 6:
        roles.append(("office", "Phòng hiệu trưởng"))
    while len(roles) < n:
        roles.append(("lab", "Phòng tin học %d" % (1 + (len(roles) // 25))))
    counts: Dict[str, int] = {}
    for role, room in roles[:n]:
        counts[role] = counts.get(role, 0) + 1
        dev_id = "%s-%s%02d" % (school, role, counts[role])
        r = rng.random()
        if role == "router":
            profile = "offline" if router_down or r < 0.03 else "normal"
        elif role == "lab":
            profile = ("offline" if r < 0.15 else "old" if r < 0.35 else "slow" if r < 0.45
                       else "busy" if r < 0.5 else "normal")
        else:
            profile = "offline" if r < 0.05 else "slow" if r < 0.15 else "normal"
        if role == "router":
            os_ = ("Linux", "OpenWrt 21.02", "5.4.179", "OpenWrt", "")
            cpu = ("MediaTek MT7621", 2, 4)
        elif profile == "old":
            os_ = OSES[2][:5]
            cpu = CPUS[1] if rng.random() < 0.6 else CPUS[4]
        else:
            os_ = _pick(rng, OSES)[:5]
            cpu = rng.choice(CPUS)
        ram = {"router": 256, "old": 2048}.get(role if role == "router" else profile,
                                              rng.choice((4096, 8192, 8192, 16384)))
        out.append(SimDevice(
            id=dev_id, school=school, role=role, room=room,
            hostname=("PC-%s-%02d" % (role.upper(), counts[role])) if role != "router"
            else "router", profile=profile, os=os_, cpu=cpu, ram=ram * 2 ** 20,
            disk_size=rng.choice((120, 250, 500, 1000)) * 10 ** 9,
            disk_ssd=profile not in ("old",) and rng.random() < 0.5))
    return out
