"""The security posture of the simulated province: each school's ATTT plan, each PC's
security traits, and the ``security`` facts a real agent would report at a given moment.

**Plans** (what the school's ATTT status is meant to come out as; the collector's evaluator
judges the facts, the simulator never sends a judgement):

- ``meets`` (Đạt): supported OS everywhere (Windows 10 22H2 with the education ESU,
  Windows 11 24H2/25H2 Education, Ubuntu 22.04/24.04 servers), antivirus on — Defender, or
  Kaspersky managed by its Network Agent with Defender passive —, patched monthly, firewall
  on; medium findings here and there (AutoPlay, screen lock, no central console). Some labs
  frozen by Deep Freeze (patch and signature age judged with that context). Some schools
  fixed SMBv1 and the firewall days ago: their history goes from Cần cải thiện to Đạt.
- ``improve`` (Cần cải thiện): every critical check passes, but signatures weeks old
  (a school on 3G), Windows Update stalled months ago, SMBv1 on on the old lab PCs; some
  installed Bkav Pro days ago on lab PCs that had no antivirus (history: Không đạt →
  Cần cải thiện).
- ``below`` (Không đạt): Windows 7 and 8.1 labs, Windows 10 without ESU, Windows 11 24H2
  Pro Education (support ended 2026-10-13), PCs without antivirus or with an expired
  Kaspersky licence, Bkav found only by its service (unknown), update services disabled to
  save bandwidth, guest accounts on; or (history) a lab re-imaged days ago with a "lite"
  image that turns Defender off.
- ``insufficient`` (Không đủ dữ liệu): several PCs run an old agent (0.0.9) that never
  reports security: the school is below the coverage gate whatever the others report.

Plans are dealt deterministically from the seed: every block of six schools holds two
``meets``, one ``improve``, two ``below`` and one ``insufficient`` (shuffled), so a province
of six schools or more shows each status. The inventory agrees with the facts: a PC's OS
(``SimDevice.os``) is set here, before its inventory is first built.

``security_fields(device, at, now)`` gives the facts at ``at`` (``now``: the moment the
stories are anchored to, default ``at``); the same device and moment give the same facts,
so the history of the past 30 days and the live simulation tell one story.
"""
import datetime as _dt
import random
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

DAY = 86400

PLANS = ("meets", "improve", "below", "insufficient")
#: Every block of this many schools gets these plans, in a seeded order.
PLAN_BLOCK = ("meets", "meets", "improve", "below", "below", "insufficient")

#: An agent from before the security family: its PCs never report security.
OLD_AGENT_VERSION = "0.0.9-sim"

# OS tuples as the inventory reports them: (name, version, build, edition, display).
WIN7 = ("Windows", "7", "7601", "Professional", "SP1")
WIN81 = ("Windows", "8.1", "9600", "Pro", "")
WIN10_ESU = ("Windows", "10", "19045.6575", "Education", "22H2")
WIN10_PRO_ESU = ("Windows", "10", "19045.6575", "Pro", "22H2")
WIN11_24H2_EDU = ("Windows", "11", "26100.7171", "Education", "24H2")
WIN11_24H2_PRO_EDU = ("Windows", "11", "26100.6899", "Pro Education", "24H2")
WIN11_25H2_EDU = ("Windows", "11", "26200.7171", "Education", "25H2")
UBUNTU_2204 = ("Linux", "22.04", "5.15.0-126-generic", "Ubuntu 22.04.5 LTS", "jammy")
UBUNTU_2404 = ("Linux", "24.04", "6.8.0-88-generic", "Ubuntu 24.04.3 LTS", "noble")

#: The last update a Windows release got without ESU (vendor end-of-support dates).
_END_OF_UPDATES = {"7": "2020-01-14", "8.1": "2023-01-10", "10": "2025-10-14"}
#: Windows 11 23H2 Education got updates until its end of support.
_END_OF_UPDATES_11_23H2 = "2026-11-10"

FREEZE_PRODUCT = "Faronics Deep Freeze Standard"


def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random("%d|posture|%s" % (seed, "|".join(str(p) for p in parts)))


def _epoch(day: str, hour: float = 0.0) -> float:
    d = _dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=_dt.timezone.utc)
    return d.timestamp() + hour * 3600


def _second_tuesday(year: int, month: int) -> float:
    """Microsoft's Patch Tuesday of that month: 17:00 UTC, midnight in Vietnam."""
    first = _dt.date(year, month, 1)
    tuesday = 1 + (1 - first.weekday()) % 7 + 7
    return _dt.datetime(year, month, tuesday, 17, tzinfo=_dt.timezone.utc).timestamp()


def last_patch_tuesday(at: float) -> float:
    """The latest Patch Tuesday at or before ``at``."""
    d = _dt.datetime.fromtimestamp(at, _dt.timezone.utc)
    y, m = d.year, d.month
    for _ in range(3):
        pt = _second_tuesday(y, m)
        if pt <= at:
            return pt
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    raise AssertionError("unreachable")


def _school_year_start(at: float) -> float:
    """5 September (the Vietnamese school year's first day) at or before ``at``: when a
    frozen lab's image was last thawed and updated."""
    d = _dt.datetime.fromtimestamp(at, _dt.timezone.utc)
    year = d.year if (d.month, d.day) >= (9, 5) else d.year - 1
    return _epoch("%d-09-05" % year, 2)


@dataclass(frozen=True)
class SecTraits:
    """How one PC's security looks and changes; ``facts`` turns it into a payload."""

    plan: str
    #: False: an old agent that never sends security
    reports: bool = True
    #: defender | kaspersky | kes10 | bkav_wsc | bkav_service | mse | none | clamav | clamav_scan
    av: str = "defender"
    #: days the signatures lag behind a daily update (0: current)
    sig_lag: float = 0.0
    #: monthly | stalled | eol (updates ended with the release's support)
    patch: str = "monthly"
    patch_lag: float = 2.0
    #: for ``stalled``: days before the anchor of the last install
    stalled_days: float = 0.0
    esu: bool = False
    frozen: bool = False
    fw_off: Tuple[str, ...] = ()
    smb1: bool = False
    guest: bool = False
    admin_builtin: bool = False
    rdp: str = "off"  # off | nla | no_nla
    autorun_off: bool = True
    lock_s: Optional[int] = 600
    update_service_off: bool = False
    #: Windows 7 in Vietnamese: the netsh output is not understood
    fw_unknown: bool = False
    #: (days before the anchor, what happened) that changes the facts from then on
    story: Optional[Tuple[float, str]] = None
    #: hour (UTC) the AV updates its signatures each day
    update_hour: float = 1.5
    scan_s: float = 12.0


def deal_plans(n_schools: int, seed: int) -> List[str]:
    """The plan of each school, in order: every block of six holds each plan (seeded)."""
    out: List[str] = []
    block = 0
    while len(out) < n_schools:
        plans = list(PLAN_BLOCK)
        _rng(seed, "plans", block).shuffle(plans)
        out.extend(plans)
        block += 1
    return out[:n_schools]


def _pc_os(plan: str, role: str, profile: str, os_: Tuple[str, ...], r: random.Random
           ) -> Tuple[str, str, str, str, str]:
    """The OS of a PC under its school's plan (the random mix of ``fixture.OSES`` stays in
    ``below`` schools; the others run supported releases)."""
    if plan == "below":
        return os_  # type: ignore[return-value]
    if role == "server":
        return UBUNTU_2204 if r.random() < 0.5 else UBUNTU_2404
    if profile == "old":  # old hardware: Windows 10 with the education ESU is as far as it goes
        return WIN10_PRO_ESU
    if os_[0] == "Linux":
        return UBUNTU_2204
    x = r.random()
    return WIN10_ESU if x < 0.45 else WIN10_PRO_ESU if x < 0.6 else \
        WIN11_24H2_EDU if x < 0.85 else WIN11_25H2_EDU


def plan_school(plan: str, devices: Sequence[Any], seed: int) -> None:
    """Give the PCs of one school their OS and security traits under ``plan`` (in place)."""
    school = devices[0].school if devices else ""
    rs = _rng(seed, "school", school)
    pcs = [d for d in devices if d.role != "router"]
    frozen_lab = rs.random() < 0.35 and plan in ("meets", "below")
    story = None
    if plan == "meets" and rs.random() < 0.5:
        story = (round(rs.uniform(5, 20), 2), "fixed_smb_fw")
    elif plan == "improve" and rs.random() < 0.6:
        story = (round(rs.uniform(8, 22), 2), "av_installed")
    elif plan == "below" and rs.random() < 0.5:
        story = (round(rs.uniform(6, 18), 2), "lite_image")
    # a school whose lab was re-imaged days ago was in order before: its PCs are planned as
    # a "meets" school's, then the lab's antivirus goes off (the story)
    base = "meets" if story is not None and story[1] == "lite_image" else plan
    old_agents = set()
    if plan == "insufficient":
        k = max(2, len(pcs) // 4)
        old_agents = {d.id for d in rs.sample(pcs, min(k, len(pcs)))}
    win7_labs = 0
    for i, d in enumerate(pcs):
        r = _rng(seed, "pc", d.id)
        d.os = _pc_os(base, d.role, d.profile, d.os, r)
        if base == "below" and d.role == "lab" and win7_labs < 2:
            d.os = WIN7  # at least two Windows 7 lab PCs, as in many labs
        if base == "below" and d.role == "office" and i == 0 and d.os[0] == "Windows":
            d.os = WIN11_24H2_PRO_EDU  # the OEM's Pro Education, out of support since October
        win7_labs += d.os == WIN7 and d.role == "lab"
        if d.id in old_agents:
            d.agent = OLD_AGENT_VERSION
        d.sec = _traits(base, d, r, frozen_lab and d.role == "lab", story,
                        reports=d.id not in old_agents, index=i)


def _traits(plan: str, d: Any, r: random.Random, frozen: bool,
            story: Optional[Tuple[float, str]], reports: bool, index: int) -> SecTraits:
    win = d.os[0] == "Windows"
    version = d.os[1]
    lab, office = d.role == "lab", d.role == "office"
    t: Dict[str, Any] = dict(plan=plan, reports=reports, frozen=frozen and win,
                             patch_lag=round(r.uniform(0.4, 6.0), 2),
                             update_hour=round(r.uniform(0.5, 9.0), 2),
                             scan_s=round(r.uniform(4, 40), 1),
                             esu=win and version == "10" and plan != "below")
    if win:
        t["rdp"] = "nla" if office and r.random() < 0.3 else "off"
        t["autorun_off"] = r.random() < (0.7 if plan == "meets" else 0.35)
        t["lock_s"] = 600 if office else r.choice((0, 0, 300, 1800, None))
        t["admin_builtin"] = lab and r.random() < 0.5
    else:
        t["lock_s"] = 300 if lab else None
    if plan in ("meets", "insufficient"):
        if win:
            t["av"] = "kaspersky" if r.random() < 0.4 else \
                "kes10" if r.random() < 0.15 else "defender"
            t["sig_lag"] = 0.0 if r.random() < 0.8 else round(r.uniform(2.2, 5.5), 2)
        else:
            t["av"] = "clamav"
            t["sig_lag"] = round(r.uniform(0, 1.2), 2)
        if story is not None and story[1] == "fixed_smb_fw" and index < 3:
            t["story"] = story  # SMBv1 and the public firewall fixed days ago
        if story is not None and story[1] == "lite_image" and lab and win:
            t["av"], t["story"] = "defender", story  # Defender turned off by the new image
    elif plan == "improve":
        t["av"] = ("defender" if r.random() < 0.5 else "kaspersky") if win else "clamav"
        # the high checks fail on many PCs: weeks-old signatures, a stalled Windows Update,
        # SMBv1 left on
        if index % 2 == 0:
            t["sig_lag"] = round(r.uniform(9, 40), 2)
        if index % 3 == 1 and win:
            t["patch"], t["stalled_days"] = "stalled", round(r.uniform(70, 200), 2)
        t["smb1"] = win and lab and r.random() < 0.5
        if story is not None and lab and win:
            t["av"], t["story"] = "bkav_wsc", story  # no antivirus until Bkav Pro went on
    else:  # below
        if not win:
            t["av"] = "clamav_scan" if d.role == "server" else "none"
        elif version == "7":
            t["av"] = r.choice(("kaspersky_expired", "mse", "none", "bkav_service"))
        else:
            t["av"] = r.choice(("defender", "defender", "kaspersky", "none", "bkav_service"))
        t["sig_lag"] = r.choice((0.0, 0.0, round(r.uniform(8, 60), 2)))
        t["smb1"] = win and (version in ("7", "8.1") or r.random() < 0.3)
        t["guest"] = lab and r.random() < 0.3
        t["update_service_off"] = win and r.random() < 0.3
        if win and version in ("7", "8.1", "10"):
            t["patch"] = "eol"  # no ESU here
        elif win and r.random() < 0.4:
            t["patch"], t["stalled_days"] = "stalled", round(r.uniform(70, 300), 2)
        t["fw_off"] = ("domain", "private", "public") if r.random() < 0.25 else ()
        t["fw_unknown"] = win and version == "7" and r.random() < 0.3
        if office and r.random() < 0.4:
            t["rdp"] = "no_nla"
    return SecTraits(**t)


# --- the facts at a moment -------------------------------------------------------------------

def _days(seconds: float) -> float:
    return round(max(0.0, seconds) / DAY, 2)


def _sig_age(t: SecTraits, at: float) -> float:
    """Days since the signatures were updated: daily at ``update_hour``, ``sig_lag`` late."""
    since_update = (at - t.update_hour * 3600) % DAY
    return _days(since_update + t.sig_lag * DAY)


def _patch_last(d: Any, t: SecTraits, at: float, anchor: float) -> float:
    version = d.os[1]
    if t.patch == "eol":
        end = _END_OF_UPDATES.get(version, _END_OF_UPDATES["10"])
        return _epoch(end, 17) + t.patch_lag * DAY
    if t.patch == "stalled":
        return min(at - DAY, anchor - t.stalled_days * DAY)
    pt = last_patch_tuesday(at - t.patch_lag * DAY)
    if d.os[:2] == ("Windows", "11") and d.os[4] == "23H2":
        pt = min(pt, _epoch(_END_OF_UPDATES_11_23H2, 17))
    return pt + t.patch_lag * DAY


def _story_on(t: SecTraits, at: float, anchor: float, what: str) -> bool:
    """True once the story ``what`` of this PC has happened by ``at``."""
    return t.story is not None and t.story[1] == what and at >= anchor - t.story[0] * DAY


def _antivirus(d: Any, t: SecTraits, at: float, anchor: float, off: bool,
               out: Dict[str, Any], unknown: Dict[str, str]) -> None:
    """``av`` and the summary fields, as the Windows or Linux scanner would give them."""
    win = d.os[0] == "Windows"
    modern = win and d.os[1] in ("10", "11")
    kind = t.av
    if _story_on(t, at, anchor, "lite_image"):
        kind = "defender_off"
    if t.story is not None and t.story[1] == "av_installed" and not _story_on(
            t, at, anchor, "av_installed"):
        kind = "defender_off"  # before Bkav went on, Defender had been turned off
    age = _sig_age(t, at)
    if t.frozen:
        age = _days(at - _school_year_start(at))  # every reboot brings the old signatures back
    av: List[Dict[str, Any]] = []
    protecting: Optional[Dict[str, Any]] = None
    managed = False
    if off and win and kind not in ("none", "defender_off"):
        kind = "switched_off"
    if kind in ("defender", "defender_off", "switched_off", "none") and modern:
        on = kind == "defender"
        av.append({"name": "Windows Defender", "source": "wsc", "state": "on" if on else "off",
                   "sig_ok": on and age <= 7, "microsoft": True})
        if on:
            protecting = {"name": "Microsoft Defender Antivirus", "source": "defender",
                          "state": "on", "rtp": True, "passive": False, "mode": "Normal",
                          "sig_age_d": age, "version": "4.18.25100.9"}
            av.append(protecting)
        elif kind == "switched_off":
            av.append({"name": "Microsoft Defender Antivirus", "source": "defender",
                       "rtp": False, "passive": False, "mode": "Normal", "sig_age_d": age})
        else:
            unknown["av_sig_age_d"] = "Get-MpComputerStatus failed: the Defender service is " \
                                      "disabled"
    elif kind in ("kaspersky", "kaspersky_expired"):
        expired = kind == "kaspersky_expired"
        kes = {"name": "Kaspersky Endpoint Security for Windows", "source": "wsc",
               "state": "expired" if expired else "on", "sig_ok": not expired and age <= 7,
               "microsoft": False, "managed": True, "sig_age_d": age if not expired else
               _days(at - anchor + 140 * DAY), "version": "12.6.0.438" if modern else "11.11.0.452"}
        av.append(kes)
        managed = True
        if modern:  # Defender steps aside for a registered product
            av.append({"name": "Microsoft Defender Antivirus", "source": "defender", "rtp": True,
                       "passive": True, "mode": "Passive Mode", "sig_age_d": _days(age * DAY + 9 * DAY)})
        protecting = None if expired else kes
    elif kind == "kes10":
        # Kaspersky 10 does not register with Security Center: its Network Agent's values
        kes = {"name": "Kaspersky Endpoint Security 10 for Windows", "source": "service",
               "state": "on", "rtp": True, "managed": True, "sig_age_d": age,
               "version": "10.3.3.304"}
        av.append(kes)
        protecting, managed = kes, True
        if modern:
            av.append({"name": "Microsoft Defender Antivirus", "source": "defender", "rtp": True,
                       "passive": True, "mode": "SxS Passive Mode", "sig_age_d": _days(age * DAY + 30 * DAY)})
    elif kind == "bkav_wsc":
        bkav = {"name": "Bkav Pro", "source": "wsc", "state": "on", "sig_ok": age <= 7,
                "microsoft": False}
        av.append(bkav)
        protecting = bkav
        unknown["av_sig_age_d"] = "Security Center gives no signature age for Bkav Pro"
        unknown["av_managed"] = "no management agent known for Bkav Pro"
    elif kind == "bkav_service":
        av.append({"name": "Bkav", "source": "service", "state": "unknown"})
        unknown["av_on"] = "Bkav found by its service (BkavService) only; not in Security Center"
    elif kind == "mse":
        mse = {"name": "Microsoft Security Essentials", "source": "wsc", "state": "on",
               "sig_ok": False, "microsoft": True}
        av.append(mse)
        protecting = mse
        unknown["av_sig_age_d"] = "Security Center gives no signature age"
    elif kind in ("clamav", "clamav_scan"):
        onacc = kind == "clamav" and not off  # clamonacc: ClamAV's on-access scanning
        clam = {"name": "ClamAV", "source": "clamav", "state": "on" if onacc else "off",
                "rtp": onacc, "sig_age_d": age, "version": "1.0.9"}
        av.append(clam)
        protecting = clam if onacc else None
    elif kind == "switched_off":
        av.append({"name": "Kaspersky Endpoint Security for Windows", "source": "wsc",
                   "state": "off", "sig_ok": age <= 7, "microsoft": False, "managed": True})
        managed = True
    # kind "none" on Windows 7 / Linux: nothing found
    out["av"] = av
    if "av_on" not in unknown:
        out["av_on"] = protecting is not None
        out["av_name"] = protecting["name"] if protecting else ""
    if protecting is not None:
        if "av_sig_age_d" not in unknown and "sig_age_d" in protecting:
            out["av_sig_age_d"] = protecting["sig_age_d"]
        if "av_managed" not in unknown:
            out["av_managed"] = managed


def _windows(d: Any, t: SecTraits, at: float, anchor: float, out: Dict[str, Any],
             unknown: Dict[str, str]) -> None:
    version = d.os[1]
    out["os_id"] = "windows"
    build = d.os[2].split(".")
    if len(build) == 2:
        out["os_ubr"] = int(build[1])
    if version == "10":
        out["esu"] = t.esu
    last = _patch_last(d, t, at, anchor)
    if t.frozen:
        last = _school_year_start(at) - 3 * DAY  # the image's updates
    out["patch_last_ts"] = int(min(last, at - 3600))
    checked = at - (at % (6 * 3600))
    if version == "7":
        unknown["patch_pending"] = "Windows Update search failed: 0x80072EFE"
        unknown["patch_pending_sec"] = "Windows Update search failed: 0x80072EFE"
    elif t.update_service_off:
        unknown["patch_pending"] = "the Windows Update service is disabled"
        unknown["patch_pending_sec"] = "the Windows Update service is disabled"
    else:
        behind = 0 if at - last < 30 * DAY else int((at - last) // (30 * DAY))
        out["patch_pending_sec"] = min(behind * 2, 40)
        out["patch_pending"] = min(behind * 3 + (1 if d.role == "lab" else 0), 60)
        out["patch_checked_ts"] = int(checked)
    rebooted = at - last > 2 * DAY or t.frozen
    out["reboot_pending"] = not rebooted
    if not rebooted:
        out["reboot_signals"] = ["wu_reboot_required", "cbs_reboot_pending"]
    out["update_service_off"] = t.update_service_off
    out["auto_update"] = not t.update_service_off
    out["auto_update_detail"] = "wuauserv: Disabled" if t.update_service_off else "AUOptions=4"
    fixed = _story_on(t, at, anchor, "fixed_smb_fw")
    fw_off = t.fw_off if fixed or t.story is None or t.story[1] != "fixed_smb_fw" \
        else ("public",)
    if t.fw_unknown:
        unknown["fw_on"] = "netsh advfirewall output not understood"
    else:
        profiles = [{"name": p, "on": p not in fw_off} for p in ("domain", "private", "public")]
        out["fw_profiles"] = profiles
        out["fw_on"] = all(p["on"] for p in profiles)
    smb1 = t.smb1 or (t.story is not None and t.story[1] == "fixed_smb_fw" and not fixed)
    out["smb1_server"] = smb1
    out["smb1_client"] = smb1 or version == "7"
    out["guest_on"] = t.guest
    out["admin_builtin_on"] = t.admin_builtin
    out["rdp_on"] = t.rdp != "off"
    if t.rdp != "off":
        out["rdp_nla"] = t.rdp == "nla"
    out["autorun_off"] = t.autorun_off
    out["autorun_detail"] = "NoDriveTypeAutoRun=255" if t.autorun_off else "NoDriveTypeAutoRun=145"
    if t.lock_s is None:
        unknown["lock_s"] = "no user logged on"
    else:
        out["lock_s"] = t.lock_s
        out["lock_source"] = "policy" if d.role == "office" else "user"
    out["frozen"] = t.frozen
    if t.frozen:
        out["freeze_product"] = FREEZE_PRODUCT


def _linux(d: Any, t: SecTraits, at: float, anchor: float, out: Dict[str, Any]) -> None:
    out["os_id"] = "ubuntu"
    day = at - at % DAY
    stamp = day + 6.2 * 3600 if at >= day + 6.2 * 3600 else day - DAY + 6.2 * 3600
    out["pkg_cache_ts"] = int(stamp)
    out["patch_last_ts"] = int(stamp + 600)  # unattended-upgrades right after the list update
    out["patch_pending_sec"] = 0
    out["patch_pending"] = int(_rng(0, "apt", d.id, int(day // DAY)).randint(0, 14))
    out["patch_checked_ts"] = int(stamp)
    pending = _rng(0, "reboot", d.id, int(day // DAY)).random() < 0.2
    out["reboot_pending"] = pending
    if pending:
        out["reboot_signals"] = ["reboot_required_file"]
    out["auto_update"] = True
    out["auto_update_detail"] = "APT::Periodic::Unattended-Upgrade=1"
    on = t.plan != "below"
    out["fw_profiles"] = [{"name": "ufw", "on": on}]
    out["fw_on"] = on
    if t.lock_s is not None:
        out["lock_s"] = t.lock_s
        out["lock_source"] = "user"


def security_fields(d: Any, at: float, now: Optional[float] = None,
                    av_off: bool = False) -> Optional[Dict[str, Any]]:
    """The ``security`` fields PC ``d`` reports at ``at`` (None: it reports none — a router,
    or an old agent). ``now`` anchors the school stories (default ``at``); ``av_off``: its
    antivirus has just been switched off (tests, and a demo of a school going below)."""
    t: Optional[SecTraits] = getattr(d, "sec", None)
    if t is None or not t.reports:
        return None
    anchor = (now if now is not None else at)
    anchor -= anchor % DAY
    out: Dict[str, Any] = {"os_family": "windows" if d.os[0] == "Windows" else "linux"}
    unknown: Dict[str, str] = {}
    _antivirus(d, t, at, anchor, av_off, out, unknown)
    if d.os[0] == "Windows":
        _windows(d, t, at, anchor, out, unknown)
    else:
        _linux(d, t, at, anchor, out)
    out["scan_s"] = t.scan_s
    out["scan_cpu_s"] = round(t.scan_s / 5, 1)
    if unknown:
        out["unknown"] = [{"field": f, "reason": why} for f, why in sorted(unknown.items())]
    return out


__all__ = ["OLD_AGENT_VERSION", "PLANS", "SecTraits", "deal_plans", "last_patch_tuesday",
           "plan_school", "security_fields"]
