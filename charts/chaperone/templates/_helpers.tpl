{{/* Names, labels and shared snippets. */}}

{{- define "chaperone.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Resource-name prefix: the release name when it already says chaperone, else RELEASE-chaperone. */}}
{{- define "chaperone.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "chaperone.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "chaperone.operator.fullname" -}}{{ include "chaperone.fullname" . }}-operator{{- end -}}
{{- define "chaperone.collector.fullname" -}}{{ include "chaperone.fullname" . }}-collector{{- end -}}
{{/* The operator's serving certificate Secret (self-managed by the leader, or written by cert-manager). */}}
{{- define "chaperone.tlsSecretName" -}}{{ include "chaperone.operator.fullname" . }}-tls{{- end -}}

{{- define "chaperone.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "chaperone.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: chaperone
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: include "chaperone.selectorLabels" (list . "operator") */}}
{{- define "chaperone.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "chaperone.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "chaperone.componentLabels" -}}
{{ include "chaperone.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* repository:tag, the tag defaulting to the chart's appVersion: include "chaperone.image" (list . .Values.operator.image) */}}
{{- define "chaperone.image" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{- define "chaperone.collector.url" -}}
{{- printf "http://%s.%s.svc:%d" (include "chaperone.collector.fullname" .) .Release.Namespace (int .Values.collector.service.port) -}}
{{- end -}}

{{- define "chaperone.usePostgres" -}}
{{- if .Values.collector.database.postgres.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* Pod-level hardening shared by the operator and the collector (the distroless nonroot uid). */}}
{{- define "chaperone.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "chaperone.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Values that cannot work together fail the render with what to change. */}}
{{- define "chaperone.validate" -}}
{{- if not (has .Values.certs.mode (list "self" "certManager")) -}}
{{- fail (printf "certs.mode must be \"self\" or \"certManager\", got %q" .Values.certs.mode) -}}
{{- end -}}
{{- if and (gt (int .Values.collector.replicaCount) 1) (not (include "chaperone.usePostgres" .)) -}}
{{- fail "collector.replicaCount > 1 needs PostgreSQL: SQLite has a single writer. Set collector.database.postgres.existingSecret (a Secret with a postgres:// URL) or keep replicaCount at 1" -}}
{{- end -}}
{{- if lt (int .Values.operator.replicaCount) 1 -}}
{{- fail "operator.replicaCount must be at least 1: the injection webhook fails closed, so without an operator no opted-in pod can start" -}}
{{- end -}}
{{- $oidc := .Values.collector.auth.oidc -}}
{{- if ne (empty $oidc.issuer) (empty $oidc.audience) -}}
{{- fail "collector.auth.oidc.issuer and collector.auth.oidc.audience go together: set both or neither" -}}
{{- end -}}
{{- if and $oidc.issuer (empty .Values.collector.auth.auditorGroups) -}}
{{- fail "collector.auth.oidc.issuer needs collector.auth.auditorGroups: which OIDC group may audit?" -}}
{{- end -}}
{{- if not .Values.webhook.configurationName -}}
{{- fail "webhook.configurationName must not be empty" -}}
{{- end -}}
{{- end -}}

{{/* The operator's notification configuration as JSON (parsed by the operator, which checks every field). */}}
{{- define "chaperone.notificationsConfig" -}}
{{- $n := .Values.notifications -}}
{{- $targets := list -}}
{{- range $n.targets -}}
{{- $t := dict "name" .name "type" .type "secretName" .secretName "allPolicies" (default false .allPolicies) -}}
{{- with .urlKey }}{{- $_ := set $t "urlKey" . -}}{{- end -}}
{{- with .signingKeyKey }}{{- $_ := set $t "signingKeyKey" . -}}{{- end -}}
{{- $targets = append $targets $t -}}
{{- end -}}
{{- $cfg := dict "targets" $targets "retry" $n.retry -}}
{{- with $n.collectorUrl }}{{- $_ := set $cfg "collectorUrl" . -}}{{- end -}}
{{- toJson $cfg -}}
{{- end -}}
