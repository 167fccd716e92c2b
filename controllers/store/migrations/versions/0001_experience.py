"""Experience tables: runs, feedback, annotations, preference pairs, assignments, snapshots, decisions, keys.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("role", sa.String(128), nullable=False),
        sa.Column("task_id", sa.String(256), nullable=False),
        sa.Column("task_family", sa.String(128), nullable=False),
        sa.Column("model_variant", sa.String(128), nullable=False),
        sa.Column("prompt_variant", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(128)),
        sa.Column("compile_ok", sa.Boolean),
        sa.Column("tests_passed", sa.Integer),
        sa.Column("tests_total", sa.Integer),
        sa.Column("lint_errors", sa.Integer),
        sa.Column("type_errors", sa.Integer),
        sa.Column("schema_errors", sa.Integer),
        sa.Column("coverage", sa.Float),
        sa.Column("cost_tokens", sa.Integer),
        sa.Column("latency_ms", sa.Float),
        sa.Column("human_accepted", sa.Boolean),
        sa.Column("reward", sa.Float),
    )
    op.create_index("ix_runs_track_task", "runs", ["agent", "role", "task_id", "created_at"])
    op.create_index("ix_runs_request_id", "runs", ["request_id"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("thumbs", sa.Integer),
        sa.Column("rating", sa.Integer),
        sa.Column("categories", sa.JSON, nullable=False),
        sa.Column("correction", sa.Text),
        sa.Column("accepted", sa.Boolean),
    )
    op.create_index("ix_feedback_run_id", "feedback", ["run_id"])
    op.create_table(
        "annotations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("reviewed_at", TS),
    )
    op.create_index("ix_annotations_run_id", "annotations", ["run_id"])
    op.create_table(
        "preference_pairs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("role", sa.String(128), nullable=False),
        sa.Column("task_family", sa.String(128), nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("chosen", sa.Text, nullable=False),
        sa.Column("rejected", sa.Text, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("margin", sa.Float),
        sa.Column("review_state", sa.String(16), nullable=False),
        sa.Column("chosen_run_id", sa.String(64)),
        sa.Column("rejected_run_id", sa.String(64)),
        sa.Column("judge_model", sa.String(256)),
        sa.Column("judge_rubric", sa.Text),
    )
    op.create_index("ix_preference_pairs_created_at", "preference_pairs", ["created_at"])
    op.create_index(
        "ix_pairs_track_state", "preference_pairs", ["agent", "role", "review_state", "created_at"]
    )
    op.create_table(
        "experiment_assignments",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("experiment", sa.String(253), nullable=False),
        sa.Column("variant", sa.String(63), nullable=False),
        sa.Column("unit_hash", sa.String(64), nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("fallback", sa.Boolean, nullable=False),
    )
    op.create_index("ix_experiment_assignments_experiment", "experiment_assignments", ["experiment"])
    op.create_table(
        "dataset_snapshots",
        sa.Column("content_hash", sa.String(71), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("uri", sa.String(1024), nullable=False),
        sa.Column("watermark", TS),
        sa.Column("train_rows", sa.Integer, nullable=False),
        sa.Column("eval_rows", sa.Integer, nullable=False),
        sa.Column("split_seed", sa.Integer, nullable=False),
        sa.Column("scrubbed", sa.JSON, nullable=False),
        sa.Column("filters", sa.JSON, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("subject", sa.String(253), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
    )
    op.create_index("ix_decisions_created_at", "decisions", ["created_at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "decisions",
        "dataset_snapshots",
        "experiment_assignments",
        "preference_pairs",
        "annotations",
        "feedback",
        "runs",
    ):
        op.drop_table(table)
