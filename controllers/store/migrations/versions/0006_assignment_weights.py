"""The weights each request was assigned by, for the experiment's sequential tests.

The reward test weighs every request by the probability its assignment had, and the sample-ratio
test compares each allocation epoch with its own weights; both need the weights the router used for
that request. Rows written before this revision have none (NULL) and are left out of both tests:
an experiment running across the upgrade is judged on the traffic after it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment_assignments") as batch:
        batch.add_column(sa.Column("allocation", sa.String(1024)))


def downgrade() -> None:
    with op.batch_alter_table("experiment_assignments") as batch:
        batch.drop_column("allocation")
