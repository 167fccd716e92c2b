"""The router's tables: routes (config + version per namespace/name) and what each assignment saw.

Assignments gain the served variant (it differs from the assigned one on a fallback), the upstream's
status code, error flag and message, latency and token cost, which the experiment statistics read.
Existing rows were served by their assigned variant without recorded errors.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routes",
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("experiment_assignments") as batch:
        batch.add_column(sa.Column("served_variant", sa.String(63)))
        batch.add_column(sa.Column("status_code", sa.Integer))
        batch.add_column(sa.Column("error", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("error_message", sa.String(512)))
        batch.add_column(sa.Column("latency_ms", sa.Float))
        batch.add_column(sa.Column("cost_tokens", sa.Integer))
    op.execute("UPDATE experiment_assignments SET served_variant = variant")
    with op.batch_alter_table("experiment_assignments") as batch:
        batch.alter_column("served_variant", existing_type=sa.String(63), nullable=False)
        batch.alter_column("error", existing_type=sa.Boolean, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("experiment_assignments") as batch:
        for column in (
            "cost_tokens",
            "latency_ms",
            "error_message",
            "error",
            "status_code",
            "served_variant",
        ):
            batch.drop_column(column)
    op.drop_table("routes")
