"""How the operator answers a person's intervention (controllers.api.intervention). Pure.

An answer is one sentence, recorded as the request's ``outcome`` in status.interventions and said
again in an Event that names who asked and why. A declined request's outcome starts with
``declined:``, so the CLI (and a person reading ``kubectl describe``) tells the two apart without a
second field; its Event is a Warning with reason ``InterventionDeclined``, an honoured one a Normal
Event whose reason is the action (``Retry``, ``Train``, ``Pause`` ...).
"""

from __future__ import annotations

from controllers.api.intervention import Intervention

DECLINED = "declined: "
DECLINED_REASON = "InterventionDeclined"


def declined(why: str) -> str:
    return DECLINED + why


def is_declined(outcome: str) -> bool:
    return outcome.startswith(DECLINED)


def not_applicable(request: Intervention, kind: str) -> str:
    """The outcome for an action that means nothing for this kind (a Promote on a TrainingRun)."""
    return declined(f"{request.action.value} does not apply to a {kind}")


def event(request: Intervention, outcome: str) -> tuple[str, str, str]:
    """The Event for an answered request: (type, reason, message)."""
    why = f" ({request.reason})" if request.reason else ""
    message = f"{request.action.value} asked by {request.by or 'someone'}{why}: {outcome}"
    if is_declined(outcome):
        return ("Warning", DECLINED_REASON, message)
    return ("Normal", request.action.value, message)
