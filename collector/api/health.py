"""``/healthz`` and ``/metrics``: open without a token (for load balancers, systemd
watchdogs and Prometheus), and revealing no school or device.

``/healthz`` answers 200 when every dependency is ready and 503 naming those that are not:
``broker`` (MQTT connection), ``store`` (state store), ``timeseries`` (InfluxDB, only
when configured) and ``ingest`` (messages waiting with nothing acknowledged for a while:
ingest is stuck even though every dependency answers).
"""
import logging
import time
from typing import Any, Dict, Mapping, Optional, Protocol, Union

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import Engine
from sqlalchemy import text as sql_text

from .. import __version__
from ..metrics import IngestMetrics
from .deps import Lang
from .present import iso_utc
from .present import text as msg

router = APIRouter(tags=["health"])
log = logging.getLogger("schoolmon.collector.api")

#: A dependency's readiness as a service reports it: a Check dict ({"ok": ..., "detail":
#: ..., "configured": ...}), a bool, or None (not configured).
Reported = Union[None, bool, Mapping[str, Any]]


class HealthSource(Protocol):
    """What /healthz and /metrics read from the running service (CollectorService)."""

    metrics: IngestMetrics

    def readiness(self) -> Mapping[str, Reported]: ...


def _normalize(raw: Mapping[str, Reported]) -> Dict[str, Dict[str, Any]]:
    out: Dict[str, Dict[str, Any]] = {}
    for name, value in raw.items():
        if value is None:  # e.g. the time-series store when not configured
            out[name] = {"ok": True, "configured": False}
        elif isinstance(value, bool):
            out[name] = {"ok": value}
        else:
            entry = dict(value)
            entry["ok"] = bool(entry.get("ok"))
            out[name] = entry
    return out


def _store_check(engine: Engine) -> Dict[str, Any]:
    try:
        with engine.connect() as conn:
            conn.execute(sql_text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:  # any failure means "not ready"
        # the open endpoint names the kind of failure only; the log has the whole message
        log.warning("state store not ready: %s", exc)
        return {"ok": False, "detail": type(exc).__name__}


def _service(request: Request) -> Optional[HealthSource]:
    service: Optional[HealthSource] = request.app.state.service
    return service


def readiness(request: Request) -> Dict[str, Dict[str, Any]]:
    service = _service(request)
    checks: Dict[str, Dict[str, Any]] = {}
    if service is not None:
        try:
            checks = _normalize(service.readiness())
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            checks = {"service": {"ok": False, "detail": type(exc).__name__}}
    if "store" not in checks:
        checks["store"] = _store_check(request.app.state.engine)
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
    service = _service(request)
    body = service.metrics.render() if service is not None else metrics_mod.render()
    return PlainTextResponse(body, media_type=metrics_mod.CONTENT_TYPE)
