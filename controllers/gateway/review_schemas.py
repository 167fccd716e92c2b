"""What a reviewer sends to the blind review endpoints and the reservation they get back.

A reservation shows the prompt and the two answers as ``left`` and ``right`` in the order drawn for it,
scrubbed of PII and secrets as the queue is (``review_views.Scrubbed``), and never says which one is
the stored ``chosen``. Verdicts are bounded: a correction as long as any answer an agent may send, a
note of a few thousand characters, reason tags from ``decisions.reviewing.REASON_TAGS`` only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from controllers.decisions.reviewing import REASON_TAGS, Verdict
from controllers.gateway.review_views import IsoTime, Scrubbed, _View
from controllers.gateway.schemas import Label, Namespace, RecordId, Strict
from controllers.store.review_queue import Reserved

ReasonTag = Literal[
    "correctness", "completeness", "style", "safety", "instructions", "hallucination", "format", "other"
]


class ReserveIn(Strict):
    """Which queue to take the next item from: the namespace's, narrowed to a policy or an agent."""

    namespace: Namespace | None = None
    policy: (
        Annotated[str, StringConstraints(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")] | None
    ) = None
    agent: Label | None = None


class VerdictBody(Strict):
    """A verdict on the item the caller reserved, naming the sides as they were shown."""

    namespace: Namespace | None = None
    pair_id: RecordId
    verdict: Verdict = Field(description="left, right, tie or bothBad: the sides as shown.")
    correction: Annotated[str, StringConstraints(min_length=1, max_length=65_536)] | None = None
    tags: list[ReasonTag] = Field(default_factory=list, max_length=8)
    note: Annotated[str, StringConstraints(max_length=4096)] = ""


class ReservationView(_View):
    namespace: str
    pair_id: str
    prompt: Scrubbed
    left: Scrubbed
    right: Scrubbed
    expires_at: IsoTime
    policy: str | None
    reviewers_needed: int
    guidelines: str
    reason_tags: list[str]


def reservation_view(reserved: Reserved) -> ReservationView:
    pair = reserved.pair
    left, right = (pair.chosen, pair.rejected) if reserved.left_is_chosen else (pair.rejected, pair.chosen)
    return ReservationView(
        namespace=pair.namespace, pair_id=pair.id, prompt=pair.prompt, left=left, right=right,
        expires_at=reserved.expires_at, policy=reserved.rules.policy, reviewers_needed=reserved.rules.reviewers,
        guidelines=reserved.rules.guidelines, reason_tags=sorted(REASON_TAGS),
    )  # fmt: skip
