"""The operator's summaries of TrainingRuns, Experiments and LearningPolicies for the loop dashboard.

``loop_objects``: one row per object (``controllers.store.loop_objects``). A new table only; it fills
as the operator next writes each object's status (and once per object after each operator start).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_objects",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("uid", sa.String(64), nullable=False),
        sa.Column("policy", sa.String(253), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_loop_objects_policy", "loop_objects", ["namespace", "policy"])


def downgrade() -> None:
    op.drop_index("ix_loop_objects_policy", "loop_objects")
    op.drop_table("loop_objects")
