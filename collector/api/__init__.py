"""The HTTP API and web UI (FastAPI app factory, one router per resource).

``create_app(service_or_store, cfg)`` lives in :mod:`.app`; import it from there or from
here (importing this package pulls in FastAPI; the collector needs it anyway).
"""


def create_app(service_or_store, cfg):  # noqa: ANN001 - thin lazy re-export
    from .app import create_app as _create_app
    return _create_app(service_or_store, cfg)
