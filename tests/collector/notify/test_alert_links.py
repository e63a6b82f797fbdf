"""alert_notifications on SQLite and the real PostgreSQL: routing links each message to
the alerts it covers, in the outbox's own transaction, with how it tells each (firing,
update, repeat, resolved); a restart, a rewound cursor or lost groups add no link twice."""
import pytest
from schoolmon.collector.notify.routing import CURSOR_KEY, route_pass
from schoolmon.collector.store import schema as db
from sqlalchemy import func, select, update

from .alerthelp import BAT_XAT, T0, Evaluator, make_store, outbox, settings, user

S = settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    yield from make_store(request.param, tmp_path, postgres)


@pytest.fixture
def people(engine):
    user(engine, "officer", "area_officer", [BAT_XAT], email="officer@phong.edu.vn")
    user(engine, "so", "so_admin", email="so@sogd.edu.vn")
    return engine


def links(engine):
    with engine.connect() as c:
        return sorted((r.alert_id, r.notification_id, r.kind)
                      for r in c.execute(select(db.alert_notifications)))


def officer_links(engine):
    ids = {r.id: i for i, r in enumerate(
        [r for r in outbox(engine) if r.recipient == "officer@phong.edu.vn"])}
    return sorted(((a, ids[n], k) for a, n, k in links(engine) if n in ids),
                  key=lambda x: (x[1], x[0]))


def test_each_message_links_the_alerts_it_covers_and_how(people):
    ev = Evaluator(people)
    a1 = ev.fire("school_offline", "BX001", T0)
    a2 = ev.fire("school_offline", "BX002", T0 + 10)
    route_pass(people, T0 + 60, S)
    assert officer_links(people) == [(a1, 0, "firing"), (a2, 0, "firing")]
    a3 = ev.fire("school_offline", "BX003", T0 + 100)
    route_pass(people, T0 + 360, S)
    assert officer_links(people)[2:] == [(a1, 1, "update"), (a2, 1, "update"),
                                         (a3, 1, "firing")]
    ev.resolve(a2, T0 + 400)
    route_pass(people, T0 + 700, S)
    assert officer_links(people)[5:] == [(a1, 2, "update"), (a2, 2, "resolved"),
                                         (a3, 2, "update")]
    route_pass(people, T0 + 700 + 43200, S)
    assert officer_links(people)[8:] == [(a1, 3, "repeat"), (a3, 3, "repeat")]
    # every message has its links, every link its message
    with people.connect() as c:
        ids = set(c.execute(select(db.notifications.c.id)).scalars())
    assert {n for _, n, _ in links(people)} == ids


def test_restart_rewound_cursor_and_lost_groups_add_no_link_twice(people):
    ev = Evaluator(people)
    ev.fire("school_offline", "BX001", T0)
    ev.fire("school_offline", "BX002", T0 + 10)
    route_pass(people, T0 + 70, S)
    before = links(people)
    assert len(before) == 4  # two messages (officer, Sở), two alerts each
    fresh = db.make_engine(people.url.render_as_string(hide_password=False))
    try:
        assert route_pass(fresh, T0 + 70, S).enqueued == 0
        with fresh.begin() as c:
            c.execute(db.notification_groups.delete())
            c.execute(update(db.attt_state).where(db.attt_state.c.key == CURSOR_KEY)
                      .values(value={"event_id": 0}))
        st = route_pass(fresh, T0 + 70, S)
        assert st.enqueued == 0 and st.duplicates == 2
    finally:
        fresh.dispose()
    assert links(people) == before


def test_links_and_messages_are_one_transaction(people, monkeypatch):
    """A failure writing the links undoes the messages too (and the cursor): the next pass
    makes both."""
    from schoolmon.collector.notify import routing
    ev = Evaluator(people)
    ev.fire("school_offline", "BX001", T0)

    def broken(conn, new, lnk):
        raise RuntimeError("disk full")
    monkeypatch.setattr(routing, "_write_links", broken)
    with pytest.raises(RuntimeError):
        route_pass(people, T0 + 60, S)
    with people.connect() as c:
        assert c.execute(select(func.count()).select_from(db.notifications)).scalar() == 0
    monkeypatch.undo()
    assert route_pass(people, T0 + 60, S).enqueued == 2
    assert len(links(people)) == 2
