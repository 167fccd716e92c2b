"""The Kaizen API (group kaizen.dev, version v1alpha1): one module per kind, pydantic models as the source of truth.

Each kind's module also declares its ``INFO`` (controllers.api.kindinfo.KindInfo): names, printer
columns, REST resource and at-rest rule, read by the CRD generator and the operator.
"""

from controllers.api import experiment, learningpolicy, shadowmodel, trainingrun

KINDS = (learningpolicy, trainingrun, shadowmodel, experiment)
