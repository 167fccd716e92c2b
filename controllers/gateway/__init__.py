"""The gateway: one HTTP service with two faces — the ingest API for agents, and (later) the router."""
