"""Routing on SQLite and the real PostgreSQL: audiences from users, scopes and the
registry; grouping (group_wait, group_interval, repeat_interval) with the clock passed in;
an area's outage as one message per recipient and route; resolutions once and only to
whoever was told; silenced, suppressed and acknowledged alerts; restarts, a rewound cursor
and the clock going back enqueue nothing twice."""
import pytest
from prometheus_client import CollectorRegistry
from schoolmon.collector.metrics import IngestMetrics
from schoolmon.collector.notify.routing import CURSOR_KEY, parse_routes, route_pass
from schoolmon.collector.store import schema as db
from sqlalchemy import select, update

from .alerthelp import BAT_XAT, T0, Evaluator, contact, make_store, outbox, settings, user

S = settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from make_store(request.param, tmp_path, postgres)


@pytest.fixture
def people(engine):
    user(engine, "tech1", "school_tech", ["BX001"], email="tech1@truong.edu.vn", zalo="z-tech1")
    user(engine, "tech2", "school_tech", ["BX002"], email="tech2@truong.edu.vn", lang="en",
         min_severity="critical")
    user(engine, "officer", "area_officer", [BAT_XAT], email="officer@phong.edu.vn")
    user(engine, "province_officer", "area_officer", ["lao-cai"], zalo="z-prov")
    user(engine, "so", "so_admin", email="so@sogd.edu.vn")
    user(engine, "viewer", "so_viewer")  # no address: told nothing
    user(engine, "gone", "so_admin", email="gone@sogd.edu.vn", disabled=True)
    contact(engine, "BX001", "bx001@truong.edu.vn")
    return engine


def sent_to(engine, **where):
    return sorted((r.route, r.channel, r.recipient) for r in outbox(engine)
                  if all(getattr(r, k) == v for k, v in where.items()))


def test_audiences_from_users_scopes_and_contacts(people):
    ev = Evaluator(people)
    ev.fire("school_offline", "BX001", T0)
    assert route_pass(people, T0, S).enqueued == 0  # group_wait
    stats = route_pass(people, T0 + 60, S)
    assert stats.enqueued == 6
    assert sent_to(people) == sorted([
        ("school", "email", "tech1@truong.edu.vn"), ("school", "zalo", "z-tech1"),
        ("school", "email", "bx001@truong.edu.vn"),
        ("area", "email", "officer@phong.edu.vn"), ("area", "zalo", "z-prov"),
        ("so", "email", "so@sogd.edu.vn")])
    # Sa Pa: no tech, no contact, not the Bát Xát officer; the province's officer and the Sở
    ev.fire("school_offline", "SP001", T0 + 100)
    route_pass(people, T0 + 200, S)
    assert sent_to(people, route="area", recipient="z-prov")[-1:] == [("area", "zalo", "z-prov")]
    new = [r for r in outbox(people) if "SP001" in str(r.payload) or "Sa Pa" in r.subject]
    assert sorted((r.route, r.recipient) for r in new) == [("area", "z-prov"),
                                                          ("so", "so@sogd.edu.vn")]


def test_min_severity_language_and_routes_severities(people):
    ev = Evaluator(people)
    ev.fire("device_disk_full", "BX002", T0, severity="warning", device="bx002-pc01",
            title_vi="BX002: ổ đĩa đầy")
    ev.fire("lab_pc_offline", "BX001", T0, severity="info", device="bx001-pc07")
    route_pass(people, T0 + 60, S)
    rows = outbox(people)
    # tech2 wants critical only; info goes to nobody (routes say warning and up); the disk
    # rule is not one the Sở's route takes
    assert sorted((r.route, r.recipient) for r in rows) == [("area", "officer@phong.edu.vn"),
                                                           ("area", "z-prov")]
    ev.fire("school_offline", "BX002", T0 + 100)
    route_pass(people, T0 + 400, S)
    en = [r for r in outbox(people) if r.recipient == "tech2@truong.edu.vn"]
    assert len(en) == 1 and en[0].lang == "en"
    assert "the whole school is offline" in en[0].subject
    # "Since" is when it began (started 10 min before it fired at 10:01:40)
    assert "New alerts (1)" in en[0].body and "Since 02/12/2026 09:51" in en[0].body
    vi = [r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"][-1]
    assert vi.lang == "vi" and "mất kết nối toàn trường" in vi.subject
    assert "Cảnh báo mới (1)" in vi.body and "https://sm.example.vn/schools/BX002" in vi.body


def test_area_officer_of_a_parent_unit_gets_the_areas_own_alert(people):
    Evaluator(people).fire("notify_channel_failing", None, T0, area=BAT_XAT,
                           title_vi="Kênh thông báo lỗi")
    route_pass(people, T0 + 60, S)
    got = sorted((r.route, r.recipient) for r in outbox(people))
    assert ("area", "officer@phong.edu.vn") in got and ("area", "z-prov") in got
    assert ("so", "so@sogd.edu.vn") in got and not any(r == "school" for r, _ in got)


def test_so_audience_takes_apprise_and_the_webhook(people):
    s = settings(apprise_urls=("tgram://bot/123",), webhook_url="http://127.0.0.1:9/hook")
    Evaluator(people).fire("school_offline", "SP002", T0)
    route_pass(people, T0 + 60, s)
    so = {r.channel: r for r in outbox(people) if r.route == "so"}
    assert set(so) == {"email", "apprise", "webhook"}
    assert so["apprise"].recipient == "1"  # named by position: the URL is secrets
    body = so["webhook"].payload
    a = body["alerts"][0]
    assert body["kind"] == "firing" and a["rule"] == "school_offline"
    assert a["school"] == {"code": "SP002", "name": "Trường THCS Sa Pa 2"}
    assert a["area"]["code"] == "lao-cai/sa-pa" and a["area"]["name"] == "Sa Pa"
    assert a["fired_at"] == {"utc": "2026-12-02T03:00:00Z", "local": "2026-12-02T10:00:00+07:00"}
    assert a["url"] == "https://sm.example.vn/schools/SP002" and a["change"] == "new"


def test_group_wait_interval_and_repeat(people):
    ev = Evaluator(people)
    a1 = ev.fire("school_offline", "BX001", T0)
    route_pass(people, T0 + 30, S)
    ev.fire("school_offline", "BX002", T0 + 40)  # within group_wait: joins the first message
    route_pass(people, T0 + 59, S)
    assert sent_to(people, route="area", channel="email") == []
    route_pass(people, T0 + 60, S)
    first = [r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"]
    assert len(first) == 1 and "2 trường mất kết nối — Bát Xát" in first[0].subject
    # a third school fires: the update waits group_interval after the last message
    ev.fire("school_offline", "BX003", T0 + 100)
    route_pass(people, T0 + 359, S)
    assert len([r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"]) == 1
    route_pass(people, T0 + 360, S)
    mine = [r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"]
    assert len(mine) == 2 and "Cảnh báo mới (1)" in mine[1].body
    assert "Vẫn đang diễn ra (2)" in mine[1].body
    # nothing changed: nothing until repeat_interval (12 h on the area route)
    for t in (T0 + 700, T0 + 3600, T0 + 360 + 43199):
        route_pass(people, t, S)
    assert len([r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"]) == 2
    route_pass(people, T0 + 360 + 43200, S)
    mine = [r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"]
    assert len(mine) == 3 and mine[2].subject.startswith("[schoolmon] Nhắc lại: 3 trường")
    # an acknowledged alert is not repeated; the others are
    ev.ack(a1, "officer", T0 + 50000)
    route_pass(people, T0 + 360 + 2 * 43200, S)
    mine = [r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"]
    assert len(mine) == 4 and "Nhắc lại: 2 trường" in mine[3].subject


def test_200_schools_one_message_per_recipient_and_route(tmp_path, request):
    kind = "sqlite"
    for engine in make_store(kind, tmp_path, None, n_bat_xat=200, n_sa_pa=1):
        user(engine, "officer", "area_officer", [BAT_XAT], email="officer@phong.edu.vn")
        user(engine, "so", "so_admin", email="so@sogd.edu.vn", zalo="z-so")
        ev = Evaluator(engine)
        ids = [ev.fire("school_offline", "BX%03d" % i, T0 + i * 0.1) for i in range(1, 201)]
        route_pass(engine, T0 + 61, S)
        rows = outbox(engine)
        assert sorted((r.route, r.recipient) for r in rows) == [
            ("area", "officer@phong.edu.vn"), ("so", "so@sogd.edu.vn"), ("so", "z-so")]
        m = rows[0]
        assert m.subject == "[schoolmon] 200 trường mất kết nối — Bát Xát"
        assert "… và 180 cảnh báo khác" in m.body and m.body.count("• [Nghiêm trọng]") == 20
        assert sorted(m.payload["alert_ids"]) == sorted(ids)
        # 50 come back: one "up" message each, after group_interval
        for i in ids[:50]:
            ev.resolve(i, T0 + 200)
        route_pass(engine, T0 + 361, S)
        rows = outbox(engine)
        assert len(rows) == 6
        up = [r for r in rows[3:] if r.recipient == "officer@phong.edu.vn"][0]
        assert up.subject == "[schoolmon] Đã khắc phục: 50 trường mất kết nối — Bát Xát"
        assert sorted(up.payload["resolved_ids"]) == sorted(ids[:50])
        assert "Đã khắc phục (50)" in up.body and "Vẫn đang diễn ra (150)" in up.body


def test_fifty_down_fifty_up_two_messages(people):
    ev = Evaluator(people)
    ids = [ev.fire("school_offline", "BX%03d" % (i % 3 + 1), T0, subject="school:x%d" % i)
           for i in range(50)]
    route_pass(people, T0 + 60, S)
    for i in ids:
        ev.resolve(i, T0 + 120)
    for t in range(0, 1200, 30):
        route_pass(people, T0 + 120 + t, S)
    officer = [r for r in outbox(people) if r.recipient == "officer@phong.edu.vn"]
    assert [r.payload["kind"] for r in officer] == ["firing", "resolved"]
    with people.connect() as c:
        assert c.execute(select(db.notification_groups)).all() == []  # all said and done


def test_resolved_once_and_only_to_who_was_told(people):
    ev = Evaluator(people)
    quick = ev.fire("school_offline", "BX001", T0)
    ev.resolve(quick, T0 + 30)  # resolved within group_wait: nobody hears of it at all
    route_pass(people, T0 + 30, S)
    route_pass(people, T0 + 1000, S)
    assert outbox(people) == []
    a = ev.fire("school_offline", "BX001", T0 + 2000)
    route_pass(people, T0 + 2060, S)
    told = {r.recipient for r in outbox(people)}
    # someone who joins after the alert fired is not told it resolved
    user(people, "officer2", "area_officer", [BAT_XAT], email="late@phong.edu.vn")
    ev.resolve(a, T0 + 2100)
    for t in (T0 + 2400, T0 + 2400, T0 + 5000, T0 + 90000):
        route_pass(people, t, S)
    resolved = [r for r in outbox(people) if r.payload["kind"] == "resolved"]
    assert sorted(r.recipient for r in resolved) == sorted(told)
    assert len(resolved) == len(told) == 6


def test_silenced_suppressed_acked_are_not_notified(people):
    ev = Evaluator(people)
    router = ev.fire("router_down", "BX001", T0, severity="warning", device="router.BX001",
                     title_vi="BX001: router không liên lạc được")
    child = ev.fire("school_internet_down", "BX001", T0)
    ev.suppress(child, router, T0 + 1)
    silenced = ev.fire("school_offline", "BX002", T0)
    ev.silence(silenced, T0 + 1)
    acked = ev.fire("school_offline", "BX003", T0)
    ev.ack(acked, "officer", T0 + 5)
    route_pass(people, T0 + 60, S)
    covered = {i for r in outbox(people) for i in r.payload["alert_ids"]}
    assert covered == {router}
    # the silence ends: now it is said (a new alert for the group, after group_interval)
    ev.silence(silenced, T0 + 100, on=False)
    route_pass(people, T0 + 400, S)
    covered = {i for r in outbox(people) for i in r.payload["alert_ids"]}
    assert covered == {router, silenced}
    # acked after being told: no repeat, but its resolution goes once
    ev.ack(router, "tech1", T0 + 500)
    route_pass(people, T0 + 400 + 43200, S)
    assert not any(r.payload["kind"] == "repeat" and router in r.payload["alert_ids"]
                   for r in outbox(people))
    ev.resolve(router, T0 + 50000)
    ev.resolve(acked, T0 + 50000)
    route_pass(people, T0 + 50400, S)
    res = [r for r in outbox(people) if r.payload["kind"] == "resolved"]
    assert res and all(r.payload["resolved_ids"] == [router] for r in res)


def test_restart_rewound_cursor_and_clock_back_enqueue_nothing_twice(people, tmp_path):
    ev = Evaluator(people)
    ev.fire("school_offline", "BX001", T0)
    ev.fire("school_offline", "BX002", T0 + 10)
    route_pass(people, T0 + 70, S)
    n = len(outbox(people))
    assert n == 7  # BX001: tech1 (e-mail, Zalo), contact; BX002: tech2; officers; the Sở
    # a new process: a new engine on the same store, the same cursor
    fresh = db.make_engine(people.url.render_as_string(hide_password=False))
    try:
        assert route_pass(fresh, T0 + 70, S).enqueued == 0
        assert route_pass(fresh, T0 + 71, S).enqueued == 0
        # the clock goes back an hour, then forward again to where it was
        assert route_pass(fresh, T0 - 3600, S).enqueued == 0
        assert route_pass(fresh, T0 + 70, S).enqueued == 0
        # the cursor lost (rewound to 0): the events are read again, nothing is enqueued
        with fresh.begin() as c:
            c.execute(update(db.attt_state).where(db.attt_state.c.key == CURSOR_KEY)
                      .values(value={"event_id": 0}))
        reg = IngestMetrics(CollectorRegistry())
        assert route_pass(fresh, T0 + 80, S, reg).enqueued == 0
        # the groups lost too (the worst case): the same messages are built again, and the
        # outbox's dedup key keeps them out
        with fresh.begin() as c:
            c.execute(db.notification_groups.delete())
            c.execute(update(db.attt_state).where(db.attt_state.c.key == CURSOR_KEY)
                      .values(value={"event_id": 0}))
        st = route_pass(fresh, T0 + 70, S, reg)
        assert st.enqueued == 0 and st.duplicates == 7
        assert reg.notify_duplicates.get() == 7
    finally:
        fresh.dispose()
    assert len(outbox(people)) == n


def test_cursor_is_compare_and_set(people):
    ev = Evaluator(people)
    ev.fire("school_offline", "BX001", T0)
    route_pass(people, T0, S)
    with people.begin() as c:
        row = c.execute(select(db.attt_state).where(db.attt_state.c.key == CURSOR_KEY)).one()
        assert row.value["event_id"] == 2
        # another process moves the cursor while this one works: its pass is undone
        c.execute(update(db.attt_state).where(db.attt_state.c.key == CURSOR_KEY)
                  .values(rev=row.rev + 5))
    from schoolmon.collector.notify import routing
    real = routing._read_cursor
    try:
        routing._read_cursor = lambda conn: (real(conn)[0], 1)  # a stale rev
        ev.fire("school_offline", "BX002", T0 + 1)
        st = route_pass(people, T0 + 100, S)
    finally:
        routing._read_cursor = real
    assert st.conflicts == 1 and st.enqueued == 0 and outbox(people) == []
    assert route_pass(people, T0 + 100, S).enqueued > 0


@pytest.mark.parametrize("text, line, what", [
    ("[[route]]\nid = 'a'\naudience = 'nobody'\n", 1, "audience"),
    ("[defaults]\ngroup_wait = 1\n\n[[route]]\nid = 'a'\naudience = 'so'\n"
     "[[route]]\nid = 'b'\naudience = 'so'\ngroup_by = ['town']\n", 7, "group_by"),
    ("[[route]]\nid = 'a'\naudience = 'so'\nseverities = ['urgent']\n", 1, "severities"),
    ("[[route]]\nid = 'a'\naudience = 'so'\ngroup_wait = -1\n", 1, "group_wait"),
    ("[[route]]\nid = 'a'\naudience = 'so'\ncolour = 'red'\n", 1, "colour"),
    ("[[route]]\nid = 'a'\naudience = 'so'\n[[route]]\nid = 'a'\naudience = 'so'\n", 4, "trùng"),
    ("[[route]\nid = 'a'\n", 1, "TOML"),
])
def test_bad_routes_file_names_the_line(text, line, what):
    from schoolmon.collector.notify.routing import RoutesError
    with pytest.raises(RoutesError) as exc:
        parse_routes(text, "r.toml")
    msg = str(exc.value)
    assert what in msg and ("line %d" % line in msg or "line 1" in msg), msg


def test_config_keys_routes_file_and_digest_at(tmp_path):
    from schoolmon.collector.config import load_config
    from schoolmon.collector.notify.routing import RoutesError, settings_from_config
    from schoolmon.protocol.settings import ConfigError
    cfg = load_config(demo=True, env={})
    s = settings_from_config(cfg)
    assert [r.id for r in s.routes] == ["school", "area", "so"]
    assert s.public_url == "http://127.0.0.1:8080" and s.digest_at == "07:00"
    bad = tmp_path / "routes.toml"
    bad.write_text("[[route]]\nid = 'x'\naudience = 'so'\n\n[[route]]\nid = 'y'\n"
                   "audience = 'so'\nseverities = ['urgent']\n", encoding="utf-8")
    cfg = load_config(demo=True, env={}, overrides={"notify": {"routes_file": str(bad)},
                                                    "api": {"public_url": "https://a.vn"}})
    with pytest.raises(RoutesError, match="line 5: severities") as exc:
        settings_from_config(cfg)
    assert isinstance(exc.value, ConfigError) and "routes.toml" in str(exc.value)
    with pytest.raises(ConfigError, match="HH:MM"):
        load_config(demo=True, env={"SCHOOLMON_NOTIFY_DIGEST_AT": "7h"})


def test_two_processes_routing_at_once_enqueue_each_message_once(people):
    """Whatever the interleaving, two passes at the same moment on two engines make the
    messages one pass makes: the second waits for the first's claim of the cursor row and
    is undone, or runs after it and finds nothing new."""
    import threading
    ev = Evaluator(people)
    for code in ("BX001", "BX002", "SP001"):
        ev.fire("school_offline", code, T0)
    url = people.url.render_as_string(hide_password=False)
    engines = [db.make_engine(url) for _ in range(2)]
    results, errors = [], []

    def run(e):
        try:
            results.append(route_pass(e, T0 + 60, S))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)
    try:
        threads = [threading.Thread(target=run, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for e in engines:
            e.dispose()
    assert errors == [] and len(results) == 2
    rows = outbox(people)
    # BX001: tech1 ×2, contact; BX002: tech2; officers (2) for Bát Xát, z-prov for Sa Pa;
    # the Sở: one per area group
    assert len(rows) == 9 and len({r.dedup_key for r in rows}) == 9
    assert sum(r.enqueued for r in results) == 9
