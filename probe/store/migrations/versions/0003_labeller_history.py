"""Labeller history: every refusal labeller's labels side by side, and the campaign's chosen one.

labels: the primary key becomes (key, labeller, labeller_version), so `probe relabel` adds a labeller's rows beside
the earlier ones instead of overwriting them ("answers" and "gold" stay one row per item: the store replaces
them whole); `fallback` names the labeller whose label stands in where this one gave none (an LLM judge whose call
failed). campaigns.refusal_labeller: the labeller_version the report reads; stores from before are backfilled
with the version that labelled most of each campaign's responses (before this, every response had one).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PK = ["key", "labeller", "labeller_version"]


def _labels_0002(pk: list[str]) -> sa.Table:
    """The labels table as 0002 left it, with the primary key `pk`: what SQLite's batch mode copies from (it cannot
    alter a primary key, and a reflected one would clash with the new)."""
    return sa.Table(
        "labels", sa.MetaData(),
        sa.Column("key", sa.String(32), sa.ForeignKey("items.key"), nullable=False),
        sa.Column("labeller", sa.String(64), nullable=False),
        sa.Column("labeller_version", sa.String(100), nullable=False),
        sa.Column("label", sa.String(16)),
        sa.Column("option_code", sa.Integer),
        sa.Column("option_probs", sa.JSON),
        sa.Column("letter_probs", sa.JSON),
        sa.Column("p_refusal", sa.Float),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("letter_mass", sa.Float),
        sa.Column("reason", sa.Text),
        sa.PrimaryKeyConstraint(*pk),
    )


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as b:
        b.add_column(sa.Column("refusal_labeller", sa.String(100)))
    op.execute("UPDATE campaigns SET refusal_labeller = (SELECT l.labeller_version FROM labels l JOIN items i "
               "ON i.key = l.key WHERE i.campaign_id = campaigns.id AND l.labeller = 'refusal' "
               "GROUP BY l.labeller_version ORDER BY count(*) DESC, l.labeller_version LIMIT 1)")
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # no ALTER of a primary key: batch mode copies the table
        with op.batch_alter_table("labels", recreate="always", copy_from=_labels_0002(PK)) as b:
            b.add_column(sa.Column("fallback", sa.String(100)))
    else:
        name = sa.inspect(bind).get_pk_constraint("labels")["name"] or "labels_pkey"
        op.add_column("labels", sa.Column("fallback", sa.String(100)))
        op.drop_constraint(name, "labels", type_="primary")
        op.create_primary_key(name, "labels", PK)


def downgrade() -> None:
    """Back to one refusal label per item: the campaign's chosen labeller's (or, where it fell back, the label
    that filled in); other labellers' rows are deleted."""
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT l.key, l.labeller_version, l.label, l.fallback, c.refusal_labeller FROM labels l "
        "JOIN items i ON i.key = l.key JOIN campaigns c ON c.id = i.campaign_id WHERE l.labeller = 'refusal'")).all()
    by_key: dict[str, dict] = {}
    for key, version, label, fallback, chosen in rows:
        by_key.setdefault(key, {"chosen": chosen, "rows": {}})["rows"][version] = (label, fallback)
    drop = []
    for key, x in by_key.items():
        keep = x["chosen"] if x["chosen"] in x["rows"] else sorted(x["rows"])[-1]
        label, fallback = x["rows"][keep]
        if label is None and fallback in x["rows"]:
            keep = fallback
        drop += [{"k": key, "v": v} for v in x["rows"] if v != keep]
    if drop:
        bind.execute(sa.text("DELETE FROM labels WHERE key = :k AND labeller = 'refusal' AND labeller_version = :v"),
                     drop)
    if bind.dialect.name == "sqlite":
        table = _labels_0002(["key", "labeller"])
        table.append_column(sa.Column("fallback", sa.String(100)))
        with op.batch_alter_table("labels", recreate="always", copy_from=table) as b:
            b.drop_column("fallback")
    else:
        name = sa.inspect(bind).get_pk_constraint("labels")["name"] or "labels_pkey"
        op.drop_constraint(name, "labels", type_="primary")
        op.create_primary_key(name, "labels", ["key", "labeller"])
        op.drop_column("labels", "fallback")
    with op.batch_alter_table("campaigns") as b:
        b.drop_column("refusal_labeller")
