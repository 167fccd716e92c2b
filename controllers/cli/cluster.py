"""The one Kubernetes read of the command line: an Experiment, as the API server has it, or why not.

``kaizen experiment report`` reads the Experiment's spec and status from the cluster when one is
reachable and falls back to the store and its flags when not, so this never raises for a missing,
refusing or silent cluster: it returns None and a sentence for a note. It is small and synchronous
(the ``kubernetes`` package, credentials as the operator loads them: the pod's service account, else
the kubeconfig) and makes one try with a short timeout, so a laptop without a cluster does not wait.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controllers.api.experiment import Experiment

CLUSTER_TIMEOUT = 4.0  # seconds to connect, and again to read: no cluster must not mean a hung command


def read_experiment(
    namespace: str, name: str, timeout: float = CLUSTER_TIMEOUT
) -> tuple[Experiment | None, str]:
    """The Experiment as the API server has it, or None and why not (a sentence for a note)."""
    from controllers.api import kinds
    from controllers.api.experiment import Experiment

    try:
        from kubernetes.client import ApiClient, CustomObjectsApi
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, InsecureRequestWarning

        from controllers.runtime.kube import load_configuration
    except ImportError as missing:
        return None, f"the kubernetes package is not installed ({missing.name})"
    try:
        configuration = load_configuration()
    except Exception as error:  # no kubeconfig, a broken one, a failing credential plugin: all say why
        return None, f"no cluster configured ({_first_line(error)})"
    configuration.retries = False  # one try, within the timeout
    where, resource = configuration.host, kinds.EXPERIMENTS
    try:
        with ApiClient(configuration) as api, warnings.catch_warnings():
            # a kubeconfig that skips TLS verification chose to; kubectl does not warn about it either
            warnings.simplefilter("ignore", InsecureRequestWarning)
            body = CustomObjectsApi(api).get_namespaced_custom_object(
                resource.group,
                resource.version,
                namespace,
                resource.plural,
                name,
                _request_timeout=(timeout, timeout),
            )
    except ApiException as error:
        if error.status == 404:
            return None, f"the cluster at {where} has no Experiment {namespace}/{name}"
        if error.status in (401, 403):
            return None, (
                f"the cluster at {where} refused ({error.status} {error.reason}); check"
                f" `kubectl auth can-i get experiments.kaizen.dev -n {namespace}`"
            )
        return None, f"the cluster at {where} answered {error.status} {error.reason}"
    except (HTTPError, OSError) as error:
        return None, f"the cluster at {where} is not reachable ({type(error).__name__})"
    try:
        return Experiment.model_validate(body), ""
    except ValueError as error:
        return None, f"the Experiment from {where} does not parse: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
