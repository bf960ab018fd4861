"""Synthetic individuals (issue 14): labels.turns holds a whole-questionnaire item's turns in order (question, the
answer order shown, the option kept, how it was read), written with the item's label in one transaction.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.add_column(sa.Column("turns", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("turns")
