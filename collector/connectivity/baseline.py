"""The connectivity baseline file (``collector/baseline/connectivity.toml``, or
``baseline.connectivity_file``): the thresholds a school's link is judged by, each table
with its ``source``. An invalid file raises ``BaselineError`` ("FILE:LINE: reason", exit 2
at start and in ``baseline check``); the line of a bad value is the line of its
``key =`` inside its ``[table]``."""
import hashlib
import os
import re
from typing import Any, Dict, NamedTuple, Optional, Tuple

import tomllib

from ..baseline.attt import BaselineError

SHIPPED_CONNECTIVITY_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "baseline", "connectivity.toml")

#: table -> key -> (type, default, minimum, maximum); every table also takes ``source``.
_NUM = (int, float)
SCHEMA: Dict[str, Dict[str, Tuple[Any, Any, Optional[float], Optional[float]]]] = {
    "download": {"good_mbps": (_NUM, 20.0, 0.001, 100000), "bad_mbps": (_NUM, 1.0, 0, 100000),
                 "per_student_kbps": (_NUM, 50.0, 0, 100000),
                 "per_student_above": (int, 400, 0, 1000000)},
    "upload": {"good_mbps": (_NUM, 5.0, 0, 100000)},
    "contract": {"min_pct": (_NUM, 80.0, 0, 100)},
    "latency": {"max_ping_ms": (_NUM, 100.0, 1, 600000)},
    "uptime": {"min_pct": (_NUM, 95.0, 0, 100), "target": (str, "dom", None, None)},
    "international": {"min_ok_pct": (_NUM, 90.0, 0, 100)},
    "failures": {"fail_after": (int, 3, 1, 1000)},
    "variability": {"max_ratio": (_NUM, 0.6, 0, 100), "min_tests": (int, 4, 2, 1000)},
    "window": {"week_days": (int, 5, 1, 31), "lookback_days": (int, 14, 1, 60),
               "recent_days": (int, 7, 1, 60)},
    "school_hours": {"days": (list, [1, 2, 3, 4, 5, 6], None, None),
                     "start": (int, 7, 0, 23), "end": (int, 17, 1, 24)},
}
TARGETS = ("gw", "dns", "dom", "intl")


class ConnectivityBaseline(NamedTuple):
    good_down_mbps: float
    bad_down_mbps: float
    per_student_kbps: float
    per_student_above: int
    good_up_mbps: float
    #: None: the contract check is off (``min_pct = 0``)
    contract_pct: Optional[float]
    max_ping_ms: float
    min_uptime_pct: float
    uptime_target: str
    min_intl_ok_pct: float
    fail_after: int
    max_spread_ratio: float
    spread_min_tests: int
    week_days: int
    lookback_days: int
    recent_days: int
    #: ISO weekdays (1 = Monday) and local hours [start, end) of school time
    school_days: Tuple[int, ...]
    hours: Tuple[int, int]
    sources: Dict[str, str]
    source: str
    hash: str

    def required_down_mbps(self, students: Optional[int]) -> float:
        """The good download for a school: 20 Mbps, or 50 kbps per student above 400."""
        if students and students > self.per_student_above:
            return max(self.good_down_mbps, students * self.per_student_kbps / 1000.0)
        return self.good_down_mbps

    def thresholds(self, students: Optional[int]) -> Dict[str, Any]:
        """The ``thresholds`` of a school's detail (shared decision 3)."""
        return {"good_down_mbps": self.good_down_mbps, "bad_down_mbps": self.bad_down_mbps,
                "required_down_mbps": self.required_down_mbps(students),
                "good_up_mbps": self.good_up_mbps, "contract_pct": self.contract_pct,
                "max_ping_ms": self.max_ping_ms, "min_uptime_pct": self.min_uptime_pct,
                "min_intl_ok_pct": self.min_intl_ok_pct, "fail_after": self.fail_after}


def _line(lines: Any, table: Optional[str], key: Optional[str] = None) -> Optional[int]:
    start = 0
    if table is not None:
        rx = re.compile(r"^\s*\[\s*%s\s*\]" % re.escape(table))
        for i, ln in enumerate(lines):
            if rx.search(ln):
                start = i
                break
        else:
            return None
        if key is None:
            return start + 1
    rx = re.compile(r"^\s*%s\s*=" % re.escape(key or ""))
    for i in range(start, len(lines)):
        if i > start and table is not None and re.match(r"^\s*\[", lines[i]):
            break
        if rx.search(lines[i]):
            return i + 1
    return start + 1 if table is not None else None


def parse_connectivity(text: str, source: str, path: Optional[str] = None
                       ) -> ConnectivityBaseline:
    where = path or source
    lines = text.splitlines()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise BaselineError(where, int(m.group(1)) if m else None,
                            "TOML sai cú pháp / TOML syntax: %s" % exc) from None

    def bad(table: Optional[str], key: Optional[str], why: str) -> BaselineError:
        return BaselineError(where, _line(lines, table, key), why)

    for k in data:
        if k != "version" and k not in SCHEMA:
            if isinstance(data[k], dict):  # an unknown [table]: its header's line
                raise BaselineError(where, _line(lines, k), "bảng không biết / unknown table "
                                    "[%s] (allowed: %s)" % (k, ", ".join(SCHEMA)))
            raise bad(None, k, "khóa không biết / unknown key %r (allowed: version, %s)"
                      % (k, ", ".join(SCHEMA)))
    if data.get("version", 1) != 1:
        raise bad(None, "version", "version phải là 1 / must be 1")
    v: Dict[str, Dict[str, Any]] = {}
    sources: Dict[str, str] = {}
    for table, keys in SCHEMA.items():
        raw = data.get(table, {})
        if not isinstance(raw, dict):
            raise bad(None, table, "%s phải là bảng / must be a table" % table)
        got = v[table] = {}
        for k, x in raw.items():
            if k == "source":
                if not isinstance(x, str) or not x.strip():
                    raise bad(table, k, "%s.source: phải là chuỗi / must be a text" % table)
                sources[table] = x
                continue
            if k not in keys:
                raise bad(table, k, "%s: khóa không biết / unknown key %r (allowed: %s)"
                          % (table, k, ", ".join(list(keys) + ["source"])))
            typ, _default, lo, hi = keys[k]
            if isinstance(x, bool) or not isinstance(x, typ):
                raise bad(table, k, "%s.%s: sai kiểu / wrong type %r" % (table, k, x))
            if lo is not None and x < lo or hi is not None and x > hi:
                raise bad(table, k, "%s.%s: %r ngoài khoảng / out of range [%g, %g]"
                          % (table, k, x, lo or 0, hi or 0))
            got[k] = x
        for k, (_t, default, _lo, _hi) in keys.items():
            got.setdefault(k, default)
        if table not in sources:
            if table in data:
                raise bad(table, None, "[%s]: thiếu nguồn / needs a source = \"...\"" % table)
            sources[table] = "default"
    d, u = v["download"], v["uptime"]
    if d["bad_mbps"] >= d["good_mbps"]:
        raise bad("download", "bad_mbps", "download.bad_mbps phải nhỏ hơn good_mbps / must be "
                  "below good_mbps")
    if u["target"] not in TARGETS:
        raise bad("uptime", "target", "uptime.target: một trong / one of %s" % ", ".join(TARGETS))
    sh = v["school_hours"]
    days = sh["days"]
    if not days or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 7
                       for x in days):
        raise bad("school_hours", "days", "school_hours.days: các số 1..7 / numbers 1 (Monday)"
                  " to 7")
    if sh["start"] >= sh["end"]:
        raise bad("school_hours", "end", "school_hours.end phải sau start / must be after start")
    w = v["window"]
    if w["week_days"] > w["lookback_days"]:
        raise bad("window", "week_days", "window.week_days > lookback_days")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return ConnectivityBaseline(
        float(d["good_mbps"]), float(d["bad_mbps"]), float(d["per_student_kbps"]),
        int(d["per_student_above"]), float(v["upload"]["good_mbps"]),
        float(v["contract"]["min_pct"]) or None, float(v["latency"]["max_ping_ms"]),
        float(u["min_pct"]), u["target"], float(v["international"]["min_ok_pct"]),
        int(v["failures"]["fail_after"]), float(v["variability"]["max_ratio"]),
        int(v["variability"]["min_tests"]), int(w["week_days"]), int(w["lookback_days"]),
        int(w["recent_days"]), tuple(sorted(set(days))), (sh["start"], sh["end"]), sources,
        source, digest)


def load_connectivity(path: Optional[str] = None) -> ConnectivityBaseline:
    """The baseline of ``path`` (None or empty: the shipped file)."""
    src = path or SHIPPED_CONNECTIVITY_FILE
    try:
        with open(src, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise BaselineError(src, None, "không đọc được / cannot be read: %s"
                            % (exc.strerror or exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BaselineError(src, None, "không phải UTF-8 / not UTF-8") from None
    return parse_connectivity(text, "shipped" if not path else src, src)


#: The checks in the order a school is judged: (reason code, table of the file, status a
#: school gets when it fails, the limits of ``ConnectivityBaseline`` it is judged by).
CHECKS: Tuple[Tuple[str, str, str, Tuple[str, ...]], ...] = (
    ("no_recent_test", "window", "insufficient", ("recent_days",)),
    ("tests_failing", "failures", "below", ("fail_after",)),
    ("no_successful_test", "failures", "insufficient", ("fail_after",)),
    ("down_below_bad", "download", "below", ("bad_down_mbps",)),
    ("down_below_good", "download", "improve",
     ("good_down_mbps", "per_student_kbps", "per_student_above")),
    ("up_below_good", "upload", "improve", ("good_up_mbps",)),
    ("below_contract", "contract", "improve", ("contract_pct",)),
    ("ping_high", "latency", "improve", ("max_ping_ms",)),
    ("uptime_low", "uptime", "improve", ("min_uptime_pct", "uptime_target")),
    ("intl_unreachable", "international", "improve", ("min_intl_ok_pct",)),
    ("high_variability", "variability", "improve", ("max_spread_ratio", "spread_min_tests")),
)


def describe(b: ConnectivityBaseline) -> Dict[str, Any]:
    """The baseline in force as ``GET /api/v1/baselines`` lists it (no language: the API
    adds titles): every check with its limits, the status a failing school gets and its
    citation (the file's ``source`` of its table); a check turned off (``contract.min_pct
    = 0``) says so; the school-week window and school hours with theirs."""
    checks = []
    for code, table, effect, keys in CHECKS:
        limits = {k: getattr(b, k) for k in keys}
        checks.append({"id": code, "table": table, "effect": effect, "limits": limits,
                       "enabled": code != "below_contract" or b.contract_pct is not None,
                       "citation": b.sources.get(table, "default")})
    return {"source": b.source, "hash": b.hash, "checks": checks,
            "window": {"week_days": b.week_days, "lookback_days": b.lookback_days,
                       "recent_days": b.recent_days,
                       "citation": b.sources.get("window", "default")},
            "school_hours": {"days": list(b.school_days), "start": b.hours[0],
                             "end": b.hours[1],
                             "citation": b.sources.get("school_hours", "default")}}


def from_config(cfg: Any) -> ConnectivityBaseline:
    section = getattr(cfg, "baseline", None)
    return load_connectivity(getattr(section, "connectivity_file", "") or None)


__all__ = ["CHECKS", "ConnectivityBaseline", "SHIPPED_CONNECTIVITY_FILE", "describe",
           "load_connectivity", "parse_connectivity", "from_config"]
