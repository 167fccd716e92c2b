"""Reconcilers, one module per kind: read what is, ask controllers.decisions what should be, apply it through controllers.builders and the clients."""
