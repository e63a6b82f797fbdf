"""What people read about alerts on the pages and in the API, Vietnamese first: the labels
of the alerts' codes (severity, handling, the evaluator's states, history events, delivery
channels and their states, silences) and the alerts page's texts. ``text.page_texts``
merges them into ``/ui/texts.js`` (``<prefix>.<code>`` for the labels), the API labels its
codes from the same tables: one definition of each text. The API's error messages for
alerts are in ``text.MESSAGES`` with the others. No import of the running collector here:
text.py imports this module."""
from typing import Dict

Texts = Dict[str, Dict[str, str]]

SEVERITY_LABELS: Texts = {
    "critical": {"vi": "Nghiêm trọng", "en": "Critical"},
    "warning": {"vi": "Cảnh báo", "en": "Warning"},
    "info": {"vi": "Thông tin", "en": "Info"},
}

#: How an alert is handled (read/alerts.HANDLING), as the tabs of the page name it.
HANDLING_LABELS: Texts = {
    "new": {"vi": "Chưa xử lý", "en": "Not handled"},
    "acknowledged": {"vi": "Đã xác nhận", "en": "Acknowledged"},
    "silenced": {"vi": "Đã tắt thông báo", "en": "Silenced"},
    "resolved": {"vi": "Đã kết thúc", "en": "Resolved"},
}

#: The evaluator's states (schema.ALERT_STATES).
STATE_LABELS: Texts = {
    "pending": {"vi": "Đang chờ đủ thời gian", "en": "Pending"},
    "firing": {"vi": "Đang xảy ra", "en": "Firing"},
    "resolved": {"vi": "Đã kết thúc", "en": "Resolved"},
}

KIND_LABELS: Texts = {
    "school": {"vi": "Trường", "en": "School"},
    "device": {"vi": "Thiết bị", "en": "Device"},
    "collector": {"vi": "Hệ thống schoolmon", "en": "schoolmon itself"},
}

#: What happened to an alert (alert_events.kind).
EVENT_LABELS: Texts = {
    "pending": {"vi": "Bắt đầu theo dõi", "en": "Condition seen"},
    "firing": {"vi": "Phát cảnh báo", "en": "Fired"},
    "resolved": {"vi": "Đã kết thúc", "en": "Resolved"},
    "acked": {"vi": "Xác nhận", "en": "Acknowledged"},
    "unacked": {"vi": "Bỏ xác nhận", "en": "Acknowledgement taken back"},
    "silenced": {"vi": "Tắt thông báo", "en": "Silenced"},
    "unsilenced": {"vi": "Bật lại thông báo", "en": "Silence ended"},
    "suppressed": {"vi": "Gộp vào cảnh báo của trường", "en": "Covered by the school's alert"},
    "unsuppressed": {"vi": "Tách khỏi cảnh báo gộp", "en": "No longer covered"},
    "cancelled": {"vi": "Hủy: điều kiện hết trước thời hạn",
                  "en": "Cancelled: cleared before its time"},
}

CHANNEL_LABELS: Texts = {
    "email": {"vi": "Thư điện tử", "en": "E-mail"},
    "apprise": {"vi": "Kênh của Sở (Apprise)", "en": "The Sở's channels (Apprise)"},
    "webhook": {"vi": "Webhook", "en": "Webhook"},
    "zalo": {"vi": "Zalo", "en": "Zalo"},
}

#: The outbox's states (schema.notifications.state).
NOTIFICATION_STATE_LABELS: Texts = {
    "queued": {"vi": "Chờ gửi", "en": "Queued"},
    "sending": {"vi": "Đang gửi", "en": "Sending"},
    "sent": {"vi": "Đã gửi", "en": "Sent"},
    "failed": {"vi": "Lỗi, sẽ thử lại", "en": "Failed, will retry"},
    "dead": {"vi": "Không gửi được", "en": "Gave up"},
}

#: How a message told an alert (alert_notifications.kind).
NOTIFICATION_KIND_LABELS: Texts = {
    "firing": {"vi": "Báo cảnh báo mới", "en": "New alert"},
    "resolved": {"vi": "Báo đã kết thúc", "en": "Resolved"},
    "repeat": {"vi": "Nhắc lại", "en": "Reminder"},
    "update": {"vi": "Cập nhật nhóm", "en": "Group update"},
}

SILENCE_KIND_LABELS: Texts = {
    "silence": {"vi": "Tắt thông báo", "en": "Silence"},
    "maintenance": {"vi": "Bảo trì", "en": "Maintenance"},
}

SILENCE_STATE_LABELS: Texts = {
    "active": {"vi": "Đang có hiệu lực", "en": "In force"},
    "scheduled": {"vi": "Sắp có hiệu lực", "en": "Scheduled"},
    "expired": {"vi": "Đã hết hạn", "en": "Expired"},
    "deleted": {"vi": "Đã xóa", "en": "Deleted"},
}

#: prefix → labels, as /ui/texts.js names them (``alert_severity.critical`` ...).
LABEL_TABLES: Dict[str, Texts] = {
    "alert_severity": SEVERITY_LABELS, "alert_handling": HANDLING_LABELS,
    "alert_state": STATE_LABELS, "alert_kind": KIND_LABELS, "alert_event": EVENT_LABELS,
    "channel": CHANNEL_LABELS, "notif_state": NOTIFICATION_STATE_LABELS,
    "notif_kind": NOTIFICATION_KIND_LABELS,
    "silence_kind": SILENCE_KIND_LABELS, "silence_state": SILENCE_STATE_LABELS,
}

PAGE_TEXTS: Texts = {
    "nav.alerts": {"vi": "Cảnh báo", "en": "Alerts"},
    "alerts.tab.open": {"vi": "Đang mở", "en": "Open"},
    "alerts.none_open": {"vi": "Không có cảnh báo nào đang mở.", "en": "No open alerts."},
    "alerts.none": {"vi": "Không có cảnh báo nào khớp bộ lọc.",
                    "en": "No alert matches the filters."},
    "alerts.col.severity": {"vi": "Mức độ", "en": "Severity"},
    "alerts.col.alert": {"vi": "Cảnh báo", "en": "Alert"},
    "alerts.col.subject": {"vi": "Trường / thiết bị", "en": "School / device"},
    "alerts.col.since": {"vi": "Từ lúc", "en": "Since"},
    "alerts.col.state": {"vi": "Trạng thái", "en": "State"},
    "alerts.col.actions": {"vi": "Thao tác", "en": "Actions"},
    "alerts.ago": {"vi": "{ago} trước", "en": "{ago} ago"},
    "alerts.filter.severity": {"vi": "Mức độ", "en": "Severity"},
    "alerts.filter.kind": {"vi": "Loại", "en": "Kind"},
    "alerts.filter.area": {"vi": "Khu vực", "en": "Area"},
    "alerts.filter.school": {"vi": "Mã trường", "en": "School code"},
    "alerts.pager": {"vi": "Trang {page} / {pages} · {total} cảnh báo",
                     "en": "Page {page} / {pages} · {total} alerts"},
    "alerts.ack": {"vi": "Xác nhận", "en": "Acknowledge"},
    "alerts.ack_comment": {"vi": "Ghi chú: ai xử lý, xử lý thế nào",
                           "en": "Comment: who is on it, what they do"},
    "alerts.unack": {"vi": "Bỏ xác nhận", "en": "Take back"},
    "alerts.acked_by": {"vi": "{who} xác nhận lúc {time}: {comment}",
                        "en": "{who} acknowledged at {time}: {comment}"},
    "alerts.silence": {"vi": "Tắt thông báo", "en": "Silence"},
    "alerts.silence_by": {"vi": "Tắt thông báo cho", "en": "Silence"},
    "alerts.silence_by.rule": {"vi": "Loại cảnh báo này ở mọi nơi", "en": "This rule everywhere"},
    "alerts.silence_by.rule_school": {"vi": "Loại cảnh báo này ở trường này",
                                      "en": "This rule at this school"},
    "alerts.silence_by.school": {"vi": "Mọi cảnh báo của trường này",
                                 "en": "Every alert of this school"},
    "alerts.silence_by.area": {"vi": "Mọi cảnh báo của khu vực này",
                               "en": "Every alert of this area"},
    "alerts.silence_by.device": {"vi": "Mọi cảnh báo của thiết bị này",
                                 "en": "Every alert of this device"},
    "alerts.silence_for": {"vi": "Trong", "en": "For"},
    "alerts.dur.1h": {"vi": "1 giờ", "en": "1 hour"},
    "alerts.dur.4h": {"vi": "4 giờ", "en": "4 hours"},
    "alerts.dur.1d": {"vi": "1 ngày", "en": "1 day"},
    "alerts.dur.3d": {"vi": "3 ngày", "en": "3 days"},
    "alerts.dur.7d": {"vi": "7 ngày", "en": "7 days"},
    "alerts.dur.30d": {"vi": "30 ngày", "en": "30 days"},
    "alerts.silence_until": {"vi": "hoặc đến (giờ Việt Nam)", "en": "or until (Vietnam time)"},
    "alerts.silence_kind": {"vi": "Loại", "en": "Kind"},
    "alerts.silence_comment": {"vi": "Lý do", "en": "Reason"},
    "alerts.submit": {"vi": "Lưu", "en": "Save"},
    "alerts.cancel": {"vi": "Hủy", "en": "Cancel"},
    "alerts.silences": {"vi": "Đang tắt thông báo", "en": "Silences"},
    "alerts.silences_none": {"vi": "Không có lần tắt thông báo nào đang có hiệu lực.",
                             "en": "No silence in force."},
    "alerts.silence_applies": {"vi": "Áp dụng cho", "en": "Applies to"},
    "alerts.silence_from": {"vi": "Từ", "en": "From"},
    "alerts.silence_ends": {"vi": "Đến", "en": "Until"},
    "alerts.silence_who": {"vi": "Người tạo", "en": "By"},
    "alerts.silence_delete": {"vi": "Xóa", "en": "Delete"},
    "alerts.silence_delete_confirm": {
        "vi": "Xóa lần tắt thông báo này? Thông báo về các cảnh báo này sẽ được gửi lại.",
        "en": "Delete this silence? Notifications about these alerts start again."},
    "alerts.matcher.rule": {"vi": "quy tắc {v}", "en": "rule {v}"},
    "alerts.matcher.school_code": {"vi": "trường {v}", "en": "school {v}"},
    "alerts.matcher.area_code": {"vi": "khu vực {v}", "en": "area {v}"},
    "alerts.matcher.device_id": {"vi": "thiết bị {v}", "en": "device {v}"},
    "alerts.history": {"vi": "Lịch sử", "en": "History"},
    "alerts.suppressed": {"vi": "Gộp vào cảnh báo #{id}", "en": "Covered by alert #{id}"},
    "alerts.open_here": {"vi": "Cảnh báo đang mở ({n})", "en": "Open alerts ({n})"},
    "alerts.see_all": {"vi": "Xem tất cả cảnh báo", "en": "See every alert"},
    "alerts.overview_title": {"vi": "Cảnh báo đang mở", "en": "Open alerts"},
    "alerts.done_ack": {"vi": "Đã xác nhận.", "en": "Acknowledged."},
    "alerts.done_silence": {"vi": "Đã tắt thông báo đến {time}.",
                            "en": "Silenced until {time}."},
    "alerts.delivery": {"vi": "Gửi thông báo", "en": "Delivery"},
    "alerts.delivery.channel": {"vi": "Kênh", "en": "Channel"},
    "alerts.delivery.health": {"vi": "Tình trạng", "en": "Health"},
    "alerts.delivery.ok": {"vi": "Bình thường", "en": "Working"},
    "alerts.delivery.failing": {"vi": "Lỗi từ {since}", "en": "Failing since {since}"},
    "alerts.delivery.unknown": {"vi": "Chưa gửi lần nào", "en": "Nothing sent yet"},
    "alerts.delivery.last_sent": {"vi": "Gửi lần cuối", "en": "Last sent"},
    "alerts.delivery.last_error": {"vi": "Lỗi gần nhất", "en": "Last error"},
    "alerts.delivery.sent_24h": {"vi": "Đã gửi (24 giờ)", "en": "Sent (24 h)"},
    "alerts.delivery.failures": {"vi": "Lần gửi lỗi gần đây", "en": "Recent failures"},
    "alerts.delivery.no_failures": {"vi": "Không có lần gửi lỗi nào.", "en": "No failures."},
    "alerts.delivery.recipient": {"vi": "Người nhận", "en": "Recipient"},
    "alerts.delivery.attempts": {"vi": "Số lần thử", "en": "Attempts"},
    "alerts.notifications": {"vi": "Thông báo đã gửi", "en": "Notifications sent"},
    "alerts.notifications_none": {"vi": "Chưa có thông báo nào về cảnh báo này.",
                                  "en": "No notification about this alert yet."},
    "alerts.notif.kind": {"vi": "Nội dung", "en": "Kind"},
    "alerts.notif.state": {"vi": "Trạng thái", "en": "State"},
    "alerts.notif.sent_at": {"vi": "Gửi lúc", "en": "Sent at"},
    "alerts.notif.next_attempt": {"vi": "Thử lại lúc {time}", "en": "Next attempt {time}"},
    "alerts.delivery_failed": {"vi": "Gửi thông báo thất bại", "en": "Notification failed"},
}
