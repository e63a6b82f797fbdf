"""The ``health`` family: how the PC is doing right now (fields described in the catalogue).

psutil only, no subprocess: this runs every minute on old lab PCs and must stay cheap.
Rates are averages since the previous collect; the constructor primes the counters so the
first collect already has them. A counter that went backwards (NIC re-plugged, disk
re-attached, 32-bit wrap psutil could not hide) costs that sample's rate, never a negative
or absurd number.
"""
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import psutil

from .netif import if_stats

# Anything above this per second is a counter glitch, not traffic (catalogue bound).
_MAX_RATE = 100 * 10 ** 9 // 8

# Pseudo and duplicate file systems: not a "fixed volume" a teacher would call a disk.
_SKIP_FSTYPES = {
    "squashfs", "tmpfs", "devtmpfs", "overlay", "aufs", "ramfs", "iso9660", "udf", "autofs",
    "proc", "sysfs", "cgroup", "cgroup2", "devpts", "debugfs", "tracefs", "securityfs",
    "pstore", "bpf", "efivarfs", "configfs", "fusectl", "mqueue", "hugetlbfs", "binfmt_misc",
    "nsfs", "rpc_pipefs", "nfs", "nfs4", "cifs", "smbfs", "smb3", "sshfs", "9p", "davfs",
    "fuse.sshfs", "fuse.gvfsd-fuse", "fuse.portal", "fuse.lxcfs", "afs", "ceph", "glusterfs",
}
# psutil's Windows drive types (opts) that are not fixed disks.
_SKIP_OPTS = {"cdrom", "removable", "remote", "ramdisk"}

# Block devices that are not physical disks: counting them would count I/O twice
# (dm-* and md* sit on top of sdX) or count RAM (zram, ram).
_VIRTUAL_DISK_PREFIXES = ("loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd")

# Shortest window a rate is measured over. Only the first collect can be shorter (e.g.
# `schoolmon-agent collect` right after start): it waits the rest once, so it never reports
# a made-up 0 % CPU. The runtime's first report comes 5-30 s after start and never waits.
_MIN_WINDOW = 0.25

# CPU sensor chips, best first; acpitz (a board zone, often near the CPU) only as fallback.
_CPU_CHIPS = ("coretemp", "k10temp", "zenpower", "k8temp", "cpu_thermal", "cpu-thermal",
              "soc_thermal", "via_cputemp", "cpu")
_FALLBACK_CHIPS = ("acpitz",)


def _rate(new: int, old: int, dt: float) -> Optional[int]:
    """Per-second rate of a monotonic counter; None when it went backwards or is absurd."""
    delta = new - old
    if delta < 0 or dt <= 0:
        return None
    rate = int(round(delta / dt))
    return rate if rate <= _MAX_RATE else None


def _cpu_busy_total(t: Any) -> Tuple[float, float]:
    """(busy, total) seconds as psutil.cpu_percent counts them: guest time is already in
    user/nice on Linux, idle and iowait are not busy."""
    total = sum(t)
    total -= getattr(t, "guest", 0.0) + getattr(t, "guest_nice", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return total - idle, total


def _is_loopback(name: str, stats: Any) -> bool:
    flags = getattr(stats, "flags", "") or ""
    return "loopback" in flags.split(",") or name == "lo" or name.lower().startswith(
        "loopback")


class HealthFamily:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cpu_pct = 0.0
        self._measured = False  # cpu_pct comes from a real interval yet
        self._t = clock()
        self._cpu = self._read_cpu()
        self._disk = self._read_disk()
        self._net = self._read_net()
        # Windows: psutil's load emulation starts a sampling thread on first use and gives
        # zeros for ~5 s; start it now so the first message has real numbers.
        self._load()

    # -- counters ---------------------------------------------------------------------
    def _read_cpu(self) -> Optional[Tuple[float, float]]:
        try:
            return _cpu_busy_total(psutil.cpu_times())
        except Exception:
            return None

    def _read_disk(self) -> Dict[str, Tuple[int, int]]:
        try:
            per = psutil.disk_io_counters(perdisk=True) or {}
        except Exception:  # no /proc/diskstats in some containers; Windows perf off
            return {}
        return {name: (c.read_bytes, c.write_bytes) for name, c in per.items()
                if not name.startswith(_VIRTUAL_DISK_PREFIXES)}

    def _read_net(self) -> Dict[str, Tuple[int, int, int, int]]:
        try:
            per = psutil.net_io_counters(pernic=True) or {}
        except Exception:
            return {}
        return {name: (c.bytes_recv, c.bytes_sent, c.errin + c.errout, c.dropin + c.dropout)
                for name, c in per.items()}

    # -- the family -------------------------------------------------------------------
    def collect(self) -> Dict[str, Any]:
        now = self._clock()
        if not self._measured and 0 <= now - self._t < _MIN_WINDOW:
            time.sleep(_MIN_WINDOW - (now - self._t))
            now = self._clock()
        dt = now - self._t
        cpu, disk, net = self._read_cpu(), self._read_disk(), self._read_net()
        out: Dict[str, Any] = {}

        # cpu_pct is required: when no time passed (two calls in one tick) repeat the last
        if cpu is not None and self._cpu is not None:
            d_busy, d_total = cpu[0] - self._cpu[0], cpu[1] - self._cpu[1]
            if d_total > 0 and d_busy >= 0:
                self._cpu_pct = round(min(100.0, 100.0 * d_busy / d_total), 1)
                self._measured = True
        out["cpu_pct"] = self._cpu_pct
        out["cpu_n"] = psutil.cpu_count() or 1
        load = self._load()
        if load is not None:
            out["load"] = load

        mem = psutil.virtual_memory()
        out["mem_pct"] = round(float(mem.percent), 1)
        try:
            swap = psutil.swap_memory()
            if swap.total > 0:  # no swap configured: nothing to report, not 0 %
                out["swap_pct"] = round(float(swap.percent), 1)
        except Exception:
            pass

        out["disks"] = self._volumes()
        if disk and self._disk:
            rates = [(_rate(r, self._disk[n][0], dt), _rate(w, self._disk[n][1], dt))
                     for n, (r, w) in disk.items() if n in self._disk]
            if rates and all(r is not None and w is not None for r, w in rates):
                out["disk_rd"] = sum(r for r, _ in rates)  # type: ignore
                out["disk_wr"] = sum(w for _, w in rates)  # type: ignore
        out["nics"] = self._nics(net, dt)

        self._sensors(out)
        try:
            boot = psutil.boot_time()
            out["up"] = max(0, int(time.time() - boot))
        except Exception:
            out["up"] = int(now)  # monotonic clock counts from boot on Linux and Windows
        try:
            out["procs"] = len(psutil.pids())
        except Exception:
            pass
        try:
            out["users"] = len({u.name for u in psutil.users()})
        except Exception:
            pass

        self._t, self._cpu, self._disk, self._net = now, cpu, disk, net
        return out

    def _load(self) -> Optional[List[float]]:
        try:
            # Windows has no getloadavg: psutil emulates it from the processor queue length
            values = os.getloadavg() if hasattr(os, "getloadavg") else psutil.getloadavg()
        except (OSError, AttributeError):
            return None
        return [round(v, 2) for v in values]

    def _volumes(self) -> List[Dict[str, Any]]:
        seen_devices = set()
        vols = []
        try:
            parts = psutil.disk_partitions(all=False)
        except Exception:
            return []
        # shortest mount point first: a bind mount repeating a device is the longer path
        for p in sorted(parts, key=lambda p: (len(p.mountpoint), p.mountpoint)):
            opts = set((p.opts or "").split(","))
            fstype = (p.fstype or "").lower()
            if opts & _SKIP_OPTS or fstype in _SKIP_FSTYPES or fstype.startswith("fuse."):
                continue
            if not fstype:  # Windows: a drive with no media (card reader, empty DVD)
                continue
            if p.device.startswith("/dev/loop"):  # snaps and mounted images
                continue
            if p.device and p.device in seen_devices:
                continue
            try:
                use = psutil.disk_usage(p.mountpoint)
            except Exception:  # vanished or no permission: leave this volume out
                continue
            if use.total <= 0:
                continue
            seen_devices.add(p.device)
            mnt = p.mountpoint
            if len(mnt) == 3 and mnt[1:] == ":\\":  # Windows "C:\\" → "C:"
                mnt = mnt[:2]
            vols.append({"mnt": mnt, "pct": round(float(use.percent), 1), "free": use.free})
        vols.sort(key=lambda v: v["mnt"])
        return vols

    def _nics(self, net: Dict[str, Tuple[int, int, int, int]], dt: float
              ) -> List[Dict[str, Any]]:
        try:
            stats = if_stats()
        except Exception:
            return []
        nics = []
        for name in sorted(net):
            st = stats.get(name)
            if st is None or not st.isup or _is_loopback(name, st):
                continue
            old = self._net.get(name)
            if old is None:  # appeared since the last collect: no rate yet
                continue
            new = net[name]
            rx, tx = _rate(new[0], old[0], dt), _rate(new[1], old[1], dt)
            if rx is None or tx is None:  # counters reset: NIC re-plugged, driver reloaded
                continue
            nic: Dict[str, Any] = {"if": name, "rx": rx, "tx": tx}
            if new[2] >= old[2]:
                nic["err"] = new[2] - old[2]
            if new[3] >= old[3]:
                nic["drop"] = new[3] - old[3]
            nics.append(nic)
        return nics

    def _sensors(self, out: Dict[str, Any]) -> None:
        temp = _cpu_temp()
        if temp is not None:
            out["temp"] = temp
        fans = getattr(psutil, "sensors_fans", None)
        if fans is not None:
            try:
                speeds = [f.current for entries in fans().values() for f in entries
                          if f.current is not None]
            except Exception:
                speeds = []
            # all zero = unpopulated headers on most boards; 0 would read as "fan dead"
            if speeds and max(speeds) > 0:
                out["fan"] = int(max(speeds))
        battery = getattr(psutil, "sensors_battery", None)
        if battery is not None:
            try:
                b = battery()
            except Exception:
                b = None
            if b is not None and b.percent is not None:
                out["batt"] = round(float(b.percent), 1)
                if b.power_plugged is not None:
                    out["ac"] = bool(b.power_plugged)


def _cpu_temp() -> Optional[float]:
    read = getattr(psutil, "sensors_temperatures", None)  # not on Windows or macOS
    if read is None:
        return None
    try:
        chips = read()
    except Exception:
        return None
    for group in (_CPU_CHIPS, _FALLBACK_CHIPS):
        values = [t.current for name, entries in chips.items() if name in group
                  for t in entries if t.current is not None and 0 < t.current < 150]
        if values:
            return round(float(max(values)), 1)
    return None
