{{/*
The chart's name, and the release's full name: object names start with it.
*/}}
{{- define "tenant-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tenant-operator.fullname" -}}
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

{{- define "tenant-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object; the selector labels pick this release's manager pods
only, so that shards (several releases) never select each other's.
*/}}
{{- define "tenant-operator.labels" -}}
helm.sh/chart: {{ include "tenant-operator.chart" . }}
{{ include "tenant-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller-manager
app.kubernetes.io/part-of: millimetric
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tenant-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tenant-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tenant-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tenant-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The two images, both tagged with the chart's appVersion unless told: the
operator's (the manager, and every tenant's retention CronJob) and the
ingest service's (every tenant's ingest Deployment).
*/}}
{{- define "tenant-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "tenant-operator.ingestImage" -}}
{{- printf "%s:%s" .Values.ingestImage.repository (.Values.ingestImage.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The leader election Lease's name: the value, else the operator's own
default for an unsharded release (the Lease config/default uses, so moving
from it to the chart keeps a single leader), else one of this release's.
*/}}
{{- define "tenant-operator.leaderElectionID" -}}
{{- if .Values.leaderElection.id }}
{{- .Values.leaderElection.id }}
{{- else if .Values.tenants.selector }}
{{- printf "%s.shard.analytics.millimetric.ai" (include "tenant-operator.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The manager's arguments, one a line, each a flag of cmd/main.go. A flag is
left out when its value is empty, so the operator's own default applies.
*/}}
{{- define "tenant-operator.args" -}}
{{- $v := .Values }}
{{- if $v.leaderElection.enabled }}
- --leader-elect
{{- end }}
{{- with include "tenant-operator.leaderElectionID" . }}
- {{ printf "--leader-election-id=%s" . | quote }}
{{- end }}
- --health-probe-bind-address=:8081
{{- if $v.metrics.enabled }}
- --metrics-bind-address=:8443
- --metrics-cert-dir=/etc/tenant-operator/metrics-tls
{{- else }}
- --metrics-bind-address=0
{{- end }}
- {{ printf "--ingest-image=%s" (include "tenant-operator.ingestImage" .) | quote }}
- {{ printf "--operator-image=%s" (include "tenant-operator.image" .) | quote }}
- {{ printf "--allowed-secret-namespace=%s" ($v.storage.allowedSecretNamespace | default .Release.Namespace) | quote }}
{{- if $v.storage.allowInsecure }}
- --allow-insecure-storage
{{- end }}
- {{ printf "--max-concurrent-reconciles=%d" (int $v.tenants.maxConcurrentReconciles) | quote }}
{{- /* Absent from a release upgraded with --reuse-values from a chart
without it: the manager's own default then applies, not 0 (no limit). */}}
{{- if hasKey $v.tenants "maxConcurrentRollouts" }}
- {{ printf "--max-concurrent-tenant-rollouts=%d" (int $v.tenants.maxConcurrentRollouts) | quote }}
{{- end }}
{{- with $v.tenants.imagePullSecrets }}
- {{ printf "--tenant-image-pull-secret=%s" (join "," .) | quote }}
{{- end }}
{{- with $v.tenants.selector }}
- {{ printf "--tenant-selector=%s" . | quote }}
{{- end }}
{{- with $v.tenants.namespacePrefix }}
- {{ printf "--tenant-namespace-prefix=%s" . | quote }}
{{- end }}
{{- with $v.tenants.ingestTrustedProxies }}
- {{ printf "--ingest-trusted-proxies=%s" (join "," .) | quote }}
{{- end }}
{{- if $v.tenants.ingestCFConnectingIP }}
- --ingest-cf-connecting-ip
{{- end }}
{{- with $v.tenants.ingestGateway }}
- {{ printf "--ingest-gateway=%s" . | quote }}
{{- end }}
{{- with $v.tenants.ingestDomain }}
- {{ printf "--ingest-domain=%s" . | quote }}
{{- end }}
{{- with $v.tenants.network.gatewayNamespaceSelector }}
- {{ printf "--ingest-gateway-namespace-selector=%s" . | quote }}
{{- end }}
{{- with dig "geoip" "image" "" $v.tenants }}
- {{ printf "--ingest-geoip-image=%s" . | quote }}
- {{ printf "--ingest-geoip-file=%s" $v.tenants.geoip.file | quote }}
- {{ printf "--ingest-geoip-mount=%s" $v.tenants.geoip.mount | quote }}
{{- end }}
{{- with $v.tenants.network.edgeNamespaceSelector }}
- {{ printf "--edge-namespace-selector=%s" . | quote }}
{{- end }}
{{- with $v.tenants.network.monitoringNamespaceSelector }}
- {{ printf "--ingest-monitoring-namespace-selector=%s" . | quote }}
{{- end }}
{{- with $v.tenants.network.dnsNamespaceSelector }}
- {{ printf "--dns-namespace-selector=%s" . | quote }}
{{- end }}
{{- with $v.tenants.network.dnsPodSelector }}
- {{ printf "--dns-pod-selector=%s" . | quote }}
{{- end }}
- {{ printf "--zap-log-level=%v" $v.logging.level | quote }}
- {{ printf "--zap-encoder=%s" $v.logging.encoder | quote }}
{{- range $v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
The rules of a Role or ClusterRole copied from config/rbac by `make
chart-sync` into files/rbac: config/rbac stays their one source of truth.
Call with (dict "root" $ "file" "files/rbac/role.yaml").
*/}}
{{- define "tenant-operator.rulesFrom" -}}
{{- $content := .root.Files.Get .file }}
{{- if not $content }}
{{- fail (printf "%s is missing: run `make chart-sync`" .file) }}
{{- end }}
{{- $role := $content | fromYaml }}
{{- if or (hasKey $role "Error") (not $role.rules) }}
{{- fail (printf "%s has no rules (%v): run `make chart-sync`" .file ($role.Error | default "empty")) }}
{{- end }}
{{- toYaml $role.rules }}
{{- end }}

{{/*
An object copied from config/ by `make chart-sync` into files/, as YAML.
Call with (dict "root" $ "file" "files/admission/policy.yaml").
*/}}
{{- define "tenant-operator.fromFile" -}}
{{- $content := .root.Files.Get .file }}
{{- if not $content }}
{{- fail (printf "%s is missing: run `make chart-sync`" .file) }}
{{- end }}
{{- $content }}
{{- end }}

{{/*
The Secret (tls.crt, tls.key, ca.crt) the manager's metrics endpoint serves
and the ServiceMonitor verifies it with: metrics.tls.secretName, or the one
cert-manager or the chart makes (templates/metrics/metrics_tls.yaml).
*/}}
{{- define "tenant-operator.metricsTLSSecret" -}}
{{- dig "tls" "secretName" "" .Values.metrics | default (printf "%s-metrics-tls" (include "tenant-operator.fullname" .)) }}
{{- end }}

{{/*
The metrics Service's DNS name in the cluster: the name its certificate is
made for and the ServiceMonitor checks.
*/}}
{{- define "tenant-operator.metricsServerName" -}}
{{- printf "%s-metrics.%s.svc" (include "tenant-operator.fullname" .) .Release.Namespace }}
{{- end }}
