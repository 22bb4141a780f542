"""connection modes: POP3, forwarding, webhooks, SendGrid, OAuth2, Sent folder, response delay, rotation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_CONNECTION_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("outbound", sa.String(length=16), nullable=False, server_default="smtp"),
    sa.Column("sendgrid_api_key_enc", sa.Text(), nullable=False, server_default=""),
    sa.Column("sendgrid_api_url", sa.String(length=255), nullable=False, server_default="https://api.sendgrid.com"),
    sa.Column("oauth_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("inbound_key", sa.String(length=64), nullable=True),
    sa.Column("webhook_provider", sa.String(length=16), nullable=False, server_default=""),
    sa.Column("webhook_signing_key_enc", sa.Text(), nullable=False, server_default=""),
    sa.Column("delete_after_import", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("save_to_sent", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("response_delay_min", sa.Float(), nullable=False, server_default="0"),
    sa.Column("response_delay_max", sa.Float(), nullable=False, server_default="0"),
    sa.Column("rotation", sa.Integer(), nullable=False, server_default="0"),
]

_MAILBOX_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("reply_to", sa.String(length=320), nullable=False, server_default=""),
    sa.Column("sent_folder", sa.String(length=255), nullable=False, server_default=""),
    sa.Column("oauth_client_id", sa.String(length=500), nullable=False, server_default=""),
    sa.Column("oauth_client_secret_enc", sa.Text(), nullable=False, server_default=""),
    sa.Column("oauth_refresh_token_enc", sa.Text(), nullable=False, server_default=""),
    sa.Column("oauth_token_uri", sa.String(length=500), nullable=False, server_default=""),
    sa.Column("oauth_access_token_enc", sa.Text(), nullable=False, server_default=""),
    sa.Column("oauth_access_expires_at", sa.DateTime(), nullable=True),
]


def upgrade() -> None:
    # Server defaults fill the rows that exist already; the models give new rows their defaults.
    with op.batch_alter_table("connections") as batch:
        for column in _CONNECTION_COLUMNS:
            batch.add_column(column)
        batch.create_unique_constraint(op.f("uq_connections_inbound_key"), ["inbound_key"])
    with op.batch_alter_table("mailboxes") as batch:
        for column in _MAILBOX_COLUMNS:
            batch.add_column(column)
    # The mode "sendgrid" of the first schema was never accepted by the API; sending through SendGrid is
    # now `outbound`, and the mode says how mail comes in.
    op.execute("UPDATE connections SET mode = 'imap' WHERE mode = 'sendgrid'")


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        for column in reversed(_MAILBOX_COLUMNS):
            batch.drop_column(column.name)
    with op.batch_alter_table("connections") as batch:
        batch.drop_constraint(op.f("uq_connections_inbound_key"), type_="unique")
        for column in reversed(_CONNECTION_COLUMNS):
            batch.drop_column(column.name)
