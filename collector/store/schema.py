"""The state store's tables (SQLAlchemy 2 Core, no ORM) and engine setup.

Conventions (see docs/state-store.md):

- **Times** are UTC Unix epoch seconds everywhere: ``Float`` (double precision) for
  instants (``ts``, ``received_at``, ``first_seen`` ...), ``BigInteger`` for rollup bucket
  starts (multiples of 300 or 3600). Never local time; the UI converts to
  Asia/Ho_Chi_Minh when it shows them.
- **Organisation units** form a tree (``org_units.parent_id``); the level of a unit is data
  (``level``: "province", "area", or any label a province uses after the 2025 reform).
  Schools hang off their area unit (``schools.org_unit_id``).
- **Devices** carry their own idempotency bookkeeping: ``last_seq`` (high-water mark of data
  messages) and ``missing`` (bounded list of ``[lo, hi]`` ranges of seqs below the mark
  never received), so a (device, seq) pair already stored is recognised as a duplicate by
  any process that reads the row.
- **Rollups** hold, per device and bucket, ``n`` (health messages) and for each metric in
  ``ROLLUP_METRICS``: ``{m}_n`` (messages that carried it), ``{m}_min``, ``{m}_max``,
  ``{m}_sum`` (mean = sum / n of that metric).

Table and column names only change additively (the API reads them).
"""
import os
from typing import Any, Dict, List, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import Text, TypeDecorator

from ..families.health import ROLLUP_METRICS

metadata = MetaData()

#: Device states: "pending" (seen, not yet enrolled/approved), "active", "retired" (taken out
#: of service by a person: kept in history, no longer counted, never reactivated by its own
#: messages; revision 0004).
DEVICE_STATES = ("pending", "active", "retired")

org_units = Table(
    "org_units", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, ForeignKey("org_units.id"), nullable=True, index=True),
    #: level label as data: "province", "area" (a former district, a commune, a cluster ...)
    Column("level", String(32), nullable=False),
    #: unique code: the province code, or "{province}/{area slug}" for areas
    Column("code", String(128), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    #: abolished by the 2025 reform (shown "(cũ)"); kept so its schools' history stays (0004)
    Column("former", Boolean, nullable=True, default=False),
    #: earlier names, oldest first: [{"name": ..., "until": epoch s}] (0004)
    Column("previous_names", JSON, nullable=True),
)

schools = Table(
    "schools", metadata,
    Column("code", String(64), primary_key=True),  # MOET code (CSDL ngành)
    Column("name", String(255), nullable=False),
    #: one of MN, TH, THCS, THPT, GDNN-GDTX, LIEN_CAP (see registry.LEVELS)
    Column("level", String(16), nullable=False),
    Column("org_unit_id", Integer, ForeignKey("org_units.id"), nullable=False, index=True),
    Column("address", String(512)),
    Column("lat", Float),
    Column("lon", Float),
    Column("isp", String(64)),
    Column("link_type", String(32)),
    Column("contracted_down_mbps", Float),
    Column("contracted_up_mbps", Float),
    Column("students", Integer),
    Column("contact_name", String(255)),
    Column("contact_phone", String(64)),
    Column("contact_email", String(255)),
    Column("created_at", Float),
    Column("updated_at", Float),
)

devices = Table(
    "devices", metadata,
    Column("id", String(64), primary_key=True),  # = MQTT username = client id
    Column("school_code", String(64), ForeignKey("schools.code"), nullable=False, index=True),
    Column("role", String(16)),  # lab | office | server | router, from inventory
    Column("room", String(128)),
    Column("state", String(16), nullable=False, default="pending"),
    Column("first_seen", Float),  # received_at of the first message
    Column("last_seen", Float),  # received_at of the latest message
    Column("online", Boolean, nullable=False, default=False),
    Column("online_changed_at", Float),
    Column("offline_reason", String(16)),  # shutdown | lost | timeout | unreachable (router)
    Column("hb", Integer),  # health interval the agent announced (status.hb), seconds
    Column("hostname", String(255)),
    Column("os", String(255)),  # summary, e.g. "Windows 10 Pro 22H2"
    Column("agent", String(32)),  # agent version
    Column("last_seq", BigInteger),  # high-water mark of data seqs; NULL before the first
    Column("last_ts", Float),  # ts of the newest data message (reset detection)
    Column("missing", JSON),  # [[lo, hi], ...] inclusive, bounded; seqs below the mark not seen
    Column("lost_total", BigInteger, nullable=False, default=0),  # currently-missing seqs counted
    Column("duplicates_total", BigInteger, nullable=False, default=0),
    Column("received_total", BigInteger, nullable=False, default=0),  # accepted data messages
    Column("resets", Integer, nullable=False, default=0),  # counter resets seen
    #: row version, +1 on every write (by any process): a store whose cached copy has another
    #: rev re-reads the row before it decides anything about this device
    Column("rev", BigInteger, nullable=True, default=0),
    #: a seq more than MAX_JUMP above last_seq, held (the mark stays) until the device's
    #: next message confirms the jump: one stray seq cannot silence a device (0003)
    Column("seq_jump", BigInteger, nullable=True),
)

device_latest = Table(
    "device_latest", metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("seq", BigInteger),
    Column("received_at", Float, nullable=False),
    Column("skew", String(16)),  # None | "future" | "too_old"
    Column("payload", JSON, nullable=False),
)


def _rollup_table(name: str) -> Table:
    cols: List[SchemaItem] = [
        Column("device_id", String(64), primary_key=True),
        Column("bucket_start", BigInteger, primary_key=True),  # epoch s, UTC
        Column("n", Integer, nullable=False),
    ]
    for m in ROLLUP_METRICS:
        cols += [Column(m + "_n", Integer, nullable=False, default=0),
                 Column(m + "_min", Float), Column(m + "_max", Float), Column(m + "_sum", Float)]
    return Table(name, metadata, *cols, Index("ix_%s_bucket" % name, "bucket_start"))


rollup_5m = _rollup_table("rollup_5m")
rollup_1h = _rollup_table("rollup_1h")

#: Hours whose 5-minute rollups changed since the hourly rollup was last built.
rollup_dirty = Table(
    "rollup_dirty", metadata,
    Column("bucket_start", BigInteger, primary_key=True),  # start of the hour, epoch s
)

#: Per-school state other parts keep (docs/roadmap.md: speed-test leases, data budgets ...), one
#: JSON value per (school, key), with a row version for compare-and-set between processes.
school_state = Table(
    "school_state", metadata,
    Column("school_code", String(64), ForeignKey("schools.code"), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("value", JSON),
    Column("updated_at", Float, nullable=False),
    Column("rev", BigInteger, nullable=False, default=1),
)

#: Messages refused for good (kept aside, acknowledged): an administrator inspects and
#: counts them. Written by ingest; revision 0002.
dead_letters = Table(
    "dead_letters", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", Float, nullable=False),  # UTC epoch s
    Column("topic", String(512), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # raw bytes as received
    #: a protocol reject reason, or store_refused / timeseries_refused
    Column("reason", String(64), nullable=False),
    Column("detail", String(1000), nullable=True),
    Column("device_id", String(128), nullable=True),
    Column("school_code", String(64), nullable=True),
    Index("ix_dead_letters_received_at", "received_at"),
    Index("ix_dead_letters_reason", "reason"),
)

events = Table(
    "events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("ts", Float, nullable=False, index=True),
    #: device_registered | device_online | device_offline | device_moved | seq_reset | seq_jump |
    #: school_status | attt_status_changed (from, to: a school's ATTT status)
    Column("kind", String(32), nullable=False),
    Column("school", String(64), index=True),
    Column("device", String(64)),
    Column("detail", JSON),
)


# --- users, sessions, tokens, audit (revision 0004) -------------------------------------

#: Roles of web users and personal tokens (api.admin_token is a so_admin, api.read_tokens
#: are so_viewers, neither with a user row).
USER_ROLES = ("so_admin", "so_viewer", "area_officer", "school_tech")

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=True),  # argon2id; NULL: no password login
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("disabled_at", Float, nullable=True),
    # where and how alerts reach this user (revision 0007)
    Column("email", String(255), nullable=True),
    Column("zalo_chat_id", String(64), nullable=True),
    Column("notify_min_severity", String(16), nullable=True),  # NULL: warning
    Column("lang", String(2), nullable=True),  # NULL: vi
)

#: The org units (area codes) and schools (school codes) a scoped user is limited to.
user_units = Table(
    "user_units", metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("kind", String(8), primary_key=True),  # "org" | "school"
    Column("code", String(128), primary_key=True),
)

#: Web sessions: the cookie holds a random token, only its SHA-256 is stored.
sessions = Table(
    "sessions", metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("client", String(64), nullable=True),
)

#: Personal API tokens (``user token NAME``): shown once, only the SHA-256 stored.
api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

#: Who did what: approvals, moves, retirements, imports, users, tokens, units, logins.
audit_log = Table(
    "audit_log", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("ts", Float, nullable=False, index=True),
    Column("actor", String(64), nullable=False),  # user name, "admin-token", "cli:<os user>"
    Column("action", String(32), nullable=False, index=True),
    Column("target", String(255), nullable=True),
    Column("detail", JSON, nullable=True),
    Column("client", String(64), nullable=True),  # client address of an HTTP request
)

#: Failed logins, for the rate limit (per name and per client address) across processes.
login_failures = Table(
    "login_failures", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("ts", Float, nullable=False, index=True),
    Column("name", String(64), nullable=False, index=True),
    Column("client", String(64), nullable=False, index=True),
)


# --- ATTT security posture (revision 0005; collector/posture writes, read/ shows) ---------

class OrJSON(TypeDecorator):  # type: ignore[type-arg]
    """A JSON value kept as text, written and read with orjson (a collector dependency):
    the evaluator writes 50,000 results per full pass, and the standard library's encoder
    was a fifth of it (docs/attt.md). The evaluator's tables only: nothing queries inside
    these values, so plain text costs nothing on PostgreSQL either."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Optional[str]:
        if value is None:
            return None
        import orjson
        return orjson.dumps(value).decode("utf-8")

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        import orjson
        return orjson.loads(value)


#: Each device's latest judgement against the ATTT baseline. ``result`` holds every check
#: ({id: {state, ev, values, severity, since}}), the OS support and the flags the school
#: rule reads; the columns beside it are what lists filter on.
attt_devices = Table(
    "attt_devices", metadata,
    Column("device_id", String(64), ForeignKey("devices.id"), primary_key=True),
    Column("school_code", String(64), nullable=False, index=True),
    Column("evaluated_at", Float, nullable=False),
    Column("reported_at", Float, nullable=True),  # ts of the security message judged
    Column("inventory_ts", Float, nullable=True),  # ts of the inventory message judged
    Column("stale", Boolean, nullable=False),
    Column("worst", String(16), nullable=False),  # fail | unknown | warn | pass | na
    Column("fail_n", Integer, nullable=False),
    Column("unknown_n", Integer, nullable=False),
    Column("os_status", String(16), nullable=False),  # supported | esu | unsupported | unknown
    #: every critical check passes (pass, warn, na); every critical and high check passes
    Column("crit_ok", Boolean, nullable=False),
    Column("crit_high_ok", Boolean, nullable=False),
    #: {check id: [state, since]}: what the school rule and the next judgement read (small,
    #: so neither decodes ``result``)
    Column("states", OrJSON, nullable=False),
    Column("result", OrJSON, nullable=False),
)

#: Each school's ATTT status (meets | improve | below | insufficient | no_pcs) since when,
#: with its coverage, gates and per-check counts; ``rev`` for compare-and-set between
#: collectors (one event per change).
attt_schools = Table(
    "attt_schools", metadata,
    Column("school_code", String(64), ForeignKey("schools.code"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("since", Float, nullable=False),
    Column("evaluated_at", Float, nullable=False),
    Column("detail", OrJSON, nullable=False),
    Column("rev", BigInteger, nullable=False, default=1),
)

#: A school's ATTT status per local day (the last of the day): the trend a Sở reports.
attt_school_days = Table(
    "attt_school_days", metadata,
    Column("school_code", String(64), ForeignKey("schools.code"), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, the province's local date
    Column("status", String(16), nullable=False),
    Column("evaluated_at", Float, nullable=False),
)

#: The evaluator's own state, one JSON value per key (``run``: watermark, rules hash, the
#: day of the last full evaluation), shared by every collector on the store.
attt_state = Table(
    "attt_state", metadata,
    Column("key", String(32), primary_key=True),
    Column("value", OrJSON, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("rev", BigInteger, nullable=False, default=1),
)



# --- connectivity (revision 0006; collector/families and collector/connectivity write) ----

#: Every bandwidth test a device reported (failed ones too: ``ok`` false, ``reason``), one
#: row per (device, seq) so a replayed message is stored once. What the connectivity
#: baseline judges (medians per school-day and school-week) and the school page charts.
link_tests = Table(
    "link_tests", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("school_code", String(64), ForeignKey("schools.code"), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("ts", Float, nullable=False),  # when the test ran (the message's ts), UTC epoch
    Column("received_at", Float, nullable=False),
    Column("lease", String(64), nullable=True),  # NULL: run by hand
    Column("ok", Boolean, nullable=False),
    Column("reason", String(256), nullable=True),
    Column("trigger", String(16), nullable=True),  # slot | boot | manual | command
    Column("mode", String(8), nullable=True),  # full | short
    Column("down_mbps", Float, nullable=True),
    Column("up_mbps", Float, nullable=True),
    Column("ping_ms", Float, nullable=True),
    Column("jitter_ms", Float, nullable=True),
    Column("bytes_rx", BigInteger, nullable=True),
    Column("bytes_tx", BigInteger, nullable=True),
    Column("server", String(512), nullable=True),
    Column("isp", String(128), nullable=True),
    Column("wired", Boolean, nullable=True),
    #: NULL: counted. Else why the test does not count (and is shown greyed): `implausible`
    #: (numbers no link can give), `not_holder` / `expired` / `unknown_lease` (its lease
    #: was not this device's, or had expired when it ran)
    Column("refused", String(32), nullable=True),
    Index("ix_link_tests_school_ts", "school_code", "ts"),
    #: the connectivity evaluator's watermark (tests received since its last pass)
    Index("ix_link_tests_received", "received_at"),
    UniqueConstraint("device_id", "seq", name="uq_link_tests_device_seq"),
)

#: The light probes of a school, counted per UTC hour (every agent probes every few
#: minutes: 50,000 PCs would be 170 rows a second; the baseline needs only the share that
#: succeeded and the mean times). ``*_n``: probes that tried that target, ``*_ok``: that
#: succeeded, ``*_ms``: sum of the times of the successful ones.
link_probe_hours = Table(
    "link_probe_hours", metadata,
    Column("school_code", String(64), ForeignKey("schools.code"), primary_key=True),
    Column("hour_start", BigInteger, primary_key=True),  # epoch s, UTC, multiple of 3600
    Column("n", Integer, nullable=False, default=0),
    *[c for t in ("gw", "dns", "dom", "intl") for c in (
        Column(t + "_n", Integer, nullable=False, default=0),
        Column(t + "_ok", Integer, nullable=False, default=0),
        Column(t + "_ms", Float, nullable=False, default=0.0))],
    Index("ix_link_probe_hours_hour", "hour_start"),
)

#: Each school's connectivity status (meets | improve | below | insufficient) since when,
#: with the evidence (``detail``: the day and week aggregates per data source, the
#: thresholds, the consecutive failures); ``rev`` for compare-and-set between collectors.
connectivity_schools = Table(
    "connectivity_schools", metadata,
    Column("school_code", String(64), ForeignKey("schools.code"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("since", Float, nullable=False),
    Column("evaluated_at", Float, nullable=False),
    Column("detail", OrJSON, nullable=False),
    Column("rev", BigInteger, nullable=False, default=1),
)

#: A school's connectivity per local school day: the day's medians and uptime and the
#: status at the end of the day (the history and the trend).
connectivity_school_days = Table(
    "connectivity_school_days", metadata,
    Column("school_code", String(64), ForeignKey("schools.code"), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, the province's local date
    Column("status", String(16), nullable=False),
    Column("tests", Integer, nullable=False, default=0),
    Column("down_mbps", Float, nullable=True),  # median of the day's successful tests
    Column("up_mbps", Float, nullable=True),
    Column("ping_ms", Float, nullable=True),
    Column("uptime_pct", Float, nullable=True),  # successful probes / attempts, school hours
    Column("bytes", BigInteger, nullable=False, default=0),  # moved by the day's tests
    Column("evaluated_at", Float, nullable=False),
)

# --- alerting (revision 0007; collector/alerting and collector/notify write) ------------

#: Alert states: ``pending`` (condition true, ``for`` not yet elapsed), ``firing``,
#: ``resolved`` (closed for good; a new occurrence is a new row).
ALERT_STATES = ("pending", "firing", "resolved")

#: One row per occurrence of a rule on a subject. At most one open (pending or firing) row
#: per (rule, subject): the partial unique index below makes a second evaluator's insert
#: fail instead of duplicating. ``subject`` is ``school:CODE``, ``device:ID``, ``area:CODE``
#: or ``collector:NAME``; school_code/area_code/device_id are what scopes and filters use.
alerts = Table(
    "alerts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("rule", String(64), nullable=False),
    Column("subject", String(160), nullable=False),
    Column("school_code", String(64), nullable=True, index=True),
    Column("area_code", String(128), nullable=True, index=True),
    Column("device_id", String(64), nullable=True, index=True),
    Column("severity", String(16), nullable=False),  # info | warning | critical
    Column("state", String(16), nullable=False),  # ALERT_STATES
    Column("started_at", Float, nullable=False),  # condition first seen true
    Column("fired_at", Float, nullable=True),
    Column("resolved_at", Float, nullable=True),
    Column("last_true_at", Float, nullable=False),  # hysteresis: clear only after it stays false
    Column("evaluated_at", Float, nullable=False),
    Column("value", OrJSON, nullable=True),  # the evidence the templates render
    #: the open alert (id) this one is suppressed by (router down → its PCs), or NULL
    Column("suppressed_by", BigInteger, nullable=True),
    Column("silenced_by", Integer, nullable=True),  # silences.id while one matches
    Column("ack_by", String(64), nullable=True),
    Column("ack_at", Float, nullable=True),
    Column("ack_comment", String(1000), nullable=True),
    Column("rev", BigInteger, nullable=False, default=1),
    Index("ix_alerts_state", "state"),
    Index("uq_alerts_open", "rule", "subject", unique=True,
          sqlite_where=text("state != 'resolved'"),
          postgresql_where=text("state != 'resolved'")),
)

#: Everything that happened to an alert, in order: the history the pages show and the
#: stream routing consumes by a persisted cursor (``id``). kind: pending | firing | resolved |
#: acked | unacked | silenced | unsilenced | suppressed | unsuppressed | cancelled (pending
#: that cleared before ``for``).
alert_events = Table(
    "alert_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("ts", Float, nullable=False, index=True),
    Column("alert_id", BigInteger, nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("actor", String(64), nullable=True),  # a user, or NULL for the evaluator
    Column("detail", OrJSON, nullable=True),
)

#: Silences and maintenance windows: while one matches an alert (every non-NULL matcher
#: equal), the alert still opens and resolves but nobody is notified. kind: silence |
#: maintenance. Deleting sets deleted_at (history kept).
silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False, default="silence"),
    Column("rule", String(64), nullable=True),
    Column("school_code", String(64), nullable=True),
    Column("area_code", String(128), nullable=True),
    Column("device_id", String(64), nullable=True),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False),
    Column("comment", String(1000), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("deleted_by", String(64), nullable=True),
    Column("deleted_at", Float, nullable=True),
    Index("ix_silences_ends", "ends_at"),
)

#: The outbox: every message to send, recorded before any attempt. ``dedup_key`` is unique,
#: so enqueueing the same message twice (a restart, a second collector, a clock jump)
#: stores it once. A sender claims a row by compare-and-set on ``rev`` and ``state``.
#: state: queued | sending | sent | failed (will retry at next_attempt_at) | dead (gave up).
notifications = Table(
    "notifications", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("dedup_key", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("channel", String(16), nullable=False),  # email | apprise | webhook | zalo
    Column("recipient", String(512), nullable=False),  # address, chat id, URL name
    Column("route", String(64), nullable=True),
    Column("group_key", String(255), nullable=True, index=True),
    Column("lang", String(2), nullable=False, default="vi"),
    Column("subject", String(512), nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", OrJSON, nullable=True),  # the webhook's JSON; alert ids for the rest
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_until", Float, nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("last_error", String(1000), nullable=True),
    Column("rev", BigInteger, nullable=False, default=1),
    Index("ix_notifications_due", "state", "next_attempt_at"),
)

#: Grouping (Alertmanager's semantics) per (route, group): when the group was opened, when
#: its last message went out, and what that message covered, so group_interval and
#: repeat_interval hold across restarts and processes.
notification_groups = Table(
    "notification_groups", metadata,
    Column("group_key", String(255), primary_key=True),
    Column("route", String(64), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("last_sent_at", Float, nullable=True),
    Column("last_digest", String(64), nullable=True),  # hash of the alert set last sent
    Column("state", OrJSON, nullable=True),
    Column("rev", BigInteger, nullable=False, default=1),
)

#: Which alerts each outbox message is about, and how (firing | resolved | repeat |
#: update): the alert's page lists its messages and their fate from here. Written by
#: routing in the same transaction as the message itself, only for messages that were
#: new, so a message never lacks its links and a link never lacks its message.
alert_notifications = Table(
    "alert_notifications", metadata,
    Column("alert_id", BigInteger, primary_key=True),
    Column("notification_id", BigInteger, primary_key=True),
    Column("kind", String(16), nullable=False),
    Index("ix_alert_notifications_notification_id", "notification_id"),
)


def make_engine(url: str, echo: bool = False, **kw: Any) -> Engine:
    """An engine for ``store.url``. SQLite gets WAL, synchronous=NORMAL, a busy timeout
    and foreign keys on every connection; PostgreSQL goes through psycopg 3 (a plain
    ``postgresql://`` URL is mapped to ``postgresql+psycopg://``)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        connect_args: Dict[str, Any] = dict(kw.pop("connect_args", {}))
        connect_args.setdefault("timeout", 30)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(url, echo=echo, connect_args=connect_args, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            memory = ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/")
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    kw.setdefault("pool_pre_ping", True)
    return create_engine(url, echo=echo, **kw)


def create_all(engine: Engine) -> None:
    """Bring the database to the newest schema revision (Alembic; see ``store/migrate.py``).
    Every schema change is a revision: never ``metadata.create_all``."""
    from .migrate import upgrade
    upgrade(engine)


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there yet (opening it would create it)."""
    if not url.startswith("sqlite"):
        return True
    from sqlalchemy.engine import make_url
    path = make_url(url).database
    if not path or path == ":memory:" or "mode=memory" in url:
        return False
    return os.path.exists(path)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def dialect_insert(engine_or_conn: Any, table: Table) -> Any:
    """``insert(table)`` of the engine's dialect (has ``on_conflict_do_update``)."""
    name: Optional[str] = engine_or_conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert(table)
