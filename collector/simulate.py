"""A simulated province that speaks the real wire format (demo, tests and benchmarks).

``province_fixture(schools, devices_per_school, seed)`` makes a believable province:
areas (former districts of Lào Cai), schools of every level with Vietnamese names, ISPs,
link types and contracted speeds, and devices with roles, rooms and operating systems —
some never online, some old Windows 7 lab PCs, some slow or nearly out of disk. The demo
seeds the registry from the same object (``Province.school_rows()``).

``run_simulation(broker_url, schools, devices_per_school, rate, ...)`` publishes, for
every device, a retained ``inventory`` and ``status`` and then ``health`` at QoS 1.

Publisher design (why not paho): a benchmark needs ≥ 10,000 msg/s from this process
while Mosquitto, the collector and the time-series server share two cores. paho spends
tens of microseconds per publish (message objects, locks, a wake-up per packet), so the
simulator speaks MQTT 3.1.1 itself over a few raw sockets ("connections", default 4), each
publishing for many devices: PUBLISH packets are built from per-device payload templates
(made by the real ``envelope`` + ``encode``, with only ``ts``/``seq``/``up`` substituted,
byte-for-byte what ``encode`` would produce), pipelined with up to ``window`` messages
awaiting PUBACK per connection, and sent in one ``sendall`` per tick. PUBACKs arrive in
order, so the simulator knows exactly which (device, seq) the broker has taken; after a
broker restart it reconnects and sends what was not acknowledged again (at least once).

Last Will: a connection that carries exactly one device (``connections >= devices``)
sets that device's Last Will (``offline``, reason ``lost``), as a real agent does. With
several devices per connection a Last Will cannot speak for all of them; an orderly stop
publishes ``offline`` (reason ``shutdown``) for every device instead, and devices of the
"offline" profile publish only a retained ``offline``/``lost`` status, as the broker would
have left for them.
"""
import logging
import random
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple
from urllib.parse import urlsplit

from schoolmon.protocol import encode, envelope, topic

from .mqtt.codec import connect_packet, publish_packet, string

log = logging.getLogger("schoolmon.collector.simulate")

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

    def school_rows(self) -> List[Dict[str, Any]]:
        return [s.row() for s in self.schools]


def province_fixture(schools: int = 30, devices_per_school: int = 10, seed: int = 1,
                     province: str = "Lào Cai", province_code: str = "10") -> Province:
    """A believable province: ``schools`` schools spread over areas, each with
    ``devices_per_school`` devices (lab PCs mostly, office PCs, a server in bigger schools,
    the router). Deterministic for a given ``seed``."""
    rng = random.Random(seed)
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
        devices.extend(_school_devices(rng, code, devices_per_school, level))
    return Province(province_code, province, areas, out_schools, devices)


def _school_devices(rng: random.Random, school: str, n: int, level: str) -> List[SimDevice]:
    out = []
    roles: List[Tuple[str, str]] = []
    if n >= 1:
        roles.append(("router", ""))
    if n >= 2:
        roles.append(("office", "Văn phòng"))
    if n >= 12 and level in ("THCS", "THPT", "LIEN-CAP"):
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
            profile = "offline" if r < 0.03 else "normal"
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


# ------------------------------------------------------------------------ payloads
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
        "agent": AGENT_VERSION, "python": "3.8.10",
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


# ------------------------------------------------------------------------ simulation
@dataclass
class SimStats:
    """What a simulation did. ``acked`` messages were taken by the broker (PUBACK)."""

    sent: int = 0
    acked: int = 0
    health_sent: int = 0
    reconnects: int = 0
    elapsed: float = 0.0
    #: per device: the highest health seq the broker acknowledged (seqs 1..n, in order)
    acked_upto: Dict[str, int] = field(default_factory=dict)
    #: per device: the first health seq of this run
    first_seq: Dict[str, int] = field(default_factory=dict)
    #: the last error connecting to the broker (None: every connection got through)
    connect_error: Optional[str] = None
    #: connections that reached the broker at least once
    connected: int = 0

    @property
    def rate(self) -> float:
        return self.acked / self.elapsed if self.elapsed else 0.0

    def acked_pairs(self) -> int:
        """Distinct (device, seq) health messages the broker acknowledged."""
        return sum(max(0, hi - self.first_seq.get(d, 1) + 1) for d, hi in self.acked_upto.items())


#: A message to publish: (topic with its length prefix, payload, retain, (device, health
#: seq) or None for other kinds).
Packet = Tuple[bytes, bytes, bool, Optional[Tuple[str, int]]]


class _Conn(threading.Thread):
    """One raw MQTT connection publishing for a share of the devices."""

    def __init__(self, sim: "Simulation", idx: int, devices: List[SimDevice], rate: float) -> None:
        super().__init__(name="schoolmon-sim-%d" % idx, daemon=True)
        self.sim, self.idx, self.devices, self.rate = sim, idx, devices, rate
        self.online = [d for d in devices if d.online]
        self.rng = random.Random(sim.seed * 1000 + idx)
        self.topics = {d.id: {k: string(topic(d.school, d.id, k))
                              for k in ("health", "status", "inventory")} for d in devices}
        self.templates = {d.id: health_templates(d, self.rng) for d in self.online}
        self.boot = {d.id: int(time.time()) - self.rng.randint(600, 8 * 3600) for d in devices}
        self.sock: Optional[socket.socket] = None
        self.inflight: List[Tuple[int, bytes, Optional[Tuple[str, int]]]] = []
        self._inflight_head = 0
        self.mid = 0
        self.buf = b""
        self.last_send = time.monotonic()
        self.error: Optional[BaseException] = None

    # -- socket
    def _connect(self) -> None:
        sim = self.sim
        delay = 0.2
        while not sim.stop_event.is_set() and not sim.past_deadline():
            try:
                s = socket.create_connection((sim.host, sim.port), timeout=10)
                if sim.tls:
                    ctx = ssl.create_default_context(cafile=sim.ca_file or None)
                    s = ctx.wrap_socket(s, server_hostname=sim.host)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                will = None
                if len(self.devices) == 1:
                    d = self.devices[0]
                    will = (topic(d.school, d.id, "status"),
                            encode(envelope("status", {"state": "offline", "reason": "lost",
                                                       "agent": AGENT_VERSION, "hb": d.hb},
                                            d.seq, time.time())))
                cid = (sim.client_prefix + "-%d" % self.idx) if len(self.devices) > 1 \
                    else self.devices[0].id
                s.sendall(connect_packet(cid, 60, sim.username, sim.password, will))
                ack = self._recv_exact(s, 4)
                if ack[0] != 0x20 or ack[3] != 0:
                    raise ConnectionError("broker refused the connection (CONNACK %r)" % ack)
                s.settimeout(None)
                s.setblocking(True)
                self.sock = s
                self.buf = b""
                sim._count_connected(self)
                return
            except OSError as exc:
                # The first failure is said plainly; retries only at debug level.
                if sim._connect_failed(self, exc):
                    log.warning("simulator cannot connect to the broker %s:%d: %s; retrying",
                                sim.host, sim.port, exc)
                else:
                    log.debug("simulator connection %d: %s; retrying", self.idx, exc)
                if sim.stop_event.wait(min(delay, sim.time_left())):
                    return
                delay = min(delay * 2, 5.0)

    @staticmethod
    def _recv_exact(s: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed")
            data += chunk
        return data

    def _next_mid(self) -> int:
        self.mid = self.mid % 65535 + 1
        return self.mid

    def _send(self, packets: List["Packet"]) -> None:
        """Queue (topic, payload, retain, (device, health seq) or None) and send them."""
        out = []
        for topic_b, payload, retain, key in packets:
            mid = self._next_mid()
            pkt = publish_packet(topic_b, payload, mid, retain)
            self.inflight.append((mid, pkt, key))
            out.append(pkt)
        self.sim._count_sent(len(packets), sum(1 for p in packets if p[3] is not None))
        self._sendall(b"".join(out))

    def _sendall(self, data: bytes) -> None:
        if self.sock is None:
            raise ConnectionError("not connected")
        self.sock.sendall(data)
        self.last_send = time.monotonic()

    def _read_acks(self, timeout: float) -> None:
        s = self.sock
        if s is None:
            raise ConnectionError("not connected")
        s.settimeout(timeout)
        try:
            data = s.recv(65536)
        except (socket.timeout, BlockingIOError):
            return
        finally:
            if self.sock is not None:
                self.sock.settimeout(None)
        if not data:
            raise ConnectionError("connection closed by the broker")
        buf = self.buf + data
        pos, n = 0, len(buf)
        acked = 0
        while n - pos >= 2:
            ptype = buf[pos] & 0xF0
            length = buf[pos + 1]  # PUBACK and PINGRESP are short
            if n - pos < 2 + length:
                break
            if ptype == 0x40:
                acked += 1
            pos += 2 + length
        self.buf = buf[pos:]
        if acked:
            self._acked(acked)

    def _acked(self, n: int) -> None:
        head = self._inflight_head
        done = self.inflight[head:head + n]
        self._inflight_head = head + len(done)
        if self._inflight_head > 4096:
            del self.inflight[:self._inflight_head]
            self._inflight_head = 0
        upto: Dict[str, int] = {}
        for _mid, _pkt, key in done:
            if key is not None:
                upto[key[0]] = key[1]
        self.sim._count_acked(len(done), upto)

    def _pending(self) -> int:
        return len(self.inflight) - self._inflight_head

    def _resend(self) -> None:
        """After a reconnect: send again what the broker did not acknowledge (new ids)."""
        pending = self.inflight[self._inflight_head:]
        self.inflight, self._inflight_head = [], 0
        if not pending:
            return
        out = []
        for _old, pkt, key in pending:
            mid = self._next_mid()
            # Rewrite the packet id (the two bytes after the topic) and set DUP.
            tlen = struct.unpack("!H", pkt[_hdr_len(pkt):_hdr_len(pkt) + 2])[0]
            at = _hdr_len(pkt) + 2 + tlen
            new = bytes([pkt[0] | 0x08]) + pkt[1:at] + struct.pack("!H", mid) + pkt[at + 2:]
            self.inflight.append((mid, new, key))
            out.append(new)
        self._sendall(b"".join(out))

    # -- messages
    def _status(self, d: SimDevice, state: str, reason: Optional[str] = None,
                ts: Optional[float] = None) -> "Packet":
        f: Dict[str, Any] = {"state": state, "agent": AGENT_VERSION, "hb": d.hb}
        if reason:
            f["reason"] = reason
        payload = encode(envelope("status", f, d.seq, time.time() if ts is None else ts))
        return (self.topics[d.id]["status"], payload, True, None)

    def _hello(self) -> None:
        """On every connect: inventory + online status (offline devices: a stale Last Will)."""
        packets: List[Any] = []
        now = time.time()
        for d in self.devices:
            if d.online:
                if not self.sim.inventory_sent.get(d.id):
                    d.seq += 1
                    packets.append((self.topics[d.id]["inventory"],
                                    encode(envelope("inventory", inventory_fields(d), d.seq, now)),
                                    True, None))
                    self.sim.inventory_sent[d.id] = True
                packets.append(self._status(d, "online"))
            elif not self.sim.inventory_sent.get(d.id):
                # Seen before, gone since: its retained inventory and the Last Will the
                # broker published for it.
                self.sim.inventory_sent[d.id] = True
                gone = now - self.rng.randint(3600, 3 * 86400)
                d.seq += 1
                packets.append((self.topics[d.id]["inventory"],
                                encode(envelope("inventory", inventory_fields(d), d.seq,
                                                gone - 86400)), True, None))
                packets.append(self._status(d, "offline", "lost", gone))
        for i in range(0, len(packets), 1000):
            self._send(packets[i:i + 1000])

    def _health_batch(self, n: int) -> List[Any]:
        out = []
        online = self.online
        now = time.time()
        its = int(now)
        k = len(online)
        for _ in range(n):
            d = online[self.rr % k]
            self.rr += 1
            d.seq += 1
            tmpl = self.templates[d.id]
            payload = tmpl[d.seq % len(tmpl)] % (its, d.seq, its - self.boot[d.id])
            out.append((self.topics[d.id]["health"], payload, False, (d.id, d.seq)))
            self.sim._first_seq(d.id, d.seq)
        return out

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # pragma: no cover - reported by run_simulation
            self.error = exc
            log.exception("simulator connection %d failed", self.idx)

    def _run(self) -> None:
        sim = self.sim
        self.rr = self.idx  # spread devices' start
        self._connect()
        if self.sock is None:
            return
        self._hello()
        start = time.monotonic()
        sent_health = 0
        window = sim.window
        while not sim.stop_event.is_set():
            try:
                if sim.deadline is not None and time.monotonic() >= sim.deadline:
                    break
                due = int((time.monotonic() - start) * self.rate) - sent_health
                room = window - self._pending()
                if self.online and due > 0 and room > 0:
                    n = min(due, room, sim.chunk)
                    self._send(self._health_batch(n))
                    sent_health += n
                    self._read_acks(0)
                else:
                    wait = 0.05 if room <= 0 else min(0.05, max(0.001, 1.0 / max(self.rate, 1)))
                    self._read_acks(wait)
                    if time.monotonic() - self.last_send > 30:
                        self._sendall(b"\xc0\x00")  # PINGREQ
            except OSError as exc:
                if sim.stop_event.is_set():
                    break
                log.info("simulator connection %d lost (%s); reconnecting", self.idx, exc)
                sim._count_reconnect()
                self._close()
                self._connect()
                if self.sock is None:
                    break
                self._resend()
                self._hello()
                # do not try to catch up on what was missed while disconnected
                start = time.monotonic() - sent_health / max(self.rate, 1e-9)
        self._finish()

    def _finish(self) -> None:
        sim = self.sim
        try:
            if sim.final_status and self.sock is not None:
                packets = [self._status(d, "offline", "shutdown") for d in self.online]
                for i in range(0, len(packets), 1000):
                    self._send(packets[i:i + 1000])
            deadline = time.monotonic() + sim.drain_timeout
            while self.sock is not None and self._pending() and time.monotonic() < deadline:
                self._read_acks(0.05)
            if self.sock is not None:
                self._sendall(b"\xe0\x00")  # DISCONNECT: no Last Will
        except OSError:
            pass
        self._close()

    def _close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


def _hdr_len(pkt: bytes) -> int:
    i = 1
    while pkt[i] & 0x80:
        i += 1
    return i + 1


class Simulation:
    """A running simulated fleet; ``start()``, ``stop()``, ``join()``, ``stats``."""

    def __init__(self, broker_url: str, province: Province, rate: Optional[float] = None,
                 duration: Optional[float] = None, stop_event: Optional[threading.Event] = None,
                 connections: Optional[int] = None, window: int = 5000, chunk: int = 500,
                 username: str = "", password: str = "", ca_file: str = "",
                 final_status: bool = True, drain_timeout: float = 10.0, seed: int = 1,
                 client_prefix: str = "schoolmon-sim") -> None:
        parts = urlsplit(broker_url)
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.province = province
        online = [d for d in province.devices if d.online]
        # default: every device every 60 s (its hb)
        self.rate = float(rate) if rate else len(online) / 60.0
        self.duration = duration
        self.stop_event = stop_event or threading.Event()
        self.window, self.chunk = max(1, window), max(1, chunk)
        self.username, self.password, self.ca_file = username, password, ca_file
        self.final_status, self.drain_timeout = final_status, drain_timeout
        self.seed = seed
        self.client_prefix = client_prefix
        self.deadline: Optional[float] = None
        self.inventory_sent: Dict[str, bool] = {}
        self.stats = SimStats()
        self._lock = threading.Lock()
        devices = province.devices
        k = connections or min(4, max(1, len(devices)))
        k = max(1, min(k, len(devices) or 1))
        share = [devices[i::k] for i in range(k)]
        rates = [self.rate * sum(1 for d in s if d.online) / max(1, len(online)) for s in share]
        self.conns = [_Conn(self, i, s, r) for i, (s, r) in enumerate(zip(share, rates)) if s]
        self._t0 = 0.0
        self._ever_connected: Set[int] = set()

    def _count_sent(self, n: int, health: int) -> None:
        with self._lock:
            self.stats.sent += n
            self.stats.health_sent += health

    def _count_acked(self, n: int, upto: Dict[str, int]) -> None:
        with self._lock:
            self.stats.acked += n
            self.stats.acked_upto.update(upto)

    def _first_seq(self, device: str, seq: int) -> None:
        if device not in self.stats.first_seq:
            with self._lock:
                self.stats.first_seq.setdefault(device, seq)

    def _count_connected(self, conn: "_Conn") -> None:
        with self._lock:
            if conn.idx not in self._ever_connected:
                self._ever_connected.add(conn.idx)
                self.stats.connected += 1

    def _connect_failed(self, conn: "_Conn", exc: BaseException) -> bool:
        """Record a failed connection; True for the first failure of this run."""
        with self._lock:
            first = self.stats.connect_error is None
            self.stats.connect_error = "%s:%d: %s" % (self.host, self.port, exc)
            return first

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def time_left(self) -> float:
        """Seconds to the deadline (a large number without one)."""
        return 3600.0 if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def _count_reconnect(self) -> None:
        with self._lock:
            self.stats.reconnects += 1

    def start(self) -> "Simulation":
        self._t0 = time.monotonic()
        if self.duration is not None:
            self.deadline = self._t0 + self.duration
        for c in self.conns:
            c.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: Optional[float] = None) -> SimStats:
        for c in self.conns:
            c.join(timeout)
        self.stats.elapsed = time.monotonic() - self._t0
        return self.stats

    def run(self) -> SimStats:
        self.start()
        try:
            while any(c.is_alive() for c in self.conns):
                for c in self.conns:
                    c.join(0.2)
        except KeyboardInterrupt:
            self.stop()
        return self.join()


def run_simulation(broker_url: str, schools: int = 30, devices_per_school: int = 10,
                   rate: Optional[float] = None, duration: Optional[float] = None,
                   stop_event: Optional[threading.Event] = None, seed: int = 1,
                   province: Optional[Province] = None, **options: Any) -> SimStats:
    """Publish a simulated fleet to ``broker_url`` until ``duration`` seconds pass or
    ``stop_event`` is set (Ctrl-C also stops it). ``rate`` is health messages per second
    for the whole fleet (default: each online device every 60 s). ``options`` go to
    :class:`Simulation` (connections, window, chunk, username, password, ca_file,
    final_status, ...). Returns the SimStats."""
    prov = province or province_fixture(schools, devices_per_school, seed)
    sim = Simulation(broker_url, prov, rate=rate, duration=duration, stop_event=stop_event,
                     seed=seed, **options)
    return sim.run()
