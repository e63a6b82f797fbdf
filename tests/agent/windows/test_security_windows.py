"""The Windows security scanner (agent/families/security_windows.py) on replayed outputs
(tests/agent/fixtures/windows/security, README there): every payload is checked against
the catalogue; what cannot be determined is unknown with its reason, never an exception."""
import json
import os

import pytest
from schoolmon.agent.families.security import Findings, SecurityFamily
from schoolmon.agent.families.security_windows import (
    NETSH_FIREWALL,
    WindowsScanner,
    decode_product_state,
    parse_netsh,
    qfe_date,
    reader,
    to_epoch,
)
from schoolmon.agent.runner import CommandResult, CommandTimeout, RecordedRunner
from schoolmon.agent.windows.cim import POWERSHELL
from schoolmon.protocol import envelope, validate
from schoolmon.protocol.catalogue import FAMILIES

FIX = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "windows", "security")
NOW = 1772755200  # 2026-03-06T00:00:00Z: the day the recordings stand for
DAY = 86400
NETSH = " ".join(NETSH_FIREWALL)
WU_OK = {"security-wu-search": "wu-search-ok.txt"}


def _check_catalogue(payload):
    fields = {f.name: f for f in FAMILIES["security"].fields}
    for key, value in payload.items():
        assert key in fields, key
        if fields[key].type == "objects":
            sub = {f.name for f in fields[key].items}
            for item in value:
                assert set(item) <= sub, (key, item)
    validate("security", envelope("security", payload, 1, NOW))


def scan(recordings, state_dir="", settings=None):
    """One scan as the agent runs it; the background search is let finish first so the
    payload does not depend on thread timing."""
    runner = RecordedRunner(recordings, root=FIX)
    scanner = WindowsScanner(runner, state_dir, settings)
    scanner.clock = lambda: NOW
    scanner.search.due_search()
    assert scanner.search.wait(30)
    found = Findings()
    scanner.scan(found)
    payload = found.payload()
    payload["os_family"] = "windows"
    _check_catalogue(payload)
    return payload, runner


def unknown(payload):
    return {u["field"]: u["reason"] for u in payload.get("unknown", [])}


def av(payload, source):
    return [p for p in payload["av"] if p["source"] == source]


def test_windows_11_24h2_pro_education_defender_on_and_current():
    p, runner = scan(dict(WU_OK, **{"security-cim": "win11-24h2-proedu-defender.json"}))
    assert p["os_id"] == "windows" and p["os_ubr"] == 3194 and p["esu"] is False
    assert p["av_on"] is True and p["av_name"] == "Microsoft Defender Antivirus"
    assert p["av_sig_age_d"] == 0.3
    assert p["av_managed"] is False  # no MDE, Configuration Manager, Intune nor MDM
    (defender,) = p["av"]
    assert defender == {"name": "Microsoft Defender Antivirus", "source": "defender",
                        "microsoft": True, "sig_ok": True, "mode": "Normal", "passive": False,
                        "rtp": True, "state": "on", "sig_age_d": 0.3, "version": "4.18.25010.11",
                        "managed": False}
    # the Defender signature update this morning is no OS patch: the cumulative update is
    assert p["patch_last_ts"] == NOW - 22 * DAY
    assert p["patch_pending"] == 5 and p["patch_pending_sec"] == 2
    assert p["patch_checked_ts"] == NOW
    assert p["pkg_cache_ts"] == to_epoch("2026-03-05T21:14:03")
    assert p["fw_on"] is True and [f["name"] for f in p["fw_profiles"]] == [
        "domain", "private", "public"]
    assert p["reboot_pending"] is False and p["reboot_signals"] == []
    assert p["auto_update"] is True and p["update_service_off"] is False
    assert p["smb1_server"] is False and p["smb1_client"] is False
    assert p["guest_on"] is False and p["admin_builtin_on"] is False
    assert p["rdp_on"] is False and p["rdp_nla"] is True
    assert p["autorun_off"] is True
    assert p["autorun_detail"] == "NoDriveTypeAutoRun=255, NoAutorun=1"
    assert (p["lock_s"], p["lock_source"]) == (900, "policy")
    assert p["frozen"] is False and "freeze_product" not in p
    assert "unknown" not in p
    # one PowerShell call for everything, no netsh (Get-NetFirewallProfile answered), no DFC
    assert runner.calls == ["security-wu-search", "security-cim"]


def test_windows_10_22h2_with_esu_and_intune():
    p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-education-esu.json"}))
    assert p["esu"] is True and p["os_ubr"] == 6937
    assert p["av_on"] is True and p["av_managed"] is True  # Intune management extension


def test_defender_passive_under_kaspersky_without_esu():
    p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-kaspersky-defender-passive.json"}))
    assert p["esu"] is False  # the ESU add-on is there, not activated (LicenseStatus 0)
    assert p["av_on"] is True
    assert p["av_name"] == "Kaspersky Endpoint Security for Windows"
    assert p["av_managed"] is True  # klnagent runs
    (kes,) = av(p, "wsc")
    assert kes["state"] == "on" and kes["sig_ok"] is True and kes["microsoft"] is False
    (defender,) = av(p, "defender")
    # a passive Defender still says real-time on: it is not the protecting product
    assert defender["passive"] is True and defender["rtp"] is True
    assert defender["mode"] == "Passive Mode" and defender["sig_age_d"] == 40.0
    assert not av(p, "service")  # Kaspersky's services are the registered product's
    assert unknown(p)["av_sig_age_d"].startswith("Kaspersky Endpoint Security for Windows "
                                                 "reports no signature age")


def test_bkav_not_in_security_center_found_by_its_service_and_reboot_pending():
    p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-bkav-reboot-pending.json"}))
    (bkav,) = av(p, "service")
    assert bkav == {"name": "Bkav", "source": "service", "state": "on", "managed": False}
    # Defender still protects (Bkav does not register, so Defender did not stand down)
    assert p["av_on"] is True and p["av_name"] == "Microsoft Defender Antivirus"
    assert p["reboot_pending"] is True
    assert p["reboot_signals"] == ["wu_reboot_required", "pending_file_rename"]
    # no Explorer policy key at all: AutoRun is not off for every drive
    assert p["autorun_off"] is False and p["autorun_detail"] == "not set (Windows default)"
    assert (p["lock_s"], p["lock_source"]) == (600, "user")


def test_bkav_alone_is_the_protector():
    with open(os.path.join(FIX, "win10-22h2-bkav-reboot-pending.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    doc["mp"]["AMRunningMode"] = "Not running"
    doc["av"]["productState"] = 393472  # Defender off in Security Center
    p, _ = scan(dict(WU_OK, **{"security-cim": CommandResult(0, json.dumps(doc), "")}))
    assert p["av_on"] is True and p["av_name"] == "Bkav" and p["av_managed"] is False
    assert "found by its service" in unknown(p)["av_sig_age_d"]


def test_av_snoozed_is_not_protecting():
    p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-defender-snoozed.json"}))
    (defender,) = p["av"]
    assert defender["state"] == "snoozed" and defender["rtp"] is False
    assert p["av_on"] is False and p["av_name"] == ""


def test_signatures_ten_days_old_and_updates_not_automatic():
    p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-signatures-10-days.json"}))
    assert p["av_on"] is True and p["av_sig_age_d"] == 10.0
    assert p["av"][0]["sig_ok"] is False  # Security Center agrees: out of date
    assert p["update_service_off"] is True
    assert p["auto_update"] is False
    assert p["auto_update_detail"] == "AUOptions=3 (policy), wuauserv=Disabled"


def test_deep_freeze_frozen_lab_pc():
    dfc = "C:\\Windows\\SysWOW64\\DFC.exe get /ISFROZEN"
    p, runner = scan(dict(WU_OK, **{"security-cim": "win10-22h2-lab-deep-freeze.json",
                                    dfc: CommandResult(1, "", "")}))
    assert p["frozen"] is True and p["freeze_product"] == "Deep Freeze"
    assert dfc in runner.calls
    assert p["rdp_on"] is True and p["rdp_nla"] is False and p["guest_on"] is True
    assert unknown(p)["lock_s"] == "no machine policy and no user logged on"
    # thawed, not admin, no answer
    for rec, frozen, reason in ((CommandResult(0, "", ""), False, None),
                                (CommandResult(2, "", ""), None, "not run as an administrator"),
                                (CommandTimeout([dfc], 20), None, "no answer within 20 s")):
        p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-lab-deep-freeze.json",
                                   dfc: rec}))
        assert p.get("frozen") == frozen and p["freeze_product"] == "Deep Freeze"
        if reason:
            assert reason in unknown(p)["frozen"]


def test_windows_server_without_security_center():
    p, _ = scan(dict(WU_OK, **{"security-cim": "win-server-2019-defender.json"}))
    assert p["os_id"] == "windows-server"
    assert p["av_on"] is True and p["av_name"] == "Microsoft Defender Antivirus"
    assert [x["source"] for x in p["av"]] == ["defender"]
    assert "av_on" not in unknown(p)  # no Security Center is no doubt on a server
    assert p["rdp_on"] is True


def test_windows_server_without_defender_is_unknown_not_a_pass():
    with open(os.path.join(FIX, "win-server-2019-defender.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    doc["mp"] = None
    doc["_errors"]["mp"] = doc["_errors"]["av"]
    p, _ = scan(dict(WU_OK, **{"security-cim": CommandResult(0, json.dumps(doc), "")}))
    assert "av_on" not in p
    assert unknown(p)["av_on"] == "Defender: namespace not found"


def test_windows_7_legacy_script():
    p, runner = scan(dict(WU_OK, **{"security-cim": CommandResult(1, "", "not recognized"),
                                    "security-wmi": "win7-sp1-pro.txt",
                                    NETSH: "netsh-allprofiles-en.txt"}))
    assert runner.calls[-3:] == ["security-cim", "security-wmi", NETSH]
    assert p["os_id"] == "windows" and "os_ubr" not in p  # Windows 7 has no UBR
    (mse,) = p["av"]
    assert mse["name"] == "Microsoft Security Essentials" and mse["source"] == "wsc"
    assert p["av_on"] is True and p["av_managed"] is False
    assert p["patch_last_ts"] == to_epoch("2020-01-14T19:05:12")
    assert p["smb1_server"] is True  # Windows 7 default: no SMB1 value
    assert p["smb1_client"] is True  # mrxsmb10 Start 2
    assert p["fw_on"] is False  # netsh: public profile OFF
    assert p["fw_profiles"][2] == {"name": "public", "on": False}
    assert p["auto_update"] is True and p["auto_update_detail"].startswith("AUOptions=4 (local)")
    assert p["lock_s"] == 0 and p["lock_source"] == "user"  # screen saver without password
    assert p["autorun_off"] is False and p["autorun_detail"] == "NoDriveTypeAutoRun=145"
    assert p["esu"] is False and p["guest_on"] is False


def test_vietnamese_windows_localised_accounts_and_netsh():
    p, runner = scan(dict(WU_OK, **{"security-cim": "win10-22h2-vi.json",
                                    NETSH: "netsh-allprofiles-vi.txt"}))
    assert p["guest_on"] is False and p["admin_builtin_on"] is False  # "Khách" by its SID
    assert p["fw_on"] is True and NETSH in runner.calls
    # a display language whose word netsh uses is not known: unknown, not guessed
    with open(os.path.join(FIX, "netsh-allprofiles-vi.txt"), encoding="utf-8") as fh:
        odd = CommandResult(0, fh.read().replace("BẬT", "KÍCH HOẠT"), "")
    p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-vi.json", NETSH: odd}))
    assert "fw_on" not in p and "HOẠT" in unknown(p)["fw_on"]


def test_access_denied_sections_are_unknown_with_the_reason():
    p, _ = scan(dict(WU_OK, **{"security-cim": "win10-22h2-access-denied.json"}))
    u = unknown(p)
    assert "av_on" not in p
    assert u["av_on"] == ("Security Center: access denied; Defender: access denied; "
                          "services: access denied")
    assert u["esu"] == "SoftwareLicensingProduct: access denied"
    assert u["update_service_off"] == "services: access denied"
    assert "frozen" in u
    assert p["fw_on"] is True and p["guest_on"] is False  # what could be read still is


@pytest.mark.parametrize("recording, reason", [
    (CommandResult(0, '{"os": {"Caption": "Microsoft Windows 10 Pro", "Version": "10.0.1', ""),
     "output is not JSON"),
    (CommandResult(0, "{}", ""), "empty WMI answer"),
    (CommandTimeout(POWERSHELL, 90), "no answer within 90 s"),
    (CommandResult(1, "", "Access is denied."), "exit code 1: Access is denied."),
])
def test_odd_outputs_give_unknown_with_the_reason(recording, reason):
    p, runner = scan(dict(WU_OK, **{"security-cim": recording}))
    u = unknown(p)
    for field in ("av_on", "fw_on", "os_id", "patch_last_ts", "frozen", "lock_s"):
        assert field not in p and reason in u[field], (field, u.get(field))
    assert p["patch_pending"] == 5  # the background search is its own process
    if isinstance(recording, CommandTimeout):
        assert "security-wmi" not in runner.calls  # a hang is not Windows 7: no second try


def test_through_the_family():
    runner = RecordedRunner(dict(WU_OK, **{"security-cim": "win11-24h2-proedu-defender.json"}),
                            root=FIX)
    fam = SecurityFamily(runner=runner, platform_name="win32")
    p = fam.collect()
    assert p["os_family"] == "windows" and p["av_on"] is True and "scan_cpu_s" in p
    _check_catalogue(p)
    fam._scanner.search.wait(30)


def test_scripts_fit_a_command_line_and_powershell_2():
    r = reader()
    for script in (r.modern, r.legacy_script):
        assert '"' not in script
        assert len(script) < 30000  # CreateProcess takes 32767 characters
    for word in ("Get-CimInstance", "ConvertTo-Json", "Get-NetFirewallProfile"):
        assert word not in r.legacy_script
    assert "LIKE ''%-501''" in r.modern  # quotes doubled inside the -Filter string
    assert "-PolicyStore ActiveStore" in r.modern


def test_decoders():
    assert decode_product_state(397568) == {"state": "on", "sig_ok": True, "microsoft": True}
    assert decode_product_state(393472) == {"state": "off", "sig_ok": True, "microsoft": True}
    assert decode_product_state(266240) == {"state": "on", "sig_ok": True, "microsoft": False}
    assert decode_product_state(397584)["sig_ok"] is False
    assert decode_product_state(401664)["state"] == "snoozed"
    assert decode_product_state(0x43000)["state"] == "expired"
    assert to_epoch("/Date(1772726400000)/") == 1772726400
    assert to_epoch("20260305160000.000000+420") == to_epoch("2026-03-05T09:00:00")
    assert to_epoch("2026-03-05T16:00:00+07:00") == to_epoch("2026-03-05T09:00:00Z")
    assert to_epoch("yesterday") is None and to_epoch(None) is None
    assert qfe_date("3/15/2022") == qfe_date("15/03/2022") == qfe_date("2022-03-15")
    assert qfe_date("") is None and qfe_date("13/13/2022") is None
    filetime = "%016x" % ((1578528000 + 11644473600) * 10 ** 7)  # Windows 7's hex form
    assert qfe_date(filetime) == 1578528000
    assert parse_netsh("Ok.\n") == (None, "netsh: 0 profile blocks, expected 3")
    # German, as a public agent's test suite records it (no dashes under the headings)
    german = ("Domänenprofil-Einstellungen:\nStatus                                   EIN\n"
              "Privates Profil-Einstellungen:\nStatus                                   EIN\n"
              "Öffentliches Profil-Einstellungen:\nStatus                                   AUS\n"
              "OK.\n")
    assert parse_netsh(german) == ([{"name": "domain", "on": True},
                                    {"name": "private", "on": True},
                                    {"name": "public", "on": False}], "")
    assert parse_netsh("Access is denied.\n")[0] is None


def _facts(report, *args):
    found = Findings()
    report(found, *args)
    return found.payload()


def test_update_settings_and_screen_lock_rules():
    from schoolmon.agent.families.security_windows import report_auto_update, report_lock
    svcs = [{"Name": "wuauserv", "State": "Running", "StartMode": "Manual"}]
    p = _facts(report_auto_update, {"au_policy": {"NoAutoUpdate": 1, "AUOptions": 4}}, svcs)
    assert p["auto_update"] is False and p["auto_update_detail"] == "NoAutoUpdate=1"
    p = _facts(report_auto_update, {"au_policy": {"AUOptions": 5}}, svcs)
    assert "local administrator chooses" in p["unknown"][0]["reason"]
    p = _facts(report_auto_update, {}, None)  # services unreadable, no policy
    assert [u["field"] for u in p["unknown"]] == ["auto_update", "update_service_off"]
    user = {"Active": "1", "Timeout": "300", "Secure": "1", "Exe": "scrnsave.scr"}
    assert _facts(report_lock, {"desktop": [user]})["lock_s"] == 300
    # two users: the one whose screen never locks decides
    p = _facts(report_lock, {"desktop": [user, dict(user, Exe="")]})
    assert p["lock_s"] == 0
    # a user policy overrides the user's own value
    p = _facts(report_lock, {"desktop": [dict(user, PolicyTimeout="1200")]})
    assert (p["lock_s"], p["lock_source"]) == (1200, "policy")
    p = _facts(report_lock, {"desktop": [dict(user, Timeout="soon")]})
    assert "not readable" in p["unknown"][0]["reason"]


def test_garbled_sections_and_absurd_values_cost_only_their_facts():
    with open(os.path.join(FIX, "win11-24h2-proedu-defender.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    doc.update({"av": "garbage", "svc": 5, "users": [1, None], "fw": ["x"], "esu": [3],
                "history": {"Date": "0001-01-01T00:00:00", "Title": "x"},
                "qfe": [{"HotFixID": "KB1", "InstalledOn": "1/1/1601"}],
                "system_policy": {"InactivityTimeoutSecs": 99999999999}})
    doc["cv"]["UBR"] = -5
    p, _ = scan(dict(WU_OK, **{"security-cim": CommandResult(0, json.dumps(doc), ""),
                               NETSH: "netsh-allprofiles-en.txt"}))
    u = unknown(p)
    assert u["lock_s"] == "out of range: 99999999999" and u["os_ubr"] == "out of range: -5"
    assert "patch_last_ts" in u and "guest_on" in u
    assert u["esu"] == "SoftwareLicensingProduct: garbled answer"
    assert u["update_service_off"] == "services: garbled answer"
    assert p["fw_on"] is False  # Get-NetFirewallProfile garbled: netsh asked
    assert p["av_on"] is True  # Defender's class still answered
    assert p["rdp_on"] is False and p["autorun_off"] is True  # the rest is kept
