"""Schemathesis over the gateway's own ``/openapi.json``: generated and mutated requests, zero 5xx.

Every operation (the ingest, review, policy and route APIs, and the proxy paths the document now
describes) is called with schema-valid and schema-violating data, once with an admin token of the
seeded namespace and once with an agent token, against a real gateway process on each store.
``KAIZEN_FUZZ_EXAMPLES`` bounds the examples per operation: CI runs a small number,
``make fuzz`` many more. Only server errors fail the test here: which 4xx each case deserves is the
matrix's business (test_access_matrix.py).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.security.gateway_world import ADMIN, World

EXAMPLES = int(os.environ.get("KAIZEN_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def gateway_schema(security_world: World) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{security_world.gateway.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("gateway_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_the_gateway_fail(case: schemathesis.Case, security_world: World) -> None:
    for headers in (ADMIN, security_world.callers["agent"]):
        case.call_and_validate(headers=dict(headers), checks=[not_a_server_error], timeout=30)
