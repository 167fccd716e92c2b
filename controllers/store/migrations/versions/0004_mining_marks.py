"""Incremental pair mining: when each run last changed, and how far each policy's mining got.

``runs.changed_at`` starts as the run's ``created_at`` for existing rows: no policy has a mining
mark yet, so each mines its whole window once, and from then on only what changed.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("changed_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE runs SET changed_at = created_at")
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("changed_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index("ix_runs_changed_at", ["changed_at"])
    with op.batch_alter_table("policies") as batch:
        batch.add_column(sa.Column("mined_fingerprint", sa.String(64)))
        batch.add_column(sa.Column("mined_through", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("policies") as batch:
        batch.drop_column("mined_through")
        batch.drop_column("mined_fingerprint")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_changed_at")
        batch.drop_column("changed_at")
