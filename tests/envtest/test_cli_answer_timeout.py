"""``kaizen train`` and ``kaizen retry`` wait ``--timeout`` seconds for the operator's answer.

No operator runs here: the request is written on the object and nobody answers it. The command must
give up after the timeout it was given (not the 30 s default), say the request stays pending and how
to follow it, and leave the request in place, so that a second one is refused until it is answered.
"""

from __future__ import annotations

import json
import time

from controllers.api.intervention import ANNOTATION
from devstack.controlplane import ControlPlane
from tests.envtest.test_cli_get_describe import kaizen, track

DEFAULT_WAIT = 30.0


def test_an_unanswered_train_gives_up_after_its_timeout_and_stays_pending(
    control_plane: ControlPlane, namespace: str
) -> None:
    # Given a policy and no operator to answer for it
    [policy] = [obj for obj in track(namespace) if obj["kind"] == "LearningPolicy"]
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(policy))
    # When a person asks for a run with a 1 s timeout
    started = time.monotonic()
    unanswered = kaizen(
        control_plane, "train", "lp", "coder", "-n", namespace, "--reason", "new data", "--timeout", "1"
    )
    waited = time.monotonic() - started
    # Then the command fails after its own timeout, not the default one, and says what happens next
    assert unanswered.exit_code == 1, unanswered.output
    assert waited < DEFAULT_WAIT, f"waited {waited:.1f}s"
    assert "has not answered Train" in unanswered.stderr
    assert "within 1s; it stays pending" in unanswered.stderr
    assert f"kubectl get learningpolicies coder -n {namespace}" in unanswered.stderr
    # and the request is still on the object, so a second one waits for it
    stored = json.loads(control_plane.kubectl("get", "lp", "coder", "-n", namespace, "-o", "json").stdout)
    assert ANNOTATION in stored["metadata"]["annotations"]
    again = kaizen(control_plane, "train", "lp", "coder", "-n", namespace, "--timeout", "1")
    assert again.exit_code == 1
    assert "is not answered yet; wait for it" in again.stderr


def test_a_negative_timeout_is_refused_before_anything_is_written(
    control_plane: ControlPlane, namespace: str
) -> None:
    [policy] = [obj for obj in track(namespace) if obj["kind"] == "LearningPolicy"]
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(policy))
    refused = kaizen(control_plane, "train", "lp", "coder", "-n", namespace, "--timeout", "-1")
    assert refused.exit_code == 2
    assert "--timeout" in refused.stderr
    stored = json.loads(control_plane.kubectl("get", "lp", "coder", "-n", namespace, "-o", "json").stdout)
    assert ANNOTATION not in (stored["metadata"].get("annotations") or {})
