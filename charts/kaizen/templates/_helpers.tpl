{{/* Names, labels and the pieces every workload shares. */}}

{{- define "kaizen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kaizen.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kaizen.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "kaizen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kaizen
{{- end }}

{{/* Selector labels of one component: pass (dict "root" $ "component" "operator"). */}}
{{- define "kaizen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kaizen.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kaizen.componentLabels" -}}
{{ include "kaizen.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kaizen.operatorName" -}}
{{- printf "%s-operator" (include "kaizen.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kaizen.gatewayName" -}}
{{- printf "%s-gateway" (include "kaizen.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kaizen.operatorServiceAccount" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "kaizen.operatorName" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kaizen.gatewayServiceAccount" -}}
{{- if .Values.gateway.serviceAccount.create }}
{{- default (include "kaizen.gatewayName" .) .Values.gateway.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.gateway.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: digest wins over tag; the tag defaults to appVersion. */}}
{{- define "kaizen.image" -}}
{{- $repository := .Values.image.repository }}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{- define "kaizen.operatorImage" -}}
{{- if or .Values.operator.image.repository .Values.operator.image.tag }}
{{- $repository := default .Values.image.repository .Values.operator.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.operator.image.tag }}
{{- printf "%s:%s" $repository $tag }}
{{- else }}
{{- include "kaizen.image" . }}
{{- end }}
{{- end }}

{{/* Namespaced mode: a list of namespaces to watch; cluster mode: an empty list. */}}
{{- define "kaizen.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces }}
{{- toJson (uniq .Values.operator.watchNamespaces) }}
{{- else if .Values.rbac.namespaced }}
{{- toJson (list .Release.Namespace) }}
{{- else }}
{{- toJson list }}
{{- end }}
{{- end }}

{{- define "kaizen.tokenSecretName" -}}
{{- default (printf "%s-token" (include "kaizen.fullname" .)) .Values.tokenSecret.existingSecret }}
{{- end }}

{{- define "kaizen.embeddedDatabaseURL" -}}
sqlite:////var/lib/kaizen/kaizen.db
{{- end }}

{{- define "kaizen.gatewayURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "kaizen.gatewayName" .) .Release.Namespace (int .Values.gateway.service.port) }}
{{- end }}

{{/* KAIZEN_DATABASE_URL, as every Kaizen container reads it. */}}
{{- define "kaizen.storeEnv" -}}
- name: KAIZEN_DATABASE_URL
{{- if .Values.database.embedded }}
  value: {{ include "kaizen.embeddedDatabaseURL" . | quote }}
{{- else }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.secretKey }}
{{- end }}
{{- end }}

{{- define "kaizen.revokedTokensName" -}}
{{- printf "%s-revoked-tokens" (include "kaizen.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kaizen.tokenKeysDir" -}}/var/run/secrets/kaizen/token-keys{{- end }}
{{- define "kaizen.revocationsDir" -}}/etc/kaizen/revocations{{- end }}
{{- define "kaizen.gatewayTokenDir" -}}/var/run/secrets/kaizen/gateway{{- end }}

{{/* The gateway's identity settings: its keyring (one file per key id), revocations, ServiceAccount tokens. */}}
{{- define "kaizen.gatewayAuthEnv" -}}
- name: KAIZEN_TOKEN_KEYS_DIR
  value: {{ include "kaizen.tokenKeysDir" . }}
{{- with .Values.tokenSecret.signingKeyId }}
- name: KAIZEN_TOKEN_SIGNING_KEY
  value: {{ . | quote }}
{{- end }}
- name: KAIZEN_TOKEN_REVOKED_FILE
  value: {{ include "kaizen.revocationsDir" . }}/revoked
- name: KAIZEN_KUBERNETES_AUTH
  value: {{ .Values.gateway.kubernetesAuth.enabled | toString | quote }}
{{- if .Values.gateway.kubernetesAuth.enabled }}
- name: KAIZEN_TOKEN_AUDIENCE
  value: {{ .Values.gateway.kubernetesAuth.audience | quote }}
{{- end }}
{{- with .Values.gateway.routeAllowedHosts }}
- name: KAIZEN_ROUTE_ALLOWED_HOSTS
  value: {{ join "," . | quote }}
{{- end }}
{{- with .Values.gateway.widgetOrigins }}
- name: KAIZEN_WIDGET_ORIGINS
  value: {{ join "," . | quote }}
{{- end }}
- name: KAIZEN_MAX_BODY_BYTES
  value: {{ .Values.gateway.maxBodyBytes | int64 | toString | quote }}
- name: KAIZEN_PROXY_MAX_BODY_BYTES
  value: {{ .Values.gateway.proxyMaxBodyBytes | int64 | toString | quote }}
{{- end }}

{{/* The gateway's volumes: the token Secret as a directory, the revocation list. */}}
{{- define "kaizen.gatewayVolumes" -}}
- name: token-keys
  secret:
    secretName: {{ include "kaizen.tokenSecretName" . }}
    defaultMode: 0440
- name: revoked-tokens
  configMap:
    name: {{ include "kaizen.revokedTokensName" . }}
{{- end }}

{{- define "kaizen.gatewayMounts" -}}
- name: token-keys
  mountPath: {{ include "kaizen.tokenKeysDir" . }}
  readOnly: true
{{- /* A directory mount, not subPath: the kubelet then refreshes the file when the ConfigMap changes. */}}
- name: revoked-tokens
  mountPath: {{ include "kaizen.revocationsDir" . }}
  readOnly: true
{{- end }}

{{/* The operator calls the gateway with a ServiceAccount token minted for the gateway's audience alone,
rotated by the kubelet; it re-reads the file on every call. */}}
{{- define "kaizen.gatewayTokenVolume" -}}
- name: gateway-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          audience: {{ .Values.gateway.kubernetesAuth.audience | quote }}
          expirationSeconds: 3600
          path: token
{{- end }}

{{/* Python writes nothing outside /tmp (the root filesystem is read-only). */}}
{{- define "kaizen.pythonEnv" -}}
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
- name: PYTHONUNBUFFERED
  value: "1"
- name: HOME
  value: /tmp
{{- end }}

{{- define "kaizen.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end }}

{{- define "kaizen.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* /var/lib/kaizen: dataset snapshots (and the SQLite file in embedded mode). */}}
{{- define "kaizen.dataVolume" -}}
- name: data
{{- if and .Values.database.embedded .Values.database.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "kaizen.fullname" . }}-data
{{- else if and (not .Values.database.embedded) .Values.operator.dataVolume }}
  {{- toYaml .Values.operator.dataVolume | nindent 2 }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}

{{- define "kaizen.dataMount" -}}
- name: data
  mountPath: /var/lib/kaizen
{{- end }}

{{/* The gateway container: its own Deployment, or beside the operator in embedded mode. */}}
{{- define "kaizen.gatewayContainer" -}}
- name: gateway
  image: {{ include "kaizen.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  command: ["kaizen", "gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
  ports:
    - name: http
      containerPort: 8000
      protocol: TCP
  env:
    {{- include "kaizen.storeEnv" . | nindent 4 }}
    {{- include "kaizen.gatewayAuthEnv" . | nindent 4 }}
    {{- include "kaizen.pythonEnv" . | nindent 4 }}
    {{- with .Values.gateway.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: http
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 2
  startupProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 2
    failureThreshold: 60
  resources:
    {{- toYaml .Values.gateway.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    {{- include "kaizen.tmpMount" . | nindent 4 }}
    {{- include "kaizen.gatewayMounts" . | nindent 4 }}
    {{- if .Values.database.embedded }}
    {{- include "kaizen.dataMount" . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* Cross-field rules that a JSON schema cannot state with a clear message. */}}
{{- define "kaizen.validate" -}}
{{- if and (not .Values.database.embedded) (not .Values.database.existingSecret) }}
{{- fail "\n\ndatabase.existingSecret is required: name an existing Secret in the release namespace whose key database.secretKey (default \"url\") holds the store's URL, e.g.\n  kubectl create secret generic kaizen-db --from-literal=url=postgresql+psycopg://kaizen:PASSWORD@HOST:5432/kaizen\n  helm install ... --set database.existingSecret=kaizen-db\nor set database.embedded=true for the SQLite demo mode." }}
{{- end }}
{{- if and .Values.database.embedded (gt (int .Values.operator.replicas) 1) }}
{{- fail "\n\noperator.replicas must be 1 when database.embedded=true: the SQLite file cannot be shared between pods. Use PostgreSQL (database.existingSecret) for more replicas." }}
{{- end }}
{{- if and .Values.gateway.ingress.enabled (not .Values.gateway.ingress.host) }}
{{- fail "\n\ngateway.ingress.host is required when gateway.ingress.enabled=true: the host name agents reach the gateway at, e.g. --set gateway.ingress.host=kaizen.example.com (and gateway.ingress.tls.secretName for HTTPS)." }}
{{- end }}
{{- if and .Values.gateway.httpRoute.enabled (not .Values.gateway.httpRoute.parentRefs) }}
{{- fail "\n\ngateway.httpRoute.parentRefs is required when gateway.httpRoute.enabled=true: the Gateway (and its HTTPS listener) to attach to, e.g. [{name: public, namespace: gateway-system, sectionName: https}]." }}
{{- end }}
{{- end }}

{{/* The operator's default object storage (storage.*): where it writes dataset snapshots for policies
whose training.storage names no Secret. The variable names are the ones the fsspec back ends read. */}}
{{- define "kaizen.storageDir" -}}/var/run/secrets/kaizen/storage{{- end }}

{{- define "kaizen.storageEnv" -}}
{{- with .Values.storage.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.storage.region }}
- name: AWS_DEFAULT_REGION
  value: {{ . | quote }}
{{- end }}
{{- if and .Values.storage.existingSecret .Values.storage.gcsKeyFile }}
- name: GOOGLE_APPLICATION_CREDENTIALS
  value: {{ include "kaizen.storageDir" . }}/credentials.json
{{- end }}
{{- end }}

{{- define "kaizen.storageVolume" -}}
{{- with .Values.storage.existingSecret }}
- name: storage-credentials
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}

{{- define "kaizen.storageMount" -}}
{{- if .Values.storage.existingSecret }}
- name: storage-credentials
  mountPath: {{ include "kaizen.storageDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The trainer image reference NOTES.txt prints (never injected: policies name it). */}}
{{- define "kaizen.trainerImage" -}}
{{- printf "%s:%s" .Values.trainerImage.repository (default (printf "%s-gpu" .Chart.AppVersion) .Values.trainerImage.tag) }}
{{- end }}
