"""The Linux security scanner on fixture trees (tests/agent/fixtures/linux/security: a file
tree per box plus the commands' recorded outputs; README.md there says where each came
from), on this machine's real ``/``, and through the real runtime."""
import calendar
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import threading
import time

import pytest
from schoolmon.agent.config import load_config
from schoolmon.agent.families import SPECS, build_families
from schoolmon.agent.families import security_linux as sl
from schoolmon.agent.families.security import Findings, SecurityFamily
from schoolmon.agent.runner import CommandResult, CommandTimeout, RecordedRunner
from schoolmon.agent.runtime import Runtime
from schoolmon.agent.spool import Spool
from schoolmon.protocol import envelope, validate
from schoolmon.protocol.catalogue import FAMILIES

from ..agenthelp import wait_for

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "linux",
                        "security")
BOXES = sorted(n for n in os.listdir(FIXTURES)
               if os.path.exists(os.path.join(FIXTURES, n, "box.json")))
APT = "/usr/bin/apt-get " + " ".join(sl.APT_SIMULATE)
#: What a Linux scan answers (or names in ``unknown``); the rest are Windows facts.
LINUX_FIELDS = {
    "os_family", "os_id", "av", "av_on", "av_name", "patch_last_ts", "patch_pending_sec",
    "patch_pending", "patch_checked_ts", "pkg_cache_ts", "reboot_pending", "reboot_signals",
    "auto_update", "auto_update_detail", "fw_on", "fw_profiles", "smb1_server",
    "smb1_client", "scan_s", "scan_cpu_s"}
WINDOWS_ONLY = {"os_ubr", "esu", "update_service_off", "guest_on", "admin_builtin_on",
                "rdp_on", "rdp_nla", "autorun_off", "autorun_detail", "lock_s", "lock_source",
                "frozen", "freeze_product"}


def _local(tz_hours, *ymdhms):
    """Epoch of a wall-clock time in a fixed UTC offset (apt writes local time)."""
    return calendar.timegm(ymdhms) - tz_hours * 3600


@pytest.fixture
def set_tz(monkeypatch):
    def apply(name):
        monkeypatch.setenv("TZ", name)
        time.tzset()
    yield apply
    monkeypatch.undo()
    time.tzset()


class Box:
    """A fixture box copied into tmp_path: the tree with its executables, symlinks and
    file times applied (git keeps none of them), and a runner replaying its recordings."""

    def __init__(self, name, tmp_path, as_user=False):
        src = os.path.join(FIXTURES, name)
        with open(os.path.join(src, "box.json"), encoding="utf-8") as fh:
            self.meta = json.load(fh)
        self.root = str(tmp_path / name)
        shutil.copytree(os.path.join(src, "tree"), self.root, symlinks=True)
        for rel in self.meta["installed"]:
            self._make_parent(rel)
            open(self.path(rel), "w").close()
        for rel, target in self.meta["symlinks"].items():
            self._make_parent(rel)
            os.symlink(target, self.path(rel))
        # files first: creating an entry changes its folder's time
        for rel, ts in sorted(self.meta["mtimes"].items(), key=lambda kv: -len(kv[0])):
            os.utime(self.path(rel), (ts, ts))
        recordings = {}
        commands = self.meta["commands_as_user" if as_user else "commands"]
        for key, rec in commands.items():
            if isinstance(rec, dict):
                rec = CommandResult(rec["rc"], self._text(src, rec.get("stdout")),
                                    self._text(src, rec.get("stderr")))
            recordings[key] = rec
        self.runner = RecordedRunner(recordings, root=src)
        self.now = self.meta["now"]

    @staticmethod
    def _text(src, rel):
        if not rel:
            return ""
        with open(os.path.join(src, rel), encoding="utf-8") as fh:
            return fh.read()

    def path(self, rel):
        return os.path.join(self.root, rel)

    def _make_parent(self, rel):
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)

    def scan(self, set_tz, **kw):
        set_tz(self.meta["tz"])
        found = Findings()
        sl.scan_linux(found, self.runner, self.root, now=self.now, **kw)
        return found.payload()


def _unknown(payload):
    return {u["field"]: u["reason"] for u in payload.get("unknown", [])}


def _valid(payload):
    known = {f.name for f in FAMILIES["security"].fields}
    assert set(payload) <= known, set(payload) - known
    validate("security", envelope("security", payload, 1, time.time()))
    assert not set(payload) & WINDOWS_ONLY, "Windows facts are left out on Linux"
    missing = LINUX_FIELDS - set(payload) - set(_unknown(payload))
    assert not missing, "neither found nor unknown: %s" % missing


# --- the boxes --------------------------------------------------------------------------

def test_ubuntu_with_security_updates_waiting_and_a_reboot_required(tmp_path, set_tz):
    box = Box("ubuntu-22.04", tmp_path)
    p = box.scan(set_tz)
    assert _unknown(p) == {}
    assert p["os_id"] == "ubuntu"
    # apt's own summary: "7 upgraded, 1 newly installed" (the new kernel comes with
    # linux-image-generic); curl, libcurl4, libssl3, linux-image-generic, openssl are in
    # jammy-security as well as jammy-updates, tzdata and vim only in jammy-updates
    assert (p["patch_pending"], p["patch_pending_sec"]) == (7, 5)
    assert p["patch_checked_ts"] == box.now
    assert p["pkg_cache_ts"] == 1706855400, "update-success-stamp, not the lists"
    # the newest finished upgrade, 2024-01-10 06:25:40 at UTC+7; the later entry only
    # installed VLC
    assert p["patch_last_ts"] == _local(7, 2024, 1, 10, 6, 25, 40)
    assert p["reboot_pending"] is True and p["reboot_signals"] == ["reboot_required_file"]
    assert p["auto_update"] is True
    assert p["auto_update_detail"] == ("APT::Periodic::Unattended-Upgrade=1; "
                                       "apt-daily-upgrade.timer enabled")
    assert p["fw_on"] is True
    assert p["fw_profiles"] == [{"name": "iptables", "on": True}, {"name": "ufw", "on": True}]
    assert (p["av"], p["av_on"], p["av_name"]) == ([], False, "")
    assert (p["smb1_server"], p["smb1_client"]) == (False, False)
    assert box.runner.calls == [APT, "/usr/sbin/iptables -S"]


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get")
def test_the_ubuntu_recording_is_what_real_apt_prints(tmp_path):
    """The Ubuntu box holds the apt state behind its recording (dpkg status, package lists
    with Ubuntu's origins): real apt-get, pointed at it, prints the recording again."""
    box = Box("ubuntu-22.04", tmp_path)
    for d in ("etc/apt/preferences.d", "etc/apt/sources.list.d", "var/cache/apt"):
        os.makedirs(box.path(d), exist_ok=True)
    out = subprocess.run(["apt-get", "-o", "Dir=" + box.root] + list(sl.APT_SIMULATE),
                         capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                         env=dict(os.environ, LC_ALL="C")).stdout
    with open(os.path.join(FIXTURES, "ubuntu-22.04", "commands", "apt-get-s.txt")) as fh:
        assert out == fh.read()
    assert sl.parse_apt_simulation(out) == (7, 5)


def test_debian_with_unattended_upgrades_and_nftables(tmp_path, set_tz):
    box = Box("debian-12", tmp_path)
    p = box.scan(set_tz)
    assert _unknown(p) == {}
    assert p["os_id"] == "debian"
    assert (p["patch_pending"], p["patch_pending_sec"]) == (143, 92)
    # no update-success-stamp on Debian without update-notifier-common: the lists folder
    assert p["pkg_cache_ts"] == 1796165380
    assert p["patch_last_ts"] == _local(0, 2026, 11, 24, 6, 14, 9)
    assert p["reboot_pending"] is False and p["reboot_signals"] == []
    assert p["auto_update"] is True, p["auto_update_detail"]
    assert p["fw_profiles"] == [{"name": "iptables", "on": False},
                                {"name": "nftables", "on": True},
                                {"name": "ufw", "on": False}]
    assert p["fw_on"] is True


def test_as_a_user_the_firewall_is_unknown_never_a_pass(tmp_path, set_tz):
    """Outputs recorded as `nobody`: nft and iptables need root. ufw.conf says ufw is off;
    that alone does not make the firewall off (nftables may filter): unknown."""
    box = Box("debian-12", tmp_path, as_user=True)
    p = box.scan(set_tz)
    unknown = _unknown(p)
    assert "fw_on" not in p
    assert "nft: needs root" in unknown["fw_on"]
    assert "iptables-legacy: needs root" in unknown["fw_on"]
    assert p["fw_profiles"] == [{"name": "ufw", "on": False}]
    assert (p["patch_pending"], p["patch_pending_sec"]) == (143, 92), "apt works as a user"
    assert set(unknown) == {"fw_on"}


def test_clamav_on_access_with_signatures_ten_days_old(tmp_path, set_tz):
    box = Box("debian-12-clamav", tmp_path)
    p = box.scan(set_tz)
    assert p["av"] == [{"name": "ClamAV", "source": "clamav", "state": "on", "rtp": True,
                        "managed": False, "sig_age_d": 10.0,
                        "version": "1.0.3+dfsg-1~deb12u1"}]
    assert (p["av_on"], p["av_name"], p["av_sig_age_d"]) == (True, "ClamAV", 10.0)
    assert p["av_managed"] is False
    assert (p["patch_pending"], p["patch_pending_sec"]) == (0, 0)
    assert (p["fw_on"], p["fw_profiles"]) == (False, []), "no firewall tool at all: off"
    unknown = _unknown(p)
    assert unknown["patch_last_ts"] == "no apt history (/var/log/apt/history.log)"
    assert unknown["pkg_cache_ts"] == "no package lists (apt update never ran)"


def test_clamd_without_on_access_scanning_is_not_real_time(tmp_path, set_tz):
    box = Box("debian-12-clamav", tmp_path)
    shutil.rmtree(box.path("proc/761"))  # clamonacc
    p = box.scan(set_tz)
    assert p["av"][0]["state"] == "off" and p["av"][0]["rtp"] is False
    assert p["av"][0]["sig_age_d"] == 10.0
    assert (p["av_on"], p["av_name"]) == (False, "")
    assert "av_sig_age_d" not in p and "av_managed" not in p, "no protecting product"


def test_a_box_without_apt(tmp_path, set_tz):
    box = Box("fedora-39", tmp_path)
    p = box.scan(set_tz)
    unknown = _unknown(p)
    for name in ("patch_pending", "patch_pending_sec", "patch_checked_ts", "pkg_cache_ts",
                 "patch_last_ts", "auto_update", "reboot_pending"):
        assert unknown[name] == "not an apt system", name
    assert p["os_id"] == "fedora"
    assert p["fw_on"] is True and p["fw_profiles"] == [{"name": "firewalld", "on": True}]
    # firewalld stopped: firewall-cmd --state exits 252 (NOT_RUNNING)
    box.runner.recordings["/usr/bin/firewall-cmd --state"] = CommandResult(
        252, "not running\n", "")
    p = box.scan(set_tz)
    assert p["fw_on"] is False and p["fw_profiles"] == [{"name": "firewalld", "on": False}]


def test_broken_files_are_unknown_with_the_reason_and_lose_nothing_else(tmp_path, set_tz):
    box = Box("broken", tmp_path)
    p = box.scan(set_tz)
    unknown = _unknown(p)
    for name in ("patch_pending", "patch_pending_sec", "patch_checked_ts"):
        assert unknown[name].startswith("unexpected apt-get output: 'Inst libc6 "), name
    assert unknown["fw_on"] == "nft: output cut off"
    # what the broken files still tell
    assert p["pkg_cache_ts"] == 1796100000, "a stamp that cannot be read: the lists"
    assert p["patch_last_ts"] == _local(7, 2026, 11, 20, 6, 10, 49), "the entry cut off is not"
    assert p["fw_profiles"] == [{"name": "ufw", "on": False}], "ENABLED=maybe is not yes"
    assert p["av"] == [{"name": "ClamAV", "source": "clamav", "state": "off", "rtp": False,
                        "managed": False, "sig_age_d": 7.0}], "a garbled header: file time"
    assert p["smb1_server"] is True and p["smb1_client"] is False
    assert p["auto_update"] is False
    assert p["auto_update_detail"] == ("APT::Periodic::Unattended-Upgrade=1; "
                                       "unattended-upgrades not installed; "
                                       "no apt-daily-upgrade.timer")
    assert p["reboot_pending"] is False and p["os_id"] == "debian"


def test_rotated_history_cut_short_still_gives_its_entries(tmp_path, set_tz):
    box = Box("broken", tmp_path)
    os.remove(box.path("var/log/apt/history.log"))
    p = box.scan(set_tz)
    assert p["patch_last_ts"] == _local(7, 2026, 10, 2, 6, 1, 9)
    os.remove(box.path("var/log/apt/history.log.1.gz"))
    p = box.scan(set_tz)
    assert _unknown(p)["patch_last_ts"].startswith("history.log.2.gz: not gzip")


def test_commands_run_at_the_lowest_priority_where_nice_is(tmp_path, set_tz):
    box = Box("ubuntu-22.04", tmp_path)
    open(box.path("usr/bin/nice"), "w").close()
    box.runner.recordings = {"/usr/bin/nice -n 19 " + k: v
                             for k, v in box.runner.recordings.items()}
    p = box.scan(set_tz)
    assert box.runner.calls == ["/usr/bin/nice -n 19 " + APT,
                                "/usr/bin/nice -n 19 /usr/sbin/iptables -S"]
    assert p["patch_pending_sec"] == 5 and p["fw_on"] is True


def test_a_probe_timeout_is_unknown_and_the_rest_stands(tmp_path, set_tz):
    box = Box("ubuntu-22.04", tmp_path)
    box.runner.recordings[APT] = CommandTimeout(APT.split(), 90)
    p = box.scan(set_tz)
    for name in ("patch_pending", "patch_pending_sec", "patch_checked_ts"):
        assert _unknown(p)[name] == "apt-get: timeout after 90 s"
    assert p["fw_on"] is True and p["reboot_pending"] is True
    assert p["pkg_cache_ts"] == 1706855400


def test_a_spent_time_budget_skips_the_remaining_commands(tmp_path, set_tz):
    box = Box("debian-12", tmp_path)
    p = box.scan(set_tz, budget=0.5)
    assert box.runner.calls == []
    assert _unknown(p)["patch_pending"] == "scan time budget (0 s) spent"
    assert "scan time budget" in _unknown(p)["fw_on"]
    assert p["pkg_cache_ts"] == 1796165380, "files are still read"


def test_a_scanner_bug_costs_only_its_own_facts(tmp_path, set_tz, monkeypatch, caplog):
    def broken(scan):
        raise KeyError("surprise")

    steps = [(broken if fields == sl.FW_FIELDS else step, fields) for step, fields in sl.STEPS]
    monkeypatch.setattr(sl, "STEPS", tuple(steps))
    box = Box("ubuntu-22.04", tmp_path)
    p = box.scan(set_tz)
    assert _unknown(p) == {"fw_on": "scanner error: KeyError: 'surprise'",
                           "fw_profiles": "scanner error: KeyError: 'surprise'"}
    assert p["patch_pending_sec"] == 5
    assert "security: broken failed" in caplog.text


def test_an_unreadable_dpkg_status_is_unknown(tmp_path, set_tz):
    box = Box("ubuntu-22.04", tmp_path)
    status = box.path("var/lib/dpkg/status")
    os.remove(status)
    os.symlink("status", status)  # a loop: even root cannot read it
    p = box.scan(set_tz)
    assert _unknown(p)["auto_update"].startswith("dpkg status: status: ")
    assert p["fw_on"] is True


@pytest.mark.parametrize("name", BOXES)
def test_every_box_gives_a_valid_payload(name, tmp_path, set_tz):
    """Through the family as the agent runs it (os_family, scan time, the envelope)."""
    box = Box(name, tmp_path)
    set_tz(box.meta["tz"])
    payload = SecurityFamily(runner=box.runner, root=box.root, platform_name="linux").collect()
    assert payload["os_family"] == "linux"
    _valid(payload)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_the_real_machine():
    """This machine's real / and real commands: shape and validity, not values."""
    cfg = load_config(None, env={})
    fam = build_families(cfg)["security"]
    payload = fam.collect()
    _valid(payload)
    assert payload["os_family"] == "linux"
    assert payload["scan_s"] < SPECS["security"].timeout
    if shutil.which("apt-get"):
        assert "patch_pending" in payload or "patch_pending" in _unknown(payload)
    for reason in _unknown(payload).values():
        assert reason and "scanner error" not in reason, reason


# --- parsers ----------------------------------------------------------------------------

def test_apt_simulation_lines():
    text = "\n".join([
        # new package pulled in by an upgrade: not an upgrade of its own
        "Inst linux-image-6.1.0-18-amd64 (6.1.76-1 Debian-Security:12/stable-security "
        "[amd64])",
        "Inst linux-image-amd64 [6.1.69-1] (6.1.76-1 Debian-Security:12/stable-security "
        "[amd64])",
        # Debian 9's security suite had no -security suffix: the origin says it
        "Inst libc6 [2.24-11+deb9u3] (2.24-11+deb9u4 Debian-Security:9/oldstable [amd64]) []",
        # Ubuntu Pro's ESM pockets are security pockets
        "Inst libxml2 [2.9.13+dfsg-1ubuntu0.3] (2.9.13+dfsg-1ubuntu0.4 "
        "UbuntuESM:22.04/jammy-infra-security [amd64])",
        # a package named like a pocket is not one
        "Inst security-misc [1.0] (1.1 Debian:12.5/stable [all])",
        "Conf linux-image-amd64 (6.1.76-1 Debian-Security:12/stable-security [amd64])",
        "Remv old-thing [1.0]",
        "",
    ])
    assert sl.parse_apt_simulation(text) == (4, 3)
    assert sl.parse_apt_simulation("") == (0, 0)
    with pytest.raises(ValueError, match="unexpected apt-get output"):
        sl.parse_apt_simulation("Inst libc6 [2.36] (2.37 Debian-Secu")
    with pytest.raises(ValueError):  # the note apt prints in the user's language
        sl.parse_apt_simulation("LƯU Ý: Đây chỉ là mô phỏng!")


def test_apt_config_syntaxes(tmp_path):
    a = tmp_path / "10a"
    a.write_text('// comment\nAPT::Periodic::Unattended-Upgrade "0"; # also a comment\n'
                 '/* a block\n APT::Periodic::Unattended-Upgrade "9"; */\n')
    b = tmp_path / "20b"
    b.write_text('APT {\n  Periodic {\n    Unattended-Upgrade "1";  // on\n'
                 '    Update-Package-Lists "always";\n  };\n};\n'
                 'Acquire::http::Proxy "http://proxy.school.local:3128/";\n')
    c = tmp_path / "30c"
    c.write_text('#clear APT::Periodic;\nURL::x "a//b";\n')
    conf = sl.apt_config([str(a), str(b)])
    assert conf["apt::periodic::unattended-upgrade"] == "1"
    assert conf["apt::periodic::update-package-lists"] == "always"
    assert conf["acquire::http::proxy"] == "http://proxy.school.local:3128/"
    conf = sl.apt_config([str(a), str(b), str(c), str(tmp_path / "missing")])
    assert "apt::periodic::unattended-upgrade" not in conf
    assert conf["url::x"] == "a//b", "// inside quotes is no comment"


def test_apt_conf_files_as_apt_picks_them(tmp_path):
    d = tmp_path / "apt.conf.d"
    d.mkdir()
    for name in ("20auto-upgrades", "50unattended-upgrades.ucf-dist", "99local.conf",
                 "20auto-upgrades.dpkg-old", "bad name", "01autoremove"):
        (d / name).write_text("")
    names = [os.path.basename(p) for p in sl._apt_conf_files(str(tmp_path))]
    assert names == ["01autoremove", "20auto-upgrades", "99local.conf", "apt.conf"]


def _ruleset(name):
    with open(os.path.join(FIXTURES, "rulesets", name), encoding="utf-8") as fh:
        return fh.read()


def _recording(box, name):
    with open(os.path.join(FIXTURES, box, "commands", name), encoding="utf-8") as fh:
        return fh.read()


def test_firewall_rulesets():
    """Rulesets recorded with the real nft and iptables in scratch network namespaces."""
    # Debian's stock /etc/nftables.conf loaded: input policy accept, no rule
    assert sl.parse_nft(_ruleset("nft-debian-stock.txt")).filters_input() is False
    assert sl.parse_nft("").filters_input() is False
    assert sl.parse_nft(_recording("debian-12", "nft-list-ruleset.txt")).filters_input()
    # ufw through iptables-nft: input policy drop, ufw's chains
    ufw = sl.parse_nft(_ruleset("nft-ufw.txt"))
    assert ufw.filters_input() and "ip filter ufw-user-input" in ufw.names()
    assert sl.parse_iptables(_recording("ubuntu-22.04", "iptables-S.txt")).filters_input()
    # Docker's rules filter forwarded traffic only: no host firewall
    assert sl.parse_nft(_ruleset("nft-docker.txt")).filters_input() is False
    assert sl.parse_iptables(_ruleset("iptables-S-docker.txt")).filters_input() is False
    # a drop on the input path through a jump; a bridge table does not guard the host
    jump = ("table ip school {\n\tchain in {\n\t\ttype filter hook input priority 0; "
            "policy accept;\n\t\tjump guard\n\t}\n\tchain guard {\n\t\ttcp dport 445 drop\n"
            "\t}\n}\ntable bridge br {\n\tchain x {\n\t\ttype filter hook input priority 0; "
            "policy drop;\n\t}\n}\n")
    assert sl.parse_nft(jump).filters_input() is True
    assert sl.parse_nft(jump.split("table ip school")[0] + jump[jump.index("table bridge"):]
                        ).filters_input() is False
    with pytest.raises(ValueError):
        sl.parse_nft("Error: syntax error, unexpected junk\n")
    with pytest.raises(ValueError):
        sl.parse_iptables("-A INPUT -j DROP\n")


def test_clamav_headers():
    real = (b"ClamAV-VDB:16 Apr 2020 07-58 -0400:25784:2267600:63:92baacd59fd26e6bcf03077ad"
            b"d78d209:4Jp9JtGJY6nUk8JHDQQ:raynman:1587038339")
    assert sl.cvd_build_time(real.ljust(512)) == 1587038339
    no_stime = b"ClamAV-VDB:16 Apr 2020 07-58 -0400:25784:2267600:63:x:y:raynman:"
    assert sl.cvd_build_time(no_stime) == calendar.timegm((2020, 4, 16, 11, 58, 0))
    assert sl.cvd_build_time(b"\x1f\x8b\x08 gzip, not a header") is None
    assert sl.cvd_build_time(b"ClamAV-VDB:garbled") is None


def test_history_entries():
    text = ("Start-Date: 2024-01-10  06:25:11\nUpgrade: a:amd64 (1, 2)\n"
            "Error: Sub-process /usr/bin/dpkg returned an error code (1)\n"
            "End-Date: 2024-01-10  06:25:40\n\n"
            "Start-Date: 2024-01-09  06:25:11\nUpgrade: a:amd64 (1, 2)\n"
            "End-Date: 2024-01-09  06:25:40\n")
    os.environ["TZ"] = "UTC0"
    time.tzset()
    try:
        assert sl.parse_history(text) == _local(0, 2024, 1, 9, 6, 25, 40), "failed: not it"
        assert sl.parse_history("garbage\n\n\x00\x01") is None
    finally:
        del os.environ["TZ"]
        time.tzset()


# --- running it -------------------------------------------------------------------------

class HangingRunner:
    """A command runner that never answers (a probe stuck for hours) until released."""

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def run(self, argv, timeout):
        self.entered.set()
        self.release.wait(600)
        raise CommandTimeout(list(argv), timeout)


class Health:
    def __init__(self):
        self.calls = 0

    def collect(self):
        self.calls += 1
        return {"cpu_pct": 1.0, "cpu_n": 1, "mem_pct": 1.0, "up": 1}


def test_a_hung_security_probe_never_stalls_health(tmp_path, caplog):
    """The real runtime, the real spec (slow worker, at start) with a short timeout, the
    real SecurityFamily scanning a fixture box whose first command never returns."""
    caplog.set_level(logging.INFO)
    box = Box("ubuntu-22.04", tmp_path)
    hanging = HangingRunner()
    security = SecurityFamily(runner=hanging, root=box.root, platform_name="linux")
    cfg = load_config(None, env={})
    cfg.intervals.start_delay_min = cfg.intervals.start_delay_max = 0.0
    cfg.security.first_delay = 0.0
    cfg.intervals.health = 0.05
    specs = dict(SPECS)
    specs["security"] = SPECS["security"]._replace(timeout=0.5)
    health = Health()
    rt = Runtime(cfg, "79000101", "d-1", {"health": health, "security": security},
                 Spool(str(tmp_path / "q")), rand=random.Random(1), specs=specs)
    assert rt.schedules["security"].slow and rt.schedules["security"].interval == 21600
    t = threading.Thread(target=rt.run)
    t.start()
    try:
        assert hanging.entered.wait(30), "security scanned at start"
        wait_for(lambda: rt.schedules["security"].timed_out, 30, "the scan abandoned")
        start = health.calls
        wait_for(lambda: health.calls >= start + 5, 30, "health going on meanwhile")
        assert rt.queued.get("security", 0) == 0
    finally:
        hanging.release.set()
        rt.request_stop()
        t.join(30)
    assert not t.is_alive()
    assert "security: no result within" in caplog.text
    assert set(rt._workers) == {"slow", "family-health"}


def test_collect_prints_real_findings_on_this_machine(tmp_path):
    """``schoolmon-agent collect --family security``: one valid message, exit 0."""
    agent = os.path.join(os.path.dirname(sys.executable), "schoolmon-agent")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHOOLMON_")}
    env["SCHOOLMON_AGENT_STATE_DIR"] = str(tmp_path / "st")
    r = subprocess.run([agent, "collect", "--family", "security"], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    line = json.loads(r.stdout)
    assert line["topic"].endswith("/security")
    _valid({k: v for k, v in line["payload"].items() if k not in ("v", "ts", "seq")})
    assert not (tmp_path / "st").exists(), "collect writes no state"


def test_the_first_scan_waits_first_delay_after_the_first_reports(tmp_path):
    """security.first_delay: the first scan gives way to the PC's boot and first reports."""
    cfg = load_config(None, env={})
    cfg.intervals.start_delay_min = cfg.intervals.start_delay_max = 3.0
    cfg.security.first_delay = 120.0
    security = SecurityFamily(runner=HangingRunner(), root=str(tmp_path), platform_name="linux")
    rt = Runtime(cfg, "79000101", "d-1", {"health": Health(), "security": security},
                 Spool(str(tmp_path / "q")), rand=random.Random(1))
    gap = rt.schedules["security"].due - rt.schedules["health"].due
    assert abs(gap - 120.0) < 1e-6, gap
