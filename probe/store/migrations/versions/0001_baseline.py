"""The schema as it stood before migrations (stores made by create_all are stamped at this revision).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("prompt_hashes", sa.JSON, nullable=False),
        sa.Column("code_revision", sa.String(64)),
        sa.Column("package_versions", sa.JSON, nullable=False),
        sa.Column("n_items", sa.Integer, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("campaign_id", sa.String(40), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("item_id", sa.String(100), nullable=False),
        sa.Column("sample", sa.Integer, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("permutation", sa.JSON),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_index("ix_items_campaign_id", "items", ["campaign_id"])
    op.create_index("ix_items_campaign_status", "items", ["campaign_id", "status"])
    op.create_table(
        "responses",
        sa.Column("key", sa.String(32), sa.ForeignKey("items.key"), primary_key=True),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("raw_text", sa.Text),
        sa.Column("top_logprobs", sa.JSON),
        sa.Column("finish_reason", sa.String(32)),
        sa.Column("usage", sa.JSON),
        sa.Column("cost", sa.Float),
        sa.Column("latency_s", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("error_kind", sa.String(16)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "labels",
        sa.Column("key", sa.String(32), sa.ForeignKey("items.key"), primary_key=True),
        sa.Column("labeller", sa.String(64), primary_key=True),
        sa.Column("labeller_version", sa.String(100), nullable=False),
        sa.Column("label", sa.String(16)),
        sa.Column("option_code", sa.Integer),
        sa.Column("option_probs", sa.JSON),
        sa.Column("letter_probs", sa.JSON),
        sa.Column("p_refusal", sa.Float),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for t in ("labels", "responses", "items", "campaigns"):
        op.drop_table(t)
