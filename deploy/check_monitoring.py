"""Checks the monitoring side of the rendered manifests (run by deploy/validate.sh).

  python check_monitoring.py OUT DASHBOARD RENDERED.yaml...

1. Every monitoring.coreos.com object (ServiceMonitor, PrometheusRule) is
   validated against prometheus-operator's API (the PyPI models
   cloudcoil-models-prometheus-operator), and every cert-manager.io object
   (Certificate, made by the chart's tls.certManager) against cert-manager's
   (cloudcoil-models-cert-manager), strictly: an unknown field fails, as
   `kubectl apply` would refuse it. Any other kind of those groups fails. A
   Certificate must also name what it certifies (commonName, dnsNames, ...),
   as cert-manager's webhook demands.
2. Every other object is written to OUT/builtin/<file>, for
   kubernetes-validate, which knows no custom resource.
3. Every PromQL expression (the rules' `expr`, the dashboard's queries and
   query variables) is parsed by a real PromQL parser (PyPI promql-parser,
   Prometheus' grammar); the metric names each selects are written to
   OUT/promql-names.json ({expression: [names]}), which the manifest tests
   compare with their own reading and check against the metrics the tier
   exports.
"""

import json
import os
import sys
import typing

import promql_parser
import pydantic
import yaml
from cloudcoil.models.cert_manager import v1 as cert_manager_v1
from cloudcoil.models.prometheus_operator import v1 as monitoring_v1

# Grafana's interval macros, as a query would be sent.
GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def fail(message):
    print(f"deploy/check_monitoring.py: {message}", file=sys.stderr)
    sys.exit(1)


def strict(root):
    """Makes `root` and every model it holds refuse unknown fields."""
    order, seen = [], set()

    def visit(cls):
        if cls in seen:
            return
        seen.add(cls)
        for field in cls.model_fields.values():
            stack = [field.annotation]
            while stack:
                t = stack.pop()
                if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
                    visit(t)
                stack.extend(typing.get_args(t))
        order.append(cls)

    visit(root)
    for cls in order:
        cls.model_config["extra"] = "forbid"
    for cls in order:  # the held models first
        cls.model_rebuild(force=True)
    return root


# The custom resources the manifests may hold, by apiVersion and kind.
CUSTOM = {
    "monitoring.coreos.com/v1": {
        "ServiceMonitor": strict(monitoring_v1.ServiceMonitor),
        "PrometheusRule": strict(monitoring_v1.PrometheusRule),
    },
    "cert-manager.io/v1": {
        "Certificate": strict(cert_manager_v1.Certificate),
    },
}
CUSTOM_GROUPS = sorted({api.split("/")[0] + "/" for api in CUSTOM})

# cert-manager's webhook refuses a Certificate without one of these.
CERTIFICATE_SUBJECTS = ("commonName", "dnsNames", "uris", "emailAddresses", "ipAddresses", "otherNames", "literalSubject")


def selected_names(expr):
    """The metric names a PromQL expression selects (parsed, not guessed)."""
    names = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if not node.name:
                fail(f"a selector without a metric name in {expr!r}")
            names.append(node.name)
        return True

    try:
        parsed = promql_parser.parse(expr)
    except Exception as e:  # the parser raises its own error types
        fail(f"PromQL does not parse: {expr!r}: {e}")
    promql_parser.walk(parsed, visit)
    return sorted(set(names))


def grafana_query(query):
    """A dashboard query as PromQL: macros filled, label_values(Q, L) as Q."""
    for macro, value in GRAFANA_MACROS.items():
        query = query.replace(macro, value)
    query = query.strip()
    if query.startswith("label_values(") and query.endswith(")"):
        inner = query[len("label_values(") : -1]
        depth, quoted, cut = 0, False, None
        for i, ch in enumerate(inner):
            if ch == '"':
                quoted = not quoted
            elif not quoted and ch in "({[":
                depth += 1
            elif not quoted and ch in ")}]":
                depth -= 1
            elif not quoted and ch == "," and depth == 0:
                cut = i
        return inner[:cut] if cut is not None else None
    return query


def main():
    if len(sys.argv) < 4:
        fail(__doc__)
    out, dashboard_path, rendered = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(os.path.join(out, "builtin"), exist_ok=True)
    exprs = {}
    counts = {}
    for path in rendered:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        builtin = []
        for doc in docs:
            api = doc.get("apiVersion", "")
            kind = doc.get("kind", "")
            name = doc.get("metadata", {}).get("name", "?")
            if not api.startswith(tuple(CUSTOM_GROUPS)):
                builtin.append(doc)
                continue
            if kind not in CUSTOM.get(api, {}):
                fail(f"{path}: {api} {kind}/{name} is not a kind this check knows")
            try:
                CUSTOM[api][kind].model_validate(doc)
            except pydantic.ValidationError as e:
                fail(f"{path}: {kind}/{name} is not a valid {kind}:\n{e}")
            if kind == "Certificate" and not any(doc["spec"].get(k) for k in CERTIFICATE_SUBJECTS):
                fail(f"{path}: Certificate/{name} names none of {', '.join(CERTIFICATE_SUBJECTS)}")
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "PrometheusRule":
                for group in doc["spec"]["groups"]:
                    for rule in group["rules"]:
                        exprs[rule["expr"]] = selected_names(rule["expr"])
        with open(os.path.join(out, "builtin", os.path.basename(path)), "w") as f:
            yaml.safe_dump_all(builtin, f, sort_keys=False)
    with open(dashboard_path) as f:
        dashboard = json.load(f)
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
    for v in dashboard["templating"]["list"]:
        if v.get("type") == "query":
            q = v["query"]
            queries.append(q["query"] if isinstance(q, dict) else q)
    for query in queries:
        promql = grafana_query(query)
        exprs[query] = selected_names(promql) if promql is not None else []
    with open(os.path.join(out, "promql-names.json"), "w") as f:
        json.dump(exprs, f, indent=1, sort_keys=True)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"{kinds} valid; {len(exprs)} PromQL expressions parsed")


if __name__ == "__main__":
    main()
