#!/usr/bin/env bash
# deploy_test.sh BUILD_DIR — checks deploy/ with kubectl, offline (77 = skipped, with a
# message, when kubectl is missing). kubectl kustomize builds deploy/k8s (every manifest
# parses, the kustomization composes); kubectl label --local re-reads the objects (kinds,
# names) as JSON; then the parts must agree: the Deployment's readiness and liveness
# probes GET /health on the container port, the Service and the InferencePool target that
# port and select the pods' labels, the InferencePool names an endpoint picker, every
# server option in the Deployment and the Containerfile is one `lorajit serve --help`
# lists, and every Debian package the image installs exists (apt-cache). With a cluster
# reachable it also runs `kubectl apply --dry-run=server -k deploy/k8s`; without one it
# says so (kubectl's schema validation needs an API server).
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$1/lorajit"
fail() { echo "FAIL: $*"; exit 1; }
command -v kubectl > /dev/null || { echo "SKIP: kubectl is not installed (Debian: apt-get install kubernetes-client)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
timeout 120 kubectl kustomize "$root/deploy/k8s" > "$tmp/all.yaml" 2> "$tmp/err" || fail "kubectl kustomize: $(cat "$tmp/err")"
timeout 120 kubectl label --local -f "$tmp/all.yaml" lorajit-check=yes -o json > "$tmp/all.json" 2> "$tmp/err" ||
  fail "kubectl label --local: $(cat "$tmp/err")"
"$bin" serve --help > "$tmp/help" || fail "lorajit serve --help exited $?"
python3 - "$tmp/all.json" "$tmp/help" "$root/deploy/Containerfile" <<'PY' || exit 1
import json, re, subprocess, sys
text = open(sys.argv[1]).read()
objs, i = [], 0
dec = json.JSONDecoder()
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    o, i = dec.raw_decode(text, i)
    objs.extend(o["items"] if o.get("kind") == "List" else [o])
checks = 0
def check(c, what):
    global checks
    checks += 1
    if not c:
        print("FAIL:", what)
        sys.exit(1)
by = {o["kind"]: o for o in objs}
check(sorted(by) == ["Deployment", "HTTPRoute", "InferencePool", "Service"], "kinds: %s" % sorted(by))
check(by["InferencePool"]["apiVersion"] == "inference.networking.k8s.io/v1", "InferencePool apiVersion")
dep = by["Deployment"]
pod = dep["spec"]["template"]
labels = pod["metadata"]["labels"]
check(dep["spec"]["selector"]["matchLabels"].items() <= labels.items(), "Deployment selector matches its pods")
c = pod["spec"]["containers"][0]
port = c["ports"][0]["containerPort"]
for probe in ("readinessProbe", "livenessProbe"):
    g = c[probe]["httpGet"]
    check(g["path"] == "/health" and g["port"] == port, "%s: %s" % (probe, g))
svc = by["Service"]["spec"]
check(svc["selector"].items() <= labels.items() and svc["ports"][0]["targetPort"] == port, "Service: %s" % svc)
pool = by["InferencePool"]["spec"]
check(pool["selector"]["matchLabels"].items() <= labels.items(), "InferencePool selector")
check([p["number"] for p in pool["targetPorts"]] == [port], "InferencePool targetPorts: %s" % pool["targetPorts"])
check(pool["endpointPickerRef"]["name"] and pool["endpointPickerRef"]["port"]["number"] > 0, "endpointPickerRef")
route = by["HTTPRoute"]["spec"]["rules"][0]["backendRefs"][0]
check(route["kind"] == "InferencePool" and route["name"] == by["InferencePool"]["metadata"]["name"], "HTTPRoute backend")
help_text = open(sys.argv[2]).read()
cf = open(sys.argv[3]).read()
entry = json.loads(re.search(r"ENTRYPOINT (\[.*?\])\n", cf.replace("\\\n", "")).group(1))
cmd = json.loads(re.search(r"CMD (\[.*?\])\n", cf).group(1))
check(entry[1] == "serve" and "--port" in entry and entry[entry.index("--port") + 1] == str(port), "ENTRYPOINT: %s" % entry)
for opt in [a for a in entry + cmd + c["args"] if a.startswith("--")]:
    check(re.search(r"(^|[\s\[])%s[\s\]]" % re.escape(opt), help_text), "option %s is not in lorajit serve --help" % opt)
pkgs = [w for w in re.search(r"--no-install-recommends(.*?)&&", cf, re.S).group(1).split() if w != "\\"]
check(len(pkgs) >= 7, "runtime packages: %s" % pkgs)
for p in pkgs:
    r = subprocess.run(["apt-cache", "show", p], capture_output=True)
    check(r.returncode == 0, "Debian package %s (Containerfile) not found by apt-cache" % p)
print("deploy: %d checks passed on %d objects" % (checks, len(objs)))
PY
if timeout 10 kubectl version --request-timeout=5s > /dev/null 2>&1; then
  timeout 120 kubectl apply --dry-run=server -k "$root/deploy/k8s" || fail "kubectl apply --dry-run=server"
else
  echo "deploy: no Kubernetes API server reachable: server-side schema validation skipped"
fi
