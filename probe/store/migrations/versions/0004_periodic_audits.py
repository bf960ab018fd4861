"""Periodic audits: schedules in the store (audits), their runs (audit_runs, one campaign each, with headline figures
and alerts), and the model version each response reports (responses.reported_model, system_fingerprint).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("responses") as b:
        b.add_column(sa.Column("reported_model", sa.String(200)))
        b.add_column(sa.Column("system_fingerprint", sa.String(200)))
    op.create_table(
        "audits",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("every_s", sa.Float),
        sa.Column("cron", sa.String(100)),
        sa.Column("paused", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("next_run_at", TS),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "audit_runs",
        sa.Column("campaign_id", sa.String(40), sa.ForeignKey("campaigns.id"), primary_key=True),
        sa.Column("audit", sa.String(100), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("due_at", TS),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("summary", sa.JSON),
        sa.Column("alerts", sa.JSON),
        sa.Column("webhook", sa.JSON),
    )
    op.create_index("ix_audit_runs_audit", "audit_runs", ["audit"])


def downgrade() -> None:
    op.drop_index("ix_audit_runs_audit", "audit_runs")
    op.drop_table("audit_runs")
    op.drop_table("audits")
    with op.batch_alter_table("responses") as b:
        b.drop_column("system_fingerprint")
        b.drop_column("reported_model")
