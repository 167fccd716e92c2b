"""What agents send to the ingest API: strict, bounded, camelCase. Unknown fields are errors.

Each model converts itself to the store's column dicts, so the store never sees HTTP shapes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from controllers.data.reward import RENAMED

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: none belongs in a name that
# ends up in a header, a log line, a label or a file name.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=1)  # clocks drift; a day ahead of ours is the most we believe


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (CR, LF, NUL, tab, ...)")
    return value


def _in_range(value: datetime) -> datetime:
    """An aware UTC timestamp (a naive one is taken as UTC) between 1970 and a day from now."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not EARLIEST <= value <= datetime.now(UTC) + LATEST_AHEAD:
        raise ValueError("must be between 1970-01-01T00:00Z and one day from now")
    return value.astimezone(UTC)


RecordId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Label = Annotated[str, StringConstraints(max_length=128), AfterValidator(_no_control)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_no_control)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_no_control)]
Text = Annotated[str, StringConstraints(max_length=200_000)]
Timestamp = Annotated[datetime, AfterValidator(_in_range)]
Namespace = Annotated[str, StringConstraints(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
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
    created_at: Timestamp | None = Field(
        default=None, description="When the run happened (default: now); 1970 to a day from now."
    )
    agent: Name
    role: Label = ""
    task_id: Annotated[str, StringConstraints(min_length=1, max_length=256), AfterValidator(_no_control)]
    task_family: Label = ""
    model_variant: Label = ""
    prompt_variant: Label = ""
    attempt: int = Field(default=1, ge=1, le=1000)
    prompt: Text
    output: Text
    request_id: Annotated[str, StringConstraints(max_length=128), AfterValidator(_no_control)] | None = None
    signals: Signals = Field(default_factory=Signals)

    def row(self, run_id: str, now: datetime) -> dict[str, Any]:
        return {
            "id": run_id,
            "created_at": self.created_at or now,
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
    request_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_no_control)] | None
    ) = None
    author: Label = ""
    thumbs: Literal[-1, 1] | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    categories: list[Tag] = Field(default_factory=list, max_length=16)
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
    labels: list[Tag] = Field(default_factory=list, max_length=16)


class ReviewIn(Strict):
    """A person's decision on a queued pair or annotation."""

    kind: Literal["pair", "annotation"]
    namespace: Namespace | None = Field(
        default=None, description="The record's namespace (default: any you may review)."
    )
    id: RecordId
    decision: Literal["approved", "rejected"]
    reviewer: Label = ""
    note: Annotated[str, StringConstraints(max_length=4096)] = ""


class RunBatch(Strict):
    namespace: Namespace | None = Field(default=None, description="Where the records go (default: default).")
    runs: list[RunIn] = Field(min_length=1, max_length=MAX_BATCH)


class FeedbackBatch(Strict):
    namespace: Namespace | None = Field(default=None, description="Where the records go (default: default).")
    feedback: list[FeedbackIn] = Field(min_length=1, max_length=MAX_BATCH)


class PairBatch(Strict):
    namespace: Namespace | None = Field(default=None, description="Where the records go (default: default).")
    pairs: list[PairIn] = Field(min_length=1, max_length=MAX_BATCH)


class AnnotationBatch(Strict):
    namespace: Namespace | None = Field(default=None, description="Where the records go (default: default).")
    annotations: list[AnnotationIn] = Field(min_length=1, max_length=MAX_BATCH)


class ReviewBatch(Strict):
    namespace: Namespace | None = Field(
        default=None, description="Whose queue these decide (default: yours)."
    )
    reviews: list[ReviewIn] = Field(min_length=1, max_length=MAX_BATCH)


class RewardWeightsIn(Strict):
    """A LearningPolicy's ``spec.reward``: each weight named after the run signal it weighs."""

    compile_ok: float = Field(default=0.25, ge=0.0, le=1.0)
    tests_passed: float = Field(default=0.25, ge=0.0, le=1.0)
    errors: float = Field(default=0.25, ge=0.0, le=1.0)
    human_accepted: float = Field(default=0.25, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        # The old names would otherwise be refused as merely unknown; say what replaced them.
        old = sorted(set(data) & set(RENAMED)) if isinstance(data, dict) else []
        if old:
            raise ValueError("; ".join(f"{name} was renamed to {RENAMED[name]}" for name in old))
        return data

    @model_validator(mode="after")
    def _positive(self) -> RewardWeightsIn:
        if self.compile_ok + self.tests_passed + self.errors + self.human_accepted <= 0:
            raise ValueError("at least one reward weight must be positive")
        return self


class ReviewSettingsIn(Strict):
    """A LearningPolicy's ``spec.review``: reviewers per item and the guidelines shown beside each."""

    reviewers_per_item: int = Field(default=1, ge=1, le=10)
    guidelines: Annotated[str, StringConstraints(max_length=8192)] = ""


class PolicyIn(Strict):
    """A learning track's matching, reward weights and review settings (the operator syncs these
    from LearningPolicy)."""

    agent: Label = ""
    role: Label = ""
    task_family: Label = ""
    reward: RewardWeightsIn = Field(default_factory=RewardWeightsIn)
    review: ReviewSettingsIn = Field(default_factory=ReviewSettingsIn)


class WriteResponse(BaseModel):
    accepted: int
    inserted: int
    ids: list[str]
