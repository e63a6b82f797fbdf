"""The health family: on this machine against psutil, and with faked psutil answers for
sensors, volumes and counters this machine does not have."""
import os
import time
from collections import namedtuple

import psutil
from schoolmon.agent.families import health as health_mod
from schoolmon.agent.families.health import HealthFamily
from schoolmon.protocol import encode, envelope, validate

Part = namedtuple("Part", "device mountpoint fstype opts")
Usage = namedtuple("Usage", "total used free percent")
Swap = namedtuple("Swap", "total used free percent sin sout")
Temp = namedtuple("Temp", "label current high critical")
Fan = namedtuple("Fan", "label current")
Batt = namedtuple("Batt", "percent secsleft power_plugged")
Nic = namedtuple("Nic", "bytes_sent bytes_recv packets_sent packets_recv errin errout dropin "
                 "dropout")
Disk = namedtuple("Disk", "read_count write_count read_bytes write_bytes")
Stats = namedtuple("Stats", "isup duplex speed mtu flags")


def _message(fields, seq=1):
    msg = envelope("health", fields, seq, time.time())
    validate("health", msg)
    return msg


def test_health_on_this_machine_validates_and_agrees_with_psutil():
    fam = HealthFamily()
    time.sleep(0.3)
    first = fam.collect()
    time.sleep(0.3)
    second = fam.collect()
    for i, fields in enumerate((first, second), 1):
        _message(fields, i)
    h = second
    assert h["cpu_n"] == psutil.cpu_count()
    assert abs(h["mem_pct"] - psutil.virtual_memory().percent) <= 3
    assert h["disks"], "this machine has at least its root volume"
    for d in h["disks"]:
        use = psutil.disk_usage(d["mnt"])
        assert abs(d["free"] - use.free) <= 0.01 * use.total, d
        assert abs(d["pct"] - use.percent) <= 1, d
    assert abs(h["procs"] - len(psutil.pids())) <= 50
    assert abs(h["up"] - (time.time() - psutil.boot_time())) <= 5
    assert 0 <= h["cpu_pct"] <= 100
    assert h["users"] == len({u.name for u in psutil.users()})
    if hasattr(os, "getloadavg"):
        assert len(h["load"]) == 3
    # rates exist from the first collect on (counters primed in the constructor)
    assert "disk_rd" in first or not psutil.disk_io_counters(perdisk=True)
    up_nics = {n for n, s in psutil.net_if_stats().items()
               if s.isup and "loopback" not in getattr(s, "flags", "") and n != "lo"}
    assert {n["if"] for n in first["nics"]} == up_nics
    for n in h["nics"]:
        assert n["rx"] >= 0 and n["tx"] >= 0
    for key in ("q", "q_drop"):  # the core adds these
        assert key not in h


def test_health_collect_is_cheap():
    fam = HealthFamily()
    fam.collect()
    start = time.perf_counter()
    for _ in range(10):
        fam.collect()
    per_collect = (time.perf_counter() - start) / 10
    assert per_collect < 0.05, "%.1f ms per collect" % (per_collect * 1000)


def test_health_payload_size_on_this_machine():
    fam = HealthFamily()
    time.sleep(0.1)
    size = len(encode(_message(fam.collect())))
    assert size < 2048, size


def test_health_runs_no_subprocess(monkeypatch):
    # Recorded, not raised: the family catches its own errors, so a raise would be hidden.
    import subprocess

    started = []
    real = subprocess.Popen

    def record(*a, **k):
        started.append(a[0] if a else k.get("args"))
        return real(*a, **k)

    monkeypatch.setattr(subprocess, "Popen", record)
    fam = HealthFamily()
    fam.collect()
    fam.collect()
    assert started == [], "the health path must not start processes"


# -- faked psutil: sensors ------------------------------------------------------------------
def test_missing_sensors_leave_fields_out(monkeypatch):
    def boom():
        raise OSError("no hwmon")

    monkeypatch.setattr(psutil, "sensors_temperatures", boom, raising=False)
    monkeypatch.setattr(psutil, "sensors_fans", lambda: {"nct6775": [Fan("fan1", 0),
                                                                     Fan("fan2", 0)]},
                        raising=False)
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None, raising=False)
    monkeypatch.setattr(psutil, "swap_memory", lambda: Swap(0, 0, 0, 0, 0, 0))
    h = HealthFamily().collect()
    for key in ("temp", "fan", "batt", "ac", "swap_pct"):
        assert key not in h
    _message(h)


def test_sensor_functions_absent_like_on_windows(monkeypatch):
    for name in ("sensors_temperatures", "sensors_fans", "sensors_battery"):
        monkeypatch.delattr(psutil, name, raising=False)
    h = HealthFamily().collect()
    assert not {"temp", "fan", "batt", "ac"} & set(h)
    _message(h)


def test_sensors_present(monkeypatch):
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {
        "acpitz": [Temp("", 88.0, None, None)],  # board zone: only a fallback
        "coretemp": [Temp("Package id 0", 61.0, 80, 100), Temp("Core 0", 58.5, 80, 100),
                     Temp("Core 1", 63.25, 80, 100)],
        "nvme": [Temp("Composite", 70.0, None, None)],  # not the CPU
    }, raising=False)
    monkeypatch.setattr(psutil, "sensors_fans", lambda: {
        "nct6775": [Fan("fan1", 0), Fan("fan2", 1450)], "dell_smm": [Fan("cpu", 2100)]},
        raising=False)
    monkeypatch.setattr(psutil, "sensors_battery", lambda: Batt(87.4, 3600, False),
                        raising=False)
    h = HealthFamily().collect()
    assert h["temp"] == 63.2 or h["temp"] == 63.3  # rounding of 63.25
    assert h["fan"] == 2100
    assert h["batt"] == 87.4 and h["ac"] is False
    _message(h)


def test_acpitz_used_when_no_cpu_chip(monkeypatch):
    monkeypatch.setattr(psutil, "sensors_temperatures", lambda: {
        "acpitz": [Temp("", 47.0, None, None), Temp("", 0.0, None, None)],
        "k10temp": []}, raising=False)
    monkeypatch.setattr(psutil, "sensors_battery",
                        lambda: Batt(55, psutil.POWER_TIME_UNLIMITED, None), raising=False)
    h = HealthFamily().collect()
    assert h["temp"] == 47.0
    assert h["batt"] == 55.0 and "ac" not in h  # plugged state unknown: left out


# -- faked psutil: volumes ------------------------------------------------------------------
def test_only_fixed_volumes(monkeypatch):
    parts = [
        Part("/dev/sda2", "/", "ext4", "rw,relatime"),
        Part("/dev/sda2", "/var/snap/bind", "ext4", "rw,bind"),  # same device again
        Part("/dev/sda1", "/boot/efi", "vfat", "rw"),
        Part("/dev/loop3", "/snap/core22/1380", "squashfs", "ro,nodev"),
        Part("tmpfs", "/run", "tmpfs", "rw"),
        Part("overlay", "/var/lib/docker/overlay2/x/merged", "overlay", "rw"),
        Part("nas:/srv", "/mnt/nas", "nfs4", "rw"),
        Part("/dev/sr0", "/media/cdrom", "iso9660", "ro"),
        Part("gvfsd-fuse", "/run/user/1000/gvfs", "fuse.gvfsd-fuse", "rw"),
        Part("C:\\", "C:\\", "NTFS", "rw,fixed"),
        Part("D:\\", "D:\\", "", "cdrom"),  # empty DVD drive
        Part("E:\\", "E:\\", "FAT32", "rw,removable"),
        Part("Z:\\", "Z:\\", "NTFS", "rw,remote"),
    ]
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: parts)
    asked = []

    def usage(path):
        asked.append(path)
        return Usage(100 * 2 ** 30, 25 * 2 ** 30, 75 * 2 ** 30, 25.0)

    monkeypatch.setattr(psutil, "disk_usage", usage)
    h = HealthFamily().collect()
    assert [d["mnt"] for d in h["disks"]] == ["/", "/boot/efi", "C:"]
    assert set(asked) == {"/", "/boot/efi", "C:\\"}  # never touches a network mount
    assert h["disks"][0] == {"mnt": "/", "pct": 25.0, "free": 75 * 2 ** 30}
    _message(h)


def test_a_volume_that_fails_is_left_out(monkeypatch):
    monkeypatch.setattr(psutil, "disk_partitions", lambda all=False: [
        Part("/dev/sda1", "/", "ext4", "rw"), Part("/dev/sdb1", "/data", "xfs", "rw")])

    def usage(path):
        if path == "/data":
            raise PermissionError(13, "denied")
        return Usage(10, 5, 5, 50.0)

    monkeypatch.setattr(psutil, "disk_usage", usage)
    assert [d["mnt"] for d in HealthFamily().collect()["disks"]] == ["/"]


# -- faked psutil: counters -----------------------------------------------------------------
class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _fake_counters(monkeypatch, net, disk):
    monkeypatch.setattr(psutil, "net_io_counters", lambda pernic=True, nowrap=True: net[0])
    monkeypatch.setattr(psutil, "disk_io_counters", lambda perdisk=True, nowrap=True: disk[0])
    monkeypatch.setattr(psutil, "net_if_stats", lambda: {
        "lo": Stats(True, 0, 0, 65536, "up,loopback,running"),
        "eth0": Stats(True, 2, 1000, 1500, "up,broadcast,running,multicast"),
        "wlan0": Stats(False, 0, 0, 1500, "broadcast,multicast"),
        "enp3s0": Stats(True, 2, 100, 1500, "up,broadcast,running,multicast")})


def test_rates_are_averages_since_the_previous_collect(monkeypatch):
    net = [{"lo": Nic(5, 5, 1, 1, 0, 0, 0, 0), "eth0": Nic(1000, 2000, 0, 0, 1, 0, 3, 0),
            "wlan0": Nic(0, 0, 0, 0, 0, 0, 0, 0), "enp3s0": Nic(0, 0, 0, 0, 0, 0, 0, 0)}]
    disk = [{"sda": Disk(0, 0, 10000, 20000), "loop0": Disk(0, 0, 0, 0),
             "dm-0": Disk(0, 0, 10000, 20000), "nvme0n1": Disk(0, 0, 0, 0)}]
    _fake_counters(monkeypatch, net, disk)
    clock = Clock()
    fam = HealthFamily(clock=clock)
    clock.t += 60
    net[0] = {"lo": Nic(99, 99, 1, 1, 0, 0, 0, 0),
              "eth0": Nic(1000 + 60 * 500, 2000 + 60 * 1500, 0, 0, 3, 1, 5, 0),
              "wlan0": Nic(0, 0, 0, 0, 0, 0, 0, 0), "enp3s0": Nic(0, 0, 0, 0, 0, 0, 0, 0)}
    # dm-0 (a layer on sda) and loop0 must not be counted: sda 60 kB/s read, nvme 1 kB/s
    disk[0] = {"sda": Disk(0, 0, 10000 + 60 * 60000, 20000 + 60 * 6000),
               "loop0": Disk(0, 0, 10 ** 9, 0), "dm-0": Disk(0, 0, 10 ** 9, 10 ** 9),
               "nvme0n1": Disk(0, 0, 60 * 1000, 0)}
    h = fam.collect()
    assert h["nics"] == [{"if": "enp3s0", "rx": 0, "tx": 0, "err": 0, "drop": 0},
                         {"if": "eth0", "rx": 1500, "tx": 500, "err": 3, "drop": 2}]
    assert h["disk_rd"] == 61000 and h["disk_wr"] == 6000
    _message(h)


def test_counter_reset_drops_that_samples_rate(monkeypatch):
    net = [{"eth0": Nic(10 ** 9, 10 ** 9, 0, 0, 50, 0, 50, 0)}]
    disk = [{"sda": Disk(0, 0, 10 ** 9, 10 ** 9)}]
    _fake_counters(monkeypatch, net, disk)
    clock = Clock()
    fam = HealthFamily(clock=clock)
    clock.t += 60
    # NIC re-plugged / reboot of a USB disk enclosure: counters start again from zero
    net[0] = {"eth0": Nic(1000, 2000, 0, 0, 0, 0, 0, 0)}
    disk[0] = {"sda": Disk(0, 0, 4096, 0)}
    h = fam.collect()
    assert h["nics"] == [] and "disk_rd" not in h and "disk_wr" not in h
    _message(h)
    # the next sample has rates again, from the new base
    clock.t += 60
    net[0] = {"eth0": Nic(1000 + 600, 2000 + 1200, 0, 0, 0, 0, 0, 0)}
    disk[0] = {"sda": Disk(0, 0, 4096 + 6000, 600)}
    h = fam.collect()
    assert h["nics"] == [{"if": "eth0", "rx": 20, "tx": 10, "err": 0, "drop": 0}]
    assert h["disk_rd"] == 100 and h["disk_wr"] == 10


def test_absurd_jump_is_dropped(monkeypatch):
    net = [{"eth0": Nic(0, 0, 0, 0, 0, 0, 0, 0)}]
    disk = [{"sda": Disk(0, 0, 0, 0)}]
    _fake_counters(monkeypatch, net, disk)
    clock = Clock()
    fam = HealthFamily(clock=clock)
    clock.t += 1
    net[0] = {"eth0": Nic(2 ** 63, 0, 0, 0, 0, 0, 0, 0)}
    disk[0] = {"sda": Disk(0, 0, 2 ** 63, 0)}
    h = fam.collect()
    assert h["nics"] == [] and "disk_rd" not in h
    _message(h)


def test_new_nic_has_no_rate_until_its_second_sample(monkeypatch):
    net = [{}]
    _fake_counters(monkeypatch, net, [{}])
    clock = Clock()
    fam = HealthFamily(clock=clock)
    clock.t += 60
    net[0] = {"eth0": Nic(100, 100, 0, 0, 0, 0, 0, 0)}
    assert fam.collect()["nics"] == []
    clock.t += 60
    net[0] = {"eth0": Nic(100 + 60, 100 + 120, 0, 0, 0, 0, 0, 0)}
    assert fam.collect()["nics"] == [{"if": "eth0", "rx": 2, "tx": 1, "err": 0, "drop": 0}]


def test_cpu_pct_from_cpu_times(monkeypatch):
    T = namedtuple("T", "user nice system idle iowait irq softirq steal guest guest_nice")
    times = [T(100, 0, 50, 800, 50, 0, 0, 0, 10, 0)]
    monkeypatch.setattr(psutil, "cpu_times", lambda percpu=False: times[0])
    clock = Clock()
    fam = HealthFamily(clock=clock)
    clock.t += 60
    # user +20 (guest +5 is inside it), system +10, idle/iowait +70: 30 busy of 100
    times[0] = T(120, 0, 60, 860, 60, 0, 0, 0, 15, 0)
    assert fam.collect()["cpu_pct"] == 30.0
    # no time passed: the previous value is repeated (cpu_pct is required)
    assert fam.collect()["cpu_pct"] == 30.0


def test_no_io_counters_at_all(monkeypatch):
    def none(**kwargs):
        raise FileNotFoundError("/proc/diskstats")

    monkeypatch.setattr(psutil, "disk_io_counters", none)
    monkeypatch.setattr(psutil, "net_io_counters", none)
    h = HealthFamily().collect()
    assert "disk_rd" not in h and h["nics"] == []
    _message(h)


def test_load_falls_back_to_psutil(monkeypatch):
    monkeypatch.delattr(os, "getloadavg", raising=False)
    monkeypatch.setattr(psutil, "getloadavg", lambda: (0.5, 0.25, 0.125))
    assert health_mod.HealthFamily().collect()["load"] == [0.5, 0.25, 0.12]


def test_first_collect_right_after_start_measures_a_real_window():
    """`schoolmon-agent collect` builds the family and collects at once: the CPU figure
    must come from a real interval, not be a made-up 0."""
    start = time.monotonic()
    fam = HealthFamily()
    fam.collect()
    assert fam._measured
    assert 0.2 <= time.monotonic() - start < 2
    start = time.monotonic()
    fam.collect()  # later collects never wait
    assert time.monotonic() - start < 0.1
