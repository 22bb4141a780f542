"""hardening: plaintext sign-in opt-in per connection, a shared webhook replay guard, bounded bodies marked

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode, so that SQLite (which cannot alter much in place) gets the same table as PostgreSQL.
    with op.batch_alter_table("connections") as batch:
        # Off for every existing connection: a secret over plain text to a remote host needs the admin's word.
        batch.add_column(sa.Column("allow_plaintext_auth", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("messages") as batch:
        # Why the body was kept raw instead of being fully understood (a mail over its work budget); "" otherwise.
        batch.add_column(sa.Column("degraded_reason", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "webhook_replays",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index("ix_webhook_replays_seen_at", "webhook_replays", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_webhook_replays_seen_at", table_name="webhook_replays")
    op.drop_table("webhook_replays")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("degraded_reason")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("allow_plaintext_auth")
