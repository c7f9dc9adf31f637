{{/*
Object names are fixed: they are the system's contract. The proxy's pool file
lists the shards as <shards>-<i>.<shardsService>, and the app reaches the proxy
as <proxy>:<port>. Install one release per namespace.
*/}}
{{- define "memshard.appName" -}}memshard-app{{- end }}
{{- define "memshard.proxyName" -}}memcache-proxy{{- end }}
{{- define "memshard.proxyConfigName" -}}memcache-proxy-config{{- end }}
{{- define "memshard.shardsName" -}}sharded-memcache{{- end }}
{{- define "memshard.shardsService" -}}memcache{{- end }}

{{- define "memshard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/*
Selector labels: name + instance + component only (selectors are immutable).
Call with (dict "root" $ "component" "web|proxy|memcached").
*/}}
{{- define "memshard.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "memshard.labels" -}}
{{ include "memshard.selectorLabels" . }}
app.kubernetes.io/part-of: memshard
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "memshard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Spread a workload's pods over nodes. Call with (dict "root" $ "component" "..." "deployment" true|false).
*/}}
{{- define "memshard.topologySpread" -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "memshard.selectorLabels" . | nindent 6 }}
  {{- if .deployment }}
  matchLabelKeys:
    - pod-template-hash
  {{- end }}
{{- end }}

{{/* Shard container memory from -m: request 1.2 x m + 100 Mi, limit max(1.5 x m, request). */}}
{{- define "memshard.shardMemoryRequest" -}}
{{- $m := int .Values.shards.memoryMB -}}
{{- add (div (add (mul $m 6) 4) 5) 100 -}}Mi
{{- end }}
{{- define "memshard.shardMemoryLimit" -}}
{{- $m := int .Values.shards.memoryMB -}}
{{- $request := add (div (add (mul $m 6) 4) 5) 100 -}}
{{- max (div (add (mul $m 3) 1) 2) $request -}}Mi
{{- end }}

{{/* Name resolution: DNS to any resolver (kube-dns, node-local caches). */}}
{{- define "memshard.dnsEgress" -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
{{- end }}
