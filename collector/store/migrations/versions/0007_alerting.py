"""Alerting: alerts and their history, silences, the notification outbox and groups,
and where each user is notified (schema.py describes each table).

Revision ID: 0007_alerting
Revises: 0006_connectivity
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007_alerting"
down_revision: Union[str, Sequence[str], None] = "0006_connectivity"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OPEN = sa.text("state != 'resolved'")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=160), nullable=False),
        sa.Column("school_code", sa.String(length=64), nullable=True),
        sa.Column("area_code", sa.String(length=128), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("fired_at", sa.Float(), nullable=True),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("last_true_at", sa.Float(), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("suppressed_by", sa.BigInteger(), nullable=True),
        sa.Column("silenced_by", sa.Integer(), nullable=True),
        sa.Column("ack_by", sa.String(length=64), nullable=True),
        sa.Column("ack_at", sa.Float(), nullable=True),
        sa.Column("ack_comment", sa.String(length=1000), nullable=True),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for col in ("school_code", "area_code", "device_id"):
        op.create_index("ix_alerts_" + col, "alerts", [col])
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_index("uq_alerts_open", "alerts", ["rule", "subject"], unique=True,
                    sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_table(
        "alert_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_events_ts", "alert_events", ["ts"])
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("school_code", sa.String(length=64), nullable=True),
        sa.Column("area_code", sa.String(length=128), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("starts_at", sa.Float(), nullable=False),
        sa.Column("ends_at", sa.Float(), nullable=False),
        sa.Column("comment", sa.String(length=1000), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("deleted_by", sa.String(length=64), nullable=True),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_silences_ends", "silences", ["ends_at"])
    op.create_table(
        "notifications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=512), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=True),
        sa.Column("group_key", sa.String(length=255), nullable=True),
        sa.Column("lang", sa.String(length=2), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.Float(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
    op.create_index("ix_notifications_group_key", "notifications", ["group_key"])
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_at"])
    op.create_table(
        "notification_groups",
        sa.Column("group_key", sa.String(length=255), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("last_sent_at", sa.Float(), nullable=True),
        sa.Column("last_digest", sa.String(length=64), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group_key"),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("zalo_chat_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("notify_min_severity", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("lang", sa.String(length=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        for col in ("lang", "notify_min_severity", "zalo_chat_id", "email"):
            batch.drop_column(col)
    op.drop_table("notification_groups")
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_index("ix_notifications_group_key", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_silences_ends", table_name="silences")
    op.drop_table("silences")
    op.drop_index("ix_alert_events_alert_id", table_name="alert_events")
    op.drop_index("ix_alert_events_ts", table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_index("uq_alerts_open", table_name="alerts")
    op.drop_index("ix_alerts_state", table_name="alerts")
    for col in ("device_id", "area_code", "school_code"):
        op.drop_index("ix_alerts_" + col, table_name="alerts")
    op.drop_table("alerts")
