"""The school calendar's cost per alert-evaluation pass: 3,000 schools × 3 windows, every
school with its area, 300 of them with an override of their own (docs/benchmarks.md)."""
import datetime as dt
import time

from schoolmon.collector.alerting.calendar import SHIPPED_FILE, parse_calendar

SCHOOLS = 3000
WINDOWS = ("school_hours", "office_hours", "always")


def main() -> None:
    with open(SHIPPED_FILE, encoding="utf-8") as f:
        text = f.read()
    text += "".join('[school."S%04d".windows.school_hours]\nmon = "07:00-11:00"\n' % i
                    for i in range(0, SCHOOLS, 10))
    cal = parse_calendar(text, "bench")
    schools = [("S%04d" % i, "LCI/area-%d" % (i % 9)) for i in range(SCHOOLS)]
    ts = dt.datetime(2026, 12, 7, 10, 0, tzinfo=cal.tz).timestamp()
    for label in ("first pass of the day (cache filled)", "next pass (cached)"):
        t0 = time.perf_counter()
        for code, area in schools:
            for w in WINDOWS:
                cal.in_window(w, ts, code, area)
        dt_ms = (time.perf_counter() - t0) * 1000
        print("%s: %d questions in %.1f ms (%.2f µs each)"
              % (label, SCHOOLS * len(WINDOWS), dt_ms, dt_ms * 1000 / SCHOOLS / len(WINDOWS)))
        ts += 60


if __name__ == "__main__":
    main()
