{{/* Chart name, at most 63 characters (a DNS label). */}}
{{- define "sfu.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name: fullnameOverride, else "<release>-<chart>", or the release alone when it already is the chart name. */}}
{{- define "sfu.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if eq .Release.Name $name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sfu.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sfu.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sfu.labels" -}}
{{ include "sfu.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 }}
{{- end -}}

{{- define "sfu.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sfu.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding token-secret, api-keys, webhook-secret, redis-url, turn-shared-secret. */}}
{{- define "sfu.secretName" -}}
{{- default (include "sfu.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* HTTP or HTTPS for the probes: the pod serves TLS itself when it has a certificate. */}}
{{- define "sfu.httpScheme" -}}
{{- if .Values.tls.http.existingSecret -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
