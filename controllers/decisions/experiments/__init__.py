"""The experiment engine: sequential tests, bandits, guardrails, drift watch and the rollout planner (pure)."""
