{{/* What the operator does in a namespace it watches; nothing more (no wildcards). */}}
{{- define "kaizen.operatorRules" -}}
# Its own kinds; finalizers and Kopf's progress annotations are patches on the main resource.
- apiGroups: [kaizen.dev]
  resources: [learningpolicies, trainingruns, shadowmodels, experiments]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [kaizen.dev]
  resources: [learningpolicies/status, trainingruns/status, shadowmodels/status, experiments/status]
  verbs: [get, update, patch]
# An Event for every decision (Kopf posts core v1 Events; newer clients use events.k8s.io).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
# Training jobs: created once under a deterministic name, followed, deleted on cleanup.
- apiGroups: [ray.io]
  resources: [rayjobs]
  verbs: [get, list, watch, create, delete]
# Shadow models served by KServe.
- apiGroups: [serving.kserve.io]
  resources: [inferenceservices]
  verbs: [get, list, watch, create, update, patch, delete]
# The database and judge Secrets that LearningPolicies name.
- apiGroups: [""]
  resources: [secrets]
  {{- with .Values.rbac.secretNames }}
  resourceNames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  verbs: [get]
{{- end }}

{{/* Kopf reads CRDs to find the resources it serves. */}}
{{- define "kaizen.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
{{- end }}

{{- define "kaizen.operatorSubject" -}}
- kind: ServiceAccount
  name: {{ include "kaizen.operatorServiceAccount" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}
