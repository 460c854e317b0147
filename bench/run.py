#!/usr/bin/env python3
"""jwt-auth-wasm benchmark runner (`make bench`, `make bench-revocation`).

Standard library only. Starts each variant in turn: one Envoy with
`--concurrency 1` pinned to core 0, a direct-response route (so only the auth
filter costs), and wrk pinned to core 1; prints one table and writes it, with
the machine, to bench/results/latest.md, plus a PNG chart (gnuplot).

    python3 bench/run.py bench [--seconds 10] [--connections 32]
        [--algs HS256,RS256,ES256,EdDSA]
        [--variants passthrough,wasm_empty,jwt_authn,jwt_authn_cache,wasm,wasm_cache,ext_authz]
        [--revocation]          also run the revocation benchmark
    python3 bench/run.py revocation [--sizes 0,100000,1000000] [--trials 30]

Environment: ENVOY_BIN, JWT_AUTH_WASM (the Makefile exports both),
BENCH_TOOL (default target/release/jwt-auth-bench), BENCH_EMPTY_WASM (default
target/wasm32-wasip1/release/jwt_auth_empty_filter.wasm, bench/empty-filter),
JWT_AUTH_DYNAMIC_MODULE (the native module), BENCH_BASE_WASM and
BENCH_BASE_NATIVE (another build of each, for the *_base variants).
"""

import argparse
import atexit
import datetime
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_DIR = os.path.join(ROOT, ".run", "bench")
RESULTS = os.path.join(ROOT, "bench", "results")
ENVOY = os.environ.get("ENVOY_BIN") or os.path.join(ROOT, ".venv", "bin", "envoy")
WASM = os.environ.get("JWT_AUTH_WASM") or os.path.join(
    ROOT, "target", "wasm32-wasip1", "release", "jwt_auth_wasm.wasm")
EMPTY_WASM = os.environ.get("BENCH_EMPTY_WASM") or os.path.join(
    ROOT, "target", "wasm32-wasip1", "release", "jwt_auth_empty_filter.wasm")
# BENCH_BASE_WASM: another build of the filter (say, of the commit before a
# change) for the wasm_cache_base variant, so a change is measured side by
# side with what it replaces, in one run.
BASE_WASM = os.environ.get("BENCH_BASE_WASM")
# The native build (an Envoy dynamic module), loaded by name from its directory.
NATIVE_MODULE = os.environ.get("JWT_AUTH_DYNAMIC_MODULE") or os.path.join(
    ROOT, "target", "release", "libjwt_auth_dynamic_module.so")
# BENCH_BASE_NATIVE: another build of the native module for the native_base
# variant, as BENCH_BASE_WASM is for the wasm; copied under its own name so
# Envoy loads that file, not the one above.
BASE_NATIVE = os.environ.get("BENCH_BASE_NATIVE")
BASE_NATIVE_NAME = "libjwt_auth_dynamic_module_base.so"
TOOL = os.environ.get("BENCH_TOOL") or os.path.join(ROOT, "target", "release", "jwt-auth-bench")

ENVOY_CORE = "0"
LOAD_CORE = "1"
ALL_ALGS = ["HS256", "RS256", "ES256", "EdDSA"]
ALL_VARIANTS = ["passthrough", "wasm_empty", "jwt_authn", "jwt_authn_cache", "wasm", "wasm_cache",
                "native", "native_cache", "ext_authz", "wasm_cache_base", "native_base",
                "native_base_cache"]
VARIANT_LABEL = {
    "passthrough": "passthrough (no auth filter)",
    "wasm_empty": "empty proxy-wasm filter (the SDK's floor)",
    "jwt_authn": "Envoy jwt_authn, no cache",
    "jwt_authn_cache": "Envoy jwt_authn, jwt_cache_size 100",
    "wasm": "jwt-auth-wasm, no cache",
    "wasm_cache": "jwt-auth-wasm, token_cache 10000",
    "native": "jwt-auth dynamic module (native), no cache",
    "native_cache": "jwt-auth dynamic module (native), token_cache 10000",
    "ext_authz": "ext_authz -> native service (same core)",
    "wasm_cache_base": "jwt-auth-wasm of BENCH_BASE_WASM, token_cache 10000",
    "native_base": "jwt-auth dynamic module of BENCH_BASE_NATIVE, no cache",
    "native_base_cache": "jwt-auth dynamic module of BENCH_BASE_NATIVE, token_cache 10000",
}
NA_CACHE = "n/a (not supported by this build)"

ISSUER = "https://bench.test"
AUDIENCE = "api"

_children = []


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------
# processes


def _cleanup():
    for p in _children:
        stop(p)


def _on_signal(signum, _frame):
    _cleanup()
    sys.exit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def spawn(argv, log_path, stdout=None):
    """Starts a process in its own process group (so stop() ends exactly it)."""
    logf = open(log_path, "wb")
    p = subprocess.Popen(argv, stdout=stdout if stdout is not None else logf,
                         stderr=logf, stdin=subprocess.DEVNULL, start_new_session=True)
    p.log_path = log_path
    _children.append(p)
    return p


def stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    if p in _children:
        _children.remove(p)


def tail(path, lines=25):
    try:
        with open(path, "rb") as f:
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(argv, name):
    """Starts a jwt-auth-bench server on core LOAD_CORE; returns (proc, port)."""
    p = spawn(["taskset", "-c", LOAD_CORE] + argv, os.path.join(RUN_DIR, name + ".log"),
              stdout=subprocess.PIPE)
    line = p.stdout.readline().decode().strip()
    if not line.startswith("listening "):
        stop(p)
        raise RuntimeError("%s did not start: %s\n%s" % (name, line, tail(p.log_path)))
    return p, int(line.split()[1])


# --------------------------------------------------------------------------
# HTTP


def get(port, path="/", headers=None, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def post(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("POST", path, body=b"")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def bearer(token):
    return {"Authorization": "Bearer " + token}


def tampered(token):
    """The same token with one signature character changed (mid-signature,
    so it is never a padding bit)."""
    head, _, sig = token.rpartition(".")
    i = len(sig) // 2
    ch = "A" if sig[i] != "A" else "B"
    return head + "." + sig[:i] + ch + sig[i + 1:]


# --------------------------------------------------------------------------
# Envoy


def route_config():
    return {"name": "bench", "virtual_hosts": [{
        "name": "all", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"},
                    "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}}}]}]}


def static_cluster(name, port):
    return {"name": name, "type": "STATIC", "connect_timeout": "2s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": port}}}}]}]}}


def listener(name, port, auth_filters, hcm_options=None, routes=None):
    """One HTTP listener on 127.0.0.1:port: auth_filters, then the router;
    `routes` (default route_config()) and `hcm_options` override the HTTP
    connection manager's defaults."""
    router = {"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                 "http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name, "codec_type": "AUTO",
        "route_config": routes or route_config(),
        "http_filters": auth_filters + [router],
    }
    hcm.update(hcm_options or {})
    return {"name": name, "address": {"socket_address": {
        "address": "127.0.0.1", "port_value": port}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": hcm}]}]}


def bootstrap(admin_port, listeners, clusters):
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def plugin_config(jwk, token_cache=None, revocation=None):
    provider = {"name": "bench", "issuer": ISSUER, "audiences": [AUDIENCE],
                "jwks": {"keys": [jwk]},
                "claim_to_headers": [{"claim": "sub", "header": "x-user-id"}]}
    if token_cache is not None:
        provider["token_cache"] = {"max_entries": token_cache}
    config = {"realm": "api", "providers": [provider]}
    if revocation is not None:
        config["revocation"] = revocation
    return config


def wasm_filter(wasm_path, plugin, name="jwt_auth"):
    """The wasm filter running `wasm_path`; `name` is also its root_id and
    vm_id (plugins with distinct names get distinct VMs)."""
    return {"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": name, "root_id": name, "failure_policy": "FAIL_CLOSED",
            "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8",
                          "code": {"local": {"filename": wasm_path}}},
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                              "value": json.dumps(plugin)}}}}


def native_filter(plugin, module=NATIVE_MODULE):
    """The native build as a dynamic-module filter (Envoy finds
    lib<name>.so on ENVOY_DYNAMIC_MODULES_SEARCH_PATH, set at start)."""
    name = os.path.basename(module)
    name = name[3:] if name.startswith("lib") else name
    name = name[:-3] if name.endswith(".so") else name
    return {"name": "envoy.filters.http.dynamic_modules", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
        "dynamic_module_config": {"name": name},
        "filter_name": "jwt_auth",
        "filter_config": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                          "value": json.dumps(plugin)}}}


def jwt_authn_filter(jwk, cache):
    provider = {"issuer": ISSUER, "audiences": [AUDIENCE],
                "local_jwks": {"inline_string": json.dumps({"keys": [jwk]})},
                "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}]}
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 100}
    return {"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"bench": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]}}


def ext_authz_filter(authz_port):
    return {"name": "envoy.filters.http.ext_authz", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
        "transport_api_version": "V3",
        "failure_mode_allow": False,
        "http_service": {
            "server_uri": {"uri": "http://127.0.0.1:%d" % authz_port,
                           "cluster": "ext_authz", "timeout": "2s"},
            "authorization_response": {
                "allowed_upstream_headers": {"patterns": [{"exact": "x-user-id"}]},
                "allowed_client_headers": {"patterns": [
                    {"exact": "www-authenticate"}, {"exact": "content-type"}]}}}}}


class Envoy:
    """One Envoy process. By default one listener ("bench", on `port`) with
    `auth_filters`; `listeners` instead gives several, as (name, filters,
    hcm_options, routes) tuples, on `ports` in that order."""

    def __init__(self, name, auth_filters=(), clusters=(), concurrency=1, listeners=None,
                 balanced=False):
        self.name = name
        listeners = listeners or [("bench", list(auth_filters), None, None)]
        self.ports = [free_port() for _ in listeners]
        self.port = self.ports[0]
        self.admin_port = free_port()
        cfg = bootstrap(self.admin_port, [
            listener(lname, port, filters, hcm_options, routes)
            for (lname, filters, hcm_options, routes), port in zip(listeners, self.ports)],
            list(clusters))
        if balanced:
            # Each new connection goes to the worker with the fewest.
            for lst in cfg["static_resources"]["listeners"]:
                lst["connection_balance_config"] = {"exact_balance": {}}
        self.config_path = os.path.join(RUN_DIR, name + ".json")
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=1)
        self.proc = spawn(["taskset", "-c", ENVOY_CORE, ENVOY, "-c", self.config_path,
                           "--concurrency", str(concurrency), "--disable-hot-restart",
                           "-l", "warning"],
                          os.path.join(RUN_DIR, name + ".envoy.log"))

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, body = get(self.admin_port, "/ready", timeout=1)
                if status == 200 and b"LIVE" in body:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def log_tail(self, lines=25):
        return tail(self.proc.log_path, lines)

    def stat(self, name):
        _, body = get(self.admin_port, "/stats?filter=%s" % name)
        for line in body.decode().splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                try:
                    return int(value)
                except ValueError:
                    return None
        return None

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def cpu_seconds(self):
        try:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # utime and stime: fields 14 and 15 of stat(5), in clock ticks
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def allocated_bytes(self):
        _, body = get(self.admin_port, "/memory")
        return int(json.loads(body)["allocated"])

    def stop(self):
        stop(self.proc)


# --------------------------------------------------------------------------
# wrk

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def wrk(port, token, seconds, connections, headers=()):
    """`headers`: more request headers, as "name: value" lines."""
    argv = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", "-c%d" % connections,
            "-d%ds" % seconds, "--latency", "--timeout", "5s"]
    if token:
        argv += ["-H", "Authorization: Bearer " + token]
    for header in headers:
        argv += ["-H", header]
    argv.append("http://127.0.0.1:%d/" % port)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    res = {"rps": None, "p50": None, "p99": None, "non2xx": 0, "errors": 0, "raw": out}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            res["rps"] = float(s.split()[1])
        elif s.startswith("50%"):
            res["p50"] = _ms(s.split()[1])
        elif s.startswith("99%"):
            res["p99"] = _ms(s.split()[1])
        elif s.startswith("Non-2xx or 3xx responses:"):
            res["non2xx"] = int(s.split(":")[1])
        elif s.startswith("Socket errors:"):
            res["errors"] = sum(int(x) for x in re.findall(r"\d+", s))
    return res


# --------------------------------------------------------------------------
# tokens and probes


def tool(*args):
    r = subprocess.run([TOOL] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def mint(algs, jtis=0):
    code, out, err = tool("tokens", *algs, "--jtis", str(jtis))
    if code != 0:
        raise RuntimeError("minting tokens failed: " + err)
    return json.loads(out)


def token_cache_supported(jwk):
    """Whether this build's config compiler accepts `token_cache` (the wasm is
    built from the same tree). Returns (supported, error text)."""
    path = os.path.join(RUN_DIR, "probe-token-cache.json")
    with open(path, "w") as f:
        json.dump(plugin_config(jwk, token_cache=10000), f)
    code, _, err = tool("probe-config", path)
    if code == 0:
        return True, ""
    err = err.strip().replace("jwt-auth-bench: ", "")
    return False, err.split(", expected")[0]


def sanity(envoy, token, needs_auth):
    """A valid token gets 200; when the variant authenticates, a missing token
    and a tampered signature get 401. Returns None or what went wrong."""
    checks = [("valid token", bearer(token), 200)]
    if needs_auth:
        checks += [("no token", {}, 401), ("tampered signature", bearer(tampered(token)), 401)]
    for what, headers, want in checks:
        try:
            status, body = get(envoy.port, "/", headers)
        except OSError as e:
            return "%s: %s" % (what, e)
        if status != want:
            return "%s: got %d, want %d (%s)" % (what, status, want, body[:120])
    return None


# --------------------------------------------------------------------------
# machine


def machine_info():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    envoy_version = subprocess.run([ENVOY, "--version"], capture_output=True,
                                   text=True).stdout.strip()
    m = re.search(r"/(\d+\.\d+\.\d+)/", envoy_version)
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "core", "filter"],
                           capture_output=True, text=True).stdout.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    wrk_version = (wrk_version.stdout + wrk_version.stderr).strip().splitlines()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "cpu": model,
        "kernel": os.uname().release,
        "envoy": m.group(1) if m else envoy_version,
        "wrk": wrk_version[0].split(" Copyright")[0] if wrk_version else "wrk",
        "commit": git + (" + uncommitted changes in core/ or filter/" if dirty else ""),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def snapshot_wasm():
    """Copies the wasm so a concurrent rebuild cannot change it mid-run."""
    dst = os.path.join(RUN_DIR, "jwt_auth_wasm.wasm")
    shutil.copyfile(WASM, dst)
    with open(dst, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return dst, os.path.getsize(dst), digest


# --------------------------------------------------------------------------
# the main benchmark


def fmt_num(v, spec):
    return "-" if v is None else format(v, spec)


def measure(envoy, token, args):
    """Warm-up then the measured run. Also Envoy's CPU time per request
    (user + system, all threads): unlike req/s it barely moves when other
    work competes for the cores, so it is the steadier figure on a busy
    machine."""
    wrk(envoy.port, token, args.warmup, args.connections)
    return wrk_cpu(envoy, token, args.seconds, args.connections)


def wrk_cpu(envoy, token, seconds, connections, port=None, headers=()):
    """One wrk run against `envoy` (its first listener unless `port`), plus
    Envoy's CPU time per request."""
    before = envoy.cpu_seconds()
    res = wrk(port or envoy.port, token, seconds, connections, headers)
    after = envoy.cpu_seconds()
    m = re.search(r"(\d+) requests in", res["raw"])
    res["cpu_us"] = None
    if m and int(m.group(1)) and before is not None and after is not None:
        res["cpu_us"] = (after - before) * 1e6 / int(m.group(1))
    return res


def auth_filters(variant, jwk, wasm_path=WASM, cache_ok=True):
    """The HTTP filters of a variant in front of the router, for every
    variant but ext_authz (which also needs its service). `cache_ok`: the
    wasm build knows `token_cache` (a build without it gets none)."""
    if variant == "passthrough":
        return []
    if variant == "wasm_empty":
        return [wasm_filter(EMPTY_WASM, {})]
    if variant in ("jwt_authn", "jwt_authn_cache"):
        return [jwt_authn_filter(jwk, cache=variant == "jwt_authn_cache")]
    size = 10000 if variant.endswith("_cache") or variant == "wasm_cache_base" else 0
    if variant in ("native", "native_cache"):
        return [native_filter(plugin_config(jwk, token_cache=size))]
    if variant in ("native_base", "native_base_cache"):
        return [native_filter(plugin_config(jwk, token_cache=size), module=BASE_NATIVE_NAME)]
    if variant in ("wasm", "wasm_cache", "wasm_cache_base"):
        return [wasm_filter(wasm_path, plugin_config(jwk, token_cache=size if cache_ok else None))]
    raise ValueError(variant)


def run_variant(variant, alg, info, args, wasm_path, cache_ok):
    """Starts one variant, checks it, loads it. Returns a result row."""
    jwk, token = info["jwk"], info["token"]
    name = "%s-%s" % (variant, alg)
    row = {"variant": variant, "alg": alg, "note": ""}
    authz = None
    clusters = []
    if variant == "wasm_empty":
        row["alg"] = "-"
    if variant in ("wasm_cache", "wasm_cache_base") and not cache_ok:
        row["note"] = NA_CACHE
        return row
    if variant == "wasm_cache_base" and not BASE_WASM:
        row["note"] = "n/a (BENCH_BASE_WASM not set)"
        return row
    if variant in ("native_base", "native_base_cache") and not BASE_NATIVE:
        row["note"] = "n/a (BENCH_BASE_NATIVE not set)"
        return row
    if variant == "wasm" and not cache_ok:
        row["note"] = "build has no token_cache: no cache"
    if variant != "ext_authz":
        filters = auth_filters(variant, jwk, BASE_WASM if variant == "wasm_cache_base" else wasm_path,
                               cache_ok)
    else:
        path = os.path.join(RUN_DIR, name + ".plugin.json")
        with open(path, "w") as f:
            json.dump(plugin_config(jwk), f)
        authz, authz_port = start_server([TOOL, "ext-authz", "--config", path, "--port", "0"],
                                         name + ".authz")
        filters = [ext_authz_filter(authz_port)]
        clusters = [static_cluster("ext_authz", authz_port)]
        row["note"] = "service on core 1 with wrk"
    envoy = Envoy(name, filters, clusters)
    try:
        if not envoy.wait_ready():
            log_text = envoy.log_tail()
            if variant == "wasm_cache" and "token_cache" in log_text:
                row["note"] = NA_CACHE
            else:
                row["note"] = "FAILED: Envoy did not start (%s)" % envoy.proc.log_path
                log(log_text)
            return row
        problem = sanity(envoy, token, needs_auth=variant not in ("passthrough", "wasm_empty"))
        if problem:
            if variant == "jwt_authn" or variant == "jwt_authn_cache":
                row["note"] = "n/a (sanity check failed: %s)" % problem
            else:
                row["note"] = "FAILED sanity check: %s" % problem
            log(envoy.log_tail(10))
            return row
        res = measure(envoy, token, args)
        if envoy.proc.poll() is not None:
            row["note"] = "FAILED: Envoy exited under load"
            return row
        row.update({k: res[k] for k in ("rps", "p50", "p99", "cpu_us")})
        if res["non2xx"] or res["errors"]:
            row["note"] = (row["note"] + "; " if row["note"] else "") + \
                "%d non-2xx, %d socket errors" % (res["non2xx"], res["errors"])
        return row
    finally:
        envoy.stop()
        if authz is not None:
            stop(authz)


def bench(args):
    algs = [a for a in args.algs.split(",") if a]
    variants = [v for v in args.variants.split(",") if v]
    for v in variants:
        if v not in ALL_VARIANTS:
            sys.exit("unknown variant %r (one of %s)" % (v, ",".join(ALL_VARIANTS)))
    for a in algs:
        if a not in ALL_ALGS:
            sys.exit("unknown algorithm %r (one of %s)" % (a, ",".join(ALL_ALGS)))
    machine = machine_info()
    wasm_path, wasm_size, wasm_digest = snapshot_wasm()
    machine["wasm"] = "%d bytes, sha256 %s" % (wasm_size, wasm_digest)
    if any(v.startswith("native") for v in variants):
        if not os.path.exists(NATIVE_MODULE):
            sys.exit("native module not found at %s (make build-native)" % NATIVE_MODULE)
        # A copy, as for the wasm; Envoy loads it by name from RUN_DIR.
        native_copy = os.path.join(RUN_DIR, os.path.basename(NATIVE_MODULE))
        shutil.copyfile(NATIVE_MODULE, native_copy)
        with open(native_copy, "rb") as f:
            native_digest = hashlib.sha256(f.read()).hexdigest()
        os.environ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = RUN_DIR
        machine["native"] = "%d bytes, sha256 %s" % (os.path.getsize(native_copy), native_digest)
    if any(v.startswith("native_base") for v in variants) and BASE_NATIVE:
        base_copy = os.path.join(RUN_DIR, BASE_NATIVE_NAME)
        shutil.copyfile(BASE_NATIVE, base_copy)
        with open(base_copy, "rb") as f:
            base_digest = hashlib.sha256(f.read()).hexdigest()
        os.environ["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"] = RUN_DIR
        machine["native base"] = "%d bytes, sha256 %s" % (os.path.getsize(base_copy), base_digest)
    tokens = mint(algs or ALL_ALGS)["algs"]
    cache_ok, cache_err = token_cache_supported(tokens[(algs or ALL_ALGS)[0]]["jwk"])
    if not cache_ok:
        log("token_cache: not supported by this build (%s)" % cache_err)
    log("Envoy on core %s (--concurrency 1); wrk -t1 -c%d on core %s; %ds per run after a %ds "
        "warm-up" % (ENVOY_CORE, args.connections, LOAD_CORE, args.seconds, args.warmup))

    first_alg = (algs or ALL_ALGS)[0]
    # passthrough[k]: the run before round k (k = rounds: the final one)
    passthrough = []

    def run_passthrough(tag):
        row = run_variant("passthrough", first_alg, tokens[first_alg], args, wasm_path, cache_ok)
        log("  passthrough (%s): %s req/s  p50 %s ms  p99 %s ms  %s us CPU/req  %s" % (
            tag, fmt_num(row.get("rps"), ".0f"), fmt_num(row.get("p50"), ".2f"),
            fmt_num(row.get("p99"), ".2f"), fmt_num(row.get("cpu_us"), ".1f"), row["note"]))
        passthrough.append(row)

    # The empty filter does not depend on the algorithm: one row.
    order = [(v, a) for v in variants if v != "passthrough"
             for a in (algs[:1] if v == "wasm_empty" else algs)]
    runs = {}
    for rnd in range(args.rounds):
        run_passthrough("start" if args.rounds == 1 else "before round %d" % (rnd + 1))
        for variant, alg in order:
            row = run_variant(variant, alg, tokens[alg], args, wasm_path, cache_ok)
            row["round"] = rnd
            log("  %-16s %-6s %s req/s  p50 %s ms  p99 %s ms  %s us CPU/req  %s" % (
                variant, row["alg"], fmt_num(row.get("rps"), ".0f"), fmt_num(row.get("p50"), ".2f"),
                fmt_num(row.get("p99"), ".2f"), fmt_num(row.get("cpu_us"), ".1f"), row["note"]))
            runs.setdefault((variant, alg), []).append(row)
    run_passthrough("end")

    # Each run is compared with the passthrough runs just before and just
    # after its round, so a machine that gets busier or quieter during the
    # benchmark moves both sides of the ratio.
    pt_ok = [r for r in passthrough if r.get("rps")]
    for rnd in range(args.rounds):
        around = [r["rps"] for r in passthrough[rnd:rnd + 2] if r.get("rps")]
        local = statistics.mean(around) if around else None
        for k in order:
            for r in runs[k]:
                if r["round"] == rnd:
                    r["ratio"] = r["rps"] / local if local and r.get("rps") else None
    # This filter's rows are also given against the empty proxy-wasm filter
    # of the same round: the floor any filter on the SDK starts from.
    empty_key = next((k for k in order if k[0] == "wasm_empty"), None)
    for rnd in range(args.rounds):
        empty = next((r.get("rps") for r in runs.get(empty_key, []) if r["round"] == rnd), None)
        for k in order:
            if not k[0].startswith("wasm_cache") and k[0] != "wasm":
                continue
            for r in runs[k]:
                if r["round"] == rnd and empty and r.get("rps"):
                    r["vs_empty"] = r["rps"] / empty
    rows = [median_row(runs[k]) for k in order]
    for row, k in zip(rows, order):
        ratios = [r["vs_empty"] for r in runs[k] if r.get("vs_empty")]
        if ratios:
            row["vs_empty"] = statistics.median(ratios)

    base = None
    if pt_ok:
        base = dict(median_row(pt_ok))
        base["rps"] = statistics.median(r["rps"] for r in pt_ok)
        cpu = [r["cpu_us"] for r in pt_ok if r.get("cpu_us")]
        base["cpu_us"] = statistics.median(cpu) if cpu else None
    pt_row = dict(variant="passthrough", alg="-", ratio=1.0 if base else None,
                  note="median of %d runs (before each round and at the end)" % len(pt_ok),
                  **{k: (base or {}).get(k) for k in ("rps", "p50", "p99", "cpu_us")})
    drift = None
    if len(pt_ok) >= 2:
        a, b = pt_ok[0]["rps"], pt_ok[-1]["rps"]
        drift = ("passthrough runs: %s req/s (first to last %+.1f%%); each ratio is against "
                 "the mean of the passthrough runs just before and after its round") % (
            ", ".join("%.0f" % r["rps"] for r in pt_ok), 100.0 * (b - a) / a)
    table = markdown_table([pt_row] + rows)
    log("")
    log(table)
    os.makedirs(RESULTS, exist_ok=True)
    chart = draw_chart(rows, algs, variants)
    doc = results_doc(machine, args, table, drift, cache_ok, cache_err, chart)
    if args.revocation:
        doc += "\n" + revocation(args, machine=machine, wasm_path=wasm_path)
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write(doc)
    log("\nwrote bench/results/latest.md" + (" and bench/results/latest.png" if chart else ""))


def median_row(runs):
    """The run with the median ratio to passthrough (req/s when there is no
    ratio; the lower middle for an even count); a variant that never produced
    a number keeps its first run's note."""
    measured = [r for r in runs if r.get("rps")]
    if not measured:
        return runs[0]
    key = (lambda r: r["ratio"]) if all(r.get("ratio") for r in measured) else \
        (lambda r: r["rps"])
    measured.sort(key=key)
    row = dict(measured[(len(measured) - 1) // 2])
    if len(runs) > 1 and row.get("variant") != "passthrough":
        row["note"] = ("%s; " % row["note"] if row.get("note") else "") + \
            "median of %d rounds (ratios %s)" % (
                len(measured), ", ".join(fmt_num(r.get("ratio"), ".2f") for r in measured))
    return row


def markdown_table(rows):
    out = ["| variant | alg | req/s | p50 ms | p99 ms | ratio to passthrough "
           "| ratio to the empty filter (same round) | Envoy CPU us/req | note |",
           "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            VARIANT_LABEL.get(r["variant"], r["variant"]), r["alg"],
            fmt_num(r.get("rps"), ".0f"), fmt_num(r.get("p50"), ".2f"),
            fmt_num(r.get("p99"), ".2f"), fmt_num(r.get("ratio"), ".2f"),
            fmt_num(r.get("vs_empty"), ".2f") if r.get("vs_empty") else "",
            fmt_num(r.get("cpu_us"), ".1f"), r.get("note", "")))
    return "\n".join(out)


def machine_lines(machine):
    return [
        "- date: %s" % machine["date"],
        "- machine: %s cores (`nproc`), %s, Linux %s" % (
            machine["nproc"], machine["cpu"], machine["kernel"]),
        "- load average at start: %s, at end: %s (1/5/15 min; the two cores are shared with "
        "any other work on the machine)" % (" ".join(machine["loadavg"]), " ".join(
            open("/proc/loadavg").read().split()[:3])),
        "- Envoy %s (V8), %s" % (machine["envoy"], machine["wrk"]),
        "- filter: commit %s, wasm %s" % (machine["commit"], machine.get("wasm", "?")),
    ] + ["- %s module: %s" % (key, machine[key]) for key in ("native", "native base")
         if key in machine]


def results_doc(machine, args, table, drift, cache_ok, cache_err, chart):
    lines = ["# jwt-auth-wasm benchmark", ""] + machine_lines(machine) + [
        "- setup: one Envoy worker (`--concurrency 1`) pinned to core %s (`taskset -c %s`), "
        "route `direct_response` 200; load `taskset -c %s wrk -t1 -c%d -d%ds --latency` after "
        "a %ds warm-up; the ext_authz service (tokio current_thread + hyper 1, this project's "
        "`Policy` + `decide`) shares core %s with wrk (2 cores only)" % (
            ENVOY_CORE, ENVOY_CORE, LOAD_CORE, args.connections, args.seconds, args.warmup,
            LOAD_CORE),
        "- rounds: %d%s" % (args.rounds, " (each row is the run with the median ratio)"
                            if args.rounds > 1 else ""),
        "- every variant is checked before loading: valid token 200, no token 401, "
        "tampered signature 401",
        "- tokens: testkit keys (HS256 32-byte secret, RSA 2048, P-256, Ed25519), exp now + 1 day",
    ]
    if drift:
        lines.append("- " + drift)
    if not cache_ok:
        lines.append("- `token_cache` is not supported by this build (%s); the filter rows "
                     "run without the key" % cache_err.replace("\n", " "))
    lines += ["", table, ""]
    if chart:
        lines += ["![ratio to passthrough](latest.png)", ""]
    return "\n".join(lines) + "\n"


def draw_chart(rows, algs, variants):
    """Clustered bars: ratio to passthrough per algorithm and variant."""
    gnuplot = shutil.which("gnuplot")
    shown = [v for v in variants if v not in ("passthrough", "wasm_empty")]
    floor = next((r.get("ratio") for r in rows if r["variant"] == "wasm_empty"), None)
    if not gnuplot or not shown or not algs:
        return None
    data = os.path.join(RUN_DIR, "chart.dat")
    by = {(r["variant"], r["alg"]): r.get("ratio") for r in rows}
    with open(data, "w") as f:
        # columns: alg, one bar height per variant (0 when n/a), one label each
        for alg in algs:
            vals = [by.get((v, alg)) for v in shown]
            f.write(" ".join([alg] + ["%.4f" % x if x is not None else "0" for x in vals] +
                             ["%.2f" % x if x is not None else "n/a" for x in vals]) + "\n")
    png = os.path.join(RESULTS, "latest.png")
    terms = subprocess.run([gnuplot, "-e", "set terminal"], capture_output=True, text=True)
    term = "pngcairo size 1000,600 font 'Sans,10'" if "pngcairo" in (
        terms.stdout + terms.stderr) else "png size 1000,600"
    titles = {"jwt_authn": "Envoy jwt_authn", "jwt_authn_cache": "Envoy jwt_authn + cache",
              "wasm": "jwt-auth-wasm", "wasm_cache": "jwt-auth-wasm + token_cache",
              "native": "dynamic module (native)", "native_cache": "dynamic module + token_cache",
              "ext_authz": "ext_authz + native service",
              "wasm_cache_base": "baseline module + token_cache",
              "native_base": "baseline dynamic module",
              "native_base_cache": "baseline dynamic module + token_cache"}
    n = len(shown)
    bars = []
    labels = []
    for i, v in enumerate(shown):
        col = i + 2
        head = "'%s'" % data if i == 0 else "''"
        bars.append("%s using %d%s title \"%s\"" % (
            head, col, ":xtic(1)" if i == 0 else "", titles[v]))
        # bar i of a cluster sits at x = row + (i - (n-1)/2) / (n + gap)
        labels.append("'' using ($0 + (%d - %g) / %d.0):%d:%d "
                      "with labels rotate left offset 0,0.4 font ',8' notitle" % (
                          i, (n - 1) / 2.0, n + 1, col, col + n))
    script = "\n".join([
        "set terminal %s" % term,
        "set termoption noenhanced",
        "set output '%s'" % png,
        "set title 'Requests/s relative to the same Envoy without an auth filter "
        "(1 worker on 1 core, direct response)'",
        "set style data histograms",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set key outside below center horizontal",
        "set yrange [0:%.2f]" % max([1.1] + [x + 0.12 for x in by.values() if x is not None]),
        "set ytics 0.1",
        "set grid ytics",
        "set ylabel 'ratio to passthrough'",
        "set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5",
        "set label 'passthrough = 1' at graph 0.005, first 1.02 font ',8'",
    ] + ([
        "set arrow from graph 0, first %.4f to graph 1, first %.4f nohead dt 3 lw 1.5 lc rgb 'gray30'"
        % (floor, floor),
        "set label 'empty proxy-wasm filter = %.2f' at graph 0.005, first %.4f font ',8'"
        % (floor, floor + 0.02),
    ] if floor else []) + [
        "plot " + ", ".join(bars + labels),
    ])
    r = subprocess.run([gnuplot], input=script, capture_output=True, text=True)
    if r.returncode != 0:
        log("gnuplot failed: " + r.stderr)
        return None
    return png


# --------------------------------------------------------------------------
# revocation scale


def percentile(values, p):
    s = sorted(values)
    if not s:
        return None
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def revocation(args, machine, wasm_path=None):
    """Runs the revocation-scale benchmark, writes bench/results/revocation.md
    and returns its markdown section.

    A baseline proxy with an empty list stays up the whole time; each size's
    proxy is loaded in turns with it (baseline, size, baseline, size, ...) so
    that the ratio compares runs a few seconds apart on a shared machine."""
    sizes = sorted(set(int(s) for s in args.sizes.split(",") if s.strip()))
    if wasm_path is None:
        wasm_path, size, digest = snapshot_wasm()
        machine["wasm"] = "%d bytes, sha256 %s" % (size, digest)
    minted = mint(["HS256"], jtis=args.trials)["algs"]["HS256"]
    jwk, token = minted["jwk"], minted["token"]
    poll_ms = 1000
    rev = {"cluster": "revocation_feed", "authority": "revocation-feed",
           "path": "/v1/revocations", "poll_interval_ms": poll_ms,
           "timeout_ms": args.feed_timeout_ms, "max_body_bytes": 256 << 20,
           # The default (5,000,000) refuses a larger paged snapshot.
           "max_pending_entries": max(5000000, 2 * max(sizes))}
    plugin = plugin_config(jwk, revocation=rev)
    log("revocation: sizes %s, HS256, no token cache, poll_interval_ms %d, timeout_ms %d; "
        "%d alternating runs against the empty list; %d revoke-to-refused trials per size" % (
            sizes, poll_ms, args.feed_timeout_ms, args.rev_pairs, args.trials))

    def proxy(name, feed_port, concurrency=1):
        return Envoy(name, [wasm_filter(wasm_path, plugin)],
                     [static_cluster("revocation_feed", feed_port)], concurrency=concurrency)

    def bring_up(envoy, feed_port, n, row):
        """Waits for Envoy and the sync, reads memory, checks the token; returns
        False (with a note in row) when something failed."""
        if not envoy.wait_ready():
            row["note"] = "FAILED: Envoy did not start (%s)" % envoy.proc.log_path
            log(envoy.log_tail())
            return False
        t0 = time.time()
        held, why = wait_synced(envoy, n, args.sync_timeout)
        row["snapshot_bytes"] = feed_stats(feed_port).get("snapshot_bytes")
        if why:
            row["note"] = "FAILED to sync (%s entries held): %s" % (held, why)
            log("  %8d entries: %s" % (n, row["note"]))
            return False
        row["sync_s"] = time.time() - t0
        row["pages"] = feed_stats(feed_port).get("pages")
        time.sleep(0.5)  # every VM has synced (sync_interval_ms 100)
        row["load_ms"] = apply_ms(envoy)
        time.sleep(3)  # let a late worker and the allocator settle
        row["rss_kib"] = envoy.rss_kib()
        row["allocated"] = envoy.allocated_bytes()
        problem = sanity(envoy, token, needs_auth=True)
        if problem:
            row["note"] = "FAILED sanity check: " + problem
            return False
        return True

    def rss_with_two_workers(n, feed_port, row):
        """The same proxy at --concurrency 2: the RSS difference is what one
        more worker VM holding the set costs."""
        envoy = proxy("revocation-%d-c2" % n, feed_port, concurrency=2)
        try:
            if envoy.wait_ready() and wait_synced(envoy, n, args.sync_timeout)[1] is None:
                time.sleep(3)
                row["rss2_kib"] = envoy.rss_kib()
        finally:
            envoy.stop()

    results = []
    base_row = {"entries": 0}
    base_feed, base_feed_port = start_server(
        [TOOL, "feed", "--port", "0", "--entries", "0"], "revocation-feed-0")
    base = proxy("revocation-0", base_feed_port)
    try:
        if not bring_up(base, base_feed_port, 0, base_row):
            results.append(base_row)
            return finish_revocation(results, poll_ms, args, machine)
        rss_with_two_workers(0, base_feed_port, base_row)
        wrk(base.port, token, args.warmup, args.connections)
        base_runs = []
        for n in [x for x in sizes if x > 0]:
            row = {"entries": n}
            results.append(row)
            feed, feed_port = start_server(
                [TOOL, "feed", "--port", "0", "--entries", str(n)], "revocation-feed-%d" % n)
            envoy = proxy("revocation-%d" % n, feed_port)
            try:
                if not bring_up(envoy, feed_port, n, row):
                    continue
                # Before the trials and the 10k delta change the list, so
                # both proxies hold the same n entries.
                rss_with_two_workers(n, feed_port, row)
                wrk(envoy.port, token, args.warmup, args.connections)
                pairs = []
                for k in range(args.rev_pairs):
                    # ABBA order: neither proxy always runs first
                    if k % 2 == 0:
                        r0 = wrk_cpu(base, token, args.seconds, args.connections)
                        rn = wrk_cpu(envoy, token, args.seconds, args.connections)
                    else:
                        rn = wrk_cpu(envoy, token, args.seconds, args.connections)
                        r0 = wrk_cpu(base, token, args.seconds, args.connections)
                    base_runs.append(r0)
                    if r0["rps"] and rn["rps"]:
                        rn["ratio"] = rn["rps"] / r0["rps"]
                        if r0.get("cpu_us") and rn.get("cpu_us"):
                            rn["cpu_ratio"] = rn["cpu_us"] / r0["cpu_us"]
                        pairs.append(rn)
                    if rn["non2xx"] or rn["errors"]:
                        row["note"] = "%d non-2xx, %d socket errors" % (
                            rn["non2xx"], rn["errors"])
                if pairs:
                    pairs.sort(key=lambda r: r["ratio"])
                    mid = pairs[(len(pairs) - 1) // 2]
                    row.update({k: mid[k] for k in ("rps", "p50", "p99", "ratio")})
                    row["ratios"] = [r["ratio"] for r in pairs]
                    cpu = sorted(r["cpu_ratio"] for r in pairs if r.get("cpu_ratio"))
                    if cpu:
                        row["cpu_ratio"] = cpu[(len(cpu) - 1) // 2]
                log("  %8d entries: synced in %.1fs (%s continuation pages), RSS %.1f MiB, "
                    "%s req/s, ratio to 0: %s" % (
                    n, row["sync_s"], row.get("pages"), row["rss_kib"] / 1024.0,
                    fmt_num(row.get("rps"), ".0f"),
                    ", ".join("%.3f" % x for x in row.get("ratios", []))))
                if args.trials:
                    row["delays"] = revoke_delays(envoy, feed_port, minted["jti_tokens"], poll_ms)
                row["delta_ms"] = delta_apply_ms(envoy, feed_port, DELTA_ENTRIES)
            finally:
                envoy.stop()
                stop(feed)
        if 0 in sizes:
            if not base_runs:
                base_runs = [wrk(base.port, token, args.seconds, args.connections)
                             for _ in range(args.rev_pairs)]
            base_runs = [r for r in base_runs if r["rps"]]
            if base_runs:
                base_runs.sort(key=lambda r: r["rps"])
                mid = base_runs[(len(base_runs) - 1) // 2]
                base_row.update({k: mid[k] for k in ("rps", "p50", "p99")})
                base_row["ratio"] = 1.0
                base_row["cpu_ratio"] = 1.0
            log("  %8d entries: RSS %.1f MiB, %s req/s (median of %d runs)" % (
                0, base_row["rss_kib"] / 1024.0, fmt_num(base_row.get("rps"), ".0f"),
                len(base_runs)))
            if args.trials:
                base_row["delays"] = revoke_delays(base, base_feed_port, minted["jti_tokens"],
                                                   poll_ms)
        base.stop()
    finally:
        base.stop()
        stop(base_feed)
    results.insert(0, base_row)
    if 0 not in sizes:
        base_row["note"] = "baseline only"
    return finish_revocation(results, poll_ms, args, machine)


def finish_revocation(results, poll_ms, args, machine):
    section = revocation_doc(results, poll_ms, args)
    if args.latency_seconds > 0:
        section += "\n" + revocation_latency(args, machine)
    log("")
    log(section)
    os.makedirs(RESULTS, exist_ok=True)
    doc = "# jwt-auth-wasm revocation benchmark\n\n" + "\n".join(
        machine_lines(machine)) + "\n\n" + section
    with open(os.path.join(RESULTS, "revocation.md"), "w") as f:
        f.write(doc)
    log("wrote bench/results/revocation.md")
    return section


ASYNC_BODY_LIMIT = "buffer size limit for async client response body has been exceeded"


def wait_synced(envoy, n, timeout):
    """Waits until the filter's gauge shows n revoked entries held (and, for
    n = 0, one successful fetch). Returns (gauge value, why it stopped early)."""
    t0 = time.time()
    held = None
    while time.time() - t0 < timeout:
        held = envoy.stat("wasmcustom.jwt_auth.revocation.entries")
        if held is not None and held >= n and (n > 0 or envoy_synced(envoy)):
            return held, None
        if ASYNC_BODY_LIMIT in envoy.log_tail(200):
            return held, "Envoy dropped the snapshot: it is over the async HTTP client's " \
                         "response body limit (about 32 MiB in Envoy 1.40)"
        if "memory allocation of" in envoy.log_tail(200):
            return held, "a VM of the filter ran out of memory (wasm linear memory is " \
                         "capped at 1 GiB per VM in Envoy)"
        if envoy.proc.poll() is not None:
            return held, "Envoy exited"
        time.sleep(0.2)
    return held, "timed out after %ds" % timeout


DELTA_ENTRIES = 10000


def apply_ms(envoy):
    """The filter's own measure of its last sync that applied entries, in a
    VM that is not the poller (host clock, around decoding the shared data
    and applying it to the worker's set)."""
    us = envoy.stat("wasmcustom.jwt_auth.revocation.last_apply_us")
    return None if us is None else us / 1000.0


def delta_apply_ms(envoy, feed_port, count):
    """Revokes `count` jtis at once (one delta) and returns how long a
    worker took to apply it."""
    held = envoy.stat("wasmcustom.jwt_auth.revocation.entries") or 0
    status, _ = post(feed_port, "/admin/revoke?jti=bulk-%d&count=%d" % (random.randrange(1 << 30), count))
    if status != 200:
        return None
    deadline = time.time() + 15
    while time.time() < deadline:
        now = envoy.stat("wasmcustom.jwt_auth.revocation.entries") or 0
        if now >= held + count:
            time.sleep(0.5)  # the other VM syncs within sync_interval_ms
            return apply_ms(envoy)
        time.sleep(0.1)
    return None


def feed_stats(port):
    try:
        return json.loads(get(port, "/admin/stats")[1])
    except (OSError, ValueError):
        return {}


def envoy_synced(envoy):
    ok = envoy.stat("wasmcustom.jwt_auth.revocation.fetch_ok")
    return ok is not None and ok > 0


def revoke_delays(envoy, feed_port, jti_tokens, poll_ms):
    """Revokes one jti at a random moment, polls with its token every 10 ms
    until 401; returns the delays in ms (None for a trial that timed out)."""
    delays = []
    conn = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=5)
    for i, t in enumerate(jti_tokens):
        headers = bearer(t["token"])
        conn.request("GET", "/", headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            log("  trial %d: token refused before revocation (%d)" % (i, r.status))
            continue
        time.sleep(random.uniform(0, poll_ms / 1000.0))
        start = time.monotonic()
        status, _ = post(feed_port, "/admin/revoke?jti=" + t["jti"])
        if status != 200:
            raise RuntimeError("feed refused the revocation: %d" % status)
        k = 0
        delay = None
        while time.monotonic() - start < 10 * poll_ms / 1000.0:
            conn.request("GET", "/", headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status == 401:
                delay = (time.monotonic() - start) * 1000.0
                break
            k += 1
            pause = start + k * 0.010 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        delays.append(delay)
    conn.close()
    ok = [d for d in delays if d is not None]
    log("  revoke-to-refused: %d trials, p50 %s ms, p99 %s ms, max %s ms" % (
        len(delays), fmt_num(percentile(ok, 50), ".0f"), fmt_num(percentile(ok, 99), ".0f"),
        fmt_num(max(ok) if ok else None, ".0f")))
    return delays


def revocation_doc(results, poll_ms, args):
    base = next((r for r in results if r["entries"] == 0 and r.get("rss_kib")), None)
    lines = [
        "## Revocation scale", "",
        "Envoy with the filter (HS256, no token cache) and a static feed "
        "(`jwt-auth-bench feed`, jtis of 32 hex characters, the `reset` snapshot in pages of "
        "50,000 entries, about 3 MB each; snapshot MB is the total) on core %s; "
        "`poll_interval_ms` %d, `timeout_ms` %d. req/s: a proxy with the empty list stays up "
        "and is loaded in turns with each size's proxy (%d pairs of %d s runs); the ratio is "
        "the median of the pairs' ratios; CPU/req vs 0 is the same for Envoy's CPU time per "
        "request (1.0 = no cost; steadier than req/s on a shared machine). Synced: the gauge "
        "`wasmcustom.jwt_auth.revocation.entries` shows every entry. RSS: Envoy's VmRSS "
        "(`--concurrency 1`: main thread VM + 1 worker VM) 3 s after that; growth per 100k is "
        "against the empty list. \"2 workers\": the same proxy at `--concurrency 2` (not "
        "loaded, started once the first has synced, before the revoke trials and the 10k "
        "delta add to the list); that difference less the same difference at 0 entries is "
        "what one more "
        "worker costs per 100k entries. tcmalloc allocated (admin `/memory`) excludes the V8 "
        "wasm heaps. Revoke to 401: one jti revoked at a random moment, its token polled "
        "every 10 ms until 401, %d trials per size (goal: p99 <= poll interval + 250 ms). "
        "Load and 10k delta: the filter's gauge `revocation.last_apply_us` (host clock around "
        "a worker VM's sync: reading the shared data, decoding, applying), after the first "
        "sync and after %d jtis revoked at once (goal for the delta: <= 20 ms)." % (
            LOAD_CORE, poll_ms, args.feed_timeout_ms, args.rev_pairs, args.seconds,
            args.trials, DELTA_ENTRIES), "",
        "| revoked jtis | snapshot MB | synced after s | req/s | ratio to 0 | CPU/req vs 0 "
        "| p50 ms | p99 ms "
        "| RSS MiB | RSS growth per 100k MiB | RSS 2 workers MiB | per worker per 100k MiB "
        "| tcmalloc allocated MiB | load ms | 10k delta ms | revoke to 401 p50 / p99 / max ms "
        "| note |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]

    def mib(kib):
        return kib / 1024.0 if kib else None

    for r in results:
        ratio = r.get("ratio")
        growth = per_worker = None
        if base and r.get("rss_kib") and base.get("rss_kib") and r["entries"]:
            per100k = r["entries"] / 100000.0
            growth = (r["rss_kib"] - base["rss_kib"]) / 1024.0 / per100k
            if r.get("rss2_kib") and base.get("rss2_kib"):
                worker_n = r["rss2_kib"] - r["rss_kib"]
                worker_0 = base["rss2_kib"] - base["rss_kib"]
                per_worker = (worker_n - worker_0) / 1024.0 / per100k
        delays = r.get("delays") or []
        ok = [d for d in delays if d is not None]
        delay = "-"
        if delays:
            delay = "%s / %s / %s" % (fmt_num(percentile(ok, 50), ".0f"),
                                      fmt_num(percentile(ok, 99), ".0f"),
                                      fmt_num(max(ok) if ok else None, ".0f"))
            if len(ok) < len(delays):
                delay += " (%d of %d not refused in 10 s)" % (len(delays) - len(ok), len(delays))
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s "
                     "| %s | %s |" % (
            r["entries"],
            fmt_num(r["snapshot_bytes"] / 1e6 if r.get("snapshot_bytes") else None, ".1f"),
            fmt_num(r.get("sync_s"), ".1f"), fmt_num(r.get("rps"), ".0f"),
            fmt_num(ratio, ".3f"), fmt_num(r.get("cpu_ratio"), ".3f"),
            fmt_num(r.get("p50"), ".2f"), fmt_num(r.get("p99"), ".2f"),
            fmt_num(mib(r.get("rss_kib")), ".1f"), fmt_num(growth, ".1f"),
            fmt_num(mib(r.get("rss2_kib")), ".1f"), fmt_num(per_worker, ".1f"),
            fmt_num(r["allocated"] / 1048576.0 if r.get("allocated") else None, ".1f"),
            fmt_num(r.get("load_ms"), ".1f"), fmt_num(r.get("delta_ms"), ".1f"),
            delay, "; ".join(x for x in [
                r.get("note", ""),
                "ratios %s" % ", ".join("%.3f" % x for x in r["ratios"])
                if len(r.get("ratios", [])) > 1 else ""] if x)))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# revocation latency with several workers

FEED_BIN = os.environ.get("BENCH_FEED_BIN") or os.path.join(
    ROOT, "target", "release", "revocation-feed")


def worker_connections(envoy, workers):
    """Opens one keep-alive connection per Envoy worker: the listener
    balances connections exactly (to the worker with the fewest), so
    `workers` connections opened in turn land one on each; Envoy's
    per-worker listener gauges confirm it."""
    conns = []
    for _ in range(workers):
        c = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=5)
        c.connect()
        conns.append(c)
    time.sleep(0.3)
    prefix = "listener.127.0.0.1_%d." % envoy.port
    active = [envoy.stat(prefix + "worker_%d.downstream_cx_active" % w) for w in range(workers)]
    if active != [1] * workers:
        raise RuntimeError("connections per worker: %s" % active)
    return conns


def feed_polls(port):
    """Polls the reference feed server answered (every outcome)."""
    _, body = get(port, "/metrics")
    total = 0
    for line in body.decode().splitlines():
        if line.startswith('revocation_feed_requests_total{endpoint="feed"'):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def revocation_latency(args, machine):
    """Revoke -> refused on every worker of a proxy with --concurrency
    `args.latency_workers` and the filter's default revocation settings
    (long polls, sync_interval_ms 100), against the reference feed server:
    a revocation every `args.latency_every_ms` for `args.latency_seconds`,
    each one's token sent on one connection per worker until every worker
    refuses it. Then the feed's polls while nothing is revoked. Returns the
    markdown section."""
    if not os.path.exists(FEED_BIN):
        raise RuntimeError("%s not found (make feed-build builds it)" % FEED_BIN)
    workers = args.latency_workers
    count = int(args.latency_seconds * 1000 / args.latency_every_ms)
    minted = mint(["HS256"], jtis=count)["algs"]["HS256"]
    jwk, fine = minted["jwk"], minted["token"]
    secret = os.urandom(32)
    read_token, admin_token = os.urandom(24).hex(), os.urandom(24).hex()
    import base64
    secret_b64 = base64.b64encode(secret).decode()
    feed_port = free_port()
    data = os.path.join(RUN_DIR, "latency-feed-%d" % os.getpid())
    shutil.rmtree(data, ignore_errors=True)
    env = dict(os.environ, REVOCATION_FEED_READ_TOKEN=read_token,
               REVOCATION_FEED_ADMIN_TOKEN=admin_token,
               REVOCATION_FEED_HMAC_SECRET_BASE64=secret_b64)
    logf = os.path.join(RUN_DIR, "latency-feed.log")
    feed = subprocess.Popen(["taskset", "-c", LOAD_CORE, FEED_BIN, "serve", "--data", data,
                             "--listen", "127.0.0.1:%d" % feed_port],
                            stdout=subprocess.DEVNULL, stderr=open(logf, "wb"),
                            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    feed.log_path = logf
    _children.append(feed)
    rev = {"cluster": "revocation_feed", "authority": "revocation-feed",
           "bearer_token": read_token, "hmac_secret_base64": secret_b64}
    plugin = plugin_config(jwk, revocation=rev)
    envoy = Envoy("revocation-latency", [wasm_filter(WASM, plugin)],
                  [static_cluster("revocation_feed", feed_port)], concurrency=workers,
                  balanced=True)
    row = {}
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if get(feed_port, "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        if not envoy.wait_ready():
            raise RuntimeError("Envoy did not start:\n" + envoy.log_tail())
        if wait_synced(envoy, 0, 30)[1]:
            raise RuntimeError("no first sync:\n" + envoy.log_tail())
        time.sleep(1)
        conns = worker_connections(envoy, workers)
        for c in conns:
            c.request("GET", "/", headers=bearer(fine))
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError("a valid token got %d" % r.status)
        log("revocation latency: %d workers, a revocation every %d ms for %d s" % (
            workers, args.latency_every_ms, args.latency_seconds))
        import threading
        lock = threading.Lock()
        revoked_at = {}            # jti -> monotonic time the admin call started
        pending = [dict() for _ in range(workers)]   # per worker: jti -> token
        refused = [dict() for _ in range(workers)]   # per worker: jti -> delay ms
        done = threading.Event()

        def probe(w):
            c = conns[w]
            while not (done.is_set() and not pending[w]):
                with lock:
                    todo = list(pending[w].items())
                if not todo:
                    time.sleep(0.002)
                    continue
                for jti, tok in todo:
                    c.request("GET", "/", headers=bearer(tok))
                    r = c.getresponse()
                    r.read()
                    if r.status == 401:
                        at = time.monotonic()
                        with lock:
                            refused[w][jti] = (at - revoked_at[jti]) * 1000.0
                            del pending[w][jti]
                    elif time.monotonic() - revoked_at[jti] > 10:
                        with lock:
                            del pending[w][jti]

        threads = [threading.Thread(target=probe, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        admin = http.client.HTTPConnection("127.0.0.1", feed_port, timeout=5)
        exp = int(time.time()) + 7200
        start = time.monotonic()
        for i, t in enumerate(minted["jti_tokens"][:count]):
            pause = start + i * args.latency_every_ms / 1000.0 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = json.dumps([{"jti": t["jti"], "exp": exp}]).encode()
            at = time.monotonic()
            with lock:
                revoked_at[t["jti"]] = at
            admin.request("POST", "/v1/revocations", body=body, headers={
                "Authorization": "Bearer " + admin_token, "Content-Type": "application/json"})
            r = admin.getresponse()
            r.read()
            if r.status != 201:
                raise RuntimeError("the feed refused a revocation: %d" % r.status)
            with lock:
                for w in range(workers):
                    pending[w][t["jti"]] = t["token"]
        done.set()
        for t in threads:
            t.join()
        admin.close()
        every = []
        missed = 0
        for jti in revoked_at:
            ds = [refused[w].get(jti) for w in range(workers)]
            if any(d is None for d in ds):
                missed += 1
            else:
                every.append(max(ds))
        per_worker = [percentile(list(refused[w].values()), 99) for w in range(workers)]
        row.update({"count": len(revoked_at), "missed": missed,
                    "p50": percentile(every, 50), "p99": percentile(every, 99),
                    "max": max(every) if every else None, "per_worker_p99": per_worker})
        log("  every worker: p50 %s ms, p99 %s ms, max %s ms (%d revocations, %d not refused "
            "everywhere in 10 s); p99 per worker %s" % (
                fmt_num(row["p50"], ".0f"), fmt_num(row["p99"], ".0f"),
                fmt_num(row["max"], ".0f"), row["count"], missed,
                ", ".join(fmt_num(x, ".0f") for x in per_worker)))
        _, body = get(envoy.admin_port, "/stats?filter=jwt_auth.revocation")
        row["counters"] = ", ".join(
            line.split("jwt_auth.revocation.", 1)[1] for line in body.decode().splitlines()
            if "fetch" in line or "conflict" in line)
        log("  filter counters: " + row["counters"])
        for c in conns:
            c.close()
        # Idle: the held polls the proxy sends when nothing is revoked.
        wait_s = DEFAULT_WAIT_MS / 1000.0
        time.sleep(2)
        before, t0 = feed_polls(feed_port), time.monotonic()
        time.sleep(args.latency_idle_waits * wait_s)
        polls = feed_polls(feed_port) - before
        elapsed = time.monotonic() - t0
        row["idle_polls"] = polls
        row["idle_s"] = elapsed
        row["polls_per_wait"] = polls / (elapsed / wait_s)
        log("  idle: %d feed polls in %.0f s (%.2f per wait_ms of %d ms)" % (
            polls, elapsed, row["polls_per_wait"], DEFAULT_WAIT_MS))
    finally:
        envoy.stop()
        stop(feed)
        shutil.rmtree(data, ignore_errors=True)
    return latency_doc(row, args, machine)


# The filter's default `wait_ms` (core/src/config.rs DEFAULT_FEED_WAIT_MS).
DEFAULT_WAIT_MS = 15000


def latency_doc(row, args, machine):
    return "\n".join([
        "## Revoke to refused on every worker", "",
        "Envoy `--concurrency %d` (all on core %s) with the filter's default revocation "
        "settings (long polls of `wait_ms` %d, `sync_interval_ms` 100, `poll_interval_ms` "
        "1000) against the reference feed server (`revocation-feed serve`, embedded store, "
        "core %s). One keep-alive connection per worker (the listener balances connections "
        "exactly; Envoy's per-worker gauges confirm one each). A revocation through the "
        "admin API every %d ms for %d s; each one's token is sent on every worker's "
        "connection until it is refused; the figure is the slowest worker, from the start "
        "of the admin call (goal: p99 <= 150 ms). Idle: polls the feed answered over %d "
        "waits with nothing revoked (goal: at most one per proxy per `wait_ms`)." % (
            args.latency_workers, ENVOY_CORE, DEFAULT_WAIT_MS, LOAD_CORE,
            args.latency_every_ms, args.latency_seconds, args.latency_idle_waits), "",
        "| revocations | p50 ms | p99 ms | max ms | p99 per worker ms | not refused everywhere "
        "| idle polls per wait_ms |",
        "|---:|---:|---:|---:|---|---:|---:|",
        "| %s | %s | %s | %s | %s | %s | %s |" % (
            row.get("count", "-"), fmt_num(row.get("p50"), ".0f"), fmt_num(row.get("p99"), ".0f"),
            fmt_num(row.get("max"), ".0f"),
            " / ".join(fmt_num(x, ".0f") for x in row.get("per_worker_p99", [])) or "-",
            row.get("missed", "-"), fmt_num(row.get("polls_per_wait"), ".2f")),
        "",
    ])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("bench", "revocation", "revocation-latency"):
        s = sub.add_parser(name)
        s.add_argument("--seconds", type=int, default=10)
        s.add_argument("--warmup", type=int, default=None)
        s.add_argument("--connections", type=int, default=32)
        s.add_argument("--sizes", default="0,100000,500000,1000000")
        s.add_argument("--trials", type=int, default=30)
        s.add_argument("--sync-timeout", type=int, default=180)
        s.add_argument("--rev-pairs", type=int, default=3,
                       help="alternating empty-list / size runs per revocation size")
        s.add_argument("--feed-timeout-ms", type=int, default=500,
                       help="the filter's revocation.timeout_ms")
        s.add_argument("--latency-seconds", type=int, default=60,
                       help="revoke-to-refused with several workers: how long (0: skip)")
        s.add_argument("--latency-every-ms", type=int, default=100)
        s.add_argument("--latency-workers", type=int, default=4)
        s.add_argument("--latency-idle-waits", type=int, default=3,
                       help="idle feed load: over this many wait_ms")
        if name == "bench":
            s.add_argument("--algs", default=",".join(ALL_ALGS))
            s.add_argument("--variants", default=",".join(ALL_VARIANTS))
            s.add_argument("--revocation", action="store_true")
            s.add_argument("--rounds", type=int, default=1,
                           help="run every variant this many times; report the median")
    args = p.parse_args()
    if args.warmup is None:
        args.warmup = max(1, min(3, args.seconds // 3))
    for what, path in (("Envoy", ENVOY), ("wasm", WASM), ("jwt-auth-bench", TOOL)):
        if not os.path.exists(path):
            sys.exit("%s not found at %s (run through make bench)" % (what, path))
    for cmd in ("taskset", "wrk"):
        if not shutil.which(cmd):
            sys.exit("%s not found (make bench installs it)" % cmd)
    os.makedirs(RUN_DIR, exist_ok=True)
    if args.cmd == "bench":
        bench(args)
    elif args.cmd == "revocation-latency":
        section = revocation_latency(args, machine_info())
        log(section)
    else:
        machine = machine_info()
        revocation(args, machine=machine)


if __name__ == "__main__":
    main()
