"""sent copy: the outbox tracks the Sent-folder copy of each mail sent over SMTP until it is filed

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OUTBOX_COLUMNS: list[sa.Column[Any]] = [
    # NULL for the rows that exist already: whatever happened to their copy was decided before this schema.
    sa.Column(
        "sent_copy",
        sa.Enum("pending", "filed", "failed", name="sentcopystatus", native_enum=False, length=16),
        nullable=True,
    ),
    sa.Column("sent_copy_attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("sent_copy_next_at", sa.DateTime(), nullable=True),
    sa.Column("sent_copy_error", sa.Text(), nullable=False, server_default=""),
    sa.Column("sent_copy_folder", sa.String(length=255), nullable=False, server_default=""),
]


def upgrade() -> None:
    # Batch mode, so that SQLite (which cannot alter much in place) gets the same table as PostgreSQL.
    with op.batch_alter_table("outbox") as batch:
        for column in _OUTBOX_COLUMNS:
            batch.add_column(column)
        batch.create_index("ix_outbox_sent_copy_due", ["sent_copy", "sent_copy_next_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_sent_copy_due")
        for column in reversed(_OUTBOX_COLUMNS):
            batch.drop_column(column.name)
