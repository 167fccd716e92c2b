"""Prometheus metrics of the operator: what a dashboard and an alert on the loop's health need."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.reconciles = Counter(
            "kaizen_operator_reconciles", "Reconciles by kind", ["kind"], registry=self.registry
        )
        self.errors = Counter(
            "kaizen_operator_errors", "Reconciles that raised, by kind", ["kind"], registry=self.registry
        )
        self.decisions = Counter(
            "kaizen_operator_decisions",
            "Final experiment decisions",
            ["experiment", "decision"],
            registry=self.registry,
        )
        self.drift_rollbacks = Counter(
            "kaizen_operator_drift_rollbacks",
            "Promoted champions rolled back because they regressed against their own post-promotion baseline",
            ["experiment"],
            registry=self.registry,
        )
        self.training_runs = Counter(
            "kaizen_operator_training_runs",
            "Finished training runs by result",
            ["result"],
            registry=self.registry,
        )
        self.submissions = Counter(
            "kaizen_operator_job_submissions", "Ray job submissions by path", ["path"], registry=self.registry
        )
        self.rollback_seconds = Histogram(
            "kaizen_operator_rollback_seconds",
            "From the reconcile that decided RollBack to the router serving the champion alone",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=self.registry,
        )

    def serve(self, port: int, host: str = "0.0.0.0") -> None:
        start_http_server(port, addr=host, registry=self.registry)
