"""The review queue as the gateway answers it (``GET /v1/review/queue``): camelCase, oldest first.

The store says what is pending (``controllers.store.reviews``); this module only gives it its HTTP
shape, as typed views read straight from the store's rows. Every free text a reviewer sees (a pair's
prompt, chosen and rejected, an annotation's reason and labels) goes through the same PII and secret
scrubber as the training snapshots (``controllers.data.pii.scrub``): a person reviews the shape of the
text, never the e-mail address or the key in it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel
from sqlalchemy.orm import Session

from controllers.data.pii import scrub
from controllers.store.reviews import pending_reviews

# Timestamps as Python's isoformat (``+00:00``), as the queue has always written them.
IsoTime = Annotated[datetime, PlainSerializer(lambda t: t.isoformat(), return_type=str)]
# Free text as a reviewer may see it: scrubbed of PII and secrets.
Scrubbed = Annotated[str, AfterValidator(scrub)]


class _View(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class PairView(_View):
    """A mined or posted pair waiting for a person's decision."""

    id: str
    source: str
    prompt: Scrubbed
    chosen: Scrubbed
    rejected: Scrubbed
    margin: float | None
    created_at: IsoTime


class AnnotationView(_View):
    """A run an agent flagged for a person to look at."""

    id: str
    run_id: str
    reason: Scrubbed
    labels: list[Annotated[Any, AfterValidator(lambda v: scrub(v) if isinstance(v, str) else v)]]
    created_at: IsoTime


class ReviewQueue(_View):
    pairs: list[PairView]
    annotations: list[AnnotationView]


def review_queue(
    session: Session, limit: int = 50, agent: str | None = None, namespaces: Collection[str] | None = None
) -> dict[str, Any]:
    """Pending pairs and annotations of ``namespaces`` (None: all), oldest first: the queue's body."""
    pending = pending_reviews(session, limit, agent, namespaces)
    queue = ReviewQueue(
        pairs=[PairView.model_validate(pair) for pair in pending.pairs],
        annotations=[AnnotationView.model_validate(annotation) for annotation in pending.annotations],
    )
    return queue.model_dump(by_alias=True)
