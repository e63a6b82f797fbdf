"""The HTTP API and web UI (FastAPI app factory, one router per resource).

``create_app(source, cfg)`` lives in :mod:`.app`; import it from there or from here
(importing this package pulls in FastAPI; the collector needs it anyway).
"""
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .app import AppSource


def create_app(source: "AppSource", cfg: Any, scheduler: Any = None,
               clock: Optional[Callable[[], float]] = None) -> "FastAPI":
    """See :func:`schoolmon.collector.api.app.create_app` (imported when first called)."""
    from .app import create_app as _create_app
    return _create_app(source, cfg, scheduler, clock)
