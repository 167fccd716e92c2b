"""Reward weights named after the run signals they weigh: ``compile`` → ``compileOk``, ``tests`` →
``testsPassed``, ``errorRate`` → ``errors``, ``humanAcceptance`` → ``humanAccepted`` (issue 22).

A policy row keeps the weights its LearningPolicy (or ``PUT /v1/policies``) last wrote. Rows written
under the old names would otherwise be refused when read (``RewardWeights.from_camel`` names the
rename) until the operator next synced the policy, and a row written only through the gateway would
stay unreadable; renaming the keys here keeps every weight as it was. The rewards themselves do not
change. The names are spelled out here, not imported: a migration must keep meaning what it meant.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NEW_NAMES = {
    "compile": "compileOk",
    "tests": "testsPassed",
    "errorRate": "errors",
    "humanAcceptance": "humanAccepted",
}


def _rename_keys(names: dict[str, str]) -> None:
    bind = op.get_bind()
    policies = sa.table(
        "policies", sa.column("namespace"), sa.column("name"), sa.column("weights", sa.JSON())
    )
    rows = bind.execute(sa.select(policies.c.namespace, policies.c.name, policies.c.weights)).all()
    for namespace, name, weights in rows:
        if not isinstance(weights, dict) or not set(weights) & set(names):
            continue
        renamed: dict[str, Any] = {names.get(str(key), str(key)): value for key, value in weights.items()}
        bind.execute(
            sa.update(policies)
            .where(policies.c.namespace == namespace, policies.c.name == name)
            .values(weights=renamed)
        )


def upgrade() -> None:
    _rename_keys(NEW_NAMES)


def downgrade() -> None:
    _rename_keys({new: old for old, new in NEW_NAMES.items()})
