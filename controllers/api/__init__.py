"""The Kaizen API (group kaizen.dev, version v1alpha1): one module per kind, pydantic models as the source of truth."""

from controllers.api import experiment, learningpolicy, shadowmodel, trainingrun

KINDS = (learningpolicy, trainingrun, shadowmodel, experiment)
