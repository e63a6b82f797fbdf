"""What people read, in Vietnamese first and English on request: the one vi/en text module.

- Languages: :data:`LANGS`, :func:`pick_lang` (``?lang=`` / ``Accept-Language``).
- Labels of codes (statuses, roles, school and unit levels): :func:`label`.
- Messages (errors, notes): :data:`MESSAGES`, :func:`message`.
- Vietnamese text: :func:`fold` (case and diacritics ignored, for search and codes) and
  :func:`sort_key` (Vietnamese alphabetical order: "Bảo Thắng" before "Bát Xát").
- Times: stored in UTC; :func:`iso_utc` and :func:`iso_local` render them
  (the province's zone, ``Asia/Ho_Chi_Minh`` by default), :func:`parse_time` reads them.

A table entry is ``{"vi": ..., "en": ...}``; a missing English text falls back to the
Vietnamese one, never to a key.
"""
import datetime as _dt
import functools
import unicodedata
from typing import Any, Dict, List, Mapping, Optional, Tuple

from zoneinfo import ZoneInfo

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

Texts = Mapping[str, Mapping[str, str]]

# --- labels of codes ------------------------------------------------------------------------

#: Status codes of devices and schools (Vietnamese first).
STATUS_LABELS: Dict[str, Dict[str, str]] = {
    "online": {"vi": "trực tuyến", "en": "online"},
    "offline": {"vi": "mất kết nối", "en": "offline"},
    "pending": {"vi": "chờ duyệt", "en": "pending approval"},
    "unknown": {"vi": "chưa có dữ liệu", "en": "no data yet"},
    "partial": {"vi": "mất kết nối một phần", "en": "partly offline"},
    #: a device offline outside its role's calendar window (a lab PC at night), or a school
    #: whose only silent devices are such
    "off_hours": {"vi": "ngoài giờ học", "en": "outside school hours"},
    "no_devices": {"vi": "chưa có thiết bị", "en": "no devices"},
    "revoked": {"vi": "đã thu hồi", "en": "revoked"},
    "active": {"vi": "đang hoạt động", "en": "active"},
    "not_evaluated": {"vi": "chưa đánh giá", "en": "not evaluated yet"},
    "meets": {"vi": "Đạt chuẩn", "en": "meets the baseline"},
    "below": {"vi": "Chưa đạt chuẩn", "en": "not meeting the baseline"},
    "retired": {"vi": "đã ngừng sử dụng", "en": "retired"},
}

#: The school router in Vietnamese: one term everywhere a person reads it. "router" is what
#: school IT teachers and Sở staff say and write (issue 8 quotes "mất kết nối
#: Internet/router"); "bộ định tuyến" is never used beside it. Texts that name the router
#: are written with these, so changing the term is one edit.
ROUTER_VI = "router"
ROUTER_VI_CAP = "Router"

#: What a school's state comes to, for its page: a router down is not "one PC off".
SCHOOL_CONDITION_LABELS: Dict[str, Dict[str, str]] = {
    "all_online": {"vi": "mọi thiết bị trực tuyến", "en": "every device online"},
    "router_down": {"vi": "mất kết nối Internet/" + ROUTER_VI, "en": "Internet/router down"},
    "some_devices_off": {"vi": "một số máy tắt", "en": "some devices off"},
    "all_offline": {"vi": "mọi thiết bị mất kết nối", "en": "every device offline"},
    "off_hours": {"vi": "ngoài giờ học", "en": "outside school hours"},
    "no_devices": {"vi": "chưa có thiết bị", "en": "no devices"},
}

#: Why a device went offline (devices.offline_reason).
OFFLINE_REASON_LABELS: Dict[str, Dict[str, str]] = {
    "shutdown": {"vi": "tắt máy", "en": "shut down"},
    "lost": {"vi": "mất kết nối đột ngột", "en": "connection lost"},
    "timeout": {"vi": "quá hạn không báo về", "en": "stopped reporting"},
    #: a school router: neither ping nor SNMP answered the agent that polls it
    "unreachable": {"vi": "không liên lạc được (ping và SNMP)", "en": "unreachable (ping and SNMP)"},
}

#: Column and card titles the pages show (one definition, vi and en).
FIELD_LABELS: Dict[str, Dict[str, str]] = {
    "last_seen": {"vi": "Báo về lần cuối", "en": "Last reported"},
    "status_since": {"vi": "Trạng thái từ", "en": "Status since"},
    "offline_since": {"vi": "Mất kết nối từ", "en": "Offline since"},
    "seen_24h": {"vi": "Thiết bị báo về trong 24 giờ", "en": "Devices heard in the last 24 h"},
    "offline_count": {"vi": "Số máy mất kết nối", "en": "Devices offline"},
    "online_pct": {"vi": "% thiết bị trực tuyến", "en": "% devices online"},
    "schools": {"vi": "Trường", "en": "Schools"},
    "devices": {"vi": "Thiết bị", "en": "Devices"},
    "area": {"vi": "Khu vực", "en": "Area"},
    "router": {"vi": ROUTER_VI_CAP, "en": "Router"},
    "room": {"vi": "Phòng", "en": "Room"},
    "os": {"vi": "Hệ điều hành", "en": "Operating system"},
    "worst_schools": {"vi": "Trường cần chú ý", "en": "Schools needing attention"},
    "trend_online": {"vi": "Thiết bị báo về mỗi ngày (30 ngày)",
                     "en": "Devices heard per day (30 days)"},
    "online_hourly": {"vi": "Thiết bị báo về mỗi giờ (7 ngày)",
                      "en": "Devices heard per hour (7 days)"},
    "status_history": {"vi": "Lịch sử trạng thái", "en": "Status history"},
    "messages_received": {"vi": "Bản tin đã nhận", "en": "Messages received"},
    "messages_lost": {"vi": "Bản tin bị mất", "en": "Messages lost"},
    "messages_duplicates": {"vi": "Bản tin trùng", "en": "Duplicate messages"},
}

#: The metrics of a device's series: name and unit, vi and en (units read the same).
SERIES_LABELS: Dict[str, Dict[str, str]] = {
    "cpu_pct": {"vi": "CPU đang dùng", "en": "CPU busy", "unit": "%"},
    "mem_pct": {"vi": "Bộ nhớ đang dùng", "en": "Memory in use", "unit": "%"},
    "swap_pct": {"vi": "Bộ nhớ swap đang dùng", "en": "Swap in use", "unit": "%"},
    "disk_pct": {"vi": "Ổ đĩa đầy nhất đã dùng", "en": "Fullest disk used", "unit": "%"},
    "temp": {"vi": "Nhiệt độ CPU cao nhất", "en": "Highest CPU temperature", "unit": "°C"},
    "rx": {"vi": "Mạng nhận", "en": "Network received", "unit": "B/s"},
    "tx": {"vi": "Mạng gửi", "en": "Network sent", "unit": "B/s"},
}

#: Device roles.
ROLE_LABELS: Dict[str, Dict[str, str]] = {
    "lab": {"vi": "máy phòng tin học", "en": "lab PC"},
    "office": {"vi": "máy văn phòng", "en": "office PC"},
    "server": {"vi": "máy chủ", "en": "server"},
    "router": {"vi": ROUTER_VI, "en": "router"},
}

#: School levels (cấp học) by code: the one definition (the registry's LEVELS derive from it).
SCHOOL_LEVELS: Dict[str, Dict[str, str]] = {
    "MN": {"vi": "Mầm non", "en": "Preschool"},
    "TH": {"vi": "Tiểu học", "en": "Primary"},
    "THCS": {"vi": "Trung học cơ sở", "en": "Lower secondary"},
    "THPT": {"vi": "Trung học phổ thông", "en": "Upper secondary"},
    "GDNN-GDTX": {"vi": "Giáo dục nghề nghiệp - Giáo dục thường xuyên",
                  "en": "Vocational / continuing education centre"},
    "LIEN-CAP": {"vi": "Liên cấp", "en": "Multi-level"},
}

#: Levels of school and organisation units (the unit levels are data; these are the usual).
LEVEL_LABELS: Dict[str, Dict[str, str]] = dict(SCHOOL_LEVELS, **{
    "province": {"vi": "Tỉnh / thành phố", "en": "Province"},
    "area": {"vi": "Khu vực", "en": "Area"},
})

# --- messages -------------------------------------------------------------------------------

#: Messages of the API (errors, notes), by code.
MESSAGES: Dict[str, Dict[str, str]] = {
    # `schoolmon-collector calendar check` (collector/cli.py)
    "calendar.file": {"vi": "Lịch học: {} (múi giờ {})", "en": "School calendar: {} (time zone {})"},
    "calendar.always": {"vi": "Luôn mở: mọi giờ đều là giờ học (không có gì ngoài giờ).",
                        "en": "Always open: every hour is school hours (nothing is off hours)."},
    "calendar.year": {"vi": "Năm học {}: {} → {}", "en": "School year {}: {} → {}"},
    "calendar.holidays": {"vi": "Ngày nghỉ:", "en": "Holidays and breaks:"},
    "calendar.school_only": {"vi": "học sinh nghỉ, văn phòng làm việc",
                             "en": "pupils off, offices open"},
    "calendar.overrides": {"vi": "Lịch riêng: {}", "en": "Overrides: {}"},
    "calendar.day": {"vi": "Ngày {} {}", "en": "Day {} {}"},
    "calendar.school_day": {"vi": "  Ngày học.", "en": "  A school day."},
    "calendar.no_school": {"vi": "  Không phải ngày học: {}.", "en": "  Not a school day: {}."},
    "calendar.no_lessons": {"vi": "không có giờ học ngày này", "en": "no lessons that day"},
    "calendar.closed": {"vi": "đóng", "en": "closed"},
    "calendar.bad_date": {"vi": "Ngày không hợp lệ (YYYY-MM-DD): {}",
                          "en": "Not a valid date (YYYY-MM-DD): {}"},
    "auth_required": {
        "vi": "Cần xác thực: gửi tiêu đề Authorization: Bearer <mã truy cập>.",
        "en": "Authentication required: send Authorization: Bearer <token>.",
    },
    "auth_invalid": {"vi": "Mã truy cập không hợp lệ.", "en": "The token is not valid."},
    "admin_required": {"vi": "Thao tác này cần quyền quản trị.",
                       "en": "This needs an admin token."},
    "school_not_found": {"vi": "Không tìm thấy trường.", "en": "School not found."},
    "device_not_found": {"vi": "Không tìm thấy thiết bị.", "en": "Device not found."},
    "not_found": {"vi": "Không tìm thấy đường dẫn này.", "en": "No such path."},
    "method_not_allowed": {"vi": "Đường dẫn này không nhận phương thức này.",
                           "en": "This path does not accept this method."},
    "http_error": {"vi": "Yêu cầu không được xử lý.", "en": "The request was not handled."},
    "invalid_request": {"vi": "Tham số không hợp lệ.", "en": "Invalid parameters."},
    "invalid_body": {"vi": "Nội dung gửi lên không đọc được (cần JSON hợp lệ).",
                     "en": "The request body cannot be read (valid JSON needed)."},
    "metric_unknown": {
        "vi": "Chỉ số không có trong dữ liệu lưu trữ của thiết bị.",
        "en": "The metric is not kept for this device.",
    },
    "bad_range": {
        "vi": "Khoảng thời gian không hợp lệ: 'from' phải trước 'to'.",
        "en": "Invalid time range: 'from' must be before 'to'.",
    },
    "range_too_long": {
        "vi": "Khoảng thời gian quá dài: tối đa 400 ngày mỗi lần.",
        "en": "The time range is too long: at most 400 days at once.",
    },
    "bad_time": {
        "vi": "Thời gian không hợp lệ: dùng ISO 8601 (ví dụ 2026-01-31T08:00:00Z) "
              "hoặc số giây Unix.",
        "en": "Invalid time: use ISO 8601 (e.g. 2026-01-31T08:00:00Z) or Unix seconds.",
    },
    "baseline_not_evaluated": {
        "vi": "Chưa đánh giá: bộ đánh giá chưa chạy lần nào.",
        "en": "Not evaluated yet: the evaluator has not run.",
    },
    "baselines_not_evaluated": {
        "vi": "Chưa đánh giá chuẩn ATTT và chuẩn kết nối: bộ đánh giá chưa chạy.",
        "en": "Neither the ATTT nor the connectivity baseline evaluated yet: the evaluators "
              "have not run.",
    },
    "connectivity_not_evaluated": {
        "vi": "Chưa đánh giá chuẩn kết nối: bộ đánh giá chưa chạy.",
        "en": "Connectivity not evaluated yet: the evaluator has not run.",
    },
    "attt_not_evaluated": {
        "vi": "Chưa đánh giá ATTT: bộ đánh giá chưa chạy.",
        "en": "ATTT not evaluated yet: the evaluator has not run.",
    },
    "dependency_down": {"vi": "Một thành phần phụ thuộc không sẵn sàng.",
                        "en": "A dependency is not ready."},
    # users, sessions, rights
    "login_failed": {"vi": "Sai tên đăng nhập hoặc mật khẩu.",
                     "en": "Wrong user name or password."},
    "login_rate_limited": {"vi": "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau.",
                           "en": "Too many failed logins. Please try again later."},
    "session_required": {"vi": "Chưa đăng nhập hoặc phiên đã hết hạn.",
                         "en": "Not logged in, or the session has expired."},
    "csrf_invalid": {"vi": "Thiếu hoặc sai mã chống giả mạo (X-CSRF-Token). Hãy tải lại trang.",
                     "en": "Missing or wrong anti-forgery token (X-CSRF-Token). Reload the page."},
    "forbidden_role": {"vi": "Vai trò của bạn không được phép thao tác này.",
                       "en": "Your role may not do this."},
    "not_available": {"vi": "Chức năng này chưa có trong phiên bản này.",
                      "en": "Not available in this version."},
    "user_name_invalid": {"vi": "Tên đăng nhập chỉ gồm chữ, số và . _ - @ (tối đa 64 ký tự).",
                          "en": "A user name has letters, digits and . _ - @ only (64 at most)."},
    "role_unknown": {"vi": "Vai trò không hợp lệ: so_admin, so_viewer, area_officer, school_tech.",
                     "en": "Unknown role: so_admin, so_viewer, area_officer, school_tech."},
    "units_required": {"vi": "Vai trò này cần ít nhất một đơn vị (--unit).",
                       "en": "This role needs at least one unit (--unit)."},
    "units_not_allowed": {"vi": "Vai trò cấp Sở xem cả tỉnh: không ghi đơn vị.",
                          "en": "A province-wide role takes no unit."},
    "unit_unknown": {"vi": "Không có đơn vị hay trường với mã này.",
                     "en": "No org unit or school has this code."},
    "unit_not_found": {"vi": "Không tìm thấy đơn vị.", "en": "Org unit not found."},
    "password_too_short": {"vi": "Mật khẩu quá ngắn (ít nhất 10 ký tự).",
                           "en": "The password is too short (10 characters at least)."},
    "user_exists": {"vi": "Đã có người dùng với tên này.", "en": "A user has this name already."},
    "user_unknown": {"vi": "Không có người dùng này.", "en": "No such user."},
    "user_disabled": {"vi": "Người dùng đã bị khóa.", "en": "The user is disabled."},
    "device_retired": {"vi": "Thiết bị đã ngừng sử dụng.", "en": "The device is retired."},
    # Đo ngay (connectivity/manual.py): the answer's "message" is the request's own sentence
    # (connectivity.text.REQUEST_TEXT); these name the codes
    "speedtest_held": {"vi": "Trường đang có một lần đo.", "en": "A test is already running."},
    "speedtest_budget": {"vi": "Đã hết hạn mức dữ liệu đo tháng này.",
                         "en": "This month's test data budget is used up."},
    "speedtest_no_device": {"vi": "Không có máy nào đang trực tuyến để đo.",
                            "en": "No device is online to test from."},
    "speedtest_rate_limited": {"vi": "Đã yêu cầu đo quá nhiều lần trong một giờ.",
                               "en": "Too many test requests in an hour."},
    "speedtest_unavailable": {"vi": "Chức năng đo ngay đang tắt.",
                              "en": "Testing now is turned off."},
    # alerts: acknowledgements and silences (collector/alerting/actions.py)
    "alert_not_found": {"vi": "Không tìm thấy cảnh báo.", "en": "Alert not found."},
    "comment_required": {"vi": "Cần ghi chú: ai đang xử lý và xử lý thế nào.",
                         "en": "A comment is needed: who is on it and what they do."},
    "comment_invalid": {"vi": "Ghi chú không hợp lệ (tối đa 1.000 ký tự).",
                        "en": "Invalid comment (1,000 characters at most)."},
    "alert_resolved": {"vi": "Cảnh báo đã kết thúc: không cần xác nhận nữa.",
                       "en": "The alert is resolved: nothing to acknowledge."},
    "alert_already_acked": {"vi": "Cảnh báo đã được xác nhận.",
                            "en": "The alert is already acknowledged."},
    "alert_not_acked": {"vi": "Cảnh báo chưa được xác nhận.",
                        "en": "The alert is not acknowledged."},
    "alert_changed": {"vi": "Cảnh báo vừa thay đổi. Hãy tải lại trang rồi thử lại.",
                      "en": "The alert has just changed. Reload the page and try again."},
    "silence_no_matcher": {
        "vi": "Cần ít nhất một điều kiện: quy tắc, trường, khu vực hoặc thiết bị.",
        "en": "At least one matcher is needed: rule, school, area or device."},
    "silence_matcher_invalid": {"vi": "Điều kiện tắt thông báo không hợp lệ.",
                                "en": "Invalid silence matcher."},
    "silence_outside_scope": {
        "vi": "Chỉ được tắt thông báo trong phạm vi đơn vị của bạn (ghi rõ trường hoặc "
              "khu vực của bạn).",
        "en": "You may silence only inside your units (name your school or area)."},
    "silence_kind_invalid": {"vi": "Loại không hợp lệ: silence hoặc maintenance.",
                             "en": "Invalid kind: silence or maintenance."},
    "silence_ends_before_start": {"vi": "Thời điểm kết thúc phải sau thời điểm bắt đầu.",
                                  "en": "The end must be after the start."},
    "silence_in_past": {"vi": "Thời điểm kết thúc đã qua.", "en": "The end is in the past."},
    "silence_too_long": {"vi": "Tắt thông báo tối đa 90 ngày mỗi lần.",
                         "en": "A silence lasts 90 days at most."},
    "silence_not_found": {"vi": "Không tìm thấy lần tắt thông báo này.",
                          "en": "Silence not found."},
    "silence_deleted": {"vi": "Lần tắt thông báo này đã được xóa.",
                        "en": "This silence is already deleted."},
}

# --- ATTT security posture -------------------------------------------------------------

#: A school's ATTT status (``collector/posture``), Vietnamese first.
ATTT_STATUS_LABELS: Dict[str, Dict[str, str]] = {
    "meets": {"vi": "Đạt", "en": "Meets the baseline"},
    "improve": {"vi": "Cần cải thiện", "en": "Needs improvement"},
    "below": {"vi": "Không đạt", "en": "Fails the baseline"},
    "insufficient": {"vi": "Không đủ dữ liệu", "en": "Not enough data"},
    "no_pcs": {"vi": "Không có máy tính", "en": "No PCs"},
    "not_evaluated": {"vi": "Chưa đánh giá", "en": "Not evaluated yet"},
}

#: Why a school is among those needing attention first (the overview), most urgent first.
ATTENTION_LABELS: Dict[str, Dict[str, str]] = {
    "offline": {"vi": "Cả trường mất kết nối", "en": "The whole school is offline"},
    "partial": {"vi": "Một số máy mất kết nối", "en": "Some devices offline"},
    "link_below": {"vi": "Kết nối Internet: Không đạt", "en": "Internet link: fails the baseline"},
    "attt_below": {"vi": "ATTT: Không đạt", "en": "ATTT: fails the baseline"},
    "attt_insufficient": {"vi": "ATTT: Không đủ dữ liệu", "en": "ATTT: not enough data"},
    "attt_improve": {"vi": "ATTT: Cần cải thiện", "en": "ATTT: needs improvement"},
    "link_improve": {"vi": "Kết nối Internet: Cần cải thiện",
                     "en": "Internet link: needs improvement"},
}

#: A check's state on one PC.
CHECK_STATE_LABELS: Dict[str, Dict[str, str]] = {
    "pass": {"vi": "Đạt", "en": "Pass"},
    "warn": {"vi": "Cảnh báo", "en": "Warning"},
    "fail": {"vi": "Không đạt", "en": "Fail"},
    "unknown": {"vi": "Không xác định", "en": "Unknown"},
    "na": {"vi": "Không áp dụng", "en": "Not applicable"},
}

#: Severity of a baseline check.
SEVERITY_LABELS: Dict[str, Dict[str, str]] = {
    "critical": {"vi": "Nghiêm trọng", "en": "Critical"},
    "high": {"vi": "Cao", "en": "High"},
    "medium": {"vi": "Trung bình", "en": "Medium"},
    "low": {"vi": "Thấp", "en": "Low"},
}

#: Severity of an alert (alerts.severity; users.notify_min_severity), least first.
ALERT_SEVERITY_LABELS: Dict[str, Dict[str, str]] = {
    "info": {"vi": "Thông tin", "en": "Info"},
    "warning": {"vi": "Cảnh báo", "en": "Warning"},
    "critical": {"vi": "Nghiêm trọng", "en": "Critical"},
}

#: The school rule's gates.
GATE_LABELS: Dict[str, Dict[str, str]] = {
    "coverage": {"vi": "Máy gửi báo cáo ATTT trong {days} ngày",
                 "en": "PCs that sent a security report within {days} days"},
    "office_critical": {"vi": "Máy văn phòng đạt mọi tiêu chí nghiêm trọng",
                        "en": "Office PCs passing every critical check"},
    "all_critical": {"vi": "Mọi máy đạt mọi tiêu chí nghiêm trọng",
                     "en": "All PCs passing every critical check"},
    "critical_high": {"vi": "Máy đạt mọi tiêu chí nghiêm trọng và cao",
                      "en": "PCs passing every critical and high check"},
}

#: A device's ATTT summary in the lists (``posture.rules.device_summary``): "required" are
#: the critical and high checks the school rule counts; medium and low checks never change
#: a school's status, so a PC failing only those is not shown as failing.
DEVICE_SUMMARY_LABELS: Dict[str, Dict[str, str]] = {
    "fail": {"vi": "Không đạt {n} tiêu chí bắt buộc", "en": "Fails {n} required check(s)"},
    "unknown": {"vi": "Chưa xác định {n} tiêu chí bắt buộc",
                "en": "{n} required check(s) unknown"},
    "findings": {"vi": "Đạt tiêu chí bắt buộc", "en": "Passes the required checks"},
    "pass": {"vi": "Đạt mọi tiêu chí", "en": "Passes every check"},
    "na": {"vi": "Không áp dụng", "en": "Not applicable"},
    # the medium / low findings after "findings" (joined with " · ")
    "other_fail": {"vi": "{n} tiêu chí cần khắc phục", "en": "{n} to fix"},
    "other_unknown": {"vi": "{n} tiêu chí chưa xác định", "en": "{n} unknown"},
}

#: A device's OS support status (the OS support table).
OS_SUPPORT_LABELS: Dict[str, Dict[str, str]] = {
    "supported": {"vi": "còn hỗ trợ", "en": "supported"},
    "esu": {"vi": "hỗ trợ mở rộng (ESU)", "en": "extended security updates (ESU)"},
    "unsupported": {"vi": "hết hỗ trợ", "en": "out of support"},
    "unknown": {"vi": "không xác định", "en": "unknown"},
}

#: OS families (a check's ``os``, the security message's ``os_family``).
OS_FAMILY_LABELS: Dict[str, Dict[str, str]] = {
    "windows": {"vi": "Windows", "en": "Windows"},
    "linux": {"vi": "Linux", "en": "Linux"},
    "other": {"vi": "hệ điều hành khác", "en": "other operating systems"},
}

#: A device's OS support in one phrase ({end}: the vendor's last day, as the reader writes
#: dates): "hết hỗ trợ từ 14/01/2020", "được hỗ trợ đến 30/06/2028".
OS_SUPPORT_SENTENCES: Dict[str, Dict[str, str]] = {
    "supported": {"vi": "được hỗ trợ đến {end}", "en": "supported until {end}"},
    "esu": {"vi": "được hỗ trợ mở rộng (ESU) đến {end}",
            "en": "on extended security updates (ESU) until {end}"},
    "unsupported": {"vi": "hết hỗ trợ từ {end}", "en": "out of support since {end}"},
    "unknown_end": {"vi": "không xác định: hết hỗ trợ chuẩn từ {end}, máy chưa báo có gói ESU "
                          "hay không",
                    "en": "unknown: standard support ended {end}; the PC did not say whether "
                          "it has ESU"},
    "unknown": {"vi": "không xác định (hệ điều hành không có trong bảng hỗ trợ)",
                "en": "unknown (the OS is not in the support table)"},
}

#: What a fact is, in the reader's words, for "could not be determined": every field the
#: shipped checks read or show (a field without a label is named by its id).
FACT_LABELS: Dict[str, Dict[str, str]] = {
    "os_supported": {"vi": "hệ điều hành còn được hãng hỗ trợ hay không",
                     "en": "whether the OS is still supported"},
    "os_support_status": {"vi": "tình trạng hỗ trợ của hệ điều hành",
                          "en": "the OS support status"},
    "os_end": {"vi": "ngày hết hỗ trợ của hệ điều hành", "en": "the OS end-of-support date"},
    "esu": {"vi": "gói cập nhật bảo mật mở rộng (ESU)", "en": "the ESU licence"},
    "av_on": {"vi": "trạng thái phần mềm diệt virus", "en": "the antivirus status"},
    "av_name": {"vi": "tên phần mềm diệt virus", "en": "the antivirus product"},
    "av_sig_age_d": {"vi": "tuổi của mẫu nhận diện mã độc", "en": "the signature age"},
    "av_managed": {"vi": "phần mềm diệt virus có được quản lý tập trung hay không",
                   "en": "whether the antivirus is centrally managed"},
    "patch_last_ts": {"vi": "ngày cài bản cập nhật gần nhất",
                      "en": "when the last update was installed"},
    "auto_update": {"vi": "chế độ tự động cập nhật", "en": "the automatic update setting"},
    "auto_update_detail": {"vi": "thiết lập tự động cập nhật",
                           "en": "the automatic update setting"},
    "fw_on": {"vi": "trạng thái tường lửa", "en": "the firewall state"},
    "smb1_server": {"vi": "SMBv1 phía máy chủ", "en": "the SMBv1 server setting"},
    "smb1_client": {"vi": "SMBv1 phía máy khách", "en": "the SMBv1 client setting"},
    "guest_on": {"vi": "trạng thái tài khoản Guest", "en": "the Guest account"},
    "admin_builtin_on": {"vi": "trạng thái tài khoản Administrator mặc định",
                         "en": "the built-in Administrator account"},
    "rdp_on": {"vi": "trạng thái Remote Desktop", "en": "whether Remote Desktop is on"},
    "rdp_nla": {"vi": "yêu cầu NLA của Remote Desktop",
                "en": "whether Remote Desktop requires NLA"},
    "autorun_off": {"vi": "thiết lập AutoRun/AutoPlay", "en": "the AutoRun/AutoPlay setting"},
    "autorun_detail": {"vi": "thiết lập AutoRun/AutoPlay", "en": "the AutoRun/AutoPlay setting"},
    "lock_s": {"vi": "thời gian chờ khóa màn hình", "en": "the screen-lock timeout"},
    "frozen": {"vi": "trạng thái phần mềm đóng băng", "en": "the reboot-restore state"},
}

#: Reasons the agent gives for an unknown fact (English, free text), the well-known ones
#: in the reader's words: (words found in the reason, case ignored; its words; the hint
#: of UNKNOWN_HINTS). The first that matches wins; the agent's own words are shown beside
#: as the PC's technical detail (docs/attt.md).
AGENT_REASONS: Tuple[Tuple[Tuple[str, ...], Dict[str, str], str], ...] = (
    (("access denied", "access is denied", "permission denied", "not permitted"),
     {"vi": "agent không đủ quyền đọc", "en": "the agent may not read it"}, "admin"),
    (("needs root",), {"vi": "cần quyền root", "en": "needs root"}, "admin"),
    (("no user logged on",), {"vi": "không có người dùng nào đăng nhập",
                              "en": "no user logged on"}, "logged_on"),
    (("not in security center",),
     {"vi": "phần mềm diệt virus không đăng ký với Windows Security Center nên không đọc "
            "được trạng thái bảo vệ",
      "en": "the antivirus does not register with Windows Security Center, so its "
            "protection cannot be read"}, "av_unregistered"),
    (("first search still running", "first search not started"),
     {"vi": "Windows Update chưa tìm xong bản cập nhật lần đầu",
      "en": "Windows Update has not finished its first search"}, "wait"),
    (("timeout", "timed out"), {"vi": "lệnh kiểm tra quá thời gian chờ",
                                "en": "the check timed out"}, "timeout"),
    (("not an apt system",), {"vi": "không phải hệ thống dùng apt (Debian/Ubuntu)",
                              "en": "not an apt system (Debian/Ubuntu)"}, "agent"),
    (("not installed",), {"vi": "chưa cài đặt", "en": "not installed"}, "agent"),
    (("command not found",), {"vi": "thiếu lệnh kiểm tra trên máy",
                              "en": "a command is missing on the PC"}, "agent"),
    (("not understood", "not readable"), {"vi": "không đọc được kết quả kiểm tra",
                                          "en": "the answer could not be read"}, "agent"),
)

#: What to do about an unknown check (instead of the failure's remedy): by why it is unknown.
UNKNOWN_HINTS: Dict[str, Dict[str, str]] = {
    "no_report": {"vi": "Kiểm tra phiên bản agent trên máy (cần bản có báo cáo ATTT: "
                        "schoolmon-agent 0.1.0 trở lên) và agent đang chạy. Lần quét đầu khoảng "
                        "2 phút sau khi agent khởi động, sau đó 6 giờ một lần.",
                  "en": "Check the agent's version on the PC (it needs one with the security "
                        "report: schoolmon-agent 0.1.0 or later) and that it runs. The first "
                        "scan comes about 2 minutes after the agent starts, then every 6 hours."},
    "stale": {"vi": "Bật máy và kiểm tra agent đang chạy và kết nối được về Sở; máy gửi lại "
                    "báo cáo ở lần quét tiếp theo (khoảng 2 phút sau khi agent khởi động).",
              "en": "Switch the PC on and check that the agent runs and reaches the Sở; it "
                    "reports again at its next scan (about 2 minutes after the agent starts)."},
    "admin": {"vi": "Chạy agent với quyền quản trị: trên Windows là dịch vụ chạy bằng tài khoản "
                    "LocalSystem, trên Linux là dịch vụ chạy bằng root (cài lại theo hướng dẫn "
                    "cài agent).",
              "en": "Run the agent with administrator rights: on Windows the service runs as "
                    "LocalSystem, on Linux as root (reinstall it as the agent's guide says)."},
    "logged_on": {"vi": "Chỉ đọc được khi có người dùng đăng nhập: đặt thời gian khóa màn hình "
                        "bằng chính sách máy (Group Policy) để agent luôn đọc được.",
                  "en": "Readable only while a user is logged on: set the screen lock by "
                        "machine policy (Group Policy) so the agent can always read it."},
    "av_unregistered": {"vi": "Xem trực tiếp trên máy (hoặc trên máy chủ quản trị của hãng) "
                              "phần mềm diệt virus có đang bảo vệ thời gian thực không; nên "
                              "dùng phần mềm có đăng ký với Windows Security Center.",
                        "en": "Check on the PC (or the vendor's console) that the antivirus "
                              "protects in real time; prefer one that registers with Windows "
                              "Security Center."},
    "wait": {"vi": "Đợi lần quét sau (6 giờ một lần); nếu vẫn không xác định, kiểm tra Windows "
                   "Update trên máy có chạy được không.",
             "en": "Wait for the next scan (every 6 hours); if it stays unknown, check that "
                   "Windows Update works on the PC."},
    "timeout": {"vi": "Lệnh kiểm tra quá lâu: kiểm tra máy có quá tải hoặc treo dịch vụ "
                      "không; agent thử lại ở lần quét sau (6 giờ một lần).",
                "en": "The check took too long: see whether the PC is overloaded or a service "
                      "hangs; the agent tries again at its next scan (every 6 hours)."},
    "os_table": {"vi": "Hệ điều hành này chưa có trong bảng hỗ trợ của hãng (os_support.toml): "
                       "báo cho Sở để bổ sung.",
                 "en": "This OS is not in the support table (os_support.toml): ask the Sở to "
                       "add it."},
    "agent": {"vi": "Cập nhật agent lên bản mới nhất; nếu vẫn không xác định, báo cho Sở kèm "
                    "chi tiết ở cột bằng chứng.",
              "en": "Update the agent to the latest version; if it stays unknown, tell the Sở "
                    "with the detail shown as evidence."},
}

#: Settings the agent reports as text (``auto_update_detail``, ``autorun_detail``): the
#: usual words in the reader's language; settings' own names (AUOptions=4) stay as they are.
AGENT_DETAIL_WORDS: Tuple[Tuple[str, Dict[str, str]], ...] = (
    ("unattended-upgrades not installed", {"vi": "chưa cài unattended-upgrades",
                                           "en": "unattended-upgrades not installed"}),
    ("no apt-daily-upgrade.timer", {"vi": "không có apt-daily-upgrade.timer",
                                    "en": "no apt-daily-upgrade.timer"}),
    ("timer enabled", {"vi": "timer đang bật", "en": "timer enabled"}),
    ("timer disabled", {"vi": "timer đang tắt", "en": "timer disabled"}),
    ("=unset", {"vi": " chưa đặt", "en": " not set"}),
    ("no policy (Windows default: automatic)",
     {"vi": "không có chính sách (mặc định của Windows: tự động)",
      "en": "no policy (Windows default: automatic)"}),
    ("wuauserv: Disabled", {"vi": "dịch vụ wuauserv bị tắt", "en": "wuauserv disabled"}),
    ("(policy)", {"vi": "(chính sách)", "en": "(policy)"}),
    ("(local)", {"vi": "(đặt trên máy)", "en": "(local)"}),
)

#: The evidence of a check's state when it was not judged on values ({name} filled in).
EVIDENCE_TEXTS: Dict[str, Dict[str, str]] = {
    "missing": {"vi": "không có", "en": "none"},
    "no_report": {"vi": "Máy chưa gửi báo cáo ATTT", "en": "No security report yet"},
    "stale": {"vi": "Máy không gửi báo cáo ATTT quá {days} ngày",
              "en": "No security report for more than {days} days"},
    "frozen": {"vi": "Máy có phần mềm đóng băng ({product}): mỗi lần khởi động lại mất bản "
                     "vá và mẫu nhận diện, không đánh giá",
               "en": "Reboot-restore software ({product}) is on: every restart undoes "
                     "updates and signatures, not judged"},
    "na_role": {"vi": "Không áp dụng cho {role}", "en": "Not for {role}s"},
    "na_os": {"vi": "Không áp dụng cho {os}", "en": "Not for {os}"},
    "na_if": {"vi": "Không áp dụng trên máy này", "en": "Does not apply on this PC"},
    "unknown": {"vi": "Không xác định được {field}", "en": "{field} could not be determined"},
    "unknown_reason": {"vi": "Không xác định được {field}: {reason}",
                       "en": "{field} could not be determined: {reason}"},
    "unknown_detail": {"vi": "Không xác định được {field} (chi tiết từ máy: {detail})",
                       "en": "{field} could not be determined (detail from the PC: {detail})"},
    "unknown_reason_detail": {"vi": "Không xác định được {field}: {reason} (chi tiết từ máy: "
                                    "{detail})",
                              "en": "{field} could not be determined: {reason} (detail from "
                                    "the PC: {detail})"},
    "bad_value": {"vi": "Giá trị không đọc được", "en": "A value could not be read"},
    "values": {"vi": "Giá trị: {values}", "en": "Values: {values}"},
    "os_unknown": {"vi": "hệ điều hành không có trong bảng hỗ trợ",
                   "en": "the OS is not in the support table"},
    "esu_unknown": {"vi": "đã qua ngày hết hỗ trợ chuẩn, máy chưa báo có gói ESU hay không",
                    "en": "past the standard end of support; the PC did not say whether it "
                          "has ESU"},
    "true": {"vi": "có", "en": "yes"},
    "false": {"vi": "không", "en": "no"},
    "unnamed": {"vi": "không rõ tên", "en": "unnamed"},
}

#: Roles of users (Vietnamese first).
USER_ROLE_LABELS: Dict[str, Dict[str, str]] = {
    "so_admin": {"vi": "Quản trị Sở", "en": "Sở administrator"},
    "so_viewer": {"vi": "Cán bộ Sở (chỉ xem)", "en": "Sở viewer"},
    "area_officer": {"vi": "Cán bộ khu vực", "en": "Area officer"},
    "school_tech": {"vi": "Cán bộ phụ trách tin học của trường", "en": "School technician"},
}

#: Actions of the audit log.
AUDIT_LABELS: Dict[str, Dict[str, str]] = {
    "login": {"vi": "Đăng nhập", "en": "Logged in"},
    "login_failed": {"vi": "Đăng nhập thất bại", "en": "Failed login"},
    "logout": {"vi": "Đăng xuất", "en": "Logged out"},
    "user_add": {"vi": "Thêm người dùng", "en": "Added a user"},
    "user_disable": {"vi": "Khóa người dùng", "en": "Disabled a user"},
    "token_create": {"vi": "Tạo mã truy cập cá nhân", "en": "Created a personal token"},
    "device_approve": {"vi": "Duyệt thiết bị", "en": "Approved a device"},
    "device_retire": {"vi": "Ngừng sử dụng thiết bị", "en": "Retired a device"},
    "device_move": {"vi": "Chuyển phòng thiết bị", "en": "Moved a device"},
    "school_approve": {"vi": "Duyệt mọi thiết bị chờ của trường",
                       "en": "Approved a school's pending devices"},
    "schools_import": {"vi": "Nhập danh sách trường", "en": "Imported schools"},
    "unit_rename": {"vi": "Đổi tên đơn vị", "en": "Renamed an org unit"},
    "unit_former": {"vi": "Đánh dấu đơn vị cũ", "en": "Marked an org unit former"},
    "speedtest_request": {"vi": "Yêu cầu đo tốc độ ngay", "en": "Asked for a speed test now"},
    "alert_ack": {"vi": "Xác nhận cảnh báo", "en": "Acknowledged an alert"},
    "alert_unack": {"vi": "Bỏ xác nhận cảnh báo", "en": "Took back an acknowledgement"},
    "silence_create": {"vi": "Tắt thông báo", "en": "Created a silence"},
    "silence_delete": {"vi": "Xóa lần tắt thông báo", "en": "Deleted a silence"},
}

#: Suffix of a former org unit's name (abolished by the 2025 reform).
FORMER_SUFFIX: Dict[str, str] = {"vi": " (cũ)", "en": " (former)"}

#: What a validation error says about one parameter, by pydantic error type (the English
#: is pydantic's own wording, kept for ``lang=en``); other types fall back to "invalid".
VALIDATION_MESSAGES: Dict[str, Dict[str, str]] = {
    "missing": {"vi": "Thiếu tham số bắt buộc.", "en": "Field required"},
    "int_parsing": {"vi": "Phải là một số nguyên.",
                    "en": "Input should be a valid integer"},
    "int_from_float": {"vi": "Phải là một số nguyên.",
                       "en": "Input should be a valid integer"},
    "bool_parsing": {"vi": "Phải là true hoặc false.", "en": "Input should be a valid boolean"},
    "greater_than_equal": {"vi": "Giá trị quá nhỏ.", "en": "Input is too small"},
    "less_than_equal": {"vi": "Giá trị quá lớn.", "en": "Input is too large"},
    "string_too_long": {"vi": "Chuỗi quá dài.", "en": "String is too long"},
    "literal_error": {"vi": "Không phải một trong các giá trị cho phép.",
                      "en": "Input is not one of the allowed values"},
    "enum": {"vi": "Không phải một trong các giá trị cho phép.",
             "en": "Input is not one of the allowed values"},
    "string_pattern_mismatch": {"vi": "Không đúng định dạng.",
                                "en": "String does not match the expected format"},
    "duplicate": {"vi": "Tham số chỉ được có một giá trị.", "en": "Given more than once"},
    "unknown_parameter": {"vi": "Đường dẫn này không có tham số này.",
                          "en": "This path has no such parameter"},
    "invalid": {"vi": "Giá trị không hợp lệ.", "en": "Invalid value"},
}


# --- the schools file import (``schools import``) ----------------------------------------
#: Column names shown in import messages: field -> {vi, en}.
IMPORT_COLUMN_LABELS: Dict[str, Dict[str, str]] = {
    "code": {"vi": "mã trường", "en": "code"},
    "name": {"vi": "tên trường", "en": "name"},
    "level": {"vi": "cấp học", "en": "level"},
    "area": {"vi": "xã/phường hoặc huyện", "en": "area"},
    "province": {"vi": "tỉnh", "en": "province"},
    "students": {"vi": "số học sinh", "en": "students"},
    "isp": {"vi": "nhà mạng", "en": "isp"},
    "link_type": {"vi": "loại kết nối", "en": "link_type"},
    "contracted_down_mbps": {"vi": "tốc độ tải xuống hợp đồng (Mbps)", "en": "contracted_down_mbps"},
    "contracted_up_mbps": {"vi": "tốc độ tải lên hợp đồng (Mbps)", "en": "contracted_up_mbps"},
    "address": {"vi": "địa chỉ", "en": "address"},
    "lat": {"vi": "vĩ độ", "en": "lat"},
    "lon": {"vi": "kinh độ", "en": "lon"},
    "contact_name": {"vi": "người liên hệ", "en": "contact_name"},
    "contact_phone": {"vi": "điện thoại", "en": "contact_phone"},
    "contact_email": {"vi": "email", "en": "contact_email"},
}

#: What the import says about a row or the file ({col}, {value}, ... filled in).
IMPORT_MESSAGES: Dict[str, Dict[str, str]] = {
    "missing_column": {"vi": "Thiếu cột bắt buộc “{col}”.",
                       "en": "Required column “{col}” is missing."},
    "duplicate_column": {"vi": "Cột “{col}” xuất hiện nhiều lần (“{value}”).",
                         "en": "Column “{col}” appears more than once (“{value}”)."},
    "empty": {"vi": "Ô “{col}” bắt buộc nhưng để trống.",
              "en": "Required cell “{col}” is empty."},
    "unknown_level": {"vi": "Cấp học “{value}” không hợp lệ; dùng một trong: {levels}.",
                      "en": "Unknown school level “{value}”; use one of: {levels}."},
    "duplicate_code": {"vi": "Mã trường “{value}” trùng với dòng {first}.",
                       "en": "School code “{value}” is also on row {first}."},
    "bad_code": {"vi": "Mã trường “{value}” chỉ được gồm chữ, số, “.”, “_”, “-” "
                       "(tối đa 64 ký tự).",
                 "en": "School code “{value}” may only hold letters, digits, “.”, “_”, “-” "
                       "(at most 64 characters)."},
    "bad_number": {"vi": "“{value}” ở cột “{col}” không phải là số.",
                   "en": "“{value}” in column “{col}” is not a number."},
    "not_integer": {"vi": "“{value}” ở cột “{col}” phải là số nguyên.",
                    "en": "“{value}” in column “{col}” must be a whole number."},
    "out_of_range": {"vi": "“{value}” ở cột “{col}” nằm ngoài khoảng {lo} – {hi}.",
                     "en": "“{value}” in column “{col}” is outside {lo} – {hi}."},
    "bad_email": {"vi": "“{value}” không phải là địa chỉ email hợp lệ.",
                  "en": "“{value}” is not a valid email address."},
    "too_long": {"vi": "Ô “{col}” dài quá {max} ký tự.",
                 "en": "Cell “{col}” is longer than {max} characters."},
    "no_rows": {"vi": "Tệp không có dòng dữ liệu nào.",
                "en": "The file has no data rows."},
    "no_header": {"vi": "Không tìm thấy dòng tiêu đề (cần các cột: mã trường, tên trường, "
                        "cấp học, xã/phường hoặc huyện, tỉnh).",
                   "en": "No header row found (columns needed: code, name, level, area, province)."},
    "ignored_column": {"vi": "Cột “{value}” không được dùng, bỏ qua.",
                       "en": "Column “{value}” is not used; ignored."},
    # the report's prefixes and last line
    "row": {"vi": "Dòng %d", "en": "Row %d"},
    "row_column": {"vi": ", cột “%s”", "en": ", column “%s”"},
    "summary_errors": {"vi": "Có %d lỗi: không ghi gì vào sổ trường (nhập tất cả hoặc không gì).",
                       "en": "%d error(s): nothing was written (all or nothing)."},
    "summary_dry_run": {"vi": "Kiểm tra xong (--dry-run, không ghi): %d dòng hợp lệ, sẽ thêm %d "
                              "trường, cập nhật %d.",
                        "en": "Checked (--dry-run, nothing written): %d valid rows; would add %d "
                              "schools and update %d."},
    "summary_written": {"vi": "Đã nhập %d dòng: thêm %d trường, cập nhật %d.",
                        "en": "Imported %d rows: %d schools added, %d updated."},
}


# --- the demo's console (both languages side by side: whoever runs it reads one) ------------

DEMO_TEXTS: Dict[str, str] = {
    "banner": ("\nschoolmon demo đang chạy / is running\n"
               "  Giao diện web / web UI:        %s/\n"
               "  API (OpenAPI):                 %s/docs\n"
               "  Đăng nhập demo / demo logins (chỉ dùng cho demo / demo only):\n"
               "    quản trị Sở / administrator:  %s / %s\n"
               "    kỹ thuật viên trường %s / school technician: %s / %s\n"
               "  Mã truy cập demo / demo token: %s   (admin token; chỉ dùng cho demo)\n"
               "  Ví dụ / e.g.: curl -H 'Authorization: Bearer %s' %s/api/v1/summary\n"
               "  Broker MQTT:                   %s (%s)\n"
               "  Tỉnh mô phỏng / simulated:     %d trường / schools, %d thiết bị / devices, "
               "%d khu vực / areas\n"
               "  Lịch sử / history:             %d ngày / days, %d + %d rollups (5 min + 1 h), "
               "%d sự kiện / events, %.1f s; ATTT: %d trường-ngày / school-days\n"
               "  Máy này / this machine:        %s\n"
               "  Dữ liệu / data:                %s\n"
               "Nhấn Ctrl-C để dừng / press Ctrl-C to stop.\n"),
    "fleet_after": ("Thiết bị sau %.0f giây / fleet after %.0f s: %d/%d thiết bị đã "
                    "báo về / devices reported, %d trực tuyến / online."),
    "not_connected": ("%s: collector chưa kết nối được broker %s / the collector is not "
                      "connected to the broker\n"),
    "stopping": "Đang dừng / stopping ...",
    "real_agent": "agent thật / real agent: %s (%s)",
    "mail_folder": ("  Thư cảnh báo / alert e-mails:  %s (mỗi thư một tệp .eml / one .eml file "
                    "each; SMTP %s, chỉ trên máy này / this machine only)\n"
                    "  Cảnh báo / alerts:             trang /alerts; GET /api/v1/alerts"),
    "mail_off": ("%s: không có aiosmtpd: thư cảnh báo nằm lại trong hàng đợi (trang /alerts "
                 "vẫn hiện mọi cảnh báo); cài bằng make venv\n"
                 "%s: aiosmtpd is not installed: alert e-mails stay in the outbox (the /alerts "
                 "page still shows every alert); make venv installs it\n"),
    "no_agent": "(không chạy agent / no agent)",
}


def pick_lang(query_lang: Optional[str], accept_language: Optional[str]) -> str:
    """``?lang=`` wins; else the first of vi/en in Accept-Language by weight; else vi."""
    if query_lang:
        low = query_lang.strip().lower()[:2]
        if low in LANGS:
            return low
    if accept_language:
        best, best_q = None, -1.0
        for i, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            primary = tag.strip().lower().split("-")[0]
            q = 1.0
            for p in params.split(";"):
                k, _, v = p.strip().partition("=")
                if k == "q":
                    try:
                        q = float(v)
                    except ValueError:
                        q = 0.0
            q -= i * 1e-6  # earlier entries win ties
            if primary in LANGS and q > best_q:
                best, best_q = primary, q
        if best and best_q > 0:
            return best
    return DEFAULT_LANG


def _pick(entry: Mapping[str, str], lang: str) -> str:
    return entry.get(lang) or entry[DEFAULT_LANG]


def message(code: str, lang: str) -> str:
    """The message ``code`` in ``lang`` (the code itself when there is none)."""
    entry = MESSAGES.get(code)
    return code if entry is None else _pick(entry, lang)


def baseline_note(attt_evaluated: bool, connectivity_evaluated: bool,
                  lang: str) -> Optional[str]:
    """``below_baseline.note``: which baseline is not evaluated yet; None once both are."""
    code = {(False, False): "baselines_not_evaluated", (True, False): "connectivity_not_evaluated",
            (False, True): "attt_not_evaluated"}.get((attt_evaluated, connectivity_evaluated))
    return None if code is None else message(code, lang)


def label(table: Texts, code: Optional[str], lang: str) -> Optional[str]:
    """The label of ``code`` in ``table`` (the code itself when the table has none)."""
    if code is None:
        return None
    entry = table.get(code)
    return code if entry is None else _pick(entry, lang)


def validation_message(error_type: str, lang: str) -> str:
    entry = VALIDATION_MESSAGES.get(error_type) or VALIDATION_MESSAGES["invalid"]
    return _pick(entry, lang)


# --- Vietnamese text ------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics (đ → d), spaces collapsed."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFD", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return " ".join(text.lower().split())


#: Marks that make a letter of its own in the Vietnamese alphabet (a ă â, o ô ơ, u ư, e ê),
#: ranked after the plain letter; the five tone marks only break ties (secondary order).
_LETTER_MARKS = {"\u0306": 1, "\u0302": 2, "\u031b": 3}  # breve, circumflex, horn
_TONE_MARKS = {"\u0300": 2, "\u0309": 3, "\u0303": 4, "\u0301": 5, "\u0323": 6}
#: Tone order: none, huyền (grave), hỏi (hook), ngã (tilde), sắc (acute), nặng (dot below).


@functools.lru_cache(maxsize=65536)  # the same few thousand names, sorted on every list
def sort_key(text: str) -> Tuple[str, str, str]:
    """Key for Vietnamese alphabetical order (a ă â b c d đ e ê ... o ô ơ ... u ư ...),
    case and tones as tie-breakers: ``sorted(names, key=sort_key)`` puts "Bảo Thắng" before
    "Bát Xát" and "Đồng" after every "D...". The key is three strings (letters, each as its
    base and a rank; tones; the text), which compare at C speed: lists of thousands of
    schools are sorted on every request."""
    letters: List[str] = []
    tones: List[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if ch in _LETTER_MARKS and letters:
            letters[-1] = letters[-1][0] + str(_LETTER_MARKS[ch])
        elif ch in _TONE_MARKS:
            if tones:
                tones[-1] = str(_TONE_MARKS[ch])
        elif unicodedata.category(ch) == "Mn":
            continue
        else:
            low = ch.lower()[:1] or ch
            letters.append("d9" if low == "đ" else low + "0")
            tones.append("1")
    return "".join(letters), "".join(tones), text


# --- times ----------------------------------------------------------------------------------

def to_datetime(value: Any) -> Optional[_dt.datetime]:
    """UTC epoch seconds, an aware datetime or a naive one (taken as UTC) → aware UTC."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=_dt.timezone.utc)
        return value.astimezone(_dt.timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _dt.datetime.fromtimestamp(float(value), _dt.timezone.utc)
    if isinstance(value, str):
        return parse_time(value)
    raise TypeError("not a time: %r" % (value,))


def parse_time(value: str) -> _dt.datetime:
    """ISO 8601 (``Z`` or an offset; naive taken as UTC) or Unix seconds → aware UTC.
    ValueError (or OverflowError/OSError for seconds out of range) when it is neither."""
    s = value.strip()
    if s.isascii():  # float() also reads "١٢" and "１２"; a time is written in ASCII
        try:
            return _dt.datetime.fromtimestamp(float(s), _dt.timezone.utc)
        except ValueError:
            pass
    else:
        raise ValueError("not a time: %r" % value)
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    d = _dt.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.astimezone(_dt.timezone.utc)


def iso_utc(value: Any) -> Optional[str]:
    """``2026-11-22T14:00:00Z`` (seconds; None stays None)."""
    d = to_datetime(value)
    if d is None:
        return None
    return d.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_local(value: Any, tz: str = DEFAULT_TIMEZONE) -> Optional[str]:
    """The same moment in the province's time zone, ISO 8601 with its offset
    (e.g. ``2026-11-22T21:00:00+07:00``)."""
    d = to_datetime(value)
    if d is None:
        return None
    return d.astimezone(ZoneInfo(tz)).replace(microsecond=0).isoformat()


def duration_words(seconds: float, lang: str) -> str:
    """How long, in words people read, the two largest units: ``2 giờ 5 phút`` /
    ``2 h 5 min``, ``3 ngày 4 giờ``; ``dưới 1 phút`` under a minute (alert texts, the
    digest)."""
    s = max(0, int(seconds))
    d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
    parts = []
    units = (("ngày", "d"), ("giờ", "h"), ("phút", "min"))
    for n, (vi, en) in zip((d, h, m), units):
        if n:
            parts.append("%d %s" % (n, vi if lang == "vi" else en))
    if not parts:
        return "dưới 1 phút" if lang == "vi" else "under a minute"
    return " ".join(parts[:2])


def local_short(value: Any, tz: str = DEFAULT_TIMEZONE) -> Optional[str]:
    """``02/12/2026 10:00``: day/month/year and hour:minute in the province's zone, as
    people here write a time in a message (None stays None)."""
    d = to_datetime(value)
    if d is None:
        return None
    return d.astimezone(ZoneInfo(tz)).strftime("%d/%m/%Y %H:%M")


def utc_offset(at: float, tz: str = DEFAULT_TIMEZONE) -> int:
    """The zone's offset from UTC at ``at`` (epoch s), in seconds: where local days start
    (Asia/Ho_Chi_Minh keeps +07:00 all year)."""
    off = _dt.datetime.fromtimestamp(at, ZoneInfo(tz)).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


# --- the web pages --------------------------------------------------------------------------

#: What the web pages say, by key (the pages' JavaScript reads these through ``/ui/texts.js``,
#: generated by :func:`page_texts`: one definition of every page string, here). ``{name}`` is
#: filled in by the page.
PAGE_TEXTS: Dict[str, Dict[str, str]] = {
    "app.title": {"vi": "schoolmon — Giám sát mạng trường học",
                  "en": "schoolmon — school network monitoring"},
    "app.subtitle": {"vi": "Giám sát máy tính và mạng trường học",
                     "en": "School computers and networks"},
    "nav.overview": {"vi": "Tổng quan", "en": "Overview"},
    "nav.schools": {"vi": "Trường học", "en": "Schools"},
    "nav.devices": {"vi": "Thiết bị", "en": "Devices"},
    "nav.users": {"vi": "Người dùng", "en": "Users"},
    "nav.audit": {"vi": "Nhật ký thao tác", "en": "Audit log"},
    "nav.logout": {"vi": "Đăng xuất", "en": "Log out"},
    "banner.unreachable": {
        "vi": "Không kết nối được máy chủ schoolmon. Số liệu bên dưới có thể đã cũ; "
              "trang sẽ tự cập nhật khi kết nối lại.",
        "en": "The schoolmon server cannot be reached. The figures below may be out of date; "
              "the page updates itself once it is back."},
    "login.title": {"vi": "Đăng nhập", "en": "Log in"},
    "login.name": {"vi": "Tên đăng nhập", "en": "User name"},
    "login.password": {"vi": "Mật khẩu", "en": "Password"},
    "login.submit": {"vi": "Đăng nhập", "en": "Log in"},
    "login.wrong": {"vi": "Tên đăng nhập hoặc mật khẩu không đúng.",
                    "en": "Wrong user name or password."},
    "login.too_many": {"vi": "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.",
                       "en": "Too many failed logins. Please try again in a few minutes."},
    "login.expired": {"vi": "Phiên đăng nhập đã hết hạn. Vui lòng đăng nhập lại.",
                      "en": "Your session has expired. Please log in again."},
    "login.bye": {"vi": "Bạn đã đăng xuất.", "en": "You have logged out."},
    "notfound.title": {"vi": "Không tìm thấy trang", "en": "Page not found"},
    "notfound.text": {"vi": "Địa chỉ này không có trong hệ thống, hoặc bạn không có quyền xem.",
                      "en": "This address does not exist, or you may not see it."},
    "notfound.area": {"vi": "Không tìm thấy khu vực.", "en": "Area not found."},
    "forbidden.title": {"vi": "Không có quyền xem trang này", "en": "Not for your role"},
    "notfound.home": {"vi": "Về trang tổng quan", "en": "Back to the overview"},
    "overview.updated": {"vi": "Cập nhật lúc {time} (giờ Việt Nam)",
                         "en": "Updated {time} (Vietnam time)"},
    "overview.schools": {"vi": "Trường học", "en": "Schools"},
    "overview.devices": {"vi": "Thiết bị", "en": "Devices"},
    "overview.areas": {"vi": "Theo khu vực", "en": "By area"},
    "overview.worst": {"vi": "Trường cần chú ý nhất", "en": "Schools needing attention first"},
    "overview.worst_none": {"vi": "Không có trường nào mất kết nối hoặc chưa đạt chuẩn ATTT.",
                            "en": "No school is offline or not meeting the ATTT baseline."},
    "col.reason": {"vi": "Lý do", "en": "Why"},
    "overview.worst_more": {"vi": "Còn {n} trường khác cần chú ý:",
                            "en": "{n} more schools need attention:"},
    "overview.worst_by_status": {"vi": "theo trạng thái kết nối",
                                 "en": "by connection status"},
    "overview.worst_by_attt": {"vi": "các trường chưa đạt chuẩn ATTT",
                               "en": "the schools not meeting the ATTT baseline"},
    "overview.all_schools": {"vi": "Xem tất cả {n} trường", "en": "See all {n} schools"},
    "overview.trend": {"vi": "Số thiết bị báo về mỗi ngày (30 ngày)",
                       "en": "Devices reporting each day (30 days)"},
    "overview.attt": {"vi": "An toàn thông tin (ATTT)", "en": "Security posture (ATTT)"},
    "overview.attt_not_evaluated": {
        "vi": "Chưa đánh giá ATTT: bộ đánh giá chưa chạy hoặc chưa có máy nào gửi báo cáo.",
        "en": "ATTT not evaluated yet: the evaluator has not run or no PC has reported."},
    "card.unsupported_os": {"vi": "Máy dùng hệ điều hành hết hỗ trợ",
                            "en": "PCs on an OS out of support"},
    "col.below_attt": {"vi": "Trường chưa đạt chuẩn ATTT",
                       "en": "Schools not meeting the ATTT baseline"},
    "col.attt": {"vi": "ATTT", "en": "ATTT"},
    "col.check": {"vi": "Tiêu chí", "en": "Check"},
    "col.evidence": {"vi": "Bằng chứng", "en": "Evidence"},
    "col.since": {"vi": "Từ lúc", "en": "Since"},
    "filter.attt": {"vi": "ATTT", "en": "ATTT"},
    "filter.attt_not_meeting": {"vi": "Chưa đạt chuẩn (mọi mức)",
                                "en": "Not meeting the baseline (any status)"},
    "filter.os_support": {"vi": "Hỗ trợ hệ điều hành", "en": "OS support"},
    "filter.attt_device": {"vi": "Tiêu chí ATTT", "en": "ATTT checks"},
    "filter.attt_device.fail": {"vi": "có tiêu chí không đạt", "en": "some check failing"},
    "filter.attt_device.unknown": {"vi": "có tiêu chí không xác định",
                                   "en": "some check unknown"},
    "filter.attt_device.pass": {"vi": "đạt mọi tiêu chí", "en": "passing every check"},
    "devices.unsupported_title": {"vi": "Máy dùng hệ điều hành hết hỗ trợ",
                                  "en": "PCs on an OS out of support"},
    "attt.title": {"vi": "An toàn thông tin (ATTT)", "en": "Security posture (ATTT)"},
    "attt.not_evaluated": {"vi": "Chưa đánh giá ATTT: bộ đánh giá chưa chạy.",
                           "en": "ATTT not evaluated yet: the evaluator has not run."},
    "attt.no_pcs": {"vi": "Trường chưa có máy tính được giám sát: không tính là chưa đạt chuẩn.",
                    "en": "No PCs monitored at this school: not counted as below."},
    "attt.since": {"vi": "Trạng thái này từ {time}", "en": "In this status since {time}"},
    "attt.since_first_school": {"vi": "Trạng thái này từ lần đánh giá đầu tiên, {time} (có thể "
                                      "đã từ trước)",
                                "en": "In this status since the first evaluation, {time} (it "
                                      "may have begun earlier)"},
    "attt.since_first": {"vi": "(lần đánh giá đầu tiên: có thể đã từ trước)",
                         "en": "(first evaluation: may have begun earlier)"},
    "attt.evaluated": {"vi": "đánh giá lúc {time}", "en": "evaluated {time}"},
    "attt.coverage": {"vi": "{reporting} / {pcs} máy gửi báo cáo ATTT trong {days} ngày ({pct})",
                      "en": "{reporting} of {pcs} PCs sent a security report within {days} "
                            "days ({pct})"},
    "attt.gates": {"vi": "Điều kiện đạt chuẩn", "en": "The school rule"},
    "attt.gate": {"vi": "Điều kiện", "en": "Gate"},
    "attt.gate_value": {"vi": "Hiện có", "en": "Now"},
    "attt.gate_threshold": {"vi": "Cần", "en": "Needed"},
    "attt.gate_ok": {"vi": "đạt", "en": "met"},
    "attt.gate_not_ok": {"vi": "chưa đạt", "en": "not met"},
    "attt.history": {"vi": "30 ngày qua", "en": "The last 30 days"},
    "attt.no_history": {"vi": "Chưa có lịch sử đánh giá.", "en": "No history yet."},
    "attt.checklist": {"vi": "Các tiêu chí", "en": "The checks"},
    "attt.devices_not_passing": {"vi": "Máy chưa đạt / chưa xác định ({n})",
                                 "en": "PCs not passing or unknown ({n})"},
    "attt.missing": {"vi": "Máy chưa gửi báo cáo ATTT trong {days} ngày ({n}):",
                     "en": "PCs without a security report within {days} days ({n}):"},
    "attt.missing_never": {"vi": "chưa gửi lần nào", "en": "never"},
    "attt.more_devices": {"vi": "… và {n} máy khác (xem danh sách thiết bị)",
                          "en": "… and {n} more (see the device list)"},
    "attt.hint": {"vi": "Cách khắc phục", "en": "What to do"},
    "attt.citation": {"vi": "Căn cứ", "en": "Based on"},
    "attt.findings": {"vi": "Kiểm tra an toàn thông tin", "en": "Security checks"},
    "attt.reported": {"vi": "· báo cáo ATTT lúc {time}", "en": "· security report of {time}"},
    "attt.stale": {"vi": "Máy không gửi báo cáo ATTT quá 7 ngày: mọi tiêu chí là "
                         "“không xác định”. Bật máy và kiểm tra agent đang chạy, kết nối được "
                         "về Sở.",
                   "en": "No security report for more than 7 days: every check is unknown. "
                         "Switch the PC on and check that the agent runs and reaches the Sở."},
    "attt.frozen": {"vi": "Máy được đóng băng bằng {product}: mỗi lần khởi động lại, bản vá và "
                          "mẫu nhận diện mã độc trở về như lúc đóng băng, nên các tiêu chí "
                          "{checks} không được đánh giá trên máy này.",
                    "en": "This PC is frozen by {product}: every restart undoes updates and "
                          "signatures, so the checks {checks} are not judged on it."},
    "attt.no_report": {"vi": "Máy chưa gửi báo cáo ATTT. Cần agent có phần ATTT "
                             "(schoolmon-agent 0.1.0 trở lên; agent cũ chỉ gửi tình trạng và "
                             "cấu hình): lần quét đầu chạy 2 phút sau khi agent khởi động, sau "
                             "đó 6 giờ một lần (mặc định) — hãy để máy bật vài phút.",
                       "en": "No security report from this PC yet. It needs an agent with the "
                             "security family (schoolmon-agent 0.1.0 or later; an older agent "
                             "sends health and inventory only): the first scan runs 2 minutes "
                             "after the agent starts, then every 6 hours (the defaults) — leave "
                             "the PC on for a few minutes."},
    "attt.unknown_note": {"vi": "“Không xác định”: agent không đọc được thông tin đó trên máy "
                                "(lý do ở cột Bằng chứng), không bao giờ tính là Đạt. Khắc phục "
                                "lý do rồi chờ lần quét sau (tối đa 6 giờ, hoặc 2 phút sau khi "
                                "khởi động lại dịch vụ agent).",
                          "en": "“Unknown”: the agent could not read that fact on this PC (the "
                                "reason is in the Evidence column); it never counts as a pass. "
                                "Fix the reason, then wait for the next scan (6 hours at most, "
                                "or 2 minutes after restarting the agent's service)."},
    "attt.never_reported": {"vi": "Máy chưa gửi báo cáo ATTT: kiểm tra phiên bản agent (cần bản "
                                  "có báo cáo ATTT, schoolmon-agent 0.1.0 trở lên — agent cũ chỉ "
                                  "gửi tình trạng và cấu hình) và agent đang chạy. Lần quét đầu "
                                  "khoảng 2 phút sau khi agent khởi động, sau đó 6 giờ một lần; "
                                  "đến lúc đó mọi tiêu chí là “không xác định”.",
                            "en": "This PC has never sent a security report: check the "
                                  "agent's version (it needs one with the security report, "
                                  "schoolmon-agent 0.1.0 or later — an older agent sends health "
                                  "and inventory only) and that it runs. The first scan comes "
                                  "about 2 minutes after the agent starts, then every 6 hours; "
                                  "until then every check is unknown."},
    "attt.router": {"vi": "Chuẩn ATTT của máy tính không áp dụng cho " + ROUTER_VI + ": "
                          "chỉ máy tính (máy phòng tin học, máy văn phòng, máy chủ) được đánh "
                          "giá.",
                    "en": "The ATTT baseline for PCs does not apply to routers: only PCs (lab "
                          "PCs, office PCs, servers) are judged."},
    "attt.not_applicable": {"vi": "Không có tiêu chí ATTT nào áp dụng cho thiết bị này.",
                            "en": "No ATTT check applies to this device."},
    "attt.os_support": {"vi": "Hỗ trợ của hãng", "en": "Vendor support"},
    "attt.failing": {"vi": "{n} không đạt", "en": "{n} failing"},
    "card.schools": {"vi": "Tổng số trường", "en": "Schools"},
    "card.devices": {"vi": "Tổng số thiết bị", "en": "Devices"},
    "card.seen_24h": {"vi": "Báo về trong 24 giờ", "en": "Reported in 24 h"},
    "card.below_connectivity": {"vi": "Chưa đạt chuẩn kết nối",
                                "en": "Not meeting the connectivity baseline"},
    "card.below_security": {"vi": "Chưa đạt chuẩn ATTT",
                            "en": "Not meeting the security baseline"},
    "areas.none": {"vi": "Chưa có khu vực nào.", "en": "No areas yet."},
    "col.status": {"vi": "Trạng thái", "en": "Status"},
    "col.school": {"vi": "Trường", "en": "School"},
    "col.school_code": {"vi": "Mã trường", "en": "School code"},
    "col.code": {"vi": "Mã trường", "en": "Code"},
    "col.area": {"vi": "Khu vực", "en": "Area"},
    "col.level": {"vi": "Cấp học", "en": "Level"},
    "col.isp": {"vi": "Nhà mạng", "en": "ISP"},
    "col.link_type": {"vi": "Loại kết nối", "en": "Link type"},
    "col.schools": {"vi": "Số trường", "en": "Schools"},
    "col.pct_online": {"vi": "% thiết bị trực tuyến", "en": "% devices online"},
    "col.schools_offline": {"vi": "Trường mất kết nối", "en": "Schools offline"},
    "col.schools_partial": {"vi": "Trường mất kết nối một phần", "en": "Schools partly offline"},
    "col.devices_offline": {"vi": "Thiết bị mất kết nối", "en": "Devices offline"},
    "col.offline_count": {"vi": "Số máy mất kết nối", "en": "Devices offline"},
    "col.devices": {"vi": "Thiết bị", "en": "Devices"},
    "col.router": {"vi": ROUTER_VI_CAP, "en": "Router"},
    "col.last_seen": {"vi": "Báo về lần cuối", "en": "Last reported"},
    "col.device": {"vi": "Thiết bị", "en": "Device"},
    "col.role": {"vi": "Loại máy", "en": "Role"},
    "col.room": {"vi": "Phòng", "en": "Room"},
    "col.offline_since": {"vi": "Mất kết nối từ", "en": "Offline since"},
    "col.os": {"vi": "Hệ điều hành", "en": "OS"},
    "col.ram": {"vi": "RAM", "en": "RAM"},
    "col.disk": {"vi": "Ổ đĩa", "en": "Disk"},
    "col.state": {"vi": "Duyệt", "en": "Approval"},
    "col.user": {"vi": "Người dùng", "en": "User"},
    "col.units": {"vi": "Phạm vi", "en": "Units"},
    "col.actions": {"vi": "Thao tác", "en": "Actions"},
    "filter.all": {"vi": "Tất cả", "en": "All"},
    "filter.q": {"vi": "Tìm trường", "en": "Find a school"},
    "filter.q_hint": {"vi": "Mã, tên hoặc viết tắt (TH Kim Đồng)",
                      "en": "Code, name or abbreviation (TH Kim Đồng)"},
    "filter.offline_days": {"vi": "Mất kết nối quá (ngày)", "en": "Offline more than (days)"},
    "filter.disk_over": {"vi": "Ổ đĩa đầy trên (%)", "en": "Disk over (%)"},
    "filter.seen_hours": {"vi": "Báo về trong (giờ)", "en": "Reported within (hours)"},
    "sort.by": {"vi": "Sắp xếp theo:", "en": "Sort by:"},
    "filter.clear": {"vi": "Bỏ mọi bộ lọc", "en": "Clear the filters"},
    "devices.seen_title": {"vi": "Thiết bị báo về trong {n} giờ qua",
                           "en": "Devices reported in the last {n} hours"},
    "schools.none": {"vi": "Không có trường nào.", "en": "No schools."},
    "schools.in_area": {"vi": "Trường học — {area}", "en": "Schools — {area}"},
    "devices.none": {"vi": "Không có thiết bị nào.", "en": "No devices."},
    "pager.prev": {"vi": "Trước", "en": "Previous"},
    "pager.next": {"vi": "Sau", "en": "Next"},
    "pager.schools": {"vi": "Trang {page} / {pages} · {total} trường",
                      "en": "Page {page} of {pages} · {total} schools"},
    "pager.devices": {"vi": "Trang {page} / {pages} · {total} thiết bị",
                      "en": "Page {page} of {pages} · {total} devices"},
    "pager.entries": {"vi": "Trang {page} / {pages} · {total} mục",
                      "en": "Page {page} of {pages} · {total} entries"},
    "school.registry": {"vi": "Thông tin trường", "en": "Registry"},
    "school.contact": {"vi": "Liên hệ", "en": "Contact"},
    "school.address": {"vi": "Địa chỉ", "en": "Address"},
    "school.students": {"vi": "Số học sinh", "en": "Students"},
    "school.contract": {"vi": "Băng thông hợp đồng (tải xuống / tải lên)",
                        "en": "Contracted speed (down / up)"},
    "school.contact_name": {"vi": "Cán bộ phụ trách", "en": "Contact person"},
    "school.contact_phone": {"vi": "Điện thoại", "en": "Phone"},
    "school.contact_email": {"vi": "Thư điện tử", "en": "E-mail"},
    "school.counts": {"vi": "{total} thiết bị: {online} trực tuyến, {offline} mất kết nối, "
                            "{pending} chờ duyệt",
                      "en": "{total} devices: {online} online, {offline} offline, "
                            "{pending} pending approval"},
    "school.counts_off_hours": {"vi": "{n} ngoài giờ học", "en": "{n} outside school hours"},
    "school.router": {"vi": ROUTER_VI_CAP + " (đường truyền Internet của trường)",
                      "en": "Router (the school's Internet link)"},
    "school.no_router": {"vi": "Trường chưa có " + ROUTER_VI + " được giám sát.",
                         "en": "No router of this school is monitored."},
    "school.router_down": {"vi": "mất kết nối Internet/" + ROUTER_VI + " từ {since}",
                           "en": "Internet/router down since {since}"},
    "school.devices": {"vi": "Máy tính của trường", "en": "The school's computers"},
    "school.all_devices": {"vi": "Lọc danh sách thiết bị của trường", "en": "Filter this school's devices"},
    "school.chart_7d": {"vi": "Số thiết bị báo về mỗi giờ (7 ngày)",
                        "en": "Devices reporting each hour (7 days)"},
    "school.approve_all": {"vi": "Duyệt tất cả {n} thiết bị chờ duyệt",
                           "en": "Approve all {n} pending devices"},
    "school.approve_all_confirm": {"vi": "Duyệt {n} thiết bị chờ duyệt của {school}?",
                                   "en": "Approve the {n} pending devices of {school}?"},
    "device.inventory": {"vi": "Cấu hình", "en": "Inventory"},
    "device.router_title": {"vi": ROUTER_VI_CAP + " của {school}", "en": "Router of {school}"},
    "device.hostname": {"vi": "Tên máy", "en": "Host name"},
    "device.health": {"vi": "Tình trạng hiện tại", "en": "Current health"},
    "device.cpu_model": {"vi": "Bộ xử lý", "en": "Processor"},
    "device.disks": {"vi": "Ổ cứng", "en": "Disks"},
    "device.agent": {"vi": "Phiên bản agent", "en": "Agent version"},
    "device.first_seen": {"vi": "Báo về lần đầu", "en": "First reported"},
    "device.since": {"vi": "từ {time}", "en": "since {time}"},
    "device.messages": {"vi": "Bản tin", "en": "Messages"},
    "device.message_counts": {"vi": "{received} đã nhận, {lost} bị mất, {duplicates} trùng lặp",
                              "en": "{received} received, {lost} lost, {duplicates} duplicates"},
    "device.charts": {"vi": "Biểu đồ", "en": "Charts"},
    "device.history": {"vi": "Lịch sử trạng thái", "en": "Status history"},
    "device.no_history": {"vi": "Chưa có thay đổi trạng thái nào.", "en": "No status changes yet."},
    "device.at": {"vi": "Thời điểm", "en": "When"},
    "device.reason": {"vi": "Lý do", "en": "Reason"},
    "device.approve": {"vi": "Duyệt thiết bị", "en": "Approve"},
    "device.move": {"vi": "Chuyển phòng", "en": "Move to another room"},
    "device.move_prompt": {"vi": "Tên phòng mới:", "en": "New room:"},
    "device.retire": {"vi": "Ngừng sử dụng", "en": "Retire"},
    "device.retire_confirm": {"vi": "Ngừng sử dụng {id}? Thiết bị sẽ không còn được tính trong "
                                    "số liệu, lịch sử vẫn được giữ.",
                              "en": "Retire {id}? It will no longer be counted; its history "
                                    "is kept."},
    "range.24h": {"vi": "24 giờ", "en": "24 h"},
    "range.7d": {"vi": "7 ngày", "en": "7 days"},
    "range.30d": {"vi": "30 ngày", "en": "30 days"},
    "chart.time": {"vi": "Thời điểm", "en": "Time"},
    "chart.temp": {"vi": "Nhiệt độ", "en": "Temperature"},
    "chart.net": {"vi": "Mạng", "en": "Network"},
    "chart.rx": {"vi": "tải xuống", "en": "download"},
    "chart.tx": {"vi": "tải lên", "en": "upload"},
    "chart.nodata": {"vi": "Chưa có số liệu trong khoảng thời gian này.",
                     "en": "No data in this period."},
    "unit.devices_heard": {"vi": "thiết bị báo về", "en": "devices reporting"},
    "ago.minutes": {"vi": "{n} phút", "en": "{n} min"},
    "ago.hours": {"vi": "{n} giờ", "en": "{n} h"},
    "ago.days": {"vi": "{n} ngày", "en": "{n} days"},
    "users.active": {"vi": "đang dùng", "en": "active"},
    "users.disabled": {"vi": "đã khóa", "en": "disabled"},
    "users.all_units": {"vi": "toàn tỉnh", "en": "whole province"},
    "users.created": {"vi": "Ngày tạo", "en": "Created"},
    "users.none": {"vi": "Chưa có người dùng nào.", "en": "No users yet."},
    "users.cli_hint": {"vi": "Cũng có trên dòng lệnh: schoolmon-collector user add|list|disable|token.",
                       "en": "Also on the command line: schoolmon-collector user add|list|disable|token."},
    "users.role": {"vi": "Vai trò", "en": "Role"},
    "users.add_title": {"vi": "Thêm người dùng", "en": "Add a user"},
    "users.add": {"vi": "Thêm", "en": "Add"},
    "users.password": {"vi": "Mật khẩu (ít nhất 10 ký tự)", "en": "Password (10 characters or more)"},
    "users.password_rule": {"vi": "Ít nhất 10 ký tự.", "en": "At least 10 characters."},
    "users.name_rule": {"vi": "Chữ không dấu, số và . _ @ -", "en": "Letters, digits and . _ @ -"},
    "users.units_hint": {"vi": "mã khu vực hoặc mã trường, cách nhau bằng dấu phẩy",
                         "en": "area or school codes, separated by commas"},
    "audit.at": {"vi": "Thời điểm", "en": "When"},
    "audit.action": {"vi": "Thao tác", "en": "Action"},
    "audit.target": {"vi": "Đối tượng", "en": "Target"},
    "audit.detail": {"vi": "Chi tiết", "en": "Detail"},
    "audit.none": {"vi": "Chưa có thao tác nào.", "en": "Nothing recorded yet."},
    "users.disable": {"vi": "Khóa", "en": "Disable"},
    "users.disable_confirm": {"vi": "Khóa người dùng {name}? Mọi phiên đăng nhập và mã truy cập "
                                    "của người này bị thu hồi ngay.",
                              "en": "Disable {name}? Their sessions and tokens stop at once."},
    "link.fiber": {"vi": "Cáp quang", "en": "Fibre"},
    "link.adsl": {"vi": "ADSL", "en": "ADSL"},
    "link.4g": {"vi": "4G", "en": "4G"},
    "link.3g": {"vi": "3G", "en": "3G"},
}


def page_texts() -> Dict[str, Dict[str, str]]:
    """Every string the pages show: :data:`PAGE_TEXTS` and the code labels above
    (``status.*``, ``state.*``, ``role_device.*``, ``level.*``, ``role.*``, and the ATTT codes
    ``attt_status.*``, ``check_state.*``, ``severity.*``, ``os_support.*``), English falling
    back to Vietnamese."""
    out: Dict[str, Dict[str, str]] = {}
    for prefix, table in (("status.", STATUS_LABELS), ("state.", STATUS_LABELS),
                          ("role_device.", ROLE_LABELS), ("level.", SCHOOL_LEVELS),
                          ("role.", USER_ROLE_LABELS), ("audit_action.", AUDIT_LABELS),
                          ("attt_status.", ATTT_STATUS_LABELS),
                          ("check_state.", CHECK_STATE_LABELS), ("severity.", SEVERITY_LABELS),
                          ("os_support.", OS_SUPPORT_LABELS)):
        for code, entry in table.items():
            out[prefix + code] = dict(entry)
    out.update(PAGE_TEXTS)
    # the connectivity parts' texts live with them (imported here: they import this module)
    from .connectivity.text import PAGE_TEXTS as CONNECTIVITY_TEXTS
    from .connectivity.text import STATUS_LABELS as CONNECTIVITY_LABELS
    for code, entry in CONNECTIVITY_LABELS.items():
        out["conn_status." + code] = dict(entry)
    out.update(CONNECTIVITY_TEXTS)
    # and the alerts' (collector/alerting/page_text.py)
    from .alerting.page_text import LABEL_TABLES as ALERT_LABELS
    from .alerting.page_text import PAGE_TEXTS as ALERT_TEXTS
    for prefix, table in ALERT_LABELS.items():
        for code, entry in table.items():
            out[prefix + "." + code] = dict(entry)
    out.update(ALERT_TEXTS)
    out["unit.former"] = {lang: FORMER_SUFFIX[lang] for lang in LANGS}
    return {k: {lang: v.get(lang) or v[DEFAULT_LANG] for lang in LANGS} for k, v in out.items()}
