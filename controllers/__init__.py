"""Kaizen's importable core: API types, decisions, builders, adapters, store, gateway and Kopf handlers."""
