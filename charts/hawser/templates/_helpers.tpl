{{- define "hawser.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hawser.fullname" -}}
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

{{- define "hawser.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hawser.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hawser.labels" -}}
{{ include "hawser.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "hawser.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hawser.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hawser.webhookService" -}}
{{- printf "%s-webhook" (include "hawser.fullname" .) }}
{{- end }}

{{- define "hawser.certSecret" -}}
{{- default (printf "%s-webhook-tls" (include "hawser.fullname" .)) .Values.certs.secretName }}
{{- end }}

{{- define "hawser.certificate" -}}
{{- printf "%s-webhook" (include "hawser.fullname" .) }}
{{- end }}

{{- define "hawser.validate" -}}
{{- if not (has .Values.certs.mode (list "directory" "self-managed" "cert-manager")) }}
{{- fail (printf "certs.mode must be directory, self-managed or cert-manager, not %q" .Values.certs.mode) }}
{{- end }}
{{- if not (kindIs "slice" .Values.controllers) }}
{{- fail "controllers must be a list, e.g. --set 'controllers={vpce,namespace}'" }}
{{- end }}
{{- range .Values.controllers }}
{{- if not (has . (list "vpce" "stack" "namespace")) }}
{{- fail (printf "controllers: unknown controller %q (known: vpce, stack, namespace)" .) }}
{{- end }}
{{- end }}
{{- if and .Values.controllers (not .Values.clusterName) }}
{{- fail "clusterName is required when controllers are enabled" }}
{{- end }}
{{- end }}

{{- define "hawser.hasController" -}}
{{- if has .name .root.Values.controllers }}true{{ end }}
{{- end }}

{{/*
The webhooks' clientConfig: the Service, and the caBundle from values or,
when none is given, the one already in the cluster (patched there by
hawser's self-managed mode or cert-manager's injector), so an upgrade does
not wipe it. `lookup` finds nothing under `helm template`.
*/}}
{{- define "hawser.clientConfig" -}}
{{- $root := .root }}
{{- $ca := $root.Values.certs.caBundle }}
{{- if not $ca }}
{{- $existing := lookup "admissionregistration.k8s.io/v1" .kind "" (include "hawser.fullname" $root) }}
{{- if $existing }}
{{- range $existing.webhooks }}
{{- if and (eq .name $.hook) .clientConfig.caBundle }}
{{- $ca = .clientConfig.caBundle }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
clientConfig:
  {{- with $ca }}
  caBundle: {{ . }}
  {{- end }}
  service:
    name: {{ include "hawser.webhookService" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ .path }}
    port: 443
{{- end }}

{{/* Same selector as `hawser manifests webhook` (src/manifests.rs). */}}
{{- define "hawser.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
    - kube-system
    {{- if ne .Release.Namespace "kube-system" }}
    - {{ .Release.Namespace }}
    {{- end }}
  - key: hawser.io/admission
    operator: NotIn
    values:
    - disabled
  {{- with .Values.webhook.matchNamespaceLabels }}
  matchLabels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "hawser.rules" -}}
rules:
- apiGroups:
  - apps
  apiVersions:
  - v1
  operations:
  - CREATE
  - UPDATE
  resources:
  - deployments
  scope: Namespaced
- apiGroups:
  - ""
  apiVersions:
  - v1
  operations:
  - CREATE
  - UPDATE
  resources:
  - services
  scope: Namespaced
- apiGroups:
  - ""
  apiVersions:
  - v1
  operations:
  - CREATE
  - UPDATE
  resources:
  - namespaces
  scope: Cluster
{{- end }}

{{- define "hawser.webhookAnnotations" -}}
{{- if eq .Values.certs.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "hawser.certificate" .) }}
{{- end }}
{{- end }}
