"""Feedback that names only a router request: it rates the request until a run names the request id.

``feedback.run_id`` may be NULL now, and ``feedback.request_id`` keeps the request id a feedback named
(indexed with its namespace, so the first run that names the request takes its feedback over). The
assignment of a request gets the route that served it (``route``: ``routes/use`` on it lets a caller
rate the request) and what feedback on the request alone says: ``human_accepted``, the ``reward``
that verdict gives, and ``rewarded_at``; the experiment counts that reward while no run names the
request.

Existing assignments get their route from the routes table: the route of their namespace whose
config still names their experiment. Assignments of experiments no route names any more (a settled
experiment's) keep no route; feedback naming only such a request is refused as before.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feedback") as batch:
        batch.alter_column("run_id", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("request_id", sa.String(128)))
        batch.create_index("ix_feedback_request_id", ["namespace", "request_id"])
    with op.batch_alter_table("experiment_assignments") as batch:
        batch.add_column(sa.Column("route", sa.String(253)))
        batch.add_column(sa.Column("human_accepted", sa.Boolean()))
        batch.add_column(sa.Column("reward", sa.Float()))
        batch.add_column(sa.Column("rewarded_at", sa.DateTime(timezone=True)))
    _backfill_routes()


def _backfill_routes() -> None:
    """Each existing assignment's route: the route of its namespace whose config names its experiment."""
    bind = op.get_bind()
    routes = sa.table("routes", sa.column("namespace"), sa.column("name"), sa.column("config", sa.JSON()))
    assignments = sa.table(
        "experiment_assignments", sa.column("namespace"), sa.column("experiment"), sa.column("route")
    )
    for namespace, name, config in bind.execute(
        sa.select(routes.c.namespace, routes.c.name, routes.c.config)
    ):
        experiment = config.get("experiment") if isinstance(config, dict) else None
        if not isinstance(experiment, str) or not experiment:
            continue
        bind.execute(
            sa.update(assignments)
            .where(
                assignments.c.namespace == namespace,
                assignments.c.experiment == experiment,
                assignments.c.route.is_(None),
            )
            .values(route=name)
        )


def downgrade() -> None:
    """Feedback on a request no run names has nowhere to go in the old schema: it is deleted."""
    op.execute("DELETE FROM feedback WHERE run_id IS NULL")
    with op.batch_alter_table("experiment_assignments") as batch:
        for column in ("rewarded_at", "reward", "human_accepted", "route"):
            batch.drop_column(column)
    with op.batch_alter_table("feedback") as batch:
        batch.drop_index("ix_feedback_request_id")
        batch.drop_column("request_id")
        batch.alter_column("run_id", existing_type=sa.String(64), nullable=False)
