"""An Experiment whose variants name ShadowModels that will not serve: what it says and when it gives
up (``controllers.decisions.experiments.references``), and the traffic share its status shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from controllers.api.common import ConditionStatus
from controllers.api.experiment import (
    ExperimentSpec,
    ExperimentStatus,
    VariantStatus,
    challenger_weight,
)
from controllers.decisions.experiments.references import (
    NOT_FOUND,
    OUT_OF_SERVICE,
    blocked,
    give_up,
    give_up_at,
    not_found,
    out_of_service,
)

CREATED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def spec(**rollout: object) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "variants": [
                {"name": "champion", "role": "Champion", "shadowModel": "coder-0001"},
                {"name": "challenger", "role": "Challenger", "shadowModel": "coder-0002"},
            ],
            "rollout": {"maxDuration": "2h", **rollout},
        }
    )


def test_a_missing_or_retired_model_is_named_by_its_field() -> None:
    missing = not_found(1, "challenger", "coder-0002", "team-a")
    assert missing.reason == NOT_FOUND == "ShadowModelNotFound"
    assert (
        missing.message == "spec.variants[1].shadowModel: no ShadowModel 'coder-0002' in namespace 'team-a'"
    )
    retired = out_of_service(0, "champion", "coder-0001", "RolledBack")
    assert retired.reason == OUT_OF_SERVICE
    assert (
        retired.message
        == "spec.variants[0].shadowModel: ShadowModel 'coder-0001' is RolledBack and serves no more"
    )


def test_the_deadline_is_max_duration_after_the_traffic_started_or_else_after_creation() -> None:
    assert give_up_at(spec(), None, CREATED) == CREATED + timedelta(hours=2)
    started = CREATED + timedelta(hours=5)
    assert give_up_at(spec(), started, CREATED) == started + timedelta(hours=2)


def test_a_model_out_of_service_for_good_gives_up_at_once_and_a_missing_one_is_waited_for() -> None:
    # A missing model may still be created: wait for maxDuration. A RolledBack one never serves again.
    missing = not_found(1, "challenger", "coder-0002", "team-a")
    rolled_back = out_of_service(0, "champion", "coder-0001", "RolledBack")
    assert give_up_at(spec(), None, CREATED, [missing]) == CREATED + timedelta(hours=2)
    assert give_up_at(spec(), None, CREATED, [rolled_back]) == CREATED
    assert give_up_at(spec(), None, CREATED, [missing, rolled_back]) == CREATED
    started = CREATED + timedelta(minutes=7)
    assert give_up_at(spec(), started, CREATED, [rolled_back]) == started


def test_giving_up_on_a_model_out_of_service_says_it_will_not_serve_again() -> None:
    rolled_back = out_of_service(0, "champion", "coder-0001", "RolledBack")
    end = give_up(spec(), ExperimentStatus(), [rolled_back], {"challenger"})
    assert "will not serve again" in end.reason
    assert "maxDuration" not in end.reason
    assert end.weights == {}  # the champion does not serve: nothing is routed
    missing = not_found(1, "challenger", "coder-0002", "team-a")
    assert (
        "still so after maxDuration 2h" in give_up(spec(), ExperimentStatus(), [missing], {"champion"}).reason
    )


def test_while_blocked_ready_is_false_and_says_what_to_do_and_when_it_gives_up() -> None:
    want = blocked([not_found(1, "challenger", "coder-0002", "team-a")], CREATED + timedelta(hours=2))
    assert (want.status, want.reason) == (ConditionStatus.FALSE, "ShadowModelNotFound")
    assert want.message.startswith("spec.variants[1].shadowModel: no ShadowModel 'coder-0002'")
    assert "Create it or name a serving model" in want.message
    assert want.message.endswith("ends Inconclusive at 2026-11-22T14:00:00Z")


def test_giving_up_puts_the_traffic_on_the_champion_when_it_serves() -> None:
    status = ExperimentStatus(
        variants=[
            VariantStatus(name="champion", weight=90, samples=40),
            VariantStatus(name="challenger", weight=10),
        ]
    )
    end = give_up(spec(), status, [not_found(1, "challenger", "coder-0002", "team-a")], {"champion"})
    assert end.weights == {"champion": 100}
    assert {row.name: (row.weight, row.samples) for row in end.rows} == {
        "champion": (100, 40),
        "challenger": (0, 0),
    }
    assert end.reason.endswith("still so after maxDuration 2h: inconclusive, traffic on champion")
    assert (end.ready.status, end.ready.reason) == (ConditionStatus.FALSE, "ShadowModelNotFound")
    assert end.ready.message.endswith("Fix the reference in a new Experiment")


def test_giving_up_routes_nothing_when_the_champion_does_not_serve() -> None:
    gone = [not_found(0, "champion", "coder-0001", "team-a")]
    end = give_up(spec(), ExperimentStatus(), gone, {"challenger"})
    assert end.weights == {}
    assert [row.weight for row in end.rows] == [0, 0]
    assert "nothing routed (no serving champion)" in end.reason


def test_the_share_column_is_the_challengers_weight_not_the_step() -> None:
    rows = [VariantStatus(name="champion", weight=75), VariantStatus(name="challenger", weight=25)]
    assert challenger_weight(spec(), rows) == 25
    assert challenger_weight(spec(), []) is None  # no weights yet
