#!/usr/bin/python3
"""Proves that what deploy/ ships matches the real pgcutover-proxy.

- every YAML (multi-document too) and JSON file under deploy/ parses;
- the example TOML and the Kubernetes ConfigMap's TOML parse (tomllib) AND pass the real
  binary's `--check` (unknown keys, TLS files, env references), with TLS files made by openssl;
- the Kubernetes manifests, the systemd unit, the Dockerfile and the Heroku start script use
  only the ports, paths, config keys, secrets and endpoints the proxy has;
- a real proxy is started: /healthz and /readyz answer without a token (/readyz 503, since
  its backends are on a closed port), /metrics needs it, the
  Dockerfile's HEALTHCHECK command passes against it, and every metric name the Grafana
  dashboard and the Prometheus alert rules use is in its /metrics output;
- the Heroku start script starts a real proxy and hands the app a DATABASE_URL pointing at it,
  with fleet mode on by default (named after $DYNO), off with PGCUTOVER_FLEET=0.

Environment: PGCUTOVER_PROXY_BIN (the binary), PGCUTOVER_SOURCE_DIR (the tree).
"""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request

import yaml

TOP = os.environ.get("PGCUTOVER_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY_BIN = os.environ.get("PGCUTOVER_PROXY_BIN") or os.path.join(
    TOP, "build", "proxy", "pgcutover-proxy")
DEPLOY = os.path.join(TOP, "deploy")
EXAMPLE_TOML = os.path.join(DEPLOY, "examples", "pgcutover.toml")

failures = []
started = []  # Popen objects to kill at exit, whatever happens


def ok(what):
    print(f"ok - {what}")


def check(cond, what):
    if cond:
        ok(what)
    else:
        print(f"not ok - {what}", file=sys.stderr)
        failures.append(what)
    return cond


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def env_refs(text):
    """${NAME} references in the string values of a TOML text ($$ is a literal $); comments
    do not count. A plain string (not TOML) is scanned as it is."""
    try:
        values = list(toml_strings(tomllib.loads(text)))
    except tomllib.TOMLDecodeError:
        values = [text]
    refs = set()
    for v in values:
        refs |= set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)\}", v))
    return refs


def toml_strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from toml_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from toml_strings(v)


def free_port():
    """A port as every test gets one (tests/lib/pgcluster.sh free-port says how)."""
    return int(subprocess.run(["bash", os.path.join(TOP, "tests/lib/pgcluster.sh"), "free-port"],
                              check=True, capture_output=True, text=True).stdout.strip())


def http_get(url, token=None, timeout=3):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_until(deadline_s, probe):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if probe():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def make_tls(dirpath):
    """A self-signed certificate + key, also usable as a CA bundle."""
    crt, key = os.path.join(dirpath, "server.crt"), os.path.join(dirpath, "server.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return crt, key


# ---------------------------------------------------------------------------------------------
# 1. Every YAML / JSON under deploy/ parses.


def load_all_manifests():
    docs = {}
    for root, _, files in os.walk(DEPLOY):
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, TOP)
            if name.endswith((".yaml", ".yml")):
                try:
                    docs[rel] = [d for d in yaml.safe_load_all(read(path)) if d is not None]
                    check(len(docs[rel]) > 0, f"{rel} parses as YAML ({len(docs[rel])} documents)")
                except yaml.YAMLError as e:
                    check(False, f"{rel} parses as YAML: {e}")
            elif name.endswith(".json"):
                try:
                    docs[rel] = [json.loads(read(path))]
                    ok(f"{rel} parses as JSON")
                except json.JSONDecodeError as e:
                    check(False, f"{rel} parses as JSON: {e}")
    check(len(docs) >= 8, f"found the deploy manifests ({len(docs)} files)")
    return docs


def k8s_objects(docs):
    objs = {}
    for rel, ds in docs.items():
        if not rel.startswith("deploy/kubernetes/"):
            continue
        for d in ds:
            if isinstance(d, dict) and "kind" in d and "metadata" in d:
                objs[(d["kind"], d["metadata"]["name"])] = d
    return objs


# ---------------------------------------------------------------------------------------------
# 2. The TOML files pass the real binary's --check.


def proxy_check(toml_text, label, tmp, extra_env):
    """Runs `pgcutover-proxy --check` on toml_text with its absolute paths moved into tmp."""
    d = tempfile.mkdtemp(dir=tmp, prefix="check-")
    crt, key = make_tls(d)

    def relocate(m):
        path = m.group(1)
        base = os.path.basename(path)
        if path.endswith((".crt", ".pem")):
            return f'"{crt}"'
        if path.endswith(".key"):
            return f'"{key}"'
        return f'"{os.path.join(d, base)}"'

    # Every absolute path the file names (TLS files, state file, journal) moves to the temp
    # dir; TLS ones become the openssl-made files, so --check validates real PEM.
    text = re.sub(r'"(/(?:etc|var)/pgcutover/[^"]+)"', relocate, toml_text)
    path = os.path.join(d, "pgcutover.toml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    env = dict(os.environ)
    env.update(extra_env)
    r = subprocess.run([PROXY_BIN, "--check", "-c", path], env=env, capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, f"{label}: pgcutover-proxy --check accepts it"
          + ("" if r.returncode == 0 else f" (exit {r.returncode}: {r.stderr.strip()})"))
    # And without the environment: every ${NAME} really is required, so the secret lists
    # (Secret, env file) must provide each one.
    return r.returncode == 0


def fake_secrets(names):
    values = {}
    for n in names:
        if n.endswith("_URL"):
            values[n] = "postgres://u:p@127.0.0.1:1/db"
        else:
            values[n] = "secret-" + n.lower()
    return values


# ---------------------------------------------------------------------------------------------
# 3. Kubernetes.


def check_kubernetes(objs, tmp):
    sts = objs.get(("StatefulSet", "pgcutover-proxy")) or objs.get(("Deployment", "pgcutover-proxy"))
    if not check(sts is not None, "kubernetes: the proxy workload exists"):
        return
    cm = objs[("ConfigMap", "pgcutover-config")]
    toml_text = cm["data"]["pgcutover.toml"]
    cfg = tomllib.loads(toml_text)
    ok("kubernetes: the ConfigMap's TOML parses (tomllib)")
    refs = env_refs(toml_text)
    proxy_check(toml_text, "kubernetes ConfigMap TOML", tmp, fake_secrets(refs))

    pod = sts["spec"]["template"]
    spec = pod["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "proxy"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(ports.get("postgres") == cfg["proxy"]["listen_port"],
          "kubernetes: container port postgres is [proxy] listen_port")
    check(ports.get("admin") == cfg["admin"]["listen_port"],
          "kubernetes: container port admin is [admin] listen_port")
    check(cfg["proxy"]["listen_addr"] == "0.0.0.0" and cfg["admin"]["listen_addr"] == "0.0.0.0",
          "kubernetes: proxy and admin listen on every interface (reachable from the Service)")

    probes = {k: container.get(k, {}).get("httpGet", {}) for k in ("readinessProbe", "livenessProbe")}
    check(probes["readinessProbe"].get("path") == "/readyz" and probes["readinessProbe"].get("port") == "admin",
          "kubernetes: readiness probe is GET /readyz on the admin port")
    check(probes["livenessProbe"].get("path") == "/healthz" and probes["livenessProbe"].get("port") == "admin",
          "kubernetes: liveness probe is GET /healthz on the admin port")

    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    pre_stop_s = float(pre_stop[-1]) if pre_stop[0] == "sleep" else 0.0
    grace = spec["terminationGracePeriodSeconds"]
    check(grace > pre_stop_s + cfg["proxy"]["shutdown_timeout"],
          f"kubernetes: terminationGracePeriodSeconds {grace} > preStop {pre_stop_s} + shutdown_timeout "
          f"{cfg['proxy']['shutdown_timeout']}")
    check("requests" in container.get("resources", {}) and "limits" in container["resources"],
          "kubernetes: resources requests and limits")

    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    claims = {c["metadata"]["name"] for c in sts["spec"].get("volumeClaimTemplates", [])}

    def source_of(path):
        """(mount, volume-or-claim) holding an absolute path."""
        best = None
        for mp, m in mounts.items():
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and (best is None or len(mp) > len(best)):
                best = mp
        if best is None:
            return None, None
        m = mounts[best]
        return m, volumes.get(m["name"]) or ({"claim": m["name"]} if m["name"] in claims else None)

    args = container.get("args", [])
    config_path = args[args.index("-c") + 1]
    m, v = source_of(config_path)
    check(v is not None and v.get("configMap", {}).get("name") == "pgcutover-config"
          and os.path.basename(config_path) in cm["data"],
          f"kubernetes: -c {config_path} is the ConfigMap's pgcutover.toml")
    m, v = source_of(cfg["proxy"]["state_file"])
    check(v is not None and "claim" in v,
          "kubernetes: proxy.state_file is on a persistent volume claim (survives restarts)")
    for key in ("cert_file", "key_file"):
        path = cfg["proxy"]["tls"][key]
        m, v = source_of(path)
        secret = v and v.get("secret", {}).get("secretName")
        check(secret is not None and os.path.basename(path) in objs[("Secret", secret)]["stringData"],
              f"kubernetes: proxy.tls.{key} {path} comes from Secret {secret}")
    root_cert = cfg["backends"]["target"]["sslrootcert"]
    m, v = source_of(root_cert)
    ca_cm = v and v.get("configMap", {}).get("name")
    check(ca_cm is not None and os.path.basename(root_cert) in objs[("ConfigMap", ca_cm)]["data"],
          f"kubernetes: backends.target.sslrootcert comes from ConfigMap {ca_cm}")

    secret_names = {e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e}
    provided = set()
    for n in secret_names:
        provided |= set(objs[("Secret", n)].get("stringData", {}))
    check(refs <= provided, f"kubernetes: every ${{NAME}} of the TOML is in the Secret ({sorted(refs)})")

    labels = pod["metadata"]["labels"]
    matches = lambda sel: all(labels.get(k) == v for k, v in sel.items())
    services = {name: o for (kind, name), o in objs.items() if kind == "Service"}
    for name, svc in services.items():
        check(matches(svc["spec"]["selector"]), f"kubernetes: Service {name} selects the proxy pods")
        for p in svc["spec"]["ports"]:
            check(p["targetPort"] in ports and ports[p["targetPort"]] == p["port"],
                  f"kubernetes: Service {name} port {p['port']} -> container port {p['targetPort']}")
    check(matches(sts["spec"]["selector"]["matchLabels"]), "kubernetes: workload selector matches its pods")
    pdb = objs[("PodDisruptionBudget", "pgcutover-proxy")]
    check(matches(pdb["spec"]["selector"]["matchLabels"]), "kubernetes: PodDisruptionBudget selects the proxy pods")

    sm = objs[("ServiceMonitor", "pgcutover-proxy")]
    sm_sel = sm["spec"]["selector"]["matchLabels"]
    scraped = [n for n, s in services.items() if all(s["metadata"]["labels"].get(k) == v for k, v in sm_sel.items())]
    check(len(scraped) == 1, f"kubernetes: ServiceMonitor selects one Service ({scraped})")
    (ep,) = sm["spec"]["endpoints"]
    if scraped:
        check(ep["port"] in {p["name"] for p in services[scraped[0]]["spec"]["ports"]}
              and ports.get(ep["port"]) == cfg["admin"]["listen_port"],
              "kubernetes: ServiceMonitor scrapes the admin port")
    check(ep["path"] == "/metrics", "kubernetes: ServiceMonitor path is /metrics")
    cred = ep["authorization"]["credentials"]
    admin_token_ref = env_refs(cfg["admin"]["token"])
    check(cred["key"] in admin_token_ref and cred["key"] in objs[("Secret", cred["name"])]["stringData"],
          "kubernetes: ServiceMonitor's bearer token is the admin token from the Secret")

    proxies = cfg.get("control", {}).get("proxies", [])
    service_name = sts["spec"].get("serviceName")
    want = [f"http://pgcutover-proxy-{i}.{service_name}:{cfg['admin']['listen_port']}"
            for i in range(sts["spec"]["replicas"])]
    check([p["admin_url"] for p in proxies] == want,
          "kubernetes: [[control.proxies]] names every replica through the headless Service")
    check(service_name in services and services[service_name]["spec"].get("clusterIP") == "None",
          "kubernetes: the StatefulSet's serviceName is the headless admin Service")

    kust = [d for rel, ds in LOADED.items() if rel.endswith("kustomization.yaml") for d in ds]
    if kust:
        listed = set(kust[0]["resources"])
        present = {os.path.basename(r) for r in LOADED if r.startswith("deploy/kubernetes/")} - {"kustomization.yaml"}
        check(listed == present, "kubernetes: kustomization.yaml lists every manifest")


# ---------------------------------------------------------------------------------------------
# 4. systemd, Dockerfile, example TOML.


def parse_unit(text):
    entries = []
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        entries.append((section, k.strip(), v.strip()))
    return entries


def check_systemd(example, example_text):
    unit_path = os.path.join(DEPLOY, "systemd", "pgcutover-proxy.service")
    entries = parse_unit(read(unit_path))
    svc = {}
    for section, k, v in entries:
        if section == "Service":
            svc.setdefault(k, []).append(v)
    start = shlex.split(svc["ExecStart"][0])
    check(os.path.basename(start[0]) == "pgcutover-proxy" and "-c" in start,
          "systemd: ExecStart runs pgcutover-proxy -c <file>")
    conf = start[start.index("-c") + 1]
    check(any("--check" in x and conf in x for x in svc.get("ExecStartPre", [])),
          "systemd: ExecStartPre validates the same file with --check")
    check(any("-HUP" in x and "$MAINPID" in x for x in svc["ExecReload"]), "systemd: ExecReload sends SIGHUP")
    stop = float(svc["TimeoutStopSec"][0])
    check(stop > example["proxy"]["shutdown_timeout"],
          f"systemd: TimeoutStopSec {stop} > shutdown_timeout {example['proxy']['shutdown_timeout']}")
    state_dir = os.path.dirname(example["proxy"]["state_file"])
    rw = " ".join(svc.get("ReadWritePaths", [])).split()
    check(state_dir in rw, f"systemd: ReadWritePaths includes the state dir {state_dir}")
    check(("/var/lib/" + svc["StateDirectory"][0]) == state_dir, "systemd: StateDirectory is the state dir")
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                      ("ProtectHome", "yes"), ("CapabilityBoundingSet", "")):
        check(svc.get(key) == [want], f"systemd: {key}={want}")
    check("@system-service" in svc.get("SystemCallFilter", []), "systemd: SystemCallFilter=@system-service")
    check(set(svc["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"},
          "systemd: RestrictAddressFamilies inet, inet6, unix")
    env_file = svc["EnvironmentFile"][0].lstrip("-")
    local_env = os.path.join(DEPLOY, "systemd", os.path.basename(env_file))
    names = set()
    for line in read(local_env).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            names.add(line.split("=", 1)[0].strip())
    refs = env_refs(example_text)
    check(refs <= names, f"systemd: pgcutover.env defines every ${{NAME}} of the example TOML ({sorted(refs)})")
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", unit_path],
                           capture_output=True, text=True, timeout=60)
        # The binary is not installed at /usr/bin here; any other complaint is a unit error.
        bad = [l for l in (r.stderr + r.stdout).splitlines()
               if l.strip() and "pgcutover-proxy" not in l.split(":")[-1] and "/usr/bin/pgcutover-proxy" not in l
               and "Failed to prepare filename" not in l and "Command " not in l]
        check(not bad, "systemd: systemd-analyze verify finds nothing else" + ("" if not bad else f": {bad}"))


def dockerfile_instructions(text):
    out = []
    cur = ""
    for line in text.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def check_dockerfile(example):
    text = read(os.path.join(DEPLOY, "docker", "Dockerfile"))
    ins = dockerfile_instructions(text)
    stages = [rest for w, rest in ins if w == "FROM"]
    check(len(stages) >= 2, f"docker: multi-stage ({len(stages)} FROM)")
    args = {rest.split("=")[0]: rest.split("=", 1)[1] for w, rest in ins if w == "ARG" and "=" in rest}
    check(all(re.match(r"debian:12\b", s.split()[0].replace("${DEBIAN_IMAGE}", args.get("DEBIAN_IMAGE", "")))
              for s in stages), "docker: every stage is Debian 12")
    runs = " ".join(rest for w, rest in ins if w == "RUN")
    check("deploy/bootstrap.sh --no-build" in runs and "deploy/build.sh" in runs,
          "docker: the build stage runs deploy/bootstrap.sh --no-build and deploy/build.sh")
    check(re.search(r'"\$here/build\.sh"', read(os.path.join(DEPLOY, "bootstrap.sh"))) is not None,
          "docker: bootstrap.sh builds with the same deploy/build.sh")
    exposed = {int(p.split("/")[0]) for w, rest in ins if w == "EXPOSE" for p in rest.split()}
    check(exposed == {example["proxy"]["listen_port"], example["admin"]["listen_port"]},
          f"docker: EXPOSE {sorted(exposed)} are the example's proxy and admin ports")
    users = [rest for w, rest in ins if w == "USER"]
    check(users and not users[-1].startswith(("root", "0")), "docker: runs as a non-root user")
    (health,) = [rest for w, rest in ins if w == "HEALTHCHECK"]
    check("/healthz" in health and f"/{example['admin']['listen_port']}" in health,
          "docker: HEALTHCHECK calls /healthz on the admin port")
    cmd = json.loads([rest for w, rest in ins if w == "CMD"][-1])
    check(cmd[:1] == ["-c"] and cmd[1] == "/etc/pgcutover/pgcutover.toml", "docker: CMD -c /etc/pgcutover/pgcutover.toml")
    volumes = " ".join(rest for w, rest in ins if w == "VOLUME")
    check(os.path.dirname(example["proxy"]["state_file"]) in volumes, "docker: the state dir is a VOLUME")

    # The runtime stage installs the packages of every shared library the binary links.
    runtime_runs = " ".join(rest for w, rest in ins[[i for i, (w, _) in enumerate(ins) if w == "FROM"][-1]:]
                            if w == "RUN")
    if shutil.which("ldd") and shutil.which("dpkg"):
        libs = re.findall(r"=> (/\S+)", subprocess.run(["ldd", PROXY_BIN], capture_output=True, text=True).stdout)
        base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5", "libgssapi-krb5-2"}
        missing = []
        for lib in libs:
            r = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True, text=True)
            if r.returncode != 0:
                r = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
            if r.returncode != 0:
                continue  # a library from the build tree or /usr/local: not a Debian package
            pkg = r.stdout.split(":")[0]
            if pkg not in base and not re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", runtime_runs):
                # Packages pulled in as dependencies of ones the stage installs are fine.
                dep = subprocess.run(["apt-cache", "rdepends", "--installed", pkg], capture_output=True, text=True).stdout
                if not any(re.search(rf"^\s+{re.escape(p)}$", dep, re.M) for p in runtime_runs.split()):
                    missing.append(pkg)
        check(not missing, "docker: the runtime stage installs the package of every library pgcutover-proxy links"
              + ("" if not missing else f" (missing {missing})"))
    return health


# ---------------------------------------------------------------------------------------------
# 5. A real proxy: endpoints, HEALTHCHECK, metric names of the dashboard and the alerts.


def start_proxy(tmp):
    port, admin_port = free_port(), free_port()
    token = "test-token-" + os.urandom(8).hex()
    closed = free_port()  # nothing listens there: the proxy starts anyway
    cfg = os.path.join(tmp, "live.toml")
    with open(cfg, "w") as f:
        f.write(f"""
[proxy]
listen_addr = "127.0.0.1"
listen_port = {port}
threads = 1
state_file = "{tmp}/live-state.json"
shutdown_timeout = 2

[proxy.tls]
client_tls = "disable"

[users.app]
password = "${{DEPLOY_TEST_PASSWORD}}"

[backends.source]
url = "postgres://u:p@127.0.0.1:{closed}/db"
sslmode = "disable"

[backends.target]
url = "postgres://u:p@127.0.0.1:{closed}/db2"
sslmode = "disable"

[admin]
listen_addr = "127.0.0.1"
listen_port = {admin_port}
token = "${{DEPLOY_TEST_TOKEN}}"
""")
    env = dict(os.environ, DEPLOY_TEST_PASSWORD="pw", DEPLOY_TEST_TOKEN=token)
    log = open(os.path.join(tmp, "live-proxy.log"), "w")
    p = subprocess.Popen([PROXY_BIN, "-c", cfg], env=env, stdout=log, stderr=subprocess.STDOUT)
    started.append(p)
    base = f"http://127.0.0.1:{admin_port}"
    # The backends are on a closed port, so no client could be served: /readyz must say so
    # (503 with the reason) while /healthz (the process is alive) answers 200.
    ready = wait_until(15, lambda: p.poll() is None and http_get(base + "/healthz", timeout=1)[0] == 200)
    if not ready:
        log.flush()
        print(read(log.name)[-2000:], file=sys.stderr)
    return p, base, admin_port, token, ready


def metric_names(exposition):
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names


def base_name(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def expressions(obj):
    """Every PromQL string in a dashboard / rule file (expr fields, template queries)."""
    out = []
    if isinstance(obj, dict):
        if obj.get("type") == "datasource":
            return out  # a data source picker, not a query
        for k, v in obj.items():
            if k in ("expr", "query", "definition") and isinstance(v, str):
                out.append(v)
            else:
                out.extend(expressions(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(expressions(v))
    return out


def check_live(tmp, health_cmd, example, docs):
    p, base, admin_port, token, ready = start_proxy(tmp)
    if not check(ready, "live: pgcutover-proxy starts with backends on a closed port; /healthz is 200"):
        return
    status, body = http_get(base + "/readyz", timeout=10)
    check(status == 503 and '"ready":false' in body and "login to backend source failed" in body,
          f"live: /readyz is 503 with the reason while the active backend refuses ({status} {body})")
    check(http_get(base + "/healthz")[0] == 200, "live: /healthz is 200 without a token")
    check(http_get(base + "/metrics")[0] == 401, "live: /metrics without the token is 401")
    status, body = http_get(base + "/metrics", token)
    check(status == 200 and "pgcutover_" in body, "live: /metrics with the token is 200")
    exported = metric_names(body)
    exported_base = {base_name(n) for n in exported} | exported

    # The Dockerfile's HEALTHCHECK command, pointed at this proxy's admin port.
    cmd = json.loads(health_cmd[health_cmd.index("CMD") + 3:].strip())
    cmd = [c.replace(f"/{example['admin']['listen_port']}", f"/{admin_port}") for c in cmd]
    r = subprocess.run(cmd, capture_output=True, timeout=10)
    check(r.returncode == 0, "live: the Dockerfile's HEALTHCHECK command passes against a running proxy")

    dash_rel = "deploy/grafana/pgcutover-dashboard.json"
    alerts_rel = "deploy/prometheus/pgcutover-alerts.yml"
    for rel, allowed_foreign in ((dash_rel, set()), (alerts_rel, {"up"})):
        exprs = expressions(docs[rel])
        check(len(exprs) >= 5, f"{rel}: {len(exprs)} expressions")
        used = set()
        for e in exprs:
            used |= set(re.findall(r"\bpgcutover_[a-z0-9_]+", e))
        unknown = sorted(n for n in used if n not in exported and base_name(n) not in exported_base)
        check(used and not unknown, f"{rel}: all {len(used)} metric names are exported by /metrics"
              + ("" if not unknown else f" (not exported: {unknown})"))
        # Histogram suffixes only on histograms.
        for n in used:
            if n != base_name(n):
                check(f"# TYPE {base_name(n)} histogram" in body, f"{rel}: {n} is a histogram series")
        foreign = set()
        for e in exprs:
            # Bare identifiers followed by { or used alone that are not functions/keywords.
            for ident in re.findall(r"(?<![\w$.\"])([a-z_][a-z0-9_]*)\s*(?:\{|\[|\)|$|\s*[=!<>]=?\s*\d)", e):
                if not ident.startswith("pgcutover_") and ident not in PROMQL_WORDS:
                    foreign.add(ident)
        check(foreign <= allowed_foreign, f"{rel}: no metric outside pgcutover_* except {sorted(allowed_foreign)}"
              + ("" if foreign <= allowed_foreign else f" (found {sorted(foreign - allowed_foreign)})"))
    families_h = read(os.path.join(TOP, "proxy", "telemetry", "metrics.h"))
    declared = set(re.findall(r'"(pgcutover_[a-z0-9_]+)"', families_h))
    dash_used = set(re.findall(r"\bpgcutover_[a-z0-9_]+", json.dumps(docs[dash_rel])))
    not_shown = sorted(declared - {base_name(n) for n in dash_used})
    check(not not_shown, "grafana: the dashboard shows every family of PGCUTOVER_METRIC_FAMILIES"
          + ("" if not not_shown else f" (missing {not_shown})"))

    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
        check(p.returncode == 0, "live: the proxy exits 0 on SIGTERM")
    except subprocess.TimeoutExpired:
        check(False, "live: the proxy exits within 10 s of SIGTERM")


PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left", "group_right",
    "rate", "irate", "increase", "delta", "changes", "histogram_quantile", "and", "or", "unless", "le",
    "label_values", "instance", "state", "backend", "class", "command", "result", "side", "direction",
    "bool", "offset", "job", "abs", "clamp_min", "topk", "bottomk", "time", "vector", "absent",
}


# ---------------------------------------------------------------------------------------------
# 6. The Heroku start script with the real binary.


def run_dyno(tmp, tag, extra_env, app_code=None):
    """Runs start-pgcutover as a dyno would (DYNO set, the add-on's URL on a closed port) with a
    small Python app; returns (exit status, its log, the TOML it wrote or None, env used). The
    proxy outlives the app here (a dyno would end): it is stopped through its process group."""
    script = os.path.join(DEPLOY, "heroku", "bin", "start-pgcutover")
    port, admin_port, closed = free_port(), free_port(), free_port()
    out_file = os.path.join(tmp, f"heroku-app-{tag}.json")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tmp,
        "TMPDIR": tmp,
        "DYNO": "web.1",
        "DATABASE_URL": f"postgres://heroku_user:p%40ss@127.0.0.1:{closed}/heroku_db",
        "PGCUTOVER_PROXY_BIN": PROXY_BIN,
        "PGCUTOVER_PORT": str(port),
        "PGCUTOVER_ADMIN_PORT": str(admin_port),
        "PGCUTOVER_APP_PASSWORD": "app pass/with:odd@chars",
    }
    env.update(extra_env)
    app = app_code or (f"import json, os\njson.dump({{'url': os.environ.get('DATABASE_URL')}}, "
                       f"open({out_file!r}, 'w'))\n")
    app = app.replace("ADMIN_PORT", str(admin_port)).replace("OUT_FILE", repr(out_file))
    config_path = os.path.join(tmp, "pgcutover", "pgcutover.toml")
    if os.path.exists(config_path):
        os.remove(config_path)
    # Output to a file: the proxy left running in the background keeps a pipe open.
    log_path = os.path.join(tmp, f"heroku-dyno-{tag}.log")
    with open(log_path, "w") as log:
        p = subprocess.Popen([script, "/usr/bin/python3", "-c", app], env=env, start_new_session=True,
                             stdout=log, stderr=subprocess.STDOUT)
    started.append(p)
    try:
        p.wait(timeout=40)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    wait_until(10, lambda: subprocess.run(["pgrep", "-g", str(p.pid)], capture_output=True).returncode != 0)
    cfg_text = read(config_path) if os.path.exists(config_path) else None
    got = json.loads(read(out_file)) if os.path.exists(out_file) else None
    return p.returncode, read(log_path), cfg_text, got, env


def check_heroku(tmp):
    script = os.path.join(DEPLOY, "heroku", "bin", "start-pgcutover")
    check(os.access(script, os.X_OK), "heroku: bin/start-pgcutover is executable")
    token = "heroku-token-" + os.urandom(4).hex()
    app = ("import json, os, sys, urllib.request\n"
           "r = urllib.request.urlopen('http://127.0.0.1:ADMIN_PORT/healthz', timeout=3)\n"
           "json.dump({'url': os.environ.get('DATABASE_URL'), 'health': r.status,"
           " 'leaked': [k for k in os.environ if k in ('PGCUTOVER_SOURCE_URL_VALUE', 'PGCUTOVER_ADMIN_TOKEN')]},"
           " open(OUT_FILE, 'w'))\n")
    rc, out, cfg_text, got, env = run_dyno(tmp, "default", {"PGCUTOVER_ADMIN_TOKEN": token}, app)
    check(rc == 0, "heroku: start-pgcutover starts the proxy and runs the app"
          + ("" if rc == 0 else f" (exit {rc}): {out[-1500:]}"))
    if got is None or cfg_text is None:
        return
    from urllib.parse import unquote, urlparse
    u = urlparse(got["url"])
    port = int(env["PGCUTOVER_PORT"])
    check(u.hostname == "127.0.0.1" and u.port == port and u.path == "/heroku_db",
          f"heroku: the app's DATABASE_URL points at the local proxy ({u.hostname}:{u.port}{u.path})")
    check(unquote(u.password or "") == env["PGCUTOVER_APP_PASSWORD"] and u.username == "app",
          "heroku: the app logs in with the proxy's own user (password percent-encoded)")
    check(got["health"] == 200, "heroku: the proxy's admin API answers inside the dyno")
    check(not got["leaked"], "heroku: backend URL and admin token are not in the app's environment")
    check("p%40ss" not in cfg_text and token not in cfg_text, "heroku: the written TOML holds no secret")
    # One shard thread by default, as PgBouncer (docs/heroku.md says why): the proxy shares the
    # dyno's CPU with the app, and every shard would hold a share of the dyno's small pool.
    threads = tomllib.loads(cfg_text).get("proxy", {}).get("threads")
    check(threads == 1, f"heroku: the proxy runs one shard thread by default (threads = {threads})")
    # Fleet mode is on by default (docs/heroku.md): the member is named after the dyno.
    fleet = tomllib.loads(cfg_text).get("fleet", {})
    check(fleet.get("enabled") is True and "name" not in fleet,
          f"heroku: fleet mode is on by default, the name left to the proxy ([fleet] = {fleet})")
    check(re.search(r"event=fleet_enabled member=web\.1\.\S+", out) is not None,
          "heroku: the proxy joins the fleet as $DYNO.<host>"
          + ("" if "event=fleet_enabled" in out else f": {out[-1500:]}"))

    # PGCUTOVER_FLEET=0 turns it off, no admin token: the app still runs through the proxy.
    rc, out, cfg_text, got, env = run_dyno(tmp, "no-fleet", {"PGCUTOVER_FLEET": "0"})
    check(rc == 0 and got is not None and cfg_text is not None,
          "heroku: with PGCUTOVER_FLEET=0 the proxy starts and the app runs"
          + ("" if rc == 0 else f" (exit {rc}): {out[-1500:]}"))
    if cfg_text is not None:
        fleet = tomllib.loads(cfg_text).get("fleet", {})
        check(fleet.get("enabled") is False and "event=fleet_enabled" not in out,
              f"heroku: PGCUTOVER_FLEET=0 turns fleet mode off ([fleet] = {fleet})")

    # A name of the operator's choice goes into the TOML; one that cannot be a member name is
    # refused before anything starts.
    rc, out, cfg_text, got, env = run_dyno(tmp, "named", {"PGCUTOVER_FLEET_NAME": "web-a.1"})
    check(rc == 0 and cfg_text is not None and tomllib.loads(cfg_text).get("fleet", {}).get("name") == "web-a.1"
          and "event=fleet_enabled member=web-a.1 " in out,
          "heroku: PGCUTOVER_FLEET_NAME names the member" + ("" if rc == 0 else f" (exit {rc}): {out[-1500:]}"))
    rc, out, cfg_text, got, env = run_dyno(tmp, "bad-name", {"PGCUTOVER_FLEET_NAME": 'web 1"'})
    check(rc == 1 and "PGCUTOVER_FLEET_NAME" in out and got is None,
          f"heroku: an invalid PGCUTOVER_FLEET_NAME is refused (exit {rc})")


# ---------------------------------------------------------------------------------------------


def cleanup():
    for p in started:
        try:
            if p.poll() is None:
                p.kill()
        except OSError:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


LOADED = {}


def main():
    global LOADED
    if not os.access(PROXY_BIN, os.X_OK):
        print(f"pgcutover-proxy not built: {PROXY_BIN}", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="pgcutover-deploy-test.")
    try:
        LOADED = load_all_manifests()
        example_text = read(EXAMPLE_TOML)
        example = tomllib.loads(example_text)
        ok("deploy/examples/pgcutover.toml parses (tomllib)")
        proxy_check(example_text, "deploy/examples/pgcutover.toml", tmp, fake_secrets(env_refs(example_text)))
        check_kubernetes(k8s_objects(LOADED), tmp)
        check_systemd(example, example_text)
        health = check_dockerfile(example)
        check_live(tmp, health, example, LOADED)
        check_heroku(tmp)
    finally:
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    print("all deploy checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
