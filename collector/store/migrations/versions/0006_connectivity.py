"""Connectivity: every bandwidth test, the light probes per school and hour, each school's
connectivity status and its daily history (schema.py describes each table).

Revision ID: 0006_connectivity
Revises: 0005_attt
"""
from typing import Any, List, Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006_connectivity"
down_revision: Union[str, Sequence[str], None] = "0005_attt"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "link_tests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("school_code", sa.String(length=64), sa.ForeignKey("schools.code"),
                  nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("lease", sa.String(length=64), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=256), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=True),
        sa.Column("mode", sa.String(length=8), nullable=True),
        sa.Column("down_mbps", sa.Float(), nullable=True),
        sa.Column("up_mbps", sa.Float(), nullable=True),
        sa.Column("ping_ms", sa.Float(), nullable=True),
        sa.Column("jitter_ms", sa.Float(), nullable=True),
        sa.Column("bytes_rx", sa.BigInteger(), nullable=True),
        sa.Column("bytes_tx", sa.BigInteger(), nullable=True),
        sa.Column("server", sa.String(length=512), nullable=True),
        sa.Column("isp", sa.String(length=128), nullable=True),
        sa.Column("wired", sa.Boolean(), nullable=True),
        sa.Column("refused", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "seq", name="uq_link_tests_device_seq"),
    )
    op.create_index("ix_link_tests_school_ts", "link_tests", ["school_code", "ts"])
    # the connectivity evaluator's watermark: tests received since its last pass
    op.create_index("ix_link_tests_received", "link_tests", ["received_at"])
    probe_cols: List[Any] = []
    for t in ("gw", "dns", "dom", "intl"):
        probe_cols += [sa.Column(t + "_n", sa.Integer(), nullable=False),
                       sa.Column(t + "_ok", sa.Integer(), nullable=False),
                       sa.Column(t + "_ms", sa.Float(), nullable=False)]
    op.create_table(
        "link_probe_hours",
        sa.Column("school_code", sa.String(length=64), sa.ForeignKey("schools.code"),
                  nullable=False),
        sa.Column("hour_start", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        *probe_cols,
        sa.PrimaryKeyConstraint("school_code", "hour_start"),
    )
    op.create_index("ix_link_probe_hours_hour", "link_probe_hours", ["hour_start"])
    op.create_table(
        "connectivity_schools",
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
        "connectivity_school_days",
        sa.Column("school_code", sa.String(length=64), sa.ForeignKey("schools.code"),
                  nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tests", sa.Integer(), nullable=False),
        sa.Column("down_mbps", sa.Float(), nullable=True),
        sa.Column("up_mbps", sa.Float(), nullable=True),
        sa.Column("ping_ms", sa.Float(), nullable=True),
        sa.Column("uptime_pct", sa.Float(), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("school_code", "day"),
    )


def downgrade() -> None:
    for name in ("connectivity_school_days", "connectivity_schools"):
        op.drop_table(name)
    op.drop_index("ix_link_probe_hours_hour", table_name="link_probe_hours")
    op.drop_table("link_probe_hours")
    op.drop_index("ix_link_tests_received", table_name="link_tests")
    op.drop_index("ix_link_tests_school_ts", table_name="link_tests")
    op.drop_table("link_tests")
