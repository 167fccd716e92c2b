"""Sticky, weighted assignment of units to variants by weighted rendezvous hashing. Pure, no I/O.

Each variant ``v`` with weight ``w_v > 0`` gets a score for the unit,

    score_v(unit) = -ln(U_v(unit)) / w_v,    U_v(unit) = sha256(unit_hash ‖ v) read as a number in (0, 1)

and the unit goes to the variant with the lowest score. ``-ln(U)/w`` is an exponential variable with
rate ``w``, and the smallest of independent exponentials is variant ``v`` with probability
``w_v / Σw``: the weights are honoured exactly, in expectation, for any number of variants.

Why rendezvous hashing and not buckets: a variant's score depends only on the unit, the variant's own
name and its own weight, so a change can only move units whose ranking it changes.

* Two variants (every champion/challenger rollout): raising the challenger from 5 to 25 % lowers
  every challenger score and raises every champion score, so a unit can only move *to* the challenger,
  and in expectation exactly 20 % of units do, which is the least any scheme can move. Setting it to 0
  removes it from the race: its units, and only they, go to the champion.
* N variants: when one variant's weight changes and the others keep their proportions, units move
  only to or from that variant (the others' scores all scale by one factor, so their order holds):
  again the minimum. Arbitrary N-way rebalancing (a bandit moving weight between two non-champion
  arms) can move some extra units between the other arms; no stateless scheme avoids that in general.

The unit hash includes the experiment name, so two experiments split the same users independently,
and it is all the store keeps of a unit: never the raw user id.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

UNIT_HEADER = "x-kaizen-unit"
USER_HEADER = "x-kaizen-user"
SESSION_HEADER = "x-kaizen-session"

_SCALE = 2.0**64


class NoVariant(ValueError):
    """Every variant has weight 0: there is nothing to assign to."""


def unit_hash(experiment: str, unit: str) -> str:
    """The stored identity of a unit within one experiment (sha256 hex; the unit id is not recoverable)."""
    return hashlib.sha256(f"{experiment}\x1f{unit}".encode()).hexdigest()


def _uniform(hashed_unit: str, variant: str) -> float:
    digest = hashlib.sha256(f"{hashed_unit}\x1f{variant}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / _SCALE  # strictly inside (0, 1)


def choose(hashed_unit: str, weights: Sequence[tuple[str, int]]) -> str:
    """The variant this unit belongs to under ``weights`` (name, percent); the same answer every time."""
    best, best_score = "", math.inf
    for name, weight in weights:
        if weight > 0:
            score = -math.log(_uniform(hashed_unit, name)) / weight
            if score < best_score:
                best, best_score = name, score
    if not best:
        raise NoVariant("no variant has a positive weight")
    return best


def unit_id(
    unit_kind: str, headers: Mapping[str, str], body_user: object, request_id: str
) -> tuple[str, str]:
    """Which unit a request belongs to, and where that came from (for metrics and debugging).

    ``X-Kaizen-Unit`` always wins. Otherwise a ``User`` route uses the OpenAI body's ``user`` field or
    ``X-Kaizen-User``, a ``Session`` route uses ``X-Kaizen-Session``, and a ``Request`` route uses the
    request id. A request that lacks the id its route asks for is randomised on its own (source
    ``request``) rather than refused: the proxy stays transparent, and the metric shows how often.
    """
    if explicit := headers.get(UNIT_HEADER):
        return explicit, "header"
    if unit_kind == "User":
        if isinstance(body_user, str) and body_user:
            return body_user, "user"
        if user := headers.get(USER_HEADER):
            return user, "user"
    elif unit_kind == "Session" and (session := headers.get(SESSION_HEADER)):
        return session, "session"
    return request_id, "request"
