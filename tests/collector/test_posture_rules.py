"""Judging a device against the shipped baseline (every check: pass, warn, fail, unknown,
na) and a school by the school rule (its gates and statuses)."""
import datetime as dt

import pytest
from schoolmon.collector.baseline import load_baseline, load_os_table
from schoolmon.collector.posture import DeviceInput, PcSummary, Rules, evaluate_device, evaluate_school
from schoolmon.collector.posture.evidence import render, unknown_hint
from schoolmon.collector.text import FACT_LABELS

from tests.collector.postures import DAY, good_security, windows_inventory

RULES = Rules(load_baseline(), load_os_table())
NOW = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.timezone.utc).timestamp()


def judge(sec=None, inv=None, role="lab", reported=NOW - 3600, now=NOW):
    inv = windows_inventory(role=role) if inv is None else inv
    d = DeviceInput("d1", "S1", role, sec, reported if sec is not None else None, inv)
    return evaluate_device(RULES, d, now)


def state(check, **over):
    return judge(good_security(NOW, **over))["checks"][check]["state"]


def test_a_good_windows_pc_passes_everything():
    r = judge(good_security(NOW))
    assert r["worst"] == "pass" and r["counts"]["pass"] == 12
    assert r["crit_ok"] and r["crit_high_ok"] and not r["stale"]
    assert r["os_support"]["status"] == "supported"


# (check, fields for pass, for warn (None: no warn), for fail, field left out for unknown)
CASES = [
    ("av_on", {}, None, {"av_on": False}, "av_on"),
    ("av_signatures", {"av_sig_age_d": 2.0}, {"av_sig_age_d": 5.0}, {"av_sig_age_d": 10.0},
     "av_sig_age_d"),
    ("av_managed", {}, None, {"av_managed": False}, "av_managed"),
    ("patch_recent", {"patch_last_ts": int(NOW - 30 * DAY)},
     {"patch_last_ts": int(NOW - 45 * DAY)}, {"patch_last_ts": int(NOW - 61 * DAY)},
     "patch_last_ts"),
    ("auto_update", {}, None, {"auto_update": False}, "auto_update"),
    ("firewall_on", {}, None, {"fw_on": False}, "fw_on"),
    ("smb1_off", {}, None, {"smb1_client": True}, "smb1_server"),
    ("default_accounts_off", {}, None, {"guest_on": True}, "guest_on"),
    ("rdp_safe", {"rdp_on": True, "rdp_nla": True}, None, {"rdp_on": True, "rdp_nla": False},
     "rdp_on"),
    ("autorun_off", {}, None, {"autorun_off": False}, "autorun_off"),
    ("screen_lock", {"lock_s": 900}, None, {"lock_s": 0}, "lock_s"),
]


@pytest.mark.parametrize("check,ok,warn,bad,missing", CASES, ids=[c[0] for c in CASES])
def test_each_check_pass_warn_fail_unknown(check, ok, warn, bad, missing):
    assert state(check, **ok) == "pass"
    if warn is not None:
        assert state(check, **warn) == "warn"
    assert state(check, **bad) == "fail"
    # rdp_safe: "RDP off or NLA": unknown RDP with NLA on is a pass (Kleene's or)
    extra = {"rdp_nla": False} if check == "rdp_safe" else {}
    r = judge(good_security(NOW, **{missing: None}, **extra,
                            unknown=[{"field": missing, "reason": "access denied"}]))
    c = r["checks"][check]
    assert c["state"] == "unknown"
    assert c["ev"] == {"code": "unknown", "field": missing, "reason": "access denied"}
    by_id = {x.id: x for x in RULES.baseline.checks}
    # the fact in the reader's words, never the field's id; a well-known reason translated
    vi = render(by_id[check], c, NOW, "vi")
    assert vi == "Không xác định được %s: agent không đủ quyền đọc" % FACT_LABELS[missing]["vi"]
    assert missing not in vi
    en = render(by_id[check], c, NOW, "en")
    assert en.startswith(FACT_LABELS[missing]["en"][:1].upper() + FACT_LABELS[missing]["en"][1:])
    assert en.endswith("could not be determined: the agent may not read it")


def test_os_supported_check():
    assert state("os_supported") == "pass"
    win7 = windows_inventory(build="7601", edition="Professional", display=None,
                             os_version="7")
    r = judge(good_security(NOW), win7)
    assert r["checks"]["os_supported"]["state"] == "fail" and not r["crit_ok"]
    assert r["os_support"] == {"status": "unsupported", "end": "2020-01-14",
                               "label": RULES.os_table.entries[0].label}
    w10 = windows_inventory(build="19045.5011", edition="Pro", display="22H2", os_version="10")
    assert judge(good_security(NOW, esu=True), w10)["checks"]["os_supported"]["state"] == "pass"
    assert judge(good_security(NOW, esu=False), w10)["checks"]["os_supported"]["state"] == "fail"
    unknown = judge(good_security(NOW), w10)["checks"]["os_supported"]
    assert unknown["state"] == "unknown"  # ESU not reported: never a pass
    odd = judge(good_security(NOW, os_id=None), {"role": "lab", "os_name": "Haiku"})
    assert odd["checks"]["os_supported"]["state"] == "unknown"
    assert "không có trong bảng" in render(RULES.baseline.checks[0],
                                           odd["checks"]["os_supported"], NOW, "vi")


def test_windows_11_24h2_pro_education_after_2026_10_13():
    inv = windows_inventory(edition="Pro Education")
    before = dt.datetime(2026, 10, 13, 12, tzinfo=dt.timezone.utc).timestamp()
    assert judge(good_security(before), inv, now=before)["checks"]["os_supported"]["state"] \
        == "pass"
    r = judge(good_security(NOW), inv)
    assert r["checks"]["os_supported"]["state"] == "fail"
    # the values used, and those the evidence sentence shows (dates as the reader writes them)
    assert r["checks"]["os_supported"]["values"] == {
        "os_supported": False, "os_support_status": "unsupported", "os_end": "2026-10-13"}
    os_check = [c for c in RULES.baseline.checks if c.id == "os_supported"][0]
    assert render(os_check, r["checks"]["os_supported"], NOW, "vi") == \
        "Hệ điều hành hết hỗ trợ từ 13/10/2026"
    # English dates as every other English date on the pages: dd/mm/yyyy
    assert render(os_check, r["checks"]["os_supported"], NOW, "en") == \
        "Operating system out of support since 13/10/2026"
    assert judge(good_security(NOW), windows_inventory(edition="Enterprise"))[
        "checks"]["os_supported"]["state"] == "pass"


def test_not_applicable_role_os_and_frozen():
    linux = {"role": "lab", "os_name": "Linux", "os_version": "24.04",
             "os_edition": "Ubuntu 24.04.1 LTS"}
    sec = {"os_family": "linux", "os_id": "ubuntu", "fw_on": False, "auto_update": True,
           "patch_last_ts": int(NOW - 3 * DAY)}
    r = judge(sec, linux)
    assert r["checks"]["av_on"] == {"state": "na", "ev": {"code": "na_os", "os": "linux"},
                                    "severity": "critical"}
    assert r["checks"]["firewall_on"]["state"] == "fail"
    assert r["checks"]["os_supported"]["state"] == "pass"
    assert r["crit_ok"] and not r["crit_high_ok"]
    frozen = judge(good_security(NOW, frozen=True, freeze_product="Deep Freeze",
                                 av_sig_age_d=30.0, patch_last_ts=int(NOW - 200 * DAY)))
    for cid in ("av_signatures", "patch_recent"):
        assert frozen["checks"][cid]["state"] == "na"
        assert "Deep Freeze" in render(None, frozen["checks"][cid], NOW, "vi")
    assert frozen["checks"]["av_on"]["state"] == "pass" and frozen["frozen"]
    # a router is not a PC: every check na
    router = judge(good_security(NOW), {"role": "router", "os_name": "Linux"}, role="router")
    assert router["counts"]["na"] == 12 and router["worst"] == "na"


def test_screen_lock_severity_by_role():
    r = judge(good_security(NOW, lock_s=3600), role="lab")
    assert r["checks"]["screen_lock"]["severity"] == "low"
    r = judge(good_security(NOW, lock_s=3600), windows_inventory(role="office"), role="office")
    assert r["checks"]["screen_lock"]["severity"] == "medium"


def test_silent_for_more_than_seven_days_all_unknown_and_no_report():
    r = judge(good_security(NOW), reported=NOW - 8 * DAY)
    assert r["stale"] and r["counts"]["unknown"] == 12 and r["worst"] == "unknown"
    assert render(None, r["checks"]["av_on"], NOW, "vi") == "Máy không gửi báo cáo ATTT quá 7 ngày"
    assert render(None, r["checks"]["av_on"], NOW, "en") == \
        "No security report for more than 7 days"
    r = judge(None)
    assert r["stale"] and r["checks"]["av_on"]["ev"] == {"code": "no_report"}
    assert not r["crit_ok"]


def test_evidence_sentences():
    b = RULES.baseline
    sig = [c for c in b.checks if c.id == "av_signatures"][0]
    r = judge(good_security(NOW, av_sig_age_d=10.0))
    assert render(sig, r["checks"]["av_signatures"], NOW, "vi") == \
        "Mẫu nhận diện 10 ngày tuổi (đạt ≤ 3, quá 7 là không đạt)"
    patch = [c for c in b.checks if c.id == "patch_recent"][0]
    r = judge(good_security(NOW, patch_last_ts=int(NOW - 61 * DAY)))
    assert render(patch, r["checks"]["patch_recent"], NOW, "en").startswith(
        "Last update installed 61 days ago")
    smb = [c for c in b.checks if c.id == "smb1_off"][0]
    r = judge(good_security(NOW, smb1_client=True))
    assert render(smb, r["checks"]["smb1_off"], NOW, "vi") == \
        "SMBv1 máy chủ: không; máy khách: có"
    av = [c for c in b.checks if c.id == "av_on"][0]
    r = judge(good_security(NOW, av_on=False, av_name=""))
    assert render(av, r["checks"]["av_on"], NOW, "vi") == \
        "Bảo vệ thời gian thực: không; sản phẩm: không có"


def pc(role="lab", crit=True, high=True, reported=NOW - DAY):
    return PcSummary(role, reported, crit, crit and high, {})


def school(pcs):
    return evaluate_school(RULES, pcs, NOW)


def test_school_rule_statuses_and_gates():
    assert school([])["status"] == "no_pcs"
    assert school([pc() for _ in range(20)])["status"] == "meets"
    # coverage: 18 of 20 reported within 7 days = 90 % -> still enough; 17 -> insufficient
    ok = [pc() for _ in range(18)] + [pc(reported=NOW - 8 * DAY) for _ in range(2)]
    assert school(ok)["detail"]["coverage"] == {"reporting": 18, "pcs": 20, "pct": 90.0,
                                                "days": 7.0}
    low = [pc() for _ in range(17)] + [pc(reported=None) for _ in range(3)]
    assert school(low)["status"] == "insufficient"
    # one office PC failing a critical check: below (office PCs 100 %)
    r = school([pc() for _ in range(30)] + [pc("office", crit=False)])
    gates = {g["id"]: g for g in r["detail"]["gates"]}
    assert r["status"] == "below" and not gates["office_critical"]["ok"]
    assert gates["all_critical"]["ok"] and gates["all_critical"]["value_pct"] == 96.8
    # all PCs 95 % on critical: 1 of 20 lab PCs failing is fine, 2 are not
    assert school([pc() for _ in range(19)] + [pc(crit=False)])["status"] == "meets"
    assert school([pc() for _ in range(18)] + [pc(crit=False)] * 2)["status"] == "below"
    # critical + high 80 %: 4 of 20 failing a high check is fine, 5 -> improve
    assert school([pc() for _ in range(16)] + [pc(high=False)] * 4)["status"] == "meets"
    r = school([pc() for _ in range(15)] + [pc(high=False)] * 5)
    assert r["status"] == "improve"
    assert {g["id"]: g["value_pct"] for g in r["detail"]["gates"]}["critical_high"] == 75.0
    # no office PC: that gate has no value and holds
    gates = {g["id"]: g for g in school([pc()])["detail"]["gates"]}
    assert gates["office_critical"] == {"id": "office_critical", "value_pct": None,
                                        "threshold_pct": 100.0, "ok": True}


def test_per_check_counts():
    a = PcSummary("lab", NOW, True, True, {"av_on": "pass", "firewall_on": "fail"})
    b = PcSummary("lab", NOW, True, False, {"av_on": "unknown", "firewall_on": "fail"})
    checks = school([a, b])["detail"]["checks"]
    assert checks["av_on"] == {"pass": 1, "warn": 0, "fail": 0, "unknown": 1, "na": 0}
    assert checks["firewall_on"]["fail"] == 2


def check(cid):
    return next(c for c in RULES.baseline.checks if c.id == cid)


def said(cid, result, lang="vi", os_family=None):
    return render(check(cid), result["checks"][cid], NOW, lang, os_family)


def test_no_antivirus_fails_once():
    """Defect 9: without a protecting antivirus, av_on fails; its signatures and central
    management are not applicable (with why), not a second and third failure."""
    r = judge(good_security(NOW, av_on=False, av_name="", av_sig_age_d=None,
                            av_managed=None))
    assert r["checks"]["av_on"]["state"] == "fail"
    for cid in ("av_signatures", "av_managed"):
        assert r["checks"][cid]["state"] == "na" and r["checks"][cid]["ev"] == {"code": "na_if"}
    assert r["counts"]["fail"] == 1
    assert said("av_signatures", r) == ("Không có phần mềm diệt virus đang bảo vệ: không đánh "
                                        "giá mẫu nhận diện (xem tiêu chí phần mềm phòng chống "
                                        "mã độc)")
    assert said("av_signatures", r, "en").startswith("No antivirus protecting")
    # the antivirus state unknown: the signatures are judged (and unknown), never na
    r = judge(good_security(NOW, av_on=None, unknown=[{"field": "av_on", "reason": "x"}]))
    assert r["checks"]["av_signatures"]["state"] == "unknown"


def test_a_router_has_no_applicable_check_and_is_never_stale():
    """Defect 3: every check na: no stale flag, no missing report."""
    for sec in (None, good_security(NOW)):
        r = judge(sec, {"role": "router", "os_name": "Linux"}, role="router",
                  reported=NOW - 30 * DAY)
        assert r["counts"]["na"] == 12 and r["applicable"] is False
        assert r["stale"] is False and r["never_reported"] is False
    pc = judge(None)
    assert pc["applicable"] and pc["stale"] and pc["never_reported"]
    silent = judge(good_security(NOW), reported=NOW - 8 * DAY)
    assert silent["stale"] and not silent["never_reported"]


def test_unknown_facts_in_words_with_the_agents_detail_marked():
    """Defect 2: the fact named in the reader's words; the agent's reason translated when
    well known, and its own words marked as the PC's technical detail."""
    bkav = "Bkav found by its service (BkavService) only; not in Security Center"
    r = judge(good_security(NOW, av_on=None, av_name=None,
                            unknown=[{"field": "av_on", "reason": bkav}]))
    assert said("av_on", r) == (
        "Không xác định được trạng thái phần mềm diệt virus: phần mềm diệt virus không đăng "
        "ký với Windows Security Center nên không đọc được trạng thái bảo vệ (chi tiết từ "
        "máy: %s)" % bkav)
    assert said("av_on", r, "en").startswith("The antivirus status could not be determined: ")
    # a reason not in the table: shown as the PC's detail, clearly marked
    r = judge(good_security(NOW, fw_on=None, unknown=[
        {"field": "fw_on", "reason": "netsh advfirewall: exit 1"}]))
    assert said("firewall_on", r) == ("Không xác định được trạng thái tường lửa (chi tiết từ "
                                      "máy: netsh advfirewall: exit 1)")
    assert said("firewall_on", r, "en") == ("The firewall state could not be determined "
                                            "(detail from the PC: netsh advfirewall: exit 1)")
    # no reason at all (an older agent leaves the field out)
    r = judge(good_security(NOW, lock_s=None))
    assert said("screen_lock", r) == "Không xác định được thời gian chờ khóa màn hình"
    # a Windows-only check on Linux: the OS family's label, not its code
    linux = {"role": "lab", "os_name": "Linux", "os_version": "24.04",
             "os_edition": "Ubuntu 24.04.1 LTS"}
    r = judge({"os_family": "linux", "os_id": "ubuntu", "fw_on": True, "auto_update": False,
               "auto_update_detail": "APT::Periodic::Unattended-Upgrade=unset; "
                                     "unattended-upgrades not installed; "
                                     "apt-daily-upgrade.timer enabled",
               "patch_last_ts": int(NOW - 3 * DAY)}, linux)
    assert said("smb1_off", r) == "Không áp dụng cho Linux"
    assert said("smb1_off", r, "en") == "Not for Linux"
    # the Linux setting behind auto_update: its usual words translated, marked as the PC's
    assert said("auto_update", r) == (
        "Tự động cập nhật: không (thiết lập trên máy: APT::Periodic::Unattended-Upgrade chưa "
        "đặt; chưa cài unattended-upgrades; apt-daily-upgrade.timer đang bật)")
    assert said("auto_update", r, "en").startswith("Automatic updates: no (setting on the PC: ")
    assert render(None, {"state": "na", "ev": {"code": "na_role", "role": "router"}}, NOW,
                  "vi") == "Không áp dụng cho router"
    assert render(None, {"state": "na", "ev": {"code": "na_role", "role": "office"}}, NOW,
                  "en") == "Not for office PCs"


def test_unknown_checks_get_a_hint_about_making_the_fact_known():
    """Defect 4: an unknown check's hint says how to make the fact known, by its cause."""
    def hint_of(sec=None, cid="screen_lock", **kw):
        return unknown_hint(judge(sec, **kw)["checks"][cid])
    assert hint_of(None) == "no_report"
    assert hint_of(good_security(NOW), reported=NOW - 8 * DAY) == "stale"
    assert hint_of(good_security(NOW, lock_s=None, unknown=[
        {"field": "lock_s", "reason": "Win32_UserAccount: access denied"}])) == "admin"
    assert hint_of(good_security(NOW, lock_s=None, unknown=[
        {"field": "lock_s", "reason": "no user logged on"}])) == "logged_on"
    assert hint_of(good_security(NOW, fw_on=None, unknown=[
        {"field": "fw_on", "reason": "nft: needs root"}]), "firewall_on") == "admin"
    assert hint_of(good_security(NOW, lock_s=None)) == "agent"
    assert hint_of(good_security(NOW)) is None  # passing: the check's own hint
    odd = judge(good_security(NOW, os_id=None), {"role": "lab", "os_name": "Haiku"})
    assert unknown_hint(odd["checks"]["os_supported"]) == "os_table"


def test_evidence_numbers_dates_and_cases():
    """Defects 10 and 12 and the minor wording: whole days, the decimal comma, dd/mm/yyyy in
    both languages, "Chưa đặt khóa màn hình", "được hỗ trợ đến", "cách đây N ngày"."""
    r = judge(good_security(NOW, av_sig_age_d=58.3))
    assert said("av_signatures", r) == "Mẫu nhận diện 59 ngày tuổi (đạt ≤ 3, quá 7 là không đạt)"
    # rounded up, so the number agrees with the state: 3.2 days is over 3 (warn)
    r = judge(good_security(NOW, av_sig_age_d=3.2))
    assert r["checks"]["av_signatures"]["state"] == "warn"
    assert said("av_signatures", r).startswith("Mẫu nhận diện 4 ngày tuổi")
    r = judge(good_security(NOW, av_sig_age_d=0.4))
    assert said("av_signatures", r) == "Mẫu nhận diện cập nhật trong 24 giờ qua (đạt ≤ 3 ngày)"
    from schoolmon.collector.posture.evidence import number
    assert (number(4.5, "vi"), number(4.5, "en"), number(7.0, "vi")) == ("4,5", "4.5", "7")
    assert render(None, {"state": "unknown", "ev": {"code": "stale", "days": 2.5}}, NOW,
                  "vi") == "Máy không gửi báo cáo ATTT quá 2,5 ngày"
    assert render(None, {"state": "ok", "values": {"lock_s": 1.5}}, NOW, "vi") == \
        "Giá trị: thời gian chờ khóa màn hình = 1,5"
    r = judge(good_security(NOW, lock_s=0))
    assert r["checks"]["screen_lock"]["state"] == "fail"
    assert said("screen_lock", r) == "Chưa đặt khóa màn hình (đạt: khóa sau tối đa 900 giây)"
    assert said("screen_lock", r, "en") == "No screen lock set (pass: locks within 900 s)"
    assert said("screen_lock", judge(good_security(NOW, lock_s=600))) == \
        "Khóa màn hình sau 600 giây (đạt ≤ 900)"
    r = judge(good_security(NOW, patch_last_ts=int(NOW - 408 * DAY)))
    assert said("patch_recent", r) == ("Bản cập nhật gần nhất cài cách đây 408 ngày (đạt ≤ 35, "
                                       "quá 60 là không đạt)")
    r = judge(good_security(NOW, patch_last_ts=int(NOW - 3600)))
    assert said("patch_recent", r).startswith("Bản cập nhật gần nhất cài trong 24 giờ qua")
    # the OS: "được hỗ trợ đến" / "hết hỗ trợ từ", dates dd/mm/yyyy in English too
    r = judge(good_security(NOW))
    assert said("os_supported", r) == "Hệ điều hành được hỗ trợ đến 12/10/2027"
    assert said("os_supported", r, "en") == "Operating system supported until 12/10/2027"
    w10 = windows_inventory(build="19045.5011", edition="Pro", display="22H2", os_version="10")
    r = judge(good_security(NOW, esu=True), w10)
    assert said("os_supported", r) == "Hệ điều hành được hỗ trợ mở rộng (ESU) đến 10/10/2028"
    r = judge(good_security(NOW), w10)  # ESU not reported: unknown, and why
    assert said("os_supported", r) == (
        "Không xác định được hệ điều hành còn được hãng hỗ trợ hay không: đã qua ngày hết hỗ "
        "trợ chuẩn, máy chưa báo có gói ESU hay không")
    from schoolmon.collector.posture.evidence import os_support_sentence
    assert os_support_sentence("unsupported", "2020-01-14", "vi") == "hết hỗ trợ từ 14/01/2020"
    assert os_support_sentence("supported", "2028-06-30", "vi") == "được hỗ trợ đến 30/06/2028"
    assert os_support_sentence("supported", "2028-06-30", "en") == "supported until 30/06/2028"


def test_linux_pcs_get_linux_hints_and_citations():
    """A Linux PC is not told to turn Windows Defender Firewall on, nor cited a Windows
    benchmark: by_os in the baseline file."""
    for cid in ("firewall_on", "auto_update", "patch_recent"):
        c = check(cid)
        assert "Windows" not in c.hint_for("linux")["vi"], cid
        assert "Windows" not in c.citation_for("linux"), cid
        assert c.hint_for("windows") == c.hint and c.citation_for(None) == c.citation
    assert "ufw enable" in check("firewall_on").hint_for("linux")["vi"]
    assert "Linux" not in check("firewall_on").hint["vi"]  # the Windows hint, Windows only
