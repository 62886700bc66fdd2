{{/* Names and labels. */}}
{{- define "dora.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dora.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "dora.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "dora.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: fullname-component (the embedded pod is just fullname). */}}
{{- define "dora.componentName" -}}
{{- $root := index . 0 -}}{{- $component := index . 1 -}}
{{- if eq $component "embedded" -}}{{ include "dora.fullname" $root }}{{- else -}}
{{- printf "%s-%s" (include "dora.fullname" $root | trunc 50 | trimSuffix "-") $component -}}
{{- end -}}
{{- end -}}

{{- define "dora.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "dora.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "dora.labels" -}}
{{- $root := index . 0 -}}
{{ include "dora.selectorLabels" . }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "dora.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "dora.distributed" -}}
{{- if eq .Values.mode "distributed" }}true{{ end -}}
{{- end -}}

{{- define "dora.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-credentials" (include "dora.fullname" .)) -}}
{{- end -}}

{{- define "dora.postgresqlName" -}}
{{- printf "%s-postgresql" (include "dora.fullname" . | trunc 52 | trimSuffix "-") -}}
{{- end -}}

{{/* The bundled PostgreSQL's password: given, else the one already stored, else new. */}}
{{- define "dora.postgresqlPassword" -}}
{{- if .Values.postgresql.password -}}{{ .Values.postgresql.password }}{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "dora.postgresqlName" .) -}}
{{- if and $existing (index $existing.data "POSTGRES_PASSWORD") -}}
{{- index $existing.data "POSTGRES_PASSWORD" | b64dec -}}
{{- else -}}{{- randAlphaNum 32 -}}{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pod and container hardening shared by every workload. */}}
{{- define "dora.podSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "dora.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: [ALL]
{{- end -}}

{{/* Environment of every dora-ce container: config file, credentials, database. */}}
{{- define "dora.env" -}}
{{- $root := index . 0 -}}{{- $migrate := index . 1 -}}
env:
  - name: DORA_CONFIG
    value: /etc/dora-cloudevents/config.yaml
  - name: DORA_MIGRATE
    value: {{ $migrate | quote }}
{{- if eq $root.Values.mode "embedded" }}
  - name: DORA_DATABASE_URL
    value: sqlite:////data/dora.db
{{- else if $root.Values.database.existingSecret }}
  - name: DORA_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ $root.Values.database.existingSecret }}
        key: {{ $root.Values.database.existingSecretKey }}
{{- else if $root.Values.postgresql.enabled }}
  - name: DORA_DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ include "dora.postgresqlName" $root }}
        key: DORA_DATABASE_URL
{{- end }}
envFrom:
  - secretRef:
      name: {{ include "dora.secretName" $root }}
{{- end -}}

{{- define "dora.configVolume" -}}
- name: config
  configMap:
    name: {{ include "dora.fullname" . }}-config
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "dora.configMount" -}}
- name: config
  mountPath: /etc/dora-cloudevents
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Probes of a serving container: liveness on /healthz, readiness on /readyz. A replica
     that waits for the migration Job starts its HTTP server late: the startup probe waits. */}}
{{- define "dora.probes" -}}
startupProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 5
  failureThreshold: 120
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
{{- end -}}

{{- define "dora.podExtras" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Annotations that roll pods when the config or the credentials change. */}}
{{- define "dora.podAnnotations" -}}
checksum/config: {{ toYaml .Values.config | sha256sum }}
checksum/secrets: {{ toYaml .Values.secrets | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
