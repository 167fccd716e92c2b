"""Pure builders from a parent object to the typed children the operator applies: RayJob, InferenceService, the trainer job spec, deterministic names."""
