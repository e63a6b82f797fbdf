"""Notifications: the outbox every message goes through (outbox.py), the channels that
deliver them, and the routing that turns alert events into grouped messages."""
