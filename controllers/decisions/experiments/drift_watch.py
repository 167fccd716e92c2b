"""The watch after a promotion, as pure decisions: does this experiment still watch its champion, what
do the champion's own two windows say, and what evidence does a drift rollback leave behind?

A promoting experiment keeps the track's route until a later experiment takes it over. While it
owns the route, no later experiment of the track exists and its challenger is still the policy's
champion, the operator reads two windows of that champion's rewards since the promotion (the first
``W`` and the last ``W``, ``W`` = ``rollout.minSamplesPerVariant``) and asks ``check_drift``. The
answer is the Experiment's ``Drift`` condition:

* Unknown ``WaitingForTraffic`` until ``2W`` rewards exist, so that the windows never overlap;
* False ``NoDrift`` while the champion holds the level it had just after promotion;
* True ``RollingBack``, written before any effect (the route back to the previous champion, the
  promoted ShadowModel RolledBack, the policy's champion restored), its message the drift check's
  sentence, which the effects are re-applied from until they all hold; then True ``Regressed``;
* False ``Superseded`` or ``ChampionChanged``: the track moved on, so this experiment stops watching.

``Regressed`` and the two stopped stages are final: the watch never starts again, whatever happens
to the route later.
"""

from __future__ import annotations

from dataclasses import dataclass

from controllers.api.common import Condition, ConditionStatus
from controllers.api.experiment import DriftStage as Stage
from controllers.api.serving_settings import RolloutSettings
from controllers.api.shadowmodel import Evidence
from controllers.decisions.experiments.drift import check_drift
from controllers.decisions.experiments.observations import VariantObservations

STATUS = {
    Stage.WAITING: ConditionStatus.UNKNOWN,
    Stage.WATCHING: ConditionStatus.FALSE,
    Stage.ROLLING_BACK: ConditionStatus.TRUE,
    Stage.REGRESSED: ConditionStatus.TRUE,
    Stage.SUPERSEDED: ConditionStatus.FALSE,
    Stage.CHAMPION_CHANGED: ConditionStatus.FALSE,
}


@dataclass(frozen=True)
class DriftWindows:
    """The promoted variant's rewards since the promotion, and its two windows once there are enough."""

    rewards: int  # rewarded requests served by the variant since the promotion
    size: int  # W: rewards per window
    baseline: VariantObservations | None = None  # the first W; None until 2W rewards exist
    recent: VariantObservations | None = None  # the last W


@dataclass(frozen=True)
class DriftStep:
    """What the Drift condition should say now."""

    stage: Stage
    message: str

    @property
    def status(self) -> ConditionStatus:
        return STATUS[self.stage]


def window_size(settings: RolloutSettings) -> int:
    """W: as many rewards per window as the experiment needed per variant to decide at all."""
    return settings.min_samples_per_variant


def stage_of(condition: Condition | None) -> Stage | None:
    """The stage a stored Drift condition records; None before the first look (or for a stranger's)."""
    if condition is None or condition.reason not in {stage.value for stage in Stage}:
        return None
    return Stage(condition.reason)


def stop_reason(
    key: str,
    route_owner: str | None,
    successor: str | None,
    champion: str | None,
    promoted: str | None,
    *,
    route: str,
    policy: str | None,
) -> DriftStep | None:
    """Why this experiment no longer watches (the track moved on), or None while it still should.

    ``route_owner`` is the experiment the stored route feeds, ``successor`` a later experiment of the
    same policy (it takes the route over on its first pass, and its champion is the promoted model, so
    a rollback under it would pull that model from beneath it), ``champion`` the policy's champion."""
    if successor:
        return DriftStep(
            Stage.SUPERSEDED, f"experiment {successor} follows on this track; stopped watching for drift"
        )
    if route_owner != key:
        now = f"feeds {route_owner}" if route_owner else "is gone"
        return DriftStep(Stage.SUPERSEDED, f"route {route} {now}; stopped watching for drift")
    if policy and promoted and champion != promoted:
        return DriftStep(
            Stage.CHAMPION_CHANGED,
            f"{promoted} is no longer the champion of policy {policy} (now {champion or 'the plain base model'});"
            " stopped watching for drift",
        )
    return None


def judge(windows: DriftWindows, settings: RolloutSettings, variant: str) -> DriftStep:
    """The drift check over the two windows; RollingBack when the champion regressed."""
    if windows.baseline is None or windows.recent is None:
        return DriftStep(
            Stage.WAITING,
            f"watching {variant} for drift: {windows.rewards}/{2 * windows.size} rewards since promotion"
            f" (the first {windows.size} are its baseline, the last {windows.size} the recent window)",
        )
    verdict = check_drift(windows.baseline, windows.recent, settings)
    stage = Stage.ROLLING_BACK if verdict.regressed else Stage.WATCHING
    return DriftStep(stage, f"{variant} since promotion: {verdict.reason}")


def rollback_evidence(experiment: str, reason: str, windows: DriftWindows | None) -> Evidence:
    """What the promoted ShadowModel records: the experiment, the drift check's sentence and, when the
    windows are at hand, the recent window's size and its mean minus the baseline's."""
    said = f"drift after promotion: {reason}"[:1024]
    if windows is None or windows.baseline is None or windows.recent is None:
        return Evidence(experiment=experiment, reason=said)
    recent, baseline = windows.recent.mean_reward, windows.baseline.mean_reward
    delta = round(recent - baseline, 6) if recent is not None and baseline is not None else None
    return Evidence(experiment=experiment, reason=said, samples=windows.recent.rewards, mean_delta=delta)
