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

{{/*
Warm restarts (persistence.enabled): the memory file each shard writes at a
graceful stop and loads at start, on its own PersistentVolumeClaim.
*/}}
{{- define "memshard.memoryFile" -}}/data/memory{{- end }}

{{/*
The shards' grace period: 30 s (the 10 s drain, and slack), plus, with
persistence, 10 s per GiB of -m rounded up (the memory file written at
100 MiB/s). An explicit shards.terminationGracePeriodSeconds below that is
refused when persistence is on.
*/}}
{{- define "memshard.shardGraceSeconds" -}}
{{- $m := int .Values.shards.memoryMB -}}
{{- $floor := 30 -}}
{{- if .Values.persistence.enabled -}}
{{- $floor = add 30 (mul 10 (div (add $m 1023) 1024)) -}}
{{- end -}}
{{- $set := .Values.shards.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $set -}}
{{- $floor -}}
{{- else -}}
{{- if and .Values.persistence.enabled (lt (int $set) $floor) -}}
{{- fail (printf "shards.terminationGracePeriodSeconds (%d) is below %d s, the drain and the save of -m %d MB (30 s + 10 s per GiB): a SIGKILL in the middle of the save loses the memory file; leave it null to compute it" (int $set) $floor $m) -}}
{{- end -}}
{{- int $set -}}
{{- end -}}
{{- end }}

{{/* The shard volume: persistence.size, refused below 1.25 x -m + 64 Mi. */}}
{{- define "memshard.shardVolumeSize" -}}
{{- $m := int .Values.shards.memoryMB -}}
{{- $need := add (div (add (mul $m 5) 3) 4) 64 -}}
{{- $size := .Values.persistence.size -}}
{{- $n := int (trimSuffix "Mi" (trimSuffix "Gi" (trimSuffix "Ti" $size))) -}}
{{- $mi := $n -}}
{{- if hasSuffix "Gi" $size }}{{ $mi = mul $n 1024 }}{{ else if hasSuffix "Ti" $size }}{{ $mi = mul $n 1048576 }}{{ end -}}
{{- if lt $mi $need -}}
{{- fail (printf "persistence.size %s is below %dMi, what the memory file of -m %d MB needs (1.25 x memoryMB + 64 Mi): raise it" $size $need $m) -}}
{{- end -}}
{{- $size -}}
{{- end }}

{{/* Prometheus' annotation-based discovery of a pod's metrics on `port`. */}}
{{- define "memshard.scrapeAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ . | quote }}
prometheus.io/path: /metrics
{{- end }}

{{/*
The shards' startupProbe budget, in 5 s periods: the admin port answers only
once the memory file is loaded, so /healthz waits for the load. 60 s, plus,
with persistence, 10 s per GiB of -m (a load reads the file at 100 MiB/s or
faster); the liveness probe takes over after.
*/}}
{{- define "memshard.shardStartupFailures" -}}
{{- $m := int .Values.shards.memoryMB -}}
{{- if .Values.persistence.enabled -}}
{{- add 12 (mul 2 (div (add $m 1023) 1024)) -}}
{{- else -}}
12
{{- end -}}
{{- end }}

{{/*
The ingress rule of an admin port: from networkPolicy.adminFrom,
or from anyone when it is empty. Call with (dict "root" $ "port" PORT).
*/}}
{{- define "memshard.adminIngress" -}}
- ports:
    - protocol: TCP
      port: {{ .port }}
  {{- with .root.Values.networkPolicy.adminFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* The admin ports must not take a port the same pod already listens on. */}}
{{- define "memshard.checkAdminPorts" -}}
{{- if .Values.admin.enabled -}}
{{- $p := .Values.proxy -}}
{{- if has (int $p.admin.port) (list (int $p.port) (int $p.statsPort)) -}}
{{- fail (printf "proxy.admin.port %d is the proxy's memcache or stats port: pick another" (int $p.admin.port)) -}}
{{- end -}}
{{- if eq (int .Values.shards.admin.port) (int .Values.shards.port) -}}
{{- fail (printf "shards.admin.port %d is the shards' memcache port: pick another" (int .Values.shards.admin.port)) -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/*
TLS (tls.*): every certificate file is under this directory, one
subdirectory per mounted Secret: server/ (the pod's serving certificate),
client/ (its client certificate), upstream-ca/ (ca.crt of the server it
connects to) and client-ca/ (ca.crt of the clients it accepts). Not under
/etc/memshard: the proxies' ConfigMap is mounted there, read-only, and a mount
point cannot be made inside it.
*/}}
{{- define "memshard.tlsDir" -}}/etc/memshard-tls{{- end }}

{{/*
The Secret of a certificate: its secretName, or with tls.certManager.enabled
the name of the Secret the chart's Certificate writes. Call with
(dict "root" $ "cert" "proxy|app-client|shards|proxy-client").
*/}}
{{- define "memshard.tlsSecretName" -}}
{{- $t := .root.Values.tls -}}
{{- $certs := dict
  "proxy" (list $t.proxy.secretName (printf "%s-tls" (include "memshard.proxyName" .root)) "tls.proxy.secretName")
  "app-client" (list $t.proxy.clientAuth.secretName (printf "%s-client-tls" (include "memshard.appName" .root)) "tls.proxy.clientAuth.secretName")
  "shards" (list $t.shards.secretName (printf "%s-tls" (include "memshard.shardsName" .root)) "tls.shards.secretName")
  "proxy-client" (list $t.shards.clientAuth.secretName (printf "%s-client-tls" (include "memshard.proxyName" .root)) "tls.shards.clientAuth.secretName") -}}
{{- $c := get $certs .cert -}}
{{- if index $c 0 -}}
{{- index $c 0 -}}
{{- else if $t.certManager.enabled -}}
{{- index $c 1 -}}
{{- else -}}
{{- fail (printf "%s is empty: name a Secret (kubernetes.io/tls: tls.crt, tls.key, ca.crt), or set tls.certManager.enabled with an issuerRef for the chart to have cert-manager make it" (index $c 2)) -}}
{{- end -}}
{{- end }}

{{/*
A Secret volume with some of its keys. Call with
(dict "name" VOLUME "secret" SECRET "keys" (list KEY...)).
*/}}
{{- define "memshard.tlsVolume" -}}
- name: {{ .name }}
  secret:
    secretName: {{ .secret }}
    items:
      {{- range .keys }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- end }}

{{/* Its mount, read-only. Call with (dict "root" $ "name" VOLUME "dir" SUBDIRECTORY). */}}
{{- define "memshard.tlsMount" -}}
- name: {{ .name }}
  mountPath: {{ include "memshard.tlsDir" .root }}/{{ .dir }}
  readOnly: true
{{- end }}

{{/* The TLS values that cannot work together, refused with the reason. */}}
{{- define "memshard.checkTls" -}}
{{- $t := .Values.tls -}}
{{- if and $t.proxy.clientAuth.enabled (not $t.proxy.enabled) -}}
{{- fail "tls.proxy.clientAuth.enabled needs tls.proxy.enabled: a client certificate is asked for in a TLS handshake" -}}
{{- end -}}
{{- if and $t.shards.clientAuth.enabled (not $t.shards.enabled) -}}
{{- fail "tls.shards.clientAuth.enabled needs tls.shards.enabled: a client certificate is asked for in a TLS handshake" -}}
{{- end -}}
{{- if and $t.shards.enabled (not .Values.admin.enabled) -}}
{{- fail "tls.shards.enabled needs admin.enabled: without the admin port the shards' readiness probe sends `version` in plain text to the memcache port, which then speaks TLS" -}}
{{- end -}}
{{- if and $t.certManager.enabled (or $t.proxy.enabled $t.shards.enabled) (not $t.certManager.issuerRef.name) -}}
{{- fail "tls.certManager.issuerRef.name is empty: name the Issuer (or ClusterIssuer, with issuerRef.kind) that signs the certificates" -}}
{{- end -}}
{{- end }}

{{/*
The names a Service is reached by, in the forms a client may dial:
NAME, NAME.NAMESPACE, NAME.NAMESPACE.svc, NAME.NAMESPACE.svc.DOMAIN.
Call with (dict "root" $ "name" NAME).
*/}}
{{- define "memshard.serviceDnsNames" -}}
- {{ .name }}
- {{ .name }}.{{ .root.Release.Namespace }}
- {{ .name }}.{{ .root.Release.Namespace }}.svc
- {{ .name }}.{{ .root.Release.Namespace }}.svc.{{ .root.Values.proxy.clusterDomain }}
{{- end }}
