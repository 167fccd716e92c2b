"""The operator process: Kopf glue (the only module importing kopf), the resync loops and the leader loop that wire the reconcilers together."""
