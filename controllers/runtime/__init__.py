"""The controller runtime: one Kubernetes client, the watch-fed index, pacing, leader election, health and metrics. Knows no Kaizen kind."""
