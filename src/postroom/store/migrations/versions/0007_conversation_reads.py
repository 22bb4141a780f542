"""read state per user: when each user last read each conversation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_reads",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("read_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_conversation_reads_conversation_id", "conversation_reads", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_conversation_reads_conversation_id", table_name="conversation_reads")
    op.drop_table("conversation_reads")
