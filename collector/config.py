"""The collector's configuration keys: one schema, loaded by schoolmon.protocol.settings.

Typed settings that refuse insecure defaults: outside demo mode the admin token must be
set, long and not a known default.
"""
import socket
from types import SimpleNamespace
from typing import Any, Dict, Mapping, Optional

from schoolmon.protocol.settings import (
    ConfigError,
    Key,
    Schema,
    check_http_url,
    check_listen,
    check_mqtt_url,
    load,
)
from zoneinfo import ZoneInfo

#: Tokens seen in examples and tutorials; refused outside demo mode.
KNOWN_DEFAULT_TOKENS = frozenset({
    "changeme", "change-me", "admin", "secret", "token", "password", "schoolmon", "demo",
    "test", "my-token", "my-super-secret-auth-token", "demo-admin-token",
})
MIN_TOKEN_LENGTH = 16
#: Fewer different characters than this is no secret ("aaaa...", "0000...", "abab...").
MIN_TOKEN_DISTINCT = 6

#: State-store back ends the collector is built and tested for.
STORE_BACKENDS = ("sqlite", "postgresql")


def check_store_url(value: Any) -> Optional[str]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        return ("không phải URL SQLAlchemy / is not an SQLAlchemy URL "
                "(sqlite:///FILE or postgresql+psycopg://user:pass@host/db)")
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() not in STORE_BACKENDS:
        return ("phải là SQLite hoặc PostgreSQL / must be SQLite or PostgreSQL, got %r" % shown)
    try:
        url.get_dialect()
    except NoSuchModuleError:
        return "trình điều khiển không có / no such database driver: %r" % shown
    return None


def check_timezone(value: Any) -> Optional[str]:
    try:
        ZoneInfo(value)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        return ("không phải múi giờ IANA / is not an IANA time zone (e.g. Asia/Ho_Chi_Minh), "
                "got %r" % value)
    return None


def token_problem(token: str) -> Optional[str]:
    """Why ``token`` is no secret, or None. The text never shows the token."""
    if token != token.strip() or any(ch.isspace() for ch in token):
        return "chứa khoảng trắng / contains white space"
    if token.lower() in KNOWN_DEFAULT_TOKENS:
        return "là giá trị mặc định đã biết / is a known default"
    if len(token) < MIN_TOKEN_LENGTH:
        return "ngắn hơn %d ký tự / is shorter than %d characters" % (
            MIN_TOKEN_LENGTH, MIN_TOKEN_LENGTH)
    if len(set(token)) < MIN_TOKEN_DISTINCT:
        return ("quá ít ký tự khác nhau (dễ đoán) / has fewer than %d different characters "
                "(guessable)" % MIN_TOKEN_DISTINCT)
    return None

def check_digest_at(value: Any) -> Optional[str]:
    from .notify.digest import check_digest_at as check
    return check(value)


#: Schemes of ``notify.smtp_url``.
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


def check_smtp_url(value: Any) -> Optional[str]:
    if not value:
        return None
    from urllib.parse import urlsplit

    from schoolmon.protocol.settings import redact_url
    try:
        parts = urlsplit(value)
        host, _port = parts.hostname, parts.port
    except ValueError:
        return "không phải URL hợp lệ / is not a valid URL: %r" % redact_url(value)
    if parts.scheme not in SMTP_SCHEMES or not host:
        return ("phải là / must be smtp://host:port, smtp+starttls://user:pass@host:587 hoặc "
                "/ or smtps://user:pass@host:465, got %r" % redact_url(value))
    return None


def check_apprise_urls(value: Any) -> Optional[str]:
    """Each entry a URL Apprise takes; the text names the entry by position, never the
    URL (it is made of secrets)."""
    if not value:
        return None
    import apprise

    from .notify.channels.apprise_urls import parse_entries
    for i, (_name, url) in enumerate(parse_entries(list(value)), start=1):
        if apprise.Apprise.instantiate(url) is None:
            return ("[%d]: Apprise không nhận URL này (sai kiểu hoặc thiếu phần bắt buộc) / "
                    "Apprise does not take this URL (unknown scheme or a required part "
                    "missing)" % i)
    return None


def check_notify(cfg: SimpleNamespace) -> None:
    """The signed webhook is signed: a webhook URL without its secret is refused."""
    n = getattr(cfg, "notify", None)
    if n is not None and n.webhook_url and not n.webhook_secret:
        raise ConfigError("notify.webhook_secret: phải được đặt khi có notify.webhook_url (mọi "
                          "webhook đều được ký) / must be set when notify.webhook_url is (every "
                          "webhook is signed); e.g. `%s`" % GENERATE_TOKEN)


def check_slots(value: Any) -> Optional[str]:
    """Each slot ``HH:MM-HH:MM`` with start before end (local time)."""
    from .connectivity.scheduler import parse_slot
    for i, slot in enumerate(value):
        try:
            parse_slot(slot)
        except ValueError as exc:
            return "[%d] %s" % (i, exc)
    return None


SCHEMA: Schema = {
    "mqtt": {
        "url": Key("str", "", "Broker URL, `mqtt://host:port` or `mqtts://host:port`; empty "
                   "in demo mode starts an embedded broker.", check=check_mqtt_url),
        "username": Key("str", "", "Broker username."),
        "password": Key("str", "", "Broker password.", secret=True),
        "ca_file": Key("str", "", "CA certificate (PEM) to verify an mqtts:// broker."),
        "client_id": Key("str", "", "MQTT client id (default `schoolmon-collector-{host name}`); "
                         "keep it stable: the broker holds the persistent session (messages "
                         "sent while the collector is down) under it."),
        "keepalive": Key("int", 30, "MQTT keepalive, seconds.", minimum=5, maximum=3600),
        "protocol": Key("choice", "5", "MQTT protocol version: `5`, or `3.1.1` for a broker "
                        "without MQTT 5 (the demo's embedded amqtt).", choices=("5", "3.1.1")),
    },
    "ingest": {
        "shared_group": Key("str", "", "When set, subscribe as `$share/{group}/...` so several "
                            "collector processes share the load."),
        "batch_size": Key("int", 5000, "Messages handled (stored, then acknowledged) together.",
                          minimum=1, maximum=100000),
        "batch_wait": Key("float", 0.2, "Longest wait, seconds, to fill a batch.",
                          minimum=0.001, maximum=60),
        "max_pending": Key("int", 50000, "Messages received but not yet stored; above this the "
                           "collector stops reading from the broker (which queues for it).",
                           minimum=100, maximum=10_000_000),
        "max_future_skew": Key("float", 300, "A `ts` further in the future than this "
                               "(seconds) is replaced by the receive time and flagged.",
                               minimum=0),
        "max_age": Key("float", 7 * 86400, "A `ts` older than this (seconds; an agent queue "
                       "holds 7 days) is replaced by the receive time and flagged.", minimum=60),
    },
    "store": {
        "url": Key("str", "sqlite:///schoolmon.db", "State store, an SQLAlchemy URL: SQLite "
                   "(default) or `postgresql+psycopg://user:pass@host/db`.",
                   check=check_store_url),
        "rollup_5m_days": Key("int", 30, "Days of 5-minute rollups kept.", minimum=1),
        "rollup_1h_days": Key("int", 365, "Days of hourly rollups kept.", minimum=1),
        "link_tests_days": Key("int", 400, "Days of speed-test results (`link_tests`) kept: "
                               "more than a school year, for the yearly report (at least "
                               "a month: the data budget sums the month's tests).",
                               minimum=31),
        "link_probe_hours_days": Key("int", 90, "Days of the light probes' hourly counts "
                                     "(`link_probe_hours`) kept (at least the week the "
                                     "baseline judges).", minimum=8),
        "connectivity_history_days": Key("int", 730, "Days of each school's daily "
                                         "connectivity history (`connectivity_school_days`) "
                                         "kept.", minimum=8),
    },
    "influx": {
        "url": Key("str", "", "InfluxDB v2 write API base URL (InfluxDB 2, or VictoriaMetrics); "
                   "time series go there only when set.", check=check_http_url),
        "org": Key("str", "schoolmon", "InfluxDB organisation."),
        "bucket": Key("str", "schoolmon", "InfluxDB bucket."),
        "token": Key("str", "", "InfluxDB API token.", secret=True),
        "batch_lines": Key("int", 5000, "Lines per write request.", minimum=1, maximum=100000),
        "gzip": Key("bool", True, "Compress write requests."),
        "timeout": Key("float", 10, "Seconds per write request.", minimum=0.1),
    },
    "liveness": {
        "default_interval": Key("int", 60, "Health interval assumed for a device that has not "
                                "said its own (`hb` in its status).", minimum=5),
        "sweep_interval": Key("float", 15, "Seconds between heartbeat-timeout sweeps.",
                              minimum=0.1),
    },
    "api": {
        "listen": Key("str", "127.0.0.1:8080", "Where the HTTP API and web UI listen.",
                      check=check_listen),
        "admin_token": Key("str", "", "Bearer token with full rights. Required (at least 16 "
                           "characters, not a known default) outside demo mode.", secret=True),
        "read_tokens": Key("list", [], "Bearer tokens with read-only rights on everything.",
                           secret=True),
        "public_url": Key("str", "", "The web UI's address as readers reach it (e.g. "
                          "`https://schoolmon.sogd.example.vn`), for links in notifications; "
                          "empty: `http://{api.listen}`.", check=check_http_url),
    },
    "speedtest_server": {
        "enabled": Key("bool", True, "Serve the legacy speedtest endpoints at `/speedtest/` "
                       "(`latency.txt`, `random{N}x{N}.jpg`, `upload.php`): the province's own "
                       "bandwidth-test target, no login (docs/connectivity.md)."),
        "max_concurrent": Key("int", 8, "Most downloads and uploads served at once; over it a "
                              "request gets 503 with Retry-After.", minimum=1, maximum=1000),
    },
    "baseline": {
        "attt_file": Key("str", "", "The ATTT baseline (TOML: checks, school rule); empty: the "
                         "shipped `collector/baseline/attt.toml`. A file that cannot be used "
                         "stops the collector at start with its line (docs/attt.md)."),
        "os_support_file": Key("str", "", "The OS support table (TOML); empty: the shipped "
                               "`collector/baseline/os_support.toml`."),
        "connectivity_file": Key("str", "", "The connectivity baseline (TOML: thresholds, "
                                 "school hours); empty: the shipped "
                                 "`collector/baseline/connectivity.toml`. A file that cannot "
                                 "be used stops the collector at start with its line "
                                 "(docs/connectivity.md)."),
        "evaluate_interval": Key("float", 15, "Seconds between passes of the ATTT evaluator "
                                 "(devices whose security or inventory message is new).",
                                 minimum=0.1, maximum=86400),
    },
    "connectivity": {
        "slots": Key("list", ["08:00-12:00", "12:00-16:00", "16:00-20:00"], "School-hour "
                     "slots (local time, `HH:MM-HH:MM`): one bandwidth test per school at a "
                     "random moment inside each, on school days (Mon–Sat).",
                     check=check_slots),
        "boot_window": Key("float", 900, "The first test of a day runs at a random moment "
                           "this many seconds after the school's first agent comes online.",
                           minimum=0, maximum=86400),
        "test_timeout": Key("float", 180, "Longest a test may take, seconds; a lease expires "
                            "this plus `lease_margin` after it was granted.", minimum=10,
                            maximum=3600),
        "lease_margin": Key("float", 60, "Seconds added to `test_timeout` before a lease "
                            "without a result expires (the result's way back).", minimum=0,
                            maximum=3600),
        "budget_fibre_mb": Key("float", 60000, "Monthly test data budget per school on a "
                               "fixed link (fibre, ADSL ...), MB (10^6 bytes): a month of "
                               "full tests at up to 4 a school day, 470 MB each on 200 "
                               "Mbit fibre, is about 49,000 MB.", minimum=0),
        "budget_mobile_mb": Key("float", 1000, "Monthly test data budget per school on a "
                                "metered link (`link_type` 3g, 4g, lte, mobile, di động), "
                                "MB (10^6 bytes).", minimum=0),
        "short_mb": Key("float", 10, "Bytes a short test (metered links) may move, MB.",
                        minimum=1, maximum=1000),
        "test_server": Key("str", "auto", "`upload.php` URL of the legacy speedtest server "
                           "schools test against; `auto`: the collector's own "
                           "`http://{api.listen}/speedtest/upload.php` (a listen address of "
                           "0.0.0.0 becomes this host's name); empty: speedtest.net's "
                           "nearest server."),
        "scheduler": Key("bool", True, "Grant speed-test leases (the scheduler thread). "
                         "Off: no test is granted; an agent still tests by hand."),
        "schedule_interval": Key("float", 5, "Seconds between passes of the test scheduler "
                                 "(plans, leases, results).", minimum=0.1, maximum=3600),
        "router_hb": Key("int", 900, "Heartbeat interval (s) given to a school router's device "
                         "(`router.{school}`): it goes offline (`timeout`) 3 × this + 60 s "
                         "after its last poll.", minimum=30, maximum=86400),
        "manual_per_hour": Key("int", 6, "Tests one user may ask for now (Đo ngay: the API "
                               "and the school page) in an hour; more answer 429. One "
                               "lease per school limits each school anyway.", minimum=1,
                               maximum=1000),
    },
    "alerting": {
        "enabled": Key("bool", True, "Evaluate the alert rules (a thread of the collector; "
                       "with several collectors on one PostgreSQL store one of them leads)."),
        "rules_file": Key("str", "", "The alert rules (TOML); empty: the shipped "
                          "`collector/alerting/rules.toml`. A file that cannot be used stops "
                          "the collector at start with its line (docs/alerting.md)."),
        "evaluate_interval": Key("float", 30, "Seconds between full (level-triggered) passes "
                                 "of the alert rules over every school.", minimum=1,
                                 maximum=3600),
        "poll_interval": Key("float", 2, "Seconds between looks at the store's events: "
                             "schools named by new events are judged again at once.",
                             minimum=0.1, maximum=600),
        "calendar_file": Key("str", "", "The school calendar (TOML: school and office hours, "
                             "school years, holidays, overrides per area and school); empty: "
                             "the shipped `collector/alerting/calendar.toml`; `always`: every "
                             "hour is school hours (nothing is ever off hours). A file that "
                             "cannot be used stops the collector at start with its line "
                             "(docs/alerting.md)."),
    },
    "notify": {
        "enabled": Key("bool", True, "Send the outbox's notifications (a thread of its own, "
                       "never on the ingest path; docs/alerting.md, “Gửi thông báo / "
                       "Delivery”)."),
        "smtp_url": Key("str", "", "SMTP server for e-mails: `smtp://host:port` (plain), "
                        "`smtp+starttls://user:pass@host:587` (STARTTLS required) or "
                        "`smtps://user:pass@host:465` (TLS); empty: no e-mail.",
                        # not `secret`: that would hide the check's text, which never shows
                        # the password (redact_url), as with mqtt.url
                        check=check_smtp_url),
        "smtp_from": Key("str", "schoolmon@localhost", "Sender address of the e-mails "
                         "(`From`), e.g. `\"Sở GD&ĐT\" <canhbao@example.gov.vn>`."),
        "apprise_urls": Key("list", [], "The Sở's own channels, Apprise URLs (Telegram, "
                            "Slack, Discord ...), each `NAME=URL` or a bare URL (named by "
                            "its position, `1`, `2` ...); a message names one of them. A URL "
                            "Apprise does not take stops the collector at start. In the "
                            "environment variable entries are separated by commas (a URL "
                            "with a comma goes in the file).",
                            # not `secret`, so the check's text (which names an entry by
                            # position, never its URL) is shown
                            check=check_apprise_urls),
        "webhook_url": Key("str", "", "Where the signed JSON webhook is POSTed; empty: none.",
                           check=check_http_url),
        "webhook_secret": Key("str", "", "HMAC-SHA256 key of the webhook's "
                              "`X-Schoolmon-Signature`.", secret=True),
        "zalo_token": Key("str", "", "Zalo Bot API token (Zalo Bot Manager); empty: no Zalo.",
                          secret=True),
        "zalo_api_url": Key("str", "https://bot-api.zaloplatforms.com", "Base URL of the "
                            "Zalo Bot API (`{base}/bot{token}/sendMessage`).",
                            check=check_http_url),
        "timeout": Key("float", 15, "Seconds one attempt on any channel may take (connect, "
                       "each read and write).", minimum=0.1, maximum=600),
        "max_attempts": Key("int", 10, "Attempts before a message is `dead` (retried after "
                            "30 s, 2 min, 10 min, 30 min, then every hour).", minimum=1,
                            maximum=100),
        "poll_interval": Key("float", 5, "Seconds between looks at the outbox.",
                             minimum=0.05, maximum=3600),
        "claim_seconds": Key("float", 300, "How long a sender holds a message it took; after "
                             "that (a crashed sender) another may take it. Keep it well above "
                             "`timeout`.", minimum=1, maximum=86400),
        "routes_file": Key("str", "", "Who is told about which alerts and how messages are "
                           "grouped (TOML); empty: the shipped `collector/notify/routes.toml`. "
                           "A file that cannot be used stops the collector at start with its "
                           "line (docs/alerting.md)."),
        "digest_at": Key("str", "07:00", "Local time (`HH:MM`) of the daily digest e-mail to "
                         "the Sở's users with an e-mail address.", check=check_digest_at),
    },
    "province": {
        "code": Key("str", "", "Code of the province (tỉnh) this collector serves."),
        "name": Key("str", "", "Name of the province, shown at the root of the tree."),
        "timezone": Key("str", "Asia/Ho_Chi_Minh", "Time zone in which times are shown "
                        "(always stored in UTC).", check=check_timezone),
    },
}


GENERATE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def check_secure(cfg: SimpleNamespace, demo: bool = False) -> None:
    """Refuse settings that would leave the API open, unless in demo mode."""
    if demo:
        return
    token = cfg.api.admin_token
    if not token:
        raise ConfigError("api.admin_token: phải được đặt / must be set (a long random secret; "
                          "e.g. `%s`)" % GENERATE_TOKEN)
    problem = token_problem(token)
    if problem:
        raise ConfigError("api.admin_token: %s; tạo mã mới / make a new one: `%s`"
                          % (problem, GENERATE_TOKEN))
    for i, t in enumerate(cfg.api.read_tokens):
        problem = token_problem(t)
        if problem:
            raise ConfigError("api.read_tokens[%d]: %s" % (i, problem))


def load_config(path: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
                demo: bool = False,
                overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> SimpleNamespace:
    cfg = load(SCHEMA, path, env, overrides)
    check_secure(cfg, demo)
    check_notify(cfg)
    if not cfg.mqtt.client_id:
        cfg.mqtt.client_id = "schoolmon-collector-" + socket.gethostname()[:40]
    return cfg
