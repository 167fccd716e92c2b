"""The review queue as the gateway answers it (``GET /v1/review/queue``): camelCase, oldest first.

The store says what is pending (``controllers.store.reviews``); this module only gives it its HTTP shape.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from controllers.store.models import Annotation, PreferencePair
from controllers.store.reviews import pending_reviews


def pair_view(pair: PreferencePair) -> dict[str, Any]:
    return {
        "id": pair.id,
        "source": pair.source,
        "prompt": pair.prompt,
        "chosen": pair.chosen,
        "rejected": pair.rejected,
        "margin": pair.margin,
        "createdAt": pair.created_at.isoformat(),
    }


def annotation_view(annotation: Annotation) -> dict[str, Any]:
    return {
        "id": annotation.id,
        "runId": annotation.run_id,
        "reason": annotation.reason,
        "labels": annotation.labels,
        "createdAt": annotation.created_at.isoformat(),
    }


def review_queue(session: Session, limit: int = 50, agent: str | None = None) -> dict[str, Any]:
    """Pending pairs and annotations, oldest first: the queue's response body."""
    pending = pending_reviews(session, limit, agent)
    return {
        "pairs": [pair_view(pair) for pair in pending.pairs],
        "annotations": [annotation_view(annotation) for annotation in pending.annotations],
    }
