"""The blind pairwise review (issue 24): reservations, verdicts per reviewer, and review settings.

``review_slots`` (one per reviewer place on an item; the primary key decides who holds it),
``review_verdicts`` (one per reviewer and item) and ``review_settings`` (a LearningPolicy's
``spec.review``). New tables only: existing pairs stay pending and need one reviewer each.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _pair_of(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["namespace", "pair_id"],
        ["preference_pairs.namespace", "preference_pairs.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_pair",
    )


def upgrade() -> None:
    op.create_table(
        "review_slots",
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("pair_id", sa.String(64), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("reviewer", sa.String(320), nullable=False),
        sa.Column("left_is_chosen", sa.Boolean(), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        _pair_of("review_slots"),
    )
    op.create_index("ix_review_slots_reviewer", "review_slots", ["namespace", "reviewer"])
    op.create_table(
        "review_verdicts",
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("pair_id", sa.String(64), primary_key=True),
        sa.Column("reviewer", sa.String(320), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("preference", sa.String(16), nullable=False),
        sa.Column("left_is_chosen", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("correction", sa.Text()),
        _pair_of("review_verdicts"),
    )
    op.create_index("ix_review_verdicts_created_at", "review_verdicts", ["created_at"])
    op.create_table(
        "review_settings",
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("policy", sa.String(253), primary_key=True),
        sa.Column("reviewers_per_item", sa.Integer(), nullable=False),
        sa.Column("guidelines", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("review_settings")
    op.drop_index("ix_review_verdicts_created_at", "review_verdicts")
    op.drop_table("review_verdicts")
    op.drop_index("ix_review_slots_reviewer", "review_slots")
    op.drop_table("review_slots")
