"""Thin clients of the services the operator talks to besides Kubernetes: the Ray Jobs API, the gateway's route API, an LLM judge."""
