"""``/healthz`` and ``/metrics``: open without a token (for load balancers, systemd
watchdogs and Prometheus), and revealing no school or device.

``/healthz`` answers 200 when every dependency is ready and 503 naming those that are not:
``broker`` (MQTT connection), ``store`` (state store) and ``timeseries`` (InfluxDB, only
when configured).
"""
import logging
import time
from typing import Any, Dict

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text as sql_text

from .. import __version__
from .deps import Lang
from .present import iso_utc
from .present import text as msg

router = APIRouter(tags=["health"])
log = logging.getLogger("schoolmon.collector.api")


def _normalize(raw: Any) -> Dict[str, Dict[str, Any]]:
    """Accept what a readiness() may return: {name: bool or None (not configured)},
    {name: {"ok": ..}}, {name: (ok, detail)} or an object with a ``checks`` mapping."""
    if raw is None:
        return {}
    if hasattr(raw, "checks") and not isinstance(raw, dict):
        raw = raw.checks
    if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[1], dict):
        raw = raw[1]
    out: Dict[str, Dict[str, Any]] = {}
    for name, value in dict(raw).items():
        if value is None:  # e.g. the time-series store when not configured
            out[name] = {"ok": True, "configured": False}
        elif isinstance(value, bool):
            out[name] = {"ok": value}
        elif isinstance(value, dict):
            entry = dict(value)
            if "ok" not in entry:
                state = entry.get("status") or entry.get("state")
                entry["ok"] = state in ("ok", "up", "ready", "connected", "disabled",
                                        "not_configured")
            entry["ok"] = bool(entry["ok"])
            out[name] = entry
        elif isinstance(value, (tuple, list)) and value:
            out[name] = {"ok": bool(value[0])}
            if len(value) > 1 and value[1] is not None:
                out[name]["detail"] = str(value[1])
        else:
            out[name] = {"ok": bool(value)}
    return out


def _store_check(request: Request) -> Dict[str, Any]:
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(sql_text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:  # any failure means "not ready"
        # the open endpoint names the kind of failure only; the log has the whole message
        log.warning("state store not ready: %s", exc)
        return {"ok": False, "detail": type(exc).__name__}


def readiness(request: Request) -> Dict[str, Dict[str, Any]]:
    service = request.app.state.service
    checks: Dict[str, Dict[str, Any]] = {}
    fn = getattr(service, "readiness", None) if service is not None else None
    if callable(fn):
        try:
            checks = _normalize(fn())
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            checks = {"service": {"ok": False, "detail": type(exc).__name__}}
    if "store" not in checks:
        checks["store"] = _store_check(request)
    return checks


@router.get("/healthz", summary="Liveness and readiness (no token needed)")
def healthz(request: Request, lang: Lang) -> JSONResponse:
    """200 when the broker connection, the state store and (when configured) the
    time-series store are ready; 503 otherwise, with `down` naming what is not.
    Open without a token: it shows no school or device data."""
    checks = readiness(request)
    down = sorted(name for name, c in checks.items() if not c.get("ok"))
    body = {
        "status": "ok" if not down else "unavailable",
        "down": down,
        "checks": checks,
        "version": __version__,
        "now": iso_utc(time.time()),
    }
    if down:
        body["message"] = msg("dependency_down", lang) + " (" + ", ".join(down) + ")"
    return JSONResponse(body, status_code=200 if not down else 503)


@router.get("/metrics", summary="Prometheus metrics (no token needed)",
            response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """The collector's own figures in Prometheus text format 0.0.4: messages received,
    rejects by reason, loss (sequence gaps), pending queue, write latency and errors.
    Open without a token: counts only, no school or device names."""
    from .. import metrics as metrics_mod
    service = request.app.state.service
    m = getattr(service, "metrics", None) if service is not None else None
    body = m.render() if m is not None and hasattr(m, "render") else metrics_mod.render()
    return PlainTextResponse(body, media_type=metrics_mod.CONTENT_TYPE)
