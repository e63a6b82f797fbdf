"""The daily digest on SQLite and the real PostgreSQL: its content (Vietnamese with
diacritics, the counts, the worst schools, the areas), its time (notify.digest_at, local),
once a day across restarts, the clock going back and two collectors."""
import pytest
from schoolmon.collector.notify.digest import (
    check_digest_at,
    digest_moment,
    digest_pass,
    figures,
)
from schoolmon.collector.store import schema as db

from .alerthelp import T0, Evaluator, make_store, outbox, settings, user

# 2026-12-02 07:00 in Hà Nội is 00:00Z; T0 is 10:00 local the same day
DIGEST = T0 - 3 * 3600
S = settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in make_store(request.param, tmp_path, postgres):
        user(e, "so", "so_admin", email="so@sogd.edu.vn")
        user(e, "so_en", "so_viewer", email="viewer@sogd.edu.vn", lang="en")
        user(e, "nomail", "so_admin")
        user(e, "tech", "school_tech", ["BX001"], email="tech@truong.edu.vn")
        yield e


def day_of_alerts(engine):
    """Over the 24 h before 07:00 on 2 Dec: BX001 offline twice (one still open), BX002
    once (resolved), SP001's Internet down (still open, warning); one alert from the day
    before that resolved before the window, and one opened after it."""
    ev = Evaluator(engine)
    a = ev.fire("school_offline", "BX001", DIGEST - 20 * 3600)
    ev.resolve(a, DIGEST - 18 * 3600)
    ev.fire("school_offline", "BX001", DIGEST - 5 * 3600, subject="school:BX001#2")
    b = ev.fire("school_offline", "BX002", DIGEST - 3 * 3600)
    ev.resolve(b, DIGEST - 2.5 * 3600)
    ev.fire("school_internet_down", "SP001", DIGEST - 10 * 3600, severity="warning")
    old = ev.fire("school_offline", "BX003", DIGEST - 40 * 3600, subject="school:old")
    ev.resolve(old, DIGEST - 30 * 3600)
    ev.fire("school_offline", "BX003", DIGEST + 600)  # after the window


def test_digest_moment_and_config_check():
    day, moment = digest_moment(T0, "07:00", "Asia/Ho_Chi_Minh")
    assert day == "2026-12-02" and moment == DIGEST
    day, moment = digest_moment(DIGEST - 1, "07:00", "Asia/Ho_Chi_Minh")  # 06:59:59 local
    assert day == "2026-12-02" and moment == DIGEST  # not yet: the pass waits for it
    day, moment = digest_moment(DIGEST - 7 * 3600 - 1, "07:00", "Asia/Ho_Chi_Minh")
    assert day == "2026-12-01" and moment == DIGEST - 86400  # 23:59:59 the day before
    assert check_digest_at("07:00") is None and check_digest_at("18:30") is None
    assert "HH:MM" in check_digest_at("7h") and check_digest_at("24:00")


def test_figures(engine):
    day_of_alerts(engine)
    with engine.connect() as c:
        f = figures(c, DIGEST - 86400, DIGEST)
    assert (f.opened, f.resolved, f.open) == (4, 2, 2)
    assert f.open_by_severity == {"info": 0, "warning": 1, "critical": 1}
    assert f.worst[0][:3] == ("Trường TH Bát Xát 1", "Bát Xát", 2)
    assert f.worst[0][3] == 2 * 3600 + 5 * 3600  # 2 h resolved + 5 h still open
    assert {a: (o, r, n) for a, o, r, n in f.by_area} == {"Bát Xát": (3, 2, 1),
                                                          "Sa Pa": (1, 0, 1)}


def test_digest_content_and_once_a_day(engine):
    day_of_alerts(engine)
    assert digest_pass(engine, DIGEST - 1, S) == 0  # 06:59:59: not yet
    assert digest_pass(engine, DIGEST + 5, S) == 2  # the two Sở users with an address
    rows = {r.recipient: r for r in outbox(engine)}
    assert set(rows) == {"so@sogd.edu.vn", "viewer@sogd.edu.vn"}
    vi = rows["so@sogd.edu.vn"]
    assert vi.channel == "email" and vi.lang == "vi" and vi.route == "digest"
    assert vi.subject == ("[schoolmon] Báo cáo cảnh báo ngày 02/12/2026: 4 mới, "
                          "2 đã khắc phục, 2 còn mở")
    for line in ("Báo cáo cảnh báo hằng ngày — 02/12/2026",
                 "Từ 01/12/2026 07:00 đến 02/12/2026 07:00 (giờ Asia/Ho_Chi_Minh)",
                 "  Cảnh báo mới: 4", "  Đã khắc phục: 2",
                 "  Còn đang diễn ra: 2 (Nghiêm trọng 1, Cảnh báo 1, Thông tin 0)",
                 "Trường cần chú ý nhất:",
                 "  1. Trường TH Bát Xát 1 (Bát Xát): 2 cảnh báo, tổng 7 giờ",
                 "  Bát Xát: mới 3, đã khắc phục 2, còn mở 1",
                 "  Sa Pa: mới 1, đã khắc phục 0, còn mở 1",
                 "Xem chi tiết: https://sm.example.vn/alerts"):
        assert line in vi.body.splitlines(), (line, vi.body)
    en = rows["viewer@sogd.edu.vn"]
    assert en.lang == "en" and "Alert report for 02/12/2026: 4 new" in en.subject
    # later the same day, a restart (the state row lost), the clock set back: nothing more
    assert digest_pass(engine, T0 + 3600, S) == 0
    with engine.begin() as c:
        c.execute(db.attt_state.delete().where(db.attt_state.c.key == "notify.digest"))
    assert digest_pass(engine, T0 + 7200, S) == 0
    assert digest_pass(engine, DIGEST + 1, S) == 0
    assert len(outbox(engine)) == 2
    # the next day: one more each
    assert digest_pass(engine, DIGEST + 86400, S) == 2
    assert len(outbox(engine)) == 4


def test_two_collectors_send_one_digest(engine):
    day_of_alerts(engine)
    other = db.make_engine(engine.url.render_as_string(hide_password=False))
    try:
        n1 = digest_pass(engine, DIGEST + 10, S)
        n2 = digest_pass(other, DIGEST + 20, S)
    finally:
        other.dispose()
    assert (n1, n2) == (2, 0) and len(outbox(engine)) == 2


def test_digest_at_is_configurable(engine):
    s = settings(digest_at="18:30")
    assert digest_pass(engine, T0, s) == 0  # 10:00 local
    assert digest_pass(engine, T0 + 8.5 * 3600, s) == 2  # 18:30 local
    body = outbox(engine)[0].body
    assert "Từ 01/12/2026 18:30 đến 02/12/2026 18:30" in body and "(không có)" in body


def test_a_digest_too_late_is_not_sent(engine):
    """A collector that starts at 21:00 sends no digest of "yesterday 07:00 → today 07:00"
    that evening (the demo did, reading "0 còn mở" over firing alerts); the next day's goes."""
    day_of_alerts(engine)
    assert digest_pass(engine, DIGEST + 14 * 3600, S) == 0  # 21:00 local
    assert digest_pass(engine, DIGEST + 3 * 3600 - 1, S) == 2  # just under three hours late
