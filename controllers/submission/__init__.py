"""Submission adapters for the operator: run a TrainerConfig as a Ray job, two ways.

``spec`` turns the API's training settings into a TrainerConfig and a JobSpec (entrypoint, runtime
environment, deterministic submission id) — pure functions. ``rayjob`` builds a KubeRay RayJob manifest
from them (an ephemeral cluster per attempt); ``jobs_api`` submits the same JobSpec to an existing Ray
cluster through the Ray Jobs REST API. Only ``jobs_api`` does I/O.
"""
