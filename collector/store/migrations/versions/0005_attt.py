"""ATTT security posture: per-device results, per-school status and daily history, the
evaluator's state. The JSON values are text written with orjson (``schema.OrJSON``).

Revision ID: 0005_attt
Revises: 0004_users
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005_attt"
down_revision: Union[str, Sequence[str], None] = "0004_users"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "attt_devices",
        sa.Column("device_id", sa.String(length=64), sa.ForeignKey("devices.id"),
                  nullable=False),
        sa.Column("school_code", sa.String(length=64), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.Column("reported_at", sa.Float(), nullable=True),
        sa.Column("inventory_ts", sa.Float(), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("worst", sa.String(length=16), nullable=False),
        sa.Column("fail_n", sa.Integer(), nullable=False),
        sa.Column("unknown_n", sa.Integer(), nullable=False),
        sa.Column("os_status", sa.String(length=16), nullable=False),
        sa.Column("crit_ok", sa.Boolean(), nullable=False),
        sa.Column("crit_high_ok", sa.Boolean(), nullable=False),
        sa.Column("states", sa.Text(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_index("ix_attt_devices_school_code", "attt_devices", ["school_code"])
    op.create_table(
        "attt_schools",
        sa.Column("school_code", sa.String(length=64), sa.ForeignKey("schools.code"),
                  nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("school_code"),
    )
    op.create_table(
        "attt_school_days",
        sa.Column("school_code", sa.String(length=64), sa.ForeignKey("schools.code"),
                  nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("school_code", "day"),
    )
    op.create_table(
        "attt_state",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("rev", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    for name in ("attt_state", "attt_school_days", "attt_schools"):
        op.drop_table(name)
    op.drop_index("ix_attt_devices_school_code", table_name="attt_devices")
    op.drop_table("attt_devices")
