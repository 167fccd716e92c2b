"""Kubernetes identities for the gateway on the local control plane, as the chart sets them up in a cluster.

``install_gateway_roles`` creates one ClusterRole per gateway role from the role table itself
(``controllers.decisions.access.GRANTS``): ``kaizen-gateway-agent``, ``-reviewer``, ``-operator``.
``service_account_token`` makes a ServiceAccount (and binds it to a role if asked) and mints a token
for it with the TokenRequest API, bound to the gateway's audience, the same kind of token the
kubelet projects into the operator's pod. The gateway then checks it with a real TokenReview and
SubjectAccessReview against the real API server.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import httpx

from controllers.api.identity import Role
from controllers.decisions.access import API_GROUP, GRANTS
from controllers.gateway.identity import AUDIENCE
from devstack.controlplane import ControlPlane

OPERATOR_NAMESPACE = "kaizen-system"
OPERATOR_ACCOUNT = "kaizen-operator"


def role_name(role: Role) -> str:
    return f"kaizen-gateway-{role.value}"


def cluster_role(role: Role) -> dict[str, Any]:
    """The ClusterRole that grants a ServiceAccount what ``role`` grants a Kaizen token."""
    verbs: dict[str, set[str]] = defaultdict(set)
    for action in GRANTS[role]:
        verbs[action.resource].add(action.verb)
    rules = [
        {"apiGroups": [API_GROUP], "resources": [resource], "verbs": sorted(found)}
        for resource, found in sorted(verbs.items())
    ]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": role_name(role)},
        "rules": rules,
    }


def install_gateway_roles(plane: ControlPlane) -> None:
    documents = [cluster_role(role) for role in (Role.AGENT, Role.REVIEWER, Role.OPERATOR, Role.FEEDBACK)]
    plane.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents})
    )


def service_account_token(
    plane: ControlPlane,
    namespace: str,
    name: str,
    role: Role | None = None,
    seconds: int = 24 * 3600,
    audience: str = AUDIENCE,
) -> str:
    """A token for ServiceAccount ``namespace/name`` (created if missing), bound in ``namespace`` to
    ``role``'s ClusterRole when one is given."""
    items: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
    ]
    if role is not None:
        items.append(_binding(namespace, name, role))
    plane.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"audiences": [audience], "expirationSeconds": seconds},
    }
    response = httpx.post(
        f"{plane.server}/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        json=request,
        headers=plane.auth_headers(),
        verify=False,
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["status"]["token"])


def _binding(namespace: str, name: str, role: Role) -> dict[str, Any]:
    """Cluster-wide for the operator (it writes routes in every namespace), else in the account's namespace."""
    kind = "ClusterRoleBinding" if role is Role.OPERATOR else "RoleBinding"
    metadata: dict[str, str] = {"name": f"{name}-{role_name(role)}"}
    if kind == "RoleBinding":
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name(role)},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
