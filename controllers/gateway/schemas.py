"""What agents send to the ingest API: strict, bounded, camelCase. Unknown fields are errors.

Each model converts itself to the store's column dicts, so the store never sees HTTP shapes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.alias_generators import to_camel

RecordId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Label = Annotated[str, StringConstraints(max_length=128)]
Text = Annotated[str, StringConstraints(max_length=200_000)]
MAX_BATCH = 1000


class Strict(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refusing it here gives the same 422 on every store instead
        # of a 500 on one of them (model output sometimes carries a stray \u0000).
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters; strip them before sending")
        if isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value):
            raise ValueError("items must not contain NUL (\\u0000) characters; strip them before sending")
        return value


class Signals(Strict):
    """Quality signals of one run; each is optional, and missing ones do not count in the reward."""

    compile_ok: bool | None = Field(default=None, description="The code compiled (or parsed).")
    tests_passed: int | None = Field(default=None, ge=0, le=1_000_000)
    tests_total: int | None = Field(default=None, ge=0, le=1_000_000)
    lint_errors: int | None = Field(default=None, ge=0, le=1_000_000)
    type_errors: int | None = Field(default=None, ge=0, le=1_000_000)
    schema_errors: int | None = Field(default=None, ge=0, le=1_000_000)
    coverage: float | None = Field(default=None, ge=0.0, le=1.0)
    cost_tokens: int | None = Field(default=None, ge=0, le=100_000_000)
    latency_ms: float | None = Field(default=None, ge=0.0, le=86_400_000.0)

    @model_validator(mode="after")
    def _tests_add_up(self) -> Signals:
        if (
            self.tests_passed is not None
            and self.tests_total is not None
            and self.tests_passed > self.tests_total
        ):
            raise ValueError("testsPassed must not exceed testsTotal")
        return self


class RunIn(Strict):
    """One agent execution."""

    id: RecordId | None = Field(
        default=None, description="Your id for the run; derived from the key if unset."
    )
    created_at: datetime | None = Field(default=None, description="When the run happened (default: now).")
    agent: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    role: Label = ""
    task_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    task_family: Label = ""
    model_variant: Label = ""
    prompt_variant: Label = ""
    attempt: int = Field(default=1, ge=1, le=1000)
    prompt: Text
    output: Text
    request_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    signals: Signals = Field(default_factory=Signals)

    def row(self, run_id: str, now: datetime) -> dict[str, Any]:
        return {
            "id": run_id,
            "created_at": _aware(self.created_at) or now,
            "agent": self.agent,
            "role": self.role,
            "task_id": self.task_id,
            "task_family": self.task_family,
            "model_variant": self.model_variant,
            "prompt_variant": self.prompt_variant,
            "attempt": self.attempt,
            "prompt": self.prompt,
            "output": self.output,
            "request_id": self.request_id,
            **self.signals.model_dump(),
        }


class FeedbackIn(Strict):
    """A verdict on a run, found by its id or by the request id the router returned."""

    id: RecordId | None = None
    run_id: RecordId | None = None
    request_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    author: Label = ""
    thumbs: Literal[-1, 1] | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    categories: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=16
    )
    correction: Text | None = None
    accepted: bool | None = None

    @model_validator(mode="after")
    def _one_target(self) -> FeedbackIn:
        if (self.run_id is None) == (self.request_id is None):
            raise ValueError("set exactly one of runId or requestId")
        return self


class PairIn(Strict):
    """An explicit preference pair."""

    prompt: Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
    chosen: Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
    rejected: Annotated[str, StringConstraints(min_length=1, max_length=200_000)]
    agent: Label = ""
    role: Label = ""
    task_family: Label = ""
    margin: float | None = Field(default=None, ge=-1.0, le=1.0)
    chosen_run_id: RecordId | None = None
    rejected_run_id: RecordId | None = None

    @model_validator(mode="after")
    def _distinct(self) -> PairIn:
        if self.chosen == self.rejected:
            raise ValueError("chosen and rejected must differ")
        return self


class AnnotationIn(Strict):
    """Ask a person to look at a run."""

    id: RecordId | None = None
    run_id: RecordId
    reason: Annotated[str, StringConstraints(max_length=512)] = ""
    labels: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=16
    )


class ReviewIn(Strict):
    """A person's decision on a queued pair or annotation."""

    kind: Literal["pair", "annotation"]
    id: RecordId
    decision: Literal["approved", "rejected"]
    reviewer: Label = ""
    note: Annotated[str, StringConstraints(max_length=4096)] = ""


class RunBatch(Strict):
    runs: list[RunIn] = Field(min_length=1, max_length=MAX_BATCH)


class FeedbackBatch(Strict):
    feedback: list[FeedbackIn] = Field(min_length=1, max_length=MAX_BATCH)


class PairBatch(Strict):
    pairs: list[PairIn] = Field(min_length=1, max_length=MAX_BATCH)


class AnnotationBatch(Strict):
    annotations: list[AnnotationIn] = Field(min_length=1, max_length=MAX_BATCH)


class ReviewBatch(Strict):
    reviews: list[ReviewIn] = Field(min_length=1, max_length=MAX_BATCH)


class RewardWeightsIn(Strict):
    compile: float = Field(default=0.25, ge=0.0, le=1.0)
    tests: float = Field(default=0.25, ge=0.0, le=1.0)
    error_rate: float = Field(default=0.25, ge=0.0, le=1.0)
    human_acceptance: float = Field(default=0.25, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _positive(self) -> RewardWeightsIn:
        if self.compile + self.tests + self.error_rate + self.human_acceptance <= 0:
            raise ValueError("at least one reward weight must be positive")
        return self


class PolicyIn(Strict):
    """A learning track's matching and reward weights (the operator syncs these from LearningPolicy)."""

    agent: Label = ""
    role: Label = ""
    task_family: Label = ""
    reward: RewardWeightsIn = Field(default_factory=RewardWeightsIn)


class WriteResponse(BaseModel):
    accepted: int
    inserted: int
    ids: list[str]


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
