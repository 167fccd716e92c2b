"""The route table: what the operator tells the router, per route.

A route is the stable address agents are configured with once (``/openai/<namespace>/<route>/v1``);
normally named after the LearningPolicy (the track), or after the Experiment for a hand-made one. The
operator writes a RouteConfig whenever an Experiment's weights change (Flagger's "set routes"); the
router serves whatever the newest version says. A route with no experiment serves its champion alone.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


def experiment_key(namespace: str, name: str) -> str:
    """What an Experiment's traffic is recorded under: ``RouteConfig.experiment`` and its assignments."""
    return f"{namespace}/{name}"


class RouteVariant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=63)
    endpoint: str = Field(
        min_length=1, max_length=512, description="OpenAI-compatible base URL, e.g. http://host/v1"
    )
    model: str | None = Field(
        default=None, max_length=256, description="Model name sent upstream; None keeps the client's"
    )
    weight: int = Field(ge=0, le=100, description="Share of units, in percent")
    champion: bool = False


class RouteConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)
    experiment: str | None = Field(
        default=None, max_length=253, description="Experiment whose statistics this traffic feeds"
    )
    unit: str = Field(default="User", pattern="^(User|Session|Request)$")
    variants: list[RouteVariant] = Field(min_length=1, max_length=8)
    timeout_seconds: float = Field(default=60.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_champion_and_weights_sum_to_100(self) -> RouteConfig:
        champions = [v for v in self.variants if v.champion]
        if len(champions) != 1:
            raise ValueError("a route needs exactly one champion variant")
        if sum(v.weight for v in self.variants) != 100:
            raise ValueError("variant weights must add up to 100")
        if len({v.name for v in self.variants}) != len(self.variants):
            raise ValueError("variant names must be unique")
        return self

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def champion(self) -> RouteVariant:
        return next(v for v in self.variants if v.champion)
