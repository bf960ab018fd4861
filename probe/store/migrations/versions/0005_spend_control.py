"""Spend control: the fleet's response cache, and whether each response was served from it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "response_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("completion", sa.JSON, nullable=False),
        sa.Column("cost", sa.Float),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_response_cache_model", "response_cache", ["model"])
    op.create_index("ix_response_cache_created_at", "response_cache", ["created_at"])
    with op.batch_alter_table("responses") as b:
        b.add_column(sa.Column("cached", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("responses") as b:
        b.drop_column("cached")
    op.drop_index("ix_response_cache_created_at", "response_cache")
    op.drop_index("ix_response_cache_model", "response_cache")
    op.drop_table("response_cache")
