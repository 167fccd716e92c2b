"""Tenancy: every record belongs to a namespace, idempotency keys to the caller that used them.

Runs, feedback, annotations, preference pairs, experiment assignments and policies get a
``namespace`` column, and their keys become (namespace, id): the same id in two namespaces is two
records. Feedback and annotations reference their run by (namespace, run_id). Idempotency keys are
keyed by (scope, key), ``scope`` being the caller's identity.

Where existing rows go:

* every row starts in the *data namespace*: ``config.attributes["data_namespace"]`` (what
  ``controllers.store.migrate.upgrade(namespace=...)`` passes), else ``alembic -x namespace=<ns>``,
  else ``KAIZEN_DATA_NAMESPACE``, else ``default``;
* a policy the operator stored as ``<ns>.<name>`` becomes (``<ns>``, ``<name>``), and the runs and
  pairs of its track (agent, role, task family; an empty field matches any) move to ``<ns>`` with it.
  The most specific policies move first, each taking only rows still in the data namespace, so a run
  ends in exactly one namespace. A policy whose new key is taken already stays where it is;
* feedback and annotations follow their run; an assignment goes to the namespace of its experiment
  key (``<ns>/<name>``);
* existing idempotency keys get the empty scope: no caller can replay them any more (they only
  answered retries, and a scope is always a non-empty identity).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
NAMESPACED = ("runs", "feedback", "annotations", "preference_pairs", "experiment_assignments", "policies")
# Feedback and annotations: the constraint name SQLite's batch mode gives their old unnamed foreign key.
OLD_FK = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def data_namespace() -> str:
    config = context.config
    namespace = (
        config.attributes.get("data_namespace")
        or context.get_x_argument(as_dictionary=True).get("namespace")
        or os.environ.get("KAIZEN_DATA_NAMESPACE")
        or "default"
    )
    if not LABEL.fullmatch(namespace):
        raise ValueError(f"the data namespace {namespace!r} is not a DNS-1123 label")
    return str(namespace)


def upgrade() -> None:
    namespace = data_namespace()
    for table in NAMESPACED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("namespace", sa.String(63), nullable=False, server_default=namespace))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("scope", sa.String(255), nullable=False, server_default=""))
    _move_policy_tracks(namespace)
    _move_assignments()
    for table in ("feedback", "annotations"):
        op.execute(
            f"UPDATE {table} SET namespace = (SELECT runs.namespace FROM runs WHERE runs.id = {table}.run_id)"
        )
    for table in ("feedback", "annotations"):
        _drop_run_reference(table)
    _rekey("runs", ["namespace", "id"], {
        "ix_runs_track_task": ["namespace", "agent", "role", "task_id", "created_at"],
        "ix_runs_request_id": ["namespace", "request_id"],
    })  # fmt: skip
    for table in ("feedback", "annotations"):
        _rekey(table, ["namespace", "id"], run_reference=True)
    _rekey("preference_pairs", ["namespace", "id"], {
        "ix_pairs_track_state": ["namespace", "agent", "role", "review_state", "created_at"],
    })  # fmt: skip
    _rekey("experiment_assignments", ["namespace", "request_id"])
    _rekey("policies", ["namespace", "name"])
    _rekey("idempotency_keys", ["scope", "key"], default_column="scope")


def _track_match(table: sa.TableClause, agent: str, role: str, task_family: str) -> list[Any]:
    wanted = ((table.c.agent, agent), (table.c.role, role), (table.c.task_family, task_family))
    return [column == value for column, value in wanted if value]


def _move_policy_tracks(namespace: str) -> None:
    """Policies keyed ``<ns>.<name>`` (the operator's old key) move to ``<ns>``, their tracks with them."""
    bind = op.get_bind()
    policies = sa.table(
        "policies", sa.column("namespace"), sa.column("name"), sa.column("agent"), sa.column("role"),
        sa.column("task_family"),
    )  # fmt: skip
    rows = bind.execute(sa.select(policies.c.name, policies.c.agent, policies.c.role, policies.c.task_family))
    found = []
    for name, agent, role, task_family in rows:
        owner, dot, rest = str(name).partition(".")
        if dot and rest and LABEL.fullmatch(owner):
            found.append((owner, rest, str(name), str(agent or ""), str(role or ""), str(task_family or "")))
    # The most specific track first: a run matched by several policies goes with the narrowest one.
    found.sort(key=lambda p: (-sum(1 for field in p[3:] if field), p[2]))
    for owner, rest, name, agent, role, task_family in found:
        taken = bind.execute(
            sa.select(sa.func.count())
            .select_from(policies)
            .where(policies.c.namespace == owner, policies.c.name == rest)
        ).scalar()
        if taken:
            continue
        bind.execute(sa.update(policies).where(policies.c.name == name).values(namespace=owner, name=rest))
        for table_name in ("runs", "preference_pairs"):
            table = sa.table(
                table_name, sa.column("namespace"), sa.column("agent"), sa.column("role"),
                sa.column("task_family"),
            )  # fmt: skip
            bind.execute(
                sa.update(table)
                .where(table.c.namespace == namespace, *_track_match(table, agent, role, task_family))
                .values(namespace=owner)
            )


def _move_assignments() -> None:
    """An assignment belongs to its experiment's namespace: the experiment key is ``<ns>/<name>``."""
    bind = op.get_bind()
    assignments = sa.table("experiment_assignments", sa.column("namespace"), sa.column("experiment"))
    for (experiment,) in bind.execute(sa.select(assignments.c.experiment).distinct()).all():
        owner = str(experiment).partition("/")[0]
        if LABEL.fullmatch(owner):
            bind.execute(
                sa.update(assignments).where(assignments.c.experiment == experiment).values(namespace=owner)
            )


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _drop_run_reference(table: str) -> None:
    """Drop the foreign key from ``table.run_id`` to ``runs.id`` (first: rebuilding runs on SQLite
    with it in place would cascade the rebuild's delete into the table)."""
    if _sqlite():
        with op.batch_alter_table(table, recreate="always", naming_convention=OLD_FK) as batch:
            batch.drop_constraint(f"fk_{table}_run_id_runs", type_="foreignkey")
        return
    for foreign_key in sa.inspect(op.get_bind()).get_foreign_keys(table):
        if foreign_key["referred_table"] == "runs" and foreign_key["name"]:
            op.drop_constraint(foreign_key["name"], table, type_="foreignkey")


def _rekey(
    table: str,
    key: list[str],
    indexes: dict[str, list[str]] | None = None,
    *,
    run_reference: bool = False,
    default_column: str = "namespace",
) -> None:
    """Make ``key`` the table's primary key, drop the new column's migration default, rebuild indexes."""
    sqlite = _sqlite()
    old_key = None if sqlite else sa.inspect(op.get_bind()).get_pk_constraint(table).get("name")
    with warnings.catch_warnings():
        # SQLite's rebuild copies the old primary-key flag of ``id`` before the new key replaces it.
        warnings.filterwarnings("ignore", "Table .* specifies columns", sa.exc.SAWarning)
        with op.batch_alter_table(table, recreate="always" if sqlite else "auto") as batch:
            if old_key:
                batch.drop_constraint(old_key, type_="primary")
            batch.create_primary_key(f"{table}_pkey", key)
            size = 255 if default_column == "scope" else 63
            batch.alter_column(
                default_column, existing_type=sa.String(size), existing_nullable=False, server_default=None
            )
            for name, columns in (indexes or {}).items():
                batch.drop_index(name)
                batch.create_index(name, columns)
            if run_reference:
                batch.create_foreign_key(
                    f"fk_{table}_run",
                    "runs",
                    ["namespace", "run_id"],
                    ["namespace", "id"],
                    ondelete="CASCADE",
                )


def downgrade() -> None:
    raise NotImplementedError(
        "0005 cannot be undone: records of different namespaces may share ids, which one id space cannot hold"
    )
