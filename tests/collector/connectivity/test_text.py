"""The connectivity texts: codes people read in words (refusals, failures, SNMP errors), a
reason with its unit and direction, figures written the reader's way."""
from schoolmon.collector.connectivity import text
from schoolmon.collector.read.connectivity import evidence, router_brief


def test_codes_in_words_unknown_as_itself():
    assert text.code_text(text.REFUSAL_TEXT, "unknown_lease", "vi") == \
        "lượt đo không do máy chủ cấp"
    assert text.code_text(text.REFUSAL_TEXT, "expired", "en") == "sent after the lease expired"
    assert text.code_text(text.TEST_FAILURE_TEXT, "error: no data moved", "vi") == \
        "lỗi: no data moved"
    assert text.code_text(text.TEST_FAILURE_TEXT, "something new", "vi") == "something new"
    assert text.code_text(text.TEST_FAILURE_TEXT, None, "vi") is None
    r = router_brief({"gw_ok": False, "snmp_ok": False, "snmp_err": "timeout"}, 1.0, "vi")
    assert r is not None and r["snmp_err_label"] == "không phản hồi (quá thời gian)"
    r = router_brief({"gw_ok": True, "snmp_ok": False, "snmp_err": "timeout"}, 1.0, "en")
    assert r is not None and r["snmp_err_label"] == "no answer (timed out)"


def test_below_contract_reason_in_mbit_s_with_direction():
    extra = {"dir": "Tải xuống", "pct": 80.0, "contract": 150.0}
    assert text.reason_text("below_contract", 68.4, 120.0, "vi", extra) == \
        "Tải xuống 68,4 Mbit/s, dưới 120 Mbit/s (80 % tốc độ hợp đồng 150 Mbit/s)"


def test_evidence_leaves_out_what_failed_and_what_is_missing():
    detail = {"thresholds": {"required_down_mbps": 20.0, "good_up_mbps": 5.0,
                             "contract_pct": 80.0, "max_ping_ms": 150.0,
                             "min_uptime_pct": 90.0, "min_intl_ok_pct": 80.0},
              "contracted": {"down_mbps": 150.0, "up_mbps": None},
              "week": {"tests": 20, "days": 5, "down_mbps": 145.2, "up_mbps": 3.0,
                       "ping_ms": 9.0, "uptime_pct": None, "intl_ok_pct": 0.0},
              "reasons": []}
    got = evidence(detail, "vi")
    assert [e["code"] for e in got] == ["down", "contract", "ping", "tests"]
    assert got[0]["text"] == "Trung vị tải xuống 145,2 Mbit/s ≥ 20 Mbit/s"
    assert got[1]["text"] == "Tải xuống bằng 96,8 % tốc độ hợp đồng ≥ 80 %"
    assert evidence({"week": None}, "vi") == []
