"""Alert notifications: which outbox messages are about which alert (schema.py's
alert_notifications), so an alert shows what was sent about it and what failed.

Revision ID: 0008_alert_notifications
Revises: 0007_alerting
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008_alert_notifications"
down_revision: Union[str, Sequence[str], None] = "0007_alerting"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "alert_notifications",
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "notification_id"),
    )
    op.create_index("ix_alert_notifications_notification_id", "alert_notifications",
                    ["notification_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_notifications_notification_id", table_name="alert_notifications")
    op.drop_table("alert_notifications")
