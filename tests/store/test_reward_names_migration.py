"""Revision 0008: a policy row written under the old weight names keeps its weights under the new ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from controllers.data.reward import RewardWeights, Signals, compute_reward
from controllers.store import migrate
from controllers.store.db import make_engine
from controllers.store.models import Policy
from controllers.store.request_feedback import route_weights

OLD = {"compile": 1.0, "tests": 0.0, "errorRate": 0.0, "humanAcceptance": 0.5}


def test_upgrading_to_0008_renames_the_stored_weights_and_keeps_their_values(empty_url: str) -> None:
    assert migrate.upgrade(empty_url, "0007") == "0007"
    engine = make_engine(empty_url)
    with engine.begin() as connection:
        for name, weights in (("coder", OLD), ("fixer", {"tests": 1.0})):
            connection.execute(
                text(
                    "INSERT INTO policies (namespace, name, agent, role, task_family, weights, updated_at)"
                    " VALUES ('team', :name, :name, '', '', :weights, :now)"
                ),
                {"name": name, "weights": json.dumps(weights), "now": datetime.now(UTC)},
            )
    assert migrate.upgrade(empty_url) == migrate.head_revision()
    with Session(engine) as session:
        coder = route_weights(session, "team", "coder")
        fixer = route_weights(session, "team", "fixer")
        stored = session.scalar(select(Policy.weights).where(Policy.name == "coder"))
    engine.dispose()
    assert stored == {"compileOk": 1.0, "testsPassed": 0.0, "errors": 0.0, "humanAccepted": 0.5}
    assert coder == RewardWeights(compile_ok=1.0, tests_passed=0.0, errors=0.0, human_accepted=0.5)
    assert fixer == RewardWeights(tests_passed=1.0)  # the weights it did not set keep their defaults
    # the same run gets the same reward as before the rename: compiled, rejected by a person
    assert compute_reward(Signals(compile_ok=True, human_accepted=False), coder) == pytest.approx(1.0 / 1.5)
