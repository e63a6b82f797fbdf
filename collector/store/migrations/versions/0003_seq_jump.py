"""devices.seq_jump: a seq far above the mark is held until the device confirms it.

Revision ID: 0003_seq_jump
Revises: 0002_dead_letters
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003_seq_jump"
down_revision: Union[str, Sequence[str], None] = "0002_dead_letters"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch_op:
        batch_op.add_column(sa.Column("seq_jump", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch_op:
        batch_op.drop_column("seq_jump")
