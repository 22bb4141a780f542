"""team work model: users with roles, tokens of users, invitations, teams, assignment, priority, snooze, tags,
notes' authors and mentions, the activity timeline, contacts' further addresses, grouping per connection

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Tokens made before users existed belong to this administrator, created when there are such tokens; the
# service creates the same user on a fresh database (helpdesk.users.BOOTSTRAP_ADMIN_EMAIL).
_BOOTSTRAP_EMAIL = "admin@postroom.localhost"


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", _enum("role", "admin", "agent"), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("availability", _enum("availability", "available", "away"), nullable=False),
        sa.Column("max_open", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "sign_in_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_assigned_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["last_assigned_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("team_id", "user_id"),
    )
    op.create_index("ix_team_members_user_id", "team_members", ["user_id"], unique=False)
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", _enum("role", "admin", "agent"), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["invited_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["connection_id"], ["connections.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invitations_email", "invitations", ["email"], unique=False)
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "conversation_tags",
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("conversation_id", "tag_id"),
    )
    op.create_index("ix_conversation_tags_tag_id", "conversation_tags", ["tag_id"], unique=False)
    op.create_table(
        "mentions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["message_pk"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_mentions_message_pk", "mentions", ["message_pk"], unique=False)
    op.create_index("ix_mentions_user_id", "mentions", ["user_id"], unique=False)
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_activities_conversation", "activities", ["conversation_id", "id"], unique=False)
    op.create_table(
        "contact_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_contact_addresses_contact_id", "contact_addresses", ["contact_id"], unique=False)

    # Batch mode, so that SQLite (which cannot alter much in place) gets the same tables as PostgreSQL.
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("auto_assign", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("grouping", _enum("grouping", "thread", "contact"), nullable=False, server_default="thread")
        )
        batch.create_foreign_key("fk_connections_team_id", "teams", ["team_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("phone", sa.String(length=50), nullable=False, server_default=""))
        batch.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("notes", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("updated_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        # The free-text assignee and team of the first schema were never set by any route: nothing to carry over.
        batch.drop_column("assignee")
        batch.drop_column("team")
        batch.add_column(sa.Column("snoozed_until", sa.DateTime(), nullable=True))
        batch.add_column(
            sa.Column(
                "priority",
                _enum("priority", "low", "normal", "high", "urgent"),
                nullable=False,
                server_default="normal",
            )
        )
        batch.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("team_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_activity_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key("fk_conversations_assignee_id", "users", ["assignee_id"], ["id"], ondelete="SET NULL")
        batch.create_foreign_key("fk_conversations_team_id", "teams", ["team_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_conversations_assignee_id", ["assignee_id"], unique=False)
        batch.create_index("ix_conversations_team_id", ["team_id"], unique=False)
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("bcc", sa.JSON(), nullable=False, server_default="[]"))
        batch.create_foreign_key("fk_messages_author_id", "users", ["author_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("kind", _enum("tokenkind", "api", "access", "session"), nullable=False, server_default="api")
        )
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch.create_foreign_key("fk_api_tokens_user_id", "users", ["user_id"], ["id"], ondelete="CASCADE")
        batch.create_index("ix_api_tokens_user_id", ["user_id"], unique=False)

    # The rows already there: times from what is known, tokens to an administrator. Connections made
    # before grouping was a choice keep grouping as they did: an open conversation of the sender took
    # their mail whatever its subject, which is "contact"; new connections default to "thread".
    op.execute("UPDATE connections SET grouping = 'contact'")
    op.execute("UPDATE conversations SET last_activity_at = COALESCE(updated_at, last_message_at, created_at)")
    op.execute("UPDATE contacts SET updated_at = created_at")
    op.execute("UPDATE customers SET updated_at = created_at")
    with op.batch_alter_table("conversations") as batch:
        batch.alter_column("last_activity_at", existing_type=sa.DateTime(), nullable=False)
        batch.create_index("ix_conversations_last_activity_at", ["last_activity_at"], unique=False)
        batch.create_index("ix_conversations_status_activity", ["status", "last_activity_at", "id"], unique=False)
        batch.create_index("ix_conversations_snooze", ["status", "snoozed_until"], unique=False)
        batch.create_index(
            "ix_conversations_connection_contact", ["connection_id", "contact_id", "status"], unique=False
        )
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("updated_at", existing_type=sa.DateTime(), nullable=False)
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM api_tokens")).scalar_one():
        now = datetime.now(UTC).replace(tzinfo=None)
        bind.execute(
            sa.text(
                "INSERT INTO users (email, name, role, password_hash, enabled, availability, created_at)"
                " VALUES (:email, 'Administrator', 'admin', '', :yes, 'available', :now)"
            ),
            {"email": _BOOTSTRAP_EMAIL, "yes": True, "now": now},
        )
        bind.execute(
            sa.text("UPDATE api_tokens SET user_id = (SELECT id FROM users WHERE email = :email)"),
            {"email": _BOOTSTRAP_EMAIL},
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_user_id")
        batch.drop_constraint("fk_api_tokens_user_id", type_="foreignkey")
        batch.drop_column("expires_at")
        batch.drop_column("kind")
        batch.drop_column("user_id")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("fk_messages_author_id", type_="foreignkey")
        batch.drop_column("bcc")
        batch.drop_column("author_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_connection_contact")
        batch.drop_index("ix_conversations_snooze")
        batch.drop_index("ix_conversations_status_activity")
        batch.drop_index("ix_conversations_last_activity_at")
        batch.drop_index("ix_conversations_team_id")
        batch.drop_index("ix_conversations_assignee_id")
        batch.drop_constraint("fk_conversations_team_id", type_="foreignkey")
        batch.drop_constraint("fk_conversations_assignee_id", type_="foreignkey")
        batch.drop_column("last_activity_at")
        batch.drop_column("team_id")
        batch.drop_column("assignee_id")
        batch.drop_column("priority")
        batch.drop_column("snoozed_until")
        batch.add_column(sa.Column("assignee", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("team", sa.String(length=200), nullable=True))
    op.execute("UPDATE conversations SET status = 'open' WHERE status = 'snoozed'")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("notes")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("notes")
        batch.drop_column("phone")
    with op.batch_alter_table("connections") as batch:
        batch.drop_constraint("fk_connections_team_id", type_="foreignkey")
        batch.drop_column("grouping")
        batch.drop_column("auto_assign")
        batch.drop_column("team_id")
    op.drop_table("contact_addresses")
    op.drop_index("ix_activities_conversation", table_name="activities")
    op.drop_table("activities")
    op.drop_table("mentions")
    op.drop_table("conversation_tags")
    op.drop_table("tags")
    op.drop_table("invitations")
    op.drop_table("team_members")
    op.drop_table("teams")
    op.drop_table("sign_in_throttle")
    op.drop_table("users")
