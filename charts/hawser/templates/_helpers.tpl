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

{{/*
Checks that values.schema.json cannot express. The schema (types, enums,
unknown keys) is checked by Helm before any template runs.
*/}}
{{- define "hawser.validate" -}}
{{- if and .Values.controllers (not .Values.clusterName) }}
{{- fail "clusterName is required when controllers are enabled" }}
{{- end }}
{{- range $key, $value := .Values.defaultTags }}
{{- $lower := lower $key }}
{{- if or (hasPrefix "hawser.io/" $lower) (hasPrefix "aws:" $lower) }}
{{- fail (printf "defaultTags: the key %q is refused: keys starting with hawser.io/ (hawser's own tags) or aws: (reserved by AWS) are not allowed; use any other key, e.g. team" $key) }}
{{- end }}
{{- if or (contains "=" $key) (contains "," $key) }}
{{- fail (printf "defaultTags: the key %q is refused: a key may not contain \"=\" or \",\"" $key) }}
{{- end }}
{{- if contains "," (toString $value) }}
{{- fail (printf "defaultTags: the value of %q is refused: AWS tag values cannot contain \",\"" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The container image: repository@digest, else repository:tag. */}}
{{- define "hawser.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "hawser.hasController" -}}
{{- if has .name .root.Values.controllers }}true{{ end }}
{{- end }}

{{/*
The webhook entry `hook` of the configuration `kind` as it is in the
cluster, as JSON ("{}" when absent). `lookup` finds nothing under
`helm template`.
*/}}
{{- define "hawser.liveEntry" -}}
{{- $entry := dict }}
{{- $existing := lookup "admissionregistration.k8s.io/v1" .kind "" (include "hawser.fullname" .root) }}
{{- range ($existing.webhooks | default list) }}
{{- if eq .name $.hook }}
{{- $entry = . }}
{{- end }}
{{- end }}
{{- toJson $entry }}
{{- end }}

{{/*
The webhooks' clientConfig: webhook.url or the Service, and the caBundle
from values or, when none is given, the one already in the cluster
(patched there by hawser's self-managed mode or cert-manager's injector),
so an upgrade does not wipe it.
*/}}
{{- define "hawser.clientConfig" -}}
{{- $root := .root }}
{{- $ca := $root.Values.certs.caBundle }}
{{- if not $ca }}
{{- $ca = dig "clientConfig" "caBundle" "" (include "hawser.liveEntry" . | fromJson) }}
{{- end }}
clientConfig:
  {{- with $ca }}
  caBundle: {{ . }}
  {{- end }}
  {{- if $root.Values.webhook.url }}
  url: {{ printf "%s%s" (trimSuffix "/" $root.Values.webhook.url) .path | quote }}
  {{- else }}
  service:
    name: {{ include "hawser.webhookService" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- end }}
{{- end }}

{{/*
The namespaceSelector of the mutate and validate webhooks, as JSON: the
same as `hawser manifests webhook` (src/manifests.rs) builds, kube-system,
the release namespace and hawser.io/admission=disabled always excluded,
plus webhook.namespaceSelector's matchLabels and matchExpressions.
*/}}
{{- define "hawser.namespaceSelector" -}}
{{- $excluded := list "kube-system" }}
{{- if ne .Release.Namespace "kube-system" }}
{{- $excluded = append $excluded .Release.Namespace }}
{{- end }}
{{- $expressions := list
  (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" $excluded)
  (dict "key" "hawser.io/admission" "operator" "NotIn" "values" (list "disabled")) }}
{{- $extra := .Values.webhook.namespaceSelector | default dict }}
{{- $selector := dict "matchExpressions" (concat $expressions ($extra.matchExpressions | default list)) }}
{{- with $extra.matchLabels }}
{{- $_ := set $selector "matchLabels" . }}
{{- end }}
{{- toJson $selector }}
{{- end }}

{{/* The annotation hawser copies into its entries once it serves. */}}
{{- define "hawser.selectorAnnotation" -}}
hawser.io/namespace-selector
{{- end }}

{{/*
`namespaceSelector:` of the mutate or validate entry. directory and
cert-manager: the real selector. self-managed: one that matches no
namespace, which hawser replaces with the annotation's selector once it
serves; on upgrade an entry hawser already turned on keeps its live
selector (hawser applies a changed annotation at its next reload), so an
upgrade never switches admission off.
*/}}
{{- define "hawser.entrySelector" -}}
{{- $root := .root }}
{{- $selector := include "hawser.namespaceSelector" $root | fromJson }}
{{- if eq $root.Values.certs.mode "self-managed" }}
{{- $selector = dict "matchExpressions" (list
  (dict "key" "hawser.io/inactive" "operator" "Exists")
  (dict "key" "hawser.io/inactive" "operator" "DoesNotExist")) }}
{{- $existing := lookup "admissionregistration.k8s.io/v1" .kind "" (include "hawser.fullname" $root) }}
{{- $live := include "hawser.liveEntry" . | fromJson }}
{{- if and (dig "metadata" "annotations" (include "hawser.selectorAnnotation" $root) "" $existing) $live.namespaceSelector }}
{{- $selector = $live.namespaceSelector }}
{{- end }}
{{- end }}
namespaceSelector:
  {{- toYaml $selector | nindent 2 }}
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
{{- else if eq .Values.certs.mode "self-managed" }}
annotations:
  {{ include "hawser.selectorAnnotation" . }}: {{ include "hawser.namespaceSelector" . | quote }}
{{- end }}
{{- end }}
