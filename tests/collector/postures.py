"""Helpers for the ATTT posture tests: believable security and inventory payloads sent
through the real wire format, committed through the store's own prepare/commit."""
from typing import Any, Dict, Optional

from schoolmon.collector.store import StateStore

from tests.collector.storehelp import received

DAY = 86400.0


def good_security(now: float, **over: Any) -> Dict[str, Any]:
    """A Windows PC that passes every check of the shipped baseline."""
    f: Dict[str, Any] = {
        "os_family": "windows", "os_id": "windows", "os_ubr": 4170,
        "av": [{"name": "Windows Defender", "source": "defender", "state": "on", "rtp": True,
                "sig_ok": True, "sig_age_d": 0.5, "microsoft": True, "passive": False,
                "mode": "Normal", "managed": True}],
        "av_on": True, "av_name": "Windows Defender", "av_sig_age_d": 0.5, "av_managed": True,
        "patch_last_ts": int(now - 10 * DAY), "patch_pending_sec": 0, "patch_pending": 0,
        "reboot_pending": False, "auto_update": True, "auto_update_detail": "AUOptions=4",
        "update_service_off": False, "fw_on": True,
        "fw_profiles": [{"name": n, "on": True} for n in ("domain", "private", "public")],
        "smb1_server": False, "smb1_client": False, "guest_on": False,
        "admin_builtin_on": False, "rdp_on": False, "rdp_nla": True, "autorun_off": True,
        "autorun_detail": "NoDriveTypeAutoRun=255", "lock_s": 600, "lock_source": "policy",
        "frozen": False, "scan_s": 4.2, "scan_cpu_s": 1.1,
    }
    f.update(over)
    return {k: v for k, v in f.items() if v is not None}


def windows_inventory(role: str = "lab", build: str = "26100.2033", edition: str = "Education",
                      display: Optional[str] = "24H2", **over: Any) -> Dict[str, Any]:
    f: Dict[str, Any] = {"role": role, "os_name": "Windows", "os_version": "11",
                         "os_build": build, "os_edition": edition}
    if display:
        f["os_display"] = display
    f.update(over)
    return f


def send(store: StateStore, school: str, device: str, kind: str, seq: int, ts: float,
         **fields: Any) -> None:
    """One message through the real wire format and the store's prepare/commit."""
    store.commit(store.prepare([received(school, device, kind, seq, ts, received_at=ts + 0.5,
                                         **fields)]))
