"""The HTTP API and web UI (FastAPI app factory, one router per resource)."""
