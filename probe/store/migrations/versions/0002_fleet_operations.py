"""Fleet operations: campaign state and stored prompt content, item leases, progress and throughput indexes,
letter mass and label reasons.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as b:
        b.add_column(sa.Column("state", sa.String(12), nullable=False, server_default="queued"))
        b.add_column(sa.Column("state_reason", sa.Text))
        b.add_column(sa.Column("updated_at", TS))
        b.add_column(sa.Column("enqueued_at", TS))
        b.add_column(sa.Column("content", sa.JSON))
    # Campaigns from before states: finished ones are done; the rest can be resumed from "paused".
    op.execute("UPDATE campaigns SET state = CASE WHEN EXISTS (SELECT 1 FROM items WHERE items.campaign_id = "
               "campaigns.id AND items.status = 'pending') THEN 'paused' ELSE 'done' END")
    with op.batch_alter_table("items") as b:
        b.add_column(sa.Column("lease_until", TS))
        b.add_column(sa.Column("lease_owner", sa.String(64)))
    op.create_index("ix_items_campaign_progress", "items", ["campaign_id", "model", "kind", "source", "status"])
    op.drop_index("ix_items_campaign_id", "items")  # a prefix of both composite indexes: only slows inserts
    op.create_index("ix_responses_created_at", "responses", ["created_at"])
    with op.batch_alter_table("labels") as b:
        b.add_column(sa.Column("letter_mass", sa.Float))
        b.add_column(sa.Column("reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("labels") as b:
        b.drop_column("reason")
        b.drop_column("letter_mass")
    op.drop_index("ix_responses_created_at", "responses")
    op.create_index("ix_items_campaign_id", "items", ["campaign_id"])
    op.drop_index("ix_items_campaign_progress", "items")
    with op.batch_alter_table("items") as b:
        b.drop_column("lease_owner")
        b.drop_column("lease_until")
    with op.batch_alter_table("campaigns") as b:
        for c in ("content", "enqueued_at", "updated_at", "state_reason", "state"):
            b.drop_column(c)
