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
# Shared bases: the headless Service that lists every replica's adapter loader (created, its selector
# put back if changed), and its EndpointSlices: the replicas the operator calls to load adapters.
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, patch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list]
# The database, judge and storage Secrets that LearningPolicies name (training.storage.secretRef: the
# operator writes each run's dataset snapshot to the bucket with the policy's own credentials). get only:
# it reads the one Secret a policy names; the trainer's pods get it from the kubelet (envFrom), not from it.
- apiGroups: [""]
  resources: [secrets]
  {{- with .Values.rbac.secretNames }}
  resourceNames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  verbs: [get]
# Shared bases: the Secret <base>-kaizen-loader with the token its adapter loaders accept, created once
# beside the base (create cannot be limited to names) and read on each load (its name must be in
# rbac.secretNames when that list is set).
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
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

{{/* Kaizen's own verbs at the gateway (API group gateway.kaizen.dev; controllers/decisions/access.py),
one ClusterRole per role: pass (dict "root" $ "role" "agent"). */}}
{{- define "kaizen.gatewayRoleRules" -}}
{{- if eq .role "agent" -}}
# Write its agents' runs, pairs, annotations and feedback; call the namespace's routes.
- apiGroups: [gateway.kaizen.dev]
  resources: [experience, feedback]
  verbs: [create]
- apiGroups: [gateway.kaizen.dev]
  resources: [routes]
  verbs: [use]
{{- else if eq .role "reviewer" -}}
# Read the review queue, post reviews and corrections; read experiments' series (kaizen experiment report).
- apiGroups: [gateway.kaizen.dev]
  resources: [reviews]
  verbs: [list, create]
- apiGroups: [gateway.kaizen.dev]
  resources: [feedback]
  verbs: [create]
- apiGroups: [gateway.kaizen.dev]
  resources: [experiments]
  verbs: [get]
{{- else if eq .role "feedback" -}}
# Post feedback on its agents' answers, nothing else: the role of the embeddable widget's token.
- apiGroups: [gateway.kaizen.dev]
  resources: [feedback]
  verbs: [create]
{{- else if eq .role "operator" -}}
# Read and write routes (where traffic goes) and the policies' reward settings; read experiments' series.
- apiGroups: [gateway.kaizen.dev]
  resources: [routes]
  verbs: [get, update]
- apiGroups: [gateway.kaizen.dev]
  resources: [policies]
  verbs: [update]
- apiGroups: [gateway.kaizen.dev]
  resources: [experiments]
  verbs: [get]
{{- end }}
{{- end }}

{{- define "kaizen.gatewayRoleName" -}}
{{- printf "%s-%s" (include "kaizen.gatewayName" .root) .role | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Who runs the gateway: its own ServiceAccount, or the operator's in embedded mode (one pod). */}}
{{- define "kaizen.gatewaySubject" -}}
- kind: ServiceAccount
  name: {{ ternary (include "kaizen.operatorServiceAccount" .) (include "kaizen.gatewayServiceAccount" .) .Values.database.embedded }}
  namespace: {{ .Release.Namespace }}
{{- end }}
