"""Grouping's decisions as pure functions (no store): the three intervals, what a message
covers, resolutions only for what was told, the dedup key free of wall time; and the
words of a grouped message."""
from schoolmon.collector.notify.compose import AlertView, compose
from schoolmon.collector.notify.grouping import (
    AlertNow,
    GroupState,
    Recipient,
    Timing,
    group_key,
    on_firing,
    on_resolved,
    plan,
)

T = Timing(group_wait=30, group_interval=300, repeat_interval=3600)
R = Recipient("email", "a@b.vn")
FIRING = AlertNow("firing")


def group(opened=1000.0):
    labels = (("area", "lao-cai/bat-xat"), ("rule", "school_offline"))
    return GroupState(group_key("area", R, labels), "area", R, labels, opened_at=opened)


def test_wait_interval_repeat():
    g = on_firing(group(), 1)
    assert plan(g, T, {1: FIRING}, 1029) is None
    f = plan(g, T, {1: FIRING}, 1030)
    assert f is not None and f.kind == "firing" and f.new == (1,)
    g = on_firing(f.after, 2)
    assert plan(g, T, {1: FIRING, 2: FIRING}, 1329) is None
    f = plan(g, T, {1: FIRING, 2: FIRING}, 1330)
    assert f.kind == "firing" and f.new == (2,) and f.still == (1,)
    g = f.after
    assert plan(g, T, {1: FIRING, 2: FIRING}, 1330 + 3599) is None
    f = plan(g, T, {1: FIRING, 2: FIRING}, 1330 + 3600)
    assert f.kind == "repeat" and f.still == (1, 2)
    # the clock goes back: nothing is due, whatever the state
    assert plan(f.after, T, {1: FIRING, 2: FIRING}, 0) is None


def test_resolution_only_for_what_was_told():
    g = on_resolved(on_firing(group(), 1), 1)
    assert g.empty and plan(g, T, {}, 99999) is None
    f = plan(on_firing(group(), 1), T, {1: FIRING}, 2000)
    g = on_resolved(f.after, 1)
    f2 = plan(g, T, {1: AlertNow("resolved")}, 2300)
    assert f2.kind == "resolved" and f2.resolved == (1,) and f2.after.empty
    assert on_resolved(f2.after, 1).empty  # a second resolved event says nothing more


def test_quiet_and_acked():
    g = on_firing(on_firing(on_firing(group(), 1), 2), 3)
    alerts = {1: AlertNow("firing", silenced=True), 2: AlertNow("firing", suppressed=True),
              3: AlertNow("firing", acked=True)}
    assert plan(g, T, alerts, 5000) is None


def test_dedup_key_names_content_not_time():
    g = on_firing(group(), 1)
    a = plan(g, T, {1: FIRING}, 1030)
    b = plan(g, T, {1: FIRING}, 999999)
    assert a.dedup_key == b.dedup_key and "1030" not in a.dedup_key
    other = plan(on_firing(group(), 2), T, {2: FIRING}, 1030)
    assert other.dedup_key != a.dedup_key


def view(i, school, sev="critical", fired=1_796_180_400.0):
    return AlertView(i, "school_offline", sev, "firing", "school:%s" % school,
                     {"vi": "%s: mất kết nối toàn trường" % school,
                      "en": "%s: the whole school is offline" % school},
                     {"vi": "Mọi thiết bị mất kết nối.", "en": "Every device is offline."},
                     started_at=fired - 600, fired_at=fired, school_code=school,
                     school_name=school, area_code="lao-cai/bat-xat", area_name="Bát Xát")


def test_compose_worst_first_truncated():
    alerts = [view(i, "Trường %03d" % i, fired=1_796_180_400.0 + i) for i in range(30)]
    alerts.append(view(99, "Trường Z", sev="warning", fired=1_796_000_000.0))
    m = compose("area", "firing", "vi", alerts, [], [], "https://x.vn", group_key="k")
    assert m.subject == "[schoolmon] 31 trường mất kết nối — Bát Xát"
    lines = m.body.splitlines()
    first = [ln for ln in lines if ln.startswith("•")]
    assert first[0] == "• [Nghiêm trọng] Trường 000: mất kết nối toàn trường"
    assert first[-1].startswith("• [Nghiêm trọng] Trường 019")  # warning ranks after
    # "Từ" says when the problem began (started 09:50), not when the alert fired (10:00)
    assert "… và 11 cảnh báo khác" in lines and "  Từ 02/12/2026 09:50" in lines
    en = compose("area", "resolved", "en", [], [], alerts[:2], "https://x.vn")
    assert en.subject == "[schoolmon] Resolved: 2 schools offline — Bát Xát"
    assert "Resolved (2)" in en.body and len(m.payload["alerts"]) == 31
