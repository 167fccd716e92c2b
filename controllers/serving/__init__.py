"""Serving: the KServe InferenceService manifests that put a ShadowModel's adapter behind an endpoint."""
