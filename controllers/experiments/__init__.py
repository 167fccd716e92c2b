"""Experiment decisions: sequential statistics, guardrails, bandit and rollout planning (pure, no I/O)."""
