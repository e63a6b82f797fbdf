"""What people read about a school's connectivity, Vietnamese first: the status labels
(the same words as the ATTT statuses: one definition, :data:`..text.ATTT_STATUS_LABELS`),
the reasons a school does not meet the baseline (:data:`REASON_TEXT`, with ``{value}`` and
``{limit}`` filled by :func:`reason_text`) and the pages' texts (``conn.*``, merged into
``/ui/texts.js`` by :func:`..text.page_texts`)."""
from typing import Any, Dict, Optional, Tuple

from ..text import ATTT_STATUS_LABELS, ROUTER_VI, ROUTER_VI_CAP

#: A school's connectivity status (decision 2 of issue 10), worst first.
STATUSES = ("below", "improve", "insufficient", "meets")
#: Đạt / Cần cải thiện / Không đạt / Không đủ dữ liệu: the ATTT statuses' words.
STATUS_LABELS: Dict[str, Dict[str, str]] = {s: ATTT_STATUS_LABELS[s] for s in STATUSES}

#: Why a school does not meet the baseline: {code: (vi, en)}; ``{value}`` is the measured
#: figure, ``{limit}`` the threshold it is judged against.
REASON_TEXT: Dict[str, Tuple[str, str]] = {
    "no_recent_test": ("Không có lần đo tốc độ nào được tính trong {limit} ngày qua",
                       "No counted speed test in the last {limit} days"),
    "down_below_bad": ("Tốc độ tải xuống {value} Mbit/s, dưới mức tối thiểu {limit} Mbit/s",
                       "Download {value} Mbit/s, below the minimum of {limit} Mbit/s"),
    "down_below_good": ("Tốc độ tải xuống {value} Mbit/s, chưa đạt {limit} Mbit/s",
                        "Download {value} Mbit/s, short of {limit} Mbit/s"),
    "up_below_good": ("Tốc độ tải lên {value} Mbit/s, chưa đạt {limit} Mbit/s",
                      "Upload {value} Mbit/s, short of {limit} Mbit/s"),
    # {dir}: tải xuống / tải lên (DIRECTION_TEXT); {pct}: contract.min_pct; {contract}: the
    # contracted speed; {value} and {limit} are Mbit/s (limit = pct % of the contract)
    "below_contract": ("{dir} {value} Mbit/s, dưới {limit} Mbit/s ({pct} % tốc độ hợp đồng "
                       "{contract} Mbit/s)",
                       "{dir} {value} Mbit/s, below {limit} Mbit/s ({pct} % of the contracted "
                       "{contract} Mbit/s)"),
    "ping_high": ("Độ trễ {value} ms, cao hơn {limit} ms",
                  "Latency {value} ms, above {limit} ms"),
    "uptime_low": ("Thời gian có kết nối {value} % giờ học, dưới {limit} %",
                   "Connected {value} % of school hours, below {limit} %"),
    "tests_failing": ("{value} lần đo liên tiếp thất bại (ngưỡng {limit})",
                      "{value} tests in a row failed (limit {limit})"),
    "intl_unreachable": ("Chỉ truy cập được địa chỉ quốc tế {value} % số lần thử, dưới {limit} %",
                         "The international target answered {value} % of tries, below "
                         "{limit} %"),
    "high_variability": ("Tốc độ dao động mạnh giữa các lần đo (hệ số {value}, ngưỡng {limit})",
                         "Speed varies widely between tests (spread {value}, limit {limit})"),
    "no_successful_test": ("Chưa có lần đo tốc độ nào thành công trong tuần: chưa đủ dữ liệu "
                           "để đánh giá tốc độ",
                           "No successful speed test this week: not enough data to judge "
                           "the speed"),
}


#: The checks of the connectivity baseline as ``GET /api/v1/baselines`` lists them: one per
#: reason code, {code: (vi, en)} titles.
CHECK_TITLES: Dict[str, Tuple[str, str]] = {
    "tests_failing": ("Các lần đo liên tiếp thất bại", "Tests failing in a row"),
    "down_below_bad": ("Tốc độ tải xuống tối thiểu", "Minimum download speed"),
    "down_below_good": ("Tốc độ tải xuống cần có", "Required download speed"),
    "up_below_good": ("Tốc độ tải lên cần có", "Required upload speed"),
    "below_contract": ("Tốc độ so với hợp đồng", "Speed against the contract"),
    "ping_high": ("Độ trễ (ping)", "Latency (ping)"),
    "uptime_low": ("Thời gian kết nối được trong giờ học", "Uptime in school hours"),
    "intl_unreachable": ("Truy cập quốc tế", "International reachability"),
    "high_variability": ("Độ ổn định tốc độ", "Speed stability"),
    "no_recent_test": ("Có lần đo gần đây", "A recent test"),
    "no_successful_test": ("Có lần đo thành công trong tuần", "A successful test this week"),
}


#: Which way a speed was measured ({dir} of ``below_contract``); None: not known (an
#: older detail whose value matches neither median).
DIRECTION_TEXT: Dict[Optional[str], Tuple[str, str]] = {
    "down": ("Tải xuống", "Download"), "up": ("Tải lên", "Upload"),
    None: ("Tốc độ đo được", "Measured speed"),
}

#: What a school passed (its evidence: a Đạt school shows why it is Đạt, the others what they
#: did pass): {code: (vi, en)}, ``{value}`` the week's figure, ``{limit}`` the threshold.
EVIDENCE_TEXT: Dict[str, Tuple[str, str]] = {
    "down": ("Trung vị tải xuống {value} Mbit/s ≥ {limit} Mbit/s",
             "Median download {value} Mbit/s ≥ {limit} Mbit/s"),
    "up": ("Trung vị tải lên {value} Mbit/s ≥ {limit} Mbit/s",
           "Median upload {value} Mbit/s ≥ {limit} Mbit/s"),
    "contract": ("Tải xuống bằng {value} % tốc độ hợp đồng ≥ {limit} %",
                 "Download {value} % of the contracted speed ≥ {limit} %"),
    "ping": ("Độ trễ trung vị {value} ms ≤ {limit} ms", "Median latency {value} ms ≤ {limit} ms"),
    "uptime": ("Có kết nối {value} % giờ học ≥ {limit} %",
               "Connected {value} % of school hours ≥ {limit} %"),
    "intl": ("Truy cập được địa chỉ quốc tế {value} % số lần thử ≥ {limit} %",
             "International target answered {value} % of tries ≥ {limit} %"),
    "tests": ("{value} lần đo trong {limit} ngày học gần nhất",
              "{value} tests in the last {limit} school days"),
}

#: Why a test result is not counted (``link_tests.refused``, the scheduler's refusals).
REFUSAL_TEXT: Dict[str, Tuple[str, str]] = {
    "unknown_lease": ("lượt đo không do máy chủ cấp", "not under a lease the collector gave"),
    "not_holder": ("máy này không giữ lượt đo", "this device did not hold the lease"),
    "expired": ("gửi sau khi lượt đo hết hạn", "sent after the lease expired"),
}

#: Why a test failed (the ``speedtest`` family's ``reason``; ``error: …`` keeps its detail).
TEST_FAILURE_TEXT: Dict[str, Tuple[str, str]] = {
    "no_server": ("không kết nối được máy chủ đo", "no test server reachable"),
    "timeout": ("quá thời gian", "timed out"),
    "link_down": ("mất kết nối, không đo", "link down, not run"),
    "budget": ("hết dung lượng dữ liệu cho phép", "data budget used up"),
    "error": ("lỗi", "error"),
}

#: Why SNMP failed (the ``router`` family's ``snmp_err``).
SNMP_ERROR_TEXT: Dict[str, Tuple[str, str]] = {
    "timeout": ("không phản hồi (quá thời gian)", "no answer (timed out)"),
    "auth": ("sai thông tin xác thực", "authentication failed"),
    "no such object": (ROUTER_VI_CAP + " không có thông tin này", "the router lacks this object"),
    "not_configured": ("chưa cấu hình", "not configured"),
}


def code_text(table: Dict[Any, Tuple[str, str]], code: Any, lang: str) -> Optional[str]:
    """The words of ``code`` in ``table``; ``error: detail`` reads as the words of
    ``error`` then the detail; an unknown code reads as itself, None stays None."""
    if code is None or code == "":
        return None
    pair = table.get(code)
    if pair is not None:
        return pair[1] if lang == "en" else pair[0]
    if isinstance(code, str) and ":" in code:
        head, _, rest = code.partition(":")
        pair = table.get(head.strip())
        if pair is not None:
            return (pair[1] if lang == "en" else pair[0]) + ": " + rest.strip()
    return str(code)


def _figure(v: Any, lang: str) -> str:
    """A figure as people read it: at most one decimal, a decimal comma in Vietnamese."""
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    s = ("%.1f" % v).rstrip("0").rstrip(".") if v != int(v) else "%d" % v
    return s.replace(".", ",") if lang == "vi" else s


def reason_text(code: str, value: Any, limit: Any, lang: str,
                extra: Optional[Dict[str, Any]] = None,
                table: Optional[Dict[str, Tuple[str, str]]] = None) -> str:
    """The sentence of a reason (or, with ``table=EVIDENCE_TEXT``, of a check passed); an
    unknown code reads as itself (a newer evaluator). ``extra``: more placeholders
    (``below_contract``: dir, pct, contract); a figure is written the reader's way, a
    text as it is."""
    pair: Optional[Tuple[str, str]] = (REASON_TEXT if table is None else table).get(code)
    if pair is None:
        return code
    text = pair[1] if lang == "en" else pair[0]
    fills = dict(extra or {}, value=value, limit=limit)
    for k, v in fills.items():
        text = text.replace("{%s}" % k, v if isinstance(v, str) else _figure(v, lang))
    return text


#: What a person reads when they ask for a test now (Đo ngay; manual.request_text): by
#: outcome, ``{device}`` the PC chosen (or testing), ``{minutes}``, ``{time}`` (local, when
#: the lease ends), ``{used}`` / ``{limit}`` / ``{expected}`` (MB), ``{count}`` /
#: ``{per_hour}`` / ``{wait}`` (minutes). The API's answers, the CLI and the page use these.
REQUEST_TEXT: Dict[str, Tuple[str, str]] = {
    "granted": ("Đang đo trên máy {device}, kết quả trong khoảng {minutes} phút.",
                "Testing on {device}; the result should arrive within about {minutes} "
                "minutes."),
    "held": ("Trường đang có một lần đo trên máy {device} (hết hạn lúc {time}). Vui lòng chờ "
             "lần đo đó xong.",
             "A test is already running on {device} (its lease ends at {time}). Please wait "
             "for it to finish."),
    "budget": ("Đã hết hạn mức dữ liệu đo tháng này: đã dùng {used} trên {limit}, lần đo cần "
               "khoảng {expected}.",
               "This month's test data budget is used up: {used} of {limit} used, a test "
               "needs about {expected}."),
    "no_device": ("Không có máy nào của trường đang trực tuyến để đo (cần một máy đã duyệt, "
                  "đang bật, không phải " + ROUTER_VI + ").",
                  "No device of the school is online to test from (an approved device that "
                  "is on, not the router)."),
    "rate_limited": ("Bạn đã yêu cầu đo {count} lần trong một giờ qua (tối đa {per_hour}). "
                     "Thử lại sau khoảng {wait} phút.",
                     "You asked for {count} tests in the last hour (at most {per_hour}). Try "
                     "again in about {wait} minutes."),
    "not_sent": ("Chưa gửi được lệnh đo: bộ thu thập chưa kết nối broker.",
                 "The test command could not be sent: the collector has no broker "
                 "connection."),
    "unavailable": ("Chức năng đo ngay đang tắt (connectivity.scheduler = false).",
                    "Testing now is turned off (connectivity.scheduler = false)."),
}

#: The pages' texts of the connectivity parts (``conn.*``).
PAGE_TEXTS: Dict[str, Dict[str, str]] = {
    "nav.connectivity": {"vi": "Kết nối", "en": "Connectivity"},
    "col.connectivity": {"vi": "Kết nối", "en": "Connectivity"},
    "filter.connectivity": {"vi": "Kết nối", "en": "Connectivity"},
    "filter.conn_not_meeting": {"vi": "Chưa đạt chuẩn (Cần cải thiện, Không đạt)",
                                "en": "Not meeting (needs improvement, fails)"},
    "conn.title": {"vi": "Kết nối Internet", "en": "Internet connection"},
    "conn.page_title": {"vi": "Kết nối Internet của các trường",
                        "en": "Schools' Internet connections"},
    "col.below_conn": {"vi": "Trường chưa đạt chuẩn kết nối",
                       "en": "Schools not meeting the connectivity baseline"},
    "conn.not_evaluated": {"vi": "Chưa đánh giá chuẩn kết nối: chưa có kết quả đo nào.",
                           "en": "The connectivity baseline is not evaluated yet: no results."},
    "conn.reasons": {"vi": "Lý do", "en": "Why"},
    "conn.since": {"vi": "Từ {time}", "en": "Since {time}"},
    "conn.evaluated": {"vi": "đánh giá lúc {time}", "en": "evaluated {time}"},
    "conn.contracted": {"vi": "Tốc độ hợp đồng", "en": "Contracted speed"},
    "conn.last_test": {"vi": "Lần đo gần nhất", "en": "Latest test"},
    "conn.router": {"vi": ROUTER_VI_CAP, "en": "Router"},
    "conn.router_up": {"vi": "hoạt động", "en": "up"},
    "conn.router_down": {"vi": "không phản hồi", "en": "not answering"},
    "conn.router_none": {"vi": "Chưa có dữ liệu " + ROUTER_VI + ".", "en": "No router data yet."},
    "conn.uptime": {"vi": "Thời gian chạy", "en": "Uptime"},
    "conn.wan": {"vi": "WAN", "en": "WAN"},
    "conn.wan_use": {"vi": "↓ {rx} Mbit/s ({rxp}) · ↑ {tx} Mbit/s ({txp})",
                     "en": "↓ {rx} Mbit/s ({rxp}) · ↑ {tx} Mbit/s ({txp})"},
    "conn.model": {"vi": "Kiểu máy", "en": "Model"},
    "conn.lease": {"vi": "Lượt đo", "en": "Test lease"},
    "conn.lease_held": {"vi": "{device} đang đo, hết hạn {time}", "en": "{device} is testing, until {time}"},
    "conn.next_test": {"vi": "Lần đo tiếp theo dự kiến: {time}", "en": "Next test planned: {time}"},
    "conn.no_plan": {"vi": "Chưa có lịch đo.", "en": "No test planned."},
    "conn.budget": {"vi": "Dữ liệu tháng {month}", "en": "Data in {month}"},
    "conn.budget_used": {"vi": "{used} / {limit} ({n} lần đo)", "en": "{used} / {limit} ({n} tests)"},
    "conn.chart_speed": {"vi": "Tốc độ mỗi lần đo", "en": "Speed per test"},
    "conn.chart_ping": {"vi": "Độ trễ", "en": "Latency"},
    "conn.chart_uptime": {"vi": "Thời gian có kết nối mỗi ngày (trong nước, quốc tế)",
                          "en": "Connected per day (domestic, international)"},
    "conn.down": {"vi": "tải xuống", "en": "download"},
    "conn.up": {"vi": "tải lên", "en": "upload"},
    "conn.line_contract": {"vi": "hợp đồng", "en": "contract"},
    "conn.line_good": {"vi": "chuẩn {n} Mbit/s", "en": "good {n} Mbit/s"},
    "conn.line_bad": {"vi": "tối thiểu {n} Mbit/s", "en": "minimum {n} Mbit/s"},
    "conn.days": {"vi": "{n} ngày", "en": "{n} days"},
    "conn.tests": {"vi": "Các lần đo gần đây", "en": "Recent tests"},
    "conn.tests_none": {"vi": "Chưa có lần đo nào trong khoảng này.", "en": "No test in this period."},
    "conn.col_time": {"vi": "Thời điểm", "en": "When"},
    "conn.col_result": {"vi": "Kết quả", "en": "Result"},
    "conn.col_down": {"vi": "Tải xuống", "en": "Download"},
    "conn.col_up": {"vi": "Tải lên", "en": "Upload"},
    "conn.col_ping": {"vi": "Độ trễ", "en": "Latency"},
    "conn.col_data": {"vi": "Dữ liệu", "en": "Data"},
    "conn.col_device": {"vi": "Máy đo", "en": "Tested from"},
    "conn.ok": {"vi": "Thành công", "en": "Done"},
    "conn.failed": {"vi": "Thất bại", "en": "Failed"},
    "conn.refused": {"vi": "Không tính", "en": "Not counted"},
    "conn.wired": {"vi": "có dây", "en": "wired"},
    "conn.wifi": {"vi": "Wi-Fi", "en": "Wi-Fi"},
    "conn.isps": {"vi": "So sánh nhà mạng", "en": "ISPs compared"},
    "conn.link_types": {"vi": "Theo loại đường truyền", "en": "By link type"},
    "conn.by_status": {"vi": "Số trường theo trạng thái kết nối", "en": "Schools by connectivity status"},
    "conn.col_isp": {"vi": "Nhà mạng", "en": "ISP"},
    "conn.col_link": {"vi": "Loại đường truyền", "en": "Link type"},
    "conn.col_schools": {"vi": "Số trường", "en": "Schools"},
    "conn.col_tested": {"vi": "Có đo trong 7 ngày", "en": "Tested in 7 days"},
    "conn.col_down_med": {"vi": "Tải xuống (trung vị)", "en": "Download (median)"},
    "conn.col_up_med": {"vi": "Tải lên (trung vị)", "en": "Upload (median)"},
    "conn.col_meets": {"vi": "% trường Đạt", "en": "% meeting"},
    "conn.col_ping_med": {"vi": "Độ trễ (trung vị)", "en": "Latency (median)"},
    "conn.col_uptime_med": {"vi": "Có kết nối (trung vị)", "en": "Connected (median)"},
    "conn.col_below_contract": {"vi": "% dưới 80 % hợp đồng", "en": "% below 80 % of contract"},
    "conn.unknown_isp": {"vi": "Chưa rõ", "en": "Unknown"},
    "conn.isps_none": {"vi": "Chưa có trường nào.", "en": "No schools."},
    "conn.router_fields": {"vi": ROUTER_VI_CAP + ": trạng thái", "en": "Router: state"},
    "conn.interfaces": {"vi": "Các cổng", "en": "Interfaces"},
    "conn.if_name": {"vi": "Cổng", "en": "Interface"},
    "conn.if_speed": {"vi": "Tốc độ cổng", "en": "Speed"},
    "conn.gateway": {"vi": "Cổng mặc định (ping)", "en": "Gateway (ping)"},
    "conn.snmp": {"vi": "SNMP", "en": "SNMP"},
    "conn.firmware": {"vi": "Phần mềm", "en": "Firmware"},
    "conn.rebooted": {"vi": "vừa khởi động lại", "en": "just rebooted"},
    "conn.yes": {"vi": "có", "en": "yes"},
    "conn.of_contract": {"vi": "{pct} hợp đồng", "en": "{pct} of contract"},
    "conn.of_port": {"vi": "{pct} cổng {port}", "en": "{pct} of the {port} port"},
    "conn.evidence": {"vi": "Đạt chuẩn vì (tuần học gần nhất):",
                      "en": "Meets the baseline because (latest school week):"},
    "conn.evidence_some": {"vi": "Các tiêu chí đã đạt:", "en": "Criteria met:"},
    "overview.worst_by_conn": {"vi": "các trường chưa đạt chuẩn kết nối",
                               "en": "schools not meeting the connectivity baseline"},
    "conn.line_domestic": {"vi": "trong nước", "en": "domestic"},
    "conn.line_intl": {"vi": "quốc tế", "en": "international"},
    "conn.router_latest": {"vi": "Bản tin " + ROUTER_VI + " gần nhất: {time}",
                           "en": "Latest router report: {time}"},
    "conn.wan_chart": {"vi": "Lưu lượng WAN của " + ROUTER_VI,
                       "en": "The router's WAN traffic"},
    "conn.wan_in": {"vi": "Vào (tải xuống)", "en": "In (download)"},
    "conn.wan_out": {"vi": "Ra (tải lên)", "en": "Out (upload)"},
    "conn.wan_contract": {"vi": "Tốc độ hợp đồng", "en": "Contracted speed"},
    "conn.wan_note": {
        "vi": "Trung bình mỗi 5 phút (24 giờ) hoặc mỗi giờ (7 và 30 ngày) của các lần máy "
              "kiểm tra hỏi " + ROUTER_VI + " qua SNMP. Khoảng trống: " + ROUTER_VI + " không "
              "phản hồi hoặc chưa có số đếm (lần hỏi đầu, sau khi khởi động lại).",
        "en": "Mean per 5 minutes (24 h) or per hour (7 and 30 days) of the polling PC's "
              "SNMP polls. A gap: the router did not answer, or had no counters yet (first "
              "poll, after a reboot)."},
    "conn.router_state_chart": {"vi": ROUTER_VI_CAP + " phản hồi (ping hoặc SNMP)",
                                "en": "Router answering (ping or SNMP)"},
    "conn.router_state_up": {"vi": "1 = phản hồi, 0 = không", "en": "1 = answering, 0 = not"},
    "conn.test_now": {"vi": "Đo ngay", "en": "Test now"},
    "conn.test_now_held": {"vi": "Đang có lần đo trên máy {device}, đến {time}",
                           "en": "A test is running on {device}, until {time}"},
    "conn.testing": {"vi": "Đang đo trên máy {device}, kết quả trong khoảng {n} phút",
                     "en": "Testing on {device}; the result in about {n} minutes"},
    "conn.test_done": {"vi": "Đã có kết quả đo.", "en": "The result is in."},
    "conn.test_late": {"vi": "Chưa có kết quả: lượt đo đã hết hạn.",
                       "en": "No result: the test lease has expired."},
    "conn.no": {"vi": "không", "en": "no"},
}
